"""Buses in an event loop: the descriptor (fileno/arm) under poll for each
state change, recv_async / drain_batch_async / send_async / async for with
timeouts, the peer's end raised through await, cancellation that loses and
duplicates nothing, close while tasks wait, a peer that never signals the
descriptor (plain ABI v4), on asyncio's loop and on uvloop."""
import asyncio
import os
import random
import select
import signal
import struct
import threading
import time

import pytest

import tachyon
from conftest import listen
from plain_v4 import PlainV4Producer

SEQ = struct.Struct("<Q")
WAIT = 10  # seconds: a generous bound for anything that must happen

try:
    import uvloop
except ImportError:
    uvloop = None

LOOPS = [pytest.param(asyncio.new_event_loop, id="asyncio")]
LOOPS.append(
    pytest.param(
        uvloop.new_event_loop if uvloop else None,
        id="uvloop",
        marks=pytest.mark.skipif(uvloop is None, reason="uvloop is not installed"),
    )
)


@pytest.fixture(params=LOOPS)
def run(request):
    """run(coro): run a coroutine to completion on a new loop of each kind."""
    new_loop = request.param

    def run_on_new_loop(coro):
        loop = new_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(coro, 60))
        finally:
            loop.close()

    return run_on_new_loop


def readable(fd, timeout_s):
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(timeout_s * 1000))


def open_fds():
    return len(os.listdir("/proc/self/fd"))


# ---- the descriptor ------------------------------------------------------------


def test_fileno_is_the_same_descriptor_and_arm_reports_what_is_there(pair):
    lis, con = pair
    fd = lis.fileno()
    assert fd == lis.fileno() and fd >= 0
    assert lis.arm(tachyon.WAIT_RX) is False
    assert not readable(fd, 0.02)
    con.send(b"hi", 7)
    assert readable(fd, WAIT)
    assert readable(fd, 0)  # level-triggered: until the next arm
    assert lis.arm(tachyon.WAIT_RX) is True
    assert lis.recv(0).data == b"hi"
    assert lis.arm() is False  # WAIT_RX is the default
    for bad in (0, 4, -1, "rx", True):
        with pytest.raises((ValueError, TypeError)):
            lis.arm(bad)


def test_descriptor_turns_readable_for_room_after_a_full_ring(sock_path):
    lis, con = None, None
    from conftest import published_pair

    lis, con = published_pair(sock_path, capacity=1024)
    try:
        while True:
            try:
                con.send(b"x", timeout=0)
            except tachyon.RingFullError:
                break
        fd = con.fileno()
        assert con.arm(tachyon.WAIT_TX) is False
        assert not readable(fd, 0.02)
        while True:  # the consumer gives room back once it has read a chunk
            try:
                lis.recv(0)
            except tachyon.TachyonTimeoutError:
                break
        assert readable(fd, WAIT)
        assert con.arm(tachyon.WAIT_TX) is True
        con.send(b"y", timeout=0)
    finally:
        lis.close()
        con.close()


def producer_then_pause(path, conn, count):
    with tachyon.Bus.connect(path, timeout=WAIT) as bus:
        for i in range(count):
            bus.send(SEQ.pack(i), 1)
        conn.send("sent")
        time.sleep(60)  # until killed


def test_descriptor_turns_readable_when_the_peer_is_killed(sock_path, peers):
    peer = peers(producer_then_pause, sock_path, 0)
    with listen(sock_path) as bus:
        assert peer.result() == "sent"
        fd = bus.fileno()
        assert bus.arm() is False
        os.kill(peer.proc.pid, signal.SIGKILL)
        assert readable(fd, WAIT)  # the peer's pidfd
        assert bus.arm() is True
        with pytest.raises(tachyon.PeerDeadError):
            bus.recv(0)
        assert readable(fd, 0)  # and it stays readable


def test_descriptor_turns_readable_when_the_peer_closes(pair):
    lis, con = pair
    fd = lis.fileno()
    assert lis.arm() is False
    con.close()
    assert readable(fd, WAIT)
    assert lis.arm() is True
    with pytest.raises(tachyon.PeerClosedError):
        lis.recv(0)


def test_fileno_and_arm_on_a_closed_bus(pair):
    lis, _ = pair
    lis.close()
    with pytest.raises(tachyon.ClosedError):
        lis.fileno()
    with pytest.raises(tachyon.ClosedError):
        lis.arm()


