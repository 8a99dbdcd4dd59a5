"""Python receive benchmark: how fast a Python consumer takes MarketTicks
from a native producer (c_producer.c), with each of the package's receive
APIs. The Python side listens (it owns the endpoint); the driver starts
c_producer, which connects and sends as fast as the ring takes the ticks.

Modes:
  iter        for msg in bus: ...              (a copy per message)
  zero-copy   with bus.recv_zero_copy() as rx  (in place, one guard per message)
  drain-batch with bus.drain_batch(1024) as b  (in place, many per guard)

Each mode reads every tick's sequence number (quantity at offset 16), so the
count and the order are checked and the receive loop does real work on the
payload. Prints:
    RESULT bench=pyrecv variant=MODE count=N rate=MSG_PER_S
"""

import argparse
import struct
import sys
import time

import tachyon

SEQ = struct.Struct("<I")
SEQ_OFFSET = 16
TICK_SIZE = 32


class SequenceCheck:
    """Counts ticks and remembers the first one out of order."""

    def __init__(self):
        self.next = 0
        self.first_bad = None

    def fail(self, got):
        if self.first_bad is None:
            self.first_bad = (self.next, got)


def receive_iter(bus, count, check):
    unpack = SEQ.unpack_from
    expected = 0
    for msg in bus:
        if unpack(msg.data, SEQ_OFFSET)[0] != expected:
            check.fail(unpack(msg.data, SEQ_OFFSET)[0])
        expected += 1
        if expected == count:
            break
    check.next = expected


def receive_zero_copy(bus, count, check):
    unpack = SEQ.unpack_from
    recv = bus.recv_zero_copy
    for expected in range(count):
        with recv() as rx:
            seq = unpack(rx, SEQ_OFFSET)[0]
        if seq != expected:
            check.fail(seq)
    check.next = count


def receive_drain_batch(bus, count, check):
    unpack = SEQ.unpack_from
    expected = 0
    while expected < count:
        with bus.drain_batch(max_msgs=1024) as batch:
            for item in batch:  # each item is a read-only buffer over its slot
                seq = unpack(item, SEQ_OFFSET)[0]
                if seq != expected:
                    check.fail(seq)
                expected += 1
    check.next = expected


MODES = {
    "iter": receive_iter,
    "zero-copy": receive_zero_copy,
    "drain-batch": receive_drain_batch,
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", required=True, choices=sorted(MODES))
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--count", type=int, default=500_000)
    ap.add_argument("--capacity", type=int, default=1 << 20)
    args = ap.parse_args(argv)

    check = SequenceCheck()
    with tachyon.Bus.listen(args.endpoint, args.capacity) as bus:
        t0 = time.perf_counter()
        try:
            MODES[args.mode](bus, args.count, check)
        except tachyon.PeerDeadError:
            pass  # the producer left early: the count below shows it
        elapsed = time.perf_counter() - t0
    rate = check.next / elapsed if elapsed > 0 else 0.0
    print(f"RESULT bench=pyrecv variant={args.mode} count={check.next} expected={args.count} "
          f"rate={rate:.0f}", flush=True)
    if check.next != args.count or check.first_bad is not None:
        print(f"receivers: {args.mode}: {check.next} of {args.count} ticks, first out of order: "
              f"{check.first_bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
