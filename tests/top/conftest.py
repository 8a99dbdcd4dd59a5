"""Fixtures for the tachyon-top tests: a per-test temporary directory, and
helper processes (bus_peer, hostile) that say "ready <pid>" once their bus
holds what the test expects, all ended at the end of the test whatever
happens.

Environment (set by `make test-top`): TACHYON_TOP (build/tools/tachyon-top),
BUS_PEER and HOSTILE (build/tests/top/).
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = os.environ.get("TACHYON_TOP", str(ROOT / "build" / "tools" / "tachyon-top"))
BUS_PEER = os.environ.get("BUS_PEER", str(ROOT / "build" / "tests" / "top" / "bus_peer"))
HOSTILE = os.environ.get("HOSTILE", str(ROOT / "build" / "tests" / "top" / "hostile"))
WAIT_S = 60  # generous: the machine may be loaded


class Proc:
    """A helper process; its stdout and stderr go to files in the test's directory."""

    def __init__(self, name, argv, workdir, user=None):
        self.name = name
        self.out_path = workdir / f"{name}.out"
        self.err_path = workdir / f"{name}.err"
        extra = {}
        if user is not None:
            extra = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.p = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=err,
                                      stdin=subprocess.DEVNULL, **extra)

    @property
    def pid(self):
        return self.p.pid

    def log(self):
        return f"{self.name} stdout:\n{self.out_path.read_text(errors='replace')}" \
               f"\n{self.name} stderr:\n{self.err_path.read_text(errors='replace')}"

    def wait_ready(self, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f"ready {self.pid}" in self.out_path.read_text(errors="replace"):
                return
            if self.p.poll() is not None:
                pytest.fail(f"{self.name} exited ({self.p.returncode}) before it was ready\n{self.log()}")
            time.sleep(0.02)
        pytest.fail(f"{self.name} not ready after {timeout} s\n{self.log()}")

    def kill(self, sig=signal.SIGKILL, reap=True):
        if self.p.poll() is None:
            os.kill(self.pid, sig)
        if reap:
            self.p.wait(WAIT_S)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)


class Helpers:
    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def start(self, name, argv, user=None):
        proc = Proc(name, argv, self.workdir, user=user)
        self.procs.append(proc)
        return proc

    def bus(self, name, producer_args=(), consumer_args=(), user=None, sockdir=None, peer=BUS_PEER):
        """A bus at <sockdir>/<name>.sock: a consumer that listens and a
        producer that connects, both ready. Returns (path, producer, consumer)."""
        path = str((sockdir or self.workdir) / f"{name}.sock")
        consumer = self.start(f"{name}-consumer", [peer, "consume", path, *consumer_args], user=user)
        producer = self.start(f"{name}-producer", [peer, "produce", path, *producer_args], user=user)
        consumer.wait_ready()
        producer.wait_ready()
        return path, producer, consumer

    def stop_all(self):
        for proc in self.procs:
            proc.stop()


@pytest.fixture
def workdir():
    # Short: tachyon-top shows a path whole only up to 60 characters, and the
    # tests find their buses by path (under $TMPDIR when that is short).
    base = tempfile.gettempdir()
    path = Path(tempfile.mkdtemp(prefix="ttop", dir=base if len(base) <= 24 else "/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def helpers(workdir):
    h = Helpers(workdir)
    try:
        yield h
    finally:
        h.stop_all()


def run_top(*args, top=TOP, user=None, timeout=WAIT_S):
    """Run tachyon-top; returns the CompletedProcess (fails the test on a hang)."""
    extra = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[]) if user else {}
    try:
        return subprocess.run([top, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **extra)
    except subprocess.TimeoutExpired:
        pytest.fail(f"tachyon-top {' '.join(args)} did not finish in {timeout} s")


def top_json(*args, interval="0.3", **kw):
    """One JSON document from tachyon-top --once --json."""
    r = run_top("--once", "--json", "--interval", interval, *args, **kw)
    assert r.returncode == 0, f"tachyon-top exited {r.returncode}: {r.stderr}"
    return json.loads(r.stdout)


def bus_at(doc, path):
    found = [b for b in doc["buses"] if b["path"] == path]
    assert len(found) <= 1, f"{path} listed {len(found)} times"
    return found[0] if found else None
