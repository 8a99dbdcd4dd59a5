"""Seed example, producer side: push MarketTicks to the Rust consumer.

Each tick is written straight into a ring slot in shared memory with
send_zero_copy + memoryview + struct.pack_into, stamped with time.time_ns();
nothing is serialized and, after the Unix-socket handshake, no byte goes
through the kernel. A final tick with type_id 0 (the sentinel) tells the
consumer to stop; its quantity field carries how many ticks were sent.

Start the consumer first (it owns the socket); this script connects and
retries until the consumer is up.

Environment: TACHYON_SOCKET (default tachyon_ticks.sock in $XDG_RUNTIME_DIR,
or in the temporary directory when that is unset; the consumer uses the same
rule), TICKS (default 500000), CONNECT_TIMEOUT (seconds, default 60).

The ticks are deterministic so the consumer can check every field: see
tick_fields(), mirrored by expected_tick() in consumer/src/tick.rs.
"""

import gc
import os
import struct
import sys
import tempfile
import time

import tachyon

DEFAULT_SOCKET = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir(), "tachyon_ticks.sock")
SOCKET_PATH = os.environ.get("TACHYON_SOCKET", DEFAULT_SOCKET)
NUM_TICKS = int(os.environ.get("TICKS", "500000"))
CONNECT_TIMEOUT_S = float(os.environ.get("CONNECT_TIMEOUT", "60"))

# MarketTick, 32 bytes little-endian: symbol [u8; 8], price f64, quantity u32,
# timestamp u64 (ns, time.time_ns()), 4 bytes of padding.
FMT = "<8sdIQ4x"
TICK_SIZE = struct.calcsize(FMT)
assert TICK_SIZE == 32

SENTINEL, BID, ASK = 0, 1, 2
FLUSH_BATCH = 64
SYMBOLS = (b"BTCUSDT", b"ETHUSDT", b"SOLUSDT", b"XRPUSDT")  # "8s" pads with NUL


def tick_fields(i):
    """Symbol, price, quantity and type_id of tick i (the consumer checks them).

    Prices are multiples of 0.25, exact in binary; the quantity is i + 1 so
    that a lost, repeated or reordered tick shows.
    """
    return SYMBOLS[i & 3], 20000.0 + (i % 10000) * 0.25, i + 1, BID if i & 1 == 0 else ASK


def group(n):
    """1234567 -> "1 234 567", as the consumer prints numbers."""
    return f"{n:_.0f}".replace("_", " ")


def connect(path, timeout_s):
    """Connect to the consumer, retrying until it listens (it starts first)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return tachyon.Bus.connect(path, timeout=0)  # one attempt; this loop retries
        except (tachyon.TachyonError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise SystemExit(f"producer: no consumer at {path} after {timeout_s:.0f} s: {exc}")
            time.sleep(0.05)


def send_ticks(bus, n):
    """The seed's send loop. Returns the elapsed seconds."""
    pack_into, time_ns, flush = struct.pack_into, time.time_ns, bus._bus.flush
    start = time.perf_counter()
    for i in range(n):
        symbol, price, qty, tick_type = tick_fields(i)
        with bus.send_zero_copy(size=TICK_SIZE, type_id=tick_type) as tx:
            with memoryview(tx) as mv:
                pack_into(FMT, mv, 0, symbol, price, qty, time_ns())
            tx.actual_size = TICK_SIZE
        if (i + 1) % FLUSH_BATCH == 0:
            flush()
    return time.perf_counter() - start


def no_ipc_floor(n):
    """The same loop with the bus taken out: each tick packed into a bytearray.

    What this Python loop costs by itself; the send loop cannot beat it.
    """
    pack_into, time_ns = struct.pack_into, time.time_ns
    slot = bytearray(TICK_SIZE)
    start = time.perf_counter()
    for i in range(n):
        symbol, price, qty, tick_type = tick_fields(i)
        with memoryview(slot) as mv:
            pack_into(FMT, mv, 0, symbol, price, qty, time_ns())
        if (i + 1) % FLUSH_BATCH == 0:
            pass
    return time.perf_counter() - start


def send_sentinel(bus, count):
    with bus.send_zero_copy(size=TICK_SIZE, type_id=SENTINEL) as tx:
        with memoryview(tx) as mv:
            struct.pack_into(FMT, mv, 0, b"END", 0.0, count, time.time_ns())
        tx.actual_size = TICK_SIZE
    bus._bus.flush()


def main():
    # The collector would pause the loops at random; neither allocates
    # anything that needs it.
    gc.disable()
    # The floor is timed before and after the real run, and the faster of the
    # two is used, so that a noisy moment cannot flatter the ratio.
    floor_before = no_ipc_floor(NUM_TICKS)
    print(f"producer: connecting to {SOCKET_PATH}", flush=True)
    bus = connect(SOCKET_PATH, CONNECT_TIMEOUT_S)
    try:
        with bus:
            print(f"producer: connected; sending {group(NUM_TICKS)} ticks", flush=True)
            elapsed = send_ticks(bus, NUM_TICKS)
            send_sentinel(bus, NUM_TICKS)
    except tachyon.TachyonError as exc:  # PeerDeadError when the consumer quits
        print(f"producer: error: {exc}", file=sys.stderr)
        return 1
    floor = min(floor_before, no_ipc_floor(NUM_TICKS))
    gc.enable()

    rate, floor_rate = NUM_TICKS / elapsed, NUM_TICKS / floor
    print(f"producer: sent {group(NUM_TICKS)} ticks in {elapsed:.3f} s: {group(rate)} msg/s")
    print(
        f"producer: no-IPC floor (same loop into a bytearray, best of 2): {group(floor_rate)} msg/s; "
        f"ratio {rate / floor_rate:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
