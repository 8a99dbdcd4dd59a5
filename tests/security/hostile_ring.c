/*
 * hostile_ring.c - the peer owns half of the shared segment and may write
 * anything there. Crafted heads, tails and message headers must make the
 * library return NULL/0 and enter the fatal state (telling the peer), never
 * read or write outside the segment and never loop.
 *
 * Part 1 uses a real bus pair in this process: the connector is the victim,
 * the listener's own mapping of the segment is the hostile peer's pen.
 * Part 2 is a random sweep through fuzz/ring_harness.c, whose hand-built bus
 * over a malloc'd image gives AddressSanitizer the exact segment bounds.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"
#include "ring_harness.h"

#define CAP 1024u
#define PROMPT_MS 500 /* a call with a 100 ms timeout must be back well before this */

enum rx_call { RX_SINGLE, RX_BATCH, RX_DRAIN, RX_TIMEOUT, RX_CALLS };
static const char *const rx_call_names[] = {"acquire_rx", "acquire_rx_batch", "drain_batch_timeout",
                                           "acquire_rx_timeout"};

struct pair {
    tachyon_bus_t *peer;   /* the listener: its mapping is where we scribble */
    tachyon_bus_t *victim; /* the connector: the library under attack */
};

static int pair_open(struct pair *p)
{
    return sec_bus_pair(CAP, &p->peer, &p->victim);
}

static void pair_close(struct pair *p)
{
    tachyon_bus_destroy(p->victim);
    tachyon_bus_destroy(p->peer);
}

static void write_header(tachyon_bus_t *peer, uint64_t pos, uint32_t size, uint32_t reserved)
{
    tachyon_msg_header_t *h = (tachyon_msg_header_t *)(peer->ring + (pos & (CAP - 1)));
    atomic_store(&h->size, size);
    atomic_store(&h->reserved_size, reserved);
    atomic_store(&h->type_id, 9);
}

/* Put both the shared tail and the victim's private consumer state at `pos`. */
static void place_tail(struct pair *p, uint64_t pos)
{
    atomic_store(&p->peer->hdr->tail, pos);
    atomic_store(&p->peer->hdr->head, pos);
    ring_attach(p->victim);
}

static void set_head(struct pair *p, uint64_t head)
{
    atomic_store(&p->peer->hdr->head, head);
}

/* One consumer call on the victim; returns 1 if it handed out a message. */
static int call_rx(tachyon_bus_t *bus, enum rx_call which)
{
    uint32_t t;
    size_t s;
    tachyon_msg_view_t v[8];
    switch (which) {
    case RX_SINGLE: return tachyon_acquire_rx(bus, &t, &s) != NULL;
    case RX_BATCH: return tachyon_acquire_rx_batch(bus, v, 8) != 0;
    case RX_DRAIN: return tachyon_drain_batch_timeout(bus, v, 8, 10, 100) != 0;
    case RX_TIMEOUT: return tachyon_acquire_rx_timeout(bus, &t, &s, 10, 100) != NULL;
    default: return 0;
    }
}

typedef void (*corruption)(struct pair *p);

static void c_head_too_far(struct pair *p) { set_head(p, CAP + 64); }
/* On a segment without stamps (its listener a plain v4 one) head never lags
 * the consumer's tail; with stamps it may (see test_head_lag_with_stamps). */
static void c_head_behind_tail(struct pair *p)
{
    place_tail(p, 512);
    p->victim->stamp_salt = 0;
    set_head(p, 448);
}
static void c_head_unaligned(struct pair *p) { write_header(p->peer, 0, 8, 128); set_head(p, 100); }
static void c_size_exceeds_slot(struct pair *p) { write_header(p->peer, 0, 65, 128); set_head(p, 128); }
static void c_size_huge(struct pair *p) { write_header(p->peer, 0, 0xFFFFFFFEu, 128); set_head(p, 128); }
static void c_reserved_zero(struct pair *p) { write_header(p->peer, 0, 0, 0); set_head(p, 128); }
static void c_reserved_small(struct pair *p) { write_header(p->peer, 0, 0, 32); set_head(p, 128); }
static void c_reserved_unaligned(struct pair *p) { write_header(p->peer, 0, 8, 100); set_head(p, 128); }
static void c_reserved_over_capacity(struct pair *p) { write_header(p->peer, 0, 8, 2 * CAP); set_head(p, CAP); }
static void c_reserved_over_head(struct pair *p) { write_header(p->peer, 0, 8, 256); set_head(p, 128); }
static void c_slot_crosses_end(struct pair *p)
{
    place_tail(p, CAP - 128);
    write_header(p->peer, CAP - 128, 8, 256);
    set_head(p, CAP - 128 + 256);
}
static void c_skip_at_zero(struct pair *p) { write_header(p->peer, 0, TACHYON_SKIP_MARKER, 64); set_head(p, 128); }
static void c_skip_past_head(struct pair *p)
{
    place_tail(p, CAP - 256);
    write_header(p->peer, CAP - 256, TACHYON_SKIP_MARKER, 256);
    set_head(p, CAP - 128); /* the marker claims 256 bytes, only 128 published */
}
static void c_two_skips(struct pair *p)
{
    place_tail(p, CAP - 64);
    write_header(p->peer, CAP - 64, TACHYON_SKIP_MARKER, 64);
    write_header(p->peer, 0, TACHYON_SKIP_MARKER, CAP);
    set_head(p, CAP + 128);
}
static void c_second_message_bad(struct pair *p)
{
    tachyon_send(p->peer, "good", 4, 1); /* an honest message first */
    write_header(p->peer, 128, 8, 100);
    set_head(p, 256);
}
static void c_state_fatal(struct pair *p) { atomic_store(&p->peer->hdr->state, TACHYON_STATE_FATAL_ERROR); }

