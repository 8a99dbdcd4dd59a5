"""Threads on one bus: one producer thread and one consumer thread may work
at once; close() from any thread ends the calls blocked in the others with
ClosedError (never a crash: each blocked call holds its own reference to the
C handle, so the segment stays mapped until the last one leaves); each
thread sees only its own errors; a second thread on the same side is
refused.

A bus used by both threads of one process is a loopback: what the producer
thread sends, the consumer thread receives."""
import collections
import subprocess
import sys
import threading
import time

import pytest

import tachyon
from conftest import published_pair

CLOSE_TRIALS = r"""
import random, sys, threading, time, tachyon

path, trials, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
records = bytes(32 * 16384)  # 512 KiB: send_batch copies it without the GIL

def open_pair():
    got = {}
    t = threading.Thread(target=lambda: got.update(bus=tachyon.Bus.listen(path, 1 << 14)))
    t.start()
    peer = tachyon.Bus.connect(path, timeout=10)
    t.join()
    return got["bus"], peer

def run(work, outcome):
    try:
        while True:
            work()
    except tachyon.ClosedError as e:
        outcome.append(("closed", time.monotonic(), str(e)))
    except BaseException as e:
        outcome.append(("error", time.monotonic(), repr(e)))

for trial in range(trials):
    bus, peer = open_pair()
    kind = rng.choice(["send_batch", "send", "both"])
    closer = rng.choice(["main", "consumer"])
    out_tx, out_rx = [], []
    closed_at = []

    def produce():
        if kind == "send":
            bus.send(b"x" * 1000, 1, timeout=5)  # fills the ring, then blocks for room
        else:
            bus.send_batch(records, 32, 1, timeout=5)

    rounds = [0]
    def consume():
        if kind == "send" and closer == "main":
            time.sleep(0.001)  # a slow consumer: the producer blocks on a full ring
        with bus.drain_batch(timeout=5) as batch:
            rounds[0] += 1
        if closer == "consumer" and rounds[0] == 3:
            closed_at.append(time.monotonic())
            bus.close()  # from one of the two threads in the library

    threads = [threading.Thread(target=run, args=(produce, out_tx)),
               threading.Thread(target=run, args=(consume, out_rx))]
    for t in threads:
        t.start()
    if closer == "main":
        time.sleep(rng.uniform(0.0, 0.03))
        closed_at.append(time.monotonic())
        bus.close()
    for t in threads:
        t.join(20)
    alive = [t.is_alive() for t in threads]
    peer.close()
    for name, out in (("producer", out_tx), ("consumer", out_rx)):
        what, when, text = out[0]
        if what != "closed":
            print("trial", trial, kind, closer, name, "raised", text, flush=True)
            sys.exit(1)
        print("latency %.4f %s %s" % (when - closed_at[0], name, text), flush=True)
    if any(alive):
        print("trial", trial, "a thread did not return", flush=True)
        sys.exit(1)
print("done", flush=True)
"""

SUBPROCESSES = 10
TRIALS_EACH = 10


