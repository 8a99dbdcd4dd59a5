/*
 * throughput.c - C->C streaming throughput by payload size, two pinned
 * processes over one bus.
 *
 * The producer fills each payload (memcpy from a source buffer) and commits;
 * the consumer reads one word of every 64-byte line of the payload in place
 * (zero-copy: it uses the data where it lies) and commits. Reported: messages
 * per second and payload GB/s, per size, for the per-message API in pure-spin
 * and blocking mode, and for send_batch + drain_batch at 32 bytes.
 *
 *   build/bench/throughput    (BENCH_SECONDS=1 per case by default)
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "bench_common.h"
#include "tachyon.h"

#define RING_CAPACITY (1u << 20)
#define BATCH 64

enum mode { PER_MESSAGE_SPIN, PER_MESSAGE_BLOCKING, BATCHED };

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
    if (mode != PER_MESSAGE_BLOCKING)
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
            const uint8_t *p = tachyon_acquire_rx_blocking(bus, &type_id, &size, 10000);
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

/* Sends for `seconds`, then destroys the bus: the consumer sees the peer
 * leave once it has read everything. Returns the count sent. */
static uint64_t producer(const char *path, size_t size, enum mode mode, double seconds)
{
    bench_pin(0);
    tachyon_bus_t *bus;
    if (tachyon_bus_connect_timeout(path, 10000, &bus) != TACHYON_SUCCESS)
        exit(1);
    uint8_t *src = malloc(size * BATCH + 64);
    for (size_t i = 0; i < size * BATCH + 64; i++)
        src[i] = (uint8_t)i;
    uint64_t sent = 0;
    uint64_t deadline = bench_now_ns() + (uint64_t)(seconds * 1e9);
    while (bench_now_ns() < deadline) {
        for (int k = 0; k < 256; k++) { /* look at the clock every 256 rounds */
            if (mode == BATCHED) {
                sent += tachyon_send_batch(bus, src, size, BATCH, 1);
            } else {
                uint8_t *p = tachyon_acquire_tx(bus, size);
                if (!p)
                    continue;
                memcpy(p, src + (sent & 63), size);
                tachyon_commit_tx(bus, size, 1);
                sent++;
            }
        }
    }
    tachyon_bus_destroy(bus);
    free(src);
    return sent;
}

static void run_case(size_t size, enum mode mode, double seconds, const char *label)
{
    struct shared_result *res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char path[108];
    bench_socket_path(path, sizeof(path), "tput");
    pid_t child = fork();
    if (child == 0)
        consumer(path, mode, res);
    uint64_t sent = producer(path, size, mode, seconds);
    int status;
    waitpid(child, &status, 0);
    if (res->received != sent) {
        fprintf(stderr, "throughput: sent %llu, received %llu\n", (unsigned long long)sent,
                (unsigned long long)res->received);
        exit(1);
    }
    double secs = (double)res->elapsed_ns / 1e9;
    double mps = (double)res->received / secs;
    double gbps = mps * (double)size / 1e9;
    printf("%-28s %6zu B  %8.2f M msg/s  %7.2f GB/s\n", label, size, mps / 1e6, gbps);
    printf("RESULT bench=throughput variant=%s size=%zu msgs_per_s=%.0f gb_per_s=%.3f\n", label, size, mps, gbps);
    munmap(res, sizeof(*res));
}

int main(void)
{
    double seconds = (double)bench_env_u64("BENCH_MILLIS", 1000) / 1000.0;
    static const size_t sizes[] = {32, 64, 256, 1024, 4096, 16384, 65536};
    bench_print_machine();
    printf("streaming, ring %u KiB, producer on CPU 0, consumer on CPU 1, %.1f s per case\n",
           RING_CAPACITY / 1024, seconds);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        run_case(sizes[i], PER_MESSAGE_SPIN, seconds, "per-message,pure-spin");
    run_case(32, PER_MESSAGE_BLOCKING, seconds, "per-message,blocking");
    run_case(32, BATCHED, seconds, "send_batch+drain_batch");
    return 0;
}
