"""A reader that prints, every second, the tick rate it sees, the one-way
latency (send time to receive time), and how many ticks it ever missed.

    python monitor.py --socket /tmp/md.sock"""
import argparse
import time

import tachyon
from ticks import TICK


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    args = ap.parse_args()
    with tachyon.FanOut.connect(args.socket, start="newest", timeout=30) as reader:
        print("monitor: joined as reader %d" % reader.index, flush=True)
        count = total = 0
        lat = []
        last = time.monotonic()
        while True:
            try:
                msg = reader.recv(timeout=0.2)
                seq, sent_ns, _sym, _price, _qty = TICK.unpack(msg.data)
                lat.append(time.monotonic_ns() - sent_ns)
                count += 1
                total += 1
            except tachyon.OverrunError as e:
                print("monitor: dropped by the feed, %d ticks missed" % e.missed, flush=True)
            except tachyon.TachyonTimeoutError:
                pass
            except tachyon.PeerClosedError:
                break
            now = time.monotonic()
            if now - last >= 1:
                lat.sort()
                p50 = lat[len(lat) // 2] / 1000 if lat else 0
                p99 = lat[len(lat) * 99 // 100] / 1000 if lat else 0
                print(
                    "monitor: %8.0f ticks/s  latency p50 %6.1f us  p99 %7.1f us  total %d  missed %d"
                    % (count / (now - last), p50, p99, total, reader.missed_total),
                    flush=True,
                )
                count, lat, last = 0, [], now
    print("monitor: done, %d ticks seen" % total, flush=True)


if __name__ == "__main__":
    main()
