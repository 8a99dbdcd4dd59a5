"""The request/reply example end to end: the Rust pricing service against
the Python client (every quote checked against the shared formula, an
unknown symbol refused with an error reply, the service's own count), and
either side killed: the other learns it at once.

Needs the service built (cargo build --release in service/) and the tachyon
package installed; `make test-rpc-example` does both.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import tachyon

HERE = Path(__file__).resolve().parent
SERVICE = HERE / "service" / "target" / "release" / "pricing-service"
CLIENT = HERE / "client.py"
TIMEOUT_S = 120
DEATH_BOUND_S = 0.25

sys.path.insert(0, str(HERE))
import client  # noqa: E402  (the example's request format and formula)


@pytest.fixture
def socket_path():
    d = tempfile.mkdtemp(prefix="tpr", dir="/tmp")
    yield os.path.join(d, "pricing.sock")
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


def start_service(socket_path):
    if not SERVICE.exists():
        pytest.fail(f"{SERVICE} is not built: run cargo build --release in {SERVICE.parents[2]}")
    env = dict(os.environ, TACHYON_SOCKET=socket_path)
    return subprocess.Popen([str(SERVICE)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc):
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"did not finish in {TIMEOUT_S} s:\n{out}")
    return proc.returncode, out


def test_every_quote_is_right(socket_path):
    service = start_service(socket_path)
    env = dict(os.environ, TACHYON_SOCKET=socket_path, QUOTES="3000", DEPTH="16")
    run = subprocess.run([sys.executable, str(CLIENT)], env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    code, out = finish(service)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "every quote was right" in run.stdout
    assert "round trip p50" in run.stdout and "in flight" in run.stdout
    assert "the service counted 8000 quotes given and 1 refused" in run.stdout
    assert code == 0, out
    assert "8000 quotes given, 1 refused" in out and "closed the connection" in out


def test_a_wrong_quote_is_caught():
    """The client's check can fail: a quote one unit off is not the formula's."""
    symbol, quantity, side = client.order(5)
    good = client.expected(symbol, quantity, side)
    assert client.REPLY.unpack(client.REPLY.pack(*good)) == good
    bad = (symbol, good[1] + 1e-9, good[2], good[3])
    assert client.REPLY.unpack(client.REPLY.pack(*bad)) != good


def test_a_killed_service_ends_the_clients_call(socket_path):
    service = start_service(socket_path)
    try:
        with tachyon.RpcBus.rpc_connect(socket_path, timeout=30) as bus:
            request = client.REQUEST.pack(*client.order(0))
            client.quote.call(bus, request, timeout=5)
            os.kill(service.pid, signal.SIGKILL)
            service.wait()
            t0 = time.monotonic()
            with pytest.raises(tachyon.PeerDeadError):
                client.quote.call(bus, request, timeout=5)
            assert time.monotonic() - t0 < DEATH_BOUND_S
    finally:
        if service.poll() is None:
            service.kill()
        finish(service)


def test_a_killed_client_ends_the_service(socket_path):
    service = start_service(socket_path)
    caller = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, tachyon\n"
        "bus = tachyon.RpcBus.rpc_connect(sys.argv[1], timeout=30)\n"
        "bus.call(b'x' * 16, 9)\n"
        "print('called', flush=True)\n"
        "time.sleep(60)\n"), socket_path], stdout=subprocess.PIPE, text=True)
    try:
        assert caller.stdout.readline().strip() == "called"
        caller.kill()
        code, out = finish(service)
        assert code == 1
        assert "the client died" in out and "1 refused" in out
    finally:
        caller.kill()
        caller.wait()
