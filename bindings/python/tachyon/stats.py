"""Bus.stats(): what a bus has been doing, as seen from one handle."""
import dataclasses


@dataclasses.dataclass(frozen=True)
class BusStats:
    """A snapshot of tachyon_bus_stats for one handle (read-only).

    The message and byte counts are this handle's own: what it sent as a
    producer, what it received (released) as a consumer. Fill and lag come
    from the counters each side stores in the shared segment.
    """

    __slots__ = (
        "messages_sent", "bytes_sent", "messages_received", "bytes_received", "ring_full",
        "sleeps", "wakeups", "capacity", "fill_bytes", "fill_max_bytes", "lag_messages", "idle",
        "peer_pid", "peer_alive", "features", "state",
    )

    messages_sent: int
    """Messages this handle committed (producer side)."""
    bytes_sent: int
    """Payload bytes of those."""
    messages_received: int
    """Messages this handle released (consumer side)."""
    bytes_received: int
    """Payload bytes of those."""
    ring_full: int
    """Times a send or acquire found no room."""
    sleeps: int
    """Times this consumer slept on the futex."""
    wakeups: int
    """Times this producer woke a sleeping consumer."""
    capacity: int
    """The ring's size in bytes."""
    fill_bytes: int
    """Bytes committed and not yet given back, now."""
    fill_max_bytes: int
    """The most this producer saw in the ring."""
    lag_messages: int
    """Consumer: messages the producer counted that this handle has not received (0 if unknown)."""
    idle: float
    """Seconds since this handle last sent or received (0.0: active since the previous call)."""
    peer_pid: int
    """The other process (0 if unknown)."""
    peer_alive: bool
    """Whether it is still there and has not closed the bus."""
    features: int
    """Extension features agreed with the peer (0: a plain ABI v4 peer)."""
    state: int
    """As Bus.state: 2 ready, 3 peer gone, 4 corrupt."""

    def __reduce__(self):
        # Frozen with __slots__: pickle and copy rebuild it through __init__.
        return (type(self), tuple(getattr(self, name) for name in self.__slots__))


def _stats(self):
    """What this bus has been doing, as seen from this handle (a BusStats).
    Also stores this handle's counters where tachyon-top reads them. Call it
    from a thread that works the bus (or when no other thread is inside a
    call on it)."""
    return BusStats(*self._stats())


def install(bus_type):
    """Give the Bus type its stats() method."""
    bus_type.stats = _stats
