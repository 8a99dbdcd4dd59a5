"""End to end: the Rust consumer against the Python producer, fewer ticks.

The consumer checks every tick against the formula both sides share (symbol,
price, quantity = index + 1, side) and the count the sentinel announces; it
exits 0 only when every tick arrived once, in order, intact. The tests below
run the real producer, then feed the consumer bad streams to show that the
check can fail.

Needs the consumer built (cargo build --release in consumer/) and the tachyon
package installed; `make test-e2e` does both.
"""

import os
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CONSUMER = HERE / "consumer" / "target" / "release" / "tick-consumer"
PRODUCER = HERE / "producer.py"
TICKS = int(os.environ.get("E2E_TICKS", "20000"))
TIMEOUT_S = 120

sys.path.insert(0, str(HERE))
import producer  # noqa: E402  (the example's own tick formula and wire format)
import tachyon  # noqa: E402


def private_socket():
    return f"/tmp/tachyon_e2e_{os.getpid()}_{uuid.uuid4().hex[:8]}.sock"


def start_consumer(socket, ticks=None):
    if not CONSUMER.exists():
        pytest.fail(f"{CONSUMER} is not built: run cargo build --release in {CONSUMER.parents[2]}")
    env = dict(os.environ, TACHYON_SOCKET=socket)
    env.pop("TICKS", None)
    if ticks is not None:
        env["TICKS"] = str(ticks)
    return subprocess.Popen([str(CONSUMER)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc):
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"consumer did not finish in {TIMEOUT_S} s:\n{out}")
    return proc.returncode, out


def send(bus, fields, type_id):
    symbol, price, qty = fields
    with bus.send_zero_copy(size=producer.TICK_SIZE, type_id=type_id) as tx:
        with memoryview(tx) as mv:
            struct.pack_into(producer.FMT, mv, 0, symbol, price, qty, time.time_ns())
        tx.actual_size = producer.TICK_SIZE


def feed(socket, ticks, announced=None):
    """Connect like the producer and send `ticks` as (symbol, price, qty, type)."""
    bus = producer.connect(socket, 30)
    with bus:
        for symbol, price, qty, type_id in ticks:
            send(bus, (symbol, price, qty), type_id)
        if announced is not None:
            send(bus, (b"END", 0.0, announced), producer.SENTINEL)


def good_ticks(n):
    return [producer.tick_fields(i) for i in range(n)]


def test_every_tick_arrives_once_in_order_and_intact():
    socket = private_socket()
    consumer = start_consumer(socket, TICKS)
    env = dict(os.environ, TACHYON_SOCKET=socket, TICKS=str(TICKS))
    prod = subprocess.run([sys.executable, str(PRODUCER)], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    code, out = finish(consumer)
    print(prod.stdout, prod.stderr, out)
    assert prod.returncode == 0, prod.stderr
    assert code == 0, out
    grouped = f"{TICKS:,}".replace(",", " ")
    half = f"{TICKS // 2:,}".replace(",", " ")
    assert f"received {grouped} ticks ({half} BID, {half} ASK)" in out
    assert f"OK: all {grouped} ticks received once, in order, every field intact" in out
    assert "p99.9" in out
    assert f"sent {grouped} ticks" in prod.stdout
    assert "no-IPC floor" in prod.stdout and "ratio" in prod.stdout


def test_the_sentinel_alone_is_zero_ticks():
    socket = private_socket()
    consumer = start_consumer(socket)
    feed(socket, [], announced=0)
    code, out = finish(consumer)
    assert code == 0, out
    assert "received 0 ticks" in out


def test_a_missing_tick_fails():
    socket = private_socket()
    consumer = start_consumer(socket)
    ticks = good_ticks(100)
    del ticks[40]
    feed(socket, ticks, announced=100)
    code, out = finish(consumer)
    assert code == 1, out
    assert "BAD tick 40" in out and "expected 100" in out


def test_a_repeated_tick_fails():
    socket = private_socket()
    consumer = start_consumer(socket)
    ticks = good_ticks(100)
    ticks.insert(10, ticks[9])
    feed(socket, ticks, announced=101)
    code, out = finish(consumer)
    assert code == 1, out
    assert "BAD tick 10" in out


@pytest.mark.parametrize("field", [0, 1, 2, 3], ids=["symbol", "price", "quantity", "side"])
def test_a_garbled_field_fails(field):
    socket = private_socket()
    consumer = start_consumer(socket)
    ticks = good_ticks(50)
    bad = list(ticks[7])
    other_side = producer.BID if bad[3] == producer.ASK else producer.ASK
    bad[field] = {0: b"DOGEUSD", 1: bad[1] + 0.25, 2: bad[2] + 1, 3: other_side}[field]
    ticks[7] = tuple(bad)
    feed(socket, ticks, announced=50)
    code, out = finish(consumer)
    assert code == 1, out
    assert "BAD tick 7" in out


def test_a_short_payload_fails():
    socket = private_socket()
    consumer = start_consumer(socket)
    bus = producer.connect(socket, 30)
    with bus:
        bus.send(b"short", type_id=producer.BID)
        send(bus, (b"END", 0.0, 1), producer.SENTINEL)
    code, out = finish(consumer)
    assert code == 1, out
    assert "payload of 5 bytes" in out


def test_a_count_other_than_announced_fails():
    socket = private_socket()
    consumer = start_consumer(socket, ticks=60)
    feed(socket, good_ticks(50), announced=50)
    code, out = finish(consumer)
    assert code == 1, out
    assert "expected 60" in out


def test_a_producer_that_dies_before_the_sentinel_fails():
    socket = private_socket()
    consumer = start_consumer(socket)
    feed(socket, good_ticks(10), announced=None)  # closes the bus, no sentinel
    code, out = finish(consumer)
    assert code == 1, out
    assert "went away before sending the sentinel" in out


def test_the_producer_stops_cleanly_when_the_consumer_dies():
    socket = private_socket()
    consumer = start_consumer(socket)
    env = dict(os.environ, TACHYON_SOCKET=socket, TICKS="5000000")  # seconds of sending: killed long before the end
    prod = subprocess.Popen([sys.executable, str(PRODUCER)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in prod.stdout:  # the floor runs first, then it connects
            if "connected; sending" in line:
                break
        time.sleep(0.2)
        consumer.kill()
        consumer.wait(timeout=TIMEOUT_S)
        _, err = prod.communicate(timeout=TIMEOUT_S)
    finally:
        prod.kill()
        consumer.kill()
    assert prod.returncode == 1, err
    assert "producer: error:" in err and "ended without closing the bus" in err, err
