"""One run of the seed's producer loop against a C sink, for bench/stats/run.py.

The loop is send_ticks() of examples/python_producer_rust_consumer/producer.py
itself (send_zero_copy + memoryview + struct.pack_into, a flush every 64),
imported, not copied. Which build of the tachyon package runs is PYTHONPATH's
choice (run.py points it at a build with or without counting); the sink is
bench/stats/stream.c built against the matching library.

Prints one JSON line: rate (ticks/s of wall time), cpu_rate (ticks per
second of the loop's CPU time: time spent descheduled by other work on the
machine does not count), the sink's count, what the segment says the
producer counted (null when it stores no counts), and the module used.

Usage: PYTHONPATH=DIR python seed_loop.py --sink PROGRAM --ticks N
"""
import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples", "python_producer_rust_consumer"))

import tachyon  # noqa: E402  (from PYTHONPATH)
import producer  # noqa: E402  (the seed's producer.py)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sink", required=True)
    ap.add_argument("--ticks", type=int, default=500_000)
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="tachyon-bench-seed-")
    try:
        path = os.path.join(workdir, "ticks.sock")
        sink = subprocess.Popen([args.sink, "sink", path], stdout=subprocess.PIPE, text=True)
        try:
            with tachyon.Bus.connect(path, timeout=10) as bus:
                gc.disable()
                cpu0 = time.thread_time()
                elapsed = producer.send_ticks(bus, args.ticks)
                cpu = time.thread_time() - cpu0
                gc.enable()
                producer.send_sentinel(bus, args.ticks)
            out = sink.communicate(timeout=120)[0].split()
        finally:
            if sink.poll() is None:
                sink.kill()
                sink.wait()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    received, counted = int(out[1]), out[3]
    if received != args.ticks:
        raise SystemExit(f"seed_loop: the sink received {received} of {args.ticks} ticks")
    print(json.dumps({
        "rate": args.ticks / elapsed,
        "cpu_rate": args.ticks / cpu,
        "received": received,
        "producer_counted": None if counted == "none" else int(counted),
        "module": tachyon.__file__,
    }))


if __name__ == "__main__":
    main()
