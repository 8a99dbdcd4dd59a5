"""Request/reply between two processes: one server, one caller.

The low-level connection is ``TachyonRpcBus`` (the C extension); this module
adds what the published package has on top of it:

* ``RpcBus``: ``rpc_listen`` (the server) / ``rpc_connect`` (the caller),
  ``call`` / ``wait`` / ``serve`` / ``reply`` and their zero-copy forms;
* ``tachyon_rpc(msg_type)``, a decorator that makes a function an
  ``RpcEndpoint``: called locally, or remotely with ``endpoint.call(bus, payload)``;
* ``RpcDispatcher``: serves requests by msg_type with registered endpoints;
* ``MSG_TYPE_ERROR`` (0xFFFF) and its 2-byte error reply.

Server::

    dispatcher = tachyon.RpcDispatcher()

    @dispatcher.handler(1)
    def price(request):            # request: a read-only memoryview
        return b"..."              # any bytes-like object

    with tachyon.RpcBus.rpc_listen("/tmp/pricing.sock", 1 << 16, 1 << 16) as bus:
        dispatcher.serve_forever(bus)  # returns when the caller closes

Caller::

    price = tachyon.tachyon_rpc(1)(lambda request: None)   # or the same endpoint object
    with tachyon.RpcBus.rpc_connect("/tmp/pricing.sock", timeout=5) as bus:
        reply = price.call(bus, b"...", timeout=1.0)   # bytes; RpcError on an error reply

Replies come in the order the calls were made: several calls may be in
flight (``call`` returns at once with the id to ``wait`` for), and are waited
for in that order.
"""
import struct
import time

from ._tachyon import PeerClosedError, TachyonError, TachyonRpcBus

__all__ = [
    "MSG_TYPE_ERROR",
    "RpcBus",
    "RpcDispatcher",
    "RpcEndpoint",
    "RpcError",
    "tachyon_rpc",
]

#: The msg_type of an error reply: the server had no handler for the request,
#: or its handler failed. The payload is the request's msg_type, 2 bytes big-endian.
MSG_TYPE_ERROR = 0xFFFF

_DEFAULT_SPIN = 10000
_ERROR_PAYLOAD = struct.Struct(">H")


def _encode_error(msg_type):
    """The payload of an error reply for a request of `msg_type`."""
    return _ERROR_PAYLOAD.pack(msg_type & 0xFFFF)


def _decode_error(payload):
    """The request msg_type an error reply names (struct.error if under 2 bytes)."""
    return _ERROR_PAYLOAD.unpack_from(payload)[0]


class RpcError(TachyonError):
    """The server answered a call with an error reply (MSG_TYPE_ERROR): it has
    no handler for the request's msg_type, or the handler failed (the server's
    RpcDispatcher raised KeyError / RuntimeError on its side).

    Attributes: ``msg_type`` (the request's type as the server reports it, or
    None when the error reply carried none) and ``correlation_id``.
    """

    msg_type = None
    correlation_id = None

    def __init__(self, message, msg_type=None, correlation_id=None):
        super().__init__(message)
        self.msg_type = msg_type
        self.correlation_id = correlation_id


class RpcHandlerError(RuntimeError):
    """RpcDispatcher.serve_once: the handler raised, or returned something that
    is not bytes-like. The caller got an error reply; the handler's exception
    is the ``__cause__``."""


class RpcNoHandlerError(KeyError):
    """RpcDispatcher.serve_once: no handler is registered for the request's
    msg_type. The caller got an error reply."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


def _remaining(deadline):
    """Seconds left before `deadline` (time.monotonic()), None for none."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


