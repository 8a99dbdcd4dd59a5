/*
 * tick_reader.c - the reader at the far end of the bridge tests and
 * benchmarks: owns a bus socket (as the seed's consumer does), reads
 * MarketTicks, checks tick i against the seed's formula (symbol, price,
 * quantity i + 1, side), and measures one-way latency as CLOCK_REALTIME at
 * receipt minus the tick's timestamp.
 *
 *   tick_reader SOCKET [--connect] [--capacity BYTES] [--timeout SEC] [--until-closed]
 *
 * Reads until the sentinel (type_id 0) or the producer's end (with
 * --until-closed, past the sentinel until the producer closes the bus,
 * counting what came after it as "after_sentinel"), then prints
 * one JSON line on stdout. Exit 0 when every tick received was the next one,
 * intact (and, with a sentinel, the count matched it); 1 otherwise.
 */
#define _GNU_SOURCE
#include <tachyon.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_SIZE 32
#define SENTINEL 0
#define BID 1
#define ASK 2

static const char *const symbols[4] = {"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"};

typedef struct {
    char symbol[8];
    double price;
    uint32_t quantity;
    uint64_t timestamp;
} tick_t;

static tick_t decode(const uint8_t *p)
{
    tick_t t;
    memcpy(t.symbol, p, 8);
    memcpy(&t.price, p + 8, 8);
    memcpy(&t.quantity, p + 16, 4);
    memcpy(&t.timestamp, p + 20, 8);
    return t;
}

/* Empty when tick i is as the seed's producer.py makes it. */
static const char *check_tick(uint64_t i, uint32_t type_id, const tick_t *t)
{
    char want[8] = {0};
    memcpy(want, symbols[i & 3], strlen(symbols[i & 3]));
    if (memcmp(t->symbol, want, 8) != 0)
        return "symbol";
    if (t->price != 20000.0 + (double)(i % 10000) * 0.25)
        return "price";
    if (t->quantity != (uint32_t)(i + 1))
        return "quantity (a tick lost, repeated or out of order)";
    if (type_id != ((i & 1) ? ASK : BID))
        return "side";
    return "";
}

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t k = (size_t)(p / 100.0 * (double)n);
    if (k >= n)
        k = n - 1;
    return v[k] / 1000.0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tick_reader SOCKET [--connect] [--capacity BYTES] [--timeout SEC]\n");
        return 2;
    }
    const char *path = argv[1];
    int connect = 0, timeout_s = 600, until_closed = 0;
    size_t capacity = 1u << 20;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--connect") == 0)
            connect = 1;
        else if (strcmp(argv[i], "--capacity") == 0 && i + 1 < argc)
            capacity = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--until-closed") == 0)
            until_closed = 1;
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout_s = atoi(argv[++i]);
    }
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err;
    if (connect) {
        err = tachyon_bus_connect_timeout(path, timeout_s * 1000, &bus);
    } else {
        tachyon_listen_opts_t lo;
        tachyon_listen_opts_init(&lo, capacity);
        lo.timeout_ms = timeout_s * 1000;
        err = tachyon_bus_listen_ex(path, &lo, &bus);
    }
    if (err) {
        fprintf(stderr, "tick_reader: bus at %s: %s\n", path, tachyon_error_message(err));
        return 1;
    }
    fprintf(stderr, "tick_reader: bus connected at %s\n", path);

    size_t cap_lat = 1 << 20, n_lat = 0;
    int64_t *lat = malloc(cap_lat * sizeof *lat);
    uint64_t received = 0, bids = 0, asks = 0, announced = 0, after_sentinel = 0;
    int sentinel = 0;
    const char *bad = "";
    uint64_t bad_at = 0;
    const char *end = "sentinel";
    int64_t first_ns = 0, last_ns = 0;
    for (;;) {
        uint32_t type_id = 0;
        size_t size = 0;
        const void *p = tachyon_acquire_rx_timeout(bus, &type_id, &size, 10000, timeout_s * 1000);
        if (!p) {
            tachyon_error_t e = tachyon_bus_last_error(bus);
            if (e == TACHYON_ERR_INTERRUPTED)
                continue;
            if (sentinel && e == TACHYON_ERR_PEER_CLOSED) {
                end = "sentinel_then_closed";
                break;
            }
            end = e == TACHYON_ERR_PEER_CLOSED ? "peer_closed"
                  : e == TACHYON_ERR_PEER_DEAD ? "peer_dead"
                  : e == TACHYON_ERR_TIMEOUT ? "timeout" : "error";
            break;
        }
        int64_t now = realtime_ns();
        if (sentinel) {
            after_sentinel++;
            tachyon_commit_rx(bus);
            continue;
        }
        if (size != TICK_SIZE) {
            if (!*bad) {
                bad = "payload size";
                bad_at = received;
            }
            tachyon_commit_rx(bus);
            continue;
        }
        tick_t t = decode(p);
        tachyon_commit_rx(bus);
        if (type_id == SENTINEL) {
            sentinel = 1;
            announced = t.quantity;
            if (!until_closed)
                break;
            continue;
        }
        if (!*bad) {
            const char *why = check_tick(received, type_id, &t);
            if (*why) {
                bad = why;
                bad_at = received;
            }
        }
        if (!first_ns)
            first_ns = now;
        last_ns = now;
        if (n_lat == cap_lat) {
            cap_lat *= 2;
            lat = realloc(lat, cap_lat * sizeof *lat);
        }
        lat[n_lat++] = now - (int64_t)t.timestamp;
        received++;
        if (type_id == BID)
            bids++;
        else
            asks++;
    }
    qsort(lat, n_lat, sizeof *lat, cmp_i64);
    double elapsed = (last_ns - first_ns) / 1e9;
    int ok = !*bad && (!sentinel || announced == received) && after_sentinel == 0;
    printf("{\"received\": %llu, \"bid\": %llu, \"ask\": %llu, \"sentinel\": %s, \"announced\": %llu, \"after_sentinel\": %llu, "
           "\"end\": \"%s\", \"ok\": %s, \"bad\": \"%s\", \"bad_at\": %llu, \"elapsed_s\": %.6f, "
           "\"p50_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, \"max_us\": %.2f}\n",
           (unsigned long long)received, (unsigned long long)bids, (unsigned long long)asks,
           sentinel ? "true" : "false", (unsigned long long)announced, (unsigned long long)after_sentinel, end, ok ? "true" : "false", bad,
           (unsigned long long)bad_at, elapsed, pct(lat, n_lat, 50), pct(lat, n_lat, 90), pct(lat, n_lat, 99),
           pct(lat, n_lat, 99.9), n_lat ? lat[n_lat - 1] / 1000.0 : 0.0);
    fflush(stdout);
    free(lat);
    tachyon_bus_destroy(bus);
    return ok ? 0 : 1;
}
