"""Benchmarks of the Python package, printed side by side with the machine
they ran on.

  1. The seed's producer loop exactly as the seed writes it, against its
     no-IPC floor: the same loop writing into a bytearray's memoryview.
  2. The fastest per-message sends against a pure-Python SPSC ring over
     multiprocessing.shared_memory (pyring.py), doing the same work.
  3. send_batch of 32-byte records.
  4. Receive rates by iteration, recv_zero_copy and drain_batch, from a C
     producer (c_peer.c).

Producers send to a C sink (c_peer sink) that drains with the C API, so the
Python side is what is measured. Every figure is the median of --runs runs,
variants interleaved so that background load hits them alike. Run it on an
otherwise idle machine; the figures are printed, never asserted, and with
--out also written to that file (make bench-python: build/bench-results/python.txt).

Usage: python bench.py --peer build/python/c_peer [--runs 5] [--quick] [--out FILE]
"""
import argparse
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import tachyon

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyring  # noqa: E402

FMT = "<8sdIQ4x"  # the seed's MarketTick
TICK = struct.Struct(FMT)
TICK_SIZE = TICK.size
FLUSH_BATCH = 64
SYMBOL = b"BTCUSDT\0"


# ---- the loops measured ------------------------------------------------------


def seed_loop(bus, n):
    """The seed's producer loop, as the seed writes it."""
    symbol = SYMBOL
    t0 = time.perf_counter()
    for i in range(n):
        tick_type = 1 if i % 2 == 0 else 2
        price = 100.0 + (i % 100) * 0.25
        qty = i
        ts = time.time_ns()
        with bus.send_zero_copy(size=TICK_SIZE, type_id=tick_type) as tx:
            with memoryview(tx) as mv:
                struct.pack_into(FMT, mv, 0, symbol, price, qty, ts)
            tx.actual_size = TICK_SIZE
        if (i + 1) % FLUSH_BATCH == 0:
            bus._bus.flush()
    return time.perf_counter() - t0


def floor_loop(buf, n):
    """The same loop with the ring slot replaced by a bytearray's memoryview."""
    symbol = SYMBOL
    t0 = time.perf_counter()
    for i in range(n):
        tick_type = 1 if i % 2 == 0 else 2
        price = 100.0 + (i % 100) * 0.25
        qty = i
        ts = time.time_ns()
        with memoryview(buf) as mv:
            struct.pack_into(FMT, mv, 0, symbol, price, qty, ts)
        if (i + 1) % FLUSH_BATCH == 0:
            pass
    return time.perf_counter() - t0


def packed_loop(sender, n):
    """Per-message send of packed fields: sender.send_packed(Struct, type, *fields)."""
    send_packed = sender.send_packed
    tick = TICK
    symbol = SYMBOL
    t0 = time.perf_counter()
    for i in range(n):
        send_packed(tick, 1, symbol, 100.0, i, i)
    return time.perf_counter() - t0


def bytes_loop(sender, n):
    """Per-message send of a ready-made 32-byte payload: sender.send(bytes, type)."""
    send = sender.send
    payload = TICK.pack(SYMBOL, 100.0, 1, 1)
    t0 = time.perf_counter()
    for i in range(n):
        send(payload, 1)
    return time.perf_counter() - t0


# ---- peers -------------------------------------------------------------------


