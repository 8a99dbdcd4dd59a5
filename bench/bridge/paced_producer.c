/*
 * paced_producer.c - the bridge benchmark's bus producer: the seed's ticks
 * (same formula and layout as producer.py) at a fixed rate, or as fast as the
 * bus takes them, stamped with CLOCK_REALTIME just before each commit.
 *
 *   paced_producer SOCKET TICKS RATE     (RATE 0: as fast as possible)
 *
 * Connects (retrying for 60 s), sends TICKS ticks and the sentinel (type_id
 * 0, quantity = TICKS), and prints one JSON line: elapsed seconds, rate, and
 * how many sends found the ring full and had to wait (back-pressure).
 */
#define _GNU_SOURCE
#include <tachyon.h>

#include "bench_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const symbols[4] = {"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"};

/* Returns 0, or -1 when the consumer is gone. */
static int send_tick(tachyon_bus_t *bus, uint64_t i, uint32_t type_id, uint32_t qty, uint64_t *waits)
{
    uint8_t *p = tachyon_acquire_tx(bus, 32);
    if (!p) {
        (*waits)++;
        while (!(p = tachyon_acquire_tx_blocking(bus, 32, 1000, 1000))) {
            tachyon_error_t e = tachyon_bus_last_error(bus);
            if (e != TACHYON_ERR_TIMEOUT && e != TACHYON_ERR_FULL && e != TACHYON_ERR_INTERRUPTED)
                return -1;
        }
    }
    char sym[8] = {0};
    double price = 20000.0 + (double)(i % 10000) * 0.25;
    memcpy(sym, type_id ? symbols[i & 3] : "END", type_id ? strlen(symbols[i & 3]) : 3);
    memcpy(p, sym, 8);
    memcpy(p + 8, &price, 8);
    memcpy(p + 16, &qty, 4);
    memset(p + 28, 0, 4);
    uint64_t ts = (uint64_t)bench_clock_ns(CLOCK_REALTIME);
    memcpy(p + 20, &ts, 8);
    return tachyon_commit_tx(bus, 32, type_id) == TACHYON_SUCCESS ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: paced_producer SOCKET TICKS RATE\n");
        return 2;
    }
    uint64_t ticks = strtoull(argv[2], NULL, 10);
    double rate = atof(argv[3]);
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = tachyon_bus_connect_timeout(argv[1], 60000, &bus);
    if (err) {
        fprintf(stderr, "paced_producer: %s\n", tachyon_error_message(err));
        return 1;
    }
    uint64_t waits = 0;
    int64_t start = bench_clock_ns(CLOCK_MONOTONIC);
    for (uint64_t i = 0; i < ticks; i++) {
        if (rate > 0)
            bench_sleep_until_mono(start + (int64_t)((double)i * 1e9 / rate));
        if (send_tick(bus, i, (i & 1) ? 2 : 1, (uint32_t)(i + 1), &waits) < 0) {
            fprintf(stderr, "paced_producer: the consumer is gone after %llu ticks\n", (unsigned long long)i);
            return 1;
        }
    }
    double elapsed = (bench_clock_ns(CLOCK_MONOTONIC) - start) / 1e9;
    send_tick(bus, ticks, 0, (uint32_t)ticks, &waits);
    tachyon_bus_destroy(bus);
    printf("{\"ticks\": %llu, \"elapsed_s\": %.6f, \"rate\": %.1f, \"full_waits\": %llu}\n",
           (unsigned long long)ticks, elapsed, ticks / elapsed, (unsigned long long)waits);
    return 0;
}
