/*
 * soak.c SECONDS - two processes stream through a small ring for SECONDS:
 * random sizes 0..4096, random producer pauses and consumer delays, blocking
 * waits on both sides, partial batch commits and rollbacks. Every message's
 * size and bytes follow from its sequence number, so the consumer checks that
 * nothing is lost, duplicated, reordered or corrupted. A receive that waits 5 s
 * while the producer is alive counts as a lost wake-up.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define RING (16 * 1024)
#define MAX_SIZE 4096
#define STALL_MS 5000

struct shared {
    _Atomic uint64_t sent;
    _Atomic uint64_t rollbacks;
};

/* Size and content of message `seq`, the same on both sides. */
static size_t message_size(uint64_t seq)
{
    uint64_t s = seq * 0x9E3779B97F4A7C15ULL + 1;
    uint64_t r = sec_rand(&s);
    /* A third are tiny (0..64 B), the rest spread to 4 KiB. */
    return r % 3 == 0 ? (size_t)((r >> 8) % 65) : (size_t)((r >> 8) % (MAX_SIZE + 1));
}

static void message_fill(uint64_t seq, uint8_t *p, size_t size)
{
    uint64_t s = seq ^ 0xD6E8FEB86659FD93ULL;
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t r = sec_rand(&s);
        memcpy(p + i, &r, 8);
    }
    uint64_t r = sec_rand(&s);
    memcpy(p + i, &r, size - i);
}

static int message_ok(uint64_t seq, const uint8_t *p, size_t size, uint32_t type)
{
    static uint8_t want[MAX_SIZE + 8];
    if (size != message_size(seq) || type != (uint32_t)seq)
        return 0;
    message_fill(seq, want, size);
    return memcmp(want, p, size) == 0;
}

/* Sometimes do nothing for a while: spin, yield or sleep up to 2 ms. */
static void random_pause(uint64_t *seed, unsigned one_in)
{
    uint64_t r = sec_rand(seed);
    if (r % one_in != 0)
        return;
    switch ((r >> 16) % 3) {
    case 0: for (volatile int i = 0; i < 2000; i++) ; break;
    case 1: usleep(0); break;
    default: usleep((useconds_t)((r >> 20) % 2000)); break;
    }
}

static void __attribute__((noreturn)) producer(const char *path, struct shared *sh, int seconds)
{
    alarm((unsigned)seconds + 40);
    tachyon_bus_t *bus = NULL;
    if (tachyon_bus_connect_timeout(path, 5000, &bus) != TACHYON_SUCCESS)
        _exit(3);
    uint64_t seed = 0x1234567 ^ (uint64_t)getpid();
    int64_t end = sec_now_ms() + seconds * 1000LL;
    uint64_t seq = 0;
    while (sec_now_ms() < end) {
        size_t size = message_size(seq);
        uint8_t *p = tachyon_acquire_tx_blocking(bus, size, 200, STALL_MS);
        if (!p)
            _exit(4); /* consumer gone or stalled */
        if (sec_rand(&seed) % 50 == 0) {
            memset(p, 0xEE, size); /* scribble, then give the slot back */
            tachyon_rollback_tx(bus);
            atomic_fetch_add(&sh->rollbacks, 1);
            continue;
        }
        message_fill(seq, p, size);
        tachyon_commit_tx(bus, size, (uint32_t)seq);
        seq++;
        atomic_store(&sh->sent, seq);
        random_pause(&seed, 64);
    }
    tachyon_bus_destroy(bus);
    _exit(0);
}

struct tally {
    uint64_t received, bytes, bad, timeouts, batches;
};

/* Take a batch and commit only part of it: the rest must come first next time. */
static int consume_batch(tachyon_bus_t *bus, struct tally *t, uint64_t *seed)
{
    tachyon_msg_view_t v[16];
    size_t n = tachyon_drain_batch_timeout(bus, v, 16, 200, STALL_MS);
    if (n == 0)
        return 0;
    size_t keep = 1 + sec_rand(seed) % n;
    for (size_t i = 0; i < keep; i++) {
        if (!message_ok(t->received, v[i].ptr, v[i].actual_size, v[i].type_id))
            t->bad++;
        t->received++;
        t->bytes += v[i].actual_size;
    }
    tachyon_commit_rx_batch(bus, v, keep);
    t->batches++;
    return 1;
}

static int consume_one(tachyon_bus_t *bus, struct tally *t)
{
    uint32_t type;
    size_t size;
    const uint8_t *p = tachyon_acquire_rx_timeout(bus, &type, &size, 200, STALL_MS);
    if (!p)
        return 0;
    if (!message_ok(t->received, p, size, type))
        t->bad++;
    t->received++;
    t->bytes += size;
    tachyon_commit_rx(bus);
    return 1;
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 60;
    if (seconds < 1)
        seconds = 1;
    sec_watchdog((unsigned)seconds + 60);
    sec_case_begin("soak: random sizes, pauses, batches, rollbacks");
    struct shared *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char path[108];
    sec_socket_path(path, sizeof(path), "soak");
    pid_t pid = fork();
    if (pid == 0)
        producer(path, sh, seconds);

    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, RING);
    opts.timeout_ms = 5000;
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = tachyon_bus_listen_ex(path, &opts, &bus);
    CHECK_ERR(err, TACHYON_SUCCESS, "listen");
    struct tally t = {0};
    int64_t t0 = sec_now_ms();
    if (bus) {
        uint64_t seed = 0xABCDEF;
        for (;;) {
            int got = sec_rand(&seed) % 4 == 0 ? consume_batch(bus, &t, &seed) : consume_one(bus, &t);
            if (!got) {
                tachyon_error_t why = tachyon_bus_last_error(bus);
                if (why == TACHYON_ERR_TIMEOUT)
                    t.timeouts++; /* a stall: the producer never waits this long */
                if (why != TACHYON_ERR_TIMEOUT || t.timeouts > 3)
                    break;
                continue;
            }
            random_pause(&seed, 128);
        }
        CHECK_ERR(tachyon_bus_last_error(bus), TACHYON_ERR_PEER_CLOSED, "how the stream ended (the producer closed)");
        tachyon_bus_destroy(bus);
    }
    int status = sec_wait_child(pid, 30000);
    double secs = (double)(sec_now_ms() - t0) / 1000.0;
    uint64_t sent = atomic_load(&sh->sent);
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "producer status 0x%x", status);
    CHECK(t.received == sent, "received %llu, sent %llu", (unsigned long long)t.received,
          (unsigned long long)sent);
    CHECK(t.bad == 0, "%llu messages corrupted or out of order", (unsigned long long)t.bad);
    CHECK(t.timeouts == 0, "%llu receives stalled for %d ms (lost wake-up?)",
          (unsigned long long)t.timeouts, STALL_MS);
    printf("  %.1f s: %llu messages (%.0f/s), %.1f MiB, %llu batch receives, %llu rollbacks; "
           "lost %lld, corrupted %llu\n",
           secs, (unsigned long long)t.received, t.received / secs, t.bytes / 1048576.0,
           (unsigned long long)t.batches, (unsigned long long)atomic_load(&sh->rollbacks),
           (long long)(sent - t.received), (unsigned long long)t.bad);
    sec_case_end();
    return sec_finish();
}
