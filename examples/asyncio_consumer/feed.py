"""A market-data feed for the asyncio consumer example: connects to the
consumer's bus and sends ticks (sequence number, send time, price) at a
steady rate, in 1 ms bursts, for a while; then an end-of-feed message that
carries how many ticks it sent, and closes the bus."""
import argparse
import struct
import time

import tachyon

TICK = struct.Struct("<QQd")  # seq, time.monotonic_ns() when sent, price
END = struct.Struct("<Q")     # how many ticks were sent
TYPE_TICK = 1
TYPE_END = 0xFFFF


def run(socket_path, rate, duration):
    with tachyon.Bus.connect(socket_path, timeout=10) as bus:
        seq = 0
        start = time.monotonic()
        price = 100.0
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= duration:
                break
            due = int(elapsed * rate) + 1  # ticks that should be out by now
            while seq < due:
                price += 0.01 if seq % 7 < 4 else -0.01
                bus.send_packed(TICK, TYPE_TICK, seq, time.monotonic_ns(), price)
                seq += 1
            time.sleep(0.001)
        bus.send_packed(END, TYPE_END, seq)
    return seq


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--rate", type=float, required=True, help="ticks per second")
    ap.add_argument("--duration", type=float, required=True, help="seconds")
    args = ap.parse_args()
    run(args.socket, args.rate, args.duration)


if __name__ == "__main__":
    main()
