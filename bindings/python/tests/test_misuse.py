"""Misuse gets a clear exception, never a crash, and never a corrupt or
half-sent message: the peer (a child process) records exactly what arrived."""
import gc
import struct
import time

import pytest

import tachyon
from conftest import listen


def record_until_sentinel(path, conn):
    """Consumer child: every message until type_id 0, sent back as a list."""
    got = []
    with tachyon.Bus.connect(path, timeout=10) as bus:
        for msg in bus:
            if msg.type_id == 0:
                break
            got.append((msg.type_id, msg.data))
    conn.send(got)


def finish(bus, peer):
    bus.send(b"", 0)
    return peer.result()


def produce_then_wait(path, conn, payloads):
    with tachyon.Bus.connect(path, timeout=10) as bus:
        for data, t in payloads:
            bus.send(data, t)
        conn.send("sent")
        conn.recv()


@pytest.fixture
def producer_bus(sock_path, peers):
    """(bus, peer): we produce, the child records."""
    peer = peers(record_until_sentinel, sock_path)
    bus = listen(sock_path)
    yield bus, peer
    if not bus.closed:
        bus.close()


def test_closed_bus_raises_value_error(producer_bus):
    bus, peer = producer_bus
    assert finish(bus, peer) == []
    bus.close()
    bus.close()  # idempotent
    assert bus.closed
    for call in (
        lambda: bus.send(b"x", 1),
        lambda: bus.send_zero_copy(8, 1),
        lambda: bus.send_packed("<I", 1, 1),
        lambda: bus.send_batch(b"abcd", 4),
        lambda: bus.flush(),
        lambda: bus._bus.flush(),
        lambda: bus.recv(timeout=0),
        lambda: bus.recv_zero_copy(timeout=0),
        lambda: bus.drain_batch(timeout=0),
        lambda: iter(bus),
        lambda: next(bus),
        lambda: bus.set_polling_mode(1),
        lambda: bus.peer_alive(),
        lambda: bus.capacity,
        lambda: bus.set_numa_node(0),
        lambda: bus._bus.acquire_tx(8),
        lambda: bus._bus.acquire_rx(),
        lambda: bus._bus.drain_batch(),
    ):
        # ClosedError: a RuntimeError (as the published package raises for
        # an uninitialised bus) and a ValueError (as a closed file does).
        with pytest.raises(tachyon.ClosedError, match="closed") as ei:
            call()
        assert isinstance(ei.value, RuntimeError) and isinstance(ei.value, ValueError)
    assert bus.__enter__() is bus  # as published: entering never fails


def test_live_view_at_commit_is_refused(producer_bus):
    bus, peer = producer_bus
    with pytest.raises(BufferError, match="still alive"):
        with bus.send_zero_copy(size=8, type_id=1) as tx:
            mv = memoryview(tx)
            mv[:8] = b"refused!"
    # The slot is still reserved for the live view: nothing may reuse it.
    with pytest.raises(BufferError):
        bus.send(b"blocked", 1)
    with pytest.raises(BufferError):
        bus.close()
    mv[:8] = b"harmless"  # still valid memory, and nobody else's
    mv.release()  # the refused slot is now rolled back
    bus.send(b"after", 2)
    assert finish(bus, peer) == [(2, b"after")]


def test_live_view_at_bus_close(producer_bus):
    bus, peer = producer_bus
    with bus.send_zero_copy(size=4, type_id=3) as tx:
        with memoryview(tx) as mv:
            mv[:] = b"abcd"
        views = memoryview(tx)
        with pytest.raises(BufferError, match="cannot close"):
            bus.close()
        views.release()
    assert finish(bus, peer) == [(3, b"abcd")]
    bus.close()


