"""The Python producers of the comparison benchmark, one per variant.

Each sends COUNT MarketTicks (32 bytes, <8sdIQ4x: symbol, price, quantity,
timestamp, 4 pad bytes) to the native consumer (consumer.c), which owns the
endpoint and starts first; the producer connects, retrying until it is there.
quantity carries the tick's index (the consumer checks the sequence) and the
timestamp is time.time_ns() taken just before the tick is written or sent.

Per-message variants take one timestamp per tick. Batched variants
(tachyon-batch, stream-x64) fill a numpy record array for the whole batch and
stamp it with one time.time_ns() just before the send call, so a tick's
latency includes the wait behind the ticks ahead of it in the same batch.

Prints one line for the driver:
    RESULT variant=NAME sent=N elapsed_s=S producer_rate=MSG_PER_S

Usage: python producers.py --variant NAME --endpoint PATH --count N
"""

import argparse
import os
import socket
import struct
import time

FMT = "<8sdIQ4x"
TICK = struct.Struct(FMT)
TICK_SIZE = TICK.size  # 32
SYMBOL = b"BTCUSDT\0"
FLUSH_BATCH = 64  # the seed flushes every 64 ticks
BID, ASK = 1, 2
CONNECT_TIMEOUT_S = 20.0

assert TICK_SIZE == 32


def price_of(i):
    return 100.0 + i * 0.25


