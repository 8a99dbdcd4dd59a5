"""Request/reply, the caller: three calls, each waiting for its reply.

Usage: python rpc_client.py SOCKET_PATH
"""
import sys

import tachyon

upper = tachyon.tachyon_rpc(1)(lambda request: None)  # the remote handler of type 1

path = sys.argv[1]
with tachyon.RpcBus.rpc_connect(path, timeout=10) as bus:  # retries for up to 10 s until the server listens
    for word in (b"bid", b"ask", b"trade"):
        reply = upper.call(bus, word, timeout=5)  # bytes; tachyon.RpcError on an error reply
        print(f"{word.decode()} -> {reply.decode()}")
