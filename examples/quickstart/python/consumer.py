"""Receive messages until the producer closes the bus.

Usage: python consumer.py SOCKET_PATH (start it first: it creates the socket).
"""
import sys

import tachyon

path = sys.argv[1]
count = 0
with tachyon.Bus.listen(path, 1 << 20) as bus:  # waits for one producer
    for msg in bus:  # ends when the producer closes the bus and all was read
        print(f"type {msg.type_id}: {msg.data.decode()}")
        count += 1
print(f"received {count} messages; the producer closed the bus")