def retry_until_ready(connect, what):
    """Call connect() until it succeeds: the consumer may still be starting."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            return connect()
        except (OSError, Exception) as exc:  # tachyon raises its own error type
            if time.monotonic() > deadline:
                raise SystemExit(f"producer: could not reach {what}: {exc}")
            time.sleep(0.002)


def tick_records(count):
    """A numpy record array laid out exactly like the packed MarketTick."""
    import numpy as np

    dtype = np.dtype(
        {
            "names": ["symbol", "price", "quantity", "timestamp"],
            "formats": ["S8", "<f8", "<u4", "<u8"],
            "offsets": [0, 8, 16, 20],
            "itemsize": TICK_SIZE,
        }
    )
    records = np.zeros(count, dtype=dtype)
    records["symbol"] = SYMBOL
    return records


def batched_loop(count, batch, send_records):
    """Send count ticks in batches (fill index and price, stamp, send) and
    return the seconds the loop took; numpy is imported and the array built
    before the clock starts."""
    import numpy as np

    records = tick_records(batch)
    offsets = np.arange(batch, dtype=np.uint32)
    qty, price, stamp = records["quantity"], records["price"], records["timestamp"]
    t0 = time.perf_counter()
    for start in range(0, count, batch):
        k = min(batch, count - start)
        np.add(offsets, start, out=qty)
        np.multiply(qty, 0.25, out=price)
        price += 100.0
        stamp.fill(time.time_ns())
        send_records(records[:k] if k < batch else records, k)
    return time.perf_counter() - t0


# ---- the floor: the seed's loop with no IPC at all --------------------------


def run_floor(args):
    """The seed's loop body writing into a private buffer: what the Python
    work alone costs, the ceiling any IPC from this loop can reach."""
    slot = bytearray(TICK_SIZE)
    n = args.count
    t0 = time.perf_counter()
    for i in range(n):
        _tick_type = BID if i & 1 == 0 else ASK  # the seed computes it; nothing takes it here
        with memoryview(slot) as mv:
            struct.pack_into(FMT, mv, 0, SYMBOL, price_of(i), i, time.time_ns())
        if (i + 1) % FLUSH_BATCH == 0:
            pass  # the seed flushes here
    return n, time.perf_counter() - t0


def run_floor_pack(args):
    """The per-message loop of the socket variants and tachyon send() with
    the send replaced by len(), a C call that does nothing: the floor of
    every "pack to bytes, then send" row."""
    return args.count, per_message_loop(args.count, len)


# ---- tachyon ----------------------------------------------------------------


def tachyon_connect(path):
    import tachyon

    # One attempt per call (timeout=0): retry_until_ready does the retrying.
    return retry_until_ready(lambda: tachyon.Bus.connect(path, timeout=0), path)


def run_tachyon_seed(args):
    """The seed's producer loop, exactly: send_zero_copy, memoryview,
    struct.pack_into, time.time_ns(), bus._bus.flush() every 64 ticks."""
    n = args.count
    with tachyon_connect(args.endpoint) as bus:
        t0 = time.perf_counter()
        for i in range(n):
            tick_type = BID if i & 1 == 0 else ASK
            with bus.send_zero_copy(size=TICK_SIZE, type_id=tick_type) as tx:
                with memoryview(tx) as mv:
                    struct.pack_into(FMT, mv, 0, SYMBOL, price_of(i), i, time.time_ns())
                tx.actual_size = TICK_SIZE
            if (i + 1) % FLUSH_BATCH == 0:
                bus._bus.flush()
        bus._bus.flush()
        elapsed = time.perf_counter() - t0
    return n, elapsed


def run_tachyon_send(args):
    """One call per tick: bus.send(bytes, type_id) copies and publishes."""
    n = args.count
    pack = TICK.pack
    with tachyon_connect(args.endpoint) as bus:
        send = bus.send
        t0 = time.perf_counter()
        for i in range(n):
            send(pack(SYMBOL, price_of(i), i, time.time_ns()), BID if i & 1 == 0 else ASK)
        elapsed = time.perf_counter() - t0
    return n, elapsed


def run_tachyon_packed(args):
    """The fastest per-message API: bus.send_packed(struct, type_id, *values)
    packs straight into the slot and publishes, with no guard object and no
    intermediate bytes."""
    n = args.count
    with tachyon_connect(args.endpoint) as bus:
        send_packed = bus.send_packed
        t0 = time.perf_counter()
        for i in range(n):
            send_packed(TICK, BID if i & 1 == 0 else ASK, SYMBOL, price_of(i), i, time.time_ns())
        elapsed = time.perf_counter() - t0
    return n, elapsed


def run_tachyon_batch(args):
    """bus.send_batch(records, 32, type_id): one call and one publication
    per batch of args.batch ticks."""
    with tachyon_connect(args.endpoint) as bus:
        send_batch = bus.send_batch

        def send_records(records, k):
            view = memoryview(records).cast("B")
            done = 0
            while done < k:
                sent = send_batch(view[done * TICK_SIZE : k * TICK_SIZE], TICK_SIZE, BID)
                done += sent if isinstance(sent, int) else k - done

        elapsed = batched_loop(args.count, args.batch, send_records)
    return args.count, elapsed


# ---- sockets, pipes, ZeroMQ -------------------------------------------------


def unix_connect(path, kind):
    def connect():
        s = socket.socket(socket.AF_UNIX, kind)
        try:
            s.connect(path)
        except OSError:
            s.close()
            raise
        return s

    return retry_until_ready(connect, path)


def per_message_loop(n, send):
    """The per-message loop shared by the socket, pipe and ZeroMQ variants."""
    pack = TICK.pack
    t0 = time.perf_counter()
    for i in range(n):
        send(pack(SYMBOL, price_of(i), i, time.time_ns()))
    return time.perf_counter() - t0


def run_stream(args):
    with unix_connect(args.endpoint, socket.SOCK_STREAM) as s:
        return args.count, per_message_loop(args.count, s.sendall)


def run_stream_batch(args):
    with unix_connect(args.endpoint, socket.SOCK_STREAM) as s:
        return args.count, batched_loop(args.count, args.batch, lambda records, k: s.sendall(records))


def run_seqpacket(args):
    with unix_connect(args.endpoint, socket.SOCK_SEQPACKET) as s:
        return args.count, per_message_loop(args.count, s.send)


def run_fifo(args):
    def open_fifo():
        if not os.path.exists(args.endpoint):
            raise FileNotFoundError(args.endpoint)
        return os.open(args.endpoint, os.O_WRONLY)

    fd = retry_until_ready(open_fifo, args.endpoint)
    try:
        # 32-byte writes are below PIPE_BUF: each is atomic, whole or nothing.
        return args.count, per_message_loop(args.count, lambda b: os.write(fd, b))
    finally:
        os.close(fd)


def zmq_push_connected(ctx, endpoint):
    """A PUSH socket whose connection to the consumer's PULL is up.

    Sending before the connection is complete queues messages on a pipe that
    a failed first attempt can drop (about one run in 30 lost ticks here), so
    we wait for the handshake on a socket monitor, and set ZMQ_IMMEDIATE so
    nothing is ever queued to a connection that is not complete."""
    import zmq
    from zmq.utils.monitor import recv_monitor_message

    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.IMMEDIATE, 1)
    monitor = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    s.connect("ipc://" + endpoint)  # ZeroMQ retries by itself until the PULL is bound
    try:
        if not monitor.poll(CONNECT_TIMEOUT_S * 1000):
            raise SystemExit(f"producer: no ZeroMQ connection to {endpoint}")
        recv_monitor_message(monitor)
    finally:
        s.disable_monitor()
        monitor.close()
    return s


def run_zmq(args):
    import zmq

    ctx = zmq.Context()
    s = zmq_push_connected(ctx, args.endpoint)
    try:
        elapsed = per_message_loop(args.count, s.send)
    finally:
        s.close(linger=-1)  # deliver everything before leaving
        ctx.term()
    return args.count, elapsed


# ---- a hand-rolled SPSC ring over multiprocessing.shared_memory -------------

# The layout consumer.c (run_shmring) formats: magic, slot size, slot count at
# 0; head (ticks published) at 64; tail (ticks released) at 128; slots at 192.
SHM_RING_MAGIC = 0x474E4952
SHM_RING_HEAD = 64
SHM_RING_TAIL = 128
SHM_RING_DATA = 192


def attach_shared_memory(name):
    """Attach to the consumer's segment without Python's resource tracker.

    Before 3.13 attaching registers the segment with the tracker, which would
    unlink the consumer's segment when we exit, and starting the tracker
    spawns a second Python process next to the timed loop (it took the
    producer's CPU for a whole 4 ms scheduler tick in every run). 3.13+ has
    track=False; before it, registration is switched off while we attach."""
    from multiprocessing import resource_tracker, shared_memory

    def attach():
        try:
            shm = shared_memory.SharedMemory(name=name, track=False)  # 3.13+
        except TypeError:
            register = resource_tracker.register
            resource_tracker.register = lambda *a, **k: None
            try:
                shm = shared_memory.SharedMemory(name=name)
            finally:
                resource_tracker.register = register
        if struct.unpack_from("<I", shm.buf, 0)[0] != SHM_RING_MAGIC:
            shm.close()
            raise OSError("ring not formatted yet")
        return shm

    return retry_until_ready(attach, name)


def run_shmring(args):
    """The ring a Python user would write by hand: pack the tick into the
    next slot, then store the new head; re-read the tail only when the cached
    copy says the ring is full. CPython does the stores in program order and
    x86 keeps them in order, which is all the consumer needs."""
    shm = attach_shared_memory(args.endpoint.lstrip("/"))
    buf = shm.buf
    _, slot_size, slots = struct.unpack_from("<III", buf, 0)
    if slot_size != TICK_SIZE or slots & (slots - 1):
        raise SystemExit(f"producer: bad ring header: slot {slot_size}, slots {slots}")
    mask = slots - 1
    # The counters go through memoryviews cast to native u64: assigning an item
    # is one aligned 8-byte store. struct.pack_into would not do: it zero-fills
    # the destination before writing, so the consumer could see head == 0 for a
    # moment (and "<Q" stores byte by byte besides).
    head_word = buf[SHM_RING_HEAD : SHM_RING_HEAD + 8].cast("Q")
    tail_word = buf[SHM_RING_TAIL : SHM_RING_TAIL + 8].cast("Q")
    pack_into = TICK.pack_into
    n = args.count
    head = cached_tail = 0
    t0 = time.perf_counter()
    for i in range(n):
        while head - cached_tail >= slots:
            cached_tail = tail_word[0]
        pack_into(buf, SHM_RING_DATA + (head & mask) * TICK_SIZE, SYMBOL, price_of(i), i,
                  time.time_ns())
        head += 1
        head_word[0] = head
    elapsed = time.perf_counter() - t0
    head_word.release()
    tail_word.release()
    del buf
    shm.close()
    return n, elapsed


VARIANTS = {
    "floor": run_floor,
    "floor-pack": run_floor_pack,
    "tachyon-seed": run_tachyon_seed,
    "tachyon-send": run_tachyon_send,
    "tachyon-packed": run_tachyon_packed,
    "tachyon-batch": run_tachyon_batch,
    "stream": run_stream,
    "stream-x64": run_stream_batch,
    "seqpacket": run_seqpacket,
    "fifo": run_fifo,
    "zmq": run_zmq,
    "shmring": run_shmring,
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    ap.add_argument("--endpoint", default="")
    ap.add_argument("--count", type=int, default=500_000)
    ap.add_argument("--batch", type=int, default=64, help="ticks per send in batched variants")
    args = ap.parse_args(argv)
    sent, elapsed = VARIANTS[args.variant](args)
    rate = sent / elapsed if elapsed > 0 else 0.0
    print(f"RESULT variant={args.variant} sent={sent} elapsed_s={elapsed:.6f} "
          f"producer_rate={rate:.0f}", flush=True)


if __name__ == "__main__":
    main()
