"""The benchmark's baseline: a Python producer publishing the seed's ticks
straight to NATS with nats-py, one publish per tick (subject ticks.<type_id>,
the 32-byte MarketTick as payload, stamped with time.time_ns()), then the
sentinel on ticks.0 and ticks.end, as tachyon-bridge out would.

    python nats_py_producer.py URL TICKS RATE      (RATE 0: as fast as possible)

Prints one JSON line: elapsed seconds (the publish loop and the final flush)
and the rate.
"""

import asyncio
import json
import struct
import sys
import time

import nats

FMT = struct.Struct("<8sdIQ4x")
SYMBOLS = (b"BTCUSDT", b"ETHUSDT", b"SOLUSDT", b"XRPUSDT")
SUBJECTS = ("ticks.1", "ticks.2")


async def main(url, ticks, rate):
    nc = await nats.connect(url)
    pack, time_ns, publish = FMT.pack, time.time_ns, nc.publish
    start = time.perf_counter()
    for i in range(ticks):
        if rate:
            # Pace with a blocking sleep after letting the client write the
            # previous tick (asyncio's own timers round up to a millisecond).
            await asyncio.sleep(0)
            ahead = start + i / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        await publish(SUBJECTS[i & 1], pack(SYMBOLS[i & 3], 20000.0 + (i % 10000) * 0.25, i + 1, time_ns()))
    await nc.flush()
    elapsed = time.perf_counter() - start
    await publish("ticks.0", pack(b"END", 0.0, ticks, time_ns()))
    await publish("ticks.end", b"the nats-py producer finished")
    await nc.flush()
    await nc.close()
    print(json.dumps({"ticks": ticks, "elapsed_s": elapsed, "rate": ticks / elapsed}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
