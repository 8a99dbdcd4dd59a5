"""Receiving across two processes: iteration, recv, recv_zero_copy,
drain_batch, and the end of the stream (iteration stops after the last
message of a producer that closed; PeerClosedError from an explicit receive)."""
import struct
import threading
import time

import pytest

import tachyon
from conftest import listen

SEQ = struct.Struct("<Q")


def produce(path, conn, n, size=32, close_after=True):
    """Producer child: n messages, payload = seq (8 bytes) padded to size,
    type_id = seq % 7 + 1; then wait for the parent's word and close."""
    pad = b"\xab" * (size - 8)
    with tachyon.Bus.connect(path, timeout=10) as bus:
        for i in range(n):
            bus.send(SEQ.pack(i) + pad, i % 7 + 1)
        conn.send("sent")
        if not close_after:
            conn.recv()


def test_iteration_yields_copies_then_ends(sock_path, peers):
    n = 50_000
    peers(produce, sock_path, n)
    got = []
    with listen(sock_path) as bus:
        for msg in bus:
            got.append((msg.type_id, msg.size, SEQ.unpack_from(msg.data)[0]))
        with pytest.raises(tachyon.PeerDeadError) as ei:  # PeerClosedError is one
            bus.recv(timeout=5)
    assert isinstance(ei.value, tachyon.PeerClosedError)
    assert ei.value.code == 23 and ei.value.code_name == "ERR_PEER_CLOSED"
    assert isinstance(ei.value, tachyon.TachyonError)
    assert got == [(i % 7 + 1, 32, i) for i in range(n)]


def test_message_object(sock_path, peers):
    peer = peers(produce, sock_path, 1, 40, False)
    with listen(sock_path) as bus:
        m = bus.recv(timeout=10)
        peer.conn.send("go")
    assert (m.type_id, m.size, m.actual_size, len(m)) == (1, 40, 40, 40)
    assert bytes(m) == m.data == SEQ.pack(0) + b"\xab" * 32
    assert m.route_id == 0 and m.msg_type == 1
    assert "type_id=1" in repr(m)


def test_recv_zero_copy_is_read_only_and_in_place(sock_path, peers):
    n = 5000
    peer = peers(produce, sock_path, n, 64, False)
    with listen(sock_path) as bus:
        for i in range(n):
            with bus.recv_zero_copy(timeout=10) as rx:
                assert rx.type_id == i % 7 + 1
                assert rx.actual_size == rx.size == len(rx) == 64
                with memoryview(rx) as mv:
                    assert mv.readonly
                    assert SEQ.unpack_from(mv)[0] == i
                    assert mv[8:] == b"\xab" * 56
                    with pytest.raises(TypeError):
                        mv[0] = 1
                if i == 0:
                    assert rx.data[:8] == SEQ.pack(0)
        peer.conn.send("go")


def test_drain_batch(sock_path, peers):
    n = 30_000
    peer = peers(produce, sock_path, n, 24, False)
    seen = []
    sizes = set()
    with listen(sock_path, 1 << 16) as bus:
        while len(seen) < n:
            with bus.drain_batch(max_msgs=100, timeout=10) as batch:
                assert 1 <= len(batch) <= 100
                sizes.add(len(batch))
                for i in range(len(batch)):
                    item = batch[i]
                    assert item.actual_size == 24
                    with memoryview(item) as mv:
                        assert mv.readonly
                        seq = SEQ.unpack_from(mv)[0]
                    assert item.type_id == seq % 7 + 1
                    seen.append(seq)
                last = batch[-1]
                assert last.data[:8] == SEQ.pack(seen[-1])
                assert [it.type_id for it in batch] == [s % 7 + 1 for s in seen[-len(batch):]]
                with pytest.raises(IndexError):
                    batch[len(batch)]
        peer.conn.send("go")
    assert seen == list(range(n))
    assert max(sizes) > 1  # it really batches


def test_drain_batch_default_and_peer_dead(sock_path, peers):
    peers(produce, sock_path, 3000, 16)
    total = 0
    with listen(sock_path) as bus:
        with pytest.raises(tachyon.PeerDeadError):
            while True:
                with bus.drain_batch() as batch:
                    assert len(batch) <= 1024
                    total += len(batch)
    assert total == 3000


def test_recv_timeout(sock_path, peers):
    peer = peers(produce, sock_path, 0, 8, False)
    with listen(sock_path) as bus:
        t0 = time.monotonic()
        with pytest.raises(tachyon.TachyonTimeoutError) as ei:
            bus.recv(timeout=0.2)
        assert isinstance(ei.value, TimeoutError)
        assert 0.15 < time.monotonic() - t0 < 2
        with pytest.raises(TimeoutError):
            bus.recv_zero_copy(timeout=0)
        with pytest.raises(TimeoutError):
            bus.drain_batch(timeout=0.05)
        peer.conn.send("go")


def test_close_from_another_thread_ends_a_blocked_receive(sock_path, peers):
    peer = peers(produce, sock_path, 0, 8, False)
    with listen(sock_path) as bus:
        threading.Timer(0.2, bus.close).start()
        t0 = time.monotonic()
        with pytest.raises(ValueError, match="closed"):
            bus.recv()
        assert time.monotonic() - t0 < 1.5
        assert bus.closed
    peer.conn.send("go")


def test_polling_mode_and_state(sock_path, peers):
    peer = peers(produce, sock_path, 1000, 8, False)
    with listen(sock_path) as bus:
        bus.set_polling_mode(1)
        assert [SEQ.unpack(bus.recv().data)[0] for _ in range(1000)] == list(range(1000))
        bus.set_polling_mode(0)
        assert bus.state == 2 and bus.peer_alive()
        assert bus.capacity == 1 << 16 and bus.max_payload == (1 << 16) - 64
        peer.conn.send("go")
        peer.join()
        with pytest.raises(tachyon.PeerClosedError):
            bus.recv(timeout=5)
        assert bus.state == 3 and not bus.peer_alive()


def test_iteration_ends_when_the_producer_closes(sock_path, peers):
    """A producer that closes its bus ends `for msg in bus` normally, after
    every message it sent; an explicit receive then raises PeerClosedError."""
    n = 100_000
    peers(produce, sock_path, n)
    got = []
    with listen(sock_path) as bus:
        for msg in bus:
            got.append(SEQ.unpack_from(msg.data)[0])
        with pytest.raises(tachyon.PeerClosedError, match="closed the bus"):
            bus.recv(timeout=5)
    assert got == list(range(n))
