/*
 * rpc.c - request/reply round trips, C caller <-> C server, 32-byte and
 * 1 KiB requests (each answered with a reply of the same size), beside the
 * floors measured in the same run between the same two pinned processes:
 *
 *   cache-line floor   each side writes a counter on its own 128-byte line
 *                      and spins on the other's (as bench/pingpong.c);
 *   1 KiB copy floor   the same, with the caller copying 1 KiB into shared
 *                      memory before its store, the responder copying it to
 *                      a reply buffer before its own, and the caller copying
 *                      the reply out: the copies a 1 KiB echo needs, and
 *                      nothing else.
 *
 *   build/bench/rpc            (BENCH_ROUNDS=100000 per row, BENCH_REPS=5)
 *
 * Tachyon runs twice per size: pure-spin waits on both sides, and the
 * default (spin 10 000 polls, then sleep on the futex). Each round trip is
 * timed with CLOCK_MONOTONIC; the clock read costs the same in every row.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "bench_common.h"
#include "tachyon.h"

#define WARMUP 20000
#define SPIN 10000u
#define RING (1u << 16)

struct floor_lines {
    _Alignas(128) _Atomic uint64_t ping;
    _Alignas(128) _Atomic uint64_t pong;
    _Alignas(128) uint8_t request[1024];
    _Alignas(128) uint8_t reply[1024];
};

/* ---- the floors --------------------------------------------------------------- */

static void floor_responder(struct floor_lines *l, uint64_t rounds, size_t bytes)
{
    for (uint64_t i = 1; i <= rounds; i++) {
        while (atomic_load_explicit(&l->ping, memory_order_acquire) != i)
            __builtin_ia32_pause();
        if (bytes)
            memcpy(l->reply, l->request, bytes); /* as the server copies request to reply */
        atomic_store_explicit(&l->pong, i, memory_order_release);
    }
}

static void floor_initiator(struct floor_lines *l, uint64_t rounds, size_t bytes, uint64_t *samples)
{
    uint8_t out[1024], in[1024];
    memset(out, 7, sizeof(out));
    for (uint64_t i = 1; i <= rounds; i++) {
        uint64_t t0 = bench_now_ns();
        if (bytes)
            memcpy(l->request, out, bytes);
        atomic_store_explicit(&l->ping, i, memory_order_release);
        while (atomic_load_explicit(&l->pong, memory_order_acquire) != i)
            __builtin_ia32_pause();
        if (bytes)
            memcpy(in, l->reply, bytes);
        uint64_t t1 = bench_now_ns();
        if (i > WARMUP)
            samples[i - WARMUP - 1] = t1 - t0;
    }
    __asm__ __volatile__("" : : "r"(in) : "memory");
}

static void measure_floor(uint64_t rounds, size_t bytes, uint64_t *samples)
{
    struct floor_lines *l = mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l == MAP_FAILED)
        exit(1);
    memset(l, 0, sizeof(*l));
    pid_t child = fork();
    if (child == 0) {
        bench_pin(1);
        floor_responder(l, rounds + WARMUP, bytes);
        _exit(0);
    }
    bench_pin(0);
    floor_initiator(l, rounds + WARMUP, bytes, samples);
    waitpid(child, NULL, 0);
    munmap(l, sizeof(*l));
}

/* ---- tachyon request/reply ------------------------------------------------------ */

/* Child: answer every request with a reply of the same bytes. */
static void rpc_server(const char *path, uint64_t rounds, int pure_spin)
{
    bench_pin(1);
    tachyon_rpc_bus_t *server;
    if (tachyon_rpc_listen(path, RING, RING, &server) != TACHYON_SUCCESS)
        _exit(1);
    tachyon_rpc_set_polling_mode(server, pure_spin);
    for (uint64_t i = 0; i < rounds; i++) {
        uint64_t cid;
        uint32_t type;
        size_t size;
        const void *req = tachyon_rpc_serve(server, &cid, &type, &size, SPIN);
        if (!req)
            _exit(2);
        void *slot = tachyon_rpc_acquire_reply_tx(server, size);
        if (!slot)
            _exit(3);
        memcpy(slot, req, size);
        tachyon_rpc_commit_reply(server, cid, size, type); /* the reply first: it is what the caller waits for */
        tachyon_rpc_commit_serve(server);
    }
    tachyon_rpc_destroy(server);
    _exit(0);
}

