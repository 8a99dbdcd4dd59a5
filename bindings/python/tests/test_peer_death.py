"""Peer death, Python side: kill -9 the producer or the consumer
mid-stream, 50 times each. The consumer gets every message the dead producer
committed, then PeerDeadError; the producer gets PeerDeadError; both within
250 ms of the kill, and nothing hangs.

The producer publishes how many messages it has committed in a shared
counter written right after each commit, so after a SIGKILL the consumer
must have received that many, or one more (killed between the commit and
the counter's update)."""
import mmap
import os
import random
import signal
import struct
import time

import pytest

import tachyon
from conftest import FORK, listen

ROUNDS = 50
DETECT_LIMIT = 0.25
SEQ = struct.Struct("<Q")


# publish_count: a child that is killed at any instant publishes its count
# with one 8-byte store into the shared counter. struct.pack_into would not
# do: it clears its target before it writes the value, and a SIGKILL between
# the two leaves 0 there.


def producer_forever(path, counter):
    # A bare fork child: it must never return into pytest.
    try:
        with tachyon.Bus.connect(path, timeout=10) as bus:
            pack = SEQ.pack
            i = 0
            while True:
                bus.send_packed(SEQ, 1, i)
                i += 1
                counter[0:8] = pack(i)  # see publish_count
    finally:
        os._exit(0)


def consumer_until_killed(path, counter):
    try:
        with tachyon.Bus.connect(path, timeout=10) as bus:
            n = 0
            for msg in bus:
                n += 1
                counter[0:8] = SEQ.pack(n)  # see publish_count
    finally:
        os._exit(0)


def fork_child(fn, *args):
    pid = os.fork()
    if pid == 0:
        fn(*args)
        os._exit(0)
    return pid


