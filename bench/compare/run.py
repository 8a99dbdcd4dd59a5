#!/usr/bin/env python3
"""Driver of the comparison benchmark suite.

    python bench/compare/run.py            full run, writes build/bench-results/compare/
    python bench/compare/run.py --smoke    tiny counts, 1 run, writes build/bench-results/smoke/

`make bench-compare` runs it with the project's Python after `make setup`
has installed what it uses (numpy, matplotlib, pyzmq in .venv, libzmq3-dev
from apt) and the tachyon package from bindings/python; this script installs
nothing. Steps: build the native consumer and producer (make), run every
variant of the seed workload RUNS times (Python producer -> consumer.c; the
median run is reported, with the spread), run the Python receive benchmark
(c_producer.c -> receivers.py), run the native C benchmarks
(build/bench/pingpong, build/bench/throughput), then write the markdown
report, the PNG plots and results.json. Nothing is written outside build/:
`make bench-publish` copies a finished full run into bench/results/.

It prints figures and checks that every message arrived; it never asserts a
speed. Exit status: 0 when every run delivered every message in order.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build")
CONSUMER = os.path.join(BUILD, "bench", "compare", "consumer")
C_PRODUCER = os.path.join(BUILD, "bench", "compare", "c_producer")
PRODUCERS = os.path.join(HERE, "producers.py")
RECEIVERS = os.path.join(HERE, "receivers.py")
# Every output goes under build/; make bench-publish copies a full run to bench/results/.
OUT_FULL = os.path.join(BUILD, "bench-results", "compare")
OUT_SMOKE = os.path.join(BUILD, "bench-results", "smoke")

sys.path.insert(0, HERE)
import report  # noqa: E402  (bench/compare/report.py)


@dataclass
class Variant:
    name: str            # key in the results
    label: str           # what the table and plots call it
    producer: str        # producers.py --variant
    transport: str       # consumer.c --transport; "" = no consumer (the floor)
    kind: str            # floor | tachyon | tachyon-batch | socket | socket-batch | ring
    batch: int = 64
    needs: tuple = ()    # "tachyon", "zmq", "numpy"
    floor: str = "floor-pack"  # the no-IPC loop doing the same Python work ("" = none)
    consumer_args: tuple = ()  # extra consumer.c options


VARIANTS = [
    Variant("floor", "seed loop, no IPC (floor)", "floor", "", "floor", floor="floor"),
    Variant("floor-pack", "pack-then-send loop, no IPC (floor)", "floor-pack", "", "floor"),
    Variant("tachyon-seed", "tachyon: seed pattern (send_zero_copy)", "tachyon-seed", "tachyon",
            "tachyon", needs=("tachyon",), floor="floor"),
    Variant("tachyon-send", "tachyon: send(bytes)", "tachyon-send", "tachyon", "tachyon",
            needs=("tachyon",)),
    Variant("tachyon-packed", "tachyon: send_packed", "tachyon-packed", "tachyon", "tachyon",
            needs=("tachyon",)),
    Variant("tachyon-batch64", "tachyon: send_batch x64", "tachyon-batch", "tachyon",
            "tachyon-batch", batch=64, needs=("tachyon", "numpy"), floor=""),
    Variant("tachyon-batch1024", "tachyon: send_batch x1024", "tachyon-batch", "tachyon",
            "tachyon-batch", batch=1024, needs=("tachyon", "numpy"), floor=""),
    Variant("stream", "unix stream socket", "stream", "stream", "socket"),
    Variant("stream-x64", "unix stream socket, sends of 64", "stream-x64", "stream",
            "socket-batch", batch=64, needs=("numpy",), floor=""),
    Variant("seqpacket", "unix SOCK_SEQPACKET", "seqpacket", "seqpacket", "socket"),
    Variant("fifo", "FIFO (named pipe)", "fifo", "fifo", "socket"),
    Variant("zmq", "ZeroMQ ipc:// PUSH/PULL", "zmq", "zmq", "socket", needs=("zmq",)),
    Variant("shmring", "hand-rolled Python SPSC ring (shared_memory)", "shmring", "shmring",
            "ring"),
]

PYRECV_MODES = ["iter", "zero-copy", "drain-batch"]
QUIET_BUDGET_S = 120  # the most --wait-quiet may add to one whole run


# ---- small helpers ------------------------------------------------------------


def log(msg):
    print(msg, flush=True)


def quiet(cmd, timeout=600, **kw):
    """Run a setup command; return (ok, combined output)."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL, **kw)
        return p.returncode == 0, p.stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)


