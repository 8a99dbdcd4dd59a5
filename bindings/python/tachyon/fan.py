"""Fan-out (one producer, many readers) and fan-in (many producers, one reader).

Fan-out: the producer writes each message once into one shared ring; every
reader reads it in place through its own cursor. Readers join and leave at
any time::

    with tachyon.FanOut.listen("/tmp/ticks.sock", 1 << 20, max_consumers=8) as feed:
        feed.send(b"tick", type_id=1)             # waits for the slowest reader (policy "block")

    with tachyon.FanOut.connect("/tmp/ticks.sock", start="newest") as reader:
        for msg in reader:                        # FanMessage(data, type_id, seq, producer, pid)
            ...

With ``policy="drop"`` the producer never waits: a reader a whole ring behind
is dropped, and its next receive raises ``OverrunError`` whose ``missed`` is
the exact number of messages it lost; it then continues from the newest.

Fan-in: each producer sends on a ``tachyon.Bus`` of its own, the reader takes
from all of them, round robin, learning who sent what::

    with tachyon.FanIn.listen("/tmp/orders.sock", 1 << 16, max_producers=4) as sink:
        msg = sink.recv(timeout=1.0)              # msg.producer, msg.pid

    with tachyon.FanIn.connect("/tmp/orders.sock") as bus:   # a tachyon.Bus
        bus.send(b"order", type_id=2)

A producer that leaves or dies is reported after everything it sent was read:
``sink.departures`` lists ``Departure(producer, pid, dead)``.
"""
import typing

from . import _tachyon
from ._tachyon import Bus, TachyonError

__all__ = ["Departure", "FanIn", "FanMessage", "FanOut", "FanOutReader", "OverrunError"]

_OVERRUN = 26
_PEER_DEAD = 15
_PEER_CLOSED = 23
_FATAL = 17
_DEFAULT_SPIN = 2000


class OverrunError(TachyonError):
    """This fan-out reader fell a whole ring behind and the producer (policy
    "drop") stopped waiting for it. ``missed`` is the exact number of messages
    it lost; the next receive continues from the newest message."""

    missed = 0
    total = 0

    def __init__(self, missed: int, total: int):
        super().__init__(
            "this reader fell a whole ring behind and was dropped: %d messages missed "
            "(%d in all); it continues from the newest" % (missed, total)
        )
        self.missed = missed
        self.total = total


class FanMessage(typing.NamedTuple):
    """A received message, copied out of the ring."""

    data: bytes
    type_id: int
    seq: int
    """fan-out: the message's number in the channel (0, 1, 2, ...); fan-in: how
    many messages of that producer came before it."""
    producer: int
    """fan-in: the sending producer's index; fan-out: 0."""
    pid: int
    """the sending process."""

    @property
    def size(self) -> int:
        return len(self.data)


class Departure(typing.NamedTuple):
    """A fan-in producer that left (dead=False) or whose process ended without
    leaving (dead=True), after everything it sent (``messages``) was read."""

    producer: int
    pid: int
    dead: bool
    messages: int


class _Held:
    """A message in place (``with reader.recv_zero_copy() as msg``): buffer
    protocol (``memoryview(msg)``), ``type_id``, ``seq``, ``producer``, ``pid``,
    ``size``. Released on leaving the block; a memoryview still alive then
    raises BufferError."""

    __slots__ = ("_owner", "_slot", "ok")

    def __init__(self, owner, slot):
        self._owner = owner
        self._slot = slot
        self.ok = True

    def __enter__(self):
        return self._slot

    def __exit__(self, *exc):
        self.ok = self._owner._h.release()
        return False


class _TxSlot:
    """A writable slot (``with feed.send_zero_copy(size, type_id) as slot``):
    write through ``memoryview(slot)``; set ``actual_size`` to commit fewer
    bytes. Committed on leaving the block, rolled back on an exception."""

    __slots__ = ("_h", "_slot", "type_id", "actual_size")

    def __init__(self, h, slot, type_id):
        self._h = h
        self._slot = slot
        self.type_id = type_id
        self.actual_size = slot.size

    def __enter__(self):
        return self

    def __buffer__(self, flags):  # Python 3.12+: memoryview(tx)
        return memoryview(self._slot)

    def view(self) -> memoryview:
        return memoryview(self._slot)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._h.commit(None, 0)
        else:
            self._h.commit(self.actual_size, self.type_id)
        return False