def test_view_after_the_block_is_refused(producer_bus):
    bus, peer = producer_bus
    with bus.send_zero_copy(size=4, type_id=3) as tx:
        pass
    with pytest.raises(BufferError, match="released"):
        memoryview(tx)
    assert tx.__exit__(None, None, None) is False  # as published: a second exit does nothing
    with pytest.raises(tachyon.ClosedError, match="finished"):
        tx.commit()
    assert finish(bus, peer) == [(3, b"\0\0\0\0")]


def test_actual_size_larger_than_the_slot(producer_bus):
    bus, peer = producer_bus
    with pytest.raises(ValueError, match="outside the slot"):
        with bus.send_zero_copy(size=8, type_id=1) as tx:
            tx.actual_size = 9
    with pytest.raises(ValueError, match="outside the slot"):
        with bus.send_zero_copy(size=8, type_id=1) as tx:
            tx.actual_size = -1
    with pytest.raises(TypeError, match="actual_size must be an int"):
        with bus.send_zero_copy(size=8, type_id=1) as tx:
            tx.actual_size = "8"
    with pytest.raises(ValueError, match="max_payload"):
        bus.send_zero_copy(size=bus.max_payload + 1, type_id=1)
    with pytest.raises(ValueError):
        bus.send(b"x" * (bus.max_payload + 1), 1)
    with bus.send_zero_copy(size=8, type_id=4) as tx:
        with memoryview(tx) as mv:
            mv[:3] = b"abc"
        tx.actual_size = 3
    assert tx.actual_size == 3 and not tx.active
    assert finish(bus, peer) == [(4, b"abc")]


def test_exception_in_block_rolls_back(producer_bus):
    bus, peer = producer_bus
    with pytest.raises(ZeroDivisionError):
        with bus.send_zero_copy(size=8, type_id=1) as tx:
            with memoryview(tx) as mv:
                mv[:] = b"rollback"
            1 / 0
    with bus.send_zero_copy(8, 2) as tx:  # positional form
        with memoryview(tx) as mv:
            mv[:] = b"commit!!"
    assert finish(bus, peer) == [(2, b"commit!!")]


def test_slot_left_open(producer_bus):
    bus, peer = producer_bus
    tx = bus.send_zero_copy(size=4, type_id=1)
    with pytest.raises(RuntimeError, match="still open"):
        bus.send(b"x", 1)
    tx.rollback()
    bus.send(b"ok", 5)
    bus.send_zero_copy(size=4, type_id=1)  # never entered, dropped: rolled back
    gc.collect()
    bus.send(b"ok2", 6)
    assert finish(bus, peer) == [(5, b"ok"), (6, b"ok2")]


def test_wrong_types(producer_bus, sock_path):
    bus, peer = producer_bus
    with pytest.raises(TypeError):
        bus.send("text", 1)
    with pytest.raises(TypeError):
        bus.send(b"x", "1")
    with pytest.raises(OverflowError):  # as published for a negative type_id
        bus.send(b"x", -1)
    with pytest.raises(OverflowError):
        bus.send(b"x", 1 << 32)
    with pytest.raises(TypeError):
        bus.send(b"x", 1, timeout="soon")
    with pytest.raises(ValueError):
        bus.send(b"x", 1, timeout=-1)
    with pytest.raises(TypeError):
        bus.send(b"x", 1, bogus=2)
    with pytest.raises(TypeError):
        bus.send()
    with pytest.raises(TypeError):
        bus.send_zero_copy(size="8", type_id=1)
    with pytest.raises(TypeError):
        bus.send_zero_copy(size=8.0, type_id=1)
    with pytest.raises(TypeError):
        bus.drain_batch(max_msgs="10")
    with pytest.raises(ValueError):
        bus.drain_batch(max_msgs=0)
    with pytest.raises(TypeError):
        bus.set_polling_mode("fast")
    with pytest.raises(TypeError):
        tachyon.Bus(sock_path)
    for guard_type in (tachyon.TxGuard, tachyon.RxGuard, tachyon.RxBatchGuard, tachyon.RxMsgView):
        with pytest.raises(TypeError, match="cannot create"):
            guard_type()
    with pytest.raises(TypeError):
        tachyon.Bus.listen(123)
    with pytest.raises(ValueError, match="power of two"):
        tachyon.Bus.listen(sock_path + "2", 1000)
    assert finish(bus, peer) == []


