"""Request/reply in one process: a server thread and a caller, through the
low-level TachyonRpcBus and the published layer on top (RpcBus, guards,
RpcEndpoint, tachyon_rpc, RpcDispatcher), with what this package adds:
timeouts, error replies raised as RpcError, abandoned calls, empty payloads,
the GIL released while waiting."""
import struct
import threading
import time

import pytest

import tachyon


class Pair:
    """A server RpcBus (listening in a thread) and a caller RpcBus."""

    def __init__(self, path, cap_fwd=1 << 14, cap_rev=1 << 14):
        box = {}

        def listen():
            try:
                box["server"] = tachyon.RpcBus.rpc_listen(path, cap_fwd, cap_rev, timeout=10)
            except BaseException as e:  # surfaced below
                box["error"] = e

        t = threading.Thread(target=listen)
        t.start()
        self.client = tachyon.RpcBus.rpc_connect(path, timeout=10)
        t.join()
        if "error" in box:
            raise box["error"]
        self.server = box["server"]

    def close(self):
        self.client.destroy()
        self.server.destroy()


@pytest.fixture
def pair(sock_path):
    p = Pair(sock_path)
    yield p
    p.close()


@pytest.fixture
def small_pair(sock_path):
    p = Pair(sock_path, 1024, 1024)  # eight 128-byte slots per ring
    yield p
    p.close()


def serve_echo(server, transform=lambda b: b, reply_type=None):
    with server.serve(timeout=10) as rq:
        cid, mt, data = rq.correlation_id, rq.type_id, bytes(rq)
    server.reply(cid, transform(data), mt if reply_type is None else reply_type)
    return cid, mt, data


# ---- surface ------------------------------------------------------------------


def test_names_are_exported():
    for name in ("TachyonRpcBus", "RpcTxGuard", "RpcRxGuard", "RpcBus", "RpcDispatcher", "RpcEndpoint",
                 "tachyon_rpc", "MSG_TYPE_ERROR", "RpcError"):
        assert name in tachyon.__all__, name
        assert hasattr(tachyon, name)
    assert "_decode_error" not in tachyon.__all__
    assert tachyon.MSG_TYPE_ERROR == 0xFFFF
    assert tachyon.RpcBus.__slots__ == ("_rpc",)
    assert tachyon.RpcDispatcher.__slots__ == ("_handlers",)
    assert tachyon.TachyonRpcBus.__module__ == "tachyon"
    assert issubclass(tachyon.RpcError, tachyon.TachyonError)
    assert issubclass(tachyon.RpcNoHandlerError, KeyError)
    assert issubclass(tachyon.RpcHandlerError, RuntimeError)


def test_uninitialised_objects():
    rpc = tachyon.TachyonRpcBus("ignored", capacity=1)  # arguments are ignored, as published
    assert not rpc.connected
    for call in (lambda: rpc.wait(1), lambda: rpc.serve(), lambda: rpc.acquire_call(8),
                 lambda: rpc.acquire_reply(1, 8), lambda: rpc.set_polling_mode(1), lambda: rpc.call(b"x", 1)):
        with pytest.raises(RuntimeError, match="not connected"):
            call()
    rpc.destroy()  # idempotent, also when never connected
    bus = tachyon.RpcBus()
    with pytest.raises(RuntimeError):
        bus.serve()
    for cls in (tachyon.RpcTxGuard, tachyon.RpcRxGuard):
        with pytest.raises(TypeError):
            cls()


def test_listen_and_connect_arguments(sock_path):
    rpc = tachyon.TachyonRpcBus()
    with pytest.raises(ValueError, match="power of two"):
        rpc.listen(sock_path, 1000, 4096)
    with pytest.raises(ValueError, match="cap_rev"):
        rpc.listen(socket_path=sock_path, cap_fwd=4096, cap_rev=0)
    with pytest.raises(TypeError):
        rpc.listen(sock_path, 4096)  # all three are required
    with pytest.raises(tachyon.TachyonTimeoutError):
        rpc.listen(sock_path, 4096, 4096, timeout=0.05)
    with pytest.raises(tachyon.TachyonError):
        tachyon.RpcBus.rpc_connect(sock_path)  # nobody listens: one attempt, fails at once