# ---- receiving -------------------------------------------------------------------


def paced_producer(path, conn, count, pause_every):
    with tachyon.Bus.connect(path, timeout=WAIT) as bus:
        for i in range(count):
            bus.send(SEQ.pack(i), 1 + i % 3)
            if i % pause_every == 0:
                time.sleep(0.001)


def test_recv_async_and_async_for_get_every_message_in_order(sock_path, peers, run):
    peers(paced_producer, sock_path, 3000, 50)
    with listen(sock_path, 1 << 12) as bus:

        async def consume():
            got = []
            ticks = 0

            async def ticker():  # the loop keeps running other work meanwhile
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.001)
                    ticks += 1

            t = asyncio.ensure_future(ticker())
            first = await bus.recv_async(timeout=WAIT)
            got.append(SEQ.unpack(first.data)[0])
            async for msg in bus:  # ends when the producer closes
                assert msg.type_id == 1 + SEQ.unpack(msg.data)[0] % 3
                got.append(SEQ.unpack(msg.data)[0])
            t.cancel()
            return got, ticks

        got, ticks = run(consume())
        assert got == list(range(3000))
        assert ticks > 0


def test_drain_batch_async_holds_messages_in_place(sock_path, peers, run):
    peers(paced_producer, sock_path, 5000, 500)
    with listen(sock_path, 1 << 14) as bus:

        async def consume():
            seen = []
            while True:
                try:
                    batch = await bus.drain_batch_async(256, timeout=WAIT)
                except tachyon.PeerClosedError:
                    return seen
                with batch:
                    assert 1 <= len(batch) <= 256
                    seen.extend(SEQ.unpack(m.data)[0] for m in batch)

        assert run(consume()) == list(range(5000))


def test_recv_async_timeout_is_kept_and_raises_the_timeout_error(pair, run):
    lis, con = pair

    async def go():
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        with pytest.raises(tachyon.TachyonTimeoutError) as err:
            await lis.recv_async(timeout=0.05)
        waited = time.monotonic() - t0
        assert isinstance(err.value, TimeoutError) and err.value.code_name == "ERR_TIMEOUT"
        assert "0.05 s" in str(err.value)
        with pytest.raises(tachyon.TachyonTimeoutError):
            await lis.recv_async(timeout=0)
        with pytest.raises(tachyon.TachyonTimeoutError):
            await lis.drain_batch_async(timeout=0.01)
        # A message that comes before the deadline is delivered.
        loop.call_later(0.02, con.send, b"late", 3)
        msg = await lis.recv_async(timeout=WAIT)
        return waited, msg

    waited, msg = run(go())
    assert waited >= 0.05
    assert (msg.type_id, msg.data) == (3, b"late")
    with pytest.raises(TypeError):
        asyncio.run(lis.recv_async(timeout="1"))
    with pytest.raises(ValueError):
        asyncio.run(lis.recv_async(timeout=-1))


def producer_sends_then_dies(path, conn, count):
    bus = tachyon.Bus.connect(path, timeout=WAIT)
    for i in range(count):
        bus.send(SEQ.pack(i), 1)
    conn.recv()  # until told to die
    os.kill(os.getpid(), signal.SIGKILL)


def test_peer_death_is_raised_through_await_after_the_last_message(sock_path, peers, run):
    peer = peers(producer_sends_then_dies, sock_path, 3)
    with listen(sock_path) as bus:

        async def consume():
            got = [SEQ.unpack((await bus.recv_async(timeout=WAIT)).data)[0] for _ in range(3)]
            waiter = asyncio.ensure_future(bus.recv_async())
            await asyncio.sleep(0.05)
            assert not waiter.done()  # waiting on the descriptor
            peer.conn.send("die")
            with pytest.raises(tachyon.PeerDeadError) as err:
                await asyncio.wait_for(waiter, WAIT)
            assert err.value.code_name == "ERR_PEER_DEAD"
            with pytest.raises(tachyon.PeerDeadError):
                async for _ in bus:  # not a clean end: iteration raises too
                    pass
            return got

        assert run(consume()) == [0, 1, 2]


# ---- sending ---------------------------------------------------------------------


