"""Benchmark of tachyon-bridge: throughput of 32-byte ticks from a bus to
NATS, and one-way latency bus -> bridge out -> nats-server -> bridge in ->
bus at 10 000 ticks/s, beside a Python producer publishing the same ticks
straight to NATS with nats-py, and beside the floor: a C publisher and a C
subscriber of libnats with nothing of Tachyon between them (one hop through
nats-server), in the same run. Each variant runs --runs times against a
fresh local nats-server; medians are reported.

    python bench/bridge/run.py --bridge build/tools/tachyon-bridge \
        --reader build/tests/bridge/tick_reader --paced build/bench/bridge/paced_producer \
        --floor build/bench/bridge/nats_floor --out build/bench/bridge

`make bench-bridge` runs it. Output: the tables on stdout, and
results.json / results.md in --out. Run it on an otherwise idle machine: on
two cores the producer, the bridge, nats-server and the reader share them.
"""

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED_PRODUCER = ROOT / "examples" / "python_producer_rust_consumer" / "producer.py"
NATS_PY_PRODUCER = Path(__file__).resolve().parent / "nats_py_producer.py"
TIMEOUT_S = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server_path():
    path = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not os.path.exists(path):
        sys.exit("nats-server not found: run make setup")
    return path


class Session:
    """One variant run: a temporary directory, a nats-server, processes; all
    of it removed at the end."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="tachyon-bridge-bench-"))
        self.procs = []
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.spawn("nats-server", [nats_server_path(), "-a", "127.0.0.1", "-p", str(self.port)])
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("nats-server did not start")
                time.sleep(0.05)

    def sock(self, name):
        return str(self.dir / f"{name}.sock")

    def spawn(self, name, argv, env=None):
        out = open(self.dir / f"{name}.out", "w")
        err = open(self.dir / f"{name}.err", "w")
        p = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             env=dict(os.environ, **(env or {})))
        p.name = name
        self.procs.append(p)
        return p

    def wait(self, p):
        try:
            p.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            raise SystemExit(f"{p.name} did not finish in {TIMEOUT_S} s:\n{self.text(p.name, 'err')}")
        return p.returncode

    def text(self, name, kind="out"):
        return (self.dir / f"{name}.{kind}").read_text(errors="replace")

    def json(self, name):
        lines = [line for line in self.text(name).splitlines() if line.startswith("{")]
        if not lines:
            raise SystemExit(f"{name} printed no result:\n{self.text(name, 'err')}")
        return json.loads(lines[-1])

    def wait_log(self, name, needle):
        deadline = time.monotonic() + 60
        while needle not in self.text(name, "err"):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: no '{needle}':\n{self.text(name, 'err')}")
            time.sleep(0.02)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def bridge_out(s, args, bridge, *extra):
    s.spawn("out", [bridge, "out", "--listen", s.sock("src"), "--nats", s.url, "--stats", "0", *extra])
    s.wait_log("out", "waiting for the bus producer")


def bridge_in_and_reader(s, args):
    reader = s.spawn("reader", [args.reader, s.sock("dst"), "--until-closed", "--timeout", "120"])
    s.spawn("in", [args.bridge, "in", "--connect", s.sock("dst"), "--nats", s.url, "--stats", "0"])
    s.wait_log("in", "subscribed to")
    return reader


def seed_rate(text):
    m = re.search(r"sent [\d ]+ ticks in ([\d.]+) s: ([\d ]+) msg/s", text)
    if not m:
        raise SystemExit(f"the seed producer printed no rate:\n{text}")
    return float(m.group(2).replace(" ", ""))


# ---- variants ------------------------------------------------------------------------


def tp_seed_bus_only(args):
    """Seed producer -> bus -> C reader: the producer's own rate, no bridge."""
    s = Session()
    try:
        reader = s.spawn("reader", [args.reader, s.sock("src"), "--timeout", "120"])
        p = s.spawn("producer", [sys.executable, SEED_PRODUCER],
                    {"TACHYON_SOCKET": s.sock("src"), "TICKS": str(args.ticks)})
        s.wait(p)
        s.wait(reader)
        return {"producer_rate": seed_rate(s.text("producer"))}
    finally:
        s.close()