def test_connected_twice_is_refused(pair, sock_path):
    with pytest.raises(RuntimeError, match="already connected"):
        pair.client._rpc.connect(sock_path)
    with pytest.raises(RuntimeError, match="already connected"):
        pair.server._rpc.listen(sock_path, 4096, 4096)


# ---- calls and replies --------------------------------------------------------


def test_round_trip(pair):
    assert pair.server._rpc.serves and not pair.client._rpc.serves
    assert pair.client._rpc.state == 2
    for i in range(1, 6):
        cid = pair.client.call(b"ping%d" % i, 7)
        assert cid == i  # 1, 2, 3, ... on a fresh connection
        served = serve_echo(pair.server, lambda b: b.upper(), reply_type=9)
        assert served == (cid, 7, b"ping%d" % i)
        with pair.client.wait(cid) as rx:
            assert (rx.correlation_id, rx.type_id, rx.actual_size) == (cid, 9, 5)
            assert bytes(rx) == b"PING%d" % i
            assert memoryview(rx).readonly


def test_empty_payloads_and_route_bits(pair):
    cid = pair.client.call(b"", 0x50009)
    cid_s, mt, data = serve_echo(pair.server)
    assert (cid_s, mt, data) == (cid, 9, b"")  # only the low 16 bits reach the server
    with pair.client.wait(cid) as rx:
        assert rx.actual_size == 0 and bytes(rx) == b""


def test_call_and_reply_with_max_payload_size(pair):
    cid = pair.client.call(bytearray(b"abc"), 1, max_payload_size=64)
    with pair.server.serve() as rq:
        assert bytes(rq) == b"abc"
    pair.server.reply(cid, memoryview(b"xyz"), 2, max_payload_size=100)
    with pair.client.wait(cid) as rx:
        assert bytes(rx) == b"xyz" and rx.type_id == 2
    with pytest.raises(ValueError):
        pair.client.call(b"too long", 1, max_payload_size=4)


def test_zero_copy_guards(pair):
    with pair.client.call_zero_copy(16, 3) as tx:
        assert tx.msg_type == 3 and tx.actual_size == 0 and tx.out_cid == 0
        with memoryview(tx) as mv:
            assert len(mv) == 16 and not mv.readonly
            struct.pack_into("<Q", mv, 0, 42)
        tx.actual_size = 8
    cid = tx.out_cid
    assert cid == 1
    with pair.server.serve() as rq:
        assert struct.unpack("<Q", rq)[0] == 42 and rq.type_id == 3
        with pair.server.reply_zero_copy(rq.correlation_id, 4, 5) as out:
            memoryview(out)[:4] = b"done"
            out.actual_size = 4
        assert out.out_cid == 0  # always 0 for replies
    with pair.client.wait(cid) as rx:
        assert bytes(rx) == b"done"


def test_tx_guard_attributes(pair):
    with pair.client.call_zero_copy(8, 0) as tx:
        tx.msg_type = 2**32 + 5  # stored mod 2**32
        assert tx.msg_type == 5
        with pytest.raises(OverflowError):
            tx.msg_type = -1
        with pytest.raises(OverflowError):
            tx.actual_size = -1
        with pytest.raises(TypeError):
            del tx.actual_size
        with pytest.raises(TypeError):
            del tx.msg_type
    # actual_size never set: a zero-length message, as published
    with pair.server.serve() as rq:
        assert rq.actual_size == 0 and rq.type_id == 5
    with pytest.raises(BufferError):
        memoryview(tx)  # after the commit


def test_tx_guard_exception_gives_the_slot_back(pair):
    with pytest.raises(KeyError):
        with pair.client.call_zero_copy(8, 1) as tx:
            tx.actual_size = 8
            raise KeyError("boom")
    with pytest.raises(tachyon.TachyonTimeoutError):
        pair.server.serve(timeout=0.05)  # nothing was sent
    assert pair.client.call(b"next", 1) == 1  # no id was used


