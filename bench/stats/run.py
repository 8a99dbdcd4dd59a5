"""What the statistics cost: the library as it ships against the same library
compiled with -DTACHYON_NO_STATS (src/ring.c then leaves out the
per-message counting), in one run, taking turns.

  1. C streaming, 32-byte messages, per message (acquire_tx + commit_tx ->
     acquire_rx_spin + commit_rx, pure-spin consumer, the two processes
     pinned to CPUs 0 and 1): bench/stats/stream.c against each library.
  2. The same with send_batch + drain_batch, 64 per call.
  3. Both ends in one thread (256 messages in, 256 out), timed by the
     thread's CPU time: the work per message with and without counting,
     which time spent descheduled by other work cannot blur.
  4. The seed's Python producer loop (send_ticks of
     examples/python_producer_rust_consumer/producer.py) against a C sink,
     with the Python extension built from each library (built here into
     OUT/py-on and OUT/py-off, used through PYTHONPATH), the sink built
     against the same one; rated both by wall time and by the loop's CPU
     time.

Before measuring, each pair is checked to differ the way it should: the
counting build reports what it sent, the other reports nothing.

Each round runs every case with counting on and off back to back, the
order flipped every round so that drift and background load hit both alike.
The cost is read from the median of the rounds' on/off ratios (each round's
two runs saw about the same load), shown with its interquartile range; the
medians and the best run of each build are printed beside it. The machine, the
load average before and after, and every run go to OUT/results.json and
OUT/results.txt. Figures are printed, never asserted.

Usage: python run.py --out DIR --stream-on PROG --stream-off PROG [--rounds 21] [--quick]
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED_LOOP = os.path.join(ROOT, "bench", "stats", "seed_loop.py")

C_PER_MESSAGE = "C streaming, per message (wall)"
C_BATCH = "C streaming, send_batch+drain_batch (wall)"
C_LOCAL = "C both ends in one thread (CPU time)"
SEED_WALL = "Python seed loop (wall)"
SEED_CPU = "Python seed loop (CPU time)"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, Linux %s, Python %s" % (model, os.cpu_count(), platform.release(),
                                                 platform.python_version())


def loadavg():
    return "%.2f %.2f %.2f" % os.getloadavg()


# ---- the Python extension, built twice --------------------------------------


def sources_digest(flags):
    h = hashlib.sha256(flags.encode())
    for top in ("src", "include", os.path.join("bindings", "python")):
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = sorted(d for d in dirnames if d not in ("build", "__pycache__", "tests")
                                 and not d.endswith(".egg-info"))
            for name in sorted(filenames):
                if name.endswith((".c", ".h", ".py", ".pyi", ".toml", ".typed")):
                    path = os.path.join(dirpath, name)
                    h.update(path[len(ROOT):].encode())
                    with open(path, "rb") as f:
                        h.update(f.read())
    return h.hexdigest()


def build_extension(out, variant, flags):
    """pip-install the package from a fresh copy of the sources into OUT/py-VARIANT,
    compiled with CFLAGS=flags; skipped when that build is current."""
    target = os.path.join(out, "py-" + variant)
    stamp = os.path.join(target, ".sources")
    digest = sources_digest(flags)
    if os.path.exists(stamp) and open(stamp).read() == digest:
        return target
    print("building the Python extension (%s)%s ..." % (variant, " with " + flags if flags else ""), flush=True)
    tree = os.path.join(out, "src-" + variant)
    shutil.rmtree(tree, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    for top in ("src", "include"):
        shutil.copytree(os.path.join(ROOT, top), os.path.join(tree, top))
    shutil.copytree(os.path.join(ROOT, "bindings", "python"), os.path.join(tree, "bindings", "python"),
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    env = dict(os.environ, CFLAGS=flags, PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target,
                    os.path.join(tree, "bindings", "python")], check=True, env=env)
    shutil.rmtree(tree, ignore_errors=True)
    with open(stamp, "w") as f:
        f.write(digest)
    return target


# ---- one run of each case ------------------------------------------------------


def run_stream(prog, mode, count):
    out = subprocess.run([prog, mode, str(count)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit("%s %s failed: %s" % (prog, mode, out.stderr.strip()))
    words = out.stdout.split()
    return float(words[1]), int(words[3])


def run_seed(pythonpath, sink, ticks):
    env = dict(os.environ, PYTHONPATH=pythonpath)
    out = subprocess.run([sys.executable, SEED_LOOP, "--sink", sink, "--ticks", str(ticks)],
                         capture_output=True, text=True, timeout=600, env=env)
    if out.returncode != 0:
        raise SystemExit("seed loop failed: %s" % out.stderr.strip())
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if not r["module"].startswith(pythonpath):
        raise SystemExit("seed loop imported %s, not the build in %s" % (r["module"], pythonpath))
    return r


def check_variants(args, py):
    """The counting build counts, the other does not: else the comparison means nothing."""
    for mode in ("per-message", "batch", "local"):
        _, on = run_stream(args.stream_on, mode, 100_000)
        _, off = run_stream(args.stream_off, mode, 100_000)
        if on != 100_000 or off != 0:
            raise SystemExit("C %s: counted %d with stats, %d without (want 100000 and 0)" % (mode, on, off))
    on = run_seed(py["on"], args.stream_on, 20_000)["producer_counted"]
    off = run_seed(py["off"], args.stream_off, 20_000)["producer_counted"]
    if on != 20_001 or off is not None:
        raise SystemExit("Python: the segment shows %s ticks counted with stats, %s without "
                         "(want 20001 and none)" % (on, off))
    print("checked: the counting builds report every message; the -DTACHYON_NO_STATS builds store no counts")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--stream-on", required=True, help="bench/stats/stream.c against the library as it ships")
    ap.add_argument("--stream-off", required=True, help="the same against the -DTACHYON_NO_STATS library")
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--stream-msgs", type=int, default=10_000_000)
    ap.add_argument("--ticks", type=int, default=300_000)
    ap.add_argument("--quick", action="store_true", help="few rounds and messages (a smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.stream_msgs, args.ticks = 3, 2_000_000, 100_000
    args.out = os.path.abspath(args.out)
    args.stream_on, args.stream_off = os.path.abspath(args.stream_on), os.path.abspath(args.stream_off)
    os.makedirs(args.out, exist_ok=True)
    py = {"on": build_extension(args.out, "on", ""), "off": build_extension(args.out, "off", "-DTACHYON_NO_STATS")}
    sink = {"on": args.stream_on, "off": args.stream_off}
    stream = {"on": args.stream_on, "off": args.stream_off}
    check_variants(args, py)

    # Each case runs once per build per round and gives one or more figures.
    def seed(v):
        r = run_seed(py[v], sink[v], args.ticks)
        return {SEED_WALL: r["rate"], SEED_CPU: r["cpu_rate"]}

    cases = [
        lambda v: {C_PER_MESSAGE: run_stream(stream[v], "per-message", args.stream_msgs)[0]},
        lambda v: {C_BATCH: run_stream(stream[v], "batch", args.stream_msgs)[0]},
        lambda v: {C_LOCAL: run_stream(stream[v], "local", args.stream_msgs)[0]},
        seed,
    ]
    names = [C_PER_MESSAGE, C_BATCH, C_LOCAL, SEED_WALL, SEED_CPU]
    load_before = loadavg()
    print("machine: %s" % machine())
    print("load average before: %s" % load_before)
    print("%d rounds; C: %d messages per run; Python: %d ticks per run; order flipped every round"
          % (args.rounds, args.stream_msgs, args.ticks), flush=True)
    runs = {name: {"on": [], "off": []} for name in names}
    start = time.monotonic()
    for r in range(args.rounds):
        order = ("on", "off") if r % 2 == 0 else ("off", "on")
        for run in cases:
            for v in order:
                for name, value in run(v).items():
                    runs[name][v].append(value)
        print("  round %d/%d done (load %s)" % (r + 1, args.rounds, loadavg()), flush=True)
    load_after = loadavg()

    lines = ["", "statistics on (as shipped) vs off (-DTACHYON_NO_STATS), %d runs each, M msg/s:" % args.rounds,
             "  %-42s %8s %8s %8s %8s %8s %16s %7s" % ("", "on med", "off med", "on best", "off best",
                                                       "pair", "pair IQR", "cost")]
    summary = {}
    for name in names:
        on, off = runs[name]["on"], runs[name]["off"]
        # Each round's two runs ran next to each other: their ratio cancels
        # most of the load that came and went across the whole run.
        pairs = sorted(a / b for a, b in zip(on, off))
        q = statistics.quantiles(pairs, n=4) if len(pairs) >= 2 else [pairs[0]] * 3
        ratio = statistics.median(pairs)
        summary[name] = {"on_median": statistics.median(on), "off_median": statistics.median(off),
                         "on_best": max(on), "off_best": max(off), "pair_ratio_median": ratio,
                         "pair_ratio_q1": q[0], "pair_ratio_q3": q[2], "runs": runs[name]}
        lines.append("  %-42s %8.3f %8.3f %8.3f %8.3f %8.3f %7.3f-%-8.3f %6.1f%%"
                     % (name, statistics.median(on) / 1e6, statistics.median(off) / 1e6, max(on) / 1e6,
                        max(off) / 1e6, ratio, q[0], q[2], (1 - ratio) * 100))
    lines += ["", "machine: %s" % machine(),
              "load average before %s, after %s; %.0f s" % (load_before, load_after, time.monotonic() - start),
              "pair: the median over the rounds of on/off, the two runs of a round taken back to back; IQR: its",
              "middle half. cost = 1 - pair: what counting takes from the rate (below zero: on measured faster,",
              "which is noise). 'best' is the fastest run, the one least disturbed by other work."]
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.out, "results.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"machine": machine(), "load_before": load_before, "load_after": load_after,
                   "rounds": args.rounds, "stream_msgs": args.stream_msgs, "ticks": args.ticks,
                   "cases": summary}, f, indent=2)
    print("written: %s/results.txt, results.json" % args.out)


if __name__ == "__main__":
    main()
