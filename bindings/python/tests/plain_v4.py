"""A listener and producer that follow only the plain ABI v4 rules, as the
published tachyon-ipc library does: it sends the 32-byte handshake with the
segment, answers no extension offer (so it exchanges no eventfd and never
signals a consumer's descriptor), and publishes head after each message.
Used to test what a consumer of this package does with such a peer."""
import array
import fcntl
import mmap
import os
import socket
import struct
import threading

MAGIC = 0x54414348
VERSION = 4
HEADER = 768
MSG_HEADER = 64
STATE_READY = 2
STATE_FATAL = 4
OFF_STATE = 16
OFF_HEAD = 128
OFF_TAIL = 256


class PlainV4Producer:
    """Listen at `path` in a thread; after the peer connected, send(...)
    writes messages straight into the shared ring."""

    def __init__(self, path, capacity=4096):
        self.capacity = capacity
        size = HEADER + capacity
        self.memfd = os.memfd_create("plain-v4", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
        os.ftruncate(self.memfd, size)
        fcntl.fcntl(self.memfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
        self.ring = mmap.mmap(self.memfd, size)
        struct.pack_into("<IIII", self.ring, 0, MAGIC, VERSION, capacity, 64)
        struct.pack_into("<I", self.ring, OFF_STATE, STATE_READY)
        self.head = 0
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.path = path
        self.error = None
        self.thread = threading.Thread(target=self._accept_one, daemon=True)
        self.thread.start()

    def _accept_one(self):
        try:
            self.server.settimeout(10)
            conn, _ = self.server.accept()
            with conn:
                hs = struct.pack("<8I", MAGIC, VERSION, self.capacity, HEADER + self.capacity, 0, 0, 64, 0)
                conn.sendmsg([hs], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [self.memfd]))])
                # Read (and drop) the connector's extension offer and the
                # descriptor it carries, then close without answering.
                conn.settimeout(2)
                try:
                    _, fds, _, _ = socket.recv_fds(conn, 64, 4)
                    for fd in fds:
                        os.close(fd)
                except OSError:
                    pass
        except BaseException as e:  # reported by wait_connected
            self.error = e
        finally:
            self.server.close()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def wait_connected(self):
        self.thread.join(10)
        if self.error:
            raise self.error

    def room(self, payload_len):
        slot = (MSG_HEADER + payload_len + 63) & ~63
        (tail,) = struct.unpack_from("<Q", self.ring, OFF_TAIL)
        return self.head - tail + slot <= self.capacity

    def send(self, payload, type_id=1):
        """One message; slots of 128 bytes (payloads up to 64 bytes) so that
        none ever straddles the end of a 4 KiB ring."""
        assert len(payload) <= 64 and self.capacity % 128 == 0
        assert self.room(len(payload)), "the consumer has not made room"
        off = HEADER + (self.head & (self.capacity - 1))
        struct.pack_into("<III", self.ring, off, len(payload), type_id, 128)
        self.ring[off + MSG_HEADER : off + MSG_HEADER + len(payload)] = payload
        self.head += 128
        # One aligned 8-byte store (struct.pack_into would clear the word
        # first, and the consumer could read head as 0 in between).
        self.ring[OFF_HEAD : OFF_HEAD + 8] = struct.pack("<Q", self.head)

    def set_fatal(self):
        self.ring[OFF_STATE : OFF_STATE + 4] = struct.pack("<I", STATE_FATAL)  # one store, as above

    def close(self):
        self.ring.close()
        os.close(self.memfd)
