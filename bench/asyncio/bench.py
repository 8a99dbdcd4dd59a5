"""Event-loop consumers, measured in one run (make bench-asyncio):

1. One-way latency at a fixed rate (32-byte messages stamped with
   CLOCK_MONOTONIC by a paced producer process): an asyncio consumer of a bus
   (``async for``), the same on uvloop, an asyncio consumer of a Unix socket
   (StreamReader.readexactly) on each loop, and the blocking consumer
   (``for msg in bus``). Every message must arrive, in order.
2. Throughput of a consumer draining a producer that is faster than it (a C
   producer for the bus, a Python process writing 64 KiB chunks for the
   socket): blocking per message and by batch, asyncio per message and by
   batch (drain_batch_async), asyncio socket per record and by chunk.
3. CPU used by a consumer waiting on an idle bus: asyncio and blocking.

Variants take turns, round after round, so background load hits them alike;
the figures are medians over rounds. Results go to build/bench/asyncio/.
Run it on an otherwise idle machine; the load average is printed.
"""
import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import tachyon

HERE = os.path.abspath(__file__)
MSG = struct.Struct("<QQQQ")  # seq, send time (monotonic ns), 2 words of padding: 32 bytes

try:
    import uvloop
except ImportError:
    uvloop = None


def run_loop(coro, kind):
    loop = uvloop.new_event_loop() if kind.endswith("uvloop") else asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


# ---- producers (child processes) -------------------------------------------------------


def connect_socket(path):
    deadline = time.monotonic() + 10
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.002)


def producer_paced(transport, path, rate, count):
    """Send `count` stamped messages, one every 1/rate s (spinning on the clock)."""
    if transport == "bus":
        bus = tachyon.Bus.connect(path, timeout=10)
        send = lambda seq: bus.send_packed(MSG, 1, seq, time.monotonic_ns(), 0, 0)  # noqa: E731
    else:
        sock = connect_socket(path)
        send = lambda seq: sock.sendall(MSG.pack(seq, time.monotonic_ns(), 0, 0))  # noqa: E731
    time.sleep(0.2)  # the consumer is in its loop by then
    period = int(1e9 / rate)
    due = time.monotonic_ns()
    for seq in range(count):
        due += period
        while time.monotonic_ns() < due:
            pass
        send(seq)
    time.sleep(0.05)
    (bus.close if transport == "bus" else sock.close)()


def producer_socket_flood(path, count):
    sock = connect_socket(path)
    chunk_records = 2048
    chunk = b"".join(MSG.pack(i, 0, 0, 0) for i in range(chunk_records))
    sent = 0
    while sent < count:
        n = min(chunk_records, count - sent)
        sock.sendall(chunk if n == chunk_records else chunk[: n * MSG.size])
        sent += n
    sock.close()


def producer_idle(path, seconds):
    with tachyon.Bus.connect(path, timeout=10):
        time.sleep(seconds)


# ---- consumers (child processes) ----------------------------------------------------------


async def bus_latency_async(path, count):
    bus = await asyncio.to_thread(tachyon.Bus.listen, path, 1 << 16, timeout=30)
    lat, seq = [], 0
    cpu0 = None
    async for msg in bus:
        now = time.monotonic_ns()
        if cpu0 is None:
            cpu0 = time.process_time()
        s, stamp, _, _ = MSG.unpack(msg.data)
        assert s == seq, "lost or reordered at %d" % seq
        seq += 1
        lat.append(now - stamp)
    bus.close()
    return lat, time.process_time() - cpu0


async def socket_latency_async(path, count):
    got = asyncio.get_running_loop().create_future()

    async def on_client(reader, writer):
        lat = []
        cpu0 = None
        for seq in range(count):
            data = await reader.readexactly(MSG.size)
            now = time.monotonic_ns()
            if cpu0 is None:
                cpu0 = time.process_time()
            s, stamp, _, _ = MSG.unpack(data)
            assert s == seq, "lost or reordered at %d" % seq
            lat.append(now - stamp)
        writer.close()
        got.set_result((lat, time.process_time() - cpu0))

    server = await asyncio.start_unix_server(on_client, path)
    try:
        return await got
    finally:
        server.close()


def bus_latency_blocking(path, count):
    lat, seq = [], 0
    cpu0 = None
    with tachyon.Bus.listen(path, 1 << 16, timeout=30) as bus:
        for msg in bus:
            now = time.monotonic_ns()
            if cpu0 is None:
                cpu0 = time.process_time()
            s, stamp, _, _ = MSG.unpack(msg.data)
            assert s == seq, "lost or reordered at %d" % seq
            seq += 1
            lat.append(now - stamp)
    return lat, time.process_time() - cpu0


