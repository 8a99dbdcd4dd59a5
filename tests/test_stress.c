/*
 * test_stress.c - two real processes over a real socket path push millions of
 * messages of random size (0..4 KiB, mostly small) and random type id through
 * a 64 KiB ring that wraps tens of thousands of times. The consumer checks a
 * sequence number and the content of every payload: nothing lost, duplicated
 * or corrupted.
 *
 *   pure-spin mode: consumer never sleeps.
 *   blocking mode:  the producer pauses now and then so the consumer falls
 *                   asleep on the futex; every message must still arrive.
 *                   (The largest send-to-receive gap is printed; lost
 *                   wake-ups are hunted by test_wakeup.c, where one cannot
 *                   hide behind the next message.)
 *   batch mode:     blocking mode, the consumer receiving in batches of up
 *                   to 64 (drain_batch + commit_rx_batch): the same checks
 *                   hold.
 *
 * TACHYON_STRESS_MSGS sets the count (default 10,000,000 per mode).
 * TACHYON_STRESS_THREADS=1 runs both sides as threads of one process (for TSan).
 */
#include <signal.h>
#include <sys/wait.h>

#include "helpers.h"

#define RING_CAPACITY (64 * 1024)
#define MAX_PAYLOAD 4096
#define PAUSE_EVERY 40000      /* blocking mode: a pause every this many messages */

enum mode { MODE_SPIN, MODE_BLOCKING, MODE_BATCH };
static const char *const mode_names[] = {"pure-spin", "blocking", "batch"};
#define STRESS_BATCH 64

struct plan {
    uint32_t size;
    uint32_t type_id;
};

/* Size and type id of message `seq`, derived so both sides agree. */
static struct plan plan_for(uint64_t seq)
{
    uint64_t r = t_mix(seq);
    uint32_t size = (r & 0xF) == 0 ? (uint32_t)((r >> 8) % (MAX_PAYLOAD + 1)) /* 1 in 16 large */
                                   : (uint32_t)((r >> 8) % 200);
    return (struct plan){size, (uint32_t)(r >> 32)};
}

/* Payload: [seq u64][send time u64][bytes from the seq's stream...] */
static void fill_payload(uint8_t *p, uint32_t size, uint64_t seq, uint64_t now)
{
    uint64_t head[2] = {seq, now};
    uint32_t n = size < 16 ? size : 16;
    memcpy(p, head, n);
    uint64_t x = seq;
    for (uint32_t i = 16; i < size; i += 8) {
        uint64_t w = t_mix(x++);
        memcpy(p + i, &w, size - i < 8 ? size - i : 8);
    }
}

static int check_payload(const uint8_t *p, uint32_t size, uint64_t seq, uint64_t *sent_at)
{
    uint64_t head[2] = {0, 0};
    uint32_t n = size < 16 ? size : 16;
    memcpy(head, p, n);
    uint64_t expect_head[2] = {seq, 0};
    if (memcmp(head, expect_head, n < 8 ? n : 8) != 0)
        return 0;
    *sent_at = size >= 16 ? head[1] : 0;
    uint64_t x = seq;
    for (uint32_t i = 16; i < size; i += 8) {
        uint64_t w = t_mix(x++);
        if (memcmp(p + i, &w, size - i < 8 ? size - i : 8) != 0)
            return 0;
    }
    return 1;
}

struct run {
    const char *path;
    uint64_t count;
    enum mode mode;
};

static int produce(const struct run *r)
{
    tachyon_bus_t *bus;
    tachyon_error_t err = tachyon_bus_connect_timeout(r->path, 10000, &bus);
    if (err != TACHYON_SUCCESS) {
        fprintf(stderr, "producer: connect: %s\n", tachyon_strerror(err));
        return 1;
    }
    for (uint64_t seq = 0; seq < r->count; seq++) {
        struct plan pl = plan_for(seq);
        uint8_t *p = tachyon_acquire_tx_blocking(bus, pl.size, 1000, 30000);
        if (!p) {
            fprintf(stderr, "producer: acquire at %llu: %s\n", (unsigned long long)seq,
                    tachyon_strerror(tachyon_bus_last_error(bus)));
            return 1;
        }
        fill_payload(p, pl.size, seq, t_now_ns());
        if (tachyon_commit_tx(bus, pl.size, pl.type_id) != TACHYON_SUCCESS)
            return 1;
        if (r->mode != MODE_SPIN && seq % PAUSE_EVERY == PAUSE_EVERY - 1) {
            struct timespec ts = {0, (long)(500000 + t_mix(seq) % 2000000)}; /* 0.5-2.5 ms */
            nanosleep(&ts, NULL);
        }
    }
    tachyon_bus_destroy(bus);
    return 0;
}

