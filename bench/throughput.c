/*
 * throughput.c - C->C streaming throughput, two pinned processes over one
 * 1 MiB bus, against baselines measured in the same run.
 *
 *   1. 32-byte messages, per-message API (tachyon_acquire_tx + commit_tx ->
 *      tachyon_acquire_rx_spin(..., 0) + commit_rx), pure-spin consumer,
 *      default settings, against the same library storing head every 32
 *      commits (tachyon_bus_set_publish_batch(bus, 32): what the published
 *      tachyon-ipc library does). The two alternate, RUNS times each;
 *      medians and their ratio are reported.
 *   2. send_batch + drain_batch of 32-byte records against case 1.
 *   3. 4 KiB to 64 KiB messages against one core's memcpy bandwidth of the
 *      same sizes, measured in the same run.
 *
 * The producer fills each payload with memcpy; the consumer reads one word
 * of every 64-byte line of the payload in place. It prints figures and
 * RESULT lines; it asserts nothing about speed.
 *
 *   build/bench/throughput    (BENCH_MSGS per run, default 20,000,000 at 32 B;
 *                              BENCH_LARGE_BYTES of payload per large-message
 *                              run, default 2 GiB; BENCH_RUNS, default 5)
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "bench_common.h"
#include "tachyon.h"

#define RING_CAPACITY (1u << 20)
#define BATCH 64
#define MAX_RUNS 15

enum mode { PER_MESSAGE, PER_MESSAGE_BATCH32, BATCHED };

struct shared_result {
    volatile uint64_t received;
    volatile uint64_t elapsed_ns;
    volatile uint64_t checksum;
};

static uint64_t touch_payload(const uint8_t *p, size_t size)
{
    uint64_t sum = 0, w;
    for (size_t off = 0; off + 8 <= size; off += 64) {
        memcpy(&w, p + off, 8);
        sum += w;
    }
    return sum;
}

static void consumer(const char *path, enum mode mode, struct shared_result *out)
{
    bench_pin(1);
    tachyon_bus_t *bus;
    if (tachyon_bus_listen(path, RING_CAPACITY, &bus) != TACHYON_SUCCESS)
        _exit(1);
    tachyon_bus_set_polling_mode(bus, 1);
    uint64_t n = 0, sum = 0, t0 = 0;
    tachyon_msg_view_t views[BATCH];
    for (;;) {
        if (mode == BATCHED) {
            size_t k = tachyon_drain_batch(bus, views, BATCH, 10000);
            if (k == 0)
                break;
            if (n == 0)
                t0 = bench_now_ns();
            for (size_t i = 0; i < k; i++)
                sum += touch_payload(views[i].ptr, views[i].actual_size);
            tachyon_commit_rx_batch(bus, views, k);
            n += k;
        } else {
            uint32_t type_id;
            size_t size;
            const uint8_t *p = tachyon_acquire_rx_spin(bus, &type_id, &size, 0);
            if (!p)
                break;
            if (n == 0)
                t0 = bench_now_ns();
            sum += touch_payload(p, size);
            tachyon_commit_rx(bus);
            n++;
        }
    }
    out->elapsed_ns = bench_now_ns() - t0;
    out->received = n;
    out->checksum = sum;
    tachyon_bus_destroy(bus);
    _exit(0);
}

/* Sends `count` messages, then destroys the bus: the consumer sees the peer
 * leave once it has read everything. */
static void producer(const char *path, size_t size, enum mode mode, uint64_t count)
{
    bench_pin(0);
    tachyon_bus_t *bus;
    if (tachyon_bus_connect_timeout(path, 10000, &bus) != TACHYON_SUCCESS)
        exit(1);
    if (mode == PER_MESSAGE_BATCH32 && tachyon_bus_set_publish_batch(bus, 32) != TACHYON_SUCCESS)
        exit(1);
    uint8_t *src = malloc(size * BATCH + 64);
    for (size_t i = 0; i < size * BATCH + 64; i++)
        src[i] = (uint8_t)i;
    uint64_t sent = 0;
    while (sent < count) {
        if (mode == BATCHED) {
            size_t want = count - sent < BATCH ? (size_t)(count - sent) : BATCH;
            sent += tachyon_send_batch(bus, src, size, want, 1);
        } else {
            uint8_t *p = tachyon_acquire_tx(bus, size);
            if (!p)
                continue;
            memcpy(p, src + (size < 64 ? sent & 63 : (sent & 7) * 64), size); /* 64-byte aligned when large */
            tachyon_commit_tx(bus, size, 1);
            sent++;
        }
    }
    tachyon_bus_destroy(bus);
    free(src);
}