struct rx_case {
    const char *name;
    corruption corrupt;
    int before_messages; /* honest messages the victim may take before the corruption bites */
};

static const struct rx_case rx_cases[] = {
    {"head - tail > capacity", c_head_too_far, 0},
    {"head moved behind tail", c_head_behind_tail, 0},
    {"head not 64-aligned", c_head_unaligned, 0},
    {"size > reserved_size - 64", c_size_exceeds_slot, 0},
    {"size 0xFFFFFFFE", c_size_huge, 0},
    {"reserved_size 0", c_reserved_zero, 0},
    {"reserved_size 32 (< 64)", c_reserved_small, 0},
    {"reserved_size 100 (not a multiple of 64)", c_reserved_unaligned, 0},
    {"reserved_size > capacity", c_reserved_over_capacity, 0},
    {"reserved_size beyond published head", c_reserved_over_head, 0},
    {"slot crossing the ring's end", c_slot_crosses_end, 0},
    {"skip marker at offset 0", c_skip_at_zero, 0},
    {"skip marker beyond published head", c_skip_past_head, 0},
    {"two skip markers in a row", c_two_skips, 0},
    {"honest message, then a bad header", c_second_message_bad, 1},
};

/* With stamps a lagging head is no news, never a misread: the consumer goes
 * on from the stamps, and a head far behind changes nothing either. */
static void test_head_lag_with_stamps(void)
{
    sec_case_begin("stamped segment: head behind the tail is no news, not corruption");
    struct pair p;
    if (pair_open(&p) != 0) {
        CHECK(0, "no bus pair");
        sec_case_end();
        return;
    }
    CHECK(p.victim->stamp_salt != 0, "the pair has stamps");
    place_tail(&p, 512);
    set_head(&p, 448);
    uint32_t t;
    size_t s;
    CHECK(tachyon_acquire_rx(p.victim, &t, &s) == NULL, "nothing to read");
    CHECK_ERR(tachyon_bus_last_error(p.victim), TACHYON_ERR_EMPTY, "empty, not fatal");
    set_head(&p, 512 - 64 * 1000);
    CHECK(tachyon_acquire_rx_timeout(p.victim, &t, &s, 0, 20) == NULL, "nothing to read");
    CHECK_ERR(tachyon_bus_last_error(p.victim), TACHYON_ERR_TIMEOUT, "a timeout, not fatal");
    CHECK(tachyon_get_state(p.victim) == TACHYON_STATE_READY, "state %d", (int)tachyon_get_state(p.victim));
    pair_close(&p);
    sec_case_end();
}

static void test_rx_case(const struct rx_case *c)
{
    for (int which = 0; which < RX_CALLS; which++) {
        char name[128];
        snprintf(name, sizeof(name), "rx %s: %s", rx_call_names[which], c->name);
        sec_case_begin(name);
        struct pair p;
        if (pair_open(&p) != 0) {
            CHECK(0, "no bus pair");
            sec_case_end();
            continue;
        }
        c->corrupt(&p);
        int64_t t0 = sec_now_ms();
        int got = 0, calls = 0;
        /* A batch stops at the bad header and returns 0 as a whole; single
         * receives may hand out the honest message first. */
        while (call_rx(p.victim, which) && ++calls < 4) {
            got++;
            tachyon_commit_rx(p.victim);
        }
        int64_t took = sec_now_ms() - t0;
        CHECK(got <= c->before_messages, "%d messages handed out", got);
        CHECK(tachyon_get_state(p.victim) == TACHYON_STATE_FATAL_ERROR, "state %d",
              (int)tachyon_get_state(p.victim));
        CHECK_ERR(tachyon_bus_last_error(p.victim), TACHYON_ERR_FATAL, "last error");
        CHECK(atomic_load(&p.peer->hdr->state) == TACHYON_STATE_FATAL_ERROR,
              "the peer was not told (shared state %u)", atomic_load(&p.peer->hdr->state));
        CHECK(took < PROMPT_MS, "took %lld ms", (long long)took);
        /* Fatal is sticky, also for the producer side of the same handle. */
        CHECK(!call_rx(p.victim, RX_SINGLE) && tachyon_acquire_tx(p.victim, 8) == NULL,
              "fatal bus still usable");
        pair_close(&p);
        sec_case_end();
    }
}

