"""A program written against the published tachyon-ipc package runs unchanged
against this one: its names, keywords, positional meanings, exception classes
and guard semantics. Where this package deliberately behaves better (a full
ring waits, iteration ends at a clean close, actual_size defaults to the size
acquired, a live view holds its slot), the published behaviour is one explicit
argument away, and both are tested here."""
import dataclasses
import os
import socket
import struct
import threading
import time

import pytest

import tachyon
from conftest import published_pair

PUBLISHED_NAMES = [
    "TachyonBus", "TachyonError", "PeerDeadError", "TxGuard", "RxGuard", "RxBatchGuard",
    "RxMsgView", "TachyonRpcBus", "RpcTxGuard", "RpcRxGuard", "Bus", "RpcBus", "RpcDispatcher",
    "RpcEndpoint", "tachyon_rpc", "MSG_TYPE_ERROR", "Message", "make_type_id", "msg_type",
    "route_id",
]
GUARD_TYPES = ("TxGuard", "RxGuard", "RxBatchGuard", "RxMsgView")


# ---- names --------------------------------------------------------------------------


def test_all_holds_the_published_names_in_their_order():
    assert tachyon.__all__[:len(PUBLISHED_NAMES)] == PUBLISHED_NAMES
    from tachyon.rpc import _decode_error  # also importable, as published

    assert tachyon._decode_error is _decode_error
    namespace = {}
    exec("from tachyon import *", namespace)
    for name in tachyon.__all__:
        assert namespace[name] is getattr(tachyon, name)
    assert isinstance(tachyon.__version__, str) and tachyon.__version__


def test_published_submodules_import():
    from tachyon.bus import Bus
    from tachyon.message import Message
    from tachyon.type_id import make_type_id, msg_type, route_id

    assert (Bus, Message) == (tachyon.Bus, tachyon.Message)
    assert (make_type_id, msg_type, route_id) == (tachyon.make_type_id, tachyon.msg_type, tachyon.route_id)


def test_extension_and_type_names():
    assert tachyon._tachyon.__name__ == "tachyon._tachyon"
    assert tachyon._tachyon.__doc__.startswith("Tachyon IPC Bindings")
    for name in ("TachyonBus", "Bus", "Message") + GUARD_TYPES + ("TachyonError", "PeerDeadError"):
        cls = getattr(tachyon, name)
        assert cls.__module__ == "tachyon" and cls.__qualname__ == name, name
    assert issubclass(tachyon.TachyonError, Exception)
    assert issubclass(tachyon.PeerDeadError, tachyon.TachyonError)


def test_guards_cannot_be_created():
    for name in GUARD_TYPES:
        with pytest.raises(TypeError, match="cannot create"):
            getattr(tachyon, name)()


# ---- uninitialised objects ------------------------------------------------------------


def test_tachyonbus_starts_uninitialised_and_ignores_arguments():
    for t in (tachyon.TachyonBus(), tachyon.TachyonBus(1, "x", capacity=2)):
        for call in (
            t.flush,
            lambda: t.acquire_tx(8),
            t.acquire_rx,
            t.drain_batch,
            lambda: t.set_numa_node(0),
            lambda: t.set_polling_mode(1),
        ):
            with pytest.raises(RuntimeError):
                call()
        t.destroy()
        t.destroy()  # idempotent


def test_bus_holds_an_uninitialised_tachyonbus():
    bus = tachyon.Bus()
    assert type(bus._bus) is tachyon.TachyonBus
    with pytest.raises(TypeError):
        tachyon.Bus("/tmp/x.sock")
    with bus as entered:  # entering never fails, exiting destroys
        assert entered is bus
        with pytest.raises(RuntimeError):
            bus.send(b"x")
        with pytest.raises(RuntimeError):
            bus.recv_zero_copy()


# ---- type_id helpers ------------------------------------------------------------------


