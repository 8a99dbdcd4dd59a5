/*
 * test_coalesce.c - receive coalescing (tachyon_bus_set_rx_coalesce_ns).
 *
 * The setter's range; how long the interval after a look is (computed with
 * a given clock, so exactly); after a look that found messages, a blocking
 * receive does not look again (nor announce sleep) before the interval ends;
 * non-blocking calls never wait for it; a steady stream is received in
 * batches and a fast producer on a small ring gets everything through, in
 * order; a departed producer is reported without waiting. Timing checks are
 * lower bounds, or upper bounds tens of times above the expected time, so
 * that a loaded machine cannot fail them.
 */
#include "helpers.h"
#include "internal.h"

#define DELAY_NS 1000000u /* the largest interval: long against scheduling noise */

static void open_pair(size_t capacity, uint32_t delay_ns, tachyon_bus_t **cons, tachyon_bus_t **prod)
{
    t_make_pair(capacity, cons, prod);
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(*cons, delay_ns), TACHYON_SUCCESS);
}

static void close_pair(tachyon_bus_t *cons, tachyon_bus_t *prod)
{
    tachyon_bus_destroy(cons);
    tachyon_bus_destroy(prod);
}

static struct tachyon_rx_state *rx_of(tachyon_bus_t *bus)
{
    return &((struct tachyon_bus *)bus)->rx;
}

/* Two messages received one after the other: the second look has a rate to
 * go by, so the consumer may not look again before rx.next_look_ns, which is
 * returned (the first look of a burst sets no interval). Retried when a
 * stall between the two looks made them a burst apart. */
static int64_t arm_interval(tachyon_bus_t *cons, tachyon_bus_t *prod)
{
    uint32_t t;
    size_t s;
    for (int attempt = 0; attempt < 100; attempt++) {
        for (int i = 0; i < 2; i++) {
            CHECK(tachyon_send(prod, "a", 1, 1) == TACHYON_SUCCESS);
            CHECK(tachyon_acquire_rx_timeout(cons, &t, &s, 10, 5000) != NULL);
            CHECK(tachyon_commit_rx(cons) == TACHYON_SUCCESS);
        }
        if (rx_of(cons)->next_look_ns != 0)
            return rx_of(cons)->next_look_ns;
    }
    CHECK(!"no interval after 100 pairs of looks");
    return 0;
}

/* The interval rules of wait_coalesce_note_look, with the clock given. */
static void test_interval_rules(void)
{
    tachyon_bus_t *cons, *prod;
    open_pair(4096, DELAY_NS, &cons, &prod); /* a quarter ring: 1024 bytes */
    struct tachyon_bus *b = (struct tachyon_bus *)cons;
    struct tachyon_rx_state *rx = &b->rx;
    const int64_t now = 5000000000; /* any time; only differences count */

    rx->tail = 0;
    rx->last_look_ns = 0;
    wait_coalesce_note_look(b, 0, 128, now); /* first look ever: no rate */
    CHECK_EQ(rx->next_look_ns, 0);
    CHECK_EQ(rx->last_look_ns, now);

    /* 512 bytes in 10 µs: a quarter ring in 20 µs, under the 1 ms delay. */
    rx->last_look_ns = now - 10000;
    wait_coalesce_note_look(b, 0, 512, now);
    CHECK_EQ(rx->next_look_ns, now + 20000);

    /* 8 bytes in 10 µs: a quarter ring in 1.28 ms: the delay, 1 ms. */
    rx->last_look_ns = now - 10000;
    wait_coalesce_note_look(b, 504, 512, now);
    CHECK_EQ(rx->next_look_ns, now + (int64_t)DELAY_NS);

    /* Two looks at the same clock reading count as 1 ns apart. */
    rx->last_look_ns = now;
    wait_coalesce_note_look(b, 0, 512, now);
    CHECK_EQ(rx->next_look_ns, now + 2);

    /* The previous look more than two delays ago: a new burst, no interval. */
    rx->last_look_ns = now - 2 * (int64_t)DELAY_NS - 1;
    wait_coalesce_note_look(b, 0, 64, now);
    CHECK_EQ(rx->next_look_ns, 0);

    /* A quarter of the ring unread: the consumer is behind, no interval. */
    rx->last_look_ns = now - 10000;
    wait_coalesce_note_look(b, 0, 1024, now);
    CHECK_EQ(rx->next_look_ns, 0);

    /* Nothing new: no interval, and the last look that found data stays. */
    rx->last_look_ns = now - 10000;
    wait_coalesce_note_look(b, 64, 64, now);
    CHECK_EQ(rx->next_look_ns, 0);
    CHECK_EQ(rx->last_look_ns, now - 10000);

    /* Back to a consistent state before the pair is closed. */
    rx->tail = rx->cached_head = 0;
    rx->next_look_ns = rx->last_look_ns = 0;
    close_pair(cons, prod);
}