static void test_state_fatal_from_peer(void)
{
    sec_case_begin("peer sets state FATAL: blocking receive returns FATAL");
    struct pair p;
    if (pair_open(&p) == 0) {
        c_state_fatal(&p);
        uint32_t t;
        size_t s;
        int64_t t0 = sec_now_ms();
        CHECK(tachyon_acquire_rx_timeout(p.victim, &t, &s, 10, 2000) == NULL, "got a message");
        CHECK_ERR(tachyon_bus_last_error(p.victim), TACHYON_ERR_FATAL, "last error");
        CHECK(sec_now_ms() - t0 < PROMPT_MS, "not prompt");
        pair_close(&p);
    } else {
        CHECK(0, "no bus pair");
    }
    sec_case_end();
}

/* ---- The victim as producer: the peer scribbles the tail. ------------------ */

static size_t fill_until_full(tachyon_bus_t *bus)
{
    size_t n = 0;
    while (tachyon_send(bus, "0123456789abcdef", 16, 1) == TACHYON_SUCCESS)
        n++;
    return n;
}

typedef void (*tail_corruption)(tachyon_bus_t *victim, _Atomic uint64_t *tail);

static void t_ahead_of_head(tachyon_bus_t *v, _Atomic uint64_t *tail) { atomic_store(tail, v->tx.head + 64); }
static void t_unaligned(tachyon_bus_t *v, _Atomic uint64_t *tail) { atomic_store(tail, 65); }
static void t_too_far_behind(tachyon_bus_t *v, _Atomic uint64_t *tail) { atomic_store(tail, v->tx.head - 2 * CAP); }
static void t_huge(tachyon_bus_t *v, _Atomic uint64_t *tail) { atomic_store(tail, UINT64_MAX - 63); }

enum tx_call { TX_ACQUIRE, TX_BLOCKING, TX_BATCH, TX_CALLS };
static const char *const tx_call_names[] = {"acquire_tx", "acquire_tx_blocking", "send_batch"};

static void test_tx_case(const char *what, tail_corruption corrupt)
{
    for (int which = 0; which < TX_CALLS; which++) {
        char name[128];
        snprintf(name, sizeof(name), "tx %s: tail %s", tx_call_names[which], what);
        sec_case_begin(name);
        struct pair p;
        if (pair_open(&p) != 0) {
            CHECK(0, "no bus pair");
            sec_case_end();
            continue;
        }
        /* Victim = connector as producer; the listener's mapping has the tail. */
        CHECK(fill_until_full(p.victim) > 0, "nothing sent");
        corrupt(p.victim, &p.peer->hdr->tail);
        int64_t t0 = sec_now_ms();
        char rec[16] = {0};
        int handed_out = 0;
        if (which == TX_ACQUIRE)
            handed_out = tachyon_acquire_tx(p.victim, 16) != NULL;
        else if (which == TX_BLOCKING)
            handed_out = tachyon_acquire_tx_blocking(p.victim, 16, 10, 1000) != NULL;
        else
            handed_out = tachyon_send_batch(p.victim, rec, sizeof(rec), 4, 1) != 0;
        CHECK(!handed_out, "a slot was handed out");
        CHECK(tachyon_get_state(p.victim) == TACHYON_STATE_FATAL_ERROR, "state %d",
              (int)tachyon_get_state(p.victim));
        CHECK_ERR(tachyon_bus_last_error(p.victim), TACHYON_ERR_FATAL, "last error");
        CHECK(sec_now_ms() - t0 < PROMPT_MS, "not prompt");
        pair_close(&p);
        sec_case_end();
    }
}