def test_type_id_helpers():
    assert tachyon.make_type_id(0, 42) == 42
    assert tachyon.make_type_id(0xFFFF, 0xFFFF) == 0xFFFFFFFF
    assert tachyon.make_type_id(route=3, msg_type=7) == (3 << 16) | 7
    with pytest.raises(ValueError, match="route"):
        tachyon.make_type_id(1 << 16, 0)
    with pytest.raises(ValueError, match="msg_type"):
        tachyon.make_type_id(0, -1)
    t = tachyon.make_type_id(0x1234, 0xBEEF)
    assert tachyon.route_id(type_id=t) == 0x1234 and tachyon.msg_type(type_id=t) == 0xBEEF
    # No validation, as published: Python's own >> and & on any int.
    assert tachyon.route_id(-1) == 65535 and tachyon.msg_type(-1) == 65535
    assert tachyon.route_id(1 << 40) == 0 and tachyon.msg_type((1 << 40) + 5) == 5


# ---- Message --------------------------------------------------------------------------


def test_message_is_the_published_dataclass():
    m = tachyon.Message(1, 10, b"0123456789")
    assert repr(m) == "Message(type_id=1, size=10, data=b'0123456789')"
    assert m == tachyon.Message(type_id=1, size=10, data=b"0123456789")
    assert m != tachyon.Message(1, 10, b"x")
    assert tachyon.Message.__slots__ == ("type_id", "size", "data")
    assert dataclasses.is_dataclass(m)
    assert [f.name for f in dataclasses.fields(m)] == ["type_id", "size", "data"]
    assert dataclasses.asdict(m) == {"type_id": 1, "size": 10, "data": b"0123456789"}
    assert dataclasses.astuple(m) == (1, 10, b"0123456789")
    assert dataclasses.replace(m, data=b"z") == tachyon.Message(1, 10, b"z")
    with pytest.raises(TypeError):
        hash(m)
    with pytest.raises(TypeError):
        tachyon.Message(1, 2)
    m.size = 3  # fields are writable
    assert m.size == 3
    match m:
        case tachyon.Message(type_id, size, data):
            assert (type_id, size, data) == (1, 3, b"0123456789")


# ---- a published program, unchanged -------------------------------------------------------


FMT = "<8sdIQ4x"


def test_published_quick_start_runs_unchanged(sock_path):
    rx_bus, tx_bus = published_pair(sock_path)
    got = []

    def consume():
        for msg in rx_bus:
            got.append(msg)
            if len(got) == 3:
                break

    t = threading.Thread(target=consume)
    t.start()
    with tx_bus as bus:
        bus.send(b"hello", type_id=1)
        with bus.send_zero_copy(size=32, type_id=2) as tx:
            with memoryview(tx) as mv:
                struct.pack_into(FMT, mv, 0, b"BTCUSDT\0", 101.5, 3, 7)
            tx.actual_size = 32
        bus._bus.flush()
        bus.send(data=b"", type_id=tachyon.make_type_id(1, 2))
        t.join(10)
        assert [(m.type_id, m.size) for m in got] == [(1, 5), (2, 32), (65538, 0)]
        assert got[0] == tachyon.Message(1, 5, b"hello")
        assert struct.unpack(FMT, got[1].data) == (b"BTCUSDT\0", 101.5, 3, 7)
        for i in range(3):
            bus.send(bytes([i]) * 4, type_id=10 + i)
        with rx_bus.recv_zero_copy() as rx:
            assert (rx.type_id, rx.actual_size, bytes(memoryview(rx))) == (10, 4, b"\0" * 4)
        with rx_bus.drain_batch(max_msgs=1024) as batch:
            assert [(batch[i].type_id, bytes(batch[i])) for i in range(len(batch))] == [
                (11, b"\1" * 4), (12, b"\2" * 4)]
        rx_bus.set_polling_mode(1)
    rx_bus._bus.destroy()


