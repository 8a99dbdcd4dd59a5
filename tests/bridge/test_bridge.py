"""tachyon-bridge end to end, with real components: the seed's producer
(examples/python_producer_rust_consumer/producer.py) -> bus -> bridge out ->
nats-server -> bridge in -> bus -> a reader that checks every tick against
the seed's formula (tick_reader.c). NATS restarts, a producer killed
mid-stream, SIGTERM, JetStream replay, and hostile or oversized input.

Run by `make test-bridge`.
"""

import re
import signal
import struct
import time

import pytest

from conftest import REMOTE_READER, counts

MILLION = 1_000_000
FMT = "<8sdIQ4x"


def bus_to_bus(run, server, confirm="bridge", out_args=(), in_args=()):
    """Reader, bridge in, bridge out, in that order; returns the three."""
    reader = run.reader(run.sock("reader"))
    bin_ = run.bridge("in", "in", "--connect", run.sock("reader"), "--nats", server.url, "--stats", "0.2",
                      *in_args)
    bout = run.bridge("out", "out", "--listen", run.sock("src"), "--nats", server.url, "--stats", "0.2",
                      "--confirm", confirm, *out_args)
    bin_.wait_for(lambda t: "subscribed to" in t, "subscription")
    bout.wait_for(lambda t: "waiting for the bus producer" in t, "listening")
    return reader, bin_, bout


def from_bus(text):
    found = re.findall(r"([\d ]+) from bus", text)
    return int(found[-1].replace(" ", "")) if found else 0


def assert_all_delivered(reader, ticks):
    summary = reader.json()
    assert summary["ok"], summary
    assert summary["received"] == ticks, summary
    assert summary["sentinel"] and summary["announced"] == ticks, summary
    assert summary["end"] == "sentinel_then_closed", summary
    return summary


# ---- the command line --------------------------------------------------------


def test_help_explains_every_option(run):
    import subprocess
    from conftest import BRIDGE, ROOT
    source = (ROOT / "tools" / "tachyon-bridge" / "options.c").read_text()
    table = re.findall(r'\{"([a-z-]+)", (?:required|no)_argument', source)
    assert len(table) > 15
    text = subprocess.run([BRIDGE, "--help"], capture_output=True, text=True, check=True).stdout
    for name in table:
        assert f"--{name}" in text, f"--help does not explain --{name}"


@pytest.mark.parametrize("args, complaint", [
    (["out"], "--listen PATH or --connect PATH"),
    (["sideways", "--listen", "x"], "mode is out or in"),
    (["out", "--listen", "x", "--capacity", "1000"], "--capacity 1000"),
    (["out", "--listen", "x", "--confirm", "maybe"], "--confirm maybe"),
    (["out", "--listen", "x", "--subject", "ticks.*"], "--subject ticks.*"),
    (["out", "--listen", "x", "--when-full", "explode"], "--when-full explode"),
    (["out", "--listen", "x", "--jetstream", "S", "--confirm", "bridge"], "leave out --confirm"),
    (["in", "--connect", "x", "--frobnicate"], "unknown option"),
])
def test_usage_errors_name_the_option(args, complaint):
    import subprocess
    from conftest import BRIDGE
    r = subprocess.run([BRIDGE, *args], capture_output=True, text=True)
    assert r.returncode == 2
    assert complaint in r.stderr


# ---- the stream, end to end ----------------------------------------------------


def test_a_million_ticks_bus_to_bus_intact_and_in_order(run):
    server = run.nats()
    reader, bin_, bout = bus_to_bus(run, server)
    producer = run.producer(run.sock("src"), MILLION)
    assert producer.finish() == 0, producer.err()
    assert bout.finish() == 0, bout.err()
    assert bin_.finish() == 0, bin_.err()
    assert reader.finish() == 0, reader.out()
    assert_all_delivered(reader, MILLION)
    done = counts(bout.err(), "done: ")
    assert done["from"] == MILLION + 1 and done["confirmed"] == MILLION + 1, bout.err()
    assert done["held"] == 0 and done["refused"] == 0 and done["dropped"] == 0
    assert "closed the bus" in bin_.err()  # the end of stream says how the producer ended


