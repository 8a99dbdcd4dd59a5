#!/usr/bin/env python3
"""Copy a finished full run of bench/compare/run.py into bench/results/.

    python bench/compare/publish.py [RUN_DIR [DEST_DIR]]
        (default build/bench-results/compare -> bench/results; make bench-publish)

Benchmarks write under build/ only; publishing their figures is a step of
its own. A run is published only when it is whole: results.json from a full
run (not --smoke) in which every run of every variant delivered every
message, with its README.md beside it. The report, results.json and the
plots the run made are copied; plots the run did not make are removed from
DEST_DIR so that no figure of an older run stays next to the new tables.
"""
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_DIR = os.path.join(ROOT, "build", "bench-results", "compare")
DEST_DIR = os.path.join(ROOT, "bench", "results")
PLOTS = ("latency.png", "throughput.png", "native_throughput.png")


def problems_with(run_dir):
    """Why the run in run_dir cannot be published (empty: it can)."""
    data_path = os.path.join(run_dir, "results.json")
    if not os.path.exists(data_path):
        return [f"{data_path} does not exist: run make bench-compare first"]
    if not os.path.exists(os.path.join(run_dir, "README.md")):
        return [f"{run_dir} has results.json but no README.md: the run did not finish"]
    with open(data_path) as f:
        data = json.load(f)
    found = []
    if data.get("smoke", True):
        found.append("it is a --smoke run (tiny counts), not a measurement")
    for entry in data.get("seed_workload", []):
        bad = [r.get("error", "?") for r in entry.get("runs", []) if not r.get("ok")]
        if bad:
            found.append(f"variant {entry.get('variant')}: {len(bad)} run(s) failed ({bad[0][:120]})")
    return found


def publish(run_dir, dest_dir):
    problems = problems_with(run_dir)
    if problems:
        print(f"bench-publish: not publishing {run_dir}:")
        for p in problems:
            print(f"  {p}")
        return 1
    os.makedirs(dest_dir, exist_ok=True)
    copied = []
    for name in ("README.md", "results.json") + PLOTS:
        src, dst = os.path.join(run_dir, name), os.path.join(dest_dir, name)
        if os.path.exists(src):
            shutil.copyfile(src, dst)
            copied.append(name)
        elif name in PLOTS and os.path.exists(dst):
            os.unlink(dst)
            print(f"bench-publish: removed {os.path.relpath(dst, ROOT)} (this run made no such plot)")
    print(f"bench-publish: copied {', '.join(copied)} from {os.path.relpath(run_dir, ROOT)} to "
          f"{os.path.relpath(dest_dir, ROOT)}; check them and commit them with git")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(publish(args[0] if args else RUN_DIR, args[1] if len(args) > 1 else DEST_DIR))