def test_published_keywords(pair):
    rx_bus, tx_bus = pair
    rx_bus.set_polling_mode(pure_spin=True)
    rx_bus.set_polling_mode(pure_spin=0)
    rx_bus._bus.set_polling_mode(pure_spin=2)  # any non-zero int: spin
    tx_bus.send(data=b"a", type_id=1)
    with tx_bus.send_zero_copy(size=1, type_id=2) as tx:
        memoryview(tx)[0] = ord("b")
        tx.__exit__(None, None, None)  # a second exit below does nothing
    with tx_bus._bus.acquire_tx(max_payload_size=1) as tx:
        tx.type_id = 3
        memoryview(tx)[0] = ord("c")
    with rx_bus.drain_batch(max_msgs=1, spin_threshold=0) as batch:
        assert batch[0].data == b"a"
    with rx_bus._bus.acquire_rx(spin_threshold=0) as rx:
        assert (rx.type_id, bytes(rx)) == (2, b"b")
    with rx_bus._bus.drain_batch(max_msgs=4, spin_threshold=5) as batch:
        assert (batch[0].type_id, batch[0].data) == (3, b"c")
    for bus in (rx_bus, tx_bus._bus):
        try:
            bus.set_numa_node(node_id=0)
        except tachyon.TachyonError as e:  # a kernel without NUMA: OSError, as published
            assert isinstance(e, OSError)


def test_positional_arguments_mean_what_they_mean_in_the_published_api(pair):
    rx_bus, tx_bus = pair
    for i in range(20):
        tx_bus.send(bytes([i]), i)
    with rx_bus.drain_batch(16, 0) as batch:  # max_msgs=16, spin_threshold=0
        assert len(batch) == 16
    with pytest.raises(TypeError):
        rx_bus.drain_batch(16, 0, 5)  # this package's timeout is keyword-only
    with rx_bus._bus.drain_batch(2, 0) as batch:
        assert [batch[0].type_id, batch[1].type_id] == [16, 17]
    with rx_bus._bus.acquire_rx(0) as rx:
        assert rx.type_id == 18
    with rx_bus.drain_batch(16, 0, timeout=1) as batch:
        assert batch[0].type_id == 19
    tx_bus.send(b"x", 5)  # data, type_id
    assert rx_bus.recv(timeout=5) == tachyon.Message(5, 1, b"x")


def test_tachyonbus_lifecycle(sock_path):
    listener, connector = tachyon.TachyonBus(), tachyon.TachyonBus()
    t = threading.Thread(target=listener.listen, kwargs={"socket_path": sock_path, "capacity": 4096})
    t.start()
    while True:
        try:
            assert connector.connect(socket_path=sock_path) is None
            break
        except ConnectionError:
            time.sleep(0.005)
    t.join(10)
    with pytest.raises(RuntimeError, match="already open"):
        listener.listen(sock_path, 4096)
    with pytest.raises(RuntimeError, match="already open"):
        connector.connect(sock_path)
    with connector.acquire_tx(5) as tx:
        memoryview(tx)[:] = b"hello"
    with listener.acquire_rx() as rx:
        assert bytes(rx) == b"hello" and rx.actual_size == 5
    connector.destroy()
    listener.destroy()
    with pytest.raises(RuntimeError):
        listener.acquire_rx()
    # After destroy it may listen/connect again.
    t = threading.Thread(target=listener.listen, args=(sock_path, 4096))
    t.start()
    while True:
        try:
            connector.connect(sock_path)
            break
        except ConnectionError:
            time.sleep(0.005)
    t.join(10)
    connector.flush()
    listener.destroy()
    connector.destroy()


# ---- exception classes ------------------------------------------------------------------

# C error code -> the builtin class the published package raises for it.
PUBLISHED_CLASS = {
    1: ValueError, 2: MemoryError, 5: PermissionError, 6: PermissionError, 7: OSError,
    8: ValueError, 11: ConnectionError, 12: OSError, 14: ConnectionError,
}


def test_every_error_code_is_a_tachyon_error_and_the_published_builtin():
    for code in range(1, 25):
        exc = tachyon._tachyon._error_from_code(code)
        if code == 13:  # INTERRUPTED
            assert type(exc) is KeyboardInterrupt
            continue
        assert isinstance(exc, tachyon.TachyonError) and exc.code == code, code
        assert isinstance(exc, PUBLISHED_CLASS.get(code, tachyon.TachyonError)), code
    assert isinstance(tachyon._tachyon._error_from_code(17), tachyon.PeerDeadError)  # FATAL
    assert isinstance(tachyon._tachyon._error_from_code(23), tachyon.PeerClosedError)
    assert "99" in str(tachyon._tachyon._error_from_code(99).code)


