"""Request/reply, the server: answer requests of type 1 until the caller closes.

Usage: python rpc_server.py SOCKET_PATH (start it first: it creates the socket).
"""
import sys

import tachyon

dispatcher = tachyon.RpcDispatcher()


@dispatcher.handler(1)
def upper(request):  # a read-only memoryview of the request, in shared memory
    return bytes(request).upper()  # the reply


path = sys.argv[1]
with tachyon.RpcBus.rpc_listen(path, 1 << 16, 1 << 16) as bus:  # waits for one caller
    dispatcher.serve_forever(bus)  # returns when the caller closes
print("served until the caller closed")
