/*
 * pingpong.c - C<->C round-trip latency through two Tachyon buses, beside the
 * floor: a raw cache-line ping-pong between the same two pinned processes in
 * the same run (each side writes a counter on its own 128-byte line and spins
 * on the other's). The ratio tachyon/floor is what the library costs.
 *
 *   build/bench/pingpong            (BENCH_ROUNDS=200000 by default)
 *
 * Each round trip: A writes a 32-byte message, B receives it and answers with
 * a 32-byte message, A receives the answer. Timed per round trip with
 * CLOCK_MONOTONIC (the clock read costs the same in both measurements).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "bench_common.h"
#include "tachyon.h"

#define WARMUP 20000

struct floor_lines {
    _Alignas(128) _Atomic uint64_t ping;
    _Alignas(128) _Atomic uint64_t pong;
};

static void floor_responder(struct floor_lines *l, uint64_t rounds)
{
    for (uint64_t i = 1; i <= rounds; i++) {
        while (atomic_load_explicit(&l->ping, memory_order_acquire) != i)
            __builtin_ia32_pause();
        atomic_store_explicit(&l->pong, i, memory_order_release);
    }
}

static void floor_initiator(struct floor_lines *l, uint64_t rounds, uint64_t *samples)
{
    for (uint64_t i = 1; i <= rounds; i++) {
        uint64_t t0 = bench_now_ns();
        atomic_store_explicit(&l->ping, i, memory_order_release);
        while (atomic_load_explicit(&l->pong, memory_order_acquire) != i)
            __builtin_ia32_pause();
        uint64_t t1 = bench_now_ns();
        if (i > WARMUP)
            samples[i - WARMUP - 1] = t1 - t0;
    }
}

static void measure_floor(uint64_t rounds, uint64_t *samples)
{
    struct floor_lines *l = mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l == MAP_FAILED)
        exit(1);
    memset(l, 0, sizeof(*l));
    pid_t child = fork();
    if (child == 0) {
        bench_pin(1);
        floor_responder(l, rounds + WARMUP);
        _exit(0);
    }
    bench_pin(0);
    floor_initiator(l, rounds + WARMUP, samples);
    waitpid(child, NULL, 0);
    munmap(l, sizeof(*l));
}

static const void *recv_one(tachyon_bus_t *bus)
{
    uint32_t type_id;
    size_t size;
    const void *p = tachyon_acquire_rx_blocking(bus, &type_id, &size, 10000);
    if (!p) {
        fprintf(stderr, "pingpong: receive failed: %s\n", tachyon_strerror(tachyon_bus_last_error(bus)));
        exit(1);
    }
    return p;
}

static void send_u64(tachyon_bus_t *bus, uint64_t v)
{
    uint8_t *p;
    while (!(p = tachyon_acquire_tx(bus, 32)))
        __builtin_ia32_pause();
    memcpy(p, &v, sizeof(v));
    tachyon_commit_tx(bus, 32, 1);
}

/* Child: answers every ping on bus `in` with a pong on bus `out`. */
static void tachyon_responder(const char *ping_path, const char *pong_path, uint64_t rounds, int pure_spin)
{
    bench_pin(1);
    tachyon_bus_t *in, *out;
    if (tachyon_bus_connect_timeout(ping_path, 10000, &in) != TACHYON_SUCCESS ||
        tachyon_bus_listen(pong_path, 1 << 16, &out) != TACHYON_SUCCESS)
        _exit(1);
    tachyon_bus_set_polling_mode(in, pure_spin);
    for (uint64_t i = 0; i < rounds; i++) {
        uint64_t v;
        memcpy(&v, recv_one(in), sizeof(v));
        tachyon_commit_rx(in);
        send_u64(out, v);
    }
    tachyon_bus_destroy(in);
    tachyon_bus_destroy(out);
    _exit(0);
}