def test_connect_failure_is_a_connection_error_at_once(sock_path):
    t0 = time.monotonic()
    with pytest.raises(ConnectionError) as ei:
        tachyon.Bus.connect(sock_path)
    assert time.monotonic() - t0 < 1
    assert isinstance(ei.value, tachyon.TachyonError) and ei.value.code_name == "ERR_NETWORK"
    with pytest.raises(ConnectionError):
        tachyon.TachyonBus().connect(sock_path)


def test_listen_failures_are_the_published_classes(sock_path):
    for capacity in (1000, 0, 32, 1 << 31):
        with pytest.raises(ValueError, match="power of two") as ei:
            tachyon.Bus.listen(sock_path, capacity)
        assert isinstance(ei.value, tachyon.TachyonError) and ei.value.code_name == "ERR_INVALID_SZ"
    with pytest.raises(ValueError):
        tachyon.TachyonBus().listen(sock_path, 1000)
    with pytest.raises(ConnectionError) as ei:
        tachyon.Bus.listen("/tmp/" + "x" * 200, 4096)
    assert ei.value.code_name == "ERR_PATH_TOO_LONG"
    missing_dir = os.path.join(os.path.dirname(sock_path), "no", "such", "dir.sock")
    with pytest.raises(ConnectionError, match="does not exist"):
        tachyon.Bus.listen(missing_dir, 4096)
    with open(sock_path, "w") as f:
        f.write("not a socket")
    with pytest.raises(ConnectionError) as ei:
        tachyon.Bus.listen(sock_path, 4096)
    assert ei.value.code_name == "ERR_NOT_SOCKET"
    assert open(sock_path).read() == "not a socket"  # never removed


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a listener as another user")
def test_listener_of_another_user_is_a_permission_error(sock_path):
    os.chmod(os.path.dirname(sock_path), 0o777)
    pid = os.fork()
    if pid == 0:  # the listener, as nobody
        try:
            os.setuid(65534)
            tachyon.Bus.listen(sock_path, 4096, timeout=10).close()
        finally:
            os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                tachyon.Bus.connect(sock_path).close()
                pytest.fail("connected to another user's listener")
            except PermissionError as e:
                assert isinstance(e, tachyon.TachyonError) and e.code_name == "ERR_PERMISSION"
                assert "uid 65534" in str(e)
                break
            except ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.005)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_numa_node_out_of_range_is_a_value_error(pair):
    for bus in pair:
        for node in (-1, 64, 1 << 40):
            with pytest.raises(ValueError) as ei:
                bus.set_numa_node(node)
            assert isinstance(ei.value, tachyon.TachyonError)
    try:
        pair[0].set_numa_node(63)  # in range, but no machine here has 64 nodes
    except OSError as e:
        assert isinstance(e, tachyon.TachyonError) and e.code_name == "ERR_SYSTEM"


# ---- a full ring ----------------------------------------------------------------------


def test_full_ring_raises_at_once_with_timeout_0(sock_path):
    rx_bus, tx_bus = published_pair(sock_path, 4096)
    with rx_bus, tx_bus:
        sent = 0
        t0 = time.monotonic()
        with pytest.raises(tachyon.TachyonError) as ei:
            while True:
                tx_bus.send(b"x" * 10, 1, timeout=0)
                sent += 1
        assert sent == 4096 // 128 and isinstance(ei.value, tachyon.RingFullError)
        for call in (
            lambda: tx_bus._bus.acquire_tx(10),  # never waits, as published
            lambda: tx_bus.send_zero_copy(10, 1, timeout=0),
            lambda: tx_bus.send_batch(b"y" * 20, 10, timeout=0),
        ):
            with pytest.raises(tachyon.TachyonError) as ei:
                call()
            assert ei.value.code_name == "ERR_FULL"
        assert time.monotonic() - t0 < 2
        for size in (4096, -1, 1 << 70):
            with pytest.raises(tachyon.TachyonError) as ei:
                tx_bus._bus.acquire_tx(size)
            assert isinstance(ei.value, ValueError)