def test_tx_guard_with_live_view_sends_nothing(pair):
    tx = pair.client.call_zero_copy(8, 1)
    view = memoryview(tx)
    view[:2] = b"hi"
    tx.actual_size = 2
    with pytest.raises(BufferError, match="nothing was sent"):
        tx.__exit__(None, None, None)
    with pytest.raises(BufferError):
        pair.client.call(b"x", 1)  # the slot is still out
    view.release()  # the slot is given back now
    assert pair.client.call(b"x", 1) == 1
    with pair.server.serve() as rq:
        assert bytes(rq) == b"x"


def test_rx_guard_with_live_view_keeps_the_message(pair):
    a = pair.client.call(b"a", 1)
    b = pair.client.call(b"b", 1)
    serve_echo(pair.server)
    serve_echo(pair.server)
    rx = pair.client.wait(a)
    view = memoryview(rx)
    with pytest.raises(BufferError):
        rx.__exit__(None, None, None)
    assert bytes(view) == b"a"  # still intact: not released under the view
    with pytest.raises(BufferError):
        pair.client.wait(b)
    view.release()
    with pair.client.wait(b) as rx2:
        assert bytes(rx2) == b"b"


def test_open_guards_block_a_second_acquire(pair):
    with pair.client.call_zero_copy(8, 1):
        with pytest.raises(RuntimeError, match="still open"):
            pair.client.call(b"x", 1)
    pair.client.call(b"y", 1)
    with pair.server.serve() as rq:
        with pytest.raises(RuntimeError, match="still held"):
            pair.server.serve()
        cid = rq.correlation_id
    pair.server.reply(cid, b"", 1)


def test_argument_checks(pair):
    with pytest.raises(ValueError):
        pair.client._rpc.acquire_call(-1)
    with pytest.raises(ValueError, match="correlation_id 0"):
        pair.server._rpc.acquire_reply(0, 8)
    with pytest.raises(ValueError, match="correlation_id 0"):
        pair.server.reply(0, b"x", 1)
    with pytest.raises(ValueError):
        pair.server._rpc.acquire_reply(1, -5)
    with pytest.raises(TypeError):
        pair.client.call("text", 1)
    with pytest.raises(OverflowError):
        pair.client.call(b"x", -1)


def test_roles(pair):
    with pytest.raises(RuntimeError, match="caller's"):
        pair.server.call(b"x", 1)
    with pytest.raises(RuntimeError, match="caller's"):
        pair.server.wait(1)
    with pytest.raises(RuntimeError, match="server's"):
        pair.client.serve()
    with pytest.raises(RuntimeError, match="server's"):
        pair.client.reply(1, b"x", 1)


# ---- ordering, pipelining, timeouts ---------------------------------------------


def test_pipelining(pair):
    cids = [pair.client.call(b"req%d" % i, i) for i in range(20)]
    assert cids == list(range(1, 21))
    for i in range(20):
        cid, mt, data = serve_echo(pair.server, lambda b: b"ans:" + b)
        assert (cid, mt) == (cids[i], i)
    for i, cid in enumerate(cids):
        with pair.client.wait(cid) as rx:
            assert bytes(rx) == b"ans:req%d" % i


def test_wrong_order_is_a_clear_error(pair):
    a = pair.client.call(b"a", 1)
    b = pair.client.call(b"b", 1)
    serve_echo(pair.server)
    serve_echo(pair.server)
    with pytest.raises(tachyon.TachyonError) as info:
        pair.client.wait(b)
    assert info.value.code_name == "ERR_WRONG_REPLY"
    assert "answers call 1, not 2" in str(info.value)
    assert pair.client._rpc.state == 2  # not fatal
    with pair.client.wait(a) as rx:
        assert bytes(rx) == b"a"
    with pair.client.wait(0) as rx:  # 0: whichever comes next; the guard carries the 0 asked for
        assert bytes(rx) == b"b" and rx.correlation_id == 0


def test_timeouts(pair):
    t0 = time.monotonic()
    with pytest.raises(tachyon.TachyonTimeoutError):
        pair.server.serve(timeout=0.1)
    assert time.monotonic() - t0 >= 0.09
    cid = pair.client.call(b"q", 1)
    with pytest.raises(TimeoutError):  # also the builtin
        pair.client.wait(cid, timeout=0.05)
    with pytest.raises(TimeoutError):
        pair.client.wait(cid, timeout=0)
    serve_echo(pair.server)
    with pair.client.wait(cid, timeout=5) as rx:  # still in flight after the timeouts
        assert bytes(rx) == b"q"
    with pytest.raises(ValueError):
        pair.client.wait(cid, timeout=-1)
    with pytest.raises(TypeError):
        pair.client.wait(cid, timeout="1")


