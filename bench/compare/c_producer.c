/*
 * c_producer.c - a native producer for the Python receive benchmark
 * (receivers.py): the Python side listens, this connects and sends `count`
 * MarketTicks as fast as the ring takes them, one acquire/commit per tick,
 * quantity = index and timestamp = CLOCK_REALTIME like the Python producers.
 * Waiting for room is part of the loop: the Python reader sets the pace.
 *
 * usage: c_producer ENDPOINT COUNT [TIMEOUT_S]
 * Prints: RESULT bench=c_producer sent=N producer_rate=MSG_PER_S
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tachyon.h"

#define TICK_SIZE 32

static int64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The packed <8sdIQ4x layout, written field by field with memcpy. */
static void write_tick(uint8_t *p, uint32_t index)
{
    static const char symbol[8] = "BTCUSDT";
    double price = 100.0 + index * 0.25;
    uint64_t stamp = (uint64_t)now_ns(CLOCK_REALTIME);
    memcpy(p, symbol, 8);
    memcpy(p + 8, &price, 8);
    memcpy(p + 16, &index, 4);
    memcpy(p + 20, &stamp, 8);
    memset(p + 28, 0, 4);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: c_producer ENDPOINT COUNT [TIMEOUT_S]\n");
        return 2;
    }
    const char *endpoint = argv[1];
    uint64_t count = strtoull(argv[2], NULL, 10);
    int timeout_ms = (argc > 3 ? atoi(argv[3]) : 30) * 1000;

    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = tachyon_bus_connect_timeout(endpoint, timeout_ms, &bus);
    if (err != TACHYON_SUCCESS) {
        fprintf(stderr, "c_producer: connect %s: %s\n", endpoint, tachyon_strerror(err));
        return 1;
    }
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    uint64_t sent = 0;
    for (; sent < count; sent++) {
        uint8_t *p = tachyon_acquire_tx_blocking(bus, TICK_SIZE, 10000, timeout_ms);
        if (!p) {
            fprintf(stderr, "c_producer: acquire after %llu ticks: %s\n",
                    (unsigned long long)sent, tachyon_strerror(tachyon_bus_last_error(bus)));
            break;
        }
        write_tick(p, (uint32_t)sent);
        tachyon_commit_tx(bus, TICK_SIZE, 1 + (sent & 1));
    }
    double secs = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    printf("RESULT bench=c_producer sent=%llu producer_rate=%.0f\n", (unsigned long long)sent,
           secs > 0 ? (double)sent / secs : 0.0);
    tachyon_bus_destroy(bus);
    return sent == count ? 0 : 1;
}
