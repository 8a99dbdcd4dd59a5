"""The seed's producer, exactly as the seed writes it, for one million ticks
across two processes; the consumer checks every field of every tick."""
import struct
import time

import tachyon
from conftest import listen

FMT = "<8sdIQ4x"  # MarketTick: symbol, price, quantity, timestamp, padding
TICK_SIZE = struct.calcsize(FMT)
FLUSH_BATCH = 64
N = 1_000_000


def price_of(i):
    return 100.0 + (i % 1000) * 0.25


def seed_producer(path, conn, n):
    # The seed's loop; only the values are made checkable (quantity = i).
    with tachyon.Bus.connect(path, timeout=10) as bus:
        symbol = b"BTCUSDT\0"
        for i in range(n):
            tick_type = 1 if i % 2 == 0 else 2  # BID / ASK
            price = price_of(i)
            qty = i
            ts = time.time_ns()
            with bus.send_zero_copy(size=TICK_SIZE, type_id=tick_type) as tx:
                with memoryview(tx) as mv:
                    struct.pack_into(FMT, mv, 0, symbol, price, qty, ts)
                tx.actual_size = TICK_SIZE
            if (i + 1) % FLUSH_BATCH == 0:
                bus._bus.flush()
        with bus.send_zero_copy(size=TICK_SIZE, type_id=0) as tx:  # sentinel
            with memoryview(tx) as mv:
                struct.pack_into(FMT, mv, 0, b"\0" * 8, 0.0, 0, 0)
        bus._bus.flush()
        conn.send("done")


def test_seed_pattern_one_million(sock_path, peers):
    peer = peers(seed_producer, sock_path, N)
    unpack = struct.Struct(FMT).unpack_from
    count = qty_sum = 0
    bad = []
    last_ts = 0
    with listen(sock_path, 1 << 20) as bus:
        for msg in bus:
            if msg.type_id == 0:
                break
            symbol, price, qty, ts = unpack(msg.data)
            if (
                msg.size != TICK_SIZE
                or qty != count
                or symbol != b"BTCUSDT\0"
                or price != price_of(count)
                or msg.type_id != (1 if count % 2 == 0 else 2)
                or ts < last_ts
            ):
                bad.append((count, msg.type_id, symbol, price, qty))
            last_ts = ts
            count += 1
            qty_sum += qty
    assert peer.result() == "done"
    assert peer.join() == 0
    assert bad[:5] == []
    assert count == N
    assert qty_sum == N * (N - 1) // 2
