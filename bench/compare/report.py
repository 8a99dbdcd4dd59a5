"""Writes the results of bench/compare/run.py: README.md (machine header,
tables, the ratios that compare the variants), results.json (every run's raw
figures) and the PNG plots (plots.py). Pure formatting: it measures nothing."""

import datetime
import json
import os
import platform
import subprocess

# ---- machine header ---------------------------------------------------------------


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "unknown"


def git_commit(root):
    def git(*a):
        p = subprocess.run(["git", "-C", root, *a], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return p.stdout.strip() if p.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    # Published results (bench/results/) are not code: they do not count.
    if git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"):
        commit += " (with uncommitted changes)"
    return commit


def machine_info(root):
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": git_commit(root),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": loadavg(),
    }


# ---- number formatting -------------------------------------------------------------


def us(ns):
    """Nanoseconds as microseconds, with the precision that matters."""
    if ns is None:
        return "-"
    if ns < 10_000:
        return f"{ns / 1000:.2f}"
    if ns < 1_000_000:
        return f"{ns / 1000:.1f}"
    return f"{ns / 1000:,.0f}"


def mps(rate):
    return "-" if rate is None else f"{rate / 1e6:.3f}"


def spread_text(spread, key, fmt):
    if key not in spread:
        return ""
    lo, hi = spread[key]
    return f"{fmt(lo)}–{fmt(hi)}"


# ---- ratios ---------------------------------------------------------------------------

RATIOS_HEADING = "## Ratios from this run"


def by_name(seed):
    return {r["variant"].name: r for r in seed if r.get("median")}


def ratio_rows(seed, native):
    """(comparison, what this run measured) for the figures the variants are
    read against: each per-message loop against its no-IPC floor, Tachyon
    against the hand-rolled ring and the sockets, the C round trip against
    the cache-line floor."""
    m = by_name(seed)

    def prod(name):
        return m[name]["median"].producer.get("producer_rate") if name in m else None

    def cons(name, key):
        return m[name]["median"].consumer.get(key) if name in m else None

    rows = []

    def ratio_row(what, mine, base):
        """A row for `mine` / `base` producer throughput (variant names), if both ran."""
        if prod(mine) and prod(base):
            rows.append((what, f"{mine} {mps(prod(mine))} / {base} {mps(prod(base))} M msg/s = "
                         f"{prod(mine) / prod(base):.2f}x"))

    ratio_row("seed loop / its no-IPC floor", "tachyon-seed", "floor")
    per_msg = [n for n in ("tachyon-seed", "tachyon-send", "tachyon-packed") if prod(n)]
    fastest = max(per_msg, key=prod) if per_msg else None
    if fastest:
        ratio_row("fastest per-message send / the hand-rolled ring", fastest, "shmring")

    batches = [n for n in ("tachyon-batch64", "tachyon-batch1024") if prod(n)]
    if batches:
        best = max(batches, key=prod)
        rows.append(("fastest batch send", f"{best} {mps(prod(best))} M msg/s"))

    if fastest:
        rows.append((f"one-way latency at full rate ({fastest})",
                     f"p50 {us(cons(fastest, 'p50_ns'))} µs, p99 {us(cons(fastest, 'p99_ns'))} µs"))
        if any(o in m for o in ("stream", "seqpacket", "fifo", "zmq")):
            rows.append(ahead_row(m, fastest, ["stream", "seqpacket", "fifo", "zmq"], prod, cons))
    if "tachyon-batch64" in m and "stream-x64" in m:
        rows.append(ahead_row(m, "tachyon-batch64", ["stream-x64"], prod, cons))

    pp = {r.get("variant"): r for r in native.get("pingpong", {}).get("rows", [])}
    if "floor" in pp:
        for v in ("tachyon_spin", "tachyon_blocking"):
            if v in pp:
                rows.append((f"C<->C round trip p50 / cache-line floor ({v})",
                             f"{pp[v]['p50_ns']} ns / {pp['floor']['p50_ns']} ns = "
                             f"{pp[v]['p50_ns'] / pp['floor']['p50_ns']:.2f}x"))
    return rows


TARGETS_HEADING = "## Targets"