async def bus_throughput_async(path, count, batch):
    bus = await asyncio.to_thread(tachyon.Bus.listen, path, 1 << 20, timeout=30)
    n = 0
    first = None
    if batch:
        while True:
            b = await bus.drain_batch_async(1024)
            with b:
                if first is None:
                    first = time.perf_counter()
                for m in b:
                    if m.type_id == 0:
                        return n, time.perf_counter() - first, bus
                    n += 1
    async for m in bus:
        if first is None:
            first = time.perf_counter()
        if m.type_id == 0:
            return n, time.perf_counter() - first, bus
        n += 1


def bus_throughput_blocking(path, count, batch):
    bus = tachyon.Bus.listen(path, 1 << 20, timeout=30)
    n = 0
    first = None
    if batch:
        while True:
            with bus.drain_batch(1024) as b:
                if first is None:
                    first = time.perf_counter()
                for m in b:
                    if m.type_id == 0:
                        return n, time.perf_counter() - first, bus
                    n += 1
    for m in bus:
        if first is None:
            first = time.perf_counter()
        if m.type_id == 0:
            return n, time.perf_counter() - first, bus
        n += 1


async def socket_throughput_async(path, count, batch):
    got = asyncio.get_running_loop().create_future()

    async def on_client(reader, writer):
        n, first = 0, None
        if batch:
            pending = b""
            while n < count:
                data = await reader.read(1 << 16)
                if first is None:
                    first = time.perf_counter()
                data = pending + data
                whole = len(data) - len(data) % MSG.size
                for _rec in MSG.iter_unpack(memoryview(data)[:whole]):
                    n += 1
                pending = data[whole:]
        else:
            while n < count:
                data = await reader.readexactly(MSG.size)
                if first is None:
                    first = time.perf_counter()
                MSG.unpack(data)
                n += 1
        writer.close()
        got.set_result((n, time.perf_counter() - first))

    server = await asyncio.start_unix_server(on_client, path)
    try:
        return await got
    finally:
        server.close()


async def bus_idle_async(path, seconds):
    bus = await asyncio.to_thread(tachyon.Bus.listen, path, 1 << 16, timeout=30)
    c0, t0 = time.process_time(), time.monotonic()
    try:
        await bus.recv_async(timeout=seconds)
    except tachyon.TachyonTimeoutError:
        pass
    cpu, wall = time.process_time() - c0, time.monotonic() - t0
    bus.close()
    return cpu, wall


def bus_idle_blocking(path, seconds):
    with tachyon.Bus.listen(path, 1 << 16, timeout=30) as bus:
        c0, t0 = time.process_time(), time.monotonic()
        try:
            bus.recv(timeout=seconds)
        except tachyon.TachyonTimeoutError:
            pass
        return time.process_time() - c0, time.monotonic() - t0