static void measure_rpc(uint64_t rounds, size_t bytes, int pure_spin, uint64_t *samples)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/tachyon-bench-rpc-%d.sock", (int)getpid());
    pid_t child = fork();
    if (child == 0)
        rpc_server(path, rounds + WARMUP, pure_spin);
    bench_pin(0);
    tachyon_rpc_bus_t *client;
    if (tachyon_rpc_connect_timeout(path, 10000, &client) != TACHYON_SUCCESS) {
        fprintf(stderr, "rpc bench: connect failed\n");
        kill(child, SIGKILL);
        exit(1);
    }
    tachyon_rpc_set_polling_mode(client, pure_spin);
    uint8_t request[1024], reply[1024];
    memset(request, 0x5a, sizeof(request));
    for (uint64_t i = 0; i < rounds + WARMUP; i++) {
        memcpy(request, &i, sizeof(i));
        uint64_t t0 = bench_now_ns();
        uint64_t cid;
        if (tachyon_rpc_call(client, request, bytes, 1, &cid) != TACHYON_SUCCESS) {
            fprintf(stderr, "rpc bench: call failed: %s\n", tachyon_error_message(tachyon_rpc_last_error(client)));
            exit(1);
        }
        size_t size;
        uint32_t type;
        const void *p = tachyon_rpc_wait(client, cid, &size, &type, SPIN);
        if (!p) {
            fprintf(stderr, "rpc bench: wait failed: %s\n", tachyon_error_message(tachyon_rpc_last_error(client)));
            exit(1);
        }
        memcpy(reply, p, size);
        tachyon_rpc_commit_rx(client);
        uint64_t t1 = bench_now_ns();
        uint64_t echoed;
        memcpy(&echoed, reply, sizeof(echoed));
        if (size != bytes || echoed != i) {
            fprintf(stderr, "rpc bench: round trip %llu came back wrong\n", (unsigned long long)i);
            exit(1);
        }
        if (i >= WARMUP)
            samples[i - WARMUP] = t1 - t0;
    }
    waitpid(child, NULL, 0);
    tachyon_rpc_destroy(client);
}

/* ---- report ----------------------------------------------------------------------- */

enum { FLOOR_LINE, RPC32_SPIN, RPC32_SLEEP, FLOOR_COPY, RPC1K_SPIN, RPC1K_SLEEP, VARIANTS };
#define MAX_REPS 64

static const struct variant {
    const char *name, *key;
    size_t bytes;
    int pure_spin, floor; /* floor: the row it is compared with (-1: none) */
} variants[VARIANTS] = {
    [FLOOR_LINE] = {"cache-line ping-pong (floor)", "floor", 0, 0, -1},
    [RPC32_SPIN] = {"tachyon rpc 32 B, pure spin", "rpc_spin", 32, 1, FLOOR_LINE},
    [RPC32_SLEEP] = {"tachyon rpc 32 B, spin then sleep", "rpc_blocking", 32, 0, FLOOR_LINE},
    [FLOOR_COPY] = {"1 KiB copy ping-pong (floor)", "copy_floor", 1024, 0, -1},
    [RPC1K_SPIN] = {"tachyon rpc 1 KiB, pure spin", "rpc_spin", 1024, 1, FLOOR_COPY},
    [RPC1K_SLEEP] = {"tachyon rpc 1 KiB, spin then sleep", "rpc_blocking", 1024, 0, FLOOR_COPY},
};