struct consumed {
    uint64_t received;
    uint64_t max_gap_ns;
    uint64_t bytes;
    int ok;
};

/* Check message number c->received and count it; 0 if it is wrong. */
static int take(struct consumed *c, const uint8_t *p, size_t size, uint32_t type_id, uint64_t now)
{
    struct plan pl = plan_for(c->received);
    uint64_t sent_at = 0;
    if (size != pl.size || type_id != pl.type_id || !check_payload(p, pl.size, c->received, &sent_at)) {
        fprintf(stderr, "consumer: message %llu wrong (size %zu/%u type %u/%u)\n",
                (unsigned long long)c->received, size, pl.size, type_id, pl.type_id);
        c->ok = 0;
        return 0;
    }
    if (sent_at && now > sent_at && now - sent_at > c->max_gap_ns)
        c->max_gap_ns = now - sent_at;
    c->bytes += size;
    c->received++;
    return 1;
}

static void consume_one_by_one(tachyon_bus_t *bus, struct consumed *c)
{
    for (;;) {
        uint32_t type_id;
        size_t size;
        const uint8_t *p = tachyon_acquire_rx_blocking(bus, &type_id, &size, 1000);
        if (!p || !take(c, p, size, type_id, t_now_ns()))
            return;
        tachyon_commit_rx(bus);
    }
}

static void consume_in_batches(tachyon_bus_t *bus, struct consumed *c)
{
    static tachyon_msg_view_t views[STRESS_BATCH];
    for (;;) {
        size_t n = tachyon_drain_batch(bus, views, STRESS_BATCH, 1000);
        if (n == 0)
            return;
        uint64_t now = t_now_ns();
        for (size_t i = 0; i < n; i++)
            if (!take(c, views[i].ptr, views[i].actual_size, views[i].type_id, now))
                return;
        tachyon_commit_rx_batch(bus, views, n);
    }
}

static struct consumed consume(tachyon_bus_t *bus, const struct run *r)
{
    struct consumed c = {0, 0, 0, 1};
    if (r->mode == MODE_SPIN)
        tachyon_bus_set_polling_mode(bus, 1);
    if (r->mode == MODE_BATCH)
        consume_in_batches(bus, &c);
    else
        consume_one_by_one(bus, &c);
    if (c.ok && tachyon_get_state(bus) != TACHYON_STATE_DISCONNECTED) {
        fprintf(stderr, "consumer: stopped with state %d, error %s\n", tachyon_get_state(bus),
                tachyon_strerror(tachyon_bus_last_error(bus)));
        c.ok = 0;
    }
    return c;
}

static void *producer_thread(void *arg)
{
    return (void *)(intptr_t)produce(arg);
}

static int run_mode(uint64_t count, enum mode mode, int threads)
{
    char path[108];
    t_socket_path(path, sizeof(path), mode_names[mode]);
    struct run r = {path, count, mode};
    pid_t child = -1;
    pthread_t th;
    if (threads) {
        REQUIRE(pthread_create(&th, NULL, producer_thread, &r) == 0);
    } else {
        child = fork();
        REQUIRE(child >= 0);
        if (child == 0)
            _exit(produce(&r));
    }
    tachyon_bus_t *bus;
    tachyon_error_t err = tachyon_bus_listen(path, RING_CAPACITY, &bus);
    REQUIRE(err == TACHYON_SUCCESS);
    uint64_t t0 = t_now_ns();
    struct consumed c = consume(bus, &r);
    double secs = (double)(t_now_ns() - t0) / 1e9;
    tachyon_bus_destroy(bus);

    int producer_ok;
    if (threads) {
        void *ret;
        pthread_join(th, &ret);
        producer_ok = ret == NULL;
    } else {
        if (!c.ok)
            kill(child, SIGKILL);
        int status;
        waitpid(child, &status, 0);
        producer_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    printf("%s mode: %llu/%llu messages, %.1f MB, %.2f s (%.2f M msg/s), ring wrapped %llu times, "
           "largest send-to-receive gap %.3f ms\n",
           mode_names[mode], (unsigned long long)c.received,
           (unsigned long long)count, (double)c.bytes / 1e6, secs, (double)c.received / secs / 1e6,
           (unsigned long long)(c.bytes / RING_CAPACITY), (double)c.max_gap_ns / 1e6);
    CHECK(producer_ok);
    CHECK(c.ok);
    CHECK_EQ(c.received, count);
    return 0;
}

int main(void)
{
    uint64_t count = t_env_u64("TACHYON_STRESS_MSGS", 10000000);
    int threads = (int)t_env_u64("TACHYON_STRESS_THREADS", 0);
    run_mode(count, MODE_SPIN, threads);
    run_mode(count, MODE_BLOCKING, threads);
    run_mode(count, MODE_BATCH, threads);
    return t_result("test_stress");
}