def slow_consumer(path, conn, count):
    with tachyon.Bus.connect(path, timeout=WAIT) as bus:
        got = []
        for _ in range(count):
            got.append(SEQ.unpack(bus.recv(timeout=WAIT).data)[0])
            if len(got) % 100 == 0:
                time.sleep(0.002)
        conn.send(got)


def test_send_async_waits_for_room_and_delivers_everything(sock_path, peers, run):
    peer = peers(slow_consumer, sock_path, 4000)
    with listen(sock_path, 1024) as bus:  # 8 messages fill it

        async def produce():
            for i in range(4000):
                await bus.send_async(SEQ.pack(i), 1, timeout=WAIT)

        run(produce())
        assert peer.result() == list(range(4000))
        assert bus.stats().ring_full > 0  # it did wait for room


def test_send_async_timeout_raises_ring_full(pair, run):
    lis, con = pair

    async def go():
        while True:
            try:
                con.send(b"x" * 100, timeout=0)
            except tachyon.RingFullError:
                break
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        with pytest.raises(tachyon.RingFullError):
            await con.send_async(b"y", timeout=0.05)
        waited = time.monotonic() - t0
        # Room made before the deadline is used.
        loop.call_later(0.02, lambda: [lis.recv(0) for _ in range(50)])
        await con.send_async(b"z" * 100, timeout=WAIT)
        return waited

    assert run(go()) >= 0.05


def test_send_async_raises_when_the_consumer_is_gone(pair, run):
    lis, con = pair

    async def go():
        while True:
            try:
                con.send(b"x" * 100, timeout=0)
            except tachyon.RingFullError:
                break
        sender = asyncio.ensure_future(con.send_async(b"y", timeout=WAIT))
        await asyncio.sleep(0.02)
        assert not sender.done()
        lis.close()
        with pytest.raises(tachyon.PeerDeadError):
            await sender

    run(go())


# ---- cancellation ------------------------------------------------------------------

CANCELS = 10_000


async def interfere(task, rng, watched):
    """Cancel `task` at a random point: before it ran, or after 1-6 rounds
    of the loop (by then it may be waiting on the descriptor, woken by it
    and not yet resumed, or done). Returns whether it was waiting on the
    descriptor when cancelled (its future in the bus's watcher), or None if
    not cancelled here."""
    if rng.random() < 0.3:
        return None
    for _ in range(rng.choice((0, 1, 1, 2, 3, 6))):
        await asyncio.sleep(0)
    w = watched._watcher
    waiting = w is not None and bool(w.rx or w.tx)
    return waiting if task.cancel() else None


def paced_numbered_producer(path, conn, seed):
    rng = random.Random(seed)
    with tachyon.Bus.connect(path, timeout=WAIT) as bus:
        i = 0
        while not conn.poll():
            bus.send(SEQ.pack(i), 1, timeout=WAIT)
            i += 1
            if rng.random() < 0.5:  # slower than the consumer, now and then
                time.sleep(rng.random() * 0.0002)
        conn.recv()
        conn.send(i)


def test_cancelled_receives_lose_and_duplicate_nothing(sock_path, peers, run):
    """10 000 receives cancelled at random points; the messages come from
    another process in bursts and pauses, so many of them are cancelled while
    waiting on the descriptor. Every number arrives once, in order."""
    peer = peers(paced_numbered_producer, sock_path, 3)
    with listen(sock_path, 1 << 12) as bus:

        async def consume():
            loop = asyncio.get_running_loop()
            rng = random.Random(4)
            expected = cancelled = while_waiting = timeouts = 0
            while cancelled < CANCELS:
                timeout = 0.0001 if rng.random() < 0.05 else None
                t = asyncio.ensure_future(bus.recv_async(timeout=timeout))
                waiting = await interfere(t, rng, bus._bus)
                try:
                    msg = await t
                except asyncio.CancelledError:
                    if not t.cancelled():
                        raise
                    cancelled += 1
                    while_waiting += bool(waiting)
                    continue
                except tachyon.TachyonTimeoutError:
                    timeouts += 1
                    continue
                assert SEQ.unpack(msg.data)[0] == expected, "lost or duplicated before %d" % expected
                expected += 1
            peer.conn.send("stop")
            total = peer.result()
            while expected < total:
                assert SEQ.unpack((await bus.recv_async(timeout=WAIT)).data)[0] == expected
                expected += 1
            with pytest.raises(tachyon.PeerClosedError):
                await bus.recv_async(timeout=WAIT)
            return cancelled, while_waiting, timeouts, expected

        cancelled, while_waiting, timeouts, received = run(consume())
    print("received %d; %d cancelled (%d waiting on the descriptor), %d timed out"
          % (received, cancelled, while_waiting, timeouts))
    assert while_waiting >= CANCELS // 10