struct summary {
    uint64_t p50, p90, p99, p999;
};

static struct summary summarize(uint64_t *s, size_t n)
{
    struct summary r = {bench_percentile(s, n, 50), bench_percentile(s, n, 90), bench_percentile(s, n, 99),
                        bench_percentile(s, n, 99.9)};
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The median over repetitions of one statistic of one row. */
static double median_stat(struct summary (*runs)[VARIANTS], int reps, int row, size_t field)
{
    double v[MAX_REPS];
    for (int r = 0; r < reps; r++)
        v[r] = (double)*(const uint64_t *)((const char *)&runs[r][row] + field);
    return median_of(v, reps);
}

int main(void)
{
    uint64_t rounds = bench_env_u64("BENCH_ROUNDS", 100000);
    int reps = (int)bench_env_u64("BENCH_REPS", 5);
    if (reps < 1 || reps > MAX_REPS)
        reps = 5;
    uint64_t *samples = calloc(rounds, sizeof(uint64_t));
    static struct summary runs[MAX_REPS][VARIANTS];
    if (!samples)
        return 1;
    bench_print_machine();
    printf("request/reply round trips (each request answered with a reply of its size), caller and server pinned\n"
           "to CPUs 0 and 1; %d repetitions of every row, interleaved, %llu round trips each after %d warm-up;\n"
           "medians over the repetitions, ratios taken within each repetition\n\n",
           reps, (unsigned long long)rounds, WARMUP);
    for (int r = 0; r < reps; r++) {
        for (int v = 0; v < VARIANTS; v++) {
            const struct variant *x = &variants[v];
            if (x->floor < 0)
                measure_floor(rounds, x->bytes, samples);
            else
                measure_rpc(rounds, x->bytes, x->pure_spin, samples);
            runs[r][v] = summarize(samples, rounds);
        }
    }
    for (int v = 0; v < VARIANTS; v++) {
        const struct variant *x = &variants[v];
        double p50 = median_stat(runs, reps, v, offsetof(struct summary, p50));
        double p90 = median_stat(runs, reps, v, offsetof(struct summary, p90));
        double p99 = median_stat(runs, reps, v, offsetof(struct summary, p99));
        double p999 = median_stat(runs, reps, v, offsetof(struct summary, p999));
        printf("%-36s p50 %6.0f ns  p90 %6.0f ns  p99 %6.0f ns  p99.9 %7.0f ns", x->name, p50, p90, p99, p999);
        double ratio = 0, lo = 0, hi = 0;
        if (x->floor >= 0) {
            double ratios[MAX_REPS];
            for (int r = 0; r < reps; r++)
                ratios[r] = (double)runs[r][v].p50 / (double)runs[r][x->floor].p50;
            ratio = median_of(ratios, reps);
            lo = ratios[0];
            hi = ratios[reps - 1];
            printf("   p50 = %.2fx %s (%.2f-%.2f)", ratio, x->floor == FLOOR_LINE ? "floor" : "copy floor", lo, hi);
        }
        printf("\n");
        printf("RESULT bench=rpc variant=%s bytes=%zu p50_ns=%.0f p90_ns=%.0f p99_ns=%.0f p999_ns=%.0f", x->key,
               x->bytes, p50, p90, p99, p999);
        if (x->floor >= 0)
            printf(" ratio_p50=%.2f ratio_min=%.2f ratio_max=%.2f", ratio, lo, hi);
        printf("\n");
    }
    double target[MAX_REPS];
    for (int r = 0; r < reps; r++)
        target[r] = (double)runs[r][RPC32_SPIN].p50 / (double)runs[r][FLOOR_LINE].p50;
    printf("\nC<->C 32 B round trip, pure spin: p50 %.2fx the cache-line floor of the same repetition "
           "(goal: at most 1.5x)\n",
           median_of(target, reps));
    free(samples);
    return 0;
}