def test_default_confirmation_by_the_server_delivers_everything_without_failures(run):
    server = run.nats()
    reader, bin_, bout = bus_to_bus(run, server, confirm="server")
    producer = run.producer(run.sock("src"), 200_000)
    assert producer.finish() == 0, producer.err()
    assert bout.finish() == 0, bout.err()
    assert bin_.finish() == 0, bin_.err()
    assert_all_delivered(reader, 200_000)
    assert "unacknowledged: NATS failures can lose messages" in bin_.err()


def test_nats_server_restarted_mid_stream_loses_nothing(run):
    server = run.nats()
    # A small buffer, so that the outage also fills it and holds the producer.
    reader, bin_, bout = bus_to_bus(run, server, out_args=("--buffer", "2M"))
    producer = run.producer(run.sock("src"), MILLION)
    bout.wait_for(lambda t: from_bus(t) >= 200_000, "200 000 messages from the bus")
    server.kill(signal.SIGKILL)
    bout.wait_for(lambda t: "NATS connection lost" in t, "the disconnect")
    bout.wait_for(lambda t: "holding the bus" in t, "back-pressure while NATS is down")
    time.sleep(0.5)
    server.start()  # same port
    bout.wait_for(lambda t: "NATS reconnected" in t, "the reconnect")
    assert producer.finish() == 0, producer.err()
    assert bout.finish() == 0, bout.err()
    assert bin_.finish() == 0, bin_.err()
    assert_all_delivered(reader, MILLION)
    out_log = bout.err()
    assert "resending" in out_log or "sending the" in out_log, out_log
    assert counts(out_log, "done: ")["confirmed"] == MILLION + 1


def test_bus_producer_killed_mid_stream_forwards_everything_it_committed(run):
    server = run.nats()
    reader, bin_, bout = bus_to_bus(run, server)
    producer = run.producer(run.sock("src"), 20 * MILLION)
    bout.wait_for(lambda t: from_bus(t) >= 100_000, "100 000 messages from the bus")
    producer.kill()
    assert bout.finish() == 0, bout.err()
    out_log = bout.err()
    assert re.search(r"the producer \(pid \d+\).*without closing", out_log), out_log
    taken = counts(out_log, "done: ")["from"]
    assert counts(out_log, "done: ")["confirmed"] == taken
    assert bin_.finish() == 0, bin_.err()
    assert reader.finish() == 0, reader.out()
    summary = reader.json()
    # Everything the producer committed, as a prefix of its stream, no sentinel.
    assert summary["ok"] and not summary["sentinel"], summary
    assert summary["received"] == taken >= 100_000, (summary, taken)
    assert summary["end"] == "peer_closed", summary
    assert "without closing" in bin_.err()


def test_sigterm_stops_reading_and_flushes_what_was_taken(run):
    server = run.nats()
    reader, bin_, bout = bus_to_bus(run, server)
    producer = run.producer(run.sock("src"), 20 * MILLION)
    bout.wait_for(lambda t: from_bus(t) >= 100_000, "100 000 messages from the bus")
    bout.signal(signal.SIGTERM)
    assert bout.finish() == 0, bout.err()
    out_log = bout.err()
    assert "SIGTERM" in out_log
    taken = counts(out_log, "done: ")["from"]
    assert counts(out_log, "done: ")["confirmed"] == taken
    assert producer.finish() == 1  # its consumer left: the seed's producer reports it
    assert "producer: error:" in producer.err()
    assert bin_.finish() == 0, bin_.err()
    assert reader.finish() == 0, reader.out()
    summary = reader.json()
    assert summary["ok"] and summary["received"] == taken, (summary, taken)
    assert "the bridge was stopped (SIGTERM)" in bin_.err()


def test_in_side_sigint_delivers_what_it_received_and_closes_the_bus(run):
    server = run.nats()
    reader, bin_, bout = bus_to_bus(run, server)
    producer = run.producer(run.sock("src"), 20 * MILLION)
    bin_.wait_for(lambda t: "into the bus" in t and counts(t, "msg/s; ").get("into", 0) >= 50_000,
                  "50 000 messages into the bus")
    bin_.signal(signal.SIGINT)
    assert bin_.finish() == 0, bin_.err()
    assert reader.finish() == 0, reader.out()
    summary = reader.json()
    delivered = counts(bin_.err(), "done: ")["into"]
    assert summary["ok"] and summary["received"] == delivered, (summary, delivered)
    producer.kill()
    bout.signal(signal.SIGTERM)
    bout.finish()


