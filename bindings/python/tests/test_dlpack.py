"""Received messages as tensors and typed arrays, zero-copy: DLPack (the
versioned protocol numpy >= 2 and torch ask for, the legacy one as fallback)
on RxGuard and RxMsgView, and typed views (rx.view). A tensor or array holds
its message: leaving the with-block raises BufferError and the slot stays
the consumer's until the last one is gone, so the producer can never
overwrite what a live array shows."""
import ctypes
import gc
import io
import struct
import threading

import numpy as np
import pytest

import tachyon

ROWS = np.arange(32, dtype=np.float32).reshape(8, 4)


class LegacyOnly:
    """A producer of the published kind: __dlpack__ takes no keywords, so a
    consumer falls back to the legacy protocol."""

    def __init__(self, src):
        self.src = src

    def __dlpack__(self, stream=None):
        return self.src.__dlpack__(stream)

    def __dlpack_device__(self):
        return self.src.__dlpack_device__()


# ---- reading a capsule by hand (the DLPack ABI, as a consumer sees it) ----------------


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
        ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64),
    ]


DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [
        ("major", ctypes.c_uint32), ("minor", ctypes.c_uint32), ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p), ("flags", ctypes.c_uint64), ("dl_tensor", DLTensor),
    ]


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]


capi = ctypes.pythonapi
capi.PyCapsule_GetName.restype = ctypes.c_char_p
capi.PyCapsule_GetName.argtypes = [ctypes.py_object]
capi.PyCapsule_GetPointer.restype = ctypes.c_void_p
capi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
capi.PyCapsule_SetName.restype = ctypes.c_int
capi.PyCapsule_SetName.argtypes = [ctypes.py_object, ctypes.c_char_p]


def open_capsule(capsule):
    """(name, managed tensor struct, pointer) of an unconsumed capsule."""
    name = capi.PyCapsule_GetName(capsule)
    ptr = capi.PyCapsule_GetPointer(capsule, name)
    cls = DLManagedTensorVersioned if name == b"dltensor_versioned" else DLManagedTensor
    return name, cls.from_address(ptr), ptr


def consume(capsule):
    """Take the tensor out of its capsule, as a consumer does: rename the
    capsule; the tensor is then ours to delete."""
    name, t, ptr = open_capsule(capsule)
    capi.PyCapsule_SetName(capsule, b"used_" + name)
    return t, ptr


# ---- fixtures -----------------------------------------------------------------------


def send_rows(bus, rows=ROWS, type_id=1):
    bus.send(rows.tobytes(), type_id)


def address_of(buffer_owner):
    with memoryview(buffer_owner) as mv:
        return np.frombuffer(mv, np.uint8).ctypes.data


# ---- DLPack on RxGuard and RxMsgView --------------------------------------------------------


def test_numpy_from_dlpack_is_zero_copy_and_read_only(pair):
    rx_bus, tx_bus = pair
    send_rows(tx_bus)
    with rx_bus.recv_zero_copy(timeout=5) as rx:
        assert rx.__dlpack_device__() == (1, 0)
        arr = np.from_dlpack(rx)
        assert arr.dtype == np.uint8 and arr.shape == (ROWS.nbytes,)
        assert arr.ctypes.data == address_of(rx)
        assert not arr.flags.writeable
        assert np.array_equal(arr.view(np.float32).reshape(8, 4), ROWS)
        del arr


def test_versioned_and_legacy_capsules(pair):
    rx_bus, tx_bus = pair
    send_rows(tx_bus)
    with rx_bus.recv_zero_copy(timeout=5) as rx:
        versioned = rx.__dlpack__(max_version=(1, 0))
        name, t, _ = open_capsule(versioned)
        assert name == b"dltensor_versioned"
        assert (t.major, t.minor) == (1, 0)
        assert t.flags & 1 and not t.flags & 2  # read-only, not a copy
        dl = t.dl_tensor
        assert (dl.device.device_type, dl.device.device_id, dl.ndim) == (1, 0, 1)
        assert (dl.dtype.code, dl.dtype.bits, dl.dtype.lanes) == (1, 8, 1)
        assert (dl.shape[0], dl.strides[0], dl.byte_offset) == (ROWS.nbytes, 1, 0)
        assert dl.data == address_of(rx)
        for capsule in (rx.__dlpack__(), rx.__dlpack__(None), rx.__dlpack__(stream=None),
                        rx.__dlpack__(max_version=(0, 8))):
            name, t, _ = open_capsule(capsule)
            assert name == b"dltensor" and t.dl_tensor.data == address_of(rx)
        legacy = np.from_dlpack(LegacyOnly(rx))
        assert np.array_equal(legacy.view(np.float32).reshape(8, 4), ROWS)
        del legacy, capsule, versioned
        gc.collect()


