"""The faster ways to send: send (one copy-in call), send_packed (fields
packed straight into the slot), send_batch (many fixed-size records from one
buffer), each across two processes."""
import array
import struct

import pytest

import tachyon
from conftest import listen

REC = struct.Struct("<QdI4x")  # 24 bytes: seq, price, qty


def record_all(path, conn, expected_count):
    """Consumer child: receive expected_count messages, send them back."""
    got = []
    with tachyon.Bus.connect(path, timeout=10) as bus:
        for _ in range(expected_count):
            m = bus.recv(timeout=20)
            got.append((m.type_id, m.data))
    conn.send(got)


def test_send_copies_any_bytes_like(sock_path, peers):
    payloads = [
        (b"hello", 1),
        (bytearray(b"from a bytearray"), 2),
        (memoryview(b"xxslicexx")[2:7], 3),
        (array.array("I", [1, 2, 3]), tachyon.make_type_id(7, 9)),
        (b"", 5),
        (bytes(range(256)) * 4, 0xFFFFFFFF),
    ]
    peer = peers(record_all, sock_path, len(payloads))
    with listen(sock_path, 1 << 14) as bus:
        for data, type_id in payloads:
            bus.send(data, type_id)
        peer_got = peer.result()
    assert peer_got == [(t, bytes(d)) for d, t in payloads]


def test_send_keyword_form(sock_path, peers):
    peer = peers(record_all, sock_path, 2)
    with listen(sock_path) as bus:
        bus.send(data=b"a", type_id=4)
        bus.send(b"b", type_id=5, timeout=1.0)
        got = peer.result()
    assert got == [(4, b"a"), (5, b"b")]


def test_send_packed_with_struct_and_format(sock_path, peers):
    n = 20_000
    peer = peers(record_all, sock_path, n + 2)
    with listen(sock_path, 1 << 16) as bus:
        for i in range(n):
            bus.send_packed(REC, 3, i, i * 0.5, i % 1000)
        bus.send_packed("<Q", 4, 123456789)  # a format string works too
        bus.send_packed(REC.format, 5, 1, 2.0, 3)
        got = peer.result()
    assert len(got) == n + 2
    for i, (t, data) in enumerate(got[:n]):
        assert t == 3 and data == REC.pack(i, i * 0.5, i % 1000), i
    assert got[n] == (4, struct.pack("<Q", 123456789))
    assert got[n + 1] == (5, REC.pack(1, 2.0, 3))


def test_send_packed_bad_values_send_nothing(sock_path, peers):
    peer = peers(record_all, sock_path, 1)
    with listen(sock_path) as bus:
        with pytest.raises(struct.error):
            bus.send_packed(REC, 1, "not an int", 1.0, 1)
        with pytest.raises(struct.error):
            bus.send_packed(REC, 1, 1)  # too few values
        with pytest.raises(TypeError):
            bus.send_packed(42, 1, 1)
        bus.send_packed(REC, 9, 1, 1.0, 1)  # the slot was rolled back: still usable
        got = peer.result()
    assert got == [(9, REC.pack(1, 1.0, 1))]


def test_send_batch_through_a_small_ring_loses_nothing(sock_path, peers):
    # 20 000 records through a 4 KiB ring: send_batch must wait for room
    # again and again (the consumer is a separate, slower process).
    n = 20_000
    records = b"".join(REC.pack(i, float(i), i & 0xFFFF) for i in range(n))
    peer = peers(record_all, sock_path, n)
    with listen(sock_path, 4096) as bus:
        sent = bus.send_batch(records, REC.size, type_id=8)
        assert sent == n
        got = peer.result()
    assert len(got) == n
    assert all(t == 8 for t, _ in got)
    assert b"".join(d for _, d in got) == records


def test_send_batch_from_bytearray_and_array(sock_path, peers):
    a = array.array("Q", range(100))  # 100 records of 8 bytes
    b = bytearray(b"".join(struct.pack("<I", i) for i in range(50)))
    peer = peers(record_all, sock_path, 150)
    with listen(sock_path, 1 << 16) as bus:
        assert bus.send_batch(a, 8, 1) == 100
        assert bus.send_batch(b, record_size=4, type_id=2, timeout=5) == 50
        got = peer.result()
    assert [struct.unpack("<Q", d)[0] for t, d in got[:100]] == list(range(100))
    assert [struct.unpack("<I", d)[0] for t, d in got[100:]] == list(range(50))
    assert {t for t, _ in got[:100]} == {1} and {t for t, _ in got[100:]} == {2}


def test_send_batch_from_numpy(sock_path, peers):
    np = pytest.importorskip("numpy")
    dt = np.dtype([("seq", "<u8"), ("price", "<f8"), ("qty", "<u4"), ("pad", "V4")])
    arr = np.zeros(1000, dtype=dt)
    arr["seq"] = np.arange(1000)
    arr["price"] = np.arange(1000) * 0.5
    peer = peers(record_all, sock_path, 1000)
    with listen(sock_path, 1 << 16) as bus:
        assert bus.send_batch(arr, dt.itemsize, 1) == 1000
        got = peer.result()
    assert b"".join(d for _, d in got) == arr.tobytes()


def test_send_batch_rejects_ragged_buffer(sock_path, peers):
    peer = peers(record_all, sock_path, 1)
    with listen(sock_path) as bus:
        with pytest.raises(ValueError, match="multiple of record_size"):
            bus.send_batch(b"x" * 10, 3)
        with pytest.raises(ValueError):
            bus.send_batch(b"x" * 10, 0)
        with pytest.raises(TypeError):
            bus.send_batch("text", 1)
        bus.send(b"ok", 1)
        got = peer.result()
    assert got == [(1, b"ok")]


def test_flush_and_type_id_helpers(sock_path, peers):
    peer = peers(record_all, sock_path, 1)
    with listen(sock_path) as bus:
        t = tachyon.make_type_id(0x1234, 0xBEEF)
        assert t == 0x1234BEEF
        assert tachyon.route_id(t) == 0x1234 and tachyon.msg_type(t) == 0xBEEF
        bus.send(b"x", t)
        bus.flush()
        bus._bus.flush()
        assert isinstance(bus._bus, tachyon.TachyonBus) and bus._bus is bus._bus
        [(t_got, _)] = peer.result()
    assert t_got == t
    with pytest.raises(ValueError):
        tachyon.make_type_id(1 << 16, 0)
    with pytest.raises(TypeError):
        tachyon.make_type_id("1", 0)