class _Channel:
    __slots__ = ("_h",)

    def __init__(self, handle):
        self._h = handle

    def close(self) -> None:
        self._h.close()

    @property
    def closed(self) -> bool:
        return self._h.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class FanOut(_Channel):
    """The producer of a fan-out channel."""

    __slots__ = ()

    @classmethod
    def listen(cls, path: str, capacity: int = 1 << 20, max_consumers: int = 8, policy: str = "block") -> "FanOut":
        """Create the ring and admit readers at ``path`` (returns at once).
        ``policy``: "block" (wait for the slowest reader) or "drop" (drop a
        reader a whole ring behind)."""
        if policy not in ("block", "drop"):
            raise ValueError('policy must be "block" or "drop", not %r' % (policy,))
        return cls(_tachyon._fanout_listen(path, capacity, max_consumers, policy == "drop"))

    @staticmethod
    def connect(path: str, start: str = "newest", timeout: typing.Optional[float] = None) -> "FanOutReader":
        """Join the fan-out at ``path`` as a reader, starting at the "newest"
        message in the ring or the "oldest" one still there."""
        if start not in ("newest", "oldest"):
            raise ValueError('start must be "newest" or "oldest", not %r' % (start,))
        return FanOutReader(_tachyon._fanout_connect(path, start == "oldest", timeout))

    def send(self, data, type_id: int = 0, timeout: typing.Optional[float] = None) -> None:
        """Copy ``data`` into the ring and publish it to every reader. With
        policy "block", waits up to ``timeout`` for room (None: as long as it
        takes; 0: not at all, RingFullError)."""
        self._h.send(data, type_id, timeout)

    def send_zero_copy(self, size: int, type_id: int = 0, timeout: typing.Optional[float] = None) -> _TxSlot:
        """A slot of ``size`` bytes in the ring to write in place."""
        return _TxSlot(self._h, self._h.acquire(size, timeout), type_id)

    @property
    def consumers(self) -> int:
        """Readers joined right now."""
        return self._h.count()

    @property
    def max_payload(self) -> int:
        return self._h.max_payload()


class _Reader(_Channel):
    __slots__ = ()

    def _next(self, timeout, spin, copy):
        while True:
            r = self._h.recv(timeout, spin, copy)
            payload, type_id, seq, producer, pid, status, missed = r
            if status == 0:
                return payload, type_id, seq, producer, pid
            self._event(status, producer, pid, seq, missed)

    def recv(self, timeout: typing.Optional[float] = None, spin: int = _DEFAULT_SPIN) -> FanMessage:
        """The next message, copied (TachyonTimeoutError after ``timeout``)."""
        return FanMessage(*self._next(timeout, spin, True))

    def recv_zero_copy(self, timeout: typing.Optional[float] = None, spin: int = _DEFAULT_SPIN) -> _Held:
        """The next message in place: ``with reader.recv_zero_copy() as msg:
        memoryview(msg)``."""
        slot = self._next(timeout, spin, False)[0]
        return _Held(self, slot)

    def __iter__(self):
        return self

    def __next__(self) -> FanMessage:
        try:
            return self.recv()
        except _tachyon.PeerClosedError:  # the end of the stream; a dead producer raises
            raise StopIteration from None


class FanOutReader(_Reader):
    """One reader of a fan-out channel."""

    __slots__ = ()

    def _event(self, status, producer, pid, seq, missed):
        if status == _OVERRUN:
            raise OverrunError(*self._h.missed())
        raise _tachyon._error_from_code(status)

    @property
    def index(self) -> int:
        """This reader's slot in the producer's table."""
        return self._h.count()

    @property
    def missed_total(self) -> int:
        """Messages lost to drops since joining."""
        return self._h.missed()[1]


class FanIn(_Reader):
    """The reader of a fan-in channel."""

    __slots__ = ("departures",)

    def __init__(self, handle):
        super().__init__(handle)
        self.departures: typing.List[Departure] = []

    @classmethod
    def listen(cls, path: str, capacity: int = 1 << 20, max_producers: int = 8) -> "FanIn":
        """Admit producers at ``path`` (returns at once), each with a ring of
        ``capacity`` bytes."""
        return cls(_tachyon._fanin_listen(path, capacity, max_producers))

    @staticmethod
    def connect(path: str, timeout: typing.Optional[float] = None) -> Bus:
        """Join the fan-in at ``path`` as a producer: a ``tachyon.Bus`` to send on."""
        bus = Bus()
        _tachyon._fanin_connect(bus._bus, path, timeout)
        return bus

    def _event(self, status, producer, pid, seq, missed):
        if status in (_PEER_CLOSED, _PEER_DEAD, _FATAL):
            self.departures.append(Departure(producer, pid, status != _PEER_CLOSED, seq))
            return
        raise _tachyon._error_from_code(status)

    @property
    def producers(self) -> int:
        """Producers joined right now."""
        return self._h.count()