def paced_numbered_consumer(path, conn, seed):
    rng = random.Random(seed)
    with tachyon.Bus.connect(path, timeout=WAIT) as bus:
        got = 0
        for msg in bus:
            assert SEQ.unpack(msg.data)[0] == got, "lost or duplicated before %d" % got
            got += 1
            if rng.random() < 0.5:  # slower than the producer, now and then
                time.sleep(rng.random() * 0.0002)
        conn.send(got)


def test_cancelled_sends_send_nothing(sock_path, peers, run):
    """10 000 sends cancelled at random points into a ring of 8 slots read
    by another process; a cancelled send is made again, and the consumer
    must see every number once, in order."""
    peer = peers(paced_numbered_consumer, sock_path, 5)
    with listen(sock_path, 1024) as bus:

        async def produce():
            loop = asyncio.get_running_loop()
            rng = random.Random(6)
            i = cancelled = while_waiting = 0
            while cancelled < CANCELS:
                t = asyncio.ensure_future(bus.send_async(SEQ.pack(i), 1))
                waiting = await interfere(t, rng, bus._bus)
                try:
                    await t
                    i += 1
                except asyncio.CancelledError:
                    if not t.cancelled():
                        raise
                    cancelled += 1
                    while_waiting += bool(waiting)
            return i, cancelled, while_waiting

        sent, cancelled, while_waiting = run(produce())
    assert peer.result() == sent
    print("sent %d; %d cancelled (%d waiting on the descriptor)" % (sent, cancelled, while_waiting))
    assert while_waiting >= CANCELS // 10


def test_cancellation_on_one_loop_with_both_sides(sock_path, run):
    """A producer task and a consumer task on one loop over a ring of 8
    slots, both cancelled at random: both sides share the bus's watcher
    arming, and the consumer still sees every number once, in order."""
    from conftest import published_pair

    lis, con = published_pair(sock_path, capacity=1024)

    async def both():
        loop = asyncio.get_running_loop()

        async def producer(rng):
            i = 0
            for _ in range(3000):
                t = asyncio.ensure_future(con.send_async(SEQ.pack(i), 1))
                await interfere(t, rng, con._bus)
                try:
                    await t
                    i += 1
                except asyncio.CancelledError:
                    if not t.cancelled():
                        raise
            con.close()
            return i

        async def consumer(rng):
            expected = 0
            while True:
                t = asyncio.ensure_future(lis.recv_async())
                await interfere(t, rng, lis._bus)
                try:
                    msg = await t
                except asyncio.CancelledError:
                    if not t.cancelled():
                        raise
                    continue
                except tachyon.PeerClosedError:
                    return expected
                assert SEQ.unpack(msg.data)[0] == expected, "lost or duplicated before %d" % expected
                expected += 1

        return await asyncio.gather(producer(random.Random(1)), consumer(random.Random(2)))

    try:
        sent, received = run(both())
    finally:
        lis.close()
        con.close()
    assert received == sent > 0


# ---- close, loops, threads ---------------------------------------------------------


def test_close_while_tasks_wait_raises_closed_error_and_frees_the_watch(pair, run):
    lis, con = pair
    before = open_fds()

    async def go():
        receiver = asyncio.ensure_future(lis.recv_async())
        await asyncio.sleep(0.02)
        lis.close()
        with pytest.raises(tachyon.ClosedError):
            await asyncio.wait_for(receiver, WAIT)

    run(go())
    assert open_fds() <= before  # the bus's descriptors and the watcher's duplicate


def test_close_from_another_thread_ends_the_wait(pair, run):
    lis, con = pair

    async def go():
        receiver = asyncio.ensure_future(lis.recv_async())
        await asyncio.sleep(0.02)
        closer = threading.Thread(target=lis.close)
        closer.start()
        with pytest.raises(tachyon.ClosedError):
            await asyncio.wait_for(receiver, WAIT)
        closer.join()

    run(go())


