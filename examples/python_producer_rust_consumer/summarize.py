"""Print the demo's figures against the issue's goals, from both logs.

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

    def row(what, value, goal, met):
        mark = "-" if met is None else ("met" if met else "NOT met")
        print(f"  {what:<34} {value or '?':>14}   goal {goal:<12} {mark}")

    row("ticks received, intact, in order", received, f"= {ticks}",
        received is not None and int(received) == int(ticks) and intact)
    row("producer throughput (msg/s)", rate, "-", None)
    row("throughput / no-IPC floor", ratio and ratio + "x", ">= 0.8x", ratio and float(ratio) >= 0.8)
    row("one-way latency p50 (µs)", p50, "<= 1", p50 and float(p50) <= 1.0)
    row("one-way latency p99 (µs)", p99, "<= 5", p99 and float(p99) <= 5.0)


if __name__ == "__main__":
    main(*sys.argv[1:4])