def target_rows(seed, native):
    """(what, goal, measured, met) for the speed and latency targets the core is
    held to, each from this run: throughput against the published library's
    publication scheme (head every 32 commits, run by build/bench/throughput as
    a mode of this library), batches against single messages, large messages
    against memcpy, the round trip against the cache-line floor, the seed
    job's latency and its Python loop against the loop's floor."""
    rows = []
    tp = native.get("throughput", {}).get("rows", []) if isinstance(native, dict) else []
    ratios = {r.get("variant"): r.get("value") for r in tp if "value" in r}

    def add(what, goal, value, ok, text):
        rows.append((what, goal, text if value is not None else "not measured",
                     "-" if value is None else ("yes" if ok else "**no**")))

    v = ratios.get("ratio-default-over-head32")
    add("C -> C 32 B streaming, per-message API: default / head every 32 commits", ">= 1.10x",
        v, v is not None and v >= 1.10, f"{v:.2f}x" if v is not None else "")
    v = ratios.get("ratio-batch-over-per-message")
    add("send_batch + drain_batch / per-message, 32 B", ">= 1.50x", v, v is not None and v >= 1.5,
        f"{v:.2f}x" if v is not None else "")
    for variant, where in (("memcpy-memory", "memcpy of one core through memory (256 MiB)"),
                           ("memcpy", "memcpy of one core within the cache (a ring-sized buffer)")):
        copies = {r.get("size"): r.get("gb_per_s") for r in tp if r.get("variant") == variant}
        large = [(r["size"], r["gb_per_s"] / copies[r["size"]]) for r in tp
                 if r.get("variant") == "per-message,default" and copies.get(r.get("size"))
                 and 4096 <= r.get("size", 0) <= 65536]
        worst = min((x for _, x in large), default=None)
        add(f"4-64 KiB messages / {where}", ">= 0.80 at each size", worst,
            worst is not None and worst >= 0.8, ", ".join(f"{sz // 1024} KiB {x:.2f}" for sz, x in large))
    pp = {r.get("variant"): r for r in native.get("pingpong", {}).get("rows", [])} \
        if isinstance(native, dict) else {}
    floor = pp.get("floor", {}).get("p50_ns")
    for name in ("tachyon_spin", "tachyon_blocking"):
        p50 = pp.get(name, {}).get("p50_ns")
        x = p50 / floor if p50 and floor else None
        add(f"C <-> C round trip p50 / cache-line floor ({name})", "<= 1.50x", x, x is not None and x <= 1.5,
            f"{p50} / {floor} ns = {x:.2f}x" if x is not None else "")
    m = by_name(seed)
    c = m["tachyon-seed"]["median"].consumer if "tachyon-seed" in m else None
    if c and c.get("p50_ns") is not None:
        p50, p99 = c["p50_ns"] / 1000, c["p99_ns"] / 1000
        add("seed job one-way latency at full rate (send_zero_copy)", "p50 <= 1 µs, p99 <= 5 µs", p50,
            p50 <= 1 and p99 <= 5, f"p50 {p50:.2f} µs, p99 {p99:.2f} µs")
    else:
        add("seed job one-way latency at full rate (send_zero_copy)", "p50 <= 1 µs, p99 <= 5 µs", None, False, "")
    mine = m["tachyon-seed"]["median"].producer.get("producer_rate") if "tachyon-seed" in m else None
    base = m["floor"]["median"].producer.get("producer_rate") if "floor" in m else None
    x = mine / base if mine and base else None
    add("Python seed loop / its no-IPC floor", ">= 0.80x", x, x is not None and x >= 0.8,
        f"{mps(mine)} / {mps(base)} M msg/s = {x:.2f}x" if x is not None else "")
    return rows


def ahead_row(m, mine, others, prod, cons):
    """Whether `mine` beat each of `others` on p50, p99 and throughput at once."""
    present = [o for o in others if o in m]
    behind = []
    for o in present:
        if not (cons(mine, "p50_ns") < cons(o, "p50_ns") and cons(mine, "p99_ns") < cons(o, "p99_ns")
                and prod(mine) > prod(o)):
            behind.append(o)
    what = ("ahead of each on p50, p99 and throughput at once" if not behind
            else f"not ahead on all three of: {', '.join(behind)}")
    return (f"{mine} against {', '.join(present)}", what)


# ---- README.md ---------------------------------------------------------------------


def others_text(run):
    return "-" if run.other_load is None else f"{run.other_load:.2f}"