def test_a_bus_serves_one_loop_after_another(pair):
    lis, con = pair
    for i in range(3):
        asyncio.run(con.send_async(b"%d" % i))
        assert asyncio.run(lis.recv_async(timeout=WAIT)).data == b"%d" % i


def test_a_second_loop_cannot_wait_while_the_first_does(pair):
    lis, con = pair
    first_waits = threading.Event()
    outcome = {}

    def first_loop():
        async def wait():
            task = asyncio.ensure_future(lis.recv_async(timeout=WAIT))
            await asyncio.sleep(0.01)
            first_waits.set()
            outcome["first"] = (await task).data

        asyncio.run(wait())

    t = threading.Thread(target=first_loop)
    t.start()
    assert first_waits.wait(WAIT)
    with pytest.raises(tachyon.TachyonStateError, match="another event loop"):
        asyncio.run(lis.recv_async(timeout=1))
    con.send(b"for the first")
    t.join(WAIT)
    assert outcome["first"] == b"for the first"


def test_arm_refuses_a_side_that_waits_in_another_thread(pair):
    lis, con = pair
    t = threading.Thread(target=lambda: lis.recv(timeout=WAIT))
    t.start()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:  # until the thread is inside its wait
        try:
            lis.arm(tachyon.WAIT_RX)
        except tachyon.TachyonStateError as e:
            assert "another thread is receiving" in str(e)
            break
        time.sleep(0.001)
    else:
        pytest.fail("arm never saw the receiving thread")
    con.send(b"done")
    t.join(WAIT)


# ---- a peer that cannot signal -------------------------------------------------------


def test_a_plain_v4_producer_is_read_through_the_timer(sock_path, run):
    """The published library's producer never writes our eventfd: the
    descriptor's 1 ms tick is what wakes the loop, and nothing is lost."""
    peer = PlainV4Producer(sock_path)
    bus = tachyon.Bus.connect(sock_path, timeout=WAIT)
    try:
        peer.wait_connected()
        assert bus.stats().features == 0  # no extensions: a plain v4 peer

        async def consume():
            loop = asyncio.get_running_loop()
            got = []
            for i in range(30):
                loop.call_later(0.003, peer.send, SEQ.pack(i), 5)
                msg = await bus.recv_async(timeout=WAIT)
                got.append((msg.type_id, SEQ.unpack(msg.data)[0]))
            # A corrupt segment reaches a waiting task through the tick as well.
            loop.call_later(0.003, peer.set_fatal)
            with pytest.raises(tachyon.PeerDeadError) as err:
                await bus.recv_async(timeout=WAIT)
            assert err.value.code_name == "ERR_FATAL"
            return got

        assert run(consume()) == [(5, i) for i in range(30)]
    finally:
        bus.close()
        peer.close()


# ---- statistics ----------------------------------------------------------------------


def test_stats_count_a_known_stream_exactly(pair):
    lis, con = pair
    sizes = [(i % 5) * 10 for i in range(100)]
    for n in sizes:
        con.send(b"\x07" * n, 1)
    got = sum(lis.recv(0).size for _ in range(60))
    p = con.stats()
    assert (p.messages_sent, p.bytes_sent, p.messages_received) == (100, sum(sizes), 0)
    assert p.capacity == con.capacity and p.peer_pid == os.getpid() and p.peer_alive is True
    c = lis.stats()
    assert (c.messages_received, c.bytes_received) == (60, got) and got == sum(sizes[:60])
    assert c.lag_messages == 40
    assert c.messages_sent == 0 and c.state == tachyon.Bus.state.__get__(lis)
    assert c.fill_bytes > 0 and isinstance(c.idle, float) and c.features != 0
    # Read-only, with equality and a repr that names the fields.
    with pytest.raises(AttributeError):
        c.messages_received = 0
    assert c == c and c != p
    assert repr(c).startswith("BusStats(messages_sent=0,") and "lag_messages=40" in repr(c)
    import dataclasses

    assert [f.name for f in dataclasses.fields(tachyon.BusStats)][:2] == ["messages_sent", "bytes_sent"]
    lis.close()
    with pytest.raises(tachyon.ClosedError):
        lis.stats()
