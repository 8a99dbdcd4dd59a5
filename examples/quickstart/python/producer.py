"""Send five messages, then close the bus.

Usage: python producer.py SOCKET_PATH
"""
import sys

import tachyon

path = sys.argv[1]
with tachyon.Bus.connect(path, timeout=10) as bus:  # retries for up to 10 s until the consumer listens
    for i in range(5):
        text = f"hello {i}".encode()
        with bus.send_zero_copy(size=len(text), type_id=1) as tx:  # a slot in the shared ring
            with memoryview(tx) as mv:
                mv[:] = text  # written in place; committed when the block ends
print("sent 5 messages")