class Bench:
    """The peers of one benchmark run; their sockets live in a directory of
    the run's own (close() removes it)."""

    def __init__(self, peer):
        self.peer = peer
        self.dir = tempfile.mkdtemp(prefix="tachyon-pybench-")
        self.k = 0

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self):
        self.k += 1
        return os.path.join(self.dir, "b%d.sock" % self.k)

    def to_c_sink(self, fn, n):
        """Run fn(bus, n) against a fresh C sink; check it got n messages."""
        path = self.path()
        sink = subprocess.Popen([self.peer, "sink", path, "listen"],
                                stdout=subprocess.PIPE, text=True)
        with tachyon.Bus.connect(path, timeout=10) as bus:
            secs = fn(bus, n)
            bus.send(bytes(TICK_SIZE), 0)  # sentinel
            bus.flush()
            out = sink.communicate(timeout=60)[0].split()
        got = int(out[1])
        if got < n:
            raise SystemExit("C sink received %d of %d messages" % (got, n))
        return n / secs

    def to_pyring(self, fn, n):
        ring = pyring.RingProducer(nslots=16384)  # 1 MiB of 64-byte slots, as the bus
        drain = subprocess.Popen(
            [sys.executable, pyring.__file__, ring.name, str(ring.nslots)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            secs = fn(ring, n)
            ring.send(bytes(TICK_SIZE), 0)
            got = int(drain.communicate(timeout=60)[0])
        finally:
            drain.kill()
            ring.close()
        if got != n:
            raise SystemExit("pure-Python ring consumer received %d of %d" % (got, n))
        return n / secs

    def from_c_producer(self, receive, n):
        """Rate at which receive(bus) takes n 32-byte messages from c_peer produce."""
        path = self.path()
        prod = subprocess.Popen([self.peer, "produce", path, str(n), "32"],
                                stdout=subprocess.DEVNULL)
        try:
            with tachyon.Bus.listen(path, 1 << 20, timeout=10) as bus:
                t0 = time.perf_counter()
                got = receive(bus)
                secs = time.perf_counter() - t0
        finally:
            prod.wait(30)
        if got != n:
            raise SystemExit("received %d of %d" % (got, n))
        return n / secs


def recv_iter(bus):
    n = 0
    for msg in bus:
        if msg.type_id == 0:
            return n
        n += 1


def recv_zero_copy(bus):
    n = 0
    recv = bus.recv_zero_copy
    while True:
        with recv() as rx:
            if rx.type_id == 0:
                return n
            n += 1


def recv_batch(bus):
    n = 0
    drain = bus.drain_batch
    while True:
        with drain(1024) as batch:
            for item in batch:
                if item.type_id == 0:
                    return n
                n += 1


# ---- driver ------------------------------------------------------------------


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return "%s, %d cores, Linux %s, Python %s, load %.2f" % (
        model, os.cpu_count(), platform.release(), platform.python_version(), load)


def medians(runs, cases):
    """Run each case `runs` times, interleaved; return {name: median rate}."""
    rates = {name: [] for name, _ in cases}
    for _ in range(runs):
        for name, run in cases:
            rates[name].append(run())
    return {name: statistics.median(v) for name, v in rates.items()}


def line(label, rate, extra=""):
    print("  %-46s %8.3f M msg/s  %s" % (label, rate / 1e6, extra))


class Tee:
    """Everything printed goes to the terminal and to the --out file."""

    def __init__(self, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.file = open(path, "w")
        self.stdout = sys.stdout

    def write(self, text):
        self.stdout.write(text)
        self.file.write(text)

    def flush(self):
        self.stdout.flush()
        self.file.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", required=True, help="the c_peer program")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer messages (a smoke test)")
    ap.add_argument("--sections", default="1,2,3,4", help="which of the four to run")
    ap.add_argument("--out", help="also write the report to this file")
    args = ap.parse_args()
    tee = Tee(args.out) if args.out else None
    if tee:
        sys.stdout = tee
    b = Bench(os.path.abspath(args.peer))
    try:
        run_sections(b, args)
    finally:
        b.close()
        if tee:
            sys.stdout = tee.stdout
            tee.file.close()
    if tee:
        print("written to " + args.out)


def run_sections(b, args):
    scale = 10 if args.quick else 1
    n_seed, n_send, n_batch, n_recv = (500_000 // scale, 1_000_000 // scale,
                                       4_000_000 // scale, 1_000_000 // scale)

    print("tachyon-ipc %s Python benchmarks (median of %d runs)" % (tachyon.__version__, args.runs))
    print("machine: " + machine())

    sections = set(args.sections.split(","))
    if "1" in sections:
        seed_vs_floor(b, args.runs, n_seed)
    if "2" in sections:
        per_message(b, args.runs, n_send)
    if "3" in sections:
        batch_send(b, args.runs, n_batch)
    if "4" in sections:
        receive(b, args.runs, n_recv)
    print("\nmachine: " + machine())


def seed_vs_floor(b, runs, n_seed):
    print("\n1. The seed's producer loop (%d MarketTicks, 32 B) vs its no-IPC floor" % n_seed)
    buf = bytearray(TICK_SIZE)
    cases = [
        ("floor", lambda: n_seed / floor_loop(buf, n_seed)),
        ("seed", lambda: b.to_c_sink(seed_loop, n_seed)),
    ]
    r = medians(runs, cases)
    line("floor: same loop into a bytearray memoryview", r["floor"])
    line("seed loop: send_zero_copy into the ring", r["seed"],
         "ratio %.2fx of the floor" % (r["seed"] / r["floor"]))



def per_message(b, runs, n_send):
    print("\n2. Per-message send (%d x 32 B) vs a pure-Python SPSC ring (pyring.py)" % n_send)
    r = medians(runs, [
        ("t_packed", lambda: b.to_c_sink(packed_loop, n_send)),
        ("p_packed", lambda: b.to_pyring(packed_loop, n_send)),
        ("t_bytes", lambda: b.to_c_sink(bytes_loop, n_send)),
        ("p_bytes", lambda: b.to_pyring(bytes_loop, n_send)),
    ])
    line("pure-Python ring: pack fields into the slot", r["p_packed"])
    line("tachyon bus.send_packed(Struct, type, *fields)", r["t_packed"],
         "ratio %.2fx the ring" % (r["t_packed"] / r["p_packed"]))
    line("pure-Python ring: copy a bytes payload", r["p_bytes"])
    line("tachyon bus.send(bytes, type)", r["t_bytes"],
         "ratio %.2fx the ring" % (r["t_bytes"] / r["p_bytes"]))



def batch_send(b, runs, n_batch):
    print("\n3. send_batch of 32-byte records (%d records per call)" % n_batch)
    records = bytearray(32 * n_batch)
    for i in range(0, n_batch, 4096):
        struct.pack_into("<Q", records, 32 * i, i)

    def batch(bus, n):
        t0 = time.perf_counter()
        sent = bus.send_batch(records, 32, 1)
        assert sent == n
        return time.perf_counter() - t0

    r = medians(runs, [("batch", lambda: b.to_c_sink(batch, n_batch))])
    line("bus.send_batch(buffer, 32, type)", r["batch"])



def receive(b, runs, n_recv):
    print("\n4. Receive from a C producer (%d x 32 B)" % n_recv)
    r = medians(runs, [
        ("iter", lambda: b.from_c_producer(recv_iter, n_recv)),
        ("zc", lambda: b.from_c_producer(recv_zero_copy, n_recv)),
        ("batch", lambda: b.from_c_producer(recv_batch, n_recv)),
    ])
    line("for msg in bus (copies)", r["iter"])
    line("with bus.recv_zero_copy() as rx", r["zc"])
    line("with bus.drain_batch() as batch: for item in batch", r["batch"])


if __name__ == "__main__":
    main()