def child_main(argv):
    """python bench.py --role ROLE ...: one side of one measurement."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", required=True)
    ap.add_argument("--kind", default="")
    ap.add_argument("--path", required=True)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--seconds", type=float, default=0)
    a = ap.parse_args(argv)
    out = {}
    if a.role == "producer-paced":
        producer_paced(a.kind, a.path, a.rate, a.count)
    elif a.role == "producer-socket-flood":
        producer_socket_flood(a.path, a.count)
    elif a.role == "producer-idle":
        producer_idle(a.path, a.seconds)
    elif a.role == "latency":
        if a.kind == "bus-blocking":
            lat, cpu = bus_latency_blocking(a.path, a.count)
        elif a.kind.startswith("bus"):
            lat, cpu = run_loop(bus_latency_async(a.path, a.count), a.kind)
        else:
            lat, cpu = run_loop(socket_latency_async(a.path, a.count), a.kind)
        lat.sort()
        out = {"received": len(lat), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "p999": pct(lat, 0.999),
               "max": lat[-1] / 1e3, "cpu": cpu / len(lat) * 1e6}
    elif a.role == "throughput":
        batch = a.kind.endswith("batch") or "batch-" in a.kind
        if a.kind.startswith("bus-blocking"):
            n, secs, bus = bus_throughput_blocking(a.path, a.count, batch)
            bus.close()
        elif a.kind.startswith("bus"):
            n, secs, bus = run_loop(bus_throughput_async(a.path, a.count, batch), a.kind)
            bus.close()
        else:
            n, secs = run_loop(socket_throughput_async(a.path, a.count, batch), a.kind)
        out = {"received": n, "seconds": secs}
    elif a.role == "idle":
        if a.kind == "bus-blocking":
            cpu, wall = bus_idle_blocking(a.path, a.seconds)
        else:
            cpu, wall = run_loop(bus_idle_async(a.path, a.seconds), a.kind)
        out = {"cpu": cpu, "wall": wall}
    print(json.dumps(out), flush=True)


# ---- the parent: rounds, figures, report --------------------------------------------------


def spawn(role, **kw):
    args = [sys.executable, HERE, "--role", role]
    for k, v in kw.items():
        args += ["--" + k, str(v)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def finish(consumer, producer, what):
    out, _ = consumer.communicate(timeout=600)
    if producer is not None:
        producer.wait(600)
    if consumer.returncode != 0 or (producer is not None and producer.returncode != 0):
        raise SystemExit("bench-asyncio: %s failed (consumer %s, producer %s)"
                         % (what, consumer.returncode, producer and producer.returncode))
    return json.loads(out.strip().splitlines()[-1])


def pct(sorted_ns, q):
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * q))] / 1e3


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
    return "%s, %d cores, Linux %s, Python %s, uvloop %s" % (
        model, os.cpu_count(), platform.release(), platform.python_version(),
        uvloop.__version__ if uvloop else "not installed")


def loads():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def latency_section(workdir, rounds, rate, count, report):
    kinds = ["bus-asyncio", "socket-asyncio", "bus-blocking"]
    if uvloop:
        kinds[2:2] = ["bus-uvloop", "socket-uvloop"]
    res = {k: [] for k in kinds}
    for r in range(rounds):
        for k in kinds:
            path = os.path.join(workdir, "lat-%s-%d.sock" % (k, r))
            consumer = spawn("latency", kind=k, path=path, count=count)
            producer = spawn("producer-paced", kind="bus" if k.startswith("bus") else "socket",
                             path=path, rate=rate, count=count)
            out = finish(consumer, producer, "latency " + k)
            if out["received"] != count:
                raise SystemExit("bench-asyncio: %s received %d of %d" % (k, out["received"], count))
            res[k].append({q: out[q] for q in ("p50", "p99", "p999", "max", "cpu")})
    report("1. One-way latency at %d msg/s, %d messages a round, %d rounds (median of the rounds' "
           "percentiles, us); every message arrived, in order" % (rate, count, rounds))
    report("   %-34s %9s %9s %9s %9s %12s" % ("consumer", "p50", "p99", "p99.9", "max", "CPU us/msg"))
    names = {"bus-asyncio": "bus, asyncio (async for)", "bus-uvloop": "bus, uvloop (async for)",
             "socket-asyncio": "Unix socket, asyncio (readexactly)",
             "socket-uvloop": "Unix socket, uvloop (readexactly)", "bus-blocking": "bus, blocking (for msg in bus)"}
    summary = {}
    for k in kinds:
        med = {q: statistics.median(x[q] for x in res[k]) for q in ("p50", "p99", "p999", "max", "cpu")}
        summary[k] = med
        report("   %-34s %9.1f %9.1f %9.1f %9.1f %12.1f"
               % (names[k], med["p50"], med["p99"], med["p999"], med["max"], med["cpu"]))
    for loop in ("asyncio", "uvloop"):
        b, s = summary.get("bus-" + loop), summary.get("socket-" + loop)
        if b and s:
            report("   %s: bus / socket  p50 %.2fx, p99 %.2fx (below 1: the bus is faster); "
                   "rounds where the bus had the lower p50: %d of %d, lower p99: %d of %d"
                   % (loop, b["p50"] / s["p50"], b["p99"] / s["p99"],
                      sum(x["p50"] < y["p50"] for x, y in zip(res["bus-" + loop], res["socket-" + loop])), rounds,
                      sum(x["p99"] < y["p99"] for x, y in zip(res["bus-" + loop], res["socket-" + loop])), rounds))
    return {"rate": rate, "count": count, "rounds": res, "median": summary}


def throughput_section(workdir, rounds, count, peer, report):
    kinds = ["bus-blocking", "bus-blocking-batch", "bus-asyncio", "bus-asyncio-batch",
             "socket-asyncio", "socket-asyncio-batch"]
    if uvloop:
        kinds += ["bus-uvloop-batch", "socket-uvloop-batch"]
    res = {k: [] for k in kinds}
    for r in range(rounds):
        for k in kinds:
            path = os.path.join(workdir, "tp-%s-%d.sock" % (k, r))
            n = count if ("batch" in k or k == "bus-blocking") else count // 4
            consumer = spawn("throughput", kind=k, path=path, count=n)
            if k.startswith("bus"):
                time.sleep(0.1)
                producer = subprocess.Popen([peer, "produce", path, str(n), str(MSG.size), "connect"],
                                            stdout=subprocess.DEVNULL)
            else:
                producer = spawn("producer-socket-flood", path=path, count=n)
            out = finish(consumer, producer, "throughput " + k)
            if out["received"] != n:
                raise SystemExit("bench-asyncio: %s received %d of %d" % (k, out["received"], n))
            res[k].append(n / out["seconds"] / 1e6)
    names = {"bus-blocking": "bus, blocking, per message (for msg in bus)",
             "bus-blocking-batch": "bus, blocking, drain_batch",
             "bus-asyncio": "bus, asyncio, per message (async for)",
             "bus-asyncio-batch": "bus, asyncio, drain_batch_async",
             "bus-uvloop-batch": "bus, uvloop, drain_batch_async",
             "socket-asyncio": "Unix socket, asyncio, readexactly(32)",
             "socket-asyncio-batch": "Unix socket, asyncio, read(64 KiB)",
             "socket-uvloop-batch": "Unix socket, uvloop, read(64 KiB)"}
    report("2. Consumer throughput, 32-byte messages from a faster producer, %d rounds (median M msg/s)" % rounds)
    med = {k: statistics.median(res[k]) for k in kinds}
    for k in kinds:
        report("   %-46s %7.2f   (rounds: %s)" % (names[k], med[k], " ".join("%.2f" % x for x in res[k])))
    report("   asyncio drain_batch_async / blocking per message: %.2fx; / blocking drain_batch: %.2fx"
           % (med["bus-asyncio-batch"] / med["bus-blocking"], med["bus-asyncio-batch"] / med["bus-blocking-batch"]))
    report("   asyncio async for / blocking for msg in bus: %.2fx" % (med["bus-asyncio"] / med["bus-blocking"]))
    return {"count": count, "rounds": res, "median": med}


def idle_section(workdir, rounds, seconds, report):
    kinds = ["bus-asyncio", "bus-blocking"] + (["bus-uvloop"] if uvloop else [])
    res = {k: [] for k in kinds}
    for r in range(rounds):
        for k in kinds:
            path = os.path.join(workdir, "idle-%s-%d.sock" % (k, r))
            consumer = spawn("idle", kind=k, path=path, seconds=seconds)
            producer = spawn("producer-idle", path=path, seconds=seconds + 1)
            out = finish(consumer, producer, "idle " + k)
            res[k].append(100.0 * out["cpu"] / out["wall"])
    report("3. CPU of a consumer waiting on an idle bus for %g s, %d rounds (%% of one core, median)" % (seconds, rounds))
    names = {"bus-asyncio": "asyncio (await recv_async)", "bus-uvloop": "uvloop (await recv_async)",
             "bus-blocking": "blocking (recv)"}
    med = {}
    for k in kinds:
        med[k] = statistics.median(res[k])
        report("   %-30s %7.3f %%   (rounds: %s)" % (names[k], med[k], " ".join("%.3f" % x for x in res[k])))
    return {"seconds": seconds, "rounds": res, "median": med}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--role":
        return child_main(sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", required=True, help="the C peer (build/python/c_peer)")
    ap.add_argument("--out", default="build/bench/asyncio")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--latency-count", type=int, default=20_000)
    ap.add_argument("--throughput-count", type=int, default=2_000_000)
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    lines = []

    def report(line=""):
        print(line, flush=True)
        lines.append(line)

    report("bench-asyncio: %s" % machine())
    report("before: %s" % loads())
    workdir = tempfile.mkdtemp(prefix="tachyon-bench-asyncio-")
    try:
        results = {"machine": machine()}
        results["latency"] = latency_section(workdir, args.rounds, args.rate, args.latency_count, report)
        report()
        results["throughput"] = throughput_section(workdir, args.rounds, args.throughput_count, args.peer, report)
        report()
        results["idle"] = idle_section(workdir, max(3, args.rounds // 2), args.idle_seconds, report)
    finally:
        for f in os.listdir(workdir):
            os.unlink(os.path.join(workdir, f))
        os.rmdir(workdir)
    report("after: %s" % loads())
    results["load"] = os.getloadavg()
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "results.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("written: %s/results.{txt,json}" % args.out)


if __name__ == "__main__":
    main()