def parse_result_lines(text):
    """Every `RESULT key=value ...` line of a program's output, as dicts;
    numbers become int or float."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("RESULT "):
            continue
        row = {}
        for tok in line.split()[1:]:
            key, sep, value = tok.partition("=")
            if not sep:
                continue
            row[key] = number_or_text(value)
        rows.append(row)
    return rows


def number_or_text(value):
    for conv in (int, float):
        try:
            return conv(value)
        except ValueError:
            pass
    return value


def pin_to(cpu):
    """preexec_fn pinning a child to one CPU, when the machine has two or more:
    the two sides of a run then never share a core or migrate."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return None
    return lambda: os.sched_setaffinity(0, {cpu % os.cpu_count()})


# ---- what is there: packages and binaries ------------------------------------------
# make setup installs the packages (scripts/requirements.txt into .venv,
# scripts/apt-packages.txt with apt); a variant whose package is missing is
# skipped with the reason, never installed from here.


def module_available(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def report_missing_packages():
    missing = [pkg for mod, pkg in (("numpy", "numpy"), ("matplotlib", "matplotlib"),
                                    ("zmq", "pyzmq")) if not module_available(mod)]
    if missing:
        log(f"run.py: {sys.executable} lacks {', '.join(missing)}: the variants that need them "
            f"are skipped (make setup installs scripts/requirements.txt into .venv)")


def libzmq_headers_present():
    if os.path.exists("/usr/include/zmq.h"):
        return True
    log("run.py: no /usr/include/zmq.h: the ZeroMQ variant is skipped "
        "(make setup installs libzmq3-dev)")
    return False


def tachyon_package_present():
    ok, out = quiet([sys.executable, "-c", "import tachyon"], cwd="/")
    if not ok:
        log(f"run.py: {sys.executable} cannot import tachyon: the tachyon variants are skipped "
            f"(make python-install installs it from bindings/python): {out.strip()[-300:]}")
    return ok


def consumer_has_zmq():
    ok, out = quiet([CONSUMER, "--features"])
    return ok and "zmq=1" in out


def build_binaries(have_zmq_headers):
    ok, out = quiet(["make", "-C", ROOT, "--no-print-directory", "bench-compare-bin"])
    if ok and have_zmq_headers and not consumer_has_zmq():
        os.unlink(CONSUMER)  # built before libzmq3-dev was installed: build it again
        ok, out = quiet(["make", "-C", ROOT, "--no-print-directory", "bench-compare-bin"])
    if not ok:
        sys.exit(f"run.py: building the benchmark programs failed:\n{out[-4000:]}")


def available_features():
    report_missing_packages()
    build_binaries(libzmq_headers_present())
    return {
        "numpy": module_available("numpy"),
        "matplotlib": module_available("matplotlib"),
        "zmq": consumer_has_zmq() and module_available("zmq"),
        "tachyon": tachyon_package_present(),
    }


# ---- one run of one variant ---------------------------------------------------------


@dataclass
class Run:
    ok: bool
    producer: dict = field(default_factory=dict)
    consumer: dict = field(default_factory=dict)
    dump: str = ""
    error: str = ""
    other_load: float = None  # cores other processes kept busy during the run


def stop(proc):
    """End a child we started (and only it), if it is still there."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def endpoint_for(variant, tmp, index):
    if variant.transport == "shmring":
        return f"/tachyon-cmp-{os.getpid()}-{index}"  # a POSIX shm name
    return os.path.join(tmp, f"{variant.name}-{index}.sock")


def run_variant_once(variant, count, index, tmp, args):
    """One run, timed against the rest of the machine: how busy other
    processes kept it is recorded with the figures."""
    wait_for_quiet(args)
    before = cpu_snapshot()
    run = run_variant_processes(variant, count, index, tmp, args)
    run.other_load = other_load(before, cpu_snapshot())
    return run


def run_variant_processes(variant, count, index, tmp, args):
    endpoint = endpoint_for(variant, tmp, index)
    dump = os.path.join(tmp, f"{variant.name}-{index}.lat")
    limit = args.timeout
    consumer = None
    if variant.transport:
        cmd = [CONSUMER, "--transport", variant.transport, "--endpoint", endpoint, "--count",
               str(count), "--variant", variant.name, "--timeout-s", str(limit), "--dump", dump,
               "--rx", args.tachyon_rx, *variant.consumer_args]
        consumer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, stdin=subprocess.DEVNULL,
                                    preexec_fn=None if args.no_pin else pin_to(1))
    producer = subprocess.Popen(
        [sys.executable, PRODUCERS, "--variant", variant.producer, "--endpoint", endpoint,
         "--count", str(count), "--batch", str(variant.batch)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        cwd="/", preexec_fn=None if args.no_pin else pin_to(0))
    outputs = {}
    try:
        for name, proc in (("producer", producer), ("consumer", consumer)):
            if proc is not None:
                out, err = proc.communicate(timeout=limit + 15)
                outputs[name] = (proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        for proc in (producer, consumer):
            if proc is not None:
                stop(proc)
        return Run(False, error=f"timed out after {limit + 15} s")

    run = Run(True, dump=dump if consumer else "")
    errors = []
    for name, (rc, out, err) in outputs.items():
        rows = parse_result_lines(out)
        if rows:
            setattr(run, name, rows[-1])
        if rc != 0 or not rows:
            errors.append(f"{name} exit {rc}: {err.strip()[-600:]}")
    if consumer and run.consumer:
        c = run.consumer
        if c.get("count") != count or c.get("bad", 1) != 0:
            errors.append(f"consumer got {c.get('count')} of {count} ticks, {c.get('bad')} bad")
    if errors:
        run.ok, run.error = False, "; ".join(errors)
    return run


def median_run(runs):
    """The median run, and the spread of the figures over all good runs.

    Runs with a consumer are ranked by p99 latency: a burst of other work on
    the machine shows first in the tail, so with one spoiled run in three the
    median is a clean one (ranked by throughput, the spoiled run can be the
    median). The floors have no latency and are ranked by throughput. For an
    even count the worse of the two middle runs is taken."""
    good = [r for r in runs if r.ok]
    if not good:
        return None, {}
    if all(r.consumer.get("p99_ns") is not None for r in good):
        ranked = sorted(good, key=lambda r: r.consumer["p99_ns"])
        med = ranked[len(ranked) // 2]
    else:
        ranked = sorted(good, key=lambda r: r.producer.get("producer_rate", 0))
        med = ranked[(len(ranked) - 1) // 2]
    spread = {}
    for side, key in (("producer", "producer_rate"), ("consumer", "consumer_rate"),
                      ("consumer", "p50_ns"), ("consumer", "p99_ns"), ("consumer", "p999_ns")):
        vals = [getattr(r, side).get(key) for r in good if key in getattr(r, side)]
        if vals:
            spread[key] = [min(vals), max(vals)]
    return med, spread


def run_seed_workload(features, count, runs, tmp, args):
    """Every variant RUNS times, in rounds (each variant once per round), so
    that a burst of other work on the machine spreads over the variants
    instead of spoiling all the runs of one."""
    chosen, results = [], []
    for v in VARIANTS:
        if args.only and v.name not in args.only:
            continue
        missing = [n for n in v.needs if not features.get(n)]
        if missing:
            log(f"  {v.name:<18} skipped: {', '.join(missing)} not available")
            results.append({"variant": v, "skipped": f"{', '.join(missing)} not available"})
        else:
            entry = {"variant": v, "runs": []}
            chosen.append(entry)
            results.append(entry)
    for i in range(runs):
        for entry in chosen:
            v = entry["variant"]
            r = run_variant_once(v, count, i, tmp, args)
            entry["runs"].append(r)
            log(f"  {v.name:<18} run {i + 1}: " + (describe(r) if r.ok else f"FAILED: {r.error}"))
    for entry in chosen:
        entry["median"], entry["spread"] = median_run(entry["runs"])
        entry["failed"] = sum(not r.ok for r in entry["runs"])
    return results


def describe(run):
    p = run.producer.get("producer_rate", 0)
    text = f"producer {p / 1e6:6.3f} M msg/s"
    c = run.consumer
    if c:
        text += (f", consumer {c['consumer_rate'] / 1e6:6.3f} M msg/s, p50 {c['p50_ns']} ns, "
                 f"p99 {c['p99_ns']} ns, p99.9 {c['p999_ns']} ns, max {c['max_ns']} ns")
    if run.other_load is not None:
        text += f", others {run.other_load:.2f} cores"
    return text


# ---- Python receive: C producer -> Python consumer -------------------------------------


def run_pyrecv_once(mode, count, index, tmp, args):
    endpoint = os.path.join(tmp, f"pyrecv-{mode}-{index}.sock")
    recv = subprocess.Popen([sys.executable, RECEIVERS, "--mode", mode, "--endpoint", endpoint,
                             "--count", str(count)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, cwd="/",
                            preexec_fn=None if args.no_pin else pin_to(1))
    prod = subprocess.Popen([C_PRODUCER, endpoint, str(count), str(args.timeout)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, preexec_fn=None if args.no_pin else pin_to(0))
    try:
        rout, rerr = recv.communicate(timeout=args.timeout + 15)
        pout, perr = prod.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        stop(recv)
        stop(prod)
        return None, "timed out"
    rows = parse_result_lines(rout)
    if recv.returncode != 0 or not rows or rows[-1].get("count") != count:
        return None, f"receiver exit {recv.returncode}: {rerr.strip()[-600:]} {perr.strip()[-300:]}"
    return rows[-1], ""


def run_python_receive(features, count, runs, tmp, args):
    if not features.get("tachyon"):
        log("  python receive skipped: the tachyon package is not available")
        return []
    results = {mode: {"mode": mode, "rates": [], "errors": []} for mode in PYRECV_MODES}
    for i in range(runs):  # in rounds, like the seed workload
        for mode in PYRECV_MODES:
            row, err = run_pyrecv_once(mode, count, i, tmp, args)
            if row:
                results[mode]["rates"].append(row["rate"])
                log(f"  pyrecv {mode:<12} run {i + 1}: {row['rate'] / 1e6:6.3f} M msg/s")
            else:
                results[mode]["errors"].append(err)
                log(f"  pyrecv {mode:<12} run {i + 1}: FAILED: {err}")
    for r in results.values():
        r["rates"].sort()
        r["median"] = r["rates"][(len(r["rates"]) - 1) // 2] if r["rates"] else None
    return list(results.values())


# ---- the native C benchmarks -----------------------------------------------------------


def run_native(args):
    """Build and run build/bench/pingpong and build/bench/throughput
    (bench/bench.mk) and collect their RESULT lines."""
    if not os.path.exists(os.path.join(ROOT, "bench", "bench.mk")):
        return {"skipped": "bench/bench.mk does not exist yet"}
    ok, out = quiet(["make", "-C", ROOT, "--no-print-directory", "bench-c-bin"])
    if not ok:
        return {"skipped": f"make bench-c-bin failed: {out[-500:]}"}
    native = {}
    for prog in ("pingpong", "throughput"):
        path = os.path.join(BUILD, "bench", prog)
        if not os.path.exists(path):
            native[prog] = {"skipped": f"{path} was not built"}
            continue
        log(f"  running build/bench/{prog}")
        ok, out = quiet([path], timeout=300)
        native[prog] = {"rows": parse_result_lines(out), "ok": ok,
                        "machine": next((l for l in out.splitlines() if l.startswith("machine:")),
                                        "")}
        if not ok:
            native[prog]["error"] = out[-500:]
    return native


# ---- how busy the machine was with other work ------------------------------------------


def cpu_snapshot():
    """(busy seconds of all CPUs, seconds this process and its finished
    children used, monotonic time)."""
    try:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = (sum(vals) - vals[3] - vals[4]) / tick  # all but idle and iowait
    t = os.times()
    ours = t.user + t.system + t.children_user + t.children_system
    return busy, ours, time.monotonic()


def wait_for_quiet(args):
    """With --wait-quiet S: before a run, wait up to S seconds (and at most
    QUIET_BUDGET_S in a whole run) until other processes use less than a
    tenth of a core, so bursts of other work spoil fewer runs."""
    if args.wait_quiet <= 0 or args.quiet_budget <= 0:
        return
    start = time.monotonic()
    while time.monotonic() - start < args.wait_quiet and args.quiet_budget > 0:
        before = cpu_snapshot()
        time.sleep(0.25)
        load = other_load(before, cpu_snapshot())
        args.quiet_budget -= 0.25
        if load is None or load < 0.1:
            return


def other_load(before, after):
    """Cores kept busy by other processes, on average, between two snapshots."""
    if not before or not after or after[2] <= before[2]:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(others, 0.0) / (after[2] - before[2])


# ---- main ------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true",
                    help="tiny counts, one run (a check that everything runs, not a measurement)")
    ap.add_argument("--count", type=int, help="ticks per run (default 500000; smoke 2000)")
    ap.add_argument("--runs", type=int, help="runs per variant (default 3; smoke 1)")
    ap.add_argument("--out", help="results folder (default build/bench-results/compare; "
                                  "smoke: build/bench-results/smoke)")
    ap.add_argument("--only", nargs="*", help="run only these variants")
    ap.add_argument("--no-native", action="store_true", help="skip the native C benchmarks")
    ap.add_argument("--no-pyrecv", action="store_true", help="skip the Python receive benchmark")
    ap.add_argument("--no-pin", action="store_true", help="do not pin producer/consumer to CPUs")
    ap.add_argument("--tachyon-rx", choices=["batch", "single"], default="batch",
                    help="the consumer's tachyon receive: drain_batch + one commit for what is "
                         "there (default, like the socket readers), or one acquire/commit per "
                         "message as the seed's Rust consumer does")
    ap.add_argument("--wait-quiet", type=float,
                    help="before each run wait up to this many seconds for other processes to "
                         "go quiet (default 3, smoke 0; at most %d s in all)" % QUIET_BUDGET_S)
    ap.add_argument("--timeout", type=int, default=60, help="seconds allowed per run")
    args = ap.parse_args(argv)
    args.cmdline = " ".join(["python", "bench/compare/run.py",
                             *(sys.argv[1:] if argv is None else argv)])
    if args.count is None:
        args.count = 2000 if args.smoke else 500_000
    if args.runs is None:
        args.runs = 1 if args.smoke else 3
    if args.wait_quiet is None:
        args.wait_quiet = 0.0 if args.smoke else 3.0
    args.quiet_budget = QUIET_BUDGET_S
    if args.smoke:
        args.timeout = min(args.timeout, 30)
    if args.out is None:
        args.out = OUT_SMOKE if args.smoke else OUT_FULL
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    machine = report.machine_info(ROOT)
    log(f"run.py: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"load {machine['loadavg']}, commit {machine['commit']}")
    features = available_features()
    log("run.py: available: " + ", ".join(k for k, v in features.items() if v))

    with tempfile.TemporaryDirectory(prefix="tachyon-cmp-") as tmp:
        snap = cpu_snapshot()
        log(f"seed workload: {args.count} ticks x {args.runs} runs per variant")
        seed = run_seed_workload(features, args.count, args.runs, tmp, args)
        pyrecv = [] if args.no_pyrecv else run_python_receive(features, args.count, args.runs,
                                                              tmp, args)
        native = {"skipped": "--smoke or --no-native"}
        if not args.smoke and not args.no_native:
            native = run_native(args)
        machine["other_load"] = other_load(snap, cpu_snapshot())
        if machine["other_load"] is not None:
            log(f"run.py: other processes kept {machine['other_load']:.2f} of "
                f"{machine['cores']} cores busy on average while we measured")
        out = args.out
        os.makedirs(out, exist_ok=True)
        machine["duration_s"] = round(time.time() - started)
        machine["load_after"] = report.loadavg()
        written = report.write_all(out, machine, args, seed, pyrecv, native,
                                   plots=features["matplotlib"])
        log(f"run.py: wrote {', '.join(os.path.relpath(w, ROOT) if w.startswith(ROOT) else w for w in written)}")
        problems = check_outputs(out, seed, features) if args.smoke else []
    for p in problems:
        log(f"run.py: smoke: {p}")
    return summarize(seed, pyrecv, extra_failures=len(problems))


def check_outputs(out, seed, features):
    """The smoke run's check that the report is whole: every variant has its
    row, the ratios table is there, the plots are real PNGs."""
    problems = []
    with open(os.path.join(out, "README.md")) as f:
        md = f.read()
    for r in seed:
        if f"| {r['variant'].label} |" not in md:
            problems.append(f"README.md has no row for {r['variant'].name}")
    tachyon_ran = any(r["variant"].kind.startswith("tachyon") and r.get("median") for r in seed)
    if tachyon_ran and report.RATIOS_HEADING not in md:
        problems.append("README.md has no ratios table")
    if features.get("matplotlib"):
        for png in ("latency.png", "throughput.png"):
            path = os.path.join(out, png)
            with open(path, "rb") as f:
                if f.read(8) != b"\x89PNG\r\n\x1a\n":
                    problems.append(f"{png} is not a PNG")
    return problems


def summarize(seed, pyrecv, extra_failures=0):
    passed = sum(len(r["runs"]) - r["failed"] for r in seed if "runs" in r)
    failed = sum(r["failed"] for r in seed if "runs" in r) + extra_failures
    skipped = sum(1 for r in seed if "skipped" in r)
    for r in pyrecv:
        passed += len(r["rates"])
        failed += len(r["errors"])
    log(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