static void test_tail_backwards_is_not_fatal(void)
{
    sec_case_begin("tail moved back (consistent): FULL, not fatal");
    struct pair p;
    if (pair_open(&p) == 0) {
        fill_until_full(p.victim);
        uint64_t tail = atomic_load(&p.peer->hdr->tail);
        atomic_store(&p.peer->hdr->tail, tail >= 64 ? tail - 64 : tail);
        CHECK(tachyon_acquire_tx(p.victim, 16) == NULL, "slot handed out on a full ring");
        CHECK_ERR(tachyon_bus_last_error(p.victim), TACHYON_ERR_FULL, "last error");
        CHECK(tachyon_get_state(p.victim) == TACHYON_STATE_READY, "state %d", (int)tachyon_get_state(p.victim));
        pair_close(&p);
    } else {
        CHECK(0, "no bus pair");
    }
    sec_case_end();
}

static void test_hostile_sleeper_word(void)
{
    sec_case_begin("consumer_sleeping = 0xDEADBEEF: producer carries on");
    struct pair p;
    if (pair_open(&p) == 0) {
        atomic_store(&p.peer->hdr->consumer_sleeping, 0xDEADBEEFu);
        CHECK_ERR(tachyon_send(p.victim, "x", 1, 1), TACHYON_SUCCESS, "send");
        tachyon_flush(p.victim);
        uint32_t t;
        size_t s;
        CHECK(tachyon_acquire_rx_timeout(p.peer, &t, &s, 10, 200) != NULL, "message lost");
        pair_close(&p);
    } else {
        CHECK(0, "no bus pair");
    }
    sec_case_end();
}

/* Honest traffic with both counters about to wrap around 2^64. */
static void test_counters_wrap(void)
{
    sec_case_begin("honest traffic across the 2^64 counter wrap");
    struct pair p;
    if (pair_open(&p) == 0) {
        uint64_t start = UINT64_MAX - 4 * CAP + 1;
        atomic_store(&p.peer->hdr->head, start);
        atomic_store(&p.peer->hdr->tail, start);
        ring_attach(p.peer);
        ring_attach(p.victim);
        uint64_t seed = 42;
        int bad = 0;
        for (uint32_t i = 0; i < 500 && !bad; i++) {
            uint8_t buf[300];
            size_t size = 4 + sec_rand(&seed) % 290;
            memset(buf, (int)i, size);
            memcpy(buf, &i, 4);
            if (tachyon_send(p.peer, buf, size, i) != TACHYON_SUCCESS) {
                bad = 1;
                break;
            }
            uint32_t t;
            size_t s;
            const uint8_t *m = tachyon_acquire_rx(p.victim, &t, &s);
            bad = !m || s != size || t != i || memcmp(m, buf, size) != 0;
            tachyon_commit_rx(p.victim);
        }
        CHECK(!bad, "a message was lost or changed across the wrap");
        CHECK(atomic_load(&p.peer->hdr->head) < start, "the counters did not wrap");
        CHECK(tachyon_get_state(p.victim) == TACHYON_STATE_READY, "state %d", (int)tachyon_get_state(p.victim));
        pair_close(&p);
    } else {
        CHECK(0, "no bus pair");
    }
    sec_case_end();
}

/* Random images and operation streams through the shared harness. */
static void test_random_sweep(unsigned iterations)
{
    sec_case_begin("random hostile segments through the ring harness");
    uint64_t seed = 0xC0FFEE ^ (uint64_t)getpid();
    uint8_t buf[RING_HARNESS_PREFIX + 1024 + 256];
    size_t total_ops = 0;
    for (unsigned i = 0; i < iterations; i++) {
        size_t len = sec_rand(&seed) % sizeof(buf);
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)sec_rand(&seed);
        /* Most random rings die at the first header; make a third of them
         * start with plausible headers so the sweep gets further. */
        if (i % 3 == 0 && len > RING_HARNESS_PREFIX + 64) {
            uint32_t hdr[3] = {(uint32_t)(sec_rand(&seed) % 200), 1, 256};
            memcpy(buf + RING_HARNESS_PREFIX, hdr, sizeof(hdr));
        }
        total_ops += ring_harness_run(buf, len);
    }
    printf("  %u images, %zu operations, no property violated\n", iterations, total_ops);
    sec_case_end();
}

int main(int argc, char **argv)
{
    sec_watchdog(120);
    unsigned sweep = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 100000;
    for (size_t i = 0; i < sizeof(rx_cases) / sizeof(rx_cases[0]); i++)
        test_rx_case(&rx_cases[i]);
    test_head_lag_with_stamps();
    test_state_fatal_from_peer();
    test_tx_case("ahead of head", t_ahead_of_head);
    test_tx_case("not 64-aligned", t_unaligned);
    test_tx_case("more than a ring behind", t_too_far_behind);
    test_tx_case("near 2^64", t_huge);
    test_tail_backwards_is_not_fatal();
    test_hostile_sleeper_word();
    test_counters_wrap();
    test_random_sweep(sweep);
    return sec_finish();
}
