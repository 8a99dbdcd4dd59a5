"""One asyncio program that consumes two market-data buses and a timer at
once, without a thread per bus: each bus is a task doing ``async for msg in
bus`` on the running loop (the bus's descriptor is watched like a socket's),
and a timer task prints each feed's rate and one-way latency every second.

By default it starts the two feeds itself (feed.py: "quotes" at 20,000
ticks/s and "trades" at 1,000 ticks/s) and ends when both have closed their
bus, checking that every tick they sent arrived. With --no-feeds it only
listens, for producers of your own (printing the socket paths).

    python consumer.py [--duration 10] [--uvloop] [--no-feeds]
"""
import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import tachyon
from feed import END, TICK, TYPE_END

HERE = os.path.dirname(os.path.abspath(__file__))
FEEDS = {"quotes": 20_000.0, "trades": 1_000.0}  # name: ticks per second


class FeedStats:
    def __init__(self, name):
        self.name = name
        self.received = 0
        self.sent = None  # from the feed's end message
        self.window = 0
        self.latencies_us = []
        self.gaps = 0
        self.next_seq = 0

    def take_window(self):
        count, lat = self.window, sorted(self.latencies_us)
        self.window, self.latencies_us = 0, []
        return count, lat


async def consume(bus, st):
    """One task per bus: count ticks, check their order, measure latency."""
    async for msg in bus:  # ends when the feed closes its bus
        if msg.type_id == TYPE_END:
            (st.sent,) = END.unpack(msg.data)
            continue
        seq, sent_ns, _price = TICK.unpack(msg.data)
        if seq != st.next_seq:
            st.gaps += 1
        st.next_seq = seq + 1
        st.received += 1
        st.window += 1
        st.latencies_us.append((time.monotonic_ns() - sent_ns) / 1e3)


async def report_every_second(stats):
    """The timer: per-feed rate and latency over the last second."""
    start = time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        parts = []
        for st in stats:
            count, lat = st.take_window()
            if lat:
                p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
                parts.append("%s %8.0f msg/s (latency p50 %5.0f us, p99 %6.0f us)" % (st.name, count, p50, p99))
            else:
                parts.append("%s %8.0f msg/s" % (st.name, count))
        print("t=%5.1fs  %s" % (time.monotonic() - start, "  |  ".join(parts)), flush=True)


async def main(args):
    workdir = tempfile.mkdtemp(prefix="tachyon-asyncio-")
    paths = {name: os.path.join(workdir, name + ".sock") for name in FEEDS}
    feeds = []
    try:
        listens = [asyncio.to_thread(tachyon.Bus.listen, paths[n], 1 << 16, timeout=args.connect_timeout) for n in FEEDS]
        await asyncio.sleep(0.05)  # the listeners bind first
        if args.no_feeds:
            for name, path in paths.items():
                print("waiting for a producer of %r at %s" % (name, path), flush=True)
        else:
            for name, rate in FEEDS.items():
                feeds.append(subprocess.Popen([sys.executable, os.path.join(HERE, "feed.py"), "--socket", paths[name],
                                               "--rate", str(rate), "--duration", str(args.duration)]))
        buses = await asyncio.gather(*listens)
        stats = [FeedStats(name) for name in FEEDS]
        print("consuming %s on %s" % (", ".join(FEEDS), type(asyncio.get_running_loop()).__module__), flush=True)
        timer = asyncio.create_task(report_every_second(stats))
        try:
            await asyncio.gather(*(consume(bus, st) for bus, st in zip(buses, stats)))
        finally:
            timer.cancel()
            for bus in buses:
                bus.close()
        ok = True
        for st in stats:
            lost = None if st.sent is None else st.sent - st.received
            print("%s: %d ticks received of %s sent, %s lost, %d out of order"
                  % (st.name, st.received, "?" if st.sent is None else st.sent, "?" if lost is None else lost, st.gaps))
            ok = ok and lost == 0 and st.gaps == 0
        return 0 if ok else 1
    finally:
        for p in feeds:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="how long the feeds run (s)")
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop (if installed)")
    ap.add_argument("--no-feeds", action="store_true", help="do not start the feeds: wait for producers of your own")
    ap.add_argument("--connect-timeout", type=float, default=30.0, help="how long to wait for each producer (s)")
    args = ap.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    try:
        sys.exit(asyncio.run(main(args)))
    except KeyboardInterrupt:
        sys.exit(130)