# ---- JetStream --------------------------------------------------------------------


def test_jetstream_lets_a_late_reader_replay_the_stream(run):
    server = run.nats(jetstream=True)
    bout = run.bridge("out", "out", "--listen", run.sock("src"), "--nats", server.url, "--jetstream", "TICKS",
                      "--stats", "0.5")
    bout.wait_for(lambda t: "waiting for the bus producer" in t, "listening")
    producer = run.producer(run.sock("src"), 30_000)
    assert producer.finish() == 0, producer.err()
    assert bout.finish() == 0, bout.err()
    assert counts(bout.err(), "done: ")["confirmed"] == 30_001
    # Nobody read the stream while it was produced; a reader started now gets all of it.
    reader = run.reader(run.sock("late"))
    bin_ = run.bridge("in", "in", "--connect", run.sock("late"), "--nats", server.url, "--jetstream", "TICKS")
    assert bin_.finish() == 0, bin_.err()
    assert reader.finish() == 0, reader.out()
    assert_all_delivered(reader, 30_000)


# ---- hostile and oversized input ----------------------------------------------------


async def publish_raw(url, messages):
    import nats
    nc = await nats.connect(url)
    for subject, payload, headers in messages:
        await nc.publish(subject, payload, headers=headers)
    await nc.flush()
    await nc.close()


def tick(i):
    symbol = (b"BTCUSDT", b"ETHUSDT", b"SOLUSDT", b"XRPUSDT")[i & 3]
    return struct.pack(FMT, symbol, 20000.0 + (i % 10000) * 0.25, i + 1, time.time_ns())


def test_in_side_refuses_what_does_not_fit_or_parse_and_delivers_the_rest(run):
    import asyncio
    server = run.nats()
    # A 256-byte ring carries at most 192 bytes per message.
    reader = run.reader(run.sock("reader"), "--capacity", "256")
    bin_ = run.bridge("in", "in", "--connect", run.sock("reader"), "--nats", server.url)
    bin_.wait_for(lambda t: "subscribed to" in t, "subscription")
    hostile = [
        ("ticks.1", tick(0), None),
        ("ticks.2", b"x" * 1000, None),                           # larger than the bus allows
        ("ticks.99999999999", tick(1), None),                     # type_id above 2^32
        ("ticks.01", tick(1), None),                              # not canonical decimal
        ("ticks.abc", tick(1), None),
        ("ticks.2", tick(1), {"Tachyon-Stream": "zz 1 1"}),       # malformed marker
        ("ticks.2", tick(1), None),
        ("ticks.end", b"the test is over", None),
    ]
    asyncio.run(publish_raw(server.url, hostile))
    assert bin_.finish() == 0, bin_.err()
    assert reader.finish() == 0, reader.out()
    log = bin_.err()
    assert "refused a 1000-byte message on ticks.2: larger than the bus's largest message (192 bytes)" in log
    assert "ticks.99999999999" in log and "ticks.01" in log and "ticks.abc" in log
    assert "malformed Tachyon-Stream header" in log
    assert counts(log, "done: ")["refused"] == 5
    summary = reader.json()
    assert summary["received"] == 2 and summary["ok"], summary  # tick 0 and tick 1, whole
    assert "the stream ended: the test is over" in log