def kill_and_reap(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def test_kill_producer_mid_stream(sock_path):
    rng = random.Random(1)
    counter = mmap.mmap(-1, 8)
    detect = []
    for rnd in range(ROUNDS):
        SEQ.pack_into(counter, 0, 0)
        pid = fork_child(producer_forever, sock_path, counter)
        try:
            with listen(sock_path, 1 << 14) as bus:
                stop_after = rng.randrange(1, 20_000)
                expected = 0
                killed_at = None
                with pytest.raises(tachyon.PeerDeadError):
                    for msg in bus:
                        seq = SEQ.unpack(msg.data)[0]
                        assert seq == expected, "round %d: gap or duplicate" % rnd
                        expected += 1
                        if expected == stop_after:
                            os.kill(pid, signal.SIGKILL)
                            killed_at = time.monotonic()
                detect.append(time.monotonic() - killed_at)
                committed = SEQ.unpack_from(counter)[0]
                assert committed <= expected <= committed + 1, (rnd, committed, expected)
        finally:
            kill_and_reap(pid)
    print("detection: median %.1f ms, max %.1f ms" % (1e3 * sorted(detect)[len(detect) // 2], 1e3 * max(detect)))
    assert max(detect) < DETECT_LIMIT, sorted(detect)[-5:]


def test_kill_consumer_mid_stream(sock_path):
    rng = random.Random(2)
    counter = mmap.mmap(-1, 8)
    detect = []
    for rnd in range(ROUNDS):
        SEQ.pack_into(counter, 0, 0)
        pid = fork_child(consumer_until_killed, sock_path, counter)
        try:
            with listen(sock_path, 1 << 14) as bus:
                kill_after = rng.randrange(1, 20_000)
                killed_at = None
                i = 0
                with pytest.raises(tachyon.PeerDeadError):
                    while True:
                        bus.send_packed(SEQ, 1, i)
                        i += 1
                        if killed_at is None and i >= kill_after and SEQ.unpack_from(counter)[0] > 0:
                            os.kill(pid, signal.SIGKILL)
                            killed_at = time.monotonic()
                        if killed_at is not None and time.monotonic() - killed_at > 5:
                            pytest.fail("round %d: producer never learned the consumer died" % rnd)
                detect.append(time.monotonic() - killed_at)
        finally:
            kill_and_reap(pid)
    print("detection: median %.1f ms, max %.1f ms" % (1e3 * sorted(detect)[len(detect) // 2], 1e3 * max(detect)))
    assert max(detect) < DETECT_LIMIT, sorted(detect)[-5:]


def test_clean_close_is_peer_dead_after_the_last_message(sock_path):
    def producer(path, conn):
        with tachyon.Bus.connect(path, timeout=10) as bus:
            for i in range(1000):
                bus.send(SEQ.pack(i), 1)
            conn.recv()  # the consumer is attached and reading

    conn, child_conn = FORK.Pipe()
    p = FORK.Process(target=producer, args=(sock_path, child_conn))
    p.start()
    try:
        with listen(sock_path) as bus:
            first = bus.recv(timeout=10)
            conn.send("go")
            rest = []
            with pytest.raises(tachyon.PeerDeadError):
                while True:
                    rest.append(SEQ.unpack(bus.recv(timeout=10).data)[0])
        assert SEQ.unpack(first.data)[0] == 0 and rest == list(range(1, 1000))
    finally:
        p.join(10)
        p.kill()


POLL_ROUNDS = 20


def poll_once(bus, poll, seqs):
    """One non-blocking receive (timeout=0); the sequence numbers it got."""
    try:
        if poll == "recv":
            seqs.append(SEQ.unpack(bus.recv(timeout=0).data)[0])
        else:
            with bus.drain_batch(timeout=0) as batch:
                seqs.extend(SEQ.unpack_from(item)[0] for item in batch)
    except tachyon.TachyonTimeoutError:
        pass  # nothing yet


@pytest.mark.parametrize("poll", ["recv", "drain_batch"])
def test_polling_consumer_sees_a_killed_producer(sock_path, poll):
    """recv(timeout=0) / drain_batch(timeout=0) in a loop: after kill -9 of
    the producer, every message it committed, then PeerDeadError (not
    PeerClosedError) within 250 ms."""
    rng = random.Random(3)
    counter = mmap.mmap(-1, 8)
    detect = []
    for rnd in range(POLL_ROUNDS):
        SEQ.pack_into(counter, 0, 0)
        pid = fork_child(producer_forever, sock_path, counter)
        try:
            with listen(sock_path, 1 << 14) as bus:
                stop_after = rng.randrange(1, 20_000)
                seqs = []
                killed_at = None
                with pytest.raises(tachyon.PeerDeadError) as ei:
                    while True:
                        poll_once(bus, poll, seqs)
                        if killed_at is None and len(seqs) >= stop_after:
                            os.kill(pid, signal.SIGKILL)
                            killed_at = time.monotonic()
                detect.append(time.monotonic() - killed_at)
                assert not isinstance(ei.value, tachyon.PeerClosedError)
                assert ei.value.code_name == "ERR_PEER_DEAD" and "pid %d" % pid in str(ei.value)
                assert seqs == list(range(len(seqs))), "round %d: gap or duplicate" % rnd
                committed = SEQ.unpack_from(counter)[0]
                assert committed <= len(seqs) <= committed + 1, (rnd, committed, len(seqs))
        finally:
            kill_and_reap(pid)
    print("%s detection: median %.1f ms, max %.1f ms"
          % (poll, 1e3 * sorted(detect)[len(detect) // 2], 1e3 * max(detect)))
    assert max(detect) < DETECT_LIMIT, sorted(detect)[-5:]


@pytest.mark.parametrize("poll", ["recv", "drain_batch"])
def test_polling_consumer_sees_a_clean_close(sock_path, poll):
    def producer(path, conn):
        with tachyon.Bus.connect(path, timeout=10) as bus:
            for i in range(5000):
                bus.send(SEQ.pack(i), 1)

    conn, child_conn = FORK.Pipe()
    p = FORK.Process(target=producer, args=(sock_path, child_conn))
    p.start()
    try:
        with listen(sock_path) as bus:
            seqs = []
            with pytest.raises(tachyon.PeerClosedError, match="closed the bus"):
                while True:
                    poll_once(bus, poll, seqs)
        assert seqs == list(range(5000))
    finally:
        p.join(10)
        p.kill()