def test_close_while_both_threads_are_inside_the_library_never_crashes(sock_path):
    """100 trials, in subprocesses so that a crash shows as a signal: a
    producer thread in send_batch or a blocking send and a consumer thread in
    drain_batch on one bus, closed from the main thread or from the consumer
    thread. Both calls end with ClosedError, within a wait slice."""
    latencies = []
    for k in range(SUBPROCESSES):
        proc = subprocess.run(
            [sys.executable, "-c", CLOSE_TRIALS, sock_path, str(TRIALS_EACH), str(k)],
            capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, "subprocess %d: exit %d (a negative one is a signal)\n%s%s" % (
            k, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
        assert proc.stdout.rstrip().endswith("done")
        for line in proc.stdout.splitlines():
            if line.startswith("latency"):
                latencies.append(float(line.split()[1]))
    assert len(latencies) == 2 * SUBPROCESSES * TRIALS_EACH
    latencies.sort()
    median = latencies[len(latencies) // 2]
    print("close -> ClosedError: median %.1f ms, max %.1f ms" % (1e3 * median, 1e3 * latencies[-1]))
    # Within a wait slice (50 ms); on a loaded machine a thread may wait
    # longer to be scheduled at all, so the bound on the slowest is loose.
    assert median < 0.05
    assert latencies[-1] < 10.0


def fill(bus):
    while True:
        try:
            bus.send(b"x" * 100, 1, timeout=0)
        except tachyon.RingFullError:
            return


def close_under(bus, call):
    """Run call() in a thread until it blocks, close the bus from here: the
    seconds from close() to the call's ClosedError, and its message."""
    result = []
    calling = threading.Event()

    def run():
        calling.set()
        try:
            call()
        except tachyon.ClosedError as e:
            result.append((time.monotonic(), str(e)))

    t = threading.Thread(target=run)
    t.start()
    calling.wait(10)
    time.sleep(0.3)  # well inside the wait by now
    closed = time.monotonic()
    bus.close()
    t.join(10)
    assert result, "the blocked call did not end with ClosedError"
    return result[0][0] - closed, result[0][1]


def test_close_ends_a_blocked_send_and_a_blocked_receive(sock_path):
    rx_bus, tx_bus = published_pair(sock_path, 4096)
    fill(tx_bus)  # nobody reads: the next send waits for room
    latency, text = close_under(tx_bus, lambda: tx_bus.send(b"y" * 100, 1, timeout=30))
    assert latency < 10.0 and "closed by another thread" in text
    rx_bus.close()
    rx_bus, tx_bus = published_pair(sock_path, 4096)  # a producer that stays, sending nothing
    latency, text = close_under(rx_bus, lambda: rx_bus.recv(timeout=30))
    assert latency < 10.0 and "closed by another thread" in text
    tx_bus.close()


def test_each_thread_sees_only_its_own_errors(sock_path):
    """A producer thread that keeps finding the ring full and a consumer
    thread that keeps finding it empty, at the same time, on one bus: the
    producer only ever gets ERR_FULL, the consumer only ERR_TIMEOUT, each
    with its own sentence."""
    bus, peer = published_pair(sock_path, 4096)
    seen = {"tx": collections.Counter(), "rx": collections.Counter()}
    texts = {"tx": set(), "rx": set()}
    enough = 20  # errors each side must have seen (both run until then)
    give_up = time.monotonic() + 60

    def running():
        return (sum(seen["tx"].values()) < enough or sum(seen["rx"].values()) < enough) and \
            time.monotonic() < give_up

    def producer():
        while running():
            try:
                bus.send(b"p" * 200, 1, timeout=0.001)
            except tachyon.TachyonError as e:
                seen["tx"][e.code_name] += 1
                texts["tx"].add(str(e).split(";")[0])
                time.sleep(0.001)

    def consumer():
        while running():
            try:
                bus.recv(timeout=0.001)
            except tachyon.TachyonError as e:
                seen["rx"][e.code_name] += 1
                texts["rx"].add(str(e).split(";")[0])
                time.sleep(0.002)

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    bus.close()
    peer.close()
    assert set(seen["tx"]) == {"ERR_FULL"}, seen
    assert set(seen["rx"]) == {"ERR_TIMEOUT"}, seen
    assert all("full" in t for t in texts["tx"]), texts
    assert all("no message" in t for t in texts["rx"]), texts


PRODUCER_SIDE = (
    lambda bus: bus.send(b"z", 1, timeout=0),
    lambda bus: bus.send_zero_copy(8, 1, timeout=0),
    lambda bus: bus.send_batch(b"12345678", 8),
    lambda bus: bus._bus.acquire_tx(8),
    lambda bus: bus.flush(),
    lambda bus: bus._bus.flush(),
)
CONSUMER_SIDE = (
    lambda bus: bus.recv(timeout=0),
    lambda bus: bus.recv_zero_copy(timeout=0),
    lambda bus: bus.drain_batch(timeout=0),
    lambda bus: bus._bus.acquire_rx(timeout=0),
    lambda bus: bus._bus.drain_batch(timeout=0),
    lambda bus: next(bus),
)


def refused_while_waiting(bus, wait, calls):
    """While a thread waits inside the library on one side of `bus`, every
    call on that side from another thread is refused; calls any thread may
    make still work."""
    errors = []
    t = threading.Thread(target=lambda: errors.append(pytest.raises(tachyon.TachyonTimeoutError, wait)))
    t.start()
    deadline = time.monotonic() + 2
    while True:  # until the waiting thread is inside the library
        try:
            calls[0](bus)
        except tachyon.TachyonStateError:
            break
        except tachyon.TachyonTimeoutError:
            assert time.monotonic() < deadline, "the other thread never started waiting"
            time.sleep(0.01)
    for call in calls:
        with pytest.raises(tachyon.TachyonStateError, match="another thread") as ei:
            call(bus)
        assert isinstance(ei.value, RuntimeError)
    assert bus.peer_alive() and bus.state == 2
    bus.set_polling_mode(0)
    t.join(10)
    assert errors


def test_a_second_thread_on_the_same_side_is_refused(sock_path):
    rx_bus, tx_bus = published_pair(sock_path, 4096)
    with rx_bus, tx_bus:
        fill(tx_bus)
        refused_while_waiting(tx_bus, lambda: tx_bus.send(b"y" * 100, 1, timeout=3), PRODUCER_SIDE)
        tx_bus.flush()  # the producer side is free again
        with rx_bus.drain_batch(timeout=5):
            pass
        refused_while_waiting(rx_bus, lambda: rx_bus.recv(timeout=3), CONSUMER_SIDE)
        tx_bus.send(b"ok", 3)
        assert rx_bus.recv(timeout=5).data == b"ok"  # the consumer side is free again
