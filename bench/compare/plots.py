"""PNG plots of a bench/compare/run.py run (matplotlib, no display needed):

  latency.png             one-way latency by percentile, one line per variant
                          (the median run's every tick), log scales
  throughput.png          producer throughput per variant, bars, log scale
  native_throughput.png   C -> C streaming throughput by payload size (bench/throughput.c)
"""

import matplotlib

matplotlib.use("Agg")  # files only: no display on a build machine
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLORS = {"floor": "#999999", "tachyon": "#d62728", "tachyon-batch": "#ff7f0e",
          "socket": "#1f77b4", "socket-batch": "#17becf", "ring": "#2ca02c"}
PERCENTILES = [50, 90, 99, 99.9, 99.99, 99.999]


def measured(seed):
    return [r for r in seed if r.get("median") is not None]


def latency_plot(path, seed):
    """x: percentile on a 1/(1-p) scale, so the tail gets room; y: latency."""
    fig, ax = plt.subplots(figsize=(13, 6))
    styles = ["-", "--", ":", "-."]
    seen = {}
    for r in measured(seed):
        v, med = r["variant"], r["median"]
        if not med.dump:
            continue
        try:
            lat = np.fromfile(med.dump, dtype=np.int64)
        except OSError:
            continue
        if lat.size == 0:
            continue
        lat = np.sort(np.maximum(lat, 1)) / 1000.0
        q = (np.arange(1, lat.size + 1) - 0.5) / lat.size
        x = 1.0 / (1.0 - q)
        k = seen.get(v.kind, 0)
        seen[v.kind] = k + 1
        ax.plot(x, lat, styles[k % len(styles)], color=COLORS.get(v.kind, "black"),
                label=f"{v.label} (p50 {np.percentile(lat, 50):.2f} µs)", linewidth=1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [1.0 / (1.0 - p / 100.0) for p in [0] + PERCENTILES]
    ax.set_xticks(ticks)
    ax.set_xticklabels(["0"] + [f"{p:g}" for p in PERCENTILES])
    ax.set_xlim(1, None)
    ax.set_xlabel("percentile")
    ax.set_ylabel("one-way latency (µs)")
    ax.set_title("Python producer -> native consumer: one-way latency (median run)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def throughput_plot(path, seed):
    rows = [r for r in measured(seed) if r["median"].producer.get("producer_rate")]
    labels = [r["variant"].label for r in rows]
    rates = [r["median"].producer["producer_rate"] / 1e6 for r in rows]
    lo = [r["spread"].get("producer_rate", [0, 0])[0] / 1e6 for r in rows]
    hi = [r["spread"].get("producer_rate", [0, 0])[1] / 1e6 for r in rows]
    err = [[max(m - a, 0) for m, a in zip(rates, lo)], [max(b - m, 0) for m, b in zip(rates, hi)]]
    colors = [COLORS.get(r["variant"].kind, "black") for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.5))
    y = np.arange(len(rows))
    ax.barh(y, rates, xerr=err, color=colors, capsize=3)
    for yi, rate, top in zip(y, rates, hi):
        ax.text(max(rate, top) * 1.08, yi, f"{rate:.2f}", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("producer throughput (M msg/s, log scale; whiskers: min-max of the runs)")
    ax.set_title("Python producer throughput, 32-byte MarketTicks")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def native_throughput_plot(path, rows):
    by_variant = {}
    for r in rows:
        if "msgs_per_s" in r:  # not the ratio lines
            by_variant.setdefault(r.get("variant"), []).append(r)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for variant, style, label in (("memcpy", "k--", "memcpy, one core, in cache"),
                                  ("memcpy-memory", "k:", "memcpy, one core, through memory")):
        copies = sorted((r for r in rows if r.get("variant") == variant), key=lambda r: r.get("size", 0))
        if copies:
            a2.plot([r["size"] for r in copies], [r.get("gb_per_s", 0) for r in copies], style, label=label)
    for name, rs in by_variant.items():
        rs = sorted(rs, key=lambda r: r.get("size", 0))
        sizes = [r.get("size", 0) for r in rs]
        style = "o-" if len(rs) > 1 else "s"
        a1.plot(sizes, [r.get("msgs_per_s", 0) / 1e6 for r in rs], style, label=name)
        a2.plot(sizes, [r.get("gb_per_s", 0) for r in rs], style, label=name)
    for ax, ylabel in ((a1, "M msg/s"), (a2, "GB/s")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("payload (bytes)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    a1.set_yscale("log")
    a1.legend(fontsize=7)
    a2.legend(fontsize=7)
    fig.suptitle("C -> C streaming throughput by payload size (build/bench/throughput)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def make_all(out_dir, seed, native):
    import os

    written = []
    path = os.path.join(out_dir, "latency.png")
    latency_plot(path, seed)
    written.append(path)
    path = os.path.join(out_dir, "throughput.png")
    throughput_plot(path, seed)
    written.append(path)
    rows = native.get("throughput", {}).get("rows") if isinstance(native, dict) else None
    if rows:
        path = os.path.join(out_dir, "native_throughput.png")
        native_throughput_plot(path, rows)
        written.append(path)
    return written