static void test_setter_range(void)
{
    tachyon_bus_t *cons, *prod;
    open_pair(4096, 0, &cons, &prod);
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(NULL, 1000), TACHYON_ERR_NULL_PTR);
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(cons, TACHYON_MAX_RX_COALESCE_NS + 1), TACHYON_ERR_INVALID_SZ);
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(cons, TACHYON_MAX_RX_COALESCE_NS), TACHYON_SUCCESS);
    CHECK_EQ(tachyon_bus_set_rx_coalesce_ns(cons, 0), TACHYON_SUCCESS);
    close_pair(cons, prod);
}

struct waiter {
    tachyon_bus_t *bus;
    const void *got;
};

static void *wait_one(void *p)
{
    struct waiter *w = p;
    uint32_t t;
    size_t s;
    /* spin_threshold 1: once it has looked and found nothing it announces
     * sleep at once. */
    w->got = tachyon_acquire_rx_timeout(w->bus, &t, &s, 1, 10000);
    return NULL;
}

/* After a look that found a message, the consumer's next sign of life (its
 * sleep announcement in the shared word, after one more empty look) comes no
 * earlier than the interval. */
static void test_no_look_before_the_interval(void)
{
    tachyon_bus_t *cons, *prod;
    open_pair(1 << 20, DELAY_NS, &cons, &prod); /* large: the delay is not shortened */
    _Atomic uint32_t *word = &((struct tachyon_bus *)cons)->hdr->consumer_sleeping;
    for (int round = 0; round < 3; round++) {
        int64_t next_look = arm_interval(cons, prod);
        struct waiter w = {cons, NULL};
        pthread_t th;
        REQUIRE(pthread_create(&th, NULL, wait_one, &w) == 0);
        uint64_t limit = t_now_ns() + 5000000000ull;
        while (atomic_load(word) != TACHYON_CONSUMER_SLEEPING && t_now_ns() < limit)
            sched_yield();
        uint64_t announced = t_now_ns();
        CHECK(atomic_load(word) == TACHYON_CONSUMER_SLEEPING);
        CHECK((int64_t)announced >= next_look);
        CHECK(tachyon_send(prod, "x", 1, 7) == TACHYON_SUCCESS); /* wakes it */
        pthread_join(th, NULL);
        CHECK(w.got != NULL);
        CHECK(tachyon_commit_rx(cons) == TACHYON_SUCCESS);
    }
    close_pair(cons, prod);
}

/* One non-blocking look of each kind in turn, stopping at the first that
 * hands out a message (and releasing it). 1 if one did. */
static int non_blocking_receive(tachyon_bus_t *cons)
{
    uint32_t t;
    size_t s;
    tachyon_msg_view_t v[4];
    size_t n;
    if (tachyon_acquire_rx(cons, &t, &s) || tachyon_acquire_rx_timeout(cons, &t, &s, 10, 0))
        return tachyon_commit_rx(cons) == TACHYON_SUCCESS;
    if ((n = tachyon_acquire_rx_batch(cons, v, 4)) != 0 || (n = tachyon_drain_batch_timeout(cons, v, 4, 10, 0)) != 0)
        return tachyon_commit_rx_batch(cons, v, n) == TACHYON_SUCCESS;
    return 0;
}

/* Inside the interval, the calls that must not wait return at once, without
 * the message; once the interval is over they find it. */
static void test_non_blocking_calls_never_wait(void)
{
    tachyon_bus_t *cons, *prod;
    open_pair(1 << 20, DELAY_NS, &cons, &prod);
    uint64_t spent = 0;
    for (int i = 0; i < 30; i++) {
        arm_interval(cons, prod);
        CHECK(tachyon_send(prod, "b", 1, 2) == TACHYON_SUCCESS);
        uint64_t t0 = t_now_ns();
        /* Found only if the machine stalled us past the interval. */
        int found = non_blocking_receive(cons);
        spent += t_now_ns() - t0;
        if (!found) {
            uint32_t t;
            size_t s;
            CHECK(tachyon_acquire_rx_timeout(cons, &t, &s, 10, 1000) != NULL &&
                  tachyon_commit_rx(cons) == TACHYON_SUCCESS);
        }
    }
    /* Up to 120 calls; had each waited out the interval that would be 120 ms. */
    CHECK(spent < 30 * DELAY_NS);
    close_pair(cons, prod);
}

struct feeder {
    tachyon_bus_t *bus;
    uint64_t count;
    uint32_t size;
    long gap_ns; /* 0: as fast as the ring allows */
    int ok;
};

