"""asyncio for Bus: ``await bus.recv_async()``, ``async for msg in bus``,
``await bus.drain_batch_async()`` and ``await bus.send_async(...)``, on the
running event loop (asyncio's own or uvloop), through the bus's descriptor.

How a wait goes. A call first tries the non-blocking C call (``recv``,
``drain_batch`` or ``send`` with ``timeout=0``); only when that finds
nothing does it wait: the bus's watcher for this loop arms the descriptor
(``Bus.arm``) for every side a task waits for, and either learns that what
it waits for is there already (the call tries again at once) or watches the
descriptor with ``loop.add_reader`` until it turns readable, then wakes
every waiting task to try again. The reader is registered only while some
task waits, so an idle bus costs the loop nothing, and a readable
descriptor never spins the loop.

Nothing is lost to cancellation or timeouts: a waiting task has taken
nothing from the ring; it takes a message (or places one) only after its
wait returned, in a step with no ``await`` in it, so a cancelled
``recv_async`` leaves its message for the next receive and a cancelled
``send_async`` has sent nothing.

Closing: the watcher watches a duplicate of the bus's descriptor and the
bus tells it before it closes (``TachyonBus._watcher``), so the loop stops
watching and waiting tasks raise ClosedError, from whichever thread the bus
was closed.

One event loop at a time waits on a bus: its descriptor is one per handle,
and arming it for one side clears what it held for the other, so the
producer side and the consumer side of one handle cannot wait in two loops
(threads) at once. Both sides in one loop are fine.

asyncio itself is imported only when a coroutine of this module first runs.
"""
import os
import time
import types

from ._tachyon import (
    ClosedError,
    PeerClosedError,
    RingFullError,
    TachyonStateError,
    TachyonTimeoutError,
)

WAIT_RX = 1
WAIT_TX = 2

_ERR_TIMEOUT = 19

_get_running_loop = None  # asyncio.get_running_loop, once asyncio is in use
_current_loop = None      # asyncio._get_running_loop: None outside a running loop


def _running_loop():
    global _get_running_loop, _current_loop
    if _get_running_loop is None:
        import asyncio

        _current_loop = asyncio._get_running_loop
        _get_running_loop = asyncio.get_running_loop
    return _get_running_loop()


@types.coroutine
def _yield_to_loop():
    # A bare yield: the task is stepped again on the loop's next round.
    yield


