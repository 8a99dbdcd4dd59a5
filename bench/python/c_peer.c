/*
 * c_peer.c - the C side of the Python benchmarks and tests: a sink that drains
 * a bus as fast as the C API allows, and a producer that sends numbered
 * messages as fast as it allows, so that what is measured is the Python side.
 *
 *   c_peer sink PATH [listen|connect]
 *       Receive until a message with type_id 0; print
 *       "received N checksum S seconds T" (S = sum of each payload's first 8 bytes).
 *   c_peer produce PATH COUNT SIZE [listen|connect]
 *       Send COUNT messages of SIZE bytes (>= 8), type_id 1, the first 8 bytes
 *       the message's number (0, 1, ...), then one with type_id 0; print
 *       "sent N seconds T".
 *
 * By default the sink listens and the producer connects. Exit 0 on success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tachyon.h"

#define CAPACITY (1u << 20)
#define BATCH 1024

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static tachyon_bus_t *open_bus(const char *path, int listen)
{
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = listen ? tachyon_bus_listen(path, CAPACITY, &bus)
                                 : tachyon_bus_connect_timeout(path, 10000, &bus);
    if (err != TACHYON_SUCCESS) {
        fprintf(stderr, "c_peer: %s %s: %s\n", listen ? "listen" : "connect", path,
                tachyon_strerror(err));
        exit(1);
    }
    return bus;
}

static int run_sink(const char *path, int listen)
{
    tachyon_bus_t *bus = open_bus(path, listen);
    static tachyon_msg_view_t views[BATCH];
    unsigned long long count = 0, checksum = 0;
    double start = 0;
    for (;;) {
        size_t n = tachyon_drain_batch(bus, views, BATCH, 1000);
        if (n == 0) {
            fprintf(stderr, "c_peer sink: %s after %llu messages\n",
                    tachyon_strerror(tachyon_bus_last_error(bus)), count);
            tachyon_bus_destroy(bus);
            return 1;
        }
        if (count == 0)
            start = now_s();
        for (size_t i = 0; i < n; i++) {
            if (views[i].type_id == 0) {
                tachyon_commit_rx_batch(bus, views, i + 1);
                double secs = now_s() - start;
                printf("received %llu checksum %llu seconds %.6f\n", count, checksum, secs);
                tachyon_bus_destroy(bus);
                return 0;
            }
            unsigned long long first = 0;
            memcpy(&first, views[i].ptr, views[i].actual_size < 8 ? views[i].actual_size : 8);
            checksum += first;
            count++;
        }
        tachyon_commit_rx_batch(bus, views, n);
    }
}

static int send_one(tachyon_bus_t *bus, const void *data, size_t size, uint32_t type_id)
{
    void *slot = tachyon_acquire_tx_blocking(bus, size, 1000, -1);
    if (!slot) {
        fprintf(stderr, "c_peer produce: %s\n", tachyon_strerror(tachyon_bus_last_error(bus)));
        return -1;
    }
    memcpy(slot, data, size);
    return tachyon_commit_tx(bus, size, type_id) == TACHYON_SUCCESS ? 0 : -1;
}

static int run_produce(const char *path, unsigned long long count, size_t size, int listen)
{
    if (size < 8 || size > 4096) {
        fprintf(stderr, "c_peer produce: SIZE must be in [8, 4096]\n");
        return 2;
    }
    tachyon_bus_t *bus = open_bus(path, listen);
    unsigned char payload[4096];
    memset(payload, 0xAB, sizeof(payload));
    double start = now_s();
    for (unsigned long long i = 0; i < count; i++) {
        memcpy(payload, &i, 8);
        if (send_one(bus, payload, size, 1) < 0)
            return 1;
    }
    memset(payload, 0, 8);
    if (send_one(bus, payload, size, 0) < 0)
        return 1;
    printf("sent %llu seconds %.6f\n", count, now_s() - start);
    fflush(stdout);
    /* Stay until the consumer has read everything: leaving at once is fine
     * for Tachyon (it reads what was committed), but it keeps the measured
     * receive free of the peer-gone path. */
    while (tachyon_peer_alive(bus)) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    tachyon_bus_destroy(bus);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "sink") == 0)
        return run_sink(argv[2], argc < 4 || strcmp(argv[3], "connect") != 0);
    if (argc >= 5 && strcmp(argv[1], "produce") == 0)
        return run_produce(argv[2], strtoull(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
                           argc >= 6 && strcmp(argv[5], "listen") == 0);
    fprintf(stderr, "usage: c_peer sink PATH [listen|connect]\n"
                    "       c_peer produce PATH COUNT SIZE [listen|connect]\n");
    return 2;
}
