"""Errors name their cause and fit the call: the C library's sentence (the
path and the system's reason, the peer's pid, what a gone consumer left
unread), a hint for what this call can do about it (a listener is never told
to start a listener), and the code."""
import os
import signal
import socket
import threading
import time

import pytest

import tachyon
from conftest import FORK, published_pair


def listen_error(path, capacity=4096):
    with pytest.raises(tachyon.TachyonError) as ei:
        tachyon.Bus.listen(path, capacity, timeout=0.05)
    text = str(ei.value)
    assert text.startswith("listen")
    assert "start the listener" not in text and "connect with a timeout" not in text, text
    assert text.endswith("(%s = %d)" % (ei.value.code_name, ei.value.code)), text
    return ei.value, text


def test_listen_errors_name_the_path_and_never_advise_starting_a_listener(sock_path):
    d = os.path.dirname(sock_path)
    e, text = listen_error(os.path.join(d, "missing", "x.sock"))
    assert e.code_name == "ERR_NETWORK" and os.path.join(d, "missing") in text
    assert "directory does not exist" in text
    e, text = listen_error("/tmp/" + "y" * 200)
    assert e.code_name == "ERR_PATH_TOO_LONG" and "shorter path" in text
    with open(sock_path, "w"):
        pass
    e, text = listen_error(sock_path)
    assert e.code_name == "ERR_NOT_SOCKET" and sock_path in text and "pick another path" in text
    os.unlink(sock_path)
    e, text = listen_error(sock_path, 1000)
    assert e.code_name == "ERR_INVALID_SZ" and "power of two" in text
    e, text = listen_error(sock_path)
    assert e.code_name == "ERR_TIMEOUT" and "no process connected" in text


def test_listen_on_a_path_another_listener_owns(sock_path):
    first = threading.Thread(target=lambda: pytest.raises(
        tachyon.TachyonTimeoutError, tachyon.Bus.listen, sock_path, 4096, timeout=1))
    first.start()
    while not os.path.exists(sock_path):
        time.sleep(0.005)
    e, text = listen_error(sock_path)
    assert e.code_name == "ERR_ADDR_IN_USE" and isinstance(e, ConnectionError)
    assert sock_path in text and "stop the process that listens there" in text
    first.join(10)


def test_connect_errors_say_what_to_do(sock_path):
    with pytest.raises(ConnectionError) as ei:
        tachyon.Bus.connect(sock_path)
    text = str(ei.value)
    assert sock_path in text and "start the listener first" in text and "timeout" in text
    # A socket file nobody listens on any more.
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock_path)
    s.close()
    with pytest.raises(ConnectionError, match="no process listens on it") as ei:
        tachyon.Bus.connect(sock_path)
    assert sock_path in str(ei.value)


def test_connect_waits_for_a_listener_only_when_asked(sock_path):
    t0 = time.monotonic()
    with pytest.raises(ConnectionError):
        tachyon.Bus.connect(sock_path)  # one attempt, as published and as the C API
    assert time.monotonic() - t0 < 1
    got = {}
    later = threading.Timer(0.3, lambda: got.update(bus=tachyon.Bus.listen(sock_path, 4096, timeout=10)))
    later.start()
    t0 = time.monotonic()
    with tachyon.Bus.connect(sock_path, timeout=10) as bus:
        assert time.monotonic() - t0 >= 0.25
        bus.send(b"hi", 1)
    later.join(10)
    with got["bus"] as listener:
        assert listener.recv(timeout=5).data == b"hi"


def test_hints_fit_the_call(sock_path):
    rx_bus, tx_bus = published_pair(sock_path, 4096)
    with rx_bus, tx_bus:
        while True:
            try:
                tx_bus.send(b"x" * 100, 1, timeout=0)
            except tachyon.RingFullError as e:
                assert "pass a longer timeout" in str(e) and "ERR_FULL = 9" in str(e)
                break
        with pytest.raises(tachyon.RingFullError, match="acquire_tx never waits"):
            tx_bus._bus.acquire_tx(100)
        with pytest.raises(tachyon.TachyonValueError, match="max_payload"):
            tx_bus.send(bytes(5000), 1)
        with pytest.raises(tachyon.TachyonValueError, match="node_id must be in"):
            tx_bus.set_numa_node(99)
        rx_bus.drain_batch(timeout=5).release()
        with pytest.raises(tachyon.TachyonTimeoutError, match="no message within 0.01 s"):
            rx_bus.recv(timeout=0.01)
    with pytest.raises(tachyon.ClosedError, match="the bus is closed"):
        tx_bus.send(b"x")


def test_a_gone_consumer_is_named_with_what_it_left_unread(sock_path):
    def idle_consumer(path, conn):
        with tachyon.Bus.connect(path, timeout=10):
            conn.send(os.getpid())
            conn.recv()

    conn, child_conn = FORK.Pipe()
    p = FORK.Process(target=idle_consumer, args=(sock_path, child_conn), daemon=True)
    p.start()
    try:
        with tachyon.Bus.listen(sock_path, 4096, timeout=10) as bus:
            pid = conn.recv()
            for _ in range(5):
                bus.send(b"z" * 100, 1)
            os.kill(pid, signal.SIGKILL)
            p.join(10)
            with pytest.raises(tachyon.PeerDeadError) as ei:
                while True:
                    bus.send(b"z" * 100, 1, timeout=5)
            text = str(ei.value)
            assert "pid %d" % pid in text and "had not read" in text and "lost" in text, text
    finally:
        p.kill()