/* One run: messages per second as the consumer saw them. */
static double run_once(size_t size, enum mode mode, uint64_t count)
{
    struct shared_result *res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char path[108];
    bench_socket_path(path, sizeof(path), "tput");
    pid_t child = fork();
    if (child == 0)
        consumer(path, mode, res);
    producer(path, size, mode, count);
    int status;
    waitpid(child, &status, 0);
    if (res->received != count) {
        fprintf(stderr, "throughput: sent %llu, received %llu\n", (unsigned long long)count,
                (unsigned long long)res->received);
        exit(1);
    }
    double mps = (double)res->received / ((double)res->elapsed_ns / 1e9);
    munmap(res, sizeof(*res));
    return mps;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void result(const char *variant, size_t size, double mps)
{
    printf("RESULT bench=throughput variant=%s size=%zu msgs_per_s=%.0f gb_per_s=%.3f\n", variant, size, mps,
           mps * (double)size / 1e9);
}

/* One core copying `size`-byte blocks between two buffers of `span` bytes:
 * GB/s. With span the ring's size both stay in the core's cache, as the
 * ring's slots do; with a span far beyond the caches it is the machine's
 * memory bandwidth for memcpy. */
static double memcpy_gbps(size_t size, size_t span)
{
    uint8_t *src = malloc(span), *dst = malloc(span);
    if (!src || !dst)
        exit(1);
    memset(src, 1, span);
    memset(dst, 2, span);
    size_t per_pass = span / size;
    uint64_t bytes = 0, t0 = bench_now_ns();
    while (bench_now_ns() - t0 < 200000000ull) {
        for (size_t i = 0; i < per_pass; i++)
            memcpy(dst + i * size, src + ((i * 7) % per_pass) * size, size);
        __asm__ __volatile__("" ::"r"(dst) : "memory");
        bytes += per_pass * size;
    }
    double gbps = (double)bytes / ((double)(bench_now_ns() - t0));
    free(src);
    free(dst);
    return gbps;
}

int main(void)
{
    uint64_t count = bench_env_u64("BENCH_MSGS", 20000000);
    int runs = (int)bench_env_u64("BENCH_RUNS", 5);
    if (runs < 1 || runs > MAX_RUNS)
        runs = 5;
    bench_print_machine();
    printf("streaming, ring %u KiB, producer on CPU 0, consumer on CPU 1 (pure spin), %d runs per variant\n",
           RING_CAPACITY / 1024, runs);

    /* 1 and 2: 32 bytes, alternating so that background load hits all alike. */
    double ours[MAX_RUNS], base[MAX_RUNS], batched[MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        ours[r] = run_once(32, PER_MESSAGE, count);
        base[r] = run_once(32, PER_MESSAGE_BATCH32, count);
        batched[r] = run_once(32, BATCHED, count);
    }
    double m_ours = median(ours, runs), m_base = median(base, runs), m_batch = median(batched, runs);
    printf("\n32 B, %llu messages per run, medians:\n", (unsigned long long)count);
    printf("  per-message, default (stamps)            %8.2f M msg/s\n", m_ours / 1e6);
    printf("  per-message, head every 32 commits       %8.2f M msg/s   default / this = %.2fx\n", m_base / 1e6,
           m_ours / m_base);
    printf("  send_batch + drain_batch (64 per call)   %8.2f M msg/s   / per-message default = %.2fx\n",
           m_batch / 1e6, m_batch / m_ours);
    result("per-message,default", 32, m_ours);
    result("per-message,head-every-32", 32, m_base);
    result("send_batch+drain_batch", 32, m_batch);
    printf("RESULT bench=throughput variant=ratio-default-over-head32 value=%.3f\n", m_ours / m_base);
    printf("RESULT bench=throughput variant=ratio-batch-over-per-message value=%.3f\n", m_batch / m_ours);

    /* 3: by size, large messages against memcpy of the same block size. */
    static const size_t sizes[] = {64, 256, 1024, 4096, 16384, 65536};
    printf("\nby size, per-message default, medians of %d; memcpy on one core, same block sizes, within a\n"
           "ring-sized buffer (cache) and within 256 MiB (memory):\n", runs);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t size = sizes[i];
        uint64_t n = bench_env_u64("BENCH_LARGE_BYTES", 2ull << 30) / size; /* 2 GiB of payload per run, */
        if (n > count)
            n = count; /* or the 32-byte count of messages */
        double v[MAX_RUNS];
        for (int r = 0; r < runs; r++)
            v[r] = run_once(size, PER_MESSAGE, n);
        double mps = median(v, runs), gbps = mps * (double)size / 1e9;
        double cached = memcpy_gbps(size, RING_CAPACITY), memory = memcpy_gbps(size, 256u << 20);
        printf("  %6zu B  %8.3f M msg/s  %6.2f GB/s   memcpy cache %6.2f GB/s (x%.2f)  memory %6.2f GB/s (x%.2f)\n",
               size, mps / 1e6, gbps, cached, gbps / cached, memory, gbps / memory);
        result("per-message,default", size, mps);
        printf("RESULT bench=throughput variant=memcpy size=%zu gb_per_s=%.3f\n", size, cached);
        printf("RESULT bench=throughput variant=memcpy-memory size=%zu gb_per_s=%.3f\n", size, memory);
    }
    return 0;
}
