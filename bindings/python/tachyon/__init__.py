"""Tachyon: zero-copy messaging between two processes on one machine.

One bus is one single-producer/single-consumer ring in shared memory. The
listener creates it and hands it to exactly one connector::

    import tachyon
    with tachyon.Bus.listen("/tmp/demo.sock", 1 << 20) as bus:   # consumer
        for msg in bus:
            print(msg.type_id, msg.size, msg.data)

    with tachyon.Bus.connect("/tmp/demo.sock") as bus:           # producer
        bus.send(b"hello", type_id=1)

A drop-in for the published tachyon-ipc package (the same names, keywords and
exception classes; see the README for where it deliberately behaves
better). Everything is implemented in the C extension ``tachyon._tachyon``;
this module re-exports it and gives Message its dataclass metadata; the
request/reply conveniences (RpcBus, RpcDispatcher, ...) are in rpc.py. See
``__init__.pyi`` for the full surface.
"""
import dataclasses as _dataclasses

from . import _tachyon, bus, message, type_id
from ._tachyon import (
    ABI_VERSION,
    DEFAULT_CAPACITY,
    ArrayView,
    Bus,
    ClosedError,
    Message,
    PeerClosedError,
    PeerDeadError,
    RingFullError,
    RpcRxGuard,
    RpcTxGuard,
    RxBatchGuard,
    RxGuard,
    RxMsgView,
    TachyonBus,
    TachyonConnectionError,
    TachyonError,
    TachyonMemoryError,
    TachyonOSError,
    TachyonPermissionError,
    TachyonRpcBus,
    TachyonStateError,
    TachyonTimeoutError,
    TachyonValueError,
    TxGuard,
    make_type_id,
    msg_type,
    route_id,
    strerror,
)

from . import aio as _aio, stats as _stats
from .aio import WAIT_RX, WAIT_TX
from .stats import BusStats
from .fan import Departure, FanIn, FanMessage, FanOut, FanOutReader, OverrunError

from .rpc import (
    MSG_TYPE_ERROR,
    RpcBus,
    RpcDispatcher,
    RpcEndpoint,
    RpcError,
    RpcHandlerError,
    RpcNoHandlerError,
    _decode_error,
    tachyon_rpc,
)

__version__ = "0.1.0"

# The names of this package's first version.
Batch = RxBatchGuard
BatchItem = RxMsgView


@_dataclasses.dataclass
class _MessageFields:
    type_id: int
    size: int
    data: "bytes | memoryview"


def _make_message_a_dataclass():
    """Give the C type Message what @dataclass(slots=True) gives the published
    one, so that dataclasses.fields/asdict/astuple/replace/is_dataclass and
    pattern matching treat it the same."""
    Message.__dataclass_fields__ = _MessageFields.__dataclass_fields__
    Message.__dataclass_params__ = _MessageFields.__dataclass_params__
    Message.__annotations__ = dict(_MessageFields.__annotations__)
    Message.__match_args__ = ("type_id", "size", "data")
    Message.__slots__ = ("type_id", "size", "data")


_make_message_a_dataclass()
_aio.install(Bus)  # recv_async, drain_batch_async, send_async, async for
_stats.install(Bus)  # stats()

__all__ = [
    # The published package's names, in its order.
    "TachyonBus",
    "TachyonError",
    "PeerDeadError",
    "TxGuard",
    "RxGuard",
    "RxBatchGuard",
    "RxMsgView",
    "TachyonRpcBus",
    "RpcTxGuard",
    "RpcRxGuard",
    "Bus",
    "RpcBus",
    "RpcDispatcher",
    "RpcEndpoint",
    "tachyon_rpc",
    "MSG_TYPE_ERROR",
    "Message",
    "make_type_id",
    "msg_type",
    "route_id",
    # This package's additions.
    "ABI_VERSION",
    "DEFAULT_CAPACITY",
    "ArrayView",
    "Batch",
    "BatchItem",
    "BusStats",
    "Departure",
    "FanIn",
    "FanMessage",
    "FanOut",
    "FanOutReader",
    "OverrunError",
    "ClosedError",
    "PeerClosedError",
    "RingFullError",
    "RpcError",
    "RpcHandlerError",
    "RpcNoHandlerError",
    "TachyonConnectionError",
    "TachyonMemoryError",
    "TachyonOSError",
    "TachyonPermissionError",
    "TachyonStateError",
    "TachyonTimeoutError",
    "TachyonValueError",
    "WAIT_RX",
    "WAIT_TX",
    "strerror",
]
