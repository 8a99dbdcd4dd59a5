"""The fan-out example end to end: the feed and its three readers (the Rust
strategy, the Python recorder and monitor) all receive ticks; kill -9 of the
recorder leaves the other two receiving; the feed's end ends them cleanly."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STRATEGY = os.path.join(HERE, "strategy", "target", "release", "fanout-strategy")


class Proc:
    """A child whose output lines are collected by a thread."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def last_number(self, pattern):
        for line in reversed(self.lines):
            m = re.search(pattern, line)
            if m:
                return int(m.group(1))
        return None


def wait_for(cond, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def test_killing_one_reader_leaves_the_others_receiving():
    assert os.path.exists(STRATEGY), "build it first: cargo build --release in strategy/"
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        sock = os.path.join(d, "md.sock")
        feed = Proc([sys.executable, "feed.py", "--socket", sock, "--rate", "5000", "--duration", "600"])
        wait_for(lambda: os.path.exists(sock), "the feed's socket")
        strategy = Proc([STRATEGY, sock])
        recorder = Proc([sys.executable, "recorder.py", "--socket", sock, "--out", os.path.join(d, "ticks.bin")])
        monitor = Proc([sys.executable, "monitor.py", "--socket", sock])
        procs = [feed, strategy, recorder, monitor]
        try:
            wait_for(lambda: (strategy.last_number(r"strategy: (\d+) ticks") or 0) > 0, "the strategy's ticks")
            wait_for(lambda: (recorder.last_number(r"recorder: (\d+) ticks recorded") or 0) > 0, "the recorder")
            wait_for(lambda: (monitor.last_number(r"total (\d+)") or 0) > 0, "the monitor")
            wait_for(lambda: feed.last_number(r"(\d+) readers") == 3, "three readers at the feed")

            recorder.p.send_signal(signal.SIGKILL)
            recorder.p.wait(30)
            wait_for(lambda: feed.last_number(r"(\d+) readers") == 2, "the feed to forget the dead recorder")
            s0 = strategy.last_number(r"strategy: (\d+) ticks")
            m0 = monitor.last_number(r"total (\d+)")
            wait_for(lambda: strategy.last_number(r"strategy: (\d+) ticks") > s0, "the strategy to go on")
            wait_for(lambda: monitor.last_number(r"total (\d+)") > m0, "the monitor to go on")
            assert strategy.p.poll() is None and monitor.p.poll() is None

            feed.p.send_signal(signal.SIGINT)  # the feed closes: the readers end cleanly
            assert feed.p.wait(30) == 0
            assert strategy.p.wait(30) == 0
            assert monitor.p.wait(30) == 0
            assert any("strategy: done" in l for l in strategy.lines)
            assert any("monitor: done" in l for l in monitor.lines)
        finally:
            for p in procs:
                if p.p.poll() is None:
                    p.p.kill()
                    p.p.wait()
