"""Fixtures for the bridge tests: a real nats-server on a free loopback port
in a per-test temporary directory (killed at the end whatever happens), and
helpers that run the bridge, the seed's producer and the tick reader as
processes with their output in files.

Environment (set by `make test-bridge`): BRIDGE (build/tools/tachyon-bridge),
TICK_READER (build/tests/bridge/tick_reader).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BRIDGE = os.environ.get("BRIDGE", str(ROOT / "build" / "tools" / "tachyon-bridge"))
TICK_READER = os.environ.get("TICK_READER", str(ROOT / "build" / "tests" / "bridge" / "tick_reader"))
PRODUCER = ROOT / "examples" / "python_producer_rust_consumer" / "producer.py"
REMOTE_READER = ROOT / "examples" / "remote_reader" / "remote_reader.py"
WAIT_S = 120  # generous: the machine may be loaded


def find_nats_server():
    path = shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)
    if not path:
        pytest.fail("nats-server not found: run make setup (it installs the Debian package nats-server)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A process whose stdout and stderr go to files in the test's directory."""

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.out_path = workdir / f"{name}.out"
        self.err_path = workdir / f"{name}.err"
        self._out = open(self.out_path, "w")
        self._err = open(self.err_path, "w")
        self.p = subprocess.Popen([str(a) for a in argv], stdout=self._out, stderr=self._err,
                                  stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))

    @property
    def pid(self):
        return self.p.pid

    def err(self):
        return self.err_path.read_text(errors="replace")

    def out(self):
        return self.out_path.read_text(errors="replace")

    def json(self):
        lines = [line for line in self.out().splitlines() if line.startswith("{")]
        assert lines, f"{self.name} printed no summary:\n{self.out()}\n{self.err()}"
        return json.loads(lines[-1])

    def wait_for(self, predicate, what, timeout=WAIT_S):
        """Wait until predicate(stderr text) holds; fail with the log if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.err()
            if predicate(text):
                return text
            if self.p.poll() is not None and not predicate(self.err()):
                pytest.fail(f"{self.name} exited ({self.p.returncode}) before {what}:\n{self.err()}")
            time.sleep(0.05)
        pytest.fail(f"{self.name}: no {what} after {timeout} s:\n{self.err()}")

    def finish(self, timeout=WAIT_S):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            pytest.fail(f"{self.name} did not finish in {timeout} s:\n{self.err()}\n{self.out()}")

    def signal(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self._out.close()
        self._err.close()


class NatsServer:
    """nats-server on 127.0.0.1:<free port>, its files in `workdir`."""

    def __init__(self, workdir, jetstream=False, config=None):
        self.workdir = workdir
        self.port = free_port()
        self.jetstream = jetstream
        self.config = config
        self.proc = None
        self.starts = 0

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def start(self):
        argv = [find_nats_server(), "-a", "127.0.0.1", "-p", str(self.port)]
        if self.jetstream:
            argv += ["-js", "-sd", str(self.workdir / "jetstream")]
        if self.config:
            conf = self.workdir / "nats.conf"
            conf.write_text(self.config)
            argv += ["-c", str(conf)]
        self.starts += 1
        self.proc = Proc(f"nats-server-{self.starts}", argv, self.workdir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4096).startswith(b"INFO"):
                        return self
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"nats-server did not start on port {self.port}:\n{self.proc.err()}")

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.p.poll() is None:
            self.proc.p.send_signal(sig)
            self.proc.p.wait(timeout=30)


class Run:
    """Everything one test starts; all of it is killed at the end."""

    def __init__(self, workdir):
        self.dir = workdir
        self.procs = []
        self.servers = []

    def nats(self, **kw):
        server = NatsServer(self.dir, **kw)
        self.servers.append(server)
        return server.start()

    def sock(self, name):
        return str(self.dir / f"{name}.sock")

    def start(self, name, argv, env=None):
        proc = Proc(name, argv, self.dir, env)
        self.procs.append(proc)
        return proc

    def bridge(self, name, mode, *args):
        return self.start(name, [BRIDGE, mode, *args])

    def reader(self, socket_path, *args):
        return self.start("reader", [TICK_READER, socket_path, "--until-closed", "--timeout", "300", *args])

    def producer(self, socket_path, ticks):
        env = {"TACHYON_SOCKET": socket_path, "TICKS": str(ticks), "CONNECT_TIMEOUT": "60"}
        return self.start("producer", [sys.executable, PRODUCER], env)

    def cleanup(self):
        for proc in self.procs:
            proc.kill()
        for server in self.servers:
            server.kill()
            if server.proc:
                server.proc.kill()


@pytest.fixture
def run():
    for tool in (BRIDGE, TICK_READER):
        if not os.path.exists(tool):
            pytest.fail(f"{tool} is not built: run make test-bridge")
    workdir = Path(tempfile.mkdtemp(prefix="tachyon-bridge-"))
    r = Run(workdir)
    try:
        yield r
    finally:
        r.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def counts(text, label):
    """The numbers of the last "<label>" report line by the word after each,
    e.g. counts(err, "done: ")["confirmed"]."""
    lines = [line for line in text.splitlines() if label in line]
    assert lines, f"no line with {label!r} in:\n{text}"
    line = lines[-1].split(label, 1)[1]
    out = {}
    for part in line.replace(";", ",").split(","):
        words = part.strip().split(" ")
        digits = []
        for w in words:
            if w.isdigit():
                digits.append(w)
            else:
                break
        if digits and len(words) > len(digits):
            out[words[len(digits)]] = int("".join(digits))
    return out
