"""Request/reply round trips between two Python processes, side by side in
one run: Tachyon's RPC (the low-level calls, and RpcEndpoint.call against an
RpcDispatcher), ZeroMQ REQ/REP over ipc://, and a Unix stream socket, for
32-byte and 1 KiB requests (each answered with a reply of the same size).

Each server echoes the request. Caller and server are pinned to CPUs 0 and 1;
every round trip is timed with perf_counter_ns. Figures are medians over
--runs runs, the variants interleaved so that background load hits them
alike; they are printed (and, with --out, written as JSON), never asserted.

Usage: python rpc_bench.py [--rounds 20000] [--runs 3] [--out build/bench/rpc_python.json]
"""
import argparse
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import tempfile
import time

import tachyon
import zmq

FORK = multiprocessing.get_context("fork")
SIZES = (32, 1024)
WARMUP = 2000
RING = 1 << 16


def pin(cpu):
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {cpu % os.cpu_count()})


# ---- servers (child processes): echo `count` requests, then leave -------------


def tachyon_server(path, count, ready):
    pin(1)
    ready.set()  # the caller retries until the listener is there
    bus = tachyon.RpcBus.rpc_listen(path, RING, RING, timeout=30)
    for _ in range(count):
        with bus.serve() as rq:
            cid, mt, data = rq.correlation_id, rq.type_id, bytes(rq)
        bus.reply(cid, data, mt)
    bus.destroy()


def dispatcher_server(path, count, ready):
    pin(1)
    dispatcher = tachyon.RpcDispatcher()
    dispatcher.handler(1)(lambda request: request)  # a view: copied before the request is released
    ready.set()
    bus = tachyon.RpcBus.rpc_listen(path, RING, RING, timeout=30)
    for _ in range(count):
        dispatcher.serve_once(bus)
    bus.destroy()


def zmq_server(path, count, ready):
    pin(1)
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    rep.bind("ipc://" + path)
    ready.set()
    for _ in range(count):
        rep.send(rep.recv(copy=True), copy=True)
    rep.close(linger=0)
    ctx.term()


def recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise EOFError("peer closed")
        got += k
    return buf


def unix_server(path, count, ready, size):
    pin(1)
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)
    ready.set()
    conn, _ = lsock.accept()
    for _ in range(count):
        conn.sendall(recv_exact(conn, size))
    conn.close()
    lsock.close()


# ---- callers: n timed round trips -----------------------------------------------


def run_tachyon(path, payload, n):
    bus = tachyon.RpcBus.rpc_connect(path, timeout=30)
    clock = time.perf_counter_ns
    call, wait = bus.call, bus.wait
    times = []
    for i in range(WARMUP + n):
        t0 = clock()
        cid = call(payload, 1)
        with wait(cid) as rx:
            reply = bytes(rx)
        t1 = clock()
        if i >= WARMUP:
            times.append(t1 - t0)
    assert reply == payload
    bus.destroy()
    return times


def run_endpoint(path, payload, n):
    bus = tachyon.RpcBus.rpc_connect(path, timeout=30)
    echo = tachyon.tachyon_rpc(1)(lambda request: request)
    clock = time.perf_counter_ns
    call = echo.call
    times = []
    for i in range(WARMUP + n):
        t0 = clock()
        reply = call(bus, payload)
        t1 = clock()
        if i >= WARMUP:
            times.append(t1 - t0)
    assert reply == payload
    bus.destroy()
    return times


def run_zmq(path, payload, n):
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)
    req.connect("ipc://" + path)
    clock = time.perf_counter_ns
    send, recv = req.send, req.recv
    times = []
    for i in range(WARMUP + n):
        t0 = clock()
        send(payload)
        reply = recv()
        t1 = clock()
        if i >= WARMUP:
            times.append(t1 - t0)
    assert reply == payload
    req.close(linger=0)
    ctx.term()
    return times


def run_unix(path, payload, n):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    clock = time.perf_counter_ns
    size = len(payload)
    times = []
    for i in range(WARMUP + n):
        t0 = clock()
        sock.sendall(payload)
        reply = recv_exact(sock, size)
        t1 = clock()
        if i >= WARMUP:
            times.append(t1 - t0)
    assert reply == payload
    sock.close()
    return times


# key: (label, server, caller)
VARIANTS = {
    "tachyon": ("tachyon rpc (call + wait)", tachyon_server, run_tachyon),
    "tachyon_endpoint": ("tachyon RpcEndpoint.call + RpcDispatcher", dispatcher_server, run_endpoint),
    "zmq": ("zeromq REQ/REP ipc://", zmq_server, run_zmq),
    "unix": ("unix stream socket", unix_server, run_unix),
}


def one_run(name, size, n, workdir):
    _, server_fn, client_fn = VARIANTS[name]
    path = os.path.join(workdir, "b%d.sock" % time.monotonic_ns())
    ready = FORK.Event()
    extra = (size,) if server_fn is unix_server else ()
    server = FORK.Process(target=server_fn, args=(path, WARMUP + n, ready) + extra, daemon=True)
    server.start()
    if not ready.wait(30):
        server.kill()
        raise RuntimeError("%s: the server did not start" % name)
    pin(0)
    try:
        times = client_fn(path, bytes(range(256)) * (size // 256) + bytes(size % 256), n)
    finally:
        server.join(30)
        if server.is_alive():
            server.kill()
    if os.path.exists(path):
        os.unlink(path)
    times.sort()
    pick = lambda p: times[min(len(times) - 1, int(p / 100 * (len(times) - 1) + 0.5))]  # noqa: E731
    return {"p50": pick(50), "p90": pick(90), "p99": pick(99)}


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
    return "%s, %d cores, Linux %s, Python %s, pyzmq %s (libzmq %s)" % (
        model, os.cpu_count() or 0, platform.release(), platform.python_version(), zmq.__version__,
        zmq.zmq_version())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args()
    print("machine: " + machine())
    print("Python <-> Python request/reply round trips: %d per run after %d warm-up, median of %d runs, "
          "pinned to CPUs 0 and 1" % (args.rounds, WARMUP, args.runs))
    results = {}
    with tempfile.TemporaryDirectory(prefix="tachyon-rpc-bench-") as workdir:
        for size in SIZES:
            runs = {name: [] for name in VARIANTS}
            for _ in range(args.runs):
                for name in VARIANTS:  # interleaved
                    runs[name].append(one_run(name, size, args.rounds, workdir))
            results[size] = {
                name: {k: statistics.median(r[k] for r in rs) for k in ("p50", "p90", "p99")}
                for name, rs in runs.items()
            }
    for size in SIZES:
        print("\n%d-byte requests and replies:" % size)
        zmq_p50 = results[size]["zmq"]["p50"]
        for key, r in results[size].items():
            print("  %-42s p50 %7.1f us  p90 %7.1f us  p99 %7.1f us   zeromq p50 / this p50 = %5.1fx" % (
                VARIANTS[key][0], r["p50"] / 1e3, r["p90"] / 1e3, r["p99"] / 1e3, zmq_p50 / r["p50"]))
        for key, r in results[size].items():
            print("RESULT bench=rpc_python size=%d variant=%s p50_ns=%d p90_ns=%d p99_ns=%d vs_zmq_p50=%.2f" % (
                size, key, r["p50"], r["p90"], r["p99"], zmq_p50 / r["p50"]))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"machine": machine(), "rounds": args.rounds, "runs": args.runs,
                       "results": {str(k): v for k, v in results.items()}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
