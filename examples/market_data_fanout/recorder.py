"""A reader that records every tick it receives into a file (the raw 32-byte
records, in order), starting at the oldest tick still in the ring.

    python recorder.py --socket /tmp/md.sock --out ticks.bin"""
import argparse
import time

import tachyon
from ticks import TICK


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    count = missed = 0
    with tachyon.FanOut.connect(args.socket, start="oldest", timeout=30) as reader, open(args.out, "wb") as out:
        print("recorder: joined as reader %d, writing %s" % (reader.index, args.out), flush=True)
        next_report = time.monotonic() + 1
        while True:
            try:
                with reader.recv_zero_copy(timeout=1.0) as tick:
                    out.write(memoryview(tick))  # straight from the ring to the file
                count += 1
            except tachyon.OverrunError as e:
                missed += e.missed
                print("recorder: fell behind, %d ticks missed" % e.missed, flush=True)
            except tachyon.TachyonTimeoutError:
                pass
            except tachyon.PeerClosedError:
                break
            if time.monotonic() >= next_report:
                out.flush()
                print("recorder: %d ticks recorded" % count, flush=True)
                next_report += 1
    print("recorder: done, %d ticks recorded, %d missed" % (count, missed), flush=True)


if __name__ == "__main__":
    main()