def tp_seed_bridge(args):
    """Seed producer -> bus -> bridge out -> NATS."""
    s = Session()
    try:
        bridge_out(s, args, args.bridge)
        p = s.spawn("producer", [sys.executable, SEED_PRODUCER],
                    {"TACHYON_SOCKET": s.sock("src"), "TICKS": str(args.ticks)})
        s.wait(p)
        s.wait(s.procs[1])
        log = s.text("out", "err")
        return {"producer_rate": seed_rate(s.text("producer")), "held_bus": "holding the bus" in log,
                "confirmed_all": f"{args.ticks + 1:_}".replace("_", " ") + " confirmed" in log}
    finally:
        s.close()


def tp_c_bridge(args, *out_args):
    """C producer as fast as the bus takes -> bridge out -> NATS: the bridge's capacity."""
    s = Session()
    try:
        bridge_out(s, args, args.bridge, *out_args)
        p = s.spawn("producer", [args.paced, s.sock("src"), args.ticks * 2, 0])
        s.wait(p)
        s.wait(s.procs[1])
        r = s.json("producer")
        return {"bridge_rate": r["rate"], "full_waits": r["full_waits"]}
    finally:
        s.close()


def tp_nats_py(args):
    """nats-py -> NATS, one publish per tick."""
    s = Session()
    try:
        p = s.spawn("producer", [sys.executable, NATS_PY_PRODUCER, s.url, args.ticks, 0])
        s.wait(p)
        return {"producer_rate": s.json("producer")["rate"]}
    finally:
        s.close()


def lat_bus_only(args):
    s = Session()
    try:
        reader = s.spawn("reader", [args.reader, s.sock("src"), "--timeout", "120"])
        s.wait(s.spawn("producer", [args.paced, s.sock("src"), args.lat_ticks, args.rate]))
        s.wait(reader)
        return s.json("reader")
    finally:
        s.close()


def lat_bridge(args, *out_args):
    s = Session()
    try:
        reader = bridge_in_and_reader(s, args)
        bridge_out(s, args, args.bridge, *out_args)
        s.wait(s.spawn("producer", [args.paced, s.sock("src"), args.lat_ticks, args.rate]))
        s.wait(reader)
        return s.json("reader")
    finally:
        s.close()


def lat_nats_floor(args):
    """libnats publisher -> nats-server -> libnats subscriber: NATS alone."""
    s = Session()
    try:
        sub = s.spawn("sub", [args.floor, "sub", s.url, "floor", args.lat_ticks])
        s.wait_log("sub", "subscribed to")
        s.wait(s.spawn("pub", [args.floor, "pub", s.url, "floor", args.lat_ticks, args.rate]))
        s.wait(sub)
        return s.json("sub")
    finally:
        s.close()


def lat_nats_py(args):
    s = Session()
    try:
        reader = bridge_in_and_reader(s, args)
        s.wait(s.spawn("producer", [sys.executable, NATS_PY_PRODUCER, s.url, args.lat_ticks, args.rate]))
        s.wait(reader)
        return s.json("reader")
    finally:
        s.close()


# ---- report ----------------------------------------------------------------------------