def test_send_waits_for_room_by_default(sock_path):
    rx_bus, tx_bus = published_pair(sock_path, 4096)
    with rx_bus, tx_bus:
        for i in range(4096 // 128):
            tx_bus.send(b"x" * 10, 1, timeout=0)
        done = []
        t = threading.Thread(target=lambda: done.append(tx_bus.send(b"last", 2)))
        t.start()
        time.sleep(0.2)
        assert not done  # waiting for room, not failing
        with rx_bus.drain_batch() as batch:
            assert len(batch) == 4096 // 128
        t.join(10)
        assert done == [None]
        assert rx_bus.recv(timeout=5) == tachyon.Message(2, 4, b"last")


# ---- guards ----------------------------------------------------------------------------


def test_txguard_semantics(pair):
    rx_bus, tx_bus = pair
    g = tx_bus._bus.acquire_tx(16)
    assert g.__enter__() is g
    assert g.actual_size == 16 and g.type_id == 0  # this package: actual_size = size acquired
    mv = memoryview(g)
    assert (mv.readonly, mv.format, mv.itemsize, len(mv)) == (False, "B", 1, 16)
    mv[:] = b"0123456789abcdef"
    mv.release()
    g.type_id = 7
    assert g.__exit__(None, None, None) is False
    assert g.__exit__(None, None, None) is False  # after completion: nothing
    with pytest.raises(BufferError):
        memoryview(g)
    with pytest.raises(ZeroDivisionError):
        with tx_bus.send_zero_copy(4, 8) as tx:
            memoryview(tx)[:] = b"gone"
            1 / 0
    tx_bus._bus.acquire_tx(4)  # dropped without exit: rolled back
    with tx_bus._bus.acquire_tx(8) as tx:
        memoryview(tx)[:3] = b"abc"
        tx.actual_size = 0  # the published default, made explicit
        tx.type_id = 9
    with pytest.raises(OverflowError):
        with tx_bus._bus.acquire_tx(8) as tx:
            tx.type_id = -1
    with pytest.raises(TypeError):
        with tx_bus._bus.acquire_tx(8) as tx:
            del tx.type_id
    assert rx_bus.recv(timeout=5) == tachyon.Message(7, 16, b"0123456789abcdef")
    assert rx_bus.recv(timeout=5) == tachyon.Message(9, 0, b"")
    with pytest.raises(TimeoutError):
        rx_bus.recv(timeout=0)


def test_rxguard_semantics(pair):
    rx_bus, tx_bus = pair
    route = tachyon.make_type_id(0xABCD, 0x0102)
    tx_bus.send(b"first", route)
    tx_bus.send(b"second", 2)
    with pytest.raises(KeyError):
        with rx_bus._bus.acquire_rx() as rx:
            assert rx.__enter__() is rx
            assert rx.type_id == route and rx.actual_size == 5
            with memoryview(rx) as mv:
                assert mv.readonly and bytes(mv) == b"first"
            raise KeyError  # the message is released anyway
    assert rx.__exit__(None, None, None) is False  # nothing more to do
    with pytest.raises(BufferError):
        memoryview(rx)
    assert rx_bus.recv(timeout=5).data == b"second"


def test_batch_semantics(pair):
    rx_bus, tx_bus = pair
    for i in range(5):
        tx_bus.send(bytes([65 + i]) * 3, i)
    batch = rx_bus.drain_batch(max_msgs=5, spin_threshold=0, timeout=5)
    with batch:
        assert len(batch) == 5
        assert batch[0] is not batch[0]
        assert batch[-1].type_id == 4
        with pytest.raises(IndexError):
            batch[5]
        with pytest.raises(TypeError):
            batch[1:2]
        assert [v.data for v in batch] == [b"AAA", b"BBB", b"CCC", b"DDD", b"EEE"]
        view = batch[2]
    assert (view.type_id, view.actual_size) == (2, 3)  # readable after the commit
    with pytest.raises(IndexError):
        batch[9]  # the index is checked first
    with pytest.raises(RuntimeError):
        batch[0]
    with pytest.raises(BufferError):
        memoryview(view)
    with pytest.raises(RuntimeError):
        view.__dlpack__()
    assert view.__dlpack_device__() == (1, 0)
    assert batch.__exit__(None, None, None) is False
    with pytest.raises(TimeoutError):
        rx_bus.recv(timeout=0)