def seed_table(seed):
    named = by_name(seed)

    def floor_rate_of(v):
        f = named.get(v.floor)
        return f["median"].producer.get("producer_rate") if f else None

    lines = [
        "| variant | producer M msg/s | spread | x its floor | consumer M msg/s | p50 µs | p90 µs | "
        "p99 µs | p99.9 µs | max µs | p99 spread µs | all arrived | others (cores) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|",
    ]
    for r in seed:
        v = r["variant"]
        if "skipped" in r:
            lines.append(f"| {v.label} | skipped: {r['skipped']} |" + " |" * 11)
            continue
        med, sp = r["median"], r["spread"]
        if med is None:
            lines.append(f"| {v.label} | all {len(r['runs'])} runs failed |" + " |" * 11)
            continue
        p, c = med.producer, med.consumer
        rate, floor_rate = p.get("producer_rate"), floor_rate_of(v)
        x = f"{rate / floor_rate:.2f}" if floor_rate and rate else "-"
        arrived = "-" if not v.transport else (
            "yes" if r["failed"] == 0 else f"**{r['failed']} of {len(r['runs'])} runs failed**")
        lines.append(
            f"| {v.label} | {mps(rate)} | {spread_text(sp, 'producer_rate', mps)} | {x} | "
            f"{mps(c.get('consumer_rate')) if c else '-'} | {us(c.get('p50_ns')) if c else '-'} | "
            f"{us(c.get('p90_ns')) if c else '-'} | {us(c.get('p99_ns')) if c else '-'} | "
            f"{us(c.get('p999_ns')) if c else '-'} | {us(c.get('max_ns')) if c else '-'} | "
            f"{spread_text(sp, 'p99_ns', us)} | {arrived} | {others_text(med)} |")
    return lines


def pyrecv_table(pyrecv):
    lines = ["| receive API | M msg/s (median) | spread |", "|---|--:|--:|"]
    labels = {"iter": "for msg in bus (copies)", "zero-copy": "recv_zero_copy (in place)",
              "drain-batch": "drain_batch(1024) (in place)"}
    for r in pyrecv:
        sp = f"{mps(r['rates'][0])}–{mps(r['rates'][-1])}" if r["rates"] else ""
        med = mps(r["median"]) if r["median"] else "failed: " + "; ".join(r["errors"])[:200]
        lines.append(f"| {labels.get(r['mode'], r['mode'])} | {med} | {sp} |")
    return lines


def native_tables(native):
    if "skipped" in native:
        return [f"Not run: {native['skipped']}.", ""]
    lines = []
    pp = native.get("pingpong", {})
    if pp.get("rows"):
        lines += ["Round trip, 32-byte messages (`build/bench/pingpong`):", "",
                  "| variant | p50 ns | p90 ns | p99 ns | p99.9 ns | p50 / floor |",
                  "|---|--:|--:|--:|--:|--:|"]
        for r in pp["rows"]:
            floor = next((f for f in pp["rows"] if f.get("variant") == "floor"), None)
            ratio = (f"{r['p50_ns'] / floor['p50_ns']:.2f}"
                     if floor and floor.get("p50_ns") and "p50_ns" in r else "-")
            lines.append(f"| {r.get('variant')} | {r.get('p50_ns')} | {r.get('p90_ns')} | "
                         f"{r.get('p99_ns')} | {r.get('p999_ns')} | {ratio} |")
        lines.append("")
    elif pp:
        lines += [f"pingpong: {pp.get('skipped') or pp.get('error', 'no RESULT lines')}", ""]
    tp = native.get("throughput", {})
    if tp.get("rows"):
        cached = {r.get("size"): r.get("gb_per_s") for r in tp["rows"] if r.get("variant") == "memcpy"}
        memory = {r.get("size"): r.get("gb_per_s") for r in tp["rows"] if r.get("variant") == "memcpy-memory"}
        lines += ["Streaming C -> C (`build/bench/throughput`, medians; memcpy of one core with the "
                  "same block size, within a ring-sized buffer and through 256 MiB):", "",
                  "| variant | payload B | M msg/s | GB/s | memcpy GB/s, cache / memory | ring / memcpy, "
                  "cache / memory |", "|---|--:|--:|--:|--:|--:|"]
        for r in tp["rows"]:
            if "msgs_per_s" not in r:
                continue
            size, gbps = r.get("size"), r.get("gb_per_s", 0)
            c, m = cached.get(size), memory.get(size)
            copies = f"{c:.1f} / {m:.1f}" if c and m else "-"
            ratios = f"{gbps / c:.2f} / {gbps / m:.2f}" if c and m else "-"
            lines.append(f"| {r.get('variant')} | {size} | {r.get('msgs_per_s', 0) / 1e6:.2f} | {gbps:.2f} | "
                         f"{copies} | {ratios} |")
        lines.append("")
    elif tp:
        lines += [f"throughput: {tp.get('skipped') or tp.get('error', 'no RESULT lines')}", ""]
    return lines