def machine():
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nats_v = subprocess.run([nats_server_path(), "--version"], capture_output=True, text=True).stdout.strip()
    libnats = subprocess.run(["pkg-config", "--modversion", "libnats"], capture_output=True, text=True).stdout.strip()
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "nats_server": nats_v, "libnats": libnats,
            "load_before": os.getloadavg()[0]}


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--reader", required=True)
    ap.add_argument("--paced", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ticks", type=int, default=1_000_000)
    ap.add_argument("--lat-ticks", type=int, default=30_000)
    ap.add_argument("--rate", type=int, default=10_000)
    args = ap.parse_args()
    for attr in ("bridge", "reader", "paced", "floor"):
        setattr(args, attr, str(Path(getattr(args, attr)).resolve()))

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, Python {info['python']}, "
          f"{info['nats_server']}, libnats {info['libnats']}; load average {info['load_before']:.2f} at start")
    variants = {
        "tp_seed_bus_only": lambda: tp_seed_bus_only(args),
        "tp_seed_bridge": lambda: tp_seed_bridge(args),
        "tp_c_bridge": lambda: tp_c_bridge(args),
        "tp_c_bridge_flush_0": lambda: tp_c_bridge(args, "--flush-us", "0"),
        "tp_c_bridge_flush_1000": lambda: tp_c_bridge(args, "--flush-us", "1000"),
        "tp_nats_py": lambda: tp_nats_py(args),
        "lat_bus_only": lambda: lat_bus_only(args),
        "lat_bridge": lambda: lat_bridge(args),
        "lat_bridge_confirm_bridge": lambda: lat_bridge(args, "--confirm", "bridge"),
        "lat_nats_py": lambda: lat_nats_py(args),
        "lat_nats_floor": lambda: lat_nats_floor(args),
    }
    results = {name: [] for name in variants}
    for run in range(args.runs):  # interleaved, so that a noisy minute hits every variant alike
        for name, fn in variants.items():
            r = fn()
            results[name].append(r)
            print(f"  run {run + 1} {name}: " + ", ".join(f"{k}={v}" for k, v in r.items()
                                                         if k in ("producer_rate", "bridge_rate", "full_waits",
                                                                  "held_bus", "received", "ok", "p50_us",
                                                                  "p99_us")), flush=True)
    info["load_after"] = os.getloadavg()[0]

    for name, rows in results.items():
        if name.startswith("lat_"):
            bad = [r for r in rows if not r["ok"] or r["received"] != args.lat_ticks]
            if bad:
                raise SystemExit(f"{name}: ticks lost or damaged: {bad}")

    seed_alone = med(results["tp_seed_bus_only"], "producer_rate")
    seed_bridge = med(results["tp_seed_bridge"], "producer_rate")
    lines = [
        f"# tachyon-bridge benchmark",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, Python {info['python']}, "
        f"{info['nats_server']}, libnats {info['libnats']}. Load average {info['load_before']:.2f} before, "
        f"{info['load_after']:.2f} after. Medians of {args.runs} runs.",
        "",
        f"## Throughput, {args.ticks:,} ticks of 32 bytes",
        "",
        "| path | M msg/s |",
        "|---|--:|",
        f"| seed producer (Python) -> bus -> C reader, no bridge | {seed_alone / 1e6:.3f} |",
        f"| seed producer (Python) -> bus -> bridge out -> NATS | {seed_bridge / 1e6:.3f} "
        f"({seed_bridge / seed_alone:.2f}x of no bridge; bus held in "
        f"{sum(r['held_bus'] for r in results['tp_seed_bridge'])} of {args.runs} runs) |",
        f"| C producer, flat out -> bus -> bridge out -> NATS (the bridge's capacity) | "
        f"{med(results['tp_c_bridge'], 'bridge_rate') / 1e6:.3f} |",
        f"| same, --flush-us 0 (a write after every batch) | "
        f"{med(results['tp_c_bridge_flush_0'], 'bridge_rate') / 1e6:.3f} |",
        f"| same, --flush-us 1000 | {med(results['tp_c_bridge_flush_1000'], 'bridge_rate') / 1e6:.3f} |",
        f"| nats-py producer -> NATS, one publish per tick | {med(results['tp_nats_py'], 'producer_rate') / 1e6:.3f} |",
        "",
        f"## One-way latency at {args.rate:,} ticks/s, {args.lat_ticks:,} ticks (µs)",
        "",
        "| path | p50 | p90 | p99 |",
        "|---|--:|--:|--:|",
    ]
    for name, label in [
        ("lat_bus_only", "C producer -> bus -> C reader (no NATS)"),
        ("lat_bridge", "C producer -> bus -> out -> NATS -> in -> bus -> C reader"),
        ("lat_bridge_confirm_bridge", "same, --confirm bridge"),
        ("lat_nats_py", "nats-py producer -> NATS -> in -> bus -> C reader"),
        ("lat_nats_floor", "NATS alone: libnats publisher -> nats-server -> libnats subscriber"),
    ]:
        rows = results[name]
        lines.append(f"| {label} | {med(rows, 'p50_us'):.1f} | {med(rows, 'p90_us'):.1f} | {med(rows, 'p99_us'):.1f} |")
    added = med(results["lat_bridge"], "p50_us") - med(results["lat_bus_only"], "p50_us")
    floor = med(results["lat_nats_floor"], "p50_us")
    lines += ["", f"Added by bridge out + NATS + bridge in over the bus alone, p50: {added:.1f} µs; "
              f"of that, one hop through nats-server with no bridge costs {floor:.1f} µs (p50), "
              f"the two bridges and their buses {added - floor:.1f} µs."]
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"machine": info, "args": vars(args), "results": results},
                                                 indent=1))
    (out / "results.md").write_text(report)
    print(f"written: {out / 'results.json'}, {out / 'results.md'}")


if __name__ == "__main__":
    main()