def test_abandon(pair):
    a = pair.client.call(b"a", 1)
    b = pair.client.call(b"b", 1)
    pair.client.abandon(a)
    with pytest.raises(tachyon.TachyonError):
        pair.client.abandon(99)  # never issued
    serve_echo(pair.server)
    serve_echo(pair.server)
    with pair.client.wait(b, timeout=5) as rx:  # a's reply is dropped on the way
        assert bytes(rx) == b"b"


def test_full_request_ring(small_pair):
    client = small_pair.client
    for _ in range(8):
        client.call(b"0123456789", 1)
    with pytest.raises(tachyon.RingFullError):
        client.call(b"0123456789", 1)  # at once, as published
    t0 = time.monotonic()
    with pytest.raises(tachyon.RingFullError):
        client.call(b"0123456789", 1, timeout=0.05)
    assert time.monotonic() - t0 >= 0.04
    with small_pair.server.serve():
        pass
    assert client.call(b"0123456789", 1, timeout=5) == 9


def test_reply_waits_for_room(small_pair):
    """A reply to a caller that has not read earlier replies waits for room
    (published: an immediate error, and the reply lost)."""
    client, server = small_pair.client, small_pair.server
    cids = [client.call(b"x", 1) for _ in range(8)]
    for cid in cids:
        with server.serve():
            pass
        server.reply(cid, b"r", 1)
    extra = client.call(b"y", 1)
    with server.serve():
        pass
    with pytest.raises(tachyon.RingFullError):
        server.reply(extra, b"r", 1, timeout=0)

    def read_later():
        time.sleep(0.2)
        with client.wait(cids[0]):
            pass

    t = threading.Thread(target=read_later)
    t.start()
    server.reply(extra, b"late", 1)  # waits until the caller reads one
    t.join()
    for cid in cids[1:]:
        with client.wait(cid):
            pass
    with client.wait(extra) as rx:
        assert bytes(rx) == b"late"


def test_large_payloads_on_small_rings(sock_path):
    """1000-byte calls on 4 KiB rings: the published layer stalls at the
    fourth; here every round goes through."""
    p = Pair(sock_path, 4096, 4096)
    try:
        dispatcher = tachyon.RpcDispatcher()
        dispatcher.handler(1)(lambda req: bytes(req)[::-1])
        t = threading.Thread(target=dispatcher.serve_forever, args=(p.server,))
        t.start()
        echo = tachyon.tachyon_rpc(1)(lambda req: None)
        for i in range(500):
            payload = bytes([i % 251]) * 1000 + bytes(range(i % 50))
            assert echo.call(p.client, payload, timeout=10) == payload[::-1]
        p.client.destroy()
        t.join(10)
        assert not t.is_alive()  # serve_forever returned at the clean close
    finally:
        p.close()


# ---- endpoints and the dispatcher --------------------------------------------------


def test_tachyon_rpc_and_endpoint_attributes():
    for bad in (-1, 0xFFFF, 0x10000):
        with pytest.raises(ValueError):
            tachyon.tachyon_rpc(bad)

    @tachyon.tachyon_rpc(12)
    def quote(request):
        """Quote a price."""
        return bytes(request) * 2

    assert isinstance(quote, tachyon.RpcEndpoint)
    assert quote.msg_type == 12 and quote.__name__ == "quote" and quote.__doc__ == "Quote a price."
    assert quote.__wrapped__ is quote._fn and quote.__module__ == __name__
    assert "msg_type=12" in repr(quote) and "quote" in repr(quote)
    seen = []
    quote._fn = lambda req: seen.append(type(req)) or b""
    quote(b"x")
    quote(bytearray(b"x"))
    quote("passed through")
    assert seen == [memoryview, memoryview, str]


def test_decode_error():
    assert tachyon._decode_error(b"\x01\x02") == 0x0102
    assert tachyon._decode_error(memoryview(b"\x00\x07extra")) == 7
    with pytest.raises(struct.error):
        tachyon._decode_error(b"\x01")