def test_full_ring(sock_path, peers):
    # A consumer that does not read: the ring fills.
    def idle_consumer(path, conn):
        with tachyon.Bus.connect(path, timeout=10) as b:
            conn.send("connected")
            conn.recv()

    peer = peers(idle_consumer, sock_path)
    with listen(sock_path, 4096) as bus:
        assert peer.result() == "connected"
        sent = 0
        with pytest.raises(tachyon.RingFullError) as ei:
            while True:
                bus.send(b"x" * 32, 1, timeout=0)
                sent += 1
        assert sent == 4096 // 128
        assert ei.value.code_name == "ERR_FULL" and isinstance(ei.value, TimeoutError)
        t0 = time.monotonic()
        with pytest.raises(tachyon.RingFullError):
            bus.send(b"x", 1, timeout=0.2)
        assert 0.15 < time.monotonic() - t0 < 2
        with pytest.raises(tachyon.RingFullError):
            with bus.send_zero_copy(size=8, type_id=1, timeout=0.05):
                pass
        with pytest.raises(tachyon.RingFullError) as ei:
            bus.send_batch(b"y" * 64, 8, timeout=0.05)
        assert ei.value.sent == 0
        peer.conn.send("bye")


def test_live_view_at_receive_release(sock_path, peers):
    peer = peers(produce_then_wait, sock_path, [(b"first", 1), (b"second", 2), (b"third", 3)])
    with listen(sock_path) as bus:
        with pytest.raises(BufferError, match="still alive"):
            with bus.recv_zero_copy(timeout=5) as rx:
                kept = memoryview(rx)
        assert bytes(kept) == b"first"  # still the first message: not released yet
        with pytest.raises(BufferError):
            bus.recv(timeout=0)
        with pytest.raises(BufferError, match="cannot close"):
            bus.close()
        kept.release()  # now the message is released
        assert bus.recv(timeout=5).data == b"second"
        with pytest.raises(BufferError):
            with bus.drain_batch(timeout=5) as batch:
                item_view = memoryview(batch[0])
        assert bytes(item_view) == b"third"
        item_view.release()
        with pytest.raises(tachyon.TachyonTimeoutError):
            bus.recv(timeout=0.05)  # third was released, not handed out twice
        with pytest.raises(ValueError, match="released"):
            batch[0].data
        peer.conn.send("bye")


def test_nested_receive_is_refused(sock_path, peers):
    peer = peers(produce_then_wait, sock_path, [(b"a", 1), (b"b", 2)])
    with listen(sock_path) as bus:
        with bus.recv_zero_copy(timeout=5) as rx:
            with pytest.raises(RuntimeError, match="still holds"):
                bus.recv(timeout=0)
            assert rx.data == b"a"
        with pytest.raises(ValueError, match="released"):
            rx.data
        assert bus.recv(timeout=5).data == b"b"
        peer.conn.send("bye")


def test_connect_errors(sock_path):
    with pytest.raises(tachyon.TachyonError) as ei:
        tachyon.Bus.connect(sock_path, timeout=0)
    assert ei.value.code_name == "ERR_NETWORK"
    assert "listener" in str(ei.value)
    t0 = time.monotonic()
    with pytest.raises(tachyon.TachyonError):
        tachyon.Bus.connect(sock_path, timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 3
    with pytest.raises(tachyon.TachyonError) as ei:
        tachyon.Bus.listen("/tmp/" + "x" * 200, 4096, timeout=0)
    assert ei.value.code_name == "ERR_PATH_TOO_LONG"
    with pytest.raises(tachyon.TachyonTimeoutError):
        tachyon.Bus.listen(sock_path, 4096, timeout=0.1)