static void *feed(void *p)
{
    struct feeder *f = p;
    uint8_t payload[256] = {0};
    f->ok = 1;
    for (uint64_t i = 0; i < f->count && f->ok; i++) {
        memcpy(payload, &i, sizeof(i));
        void *slot = tachyon_acquire_tx_blocking(f->bus, f->size, 1000, 10000);
        f->ok = slot != NULL;
        if (!slot)
            break;
        memcpy(slot, payload, f->size);
        f->ok = tachyon_commit_tx(f->bus, f->size, 1) == TACHYON_SUCCESS;
        if (f->gap_ns) {
            struct timespec ts = {0, f->gap_ns};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* Drain `count` messages of a feeder with batches; check order; return
 * messages per non-empty batch. *elapsed_ns gets the time taken. */
static double drain_feed(size_t capacity, uint32_t delay_ns, uint64_t count, uint32_t size, long gap_ns,
                         uint64_t *elapsed_ns)
{
    tachyon_bus_t *cons, *prod;
    open_pair(capacity, delay_ns, &cons, &prod);
    struct feeder f = {prod, count, size, gap_ns, 0};
    pthread_t th;
    uint64_t t0 = t_now_ns();
    REQUIRE(pthread_create(&th, NULL, feed, &f) == 0);
    uint64_t received = 0, batches = 0;
    tachyon_msg_view_t views[64];
    while (received < count) {
        size_t n = tachyon_drain_batch_timeout(cons, views, 64, 1000, 10000);
        if (n == 0)
            break;
        batches++;
        for (size_t i = 0; i < n; i++) {
            uint64_t seq;
            memcpy(&seq, views[i].ptr, sizeof(seq));
            CHECK_EQ(seq, received);
            received++;
        }
        CHECK(tachyon_commit_rx_batch(cons, views, n) == TACHYON_SUCCESS);
    }
    pthread_join(th, NULL);
    *elapsed_ns = t_now_ns() - t0;
    CHECK(f.ok);
    CHECK_EQ(received, count);
    close_pair(cons, prod);
    return batches ? (double)received / (double)batches : 0;
}

static void test_steady_stream_arrives_in_batches(void)
{
    /* ~1 message per 50-110 µs against a 1 ms interval: about 10 per look;
     * an eager consumer finds one. */
    uint64_t ns;
    double eager = drain_feed(1 << 16, 0, 2000, 8, 50000, &ns);
    double coalesced = drain_feed(1 << 16, DELAY_NS, 2000, 8, 50000, &ns);
    printf("messages per look: eager %.2f, coalescing 1 ms %.2f\n", eager, coalesced);
    CHECK(coalesced >= 2.0);
}

static void test_small_ring_fast_producer_gets_through(void)
{
    /* 4 KiB ring of 128-byte slots: 32 messages, a producer as fast as it
     * can go. Everything arrives in order (drain_feed checks); the times are
     * printed (test_interval_rules checks the interval that keeps the
     * producer from being held up: without it, 20,000 / 32 x 1 ms = 625 ms). */
    uint64_t eager_ns, coalesced_ns;
    drain_feed(4096, 0, 20000, 64, 0, &eager_ns);
    drain_feed(4096, DELAY_NS, 20000, 64, 0, &coalesced_ns);
    printf("20,000 x 64 B through a 4 KiB ring: eager %.1f ms, coalescing 1 ms %.1f ms\n",
           eager_ns / 1e6, coalesced_ns / 1e6);
}

static void test_departed_producer_reported_without_waiting(void)
{
    tachyon_bus_t *cons, *prod;
    open_pair(4096, DELAY_NS, &cons, &prod);
    arm_interval(cons, prod);
    tachyon_bus_destroy(prod);
    uint32_t t;
    size_t s;
    uint64_t t0 = t_now_ns();
    for (int i = 0; i < 100; i++) {
        CHECK(tachyon_acquire_rx_timeout(cons, &t, &s, 10, 1000) == NULL);
        CHECK_EQ(tachyon_bus_last_error(cons), TACHYON_ERR_PEER_DEAD);
    }
    /* At most one interval before the departure is known, then none. */
    CHECK(t_now_ns() - t0 < 50 * (uint64_t)DELAY_NS);
    tachyon_bus_destroy(cons);
}

int main(void)
{
    test_setter_range();
    test_interval_rules();
    test_no_look_before_the_interval();
    test_non_blocking_calls_never_wait();
    test_steady_stream_arrives_in_batches();
    test_small_ring_fast_producer_gets_through();
    test_departed_producer_reported_without_waiting();
    return t_result("test_coalesce");
}