class RpcBus:
    """A request/reply connection: ``rpc_listen`` makes the server, ``rpc_connect``
    the caller. Use it as a context manager (exit destroys it).

    Timeouts are in seconds; None waits forever. A call never waits for room
    by default (RingFullError at once, as published): a caller with calls in
    flight must be free to read their replies. A reply waits for room by
    default: the caller reads replies in order, so room comes.
    """

    __slots__ = ("_rpc",)

    def __init__(self):
        self._rpc = TachyonRpcBus()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self._rpc.destroy()

    def __repr__(self):
        return "<tachyon.RpcBus %r>" % (self._rpc,)

    @classmethod
    def rpc_listen(cls, socket_path, cap_fwd, cap_rev, *, timeout=None):
        """Be the server: a request ring of cap_fwd bytes and a reply ring of
        cap_rev bytes (powers of two), for the one caller that connects to
        socket_path. Blocks until it comes (or `timeout` passes)."""
        bus = cls()
        bus._rpc.listen(socket_path, cap_fwd, cap_rev, timeout=timeout)
        return bus

    @classmethod
    def rpc_connect(cls, socket_path, *, timeout=0):
        """Be the caller: connect to the server at socket_path. `timeout`:
        seconds to keep trying while nobody listens yet (0: one attempt)."""
        bus = cls()
        bus._rpc.connect(socket_path, timeout=timeout)
        return bus

    # The published README spells them so.
    listen = rpc_listen
    connect = rpc_connect

    def destroy(self):
        """Close this end (idempotent); the peer's waits end with PeerClosedError."""
        self._rpc.destroy()

    def set_polling_mode(self, pure_spin):
        """Non-zero: this side's waits spin and never sleep."""
        self._rpc.set_polling_mode(pure_spin=pure_spin)

    def peer_alive(self):
        """True while the peer process lives and has not closed the connection."""
        return self._rpc.peer_alive()

    # ---- the caller ----------------------------------------------------------

    def call(self, payload, msg_type, max_payload_size=None, spin_threshold=_DEFAULT_SPIN, *, timeout=0):
        """Send `payload` (bytes-like, may be empty) as a request of `msg_type`;
        returns its correlation id at once. `max_payload_size` reserves a
        larger slot (as published); `spin_threshold` is unused (as published).
        `timeout`: seconds to wait for room in the request ring (0: none)."""
        if max_payload_size is None:
            return self._rpc.call(payload, msg_type, timeout=timeout)
        with memoryview(payload) as src:
            n = src.nbytes
            if n > max_payload_size:
                raise ValueError("payload of %d bytes is larger than max_payload_size=%d" % (n, max_payload_size))
            with self._rpc.acquire_call(max_payload_size, timeout=timeout) as tx:
                with memoryview(tx) as dst:
                    dst[:n] = src.cast("B")
                tx.actual_size = n
                tx.msg_type = msg_type
        return tx.out_cid

    def call_zero_copy(self, max_payload_size, msg_type, *, timeout=0):
        """A request slot to write in place (msg_type preset): set
        ``actual_size``; the with-block's exit sends it and sets ``out_cid``."""
        tx = self._rpc.acquire_call(max_payload_size, timeout=timeout)
        tx.msg_type = msg_type
        return tx

    def wait(self, correlation_id, spin_threshold=_DEFAULT_SPIN, *, timeout=None):
        """The reply to a call, in place (RpcRxGuard); 0 takes whichever comes
        next. Wait in the order the calls were made. After a timeout the call
        is still in flight: wait again, or ``abandon`` it."""
        return self._rpc.wait(correlation_id, spin_threshold, timeout=timeout)

    def abandon(self, correlation_id):
        """Give up on a call: its reply is dropped when it comes."""
        self._rpc.abandon(correlation_id)

    # ---- the server ----------------------------------------------------------

    def serve(self, spin_threshold=_DEFAULT_SPIN, *, timeout=None):
        """The next request, in place (RpcRxGuard): ``correlation_id`` is the
        id to reply to, ``type_id`` its msg_type."""
        return self._rpc.serve(spin_threshold, timeout=timeout)

    def reply(self, correlation_id, payload, msg_type, max_payload_size=None, *, timeout=None):
        """Send `payload` (bytes-like, may be empty) as the reply to call
        `correlation_id`, waiting for room up to `timeout` (None: forever)."""
        if max_payload_size is None:
            self._rpc.reply(correlation_id, payload, msg_type, timeout=timeout)
            return
        with memoryview(payload) as src:
            n = src.nbytes
            if n > max_payload_size:
                raise ValueError("payload of %d bytes is larger than max_payload_size=%d" % (n, max_payload_size))
            with self._rpc.acquire_reply(correlation_id, max_payload_size, timeout=timeout) as tx:
                with memoryview(tx) as dst:
                    dst[:n] = src.cast("B")
                tx.actual_size = n
                tx.msg_type = msg_type

    def reply_zero_copy(self, correlation_id, max_payload_size, msg_type, *, timeout=None):
        """A reply slot to write in place (msg_type preset); set ``actual_size``."""
        tx = self._rpc.acquire_reply(correlation_id, max_payload_size, timeout=timeout)
        tx.msg_type = msg_type
        return tx


