/*
 * nats_floor.c - the bridge benchmark's floor: what one hop through
 * nats-server costs on this machine with nothing of Tachyon in the path. A C
 * publisher (libnats) sends 32-byte ticks stamped with CLOCK_REALTIME at a
 * fixed rate, writing each to the socket at once as tachyon-bridge out does
 * when its bus runs dry (publish, then a PING-answered flush); a C subscriber
 * (libnats, a synchronous subscription read with NextMsg, as tachyon-bridge
 * in reads) takes each and measures now minus the stamp.
 *
 *   nats_floor sub URL SUBJECT COUNT        prints one JSON line when COUNT came
 *   nats_floor pub URL SUBJECT COUNT RATE   publishes COUNT ticks at RATE/s
 *
 * The subscriber says "subscribed" on stderr once the server has its
 * subscription. Exit 0 when every tick came once and in order.
 */
#define _GNU_SOURCE
#include <nats/nats.h>

#include "bench_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_SIZE 32
#define STAMP_OFFSET 20 /* where the seed's MarketTick keeps its timestamp */
#define SEQ_OFFSET 16   /* and its quantity, here the tick's number */
#define FLUSH_TIMEOUT_MS 1000
#define RECEIVE_TIMEOUT_MS 60000

static natsConnection *connect_to(const char *url)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, url);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        fprintf(stderr, "nats_floor: cannot connect to %s: %s\n", url, natsStatus_GetText(s));
        exit(1);
    }
    return nc;
}

static int subscribe_and_measure(const char *url, const char *subject, uint64_t count)
{
    natsConnection *nc = connect_to(url);
    natsSubscription *sub = NULL;
    if (natsConnection_SubscribeSync(&sub, nc, subject) != NATS_OK ||
        natsConnection_FlushTimeout(nc, FLUSH_TIMEOUT_MS) != NATS_OK) {
        fprintf(stderr, "nats_floor: cannot subscribe to %s\n", subject);
        return 1;
    }
    natsSubscription_SetPendingLimits(sub, -1, -1);
    fprintf(stderr, "subscribed to %s\n", subject);
    uint64_t *lat = calloc(count ? count : 1, sizeof(*lat));
    uint64_t received = 0;
    int ok = lat != NULL;
    while (ok && received < count) {
        natsMsg *msg = NULL;
        if (natsSubscription_NextMsg(&msg, sub, RECEIVE_TIMEOUT_MS) != NATS_OK) {
            fprintf(stderr, "nats_floor: nothing for %d ms after %llu ticks\n", RECEIVE_TIMEOUT_MS,
                    (unsigned long long)received);
            ok = 0;
            break;
        }
        int64_t now = bench_clock_ns(CLOCK_REALTIME);
        const char *data = natsMsg_GetData(msg);
        uint32_t seq = 0;
        int64_t stamp = 0;
        if (natsMsg_GetDataLength(msg) == TICK_SIZE) {
            memcpy(&seq, data + SEQ_OFFSET, sizeof(seq));
            memcpy(&stamp, data + STAMP_OFFSET, sizeof(stamp));
        }
        if (natsMsg_GetDataLength(msg) != TICK_SIZE || seq != received)
            ok = 0;
        lat[received++] = now > stamp ? (uint64_t)(now - stamp) : 0;
        natsMsg_Destroy(msg);
    }
    printf("{\"received\": %llu, \"ok\": %s, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f}\n",
           (unsigned long long)received, ok ? "true" : "false", bench_percentile(lat, received, 50) / 1e3,
           bench_percentile(lat, received, 90) / 1e3, bench_percentile(lat, received, 99) / 1e3);
    free(lat);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    return ok ? 0 : 1;
}

static int publish_paced(const char *url, const char *subject, uint64_t count, double rate)
{
    natsConnection *nc = connect_to(url);
    int64_t start = bench_clock_ns(CLOCK_MONOTONIC);
    for (uint64_t i = 0; i < count; i++) {
        if (rate > 0)
            bench_sleep_until_mono(start + (int64_t)((double)i * 1e9 / rate));
        char tick[TICK_SIZE] = "BTCUSDT";
        uint32_t seq = (uint32_t)i;
        int64_t stamp = bench_clock_ns(CLOCK_REALTIME);
        memcpy(tick + SEQ_OFFSET, &seq, sizeof(seq));
        memcpy(tick + STAMP_OFFSET, &stamp, sizeof(stamp));
        natsStatus s = natsConnection_Publish(nc, subject, tick, TICK_SIZE);
        if (s == NATS_OK)
            s = natsConnection_FlushTimeout(nc, FLUSH_TIMEOUT_MS);
        if (s != NATS_OK) {
            fprintf(stderr, "nats_floor: publish %llu failed: %s\n", (unsigned long long)i, natsStatus_GetText(s));
            return 1;
        }
    }
    natsConnection_Destroy(nc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "sub") == 0)
        return subscribe_and_measure(argv[2], argv[3], strtoull(argv[4], NULL, 10));
    if (argc == 6 && strcmp(argv[1], "pub") == 0)
        return publish_paced(argv[2], argv[3], strtoull(argv[4], NULL, 10), atof(argv[5]));
    fprintf(stderr, "usage: nats_floor sub URL SUBJECT COUNT\n"
                    "       nats_floor pub URL SUBJECT COUNT RATE\n");
    return 2;
}
