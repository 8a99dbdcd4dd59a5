"""The feed handler: one FanOut producer publishing ticks to every reader.

    python feed.py --socket /tmp/md.sock --rate 20000 --duration 30

Readers join and leave whenever they like (up to --max-readers at once). With
--policy drop (the default) a reader that falls a whole ring behind is
dropped instead of slowing the feed down; it learns how many ticks it missed
and continues from the newest. With --policy block the feed waits for its
slowest reader."""
import argparse
import math
import random
import time

import tachyon
from ticks import SYMBOLS, TICK, TICK_TYPE


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--rate", type=float, default=20000, help="ticks per second")
    ap.add_argument("--duration", type=float, default=0, help="seconds (0: until interrupted)")
    ap.add_argument("--capacity", type=int, default=1 << 20)
    ap.add_argument("--max-readers", type=int, default=8)
    ap.add_argument("--policy", choices=("drop", "block"), default="drop")
    args = ap.parse_args()

    prices = [100.0 + 50 * i for i in range(len(SYMBOLS))]
    rng = random.Random(7)
    with tachyon.FanOut.listen(args.socket, args.capacity, args.max_readers, args.policy) as feed:
        print("feed: publishing on %s (%s policy)" % (args.socket, args.policy), flush=True)
        start = time.monotonic()
        next_report = start + 1
        seq = 0
        try:
            while args.duration <= 0 or time.monotonic() - start < args.duration:
                # Paced: tick n goes out at start + n / rate.
                due = start + seq / args.rate
                now = time.monotonic()
                if due > now:
                    time.sleep(min(due - now, 0.001))
                    continue
                sym = rng.randrange(len(SYMBOLS))
                prices[sym] *= math.exp(rng.gauss(0, 0.0005))
                with feed.send_zero_copy(TICK.size, type_id=TICK_TYPE, timeout=1.0) as tx:
                    TICK.pack_into(tx.view(), 0, seq, time.monotonic_ns(), sym, prices[sym], rng.randrange(1, 500))
                seq += 1
                if now >= next_report:
                    print("feed: %d ticks sent, %d readers" % (seq, feed.consumers), flush=True)
                    next_report += 1
        except KeyboardInterrupt:
            pass
        print("feed: done, %d ticks sent" % seq, flush=True)


if __name__ == "__main__":
    main()
