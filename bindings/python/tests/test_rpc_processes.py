"""Request/reply between two processes: the peer's end (kill -9 of either
side, a clean close), Ctrl-C in every blocking call, and a program written
against the published tachyon-ipc RPC API, run unchanged."""
import os
import signal
import time

import pytest

import tachyon

# The user's bound: a wait learns that its peer died within this long.
DEATH_BOUND_S = 0.25


def _server_answering(path, conn, answer):
    """Serve `answer` calls, read one more, report, then wait to be killed."""
    with tachyon.RpcBus.rpc_listen(path, 4096, 4096, timeout=20) as bus:
        for _ in range(answer):
            with bus.serve(timeout=20) as rq:
                cid, data = rq.correlation_id, bytes(rq)
            bus.reply(cid, data + b"!", 1)
        with bus.serve(timeout=20):
            conn.send("read the last call")
            time.sleep(60)


def test_server_killed_mid_call(sock_path, peers):
    peer = peers(_server_answering, sock_path, 2)
    with tachyon.RpcBus.rpc_connect(sock_path, timeout=20) as bus:
        cids = [bus.call(b"c%d" % i, 1) for i in range(3)]
        assert peer.result() == "read the last call"
        os.kill(peer.proc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        for i in range(2):  # every reply it sent is read first
            with bus.wait(cids[i]) as rx:
                assert bytes(rx) == b"c%d!" % i
        with pytest.raises(tachyon.PeerDeadError) as info:
            bus.wait(cids[2])
        elapsed = time.monotonic() - t0
        assert not isinstance(info.value, tachyon.PeerClosedError)
        assert "server process" in str(info.value)
        assert elapsed < DEATH_BOUND_S, "learned of the death after %.3f s" % elapsed
        assert bus._rpc.state == 3


def _caller_calling(path, conn, calls):
    with tachyon.RpcBus.rpc_connect(path, timeout=20) as bus:
        cid = 0
        for i in range(calls):
            cid = bus.call(b"req%d" % i, 2)
        conn.send("called")
        bus.wait(cid)  # never answered: killed here


def test_caller_killed_mid_call(sock_path, peers):
    peer = peers(_caller_calling, sock_path, 3)
    with tachyon.RpcBus.rpc_listen(sock_path, 4096, 4096, timeout=20) as bus:
        assert peer.result() == "called"
        os.kill(peer.proc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        for i in range(3):  # every request it sent
            with bus.serve() as rq:
                assert bytes(rq) == b"req%d" % i and rq.correlation_id == i + 1
        with pytest.raises(tachyon.PeerDeadError):
            bus.serve()
        elapsed = time.monotonic() - t0
        assert elapsed < DEATH_BOUND_S, "learned of the death after %.3f s" % elapsed


def _caller_closing(path, conn):
    with tachyon.RpcBus.rpc_connect(path, timeout=20) as bus:
        cid = bus.call(b"only", 1)
        with bus.wait(cid, timeout=20) as rx:
            conn.send(bytes(rx))


def test_clean_close_ends_serve_forever(sock_path, peers):
    peer = peers(_caller_closing, sock_path)
    d = tachyon.RpcDispatcher()
    d.handler(1)(lambda req: bytes(req)[::-1])
    with tachyon.RpcBus.rpc_listen(sock_path, 4096, 4096, timeout=20) as bus:
        d.serve_forever(bus)  # returns once the caller closed
        assert peer.result() == b"ylno"
        with pytest.raises(tachyon.PeerClosedError):
            bus.serve(timeout=5)
    assert peer.join() == 0


# ---- Ctrl-C -------------------------------------------------------------------


def _interrupted(path, conn, what):
    """Block in `what` until SIGINT; report what was raised."""
    try:
        if what == "listen":
            conn.send("blocking")
            tachyon.RpcBus.rpc_listen(path, 4096, 4096)
        elif what == "serve":
            with tachyon.RpcBus.rpc_listen(path, 4096, 4096, timeout=20) as bus:
                conn.send("blocking")
                bus.serve()
        else:
            with tachyon.RpcBus.rpc_connect(path, timeout=20) as bus:
                cid = bus.call(b"x", 1)
                conn.send("blocking")
                bus.wait(cid, spin_threshold=2**32 - 1)  # spins, never sleeps
    except KeyboardInterrupt:
        conn.send("KeyboardInterrupt")
    except BaseException as e:
        conn.send(repr(e))


def _silent_server(path, conn):
    with tachyon.RpcBus.rpc_listen(path, 4096, 4096, timeout=20) as bus:
        conn.send("listening")
        with bus.serve(timeout=20):
            time.sleep(30)


@pytest.mark.parametrize("what", ["listen", "serve", "wait"])
def test_ctrl_c_interrupts_blocking_calls(sock_path, peers, what):
    other = None
    if what == "wait":
        other = peers(_silent_server, sock_path)
    peer = peers(_interrupted, sock_path, what)
    if what == "serve":
        caller = tachyon.RpcBus.rpc_connect(sock_path, timeout=20)
    assert peer.result() == "blocking"
    time.sleep(0.2)  # well inside the blocking call
    t0 = time.monotonic()
    os.kill(peer.proc.pid, signal.SIGINT)
    assert peer.result(timeout=10) == "KeyboardInterrupt"
    assert time.monotonic() - t0 < 5
    if what == "serve":
        caller.destroy()
    if other:
        other.kill()


# ---- a program written against the published API ----------------------------------

PUBLISHED_STYLE_SERVER = '''
import sys
import tachyon
from tachyon import RpcBus, RpcDispatcher, tachyon_rpc, MSG_TYPE_ERROR

dispatcher = RpcDispatcher()

@tachyon_rpc(1)
def add(payload):
    a, b = int.from_bytes(payload[:4], "little"), int.from_bytes(payload[4:8], "little")
    return (a + b).to_bytes(4, "little")

dispatcher.register(add)

@dispatcher.handler(2)
def shout(payload):
    return bytes(payload).upper()

bus = RpcBus.rpc_listen(sys.argv[1], 1 << 16, 1 << 16)
bus.set_polling_mode(1)
served = 0
while served < 6:
    try:
        dispatcher.serve_once(bus, spin_threshold=10000)
    except (KeyError, RuntimeError):
        pass
    served += 1
# the low-level guards, as published
rx = bus.serve(spin_threshold=10000)
with rx:
    cid, mt, data = rx.correlation_id, rx.type_id, bytes(rx)
with bus.reply_zero_copy(cid, len(data) + 1, mt) as tx:
    mv = memoryview(tx)
    mv[: len(data)] = data
    mv[len(data)] = 0x21
    mv.release()
    tx.actual_size = len(data) + 1
raw = bus._rpc
with raw.serve(spin_threshold=100) as rq:
    raw_cid = rq.correlation_id
bus.reply(raw_cid, b"raw", msg_type=7)
bus.__exit__(None, None, None)
'''


def test_published_style_program_runs_unchanged(sock_path, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "server.py"
    script.write_text(PUBLISHED_STYLE_SERVER)
    server = subprocess.Popen([sys.executable, str(script), sock_path])
    try:
        for _ in range(400):  # the published tests wait for the listener like this
            if os.path.exists(sock_path):
                break
            time.sleep(0.025)
        bus = tachyon.RpcBus.rpc_connect(sock_path)
        with bus:
            add = tachyon.tachyon_rpc(1)(lambda p: None)
            assert add.call(bus, (2).to_bytes(4, "little") + (40).to_bytes(4, "little")) == (42).to_bytes(4, "little")
            shout = tachyon.RpcEndpoint(lambda p: None, 2)
            assert shout.call(bus, b"hi", on_response=lambda mv: bytes(mv)) == b"HI"
            # an unknown msg_type: the published way to see the error reply
            cid = bus.call(b"?", 99)
            with bus.wait(cid) as rx:
                assert rx.type_id == tachyon.MSG_TYPE_ERROR
                assert tachyon._decode_error(memoryview(rx)) == 99
            # pipelined calls, waited for in order
            cids = [bus.call(b"%d" % i, 2) for i in range(3)]
            for i, cid in enumerate(cids):
                with bus.wait(cid, spin_threshold=10000) as rx:
                    assert bytes(rx) == b"%d" % i
            # zero-copy call
            with bus.call_zero_copy(8, 5) as tx:
                memoryview(tx)[:4] = b"zero"
                tx.actual_size = 4
            with bus.wait(tx.out_cid) as rx:
                assert bytes(rx) == b"zero!" and rx.type_id == 5
            raw = bus._rpc
            g = raw.acquire_call(max_payload_size=3)
            with g:
                memoryview(g)[:3] = b"low"
                g.actual_size = 3
                g.msg_type = 8
            with raw.wait(correlation_id=g.out_cid, spin_threshold=100) as rx:
                assert bytes(rx) == b"raw" and rx.type_id == 7
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
