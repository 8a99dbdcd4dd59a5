"""Print the demo's figures side by side, from both programs' logs.

Usage: summarize.py PRODUCER_LOG CONSUMER_LOG TICKS. Informational only: the
demo's pass/fail is the two processes' exit status.
"""

import re
import sys


def find(pattern, text):
    m = re.search(pattern, text)
    return m.group(1).replace(" ", "") if m else None


def main(producer_log, consumer_log, ticks):
    prod, cons = open(producer_log).read(), open(consumer_log).read()
    received = find(r"received ([\d ]+) ticks", cons)
    ratio = find(r"ratio ([\d.]+)x", prod)
    rate = find(r"sent [\d ]+ ticks in [\d.]+ s: ([\d ]+) msg/s", prod)
    p50 = find(r"p50 ([\d.]+) µs", cons)
    p99 = find(r"p99 ([\d.]+) µs", cons)
    intact = "OK: all" in cons

    def row(what, value):
        print(f"  {what:<40} {value or '?':>18}")

    complete = received is not None and int(received) == int(ticks) and intact
    row("ticks received of those sent", f"{received or '?'} of {ticks}")
    row("all once, in order, every field intact", "yes" if complete else "no")
    row("producer throughput (msg/s)", rate)
    row("throughput / its no-IPC floor", ratio and ratio + "x")
    row("one-way latency p50 (µs)", p50)
    row("one-way latency p99 (µs)", p99)


if __name__ == "__main__":
    main(*sys.argv[1:4])
