"""The far side of tachyon-bridge: read the seed's MarketTicks from NATS on
another host, with nats-py.

On the machine with the bus, `tachyon-bridge out` publishes each bus message
to <prefix>.<type_id> (default ticks.1 for a BID, ticks.2 for an ASK,
ticks.0 for the sentinel) and, when the stream ends, <prefix>.end with the
reason as payload. This program subscribes to <prefix>.*, decodes each
32-byte tick and prints what it got.

    python remote_reader.py --nats nats://bus-host:4222
    python remote_reader.py --nats nats://bus-host:4222 --jetstream TICKS   # replay a stream

Options: --subject PREFIX (default ticks), --check (verify every tick
against the seed's formula: symbol, price, quantity = index + 1, side),
--jetstream STREAM (read a JetStream stream from its first message, as
`tachyon-bridge out --jetstream STREAM` fills it).

Duplicates: after a NATS reconnect the bridge sends again what the server had
not confirmed. The first message of each write carries the header
"Tachyon-Stream: <stream id> <seq> <base>"; the messages after it are
seq + 1, seq + 2, ... The Sequencer below uses that to skip what was already
seen, as `tachyon-bridge in` does.
"""

import argparse
import asyncio
import struct
import sys
import time

import nats

FMT = "<8sdIQ4x"  # symbol [u8; 8], price f64, quantity u32, timestamp u64 ns, 4 bytes padding
TICK = struct.Struct(FMT)
SENTINEL, BID, ASK = 0, 1, 2
SYMBOLS = (b"BTCUSDT\0", b"ETHUSDT\0", b"SOLUSDT\0", b"XRPUSDT\0")


def group(n):
    return f"{n:_.0f}".replace("_", " ")


class Sequencer:
    """Numbers messages from the bridge's markers; is_new() is False for a repeat."""

    def __init__(self):
        self.stream, self.next_pos, self.expected = None, None, None

    def is_new(self, headers):
        marker = (headers or {}).get("Tachyon-Stream")
        if marker:
            parts = marker.split(" ")
            if len(parts) != 3 or not all(p.isdigit() for p in parts[1:]):
                return True  # not from a bridge: deliver as it comes
            stream, seq = parts[0], int(parts[1])
            if stream != self.stream:
                self.stream, self.expected = stream, seq
            self.next_pos = seq
        if self.next_pos is None:
            return True  # no marker yet: a plain publisher
        seq, self.next_pos = self.next_pos, self.next_pos + 1
        if seq < self.expected:
            return False
        self.expected = seq + 1
        return True


class Reader:
    def __init__(self, check):
        self.check = check
        self.count = self.bids = self.asks = 0
        self.bad = None
        self.latencies = []
        self.done = asyncio.Event()
        self.sequencer = Sequencer()

    def on_tick(self, type_id, data):
        now = time.time_ns()
        if len(data) != TICK.size:
            self.bad = self.bad or f"message {self.count}: {len(data)} bytes, not a 32-byte tick"
            return
        symbol, price, quantity, timestamp = TICK.unpack(data)
        if type_id == SENTINEL:
            print(f"sentinel: the producer announced {group(quantity)} ticks")
            if quantity != self.count:
                self.bad = self.bad or f"the sentinel announces {quantity}, received {self.count}"
            self.done.set()
            return
        i = self.count
        if self.check and not self.bad:
            want = (SYMBOLS[i & 3], 20000.0 + (i % 10000) * 0.25, i + 1, BID if i % 2 == 0 else ASK)
            if (symbol, price, quantity, type_id) != want:
                self.bad = f"tick {i}: got {(symbol, price, quantity, type_id)}, expected {want}"
        self.count += 1
        self.bids += type_id == BID
        self.asks += type_id == ASK
        self.latencies.append(now - timestamp)

    async def on_msg(self, msg):
        token = msg.subject.rsplit(".", 1)[-1]
        if not self.sequencer.is_new(msg.headers):
            return
        if token == "end":
            print(f"the stream ended: {msg.data.decode('ascii', 'replace')}")
            self.done.set()
        elif token.isdigit() and int(token) < 2**32:
            self.on_tick(int(token), msg.data)
        else:
            print(f"skipped a message on {msg.subject}: not <prefix>.<type_id>", file=sys.stderr)

    def report(self):
        print(f"received {group(self.count)} ticks ({group(self.bids)} BID, {group(self.asks)} ASK)")
        if self.latencies:
            lat = sorted(self.latencies)
            p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000  # noqa: E731
            print(f"one-way latency (this host's clock minus the tick's timestamp; "
                  f"meaningful when the clocks are synchronised): p50 {p(0.5):.1f} µs, p99 {p(0.99):.1f} µs")
        if self.bad:
            print(f"BAD: {self.bad}")
            return 1
        if self.check:
            print("OK: every tick in order and intact")
        return 0


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS server URL")
    ap.add_argument("--subject", default="ticks", help="subject prefix of tachyon-bridge out")
    ap.add_argument("--jetstream", metavar="STREAM", help="replay this JetStream stream from its start")
    ap.add_argument("--check", action="store_true", help="check every tick against the seed's formula")
    args = ap.parse_args()

    reader = Reader(args.check)
    nc = await nats.connect(args.nats, max_reconnect_attempts=-1)
    if args.jetstream:
        js = nc.jetstream()
        await js.subscribe(f"{args.subject}.*", stream=args.jetstream, cb=reader.on_msg, ordered_consumer=True)
    else:
        await nc.subscribe(f"{args.subject}.*", cb=reader.on_msg, pending_msgs_limit=1_000_000)
    await nc.flush()
    print(f"subscribed to {args.subject}.* on {args.nats}", file=sys.stderr, flush=True)
    try:
        await reader.done.wait()
    finally:
        await nc.close()
    return reader.report()


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
