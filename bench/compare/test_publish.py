"""Benchmark outputs stay under build/ until make bench-publish copies a whole
run into bench/results/ (publish.py). Run by make test-bench-smoke."""
import json
import os
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import publish  # noqa: E402
import run  # noqa: E402


@pytest.fixture
def scratch():
    """A directory removed after the test (pytest's tmp_path keeps its
    directories after the run)."""
    with tempfile.TemporaryDirectory(prefix="tachyon-publish-") as d:
        yield d


def make_run(path, smoke=False, failed=False, plots=("latency.png", "throughput.png")):
    os.makedirs(path, exist_ok=True)
    runs = [{"ok": True}, {"ok": not failed, "error": "consumer got 10 of 20 ticks"}]
    with open(os.path.join(path, "results.json"), "w") as f:
        json.dump({"smoke": smoke, "seed_workload": [{"variant": "tachyon-seed", "runs": runs}]}, f)
    with open(os.path.join(path, "README.md"), "w") as f:
        f.write("# Benchmark results\n")
    for name in plots:
        with open(os.path.join(path, name), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + name.encode())


def test_run_writes_under_build_by_default():
    build = os.path.join(run.ROOT, "build") + os.sep
    for argv in ([], ["--smoke"]):
        assert run.parse_args(argv).out.startswith(build)


def test_a_whole_run_is_copied_and_stale_plots_go(scratch):
    src, dest = os.path.join(scratch, "run"), os.path.join(scratch, "published")
    make_run(src)
    os.makedirs(dest)
    with open(os.path.join(dest, "native_throughput.png"), "wb") as f:
        f.write(b"an older run's plot")
    assert publish.publish(src, dest) == 0
    assert sorted(os.listdir(dest)) == ["README.md", "latency.png", "results.json", "throughput.png"]
    with open(os.path.join(dest, "latency.png"), "rb") as f:
        assert f.read().endswith(b"latency.png")


@pytest.mark.parametrize("kind", ["smoke", "failed run", "missing"])
def test_an_incomplete_run_is_refused(scratch, kind, capsys):
    src, dest = os.path.join(scratch, "run"), os.path.join(scratch, "published")
    if kind != "missing":
        make_run(src, smoke=kind == "smoke", failed=kind == "failed run")
    assert publish.publish(src, dest) == 1
    assert not os.path.exists(dest)
    out = capsys.readouterr().out
    assert {"smoke": "--smoke", "failed run": "1 run(s) failed", "missing": "does not exist"}[kind] in out