def test_copy_and_device_keywords(pair):
    rx_bus, tx_bus = pair
    send_rows(tx_bus)
    with rx_bus.recv_zero_copy(timeout=5) as rx:
        capsule = rx.__dlpack__(max_version=(1, 0), copy=True)
        name, t, _ = open_capsule(capsule)
        assert t.flags & 2 and not t.flags & 1  # a copy, writable
        assert t.dl_tensor.data != address_of(rx)
        copied = np.from_dlpack(rx, copy=True)
        assert copied.flags.writeable and copied.ctypes.data != address_of(rx)
        assert np.from_dlpack(rx, device="cpu").ctypes.data == address_of(rx)
        with pytest.raises(BufferError):
            rx.__dlpack__(dl_device=(2, 0))
        with pytest.raises(TypeError):
            rx.__dlpack__(max_version=1)
        del capsule
    copied[0] = 99  # a copy outlives the message
    assert copied.view(np.float32)[1] == 1.0


def test_array_alive_at_exit_holds_the_slot_until_it_is_gone(sock_path):
    """The producer fills the ring again and again while an array of the
    first message lives: the array never changes; deleting it releases the
    message, and the stream goes on with nothing lost or repeated."""
    from conftest import published_pair

    rx_bus, tx_bus = published_pair(sock_path, 4096)
    with rx_bus, tx_bus:
        slot_rows = 60  # 960-byte payloads: 1 KiB slots, four to the ring
        first = np.full((slot_rows, 4), 1.0, np.float32)
        send_rows(tx_bus, first)
        with pytest.raises(BufferError, match="still alive"):
            with rx_bus.recv_zero_copy(timeout=5) as rx:
                arr = np.from_dlpack(rx).view(np.float32).reshape(slot_rows, 4)
        with pytest.raises(BufferError):
            rx_bus.recv(timeout=0)  # the message is still held
        sent = 0
        try:
            for k in range(2, 100):
                tx_bus.send(np.full((slot_rows, 4), float(k), np.float32).tobytes(), 1, timeout=0)
                sent += 1
        except tachyon.RingFullError:
            pass
        assert sent >= 2  # the rest of the ring took some, never the held slot
        assert np.all(arr == 1.0)
        with pytest.raises(BufferError):
            rx_bus.close()
        del arr  # the last export: the message is released now
        got = [rx_bus.recv(timeout=5).data for _ in range(sent)]
        assert got == [np.full((slot_rows, 4), float(k), np.float32).tobytes()
                       for k in range(2, 2 + sent)]


def test_batch_item_tensors_hold_the_batch(pair):
    rx_bus, tx_bus = pair
    for k in range(3):
        send_rows(tx_bus, ROWS + k, type_id=k)
    with pytest.raises(BufferError):
        with rx_bus.drain_batch(timeout=5) as batch:
            assert len(batch) == 3
            arrays = [np.from_dlpack(item) for item in batch]
            assert [a.ctypes.data for a in arrays] == [address_of(item) for item in batch]
    tx_bus.send(b"next", 9)
    with pytest.raises(BufferError):
        rx_bus.recv(timeout=0)
    for k, a in enumerate(arrays):
        assert np.array_equal(a.view(np.float32).reshape(8, 4), ROWS + k)
    del a
    arrays.pop()
    with pytest.raises(BufferError):
        rx_bus.recv(timeout=0)  # two left
    arrays.clear()
    assert rx_bus.recv(timeout=5) == tachyon.Message(9, 4, b"next")


def test_unconsumed_capsule_gives_its_export_back(pair):
    rx_bus, tx_bus = pair
    send_rows(tx_bus)
    with rx_bus.recv_zero_copy(timeout=5) as rx:
        capsule = rx.__dlpack__(max_version=(1, 0))
        legacy = rx.__dlpack__()
        del capsule, legacy
    assert not rx.active


def test_deleter_called_from_another_thread_without_the_gil(pair):
    """A consumer may free its tensor from any thread, without the GIL (ctypes
    releases it around a foreign call): the deleter takes it itself."""
    rx_bus, tx_bus = pair
    send_rows(tx_bus)
    tx_bus.send(b"after", 2)
    with pytest.raises(BufferError):
        with rx_bus.recv_zero_copy(timeout=5) as rx:
            t, ptr = consume(rx.__dlpack__(max_version=(1, 0)))
    deleter = DELETER(t.deleter)
    th = threading.Thread(target=deleter, args=(ptr,))
    th.start()
    th.join(10)
    assert not rx.active  # released by the deleter
    assert rx_bus.recv(timeout=5).data == b"after"


def test_dlpack_after_release_is_a_runtime_error(pair):
    rx_bus, tx_bus = pair
    send_rows(tx_bus)
    with rx_bus.recv_zero_copy(timeout=5) as rx:
        pass
    with pytest.raises(RuntimeError):
        rx.__dlpack__()
    with pytest.raises(RuntimeError):
        rx.view("f")