static void measure_tachyon(uint64_t rounds, uint64_t *samples, int pure_spin)
{
    char ping_path[108], pong_path[108];
    bench_socket_path(ping_path, sizeof(ping_path), "ping");
    bench_socket_path(pong_path, sizeof(pong_path), "pong");
    pid_t child = fork();
    if (child == 0)
        tachyon_responder(ping_path, pong_path, rounds + WARMUP, pure_spin);
    bench_pin(0);
    tachyon_bus_t *out, *in;
    if (tachyon_bus_listen(ping_path, 1 << 16, &out) != TACHYON_SUCCESS ||
        tachyon_bus_connect_timeout(pong_path, 10000, &in) != TACHYON_SUCCESS) {
        fprintf(stderr, "pingpong: setup failed\n");
        kill(child, SIGKILL);
        exit(1);
    }
    tachyon_bus_set_polling_mode(in, pure_spin);
    for (uint64_t i = 0; i < rounds + WARMUP; i++) {
        uint64_t t0 = bench_now_ns();
        send_u64(out, i);
        uint64_t v;
        memcpy(&v, recv_one(in), sizeof(v));
        tachyon_commit_rx(in);
        uint64_t t1 = bench_now_ns();
        if (v != i) {
            fprintf(stderr, "pingpong: got %llu, expected %llu\n", (unsigned long long)v, (unsigned long long)i);
            exit(1);
        }
        if (i >= WARMUP)
            samples[i - WARMUP] = t1 - t0;
    }
    waitpid(child, NULL, 0);
    tachyon_bus_destroy(out);
    tachyon_bus_destroy(in);
}

struct summary {
    uint64_t p50, p90, p99, p999;
};

static struct summary summarize(uint64_t *s, size_t n)
{
    struct summary r;
    r.p50 = bench_percentile(s, n, 50);
    r.p90 = bench_percentile(s, n, 90);
    r.p99 = bench_percentile(s, n, 99);
    r.p999 = bench_percentile(s, n, 99.9);
    return r;
}

static void report(const char *name, struct summary s, const struct summary *floor)
{
    printf("%-34s p50 %6llu ns  p90 %6llu ns  p99 %6llu ns  p99.9 %7llu ns", name,
           (unsigned long long)s.p50, (unsigned long long)s.p90, (unsigned long long)s.p99,
           (unsigned long long)s.p999);
    if (floor)
        printf("   p50 = %.2fx floor", (double)s.p50 / (double)floor->p50);
    printf("\n");
}

int main(void)
{
    uint64_t rounds = bench_env_u64("BENCH_ROUNDS", 200000);
    uint64_t *samples = calloc(rounds, sizeof(uint64_t));
    if (!samples)
        return 1;
    bench_print_machine();
    printf("round trip, 32-byte messages, %llu round trips after %d warm-up, sides pinned to CPUs 0 and 1\n",
           (unsigned long long)rounds, WARMUP);

    measure_floor(rounds, samples);
    struct summary floor = summarize(samples, rounds);
    measure_tachyon(rounds, samples, 1);
    struct summary spin = summarize(samples, rounds);
    measure_tachyon(rounds, samples, 0);
    struct summary blocking = summarize(samples, rounds);

    report("cache-line ping-pong (floor)", floor, NULL);
    report("tachyon, pure-spin consumer", spin, &floor);
    report("tachyon, blocking consumer", blocking, &floor);
    printf("RESULT bench=pingpong variant=floor p50_ns=%llu p90_ns=%llu p99_ns=%llu p999_ns=%llu\n",
           (unsigned long long)floor.p50, (unsigned long long)floor.p90, (unsigned long long)floor.p99,
           (unsigned long long)floor.p999);
    printf("RESULT bench=pingpong variant=tachyon_spin p50_ns=%llu p90_ns=%llu p99_ns=%llu p999_ns=%llu ratio_p50=%.2f\n",
           (unsigned long long)spin.p50, (unsigned long long)spin.p90, (unsigned long long)spin.p99,
           (unsigned long long)spin.p999, (double)spin.p50 / (double)floor.p50);
    printf("RESULT bench=pingpong variant=tachyon_blocking p50_ns=%llu p90_ns=%llu p99_ns=%llu p999_ns=%llu ratio_p50=%.2f\n",
           (unsigned long long)blocking.p50, (unsigned long long)blocking.p90, (unsigned long long)blocking.p99,
           (unsigned long long)blocking.p999, (double)blocking.p50 / (double)floor.p50);
    free(samples);
    return 0;
}
