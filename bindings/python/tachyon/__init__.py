"""Tachyon: zero-copy messaging between two processes on one machine.

One bus is one single-producer/single-consumer ring in shared memory. The
listener creates it and hands it to exactly one connector::

    import tachyon
    with tachyon.Bus.listen("/tmp/demo.sock", 1 << 20) as bus:   # consumer
        for msg in bus:
            print(msg.type_id, msg.size, msg.data)

    with tachyon.Bus.connect("/tmp/demo.sock") as bus:           # producer
        bus.send(b"hello", type_id=1)

Everything is implemented in the C extension ``tachyon._tachyon``; this
module only re-exports it. See ``__init__.pyi`` for the full surface.
"""
from ._tachyon import (
    ABI_VERSION,
    DEFAULT_CAPACITY,
    Batch,
    BatchItem,
    Bus,
    Message,
    PeerClosedError,
    PeerDeadError,
    RingFullError,
    RxGuard,
    TachyonError,
    TachyonTimeoutError,
    TxGuard,
    make_type_id,
    msg_type,
    route_id,
    strerror,
)

from ._tachyon import RpcRxGuard, RpcTxGuard, TachyonRpcBus
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

__all__ = [
    "ABI_VERSION",
    "DEFAULT_CAPACITY",
    "Batch",
    "BatchItem",
    "Bus",
    "Message",
    "PeerClosedError",
    "PeerDeadError",
    "RingFullError",
    "RxGuard",
    "TachyonError",
    "TachyonTimeoutError",
    "TxGuard",
    "make_type_id",
    "msg_type",
    "route_id",
    "strerror",
    # request/reply
    "TachyonRpcBus",
    "RpcTxGuard",
    "RpcRxGuard",
    "RpcBus",
    "RpcDispatcher",
    "RpcEndpoint",
    "RpcError",
    "RpcHandlerError",
    "RpcNoHandlerError",
    "tachyon_rpc",
    "MSG_TYPE_ERROR",
]
