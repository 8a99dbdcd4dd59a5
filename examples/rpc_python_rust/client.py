"""Request/reply example, client side: ask the Rust pricing service for quotes.

Connects to the service (service/src/main.rs) at TACHYON_SOCKET, then:

1. QUOTES round trips, one call at a time, each timed: the quote is checked
   against the formula both sides share (it must match to the last bit);
2. the same calls pipelined, DEPTH in flight at a time (throughput);
3. a quote for a symbol the service does not price: an error reply, raised
   here as tachyon.RpcError;
4. the service's own count (STATS), which must match what was asked.

Prints the round-trip figures and exits 0 when every answer was right.
Environment: TACHYON_SOCKET (default /tmp/tachyon_pricing.sock), QUOTES
(default 200000), DEPTH (default 32), PURE_SPIN=1 to wait without sleeping.
"""
import os
import statistics
import struct
import sys
import time

import tachyon

QUOTE, STATS = 1, 2
REQUEST = struct.Struct("<8sIB3x")  # symbol, quantity, side (0 buy, 1 sell)
REPLY = struct.Struct("<8sddd")  # symbol, unit price, total, fee
COUNTS = struct.Struct("<QQ")  # quotes given, requests refused

MID_PRICES = {b"BTCUSDT\0": 64_000.0, b"ETHUSDT\0": 3_200.0, b"SOLUSDT\0": 150.0, b"EURUSD\0\0": 1.085}
SYMBOLS = list(MID_PRICES)
SPREAD, LARGE_ORDER, FEE = 0.0005, 1000, 0.001

# The endpoints: what the service answers, called from here.
quote = tachyon.tachyon_rpc(QUOTE)(lambda request: None)
stats = tachyon.tachyon_rpc(STATS)(lambda request: None)


def expected(symbol, quantity, side):
    """The quote the service must give: the same arithmetic as service/src/main.rs."""
    mid = MID_PRICES[symbol]
    spread = SPREAD / 2.0 if quantity >= LARGE_ORDER else SPREAD
    unit = mid * (1.0 + spread) if side == 0 else mid * (1.0 - spread)
    total = unit * float(quantity)
    return symbol, unit, total, total * FEE


def order(i):
    """The i-th order of the run: every symbol, both sides, small and large."""
    return SYMBOLS[i % len(SYMBOLS)], 1 + (i * 7919) % 2000, (i // len(SYMBOLS)) % 2


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p / 100.0 * (len(sorted_values) - 1) + 0.5))]


def timed_round_trips(bus, n):
    """n calls one at a time; their round trips in ns, and how many answers were wrong."""
    times, wrong = [], 0
    clock = time.perf_counter_ns
    for i in range(n):
        fields = order(i)
        request = REQUEST.pack(*fields)
        t0 = clock()
        answer = quote.call(bus, request, timeout=5.0)
        times.append(clock() - t0)
        if REPLY.unpack(answer) != expected(*fields):
            wrong += 1
    return times, wrong


def pipelined(bus, n, depth):
    """n calls with up to `depth` in flight: seconds taken, wrong answers."""
    wrong = 0
    in_flight = []  # (id, order) in call order: replies come in that order
    t0 = time.perf_counter()
    for i in range(n):
        fields = order(i)
        in_flight.append((bus.call(REQUEST.pack(*fields), QUOTE), fields))
        if len(in_flight) == depth or i == n - 1:
            for cid, sent in in_flight:
                with bus.wait(cid, timeout=5.0) as rx:
                    wrong += REPLY.unpack(rx) != expected(*sent)
            in_flight.clear()
    return time.perf_counter() - t0, wrong


def main():
    socket = os.environ.get("TACHYON_SOCKET", "/tmp/tachyon_pricing.sock")
    n = int(os.environ.get("QUOTES", "200000"))
    depth = int(os.environ.get("DEPTH", "32"))
    with tachyon.RpcBus.rpc_connect(socket, timeout=30) as bus:
        if os.environ.get("PURE_SPIN") == "1":
            bus.set_polling_mode(1)
        timed_round_trips(bus, min(n, 2000))  # warm-up
        times, wrong = timed_round_trips(bus, n)
        secs, wrong_pipelined = pipelined(bus, n, depth)

        refused_ok = False
        try:
            quote.call(bus, REQUEST.pack(b"DOGEUSD\0", 1, 0), timeout=5.0)
        except tachyon.RpcError as e:
            refused_ok = e.msg_type == QUOTE
            print("client: an unknown symbol is refused: %s" % e)

        given, refused = COUNTS.unpack(stats.call(bus, b"", timeout=5.0))
        asked = min(n, 2000) + 2 * n

    times.sort()
    us = [t / 1000.0 for t in times]
    print("client: %d quotes, one at a time: round trip p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, "
          "mean %.1f us (%.0f calls/s)" % (n, percentile(us, 50), percentile(us, 90), percentile(us, 99),
                                           percentile(us, 99.9), statistics.fmean(us), n / (sum(times) / 1e9)))
    print("client: %d quotes, %d in flight: %.0f calls/s" % (n, depth, n / secs))
    print("client: the service counted %d quotes given and %d refused; %d asked, 1 unknown symbol"
          % (given, refused, asked))
    ok = wrong == 0 and wrong_pipelined == 0 and refused_ok and given == asked and refused == 1
    if wrong or wrong_pipelined:
        print("client: WRONG quotes: %d one at a time, %d pipelined" % (wrong, wrong_pipelined))
    print("client: %s" % ("every quote was right" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