def test_dispatcher_registration():
    d = tachyon.RpcDispatcher()

    @d.handler(3)
    def first(req):
        return b""

    with pytest.raises(ValueError, match="first"):
        d.register(tachyon.RpcEndpoint(lambda r: b"", 3))
    with pytest.raises(ValueError):
        d.register(tachyon.RpcEndpoint(lambda r: b"", 0xFFFF))
    assert d.register(tachyon.RpcEndpoint(lambda r: b"", 4)) is d


def test_dispatcher_replies_and_errors(pair):
    d = tachyon.RpcDispatcher()

    @d.handler(1)
    def upper(req):
        return bytes(req).upper()

    @d.handler(2)
    def broken(req):
        raise ZeroDivisionError("no price")

    @d.handler(3)
    def wrong_type(req):
        return 42

    @d.handler(4)
    def empty(req):
        return b""

    @d.handler(5)
    def echo_view(req):
        return req[1:]  # a view into the request: copied before it is released

    client = pair.client
    ep = {mt: tachyon.RpcEndpoint(lambda r: None, mt) for mt in (1, 2, 3, 4, 5, 9)}

    results = {}

    def call_all():
        for mt in (1, 2, 3, 4, 5, 9):
            try:
                results[mt] = ep[mt].call(client, b"abc", timeout=10)
            except Exception as e:
                results[mt] = e

    t = threading.Thread(target=call_all)
    t.start()
    d.serve_once(pair.server)
    with pytest.raises(tachyon.RpcHandlerError, match="broken") as info:
        d.serve_once(pair.server)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    with pytest.raises(RuntimeError, match="wrong_type"):
        d.serve_once(pair.server)
    d.serve_once(pair.server)
    d.serve_once(pair.server)
    with pytest.raises(KeyError, match="no handler for msg_type 9"):
        d.serve_once(pair.server)
    t.join(10)
    assert results[1] == b"ABC"
    assert results[4] == b""
    assert results[5] == b"bc"
    for mt in (2, 3, 9):
        err = results[mt]
        assert isinstance(err, tachyon.RpcError), err
        assert err.msg_type == mt and "msg_type %d" % mt in str(err)


def test_error_reply_on_the_wire(pair):
    """The published error reply: msg_type 0xFFFF, 2 bytes big-endian."""
    cid = pair.client.call(b"", 0x1234)
    d = tachyon.RpcDispatcher()
    with pytest.raises(KeyError):
        d.serve_once(pair.server)
    with pair.client.wait(cid) as rx:
        assert rx.type_id == tachyon.MSG_TYPE_ERROR
        assert bytes(rx) == b"\x12\x34"


def test_endpoint_call_with_on_response_and_timeout(pair):
    ep = tachyon.tachyon_rpc(1)(lambda r: None)
    with pytest.raises(tachyon.TachyonTimeoutError):
        ep.call(pair.client, b"late", timeout=0.05)  # the server is not serving yet
    serve_echo(pair.server)  # answers the abandoned call: its reply is dropped
    t = threading.Thread(target=serve_echo, args=(pair.server, lambda b: b * 2))
    t.start()
    n = ep.call(pair.client, b"xy", on_response=lambda view: (view.readonly, bytes(view)), timeout=10)
    t.join()
    assert n == (True, b"xyxy")


def test_gil_is_released_while_waiting(pair):
    cid = pair.client.call(b"q", 1)
    done = threading.Event()

    def waiter():
        with pytest.raises(tachyon.TachyonTimeoutError):
            pair.client.wait(cid, timeout=0.5)
        done.set()

    t = threading.Thread(target=waiter)
    t.start()
    count = 0
    while not done.is_set():
        count += 1
    t.join()
    assert count > 10000  # this thread kept running while the other waited


def test_destroy_from_another_thread_ends_a_wait(pair):
    errors = []

    def serve():
        try:
            pair.server.serve()
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=serve)
    t.start()
    time.sleep(0.1)
    pair.server.destroy()
    t.join(5)
    assert not t.is_alive()
    assert isinstance(errors[0], RuntimeError) and "destroyed" in str(errors[0])
    assert not pair.server._rpc.connected