HOW = """\
## How it was measured

Reproduce with `make bench-compare` (this page, the plots and `results.json` in
`build/bench-results/compare/`, about a minute; `make bench-publish` copies them to
`bench/results/`), `make test-bench-smoke` (tiny counts, checks only that every tick
arrives and the report is whole) or `.venv/bin/python bench/compare/run.py --help`
(counts, runs, single variants, `--tachyon-rx single` for the seed consumer's
per-message receive).

- **Workload** (the seed's): MarketTicks of 32 bytes, `<8sdIQ4x` (symbol, price,
  quantity, timestamp, padding). The producer is Python (`bench/compare/producers.py`,
  one `--variant` per row); quantity carries the tick's index and the timestamp is
  `time.time_ns()` taken just before the tick is written or sent.
- **Consumer**: one C program for every row (`bench/compare/consumer.c`). It owns the
  endpoint (starts first; the producer connects and retries) and runs the same code per
  tick: `clock_gettime(CLOCK_REALTIME)`, read the timestamp at offset 20 with `memcpy`,
  store receive time minus timestamp in a preallocated array, check the sequence number.
  Only the receive call differs, and each takes what is there: TACHYON_RX;
  blocking `read`/`recv` for sockets and the FIFO (byte streams are read in 64 KiB
  chunks and split into ticks); `zmq_msg_recv`; for the hand-rolled ring a spinning
  reader that takes every tick up to the head and releases them with one tail store.
- **One-way latency** = consumer's receive time minus producer's timestamp, both
  `CLOCK_REALTIME` on one machine. **Producer throughput** = ticks / time of the send loop
  (connecting excluded). **Consumer rate** = ticks / time from first to last receive.
- **Batched rows** (`send_batch`, stream sends of 64) fill a numpy record array per
  batch and stamp the whole batch with one `time.time_ns()` just before the send call,
  so a tick's latency includes the wait behind the ticks before it in its batch.
- **The floors** are the producer loops with the IPC taken out: the Python work alone,
  the most any transport could give that loop. *seed loop* is the seed's loop body
  (fields, `time.time_ns()`, `struct.pack_into` into a `memoryview`, the flush check)
  writing into a private buffer: the floor of the seed-pattern row. *pack-then-send loop*
  is `Struct.pack(...)` per tick handed to `len()` instead of a send: the floor of the
  other per-message rows. "x its floor" is a row's producer throughput over its floor's.
- **The hand-rolled ring** is what a careful Python user would write over
  `multiprocessing.shared_memory`: pack into the next 32-byte slot, then store the new
  head; it needs no kernel call and its reader spins. Both rings hold 8,192 ticks
  (tachyon: 1 MiB, 128 bytes a slot with its header; the hand-rolled ring: 32 bytes a slot).
- Producer and consumer are pinned to CPUs 0 and 1 (unless `--no-pin`). Every variant
  runs RUNS times, in rounds; the table shows the median run and the spread (min–max)
  over the runs. The median run is the one with the median p99 latency (for the floors,
  the median throughput): bursts of other work on a shared machine show first in the
  tail, so one spoiled run in three does not become the reported one. Every run checks
  that every tick arrived once, in order.
  "others (cores)" is how many cores other work kept busy, on average, during the
  median run: all CPU time in `/proc/stat` (processes, interrupts, the hypervisor's
  steal) minus this benchmark's own processes. Above ~0.1 the run shared the machine
  and its tail latencies show other programs' time slices.
- Python receive: `bench/compare/c_producer.c` sends the same ticks as fast as the ring
  takes them to `bench/compare/receivers.py`, which reads each tick's sequence number
  with each receive API; the rate is the Python consumer's.
"""


