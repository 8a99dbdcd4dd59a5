"""Shared fixtures: a short socket path, peers in real child processes, and
a listener/connector pair in this process.

Children are forked (multiprocessing's "fork" context) so they start in a few
milliseconds and can run any function of the test module. A child never
inherits an open bus: every test closes its buses, and a peer is forked before
the parent opens its end.
"""
import multiprocessing
import os
import shutil
import tempfile
import threading
import time

import pytest

import tachyon

FORK = multiprocessing.get_context("fork")


@pytest.fixture
def sock_path():
    # Unix socket paths are limited to 107 bytes: a directory of its own
    # under $TMPDIR when that is short (not tmp_path), removed afterwards.
    base = tempfile.gettempdir()
    d = tempfile.mkdtemp(prefix="tpy", dir=base if len(base) <= 40 else "/tmp")
    yield os.path.join(d, "bus.sock")
    shutil.rmtree(d, ignore_errors=True)


class Peer:
    """A child process running fn(path, conn, *args); conn is its end of a pipe."""

    def __init__(self, fn, path, *args):
        self.conn, child_conn = FORK.Pipe()
        self.proc = FORK.Process(target=_run_child, args=(fn, path, child_conn) + args, daemon=True)
        self.proc.start()
        child_conn.close()

    def result(self, timeout=30):
        if not self.conn.poll(timeout):
            raise AssertionError("peer sent no result within %ss" % timeout)
        return self.conn.recv()

    def join(self, timeout=30):
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
            raise AssertionError("peer did not exit within %ss" % timeout)
        return self.proc.exitcode

    def kill(self):
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)


def _run_child(fn, path, conn, *args):
    try:
        fn(path, conn, *args)
    except BaseException as e:  # report, so the test fails with the child's reason
        try:
            conn.send(("child-error", repr(e)))
        except Exception:
            pass
        raise


@pytest.fixture
def peers():
    started = []

    def start(fn, path, *args):
        p = Peer(fn, path, *args)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def listen(path, capacity=1 << 16, timeout=10):
    return tachyon.Bus.listen(path, capacity, timeout=timeout)


def published_pair(path, capacity=1 << 16):
    """(listener, connector) in this process, opened the way the published
    package's own tests do it: the listener in a thread, the connector in a
    loop that retries on ConnectionError until the listener is up."""
    got = {}

    def run_listener():
        try:
            got["bus"] = tachyon.Bus.listen(socket_path=path, capacity=capacity)
        except BaseException as e:  # reported below
            got["error"] = e

    t = threading.Thread(target=run_listener)
    t.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            connector = tachyon.Bus.connect(socket_path=path)
            break
        except ConnectionError:
            if time.monotonic() > deadline or "error" in got:
                t.join(10)
                raise
            time.sleep(0.005)
    t.join(10)
    if "error" in got:
        connector.close()
        raise got["error"]
    return got["bus"], connector


@pytest.fixture
def pair(sock_path):
    """A listener and a connector in this process; both closed afterwards."""
    buses = published_pair(sock_path)
    yield buses
    for b in buses:
        try:
            b.close()
        except BufferError:
            pass