class RpcEndpoint:
    """A function served under one msg_type (made by ``tachyon_rpc``).

    Calling the endpoint runs the function here; ``endpoint.call(bus, payload)``
    runs it on the server at the other end of `bus`.
    """

    def __init__(self, fn, msg_type):
        self._fn = fn
        self._msg_type = msg_type
        for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
            try:
                setattr(self, attr, getattr(fn, attr))
            except AttributeError:
                pass
        self.__wrapped__ = fn

    @property
    def msg_type(self):
        """The msg_type this endpoint is served under."""
        return self._msg_type

    @msg_type.setter
    def msg_type(self, value):
        self._msg_type = value

    def __call__(self, payload):
        if isinstance(payload, (bytes, bytearray)):
            payload = memoryview(payload)
        return self._fn(payload)

    def __repr__(self):
        return "<RpcEndpoint msg_type=%d fn=%s>" % (self.msg_type, getattr(self._fn, "__qualname__", self._fn))

    def call(self, bus, payload, on_response=None, spin_threshold=_DEFAULT_SPIN, *, timeout=None):
        """Call the server over `bus` (an RpcBus or TachyonRpcBus) and wait for
        its reply: the reply's bytes, or ``on_response(memoryview)`` (the view
        is valid only during that call). Raises RpcError when the server sends
        an error reply, TachyonTimeoutError when `timeout` seconds pass (the
        call is then abandoned: its reply, if it comes, is dropped),
        PeerDeadError when the server is gone."""
        rpc = bus._rpc if isinstance(bus, RpcBus) else bus
        deadline = None if timeout is None else time.monotonic() + timeout
        # Room in the request ring: waited for only within a timeout.
        cid = rpc.call(payload, self.msg_type, timeout=0 if timeout is None else timeout)
        try:
            rx = rpc.wait(cid, spin_threshold, timeout=_remaining(deadline))
        except BaseException:
            try:
                rpc.abandon(cid)  # nobody else knows its id: drop its reply when it comes
            except Exception:
                pass
            raise
        with rx:
            if rx.type_id == MSG_TYPE_ERROR:
                raise _error_reply(rx, cid)
            with memoryview(rx) as view:
                return on_response(view) if on_response is not None else bytes(view)


def _error_reply(rx, cid):
    with memoryview(rx) as view:
        failed = _decode_error(view) if view.nbytes >= 2 else None
    what = "msg_type %d" % failed if failed is not None else "the request"
    return RpcError(
        "the server could not handle %s (call %d): it has no handler for it, or the handler failed" % (what, cid),
        msg_type=failed,
        correlation_id=cid,
    )