def other_load_text(machine):
    load = machine.get("other_load")
    if load is None:
        return "other work during the run unknown"
    quality = "a quiet machine" if load < 0.1 else "**a shared machine: figures are noisy**"
    return (f"other processes kept {load:.2f} of {machine['cores']} cores busy on average "
            f"while this ran ({quality})")


def write_readme(path, machine, args, seed, pyrecv, native, plots):
    lines = [
        "# Benchmark results",
        "",
        f"- **Machine**: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"Python {machine['python']}",
        f"- **Commit**: {machine['commit']}",
        f"- **Date**: {machine['date']}",
        f"- **Load average** before / after: {machine['loadavg']} / "
        f"{machine.get('load_after', '?')}; " + other_load_text(machine),
        f"- **Run**: `{args.cmdline}`, "
        f"{args.count:,} ticks per run, {args.runs} run(s) per variant, "
        f"{machine.get('duration_s', '?')} s in all",
        "",
        f"## Seed workload: Python producer -> native consumer, {args.count:,} MarketTicks",
        "",
        *seed_table(seed),
        "",
    ]
    if plots:
        lines += ["![one-way latency by percentile](latency.png)", "",
                  "![producer throughput](throughput.png)", ""]
    targets = target_rows(seed, native)
    lines += [TARGETS_HEADING, "", "| target | goal | this run | met |", "|---|---|---|:-:|"]
    lines += [f"| {what} | {goal} | {measured} | {met} |" for what, goal, measured, met in targets]
    lines.append("")
    ratios = ratio_rows(seed, native)
    if ratios:
        lines += [RATIOS_HEADING, "", "| comparison | measured |", "|---|---|"]
        lines += [f"| {what} | {measured} |" for what, measured in ratios]
        lines.append("")
    if pyrecv:
        lines += ["## Python receive: C producer -> Python consumer", "", *pyrecv_table(pyrecv),
                  ""]
    lines += ["## Native: C <-> C", "", *native_tables(native)]
    if plots and native.get("throughput", {}).get("rows"):
        lines += ["![C -> C streaming throughput by payload size](native_throughput.png)", ""]
    rx = ("`tachyon_drain_batch_timeout` (up to 1,024 views) and one "
          "`tachyon_commit_rx_batch`, spinning 10,000 times (the seed's figure) before sleeping"
          if getattr(args, "tachyon_rx", "batch") == "batch" else
          "`tachyon_acquire_rx_timeout` + `tachyon_commit_rx` per message as the seed's "
          "consumer does, spinning 10,000 times before sleeping")
    lines.append(HOW.replace("RUNS times", f"{args.runs} time(s)").replace("TACHYON_RX", rx))
    with open(path, "w") as f:
        f.write("\n".join(lines))


def as_json(seed, pyrecv, native, machine, args):
    def run_dict(r):
        return {"ok": r.ok, "producer": r.producer, "consumer": r.consumer, "error": r.error,
                "other_load": r.other_load}

    out = {"machine": machine, "smoke": bool(args.smoke), "count": args.count,
           "runs_per_variant": args.runs,
           "seed_workload": [], "python_receive": pyrecv, "native": native}
    for r in seed:
        v = r["variant"]
        entry = {"variant": v.name, "label": v.label, "kind": v.kind, "batch": v.batch}
        if "skipped" in r:
            entry["skipped"] = r["skipped"]
        else:
            entry["runs"] = [run_dict(x) for x in r["runs"]]
            entry["spread"] = r["spread"]
            entry["median_run"] = r["runs"].index(r["median"]) if r["median"] else None
        out["seed_workload"].append(entry)
    return out


def write_all(out_dir, machine, args, seed, pyrecv, native, plots=True):
    written = []
    made_plots = False
    if plots:
        try:
            import plots as plotting  # bench/compare/plots.py

            written += plotting.make_all(out_dir, seed, native)
            made_plots = True
        except ImportError as exc:
            print(f"report: no plots ({exc})")
    readme = os.path.join(out_dir, "README.md")
    write_readme(readme, machine, args, seed, pyrecv, native, made_plots)
    written.insert(0, readme)
    data = os.path.join(out_dir, "results.json")
    with open(data, "w") as f:
        json.dump(as_json(seed, pyrecv, native, machine, args), f, indent=1)
    written.append(data)
    return written
