/*
 * test_coalesce.c - receive coalescing (tachyon_bus_set_rx_coalesce_ns).
 *
 * The setter's range; a consumer that finds the ring empty waits the whole
 * delay before it does anything else (it cannot announce sleep earlier); and
 * a consumer fed a steady stream receives it in batches instead of one
 * message per look, losing nothing. Only lower bounds on time are asserted,
 * which a loaded machine can only make easier to meet.
 */
#include "helpers.h"
#include "internal.h"

#define DELAY_NS 1000000u /* the largest delay: long against scheduling noise */

static void test_setter_range(void)
{
    tachyon_bus_t *cons, *prod;
    t_make_pair(4096, &cons, &prod);
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(NULL, 1000), TACHYON_ERR_NULL_PTR);
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(cons, TACHYON_MAX_RX_COALESCE_NS + 1), TACHYON_ERR_INVALID_SZ);
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(cons, TACHYON_MAX_RX_COALESCE_NS), TACHYON_SUCCESS);
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(cons, 0), TACHYON_SUCCESS);
    /* A non-blocking receive never waits, coalescing or not. */
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(cons, DELAY_NS), TACHYON_SUCCESS);
    uint32_t t;
    size_t s;
    CHECK(tachyon_acquire_rx(cons, &t, &s) == NULL);
    CHECK_EQ(tachyon_bus_last_error(cons), TACHYON_ERR_EMPTY);
    CHECK(tachyon_acquire_rx_timeout(cons, &t, &s, 10, 0) == NULL);
    CHECK_EQ(tachyon_bus_last_error(cons), TACHYON_ERR_TIMEOUT);
    tachyon_bus_destroy(cons);
    tachyon_bus_destroy(prod);
}

struct waiter {
    tachyon_bus_t *bus;
    uint64_t started_ns;
    const void *got;
};

static void *wait_one(void *p)
{
    struct waiter *w = p;
    uint32_t t;
    size_t s;
    w->started_ns = t_now_ns();
    /* spin_threshold 1: without coalescing it announces sleep at once. */
    w->got = tachyon_acquire_rx_timeout(w->bus, &t, &s, 1, 10000);
    return NULL;
}

/* The consumer's first sign of life after finding the ring empty (its sleep
 * announcement in the shared word) comes no earlier than the delay. */
static void test_delay_comes_first(void)
{
    tachyon_bus_t *cons, *prod;
    t_make_pair(4096, &cons, &prod);
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(cons, DELAY_NS), TACHYON_SUCCESS);
    _Atomic uint32_t *word = &((struct tachyon_bus *)cons)->hdr->consumer_sleeping;
    for (int round = 0; round < 3; round++) {
        struct waiter w = {cons, 0, NULL};
        pthread_t th;
        REQUIRE(pthread_create(&th, NULL, wait_one, &w) == 0);
        uint64_t limit = t_now_ns() + 5000000000ull;
        while (atomic_load(word) != TACHYON_CONSUMER_SLEEPING && t_now_ns() < limit)
            sched_yield();
        uint64_t announced = t_now_ns();
        CHECK(atomic_load(word) == TACHYON_CONSUMER_SLEEPING);
        CHECK(tachyon_send(prod, "x", 1, 7) == TACHYON_SUCCESS); /* wakes it */
        pthread_join(th, NULL);
        CHECK(w.got != NULL);
        CHECK(w.started_ns != 0 && announced - w.started_ns >= DELAY_NS);
        CHECK(tachyon_commit_rx(cons) == TACHYON_SUCCESS);
    }
    tachyon_bus_destroy(cons);
    tachyon_bus_destroy(prod);
}

struct feeder {
    tachyon_bus_t *bus;
    uint64_t count;
    int ok;
};

/* About one message every 50 µs (nanosleep rounds it up), in order. */
static void *feed(void *p)
{
    struct feeder *f = p;
    f->ok = 1;
    for (uint64_t i = 0; i < f->count && f->ok; i++) {
        f->ok = tachyon_send(f->bus, &i, sizeof(i), 1) == TACHYON_SUCCESS;
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Returns messages per wake: how many a blocking receive finds at once. */
static double batch_size(uint32_t delay_ns, uint64_t count)
{
    tachyon_bus_t *cons, *prod;
    t_make_pair(1 << 16, &cons, &prod);
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(cons, delay_ns), TACHYON_SUCCESS);
    struct feeder f = {prod, count, 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, feed, &f) == 0);
    uint64_t received = 0, wakes = 0;
    tachyon_msg_view_t views[256];
    while (received < count) {
        size_t n = tachyon_drain_batch_timeout(cons, views, 256, 1000, 10000);
        if (n == 0)
            break;
        wakes++;
        for (size_t i = 0; i < n; i++) {
            uint64_t seq;
            memcpy(&seq, views[i].ptr, sizeof(seq));
            CHECK_EQ(seq, received);
            received++;
        }
        CHECK(tachyon_commit_rx_batch(cons, views, n) == TACHYON_SUCCESS);
    }
    pthread_join(th, NULL);
    CHECK(f.ok);
    CHECK_EQ(received, count);
    tachyon_bus_destroy(cons);
    tachyon_bus_destroy(prod);
    return wakes ? (double)received / (double)wakes : 0;
}

static void test_steady_stream_arrives_in_batches(void)
{
    /* ~1 message per 50-110 µs against a 1 ms delay: about 10 per look;
     * an eager consumer finds one. */
    double eager = batch_size(0, 2000);
    double coalesced = batch_size(DELAY_NS, 2000);
    printf("messages per look: eager %.2f, coalescing 1 ms %.2f\n", eager, coalesced);
    CHECK(coalesced >= 2.0);
}

int main(void)
{
    test_setter_range();
    test_delay_comes_first();
    test_steady_stream_arrives_in_batches();
    return t_result("test_coalesce");
}