def _deadline(timeout):
    """The time.monotonic() deadline of a timeout in seconds (None: none).
    Not the loop's clock: uvloop's counts whole milliseconds, and a timeout
    must never end early."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number of seconds or None, not %s" % type(timeout).__name__)
    if not timeout >= 0:
        raise ValueError("timeout must be >= 0 seconds (or None to wait forever)")
    return time.monotonic() + timeout


def _expired(deadline):
    return deadline is not None and time.monotonic() >= deadline


def _timeout_error(what, timeout):
    e = TachyonTimeoutError(
        "%s: no message within %g s; pass a longer timeout (None waits forever) "
        "(ERR_TIMEOUT = %d)" % (what, timeout, _ERR_TIMEOUT)
    )
    e.code = _ERR_TIMEOUT
    e.code_name = "ERR_TIMEOUT"
    return e


class _Watcher:
    """The tasks of one event loop waiting on one bus, and that loop's watch
    of the bus's descriptor. Stored in TachyonBus._watcher; holds no
    reference to the bus."""

    __slots__ = ("loop", "fd", "pid", "rx", "tx", "reading")

    def __init__(self, bus, loop):
        self.loop = loop
        # A duplicate of its own: the bus closes its descriptor when it
        # closes, possibly from another thread before this loop has stopped
        # watching; the duplicate stays valid until we close it.
        self.fd = os.dup(bus.fileno())
        self.pid = os.getpid()
        self.rx = []  # futures of tasks waiting for a message
        self.tx = []  # futures of tasks waiting for room
        self.reading = False

    def busy(self):
        return bool(self.rx or self.tx)

    def arm(self, bus, side):
        """None when what `side` waits for is there now (try again at once);
        else a future that is resolved (True) once it may be."""
        what = side | (WAIT_RX if self.rx else 0) | (WAIT_TX if self.tx else 0)
        if bus.arm(what):
            # The arm covered every waiting task's side: let them all look.
            if self.rx or self.tx:
                self._wake_all()
            return None
        fut = self.loop.create_future()
        (self.rx if side == WAIT_RX else self.tx).append(fut)
        if not self.reading:
            self.loop.add_reader(self.fd, self._wake_all)
            self.reading = True
        return fut

    def forget(self, fut):
        """A wait ended (woken, timed out, cancelled): drop its future."""
        waiters = self.rx if fut in self.rx else self.tx if fut in self.tx else None
        if waiters is not None:
            waiters.remove(fut)
        if self.reading and not (self.rx or self.tx):
            self._stop_reading()

    def _wake_all(self):
        waiters = self.rx + self.tx
        self.rx.clear()
        self.tx.clear()
        self._stop_reading()
        for fut in waiters:
            if not fut.done():
                fut.set_result(True)

    def _stop_reading(self):
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.fd)

    def retire(self):
        """Stop watching for good (the bus moves to another loop, or closes)."""
        if self.pid != os.getpid() or self.loop.is_closed():
            # A fork()ed child's copy (the loop is the parent's), or a loop
            # that is gone with its tasks: only the descriptor is ours.
            os.close(self.fd)
            return
        self._stop_reading()
        waiters = self.rx + self.tx
        self.rx.clear()
        self.tx.clear()
        os.close(self.fd)
        for fut in waiters:
            if not fut.done():
                fut.set_exception(
                    ClosedError("the bus was closed while this call waited for it in the event loop")
                )

    def _bus_closing(self):
        """Called by the bus right before it closes, in the closing thread."""
        loop = self.loop
        if (
            self.pid != os.getpid()
            or loop.is_closed()
            or not loop.is_running()
            or (_current_loop is not None and _current_loop() is loop)
        ):
            self.retire()
        else:
            loop.call_soon_threadsafe(self.retire)


def _watcher_of(bus, loop):
    core = bus._bus
    w = core._watcher
    if w is not None and w.loop is loop and w.pid == os.getpid():
        return w
    if w is not None and w.pid == os.getpid() and w.busy() and not w.loop.is_closed():
        raise TachyonStateError(
            "tasks of another event loop are waiting on this bus: one loop at a time waits on a "
            "bus (run its producer and consumer tasks in the same loop)"
        )
    fresh = _Watcher(bus, loop)
    core._watcher = None
    if w is not None:
        w.retire()
    core._watcher = fresh
    return fresh


async def _wait_ready(bus, side, deadline, attempt):
    """Return once `side` of `bus` may be ready (True) or its timer went off
    (False; the caller compares with the deadline). Takes nothing from the
    ring. `attempt` counts the caller's tries
    that found nothing after being told to look: from the second on, the
    loop runs a round first, so a readiness the call cannot use (another
    side's, a message not yet complete) never spins the loop."""
    if attempt > 1:
        await _yield_to_loop()
    loop = _running_loop()
    w = _watcher_of(bus, loop)
    fut = w.arm(bus, side)
    if fut is None:
        return True
    if deadline is None:
        try:
            return await fut
        finally:
            w.forget(fut)
    delay = deadline - time.monotonic()
    if delay <= 0:
        w.forget(fut)
        return False
    timer = loop.call_later(delay, _expire, fut)
    try:
        return await fut
    finally:
        timer.cancel()
        w.forget(fut)


def _expire(fut):
    if not fut.done():
        fut.set_result(False)


def _try_recv(bus):
    try:
        return bus.recv(0)
    except TachyonTimeoutError:
        return None


async def recv_async(self, timeout=None):
    """The next message, copied (a Message), waiting on the running event
    loop. TachyonTimeoutError after `timeout` seconds (None: no limit);
    PeerClosedError / PeerDeadError once the producer is gone and every
    message it committed was read. Cancelling it loses nothing."""
    deadline = _deadline(timeout)
    msg = _try_recv(self)
    if msg is not None:
        return msg
    return await _recv_after_empty(self, deadline, timeout)


async def _recv_after_empty(bus, deadline, timeout):
    """recv_async once a receive found the ring empty."""
    attempt = 0
    while True:
        attempt += await _wait_ready(bus, WAIT_RX, deadline, attempt)
        msg = _try_recv(bus)
        if msg is not None:
            return msg
        if _expired(deadline):
            raise _timeout_error("receive", timeout)


async def drain_batch_async(self, max_msgs=1024, *, timeout=None):
    """Wait on the running event loop for at least one message, then hold up
    to `max_msgs` in place (an RxBatchGuard: use it in a with-block). As
    recv_async for timeouts, the peer's end and cancellation."""
    deadline = _deadline(timeout)
    try:
        return self.drain_batch(max_msgs, timeout=0)
    except TachyonTimeoutError:
        pass
    attempt = 0
    while True:
        attempt += await _wait_ready(self, WAIT_RX, deadline, attempt)
        try:
            return self.drain_batch(max_msgs, timeout=0)
        except TachyonTimeoutError:
            if _expired(deadline):
                raise _timeout_error("drain_batch", timeout) from None


async def send_async(self, data, type_id=0, *, timeout=None):
    """Copy a bytes-like object into the ring and publish it; while the ring
    is full, wait on the running event loop for room. RingFullError after
    `timeout` seconds (None: no limit), PeerDeadError / PeerClosedError when
    the consumer is gone. A cancelled send has sent nothing."""
    deadline = _deadline(timeout)
    try:
        return self.send(data, type_id, timeout=0)
    except RingFullError:
        pass
    attempt = 0
    while True:
        attempt += await _wait_ready(self, WAIT_TX, deadline, attempt)
        try:
            return self.send(data, type_id, timeout=0)
        except RingFullError:
            if _expired(deadline):
                raise


class _AsyncMessages:
    """``async for msg in bus``: Messages until the producer closes the bus
    (PeerDeadError if its process ended without closing it)."""

    __slots__ = ("_bus",)

    def __init__(self, bus):
        self._bus = bus

    def __aiter__(self):
        return self

    async def __anext__(self):
        bus = self._bus
        try:
            msg = _try_recv(bus)
            if msg is not None:
                return msg
            return await _recv_after_empty(bus, None, None)
        except PeerClosedError:
            raise StopAsyncIteration from None


def _aiter(self):
    return _AsyncMessages(self)


def install(bus_type):
    """Give the Bus type its asyncio methods."""
    bus_type.recv_async = recv_async
    bus_type.drain_batch_async = drain_batch_async
    bus_type.send_async = send_async
    bus_type.__aiter__ = _aiter
