"""consumer.py on an asyncio loop: the bus is watched like a socket, so the
same loop can serve websockets, timers and other buses at once.

Usage: python asyncio_consumer.py SOCKET_PATH (start it first: it creates the socket).
"""
import asyncio
import sys

import tachyon


async def main(path):
    # listen() waits for the producer: run it off the loop.
    bus = await asyncio.to_thread(tachyon.Bus.listen, path, 1 << 20)
    count = 0
    with bus:
        async for msg in bus:  # ends when the producer closes the bus and all was read
            print(f"type {msg.type_id}: {msg.data.decode()}")
            count += 1
    print(f"received {count} messages; the producer closed the bus")


asyncio.run(main(sys.argv[1]))