def test_out_side_refuses_messages_above_the_servers_max_payload(run):
    import asyncio
    import tachyon
    server = run.nats(config="max_payload: 1024\n")
    got = []

    async def subscribe_and_collect(ready):
        import nats
        nc = await nats.connect(server.url)
        done = asyncio.Event()

        async def on_msg(msg):
            got.append((msg.subject, len(msg.data)))
            if msg.subject == "ticks.end":
                done.set()
        await nc.subscribe("ticks.*", cb=on_msg)
        await nc.flush()
        ready.set()
        await asyncio.wait_for(done.wait(), 60)
        await nc.close()

    async def main():
        ready = asyncio.Event()
        task = asyncio.create_task(subscribe_and_collect(ready))
        await ready.wait()
        nonlocal bout
        bout = run.bridge("out", "out", "--listen", run.sock("src"), "--nats", server.url)
        bout.wait_for(lambda t: "NATS connected" in t and "waiting for the bus producer" in t, "listening")
        bus = await asyncio.to_thread(tachyon.Bus.connect, run.sock("src"), timeout=10)
        with bus:
            bus.send(b"a" * 100, type_id=7)
            bus.send(b"b" * 5000, type_id=7)  # over max_payload
            bus.send(b"c" * 1024, type_id=8)  # at max_payload: no room left for the headers
            bus.send(b"d" * 800, type_id=9)
        await task

    bout = None
    try:
        asyncio.run(main())
    except asyncio.TimeoutError:
        pytest.fail(f"the subscriber did not see {server.url} ticks.end; got {got}\n{bout.err() if bout else ''}")
    assert bout.finish() == 0, bout.err()
    assert got[:2] == [("ticks.7", 100), ("ticks.9", 800)], got
    assert got[2][0] == "ticks.end"
    log = bout.err()
    limit = 1024 - 128
    assert (f"refused a 5000-byte message from the bus: larger than {limit} bytes "
            "(the NATS server's max_payload less room for the bridge's headers)") in log
    assert f"refused a 1024-byte message from the bus: larger than {limit} bytes" in log
    assert counts(log, "done: ")["refused"] == 2


# ---- the far side, in Python ---------------------------------------------------------


def test_remote_reader_example_decodes_the_seeds_ticks(run):
    import sys
    server = run.nats()
    remote = run.start("remote", [sys.executable, REMOTE_READER, "--nats", server.url, "--check"])
    remote.wait_for(lambda t: "subscribed" in t, "subscription")
    bout = run.bridge("out", "out", "--listen", run.sock("src"), "--nats", server.url)
    bout.wait_for(lambda t: "waiting for the bus producer" in t, "listening")
    producer = run.producer(run.sock("src"), 20_000)
    assert producer.finish() == 0, producer.err()
    assert bout.finish() == 0, bout.err()
    assert remote.finish() == 0, remote.err() + remote.out()
    out = remote.out()
    assert "received 20 000 ticks (10 000 BID, 10 000 ASK)" in out, out
    assert "every tick in order and intact" in out, out


# ---- NATS absent or refusing ---------------------------------------------------------


def test_out_starts_before_nats_and_delivers_once_it_comes(run):
    from conftest import NatsServer
    server = NatsServer(run.dir)
    run.servers.append(server)
    bout = run.bridge("out", "out", "--listen", run.sock("src"), "--nats", server.url, "--confirm", "bridge",
                      "--stats", "0.2")
    bout.wait_for(lambda t: "no NATS server answers yet" in t, "the retry notice")
    producer = run.producer(run.sock("src"), 50_000)
    bout.wait_for(lambda t: from_bus(t) >= 50_000, "the ticks held while NATS is away")
    server.start()
    reader = run.reader(run.sock("reader"))
    bin_ = run.bridge("in", "in", "--connect", run.sock("reader"), "--nats", server.url)
    assert producer.finish() == 0, producer.err()
    assert bout.finish() == 0, bout.err()
    assert bin_.finish() == 0, bin_.err()
    assert reader.finish() == 0, reader.out()
    assert_all_delivered(reader, 50_000)


def test_out_stops_when_the_server_refuses_its_publishes(run):
    config = """
authorization {
  users = [ { user: bridge, password: secret, permissions: { publish: { deny: ["ticks.2"] } } } ]
}
"""
    server = run.nats(config=config)
    url = f"nats://bridge:secret@127.0.0.1:{server.port}"
    bout = run.bridge("out", "out", "--listen", run.sock("src"), "--nats", url)
    bout.wait_for(lambda t: "waiting for the bus producer" in t, "listening")
    producer = run.producer(run.sock("src"), 1000)
    assert bout.finish() == 1, bout.err()
    log = bout.err()
    assert "refuses our messages" in log and "ticks.2" in log
    assert "secret" not in log and "nats://***@127.0.0.1" in log  # credentials are not printed
    producer.finish()
