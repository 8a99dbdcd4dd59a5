"""Fan-out and fan-in from Python: every reader sees every message, joins and
leaves at any point, both slow-reader policies (with the exact count of what
a dropped reader missed), kill -9 of either side, round robin with the
sender's identity, Ctrl-C in blocking calls, zero-copy guards, and a plain
bus meeting a fan socket. Peers run in separate interpreters (subprocess):
a fan listener runs a thread, and those processes are not forked."""
import os
import signal
import struct
import subprocess
import sys
import time

import pytest

import tachyon

SEQ = struct.Struct("<QQ")  # number, and a value derived from it


def payload(n):
    return SEQ.pack(n, (n * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)


def number(data):
    n, check = SEQ.unpack(data)
    assert check == (n * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF, "damaged message"
    return n


READER = r"""
import struct, sys, tachyon
path, start = sys.argv[1], sys.argv[2]
S = struct.Struct("<QQ")
reader = tachyon.FanOut.connect(path, start=start, timeout=20)
print("joined", flush=True)
first = last = None
count = 0
try:
    for msg in reader:
        n, check = S.unpack(msg.data)
        assert check == (n * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        assert msg.seq == n
        assert last is None or n == last + 1, (last, n)
        first = n if first is None else first
        last = n
        count += 1
    end = "closed"
except tachyon.PeerDeadError:
    end = "dead"
print("result", first, last, count, end, flush=True)
"""

PRODUCER = r"""
import struct, sys, time, tachyon
path, n, die = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
S = struct.Struct("<QQ")
feed = tachyon.FanOut.listen(path, 1 << 16, 4)
print("listening", flush=True)
while feed.consumers < int(sys.argv[4]):
    time.sleep(0.005)
for i in range(n):
    feed.send(S.pack(i, (i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF), type_id=1, timeout=60)
print("sent", flush=True)
if die:
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
feed.close()
"""

FANIN_PRODUCER = r"""
import struct, sys, tachyon, os, signal
path, tag, n, die = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
S = struct.Struct("<QQ")
bus = tachyon.FanIn.connect(path, timeout=20)
for i in range(n):
    bus.send(S.pack(i, (i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF), type_id=tag, timeout=60)
if die:
    os.kill(os.getpid(), signal.SIGKILL)
bus.close()
"""


def spawn(script, *args):
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True
    )


def expect_line(proc, word, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(word):
            return line.split()
    raise AssertionError("child never printed %r (exit %s)" % (word, proc.poll()))


def wait_for(cond, timeout=30):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in %ss" % timeout
        time.sleep(0.005)


def test_every_reader_sees_every_message(sock_path):
    with tachyon.FanOut.listen(sock_path, 1 << 14, max_consumers=4) as feed:
        readers = [spawn(READER, sock_path, "newest") for _ in range(3)]
        for r in readers:
            expect_line(r, "joined")
        wait_for(lambda: feed.consumers == 3)
        for i in range(20000):
            feed.send(payload(i), type_id=1)
    for r in readers:
        assert expect_line(r, "result")[1:] == ["0", "19999", "20000", "closed"]
        assert r.wait(30) == 0


def test_late_joiners_start_at_newest_or_oldest(sock_path):
    with tachyon.FanOut.listen(sock_path, 1 << 16, max_consumers=4) as feed:
        for i in range(10):
            feed.send(payload(i))
        with tachyon.FanOut.connect(sock_path, start="oldest", timeout=5) as old, tachyon.FanOut.connect(
            sock_path, start="newest", timeout=5
        ) as new:
            assert number(old.recv(timeout=5).data) == 0
            assert number(new.recv(timeout=5).data) == 9
            feed.send(payload(10))
            assert number(new.recv(timeout=5).data) == 10
            with pytest.raises(tachyon.TachyonTimeoutError):
                new.recv(timeout=0.05)
            assert [number(old.recv(timeout=5).data) for _ in range(10)] == list(range(1, 11))
        wait_for(lambda: feed.consumers == 0)  # both left: nobody holds the ring
        for i in range(11, 2000):
            feed.send(payload(i), timeout=0)


def test_drop_policy_counts_exactly_what_was_missed(sock_path):
    total = 3000
    with tachyon.FanOut.listen(sock_path, 8192, max_consumers=2, policy="drop") as feed:
        with tachyon.FanOut.connect(sock_path, start="oldest", timeout=5) as slow:
            for i in range(total):
                feed.send(payload(i), timeout=0)  # never waits for the slow reader
            received, expect, overruns = 0, 0, 0
            while True:
                try:
                    msg = slow.recv(timeout=0.2)
                except tachyon.OverrunError as e:
                    assert e.missed > 0
                    expect += e.missed
                    overruns += 1
                    continue
                except tachyon.TachyonTimeoutError:
                    break
                assert number(msg.data) == expect
                expect += 1
                received += 1
            assert overruns >= 1
            assert received + slow.missed_total == total
            assert expect == total


def test_block_policy_waits_then_times_out(sock_path):
    with tachyon.FanOut.listen(sock_path, 4096, max_consumers=2) as feed:
        with tachyon.FanOut.connect(sock_path, timeout=5) as reader:
            sent = 0
            with pytest.raises(tachyon.TachyonTimeoutError):
                while True:
                    feed.send(payload(sent), timeout=0.1)
                    sent += 1
            assert 16 <= sent <= 32
            with pytest.raises(tachyon.RingFullError):
                feed.send(payload(sent), timeout=0)
            # Room comes back as the reader reads (it hands its position back
            # every sixteenth of the ring, and whenever it finds nothing to read).
            assert [number(reader.recv(timeout=5).data) for _ in range(sent)] == list(range(sent))
            with pytest.raises(tachyon.TachyonTimeoutError):
                reader.recv(timeout=0)
            feed.send(payload(sent), timeout=5)


def test_killed_reader_stops_holding_the_producer(sock_path):
    with tachyon.FanOut.listen(sock_path, 4096, max_consumers=2) as feed:
        reader = spawn(
            "import sys, time, tachyon\nr = tachyon.FanOut.connect(sys.argv[1], timeout=20)\n"
            "print('joined', flush=True)\ntime.sleep(600)\n",
            sock_path,
        )
        expect_line(reader, "joined")
        wait_for(lambda: feed.consumers == 1)
        sent = 0
        with pytest.raises(tachyon.RingFullError):
            while True:
                feed.send(payload(sent), timeout=0)
                sent += 1
        reader.kill()
        reader.wait()
        for i in range(200):
            feed.send(payload(sent + i), timeout=60)  # goes on once the dead reader is gone
        assert feed.consumers == 0


def test_killed_producer_is_reported_after_its_last_message(sock_path):
    producer = spawn(PRODUCER, sock_path, 500, 1, 2)
    expect_line(producer, "listening")
    readers = [spawn(READER, sock_path, "oldest") for _ in range(2)]
    for r in readers:
        assert expect_line(r, "result")[1:] == ["0", "499", "500", "dead"]
    producer.wait(30)
    assert producer.returncode == -signal.SIGKILL


def test_fanin_round_robin_identity_and_departures(sock_path):
    counts = {1: 4000, 2: 2500, 3: 3000}
    with tachyon.FanIn.listen(sock_path, 8192, max_producers=4) as sink:
        procs = {tag: spawn(FANIN_PRODUCER, sock_path, tag, n, int(tag == 2)) for tag, n in counts.items()}
        got = {tag: 0 for tag in counts}
        pids = {}
        while got != counts:
            msg = sink.recv(timeout=60)
            assert number(msg.data) == got[msg.type_id]
            assert msg.seq == got[msg.type_id]
            got[msg.type_id] += 1
            pids.setdefault(msg.type_id, msg.pid)
            assert pids[msg.type_id] == msg.pid
        deadline = time.monotonic() + 60
        while len(sink.departures) < 3:  # recorded by the receives that meet them
            assert time.monotonic() < deadline
            with pytest.raises(tachyon.TachyonTimeoutError):
                sink.recv(timeout=0.05)
        by_pid = {d.pid: d for d in sink.departures}
        for tag, proc in procs.items():
            proc.wait(30)
            assert pids[tag] == proc.pid
            assert by_pid[proc.pid].dead == (tag == 2)
            assert by_pid[proc.pid].messages == counts[tag]
        assert sink.producers == 0


def test_fanin_alternates_between_busy_producers(sock_path):
    with tachyon.FanIn.listen(sock_path, 8192, max_producers=2) as sink:
        with tachyon.FanIn.connect(sock_path, timeout=5) as a, tachyon.FanIn.connect(sock_path, timeout=5) as b:
            for i in range(20):
                a.send(payload(i), type_id=1)
            for i in range(5):
                b.send(payload(i), type_id=2)
            order = [sink.recv(timeout=5).type_id for _ in range(25)]
            assert order[:10] == [1, 2] * 5
            assert order[10:] == [1] * 15


def test_zero_copy_guards(sock_path):
    with tachyon.FanOut.listen(sock_path, 1 << 14, max_consumers=1) as feed:
        with tachyon.FanOut.connect(sock_path, timeout=5) as reader:
            with feed.send_zero_copy(16, type_id=5) as tx:
                tx.view()[:] = payload(7)
            with pytest.raises(RuntimeError):
                with feed.send_zero_copy(16) as tx:
                    raise RuntimeError("rolled back")
            held = reader.recv_zero_copy(timeout=5)
            with held as msg:
                assert msg.type_id == 5 and msg.seq == 0
                assert number(bytes(memoryview(msg))) == 7
            view = None
            with pytest.raises(BufferError):
                feed.send(payload(8))
                with reader.recv_zero_copy(timeout=5) as msg:
                    view = memoryview(msg)
            view.release()
            with pytest.raises(tachyon.TachyonTimeoutError):
                reader.recv(timeout=0.05)  # the rolled-back slot was never published


def test_plain_bus_refused_at_fan_sockets(sock_path):
    with tachyon.FanOut.listen(sock_path, 4096, max_consumers=1):
        with pytest.raises(tachyon.TachyonError, match="fan-out or fan-in"):
            tachyon.Bus.connect(sock_path)
        with pytest.raises(tachyon.TachyonError):
            tachyon.FanIn.connect(sock_path, timeout=0)
    other = sock_path + "2"
    with tachyon.FanIn.listen(other, 4096, max_producers=1):
        with pytest.raises(tachyon.TachyonError):
            tachyon.Bus.connect(other)
        with pytest.raises(tachyon.TachyonError):
            tachyon.FanOut.connect(other, timeout=0)


CTRL_C = r"""
import sys, time, tachyon
reader = tachyon.FanOut.connect(sys.argv[1], timeout=20)
print("ready", flush=True)
try:
    reader.recv()
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_in_a_blocking_receive(sock_path):
    with tachyon.FanOut.listen(sock_path, 4096, max_consumers=1) as feed:
        child = spawn(CTRL_C, sock_path)
        expect_line(child, "ready")
        time.sleep(0.1)
        child.send_signal(signal.SIGINT)
        expect_line(child, "interrupted")
        assert child.wait(30) == 0
        assert feed.max_payload == 4096 // 2 - 64
