"""A single-producer/single-consumer ring over multiprocessing.shared_memory,
in pure Python: what a Python user would write instead of using Tachyon, and
the baseline bench.py measures the Python package against.

Layout of the shared block (all little-endian u64 counters, each on its own
64-byte line so the two sides do not share one):
    [0:8]    head: slots ever published by the producer
    [64:72]  tail: slots ever released by the consumer
    [128:]   nslots slots of SLOT bytes: u32 size, u32 type_id, payload

Counters are free-running and compared by difference. On x86 (TSO), storing
the payload before head and reading head before the payload is enough
ordering, which is what makes a pure-Python ring possible at all.
"""
import struct
import time
from multiprocessing import shared_memory

HEAD, TAIL, DATA = 0, 64, 128
SLOT = 64
HDR = struct.Struct("<II")
U64 = struct.Struct("<Q")


class RingProducer:
    def __init__(self, name=None, nslots=16384, create=True):
        assert nslots & (nslots - 1) == 0
        size = DATA + nslots * SLOT
        self.shm = shared_memory.SharedMemory(name=name, create=create, size=size)
        self.buf = self.shm.buf
        self.nslots = nslots
        self.mask = nslots - 1
        self.head = 0
        self.cached_tail = 0
        if create:
            self.buf[:DATA] = bytes(DATA)

    @property
    def name(self):
        return self.shm.name

    def _wait_for_room(self):
        while True:
            self.cached_tail = U64.unpack_from(self.buf, TAIL)[0]
            if self.head - self.cached_tail < self.nslots:
                return
            time.sleep(0)

    def send(self, data, type_id):
        """Copy bytes into the next slot and publish it."""
        head = self.head
        if head - self.cached_tail >= self.nslots:
            self._wait_for_room()
        off = DATA + (head & self.mask) * SLOT
        n = len(data)
        HDR.pack_into(self.buf, off, n, type_id)
        self.buf[off + 8 : off + 8 + n] = data
        self.head = head = head + 1
        U64.pack_into(self.buf, HEAD, head)

    def send_packed(self, packer, type_id, *fields):
        """Pack fields straight into the next slot (struct.Struct packer)."""
        head = self.head
        if head - self.cached_tail >= self.nslots:
            self._wait_for_room()
        off = DATA + (head & self.mask) * SLOT
        HDR.pack_into(self.buf, off, packer.size, type_id)
        packer.pack_into(self.buf, off + 8, *fields)
        self.head = head = head + 1
        U64.pack_into(self.buf, HEAD, head)

    def close(self):
        del self.buf
        self.shm.close()
        self.shm.unlink()


def drain(name, nslots):
    """Consumer: release slots as fast as pure Python can, until a message
    with type_id 0; returns how many came before it. Like the C sink used
    for Tachyon, it only drains: the producer is what is measured."""
    shm = shared_memory.SharedMemory(name=name)
    try:  # the producer owns the block: keep this process's tracker off it
        from multiprocessing import resource_tracker

        resource_tracker.unregister(shm._name, "shared_memory")
    except Exception:
        pass
    buf = shm.buf
    mask = nslots - 1
    tail = 0
    count = 0
    try:
        while True:
            head = U64.unpack_from(buf, HEAD)[0]
            if head == tail:
                time.sleep(0)
                continue
            # The sentinel is the last message ever sent: look at the last slot only.
            _, type_id = HDR.unpack_from(buf, DATA + ((head - 1) & mask) * SLOT)
            if type_id == 0:
                return count + (head - tail - 1)
            count += head - tail
            tail = head
            U64.pack_into(buf, TAIL, tail)
    finally:
        del buf
        shm.close()


if __name__ == "__main__":
    import sys

    print(drain(sys.argv[1], int(sys.argv[2])), flush=True)