def tachyon_rpc(msg_type):
    """Decorator: make ``fn(memoryview) -> bytes`` an RpcEndpoint served under
    `msg_type` (0 to 0xFFFE; 0xFFFF is MSG_TYPE_ERROR)."""
    if isinstance(msg_type, bool) or not isinstance(msg_type, int) or not 0 <= msg_type <= 0xFFFE:
        raise ValueError("msg_type must be an int from 0 to 0xFFFE (0xFFFF is MSG_TYPE_ERROR), got %r" % (msg_type,))

    def decorate(fn):
        return RpcEndpoint(fn, msg_type)

    return decorate


def _as_bytes(result):
    """A handler's result as bytes (copied while the request is still held:
    it may be a view into it)."""
    if type(result) is bytes:
        return result
    return bytes(memoryview(result))  # TypeError: not bytes-like


class RpcDispatcher:
    """Serves requests with the endpoint registered for their msg_type.

    A request with no handler, or whose handler raises or returns something
    that is not bytes-like, gets an error reply (MSG_TYPE_ERROR), and
    ``serve_once`` raises RpcNoHandlerError (a KeyError) or RpcHandlerError (a
    RuntimeError, caused by the handler's exception). Otherwise the handler's
    result is the reply, with the request's msg_type.
    """

    __slots__ = ("_handlers",)

    def __init__(self):
        self._handlers = {}

    def register(self, endpoint):
        """Serve `endpoint.msg_type` with `endpoint`; returns self."""
        msg_type = endpoint.msg_type
        if msg_type == MSG_TYPE_ERROR:
            raise ValueError("msg_type 0xFFFF is MSG_TYPE_ERROR, reserved for error replies")
        existing = self._handlers.get(msg_type)
        if existing is not None:
            raise ValueError(
                "msg_type %d is already handled by %s" % (msg_type, getattr(existing, "__qualname__", existing))
            )
        self._handlers[msg_type] = endpoint
        return self

    def handler(self, msg_type):
        """Decorator: register ``fn(memoryview) -> bytes`` for `msg_type`."""

        def decorate(fn):
            endpoint = RpcEndpoint(fn, msg_type)
            self.register(endpoint)
            return endpoint

        return decorate

    def serve_once(self, bus, spin_threshold=_DEFAULT_SPIN, *, timeout=None):
        """Serve one request (waiting up to `timeout` seconds for it)."""
        rpc = bus._rpc if isinstance(bus, RpcBus) else bus
        failure = None
        result = None
        with rpc.serve(spin_threshold, timeout=timeout) as request:
            cid = request.correlation_id
            msg_type = request.type_id
            handler = self._handlers.get(msg_type)
            if handler is not None:
                try:
                    with memoryview(request) as view:
                        result = _as_bytes(handler._fn(view))
                except Exception as exc:  # KeyboardInterrupt and SystemExit go through
                    failure = exc
        if handler is None:
            rpc.reply(cid, _encode_error(msg_type), MSG_TYPE_ERROR)
            raise RpcNoHandlerError(
                "no handler for msg_type %d (call %d); the caller got an error reply" % (msg_type, cid)
            )
        if failure is not None:
            rpc.reply(cid, _encode_error(msg_type), MSG_TYPE_ERROR)
            name = getattr(handler, "__qualname__", repr(handler))
            raise RpcHandlerError(
                "handler %s failed on call %d (msg_type %d): %r; the caller got an error reply"
                % (name, cid, msg_type, failure)
            ) from failure
        rpc.reply(cid, result, msg_type)

    def serve_forever(self, bus, spin_threshold=_DEFAULT_SPIN, *, on_error=None):
        """Serve requests until the caller closes the connection (then return).

        A request without a handler or with a failing handler is answered with
        an error reply and serving goes on; ``on_error(exc)``, if given, sees
        each such RpcNoHandlerError / RpcHandlerError. PeerDeadError (the
        caller died), KeyboardInterrupt and every other exception propagate.
        """
        while True:
            try:
                self.serve_once(bus, spin_threshold)
            except (RpcNoHandlerError, RpcHandlerError) as exc:
                if on_error is not None:
                    on_error(exc)
            except PeerClosedError:
                return