# ---- typed views ---------------------------------------------------------------------


def test_typed_view_without_numpy(pair):
    rx_bus, tx_bus = pair
    send_rows(tx_bus)
    with rx_bus.recv_zero_copy(timeout=5) as rx:
        v = rx.view("f", (-1, 4))
        assert (v.format, v.shape, v.ndim, v.itemsize, v.nbytes, len(v)) == ("f", (8, 4), 2, 4, 128, 8)
        with memoryview(v) as mv:
            assert (mv.format, mv.shape, mv.strides, mv.readonly) == ("f", (8, 4), (16, 4), True)
            assert mv.tolist() == ROWS.tolist()
        with memoryview(rx.view("<f", 32)) as mv:
            assert mv.tolist() == ROWS.ravel().tolist()
        with memoryview(rx.view("Q", (2,), offset=8)) as mv:
            assert mv.tolist() == list(struct.unpack_from("<2Q", ROWS.tobytes(), 8))
        with pytest.raises(TypeError):
            io.BytesIO(b"x").readinto(v)  # a writable buffer is refused
        with pytest.raises(TypeError):
            with memoryview(v) as mv:
                mv.cast("B")[0] = 1


def test_typed_view_with_numpy(pair):
    rx_bus, tx_bus = pair
    send_rows(tx_bus)
    with rx_bus.recv_zero_copy(timeout=5) as rx:
        v = rx.view("f", (-1, 4))
        a = np.asarray(v)
        assert a.dtype == np.float32 and a.shape == (8, 4) and np.array_equal(a, ROWS)
        assert a.ctypes.data == address_of(rx) and not a.flags.writeable
        d = np.from_dlpack(v)
        assert d.dtype == np.float32 and d.shape == (8, 4) and np.array_equal(d, ROWS)
        assert d.ctypes.data == address_of(rx)
        n = np.asarray(rx.view(np.dtype("<f4"), (8, 4)))
        assert np.array_equal(n, ROWS)
        ints = np.from_dlpack(rx.view(np.dtype(np.int32), (4, 8)))
        assert np.array_equal(ints, ROWS.view(np.int32).reshape(4, 8))
        del a, d, n, ints


def test_typed_view_of_batch_items(pair):
    rx_bus, tx_bus = pair
    for k in range(3):
        send_rows(tx_bus, ROWS * k, k)
    with rx_bus.drain_batch(timeout=5) as batch:
        stacked = [np.from_dlpack(item.view("f", (8, 4))).copy() for item in batch]
    assert [np.array_equal(s, ROWS * k) for k, s in enumerate(stacked)] == [True] * 3


def test_typed_view_arguments(pair):
    rx_bus, tx_bus = pair
    tx_bus.send(bytes(100), 1)
    with rx_bus.recv_zero_copy(timeout=5) as rx:
        with pytest.raises(ValueError, match="divide"):
            rx.view("f", (-1, 3))  # 25 floats are not rows of 3
        with pytest.raises(ValueError, match="needs"):
            rx.view("f", (26,))
        with pytest.raises(ValueError, match="multiple"):
            rx.view("f", offset=2)
        with pytest.raises(ValueError, match="byte order"):
            rx.view(">f")
        with pytest.raises(ValueError, match="byte order"):
            rx.view(np.dtype(">f4"))
        with pytest.raises(ValueError, match="unsupported"):
            rx.view("ff")
        with pytest.raises(ValueError, match="unsupported"):
            rx.view(np.dtype("c16"))
        with pytest.raises(ValueError):
            rx.view("B", (-1, -1))
        assert rx.view("f", (5, 2)).shape == (5, 2)  # a prefix of the message
        assert rx.view("<l").itemsize == 4 and rx.view("l", 3).itemsize == struct.calcsize("l")
        assert rx.view("?", 3).format == "?"


def test_typed_view_holds_the_message_while_exported(pair):
    rx_bus, tx_bus = pair
    send_rows(tx_bus)
    tx_bus.send(b"next", 2)
    with pytest.raises(BufferError):
        with rx_bus.recv_zero_copy(timeout=5) as rx:
            a = np.asarray(rx.view("f", (8, 4)))
    with pytest.raises(BufferError):
        rx_bus.recv(timeout=0)
    assert np.array_equal(a, ROWS)
    del a
    assert rx_bus.recv(timeout=5).data == b"next"


def test_torch_from_dlpack(pair):
    torch = pytest.importorskip("torch")
    rx_bus, tx_bus = pair
    send_rows(tx_bus)
    with rx_bus.recv_zero_copy(timeout=5) as rx:
        t = torch.from_dlpack(rx.view("f", (8, 4)))
        assert t.dtype == torch.float32 and tuple(t.shape) == (8, 4)
        assert t.data_ptr() == address_of(rx)
        assert t.tolist() == ROWS.tolist()
        del t
