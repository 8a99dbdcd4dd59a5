#!/usr/bin/env python3
"""Write the committed seed corpora (fuzz/corpus/<target>/) from scratch.

Honest inputs in each target's format (see ring_harness.h and
fuzz_handshake.c) plus one seed per known-bad field, so the fuzzers start from
both sides of every check. Run from the repository root: python3 fuzz/make_seeds.py
"""
import os
import struct

MAGIC, VERSION, ALIGN, HDR, SKIP = 0x54414348, 4, 64, 768, 0xFFFFFFFF
READY = 2


def write(target, name, data):
    d = os.path.join("fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_ring --------------------------------------------------------------
CAP = 1024  # capacity selector 4: 64 << 4


def ring_prefix(head, tail, state=READY, sleeping=0, raw=1):
    return struct.pack("<QQBBBB4x", head, tail, 4, sleeping, state, raw)


def slot(size, type_id=1, fill=0x41):
    reserved = (64 + size + 63) & ~63
    hdr = struct.pack("<III4xQ", size, type_id, reserved, 0).ljust(64, b"\0")
    return (hdr + bytes([fill]) * size).ljust(reserved, b"\0")


def ring_image(slots_at):
    ring = bytearray(CAP)
    for off, data in slots_at:
        ring[off:off + len(data)] = data
    return bytes(ring)


# operation bytes (ring_harness.c): op % 12, then its arguments
RX, RX_T, BATCH, DRAIN, TX, TX_B, SEND_BATCH, SCRIBBLE, MOVE, COMMIT_RX, ROLLBACK, FLUSH = range(12)


def ops(*items):
    return bytes(items)


three = [(0, slot(10)), (128, slot(100)), (320, slot(0))]
ring3 = ring_image(three)
head3 = 320 + 64
write("fuzz_ring", "empty-ring-producer",
      ring_prefix(0, 0) + bytes(CAP) + ops(TX, 100, 0, 0, 50, 0, RX, 1, BATCH, 8, 1, TX_B, 200, 3, 0))
write("fuzz_ring", "three-messages-single",
      ring_prefix(head3, 0) + ring3 + ops(RX, 1, RX, 1, RX, 1, RX, 1))
write("fuzz_ring", "three-messages-batch",
      ring_prefix(head3, 0) + ring3 + ops(BATCH, 8, 3, DRAIN, 8, 1))
write("fuzz_ring", "skip-marker-wrap",
      ring_prefix(CAP + 128, CAP - 128)
      + ring_image([(0, slot(20)), (CAP - 128, struct.pack("<III", SKIP, 0, 128).ljust(64, b"\0"))])
      + ops(RX, 1, RX, 1))
write("fuzz_ring", "full-ring-producer",
      ring_prefix(CAP, 0) + ring_image([(i * 128, slot(64)) for i in range(8)])
      + ops(TX, 10, 0, 0, MOVE, 1, 128, 0, TX, 10, 0, 0, SEND_BATCH, 16, 4))
write("fuzz_ring", "near-wrap-counters",
      ring_prefix(2**64 - 512 + 128, 2**64 - 512) + ring_image([(CAP - 512, slot(32))])
      + ops(RX, 1, TX, 200, 0, 0, 20, 0, BATCH, 4, 1, SCRIBBLE, 0, 0, 1, 2, 3, 4, RX, 1))
write("fuzz_ring", "bad-reserved", ring_prefix(128, 0) + ring_image([(0, struct.pack("<III", 8, 1, 100))]) + ops(RX, 1))
write("fuzz_ring", "skip-at-zero", ring_prefix(128, 0) + ring_image([(0, struct.pack("<III", SKIP, 0, 64))]) + ops(BATCH, 4, 1))
write("fuzz_ring", "head-too-far", ring_prefix(CAP + 64, 0) + ring3 + ops(DRAIN, 4, 1, RX_T, 1))
write("fuzz_ring", "peer-fatal-state", ring_prefix(head3, 0, state=4) + ring3 + ops(RX_T, 1, TX, 5, 0, 0, 5, 0))
write("fuzz_ring", "stray-commits", ring_prefix(0, 0) + bytes(CAP) + ops(COMMIT_RX, ROLLBACK, FLUSH, TX, 8, 0, 1, ROLLBACK))

# ---- fuzz_handshake ---------------------------------------------------------
HCAP = 1024


def handshake(magic=MAGIC, version=VERSION, cap=HCAP, shm=None, cap_rev=0, shm_rev=0, align=ALIGN, flags=0):
    shm = HDR + cap if shm is None else shm
    return struct.pack("<8I", magic, version, cap, shm, cap_rev, shm_rev, align, flags)


def segment_header(magic=MAGIC, version=VERSION, cap=HCAP, align=ALIGN, state=READY, head=0, tail=0):
    h = bytearray(HDR)
    struct.pack_into("<5I", h, 0, magic, version, cap, align, state)
    struct.pack_into("<Q", h, 128, head)
    struct.pack_into("<Q", h, 256, tail)
    return bytes(h)


def hs_input(hs=None, memfd_size=HDR + HCAP, seals=0b111, fds=0, send=0, split=0, header=None):
    hs = handshake() if hs is None else hs
    header = segment_header() if header is None else header
    return hs + struct.pack("<IBBBB", memfd_size, seals, fds, send, split) + header


write("fuzz_handshake", "honest", hs_input())
write("fuzz_handshake", "honest-split", hs_input(send=1, split=12))
write("fuzz_handshake", "fd-on-second-part", hs_input(send=2, split=12))
write("fuzz_handshake", "truncated", hs_input(send=3, split=15))
write("fuzz_handshake", "bad-magic", hs_input(hs=handshake(magic=0)))
write("fuzz_handshake", "bad-version", hs_input(hs=handshake(version=3)))
write("fuzz_handshake", "reqrep-flags", hs_input(hs=handshake(flags=1)))
write("fuzz_handshake", "cap-not-pow2", hs_input(hs=handshake(cap=1000)))
write("fuzz_handshake", "shm-mismatch", hs_input(hs=handshake(shm=HDR + HCAP + 64)))
write("fuzz_handshake", "memfd-short", hs_input(memfd_size=HDR + HCAP // 2))
write("fuzz_handshake", "no-seals", hs_input(seals=0))
write("fuzz_handshake", "write-sealed", hs_input(seals=0b1111))
write("fuzz_handshake", "no-fd", hs_input(fds=1))
write("fuzz_handshake", "two-fds", hs_input(fds=2))
write("fuzz_handshake", "pipe", hs_input(fds=3))
write("fuzz_handshake", "devnull", hs_input(fds=4))
write("fuzz_handshake", "unsealable", hs_input(fds=5))
write("fuzz_handshake", "header-capacity", hs_input(header=segment_header(cap=2 * HCAP)))
write("fuzz_handshake", "header-state", hs_input(header=segment_header(state=1)))
write("fuzz_handshake", "header-counters", hs_input(header=segment_header(head=4096, tail=0)))
write("fuzz_handshake", "header-counters-wrap", hs_input(header=segment_header(head=2**64 - 64, tail=2**64 - 128)))

# ---- fuzz_rpc_handshake -------------------------------------------------------
RCAP_FWD, RCAP_REV = 1024, 2048


def rpc_input(hs=None, size_a=HDR + RCAP_FWD, size_b=HDR + RCAP_REV, seals_a=0b111, seals_b=0b111, fds=0,
              send=0, split=0, header_a=None, header_b=None):
    hs = handshake(cap=RCAP_FWD, cap_rev=RCAP_REV, shm_rev=HDR + RCAP_REV, flags=1) if hs is None else hs
    header_a = segment_header(cap=RCAP_FWD) if header_a is None else header_a
    header_b = segment_header(cap=RCAP_REV) if header_b is None else header_b
    return (hs + struct.pack("<IIBBBBBBH", size_a, size_b, seals_a, seals_b, fds, send, split, 0, len(header_a))
            + header_a + header_b)


def rpc_hs(**kw):
    args = dict(cap=RCAP_FWD, cap_rev=RCAP_REV, shm_rev=HDR + RCAP_REV, flags=1)
    args.update(kw)
    return handshake(**args)


def with_message(header, size, cid, type_id=1, reserved=None):
    """A segment header whose head covers one message at offset 0."""
    reserved = (64 + size + 63) & ~63 if reserved is None else reserved
    h = bytearray(header)
    struct.pack_into("<Q", h, 128, (reserved + 63) & ~63)  # head: whole lines, whatever the header claims
    slot = struct.pack("<III4xQ", size, type_id, reserved, cid).ljust(64, b"\0") + bytes(size)
    return bytes(h) + slot


write("fuzz_rpc_handshake", "honest", rpc_input())
write("fuzz_rpc_handshake", "honest-split", rpc_input(send=1, split=12))
write("fuzz_rpc_handshake", "fds-on-second-part", rpc_input(send=2, split=20))
write("fuzz_rpc_handshake", "truncated", rpc_input(send=3, split=15))
write("fuzz_rpc_handshake", "plain-flags", rpc_input(hs=handshake(cap=RCAP_FWD), fds=2))
write("fuzz_rpc_handshake", "flags-3", rpc_input(hs=rpc_hs(flags=3)))
write("fuzz_rpc_handshake", "bad-magic", rpc_input(hs=rpc_hs(magic=0)))
write("fuzz_rpc_handshake", "rev-not-pow2", rpc_input(hs=rpc_hs(cap_rev=1000, shm_rev=HDR + 1000)))
write("fuzz_rpc_handshake", "rev-shm-mismatch", rpc_input(hs=rpc_hs(shm_rev=HDR + RCAP_REV + 64)))
write("fuzz_rpc_handshake", "rings-swapped", rpc_input(size_a=HDR + RCAP_REV, size_b=HDR + RCAP_FWD,
                                                       header_a=segment_header(cap=RCAP_REV),
                                                       header_b=segment_header(cap=RCAP_FWD)))
write("fuzz_rpc_handshake", "rev-short", rpc_input(size_b=HDR + RCAP_REV // 2))
write("fuzz_rpc_handshake", "rev-no-seals", rpc_input(seals_b=0))
write("fuzz_rpc_handshake", "rev-unsealable", rpc_input(fds=6))
write("fuzz_rpc_handshake", "no-fd", rpc_input(fds=1))
write("fuzz_rpc_handshake", "one-fd", rpc_input(fds=2))
write("fuzz_rpc_handshake", "three-fds", rpc_input(fds=3))
write("fuzz_rpc_handshake", "pipe", rpc_input(fds=4))
write("fuzz_rpc_handshake", "devnull", rpc_input(fds=5))
write("fuzz_rpc_handshake", "rev-header-state", rpc_input(header_b=segment_header(cap=RCAP_REV, state=4)))
write("fuzz_rpc_handshake", "rev-header-capacity", rpc_input(header_b=segment_header(cap=2 * RCAP_REV)))
write("fuzz_rpc_handshake", "reply-waiting", rpc_input(header_b=with_message(segment_header(cap=RCAP_REV), 16, 1)))
write("fuzz_rpc_handshake", "reply-bad-reserved",
      rpc_input(header_b=with_message(segment_header(cap=RCAP_REV), 16, 1, reserved=100)))
write("fuzz_rpc_handshake", "request-ring-full",
      rpc_input(header_a=segment_header(cap=RCAP_FWD, head=RCAP_FWD, tail=0)))


# ---- fuzz_fan ---------------------------------------------------------------
FAN_MAGIC, FAN_VERSION, FAN_CAP, FAN_MAX, FAN_RO = 0x5446414E, 2, 4096, 1, 4096
FAN_SALT = 0x5A17C0DE0000003F


def fan_hello(magic=FAN_MAGIC, version=FAN_VERSION, kind=1, index=0, max_peers=FAN_MAX, cap=FAN_CAP,
              ring_offset=FAN_RO, flags=0):
    return struct.pack("<8I", magic, version, kind, index, max_peers, cap, ring_offset, flags)


def fan_segment(head=0, tail=0, messages=(), fencing=1):
    seg = bytearray(FAN_RO + FAN_CAP)
    struct.pack_into("<6IiiQ", seg, 0, FAN_MAGIC, FAN_VERSION, FAN_CAP, FAN_MAX, FAN_RO, 0, READY, 1, FAN_SALT)
    struct.pack_into("<Q", seg, 128, head)
    struct.pack_into("<I", seg, 392, fencing)  # producer_fencing: 0 asks readers for a membarrier
    struct.pack_into("<Q", seg, 512, tail)  # entry 0: tail
    off = FAN_RO
    for seq, size in messages:
        reserved = (64 + size + 63) & ~63
        struct.pack_into("<III4xQQ", seg, off, size, 1, reserved, seq, (off - FAN_RO) ^ FAN_SALT)
        seg[off + 64:off + 64 + size] = bytes([0x41]) * size
        off += reserved
    return bytes(seg)


def fan_input(hello=None, memfd_size=FAN_RO + FAN_CAP, seals=7, mode=0, second=None, segment=None):
    hello = hello or fan_hello()
    return (hello + struct.pack("<I", memfd_size) + bytes([seals, mode, 0, 0]) + (second or bytes(32))
            + (segment if segment is not None else fan_segment()))


write("fuzz_fan", "honest-empty", fan_input())
write("fuzz_fan", "honest-two-messages", fan_input(segment=fan_segment(head=64 + 128, messages=((0, 8), (1, 40)))))
write("fuzz_fan", "unfenced-producer", fan_input(segment=fan_segment(fencing=0)))
write("fuzz_fan", "bus-magic", fan_input(hello=fan_hello(magic=MAGIC)))
write("fuzz_fan", "fd-with-first", fan_input(mode=1))
write("fuzz_fan", "no-second", fan_input(mode=2))
write("fuzz_fan", "second-differs", fan_input(mode=4, second=fan_hello(index=1)))
write("fuzz_fan", "short-memfd", fan_input(memfd_size=FAN_RO + 100))
write("fuzz_fan", "unsealed", fan_input(seals=0))
write("fuzz_fan", "bad-slot", fan_input(segment=fan_segment(head=128, messages=((0, 4000),))))
write("fuzz_fan", "cursor-inside-a-slot", fan_input(segment=fan_segment(head=4095, tail=4095)))
