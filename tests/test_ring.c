/*
 * test_ring.c - ring behaviour on one thread: empty, full, exact fit, wrap
 * with and without a skip marker, rollback, batches, zero-length and largest
 * payloads, and the call-order errors.
 */
#include "helpers.h"
#include "internal.h"

static tachyon_bus_t *prod, *cons;

static void fresh_pair(size_t capacity)
{
    if (prod) {
        tachyon_bus_destroy(prod);
        tachyon_bus_destroy(cons);
    }
    t_make_pair(capacity, &cons, &prod);
}

/* Send `size` bytes of (seq + i) and commit; 1 on success. */
static int send_pattern(size_t size, uint32_t type_id, uint8_t seq)
{
    uint8_t *p = tachyon_acquire_tx(prod, size);
    if (!p)
        return 0;
    for (size_t i = 0; i < size; i++)
        p[i] = (uint8_t)(seq + i);
    return tachyon_commit_tx(prod, size, type_id) == TACHYON_SUCCESS;
}

static int recv_pattern(size_t size, uint32_t type_id, uint8_t seq)
{
    uint32_t t = 0;
    size_t s = 0;
    const uint8_t *p = tachyon_acquire_rx(cons, &t, &s);
    if (!p)
        return 0;
    int ok = t == type_id && s == size;
    for (size_t i = 0; ok && i < size; i++)
        ok = p[i] == (uint8_t)(seq + i);
    return tachyon_commit_rx(cons) == TACHYON_SUCCESS && ok;
}

static void test_empty(void)
{
    fresh_pair(1024);
    uint32_t t;
    size_t s;
    CHECK(tachyon_acquire_rx(cons, &t, &s) == NULL);
    CHECK_EQ(tachyon_bus_last_error(cons), TACHYON_ERR_EMPTY);
    CHECK(tachyon_acquire_rx_spin(cons, &t, &s, 100) == NULL);
    tachyon_msg_view_t v[4];
    CHECK_EQ(tachyon_acquire_rx_batch(cons, v, 4), 0);
    CHECK(tachyon_acquire_rx_timeout(cons, &t, &s, 10, 20) == NULL);
    CHECK_EQ(tachyon_bus_last_error(cons), TACHYON_ERR_TIMEOUT);
    CHECK_EQ(tachyon_get_state(cons), TACHYON_STATE_READY);
}

/* 1024-byte ring, 128-byte slots: exactly 8 fit, the 9th does not. */
static void test_full_and_exact_fit(void)
{
    fresh_pair(1024);
    for (int i = 0; i < 8; i++)
        CHECK(send_pattern(64, 1, (uint8_t)i));
    CHECK(tachyon_acquire_tx(prod, 64) == NULL);
    CHECK_EQ(tachyon_bus_last_error(prod), TACHYON_ERR_FULL);
    CHECK(tachyon_acquire_tx(prod, 0) == NULL); /* even 64 bytes do not fit */
    CHECK(recv_pattern(64, 1, 0));
    CHECK(send_pattern(64, 1, 8)); /* one slot freed, one slot fits */
    CHECK(tachyon_acquire_tx(prod, 0) == NULL);
    for (int i = 1; i <= 8; i++)
        CHECK(recv_pattern(64, 1, (uint8_t)i));
    CHECK(tachyon_acquire_rx(cons, NULL, NULL) == NULL);
}

/* Slots that divide the ring: many laps, never a skip marker. */
static void test_wrap_without_skip(void)
{
    fresh_pair(1024);
    for (int lap = 0; lap < 100; lap++) {
        for (int i = 0; i < 3; i++)
            CHECK(send_pattern(190, 5, (uint8_t)(lap + i)));  /* 256-byte slots */
        for (int i = 0; i < 3; i++)
            CHECK(recv_pattern(190, 5, (uint8_t)(lap + i)));
    }
    uint64_t head = prod->tx.head;
    CHECK_EQ(head, 100ull * 3 * 256);
}

/* 384-byte slots in a 1024-byte ring: the third slot would cross the end. */
static void test_wrap_with_skip(void)
{
    fresh_pair(1024);
    CHECK(send_pattern(300, 9, 1)); /* [0, 384) */
    CHECK(send_pattern(300, 9, 2)); /* [384, 768) */
    CHECK(recv_pattern(300, 9, 1));
    /* 256 bytes left before the end: a skip marker there, the slot at 0. */
    uint8_t *p = tachyon_acquire_tx(prod, 300);
    REQUIRE(p != NULL);
    CHECK_EQ(p - prod->ring, 64);
    const tachyon_msg_header_t *marker = (const void *)(cons->ring + 768);
    CHECK_EQ(atomic_load(&marker->size), TACHYON_SKIP_MARKER);
    memset(p, 3, 300);
    CHECK_ERR(tachyon_commit_tx(prod, 300, 9), TACHYON_SUCCESS);
    CHECK(recv_pattern(300, 9, 2));
    uint32_t t;
    size_t s;
    const uint8_t *r = tachyon_acquire_rx(cons, &t, &s);
    CHECK(r == cons->ring + (p - prod->ring));
    CHECK_EQ(s, 300);
    CHECK_ERR(tachyon_commit_rx(cons), TACHYON_SUCCESS);
    CHECK_EQ(prod->tx.head, 1024 + 384); /* the skipped bytes count */
    CHECK_EQ(cons->rx.tail, 1024 + 384);
}

static void test_rollback(void)
{
    fresh_pair(1024);
    uint8_t *a = tachyon_acquire_tx(prod, 100);
    REQUIRE(a != NULL);
    memset(a, 0xEE, 100);
    CHECK_ERR(tachyon_rollback_tx(prod), TACHYON_SUCCESS);
    CHECK(tachyon_acquire_rx(cons, NULL, NULL) == NULL); /* nothing published */
    uint8_t *b = tachyon_acquire_tx(prod, 10);
    CHECK(a == b); /* the slot is reused */
    CHECK_ERR(tachyon_rollback_tx(prod), TACHYON_SUCCESS);
    CHECK(send_pattern(10, 4, 42));
    CHECK(recv_pattern(10, 4, 42));
}

static void test_batch_receive(void)
{
    fresh_pair(4096);
    for (int i = 0; i < 10; i++)
        CHECK(send_pattern((size_t)i * 7, (uint32_t)i, (uint8_t)i));
    tachyon_msg_view_t v[16];
    size_t n = tachyon_acquire_rx_batch(cons, v, 4);
    CHECK_EQ(n, 4);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(v[i].type_id, i);
        CHECK_EQ(v[i].actual_size, i * 7);
    }
    /* Release 3 of 4; the 4th comes first in the next batch. */
    CHECK_ERR(tachyon_commit_rx_batch(cons, v, 3), TACHYON_SUCCESS);
    n = tachyon_drain_batch(cons, v, 16, 10);
    CHECK_EQ(n, 7);
    CHECK_EQ(v[0].type_id, 3);
    CHECK_EQ(v[6].type_id, 9);
    const uint8_t *p = v[6].ptr;
    CHECK(v[6].actual_size == 63 && p[0] == 9 && p[62] == (uint8_t)(9 + 62));
    CHECK_ERR(tachyon_commit_rx_batch(cons, v, n), TACHYON_SUCCESS);
    CHECK_EQ(tachyon_acquire_rx_batch(cons, v, 16), 0);
    /* Views naming an end we never handed out are refused. */
    CHECK(send_pattern(1, 1, 1));
    CHECK_EQ(tachyon_acquire_rx_batch(cons, v, 16), 1);
    tachyon_msg_view_t forged = v[0];
    forged.reserved_ += 4096;
    CHECK_ERR(tachyon_commit_rx_batch(cons, &forged, 1), TACHYON_ERR_STATE);
    CHECK_ERR(tachyon_commit_rx_batch(cons, v, 2), TACHYON_ERR_STATE);
    CHECK_ERR(tachyon_commit_rx_batch(cons, v, 1), TACHYON_SUCCESS);
}

/* A batch across a skip marker. */
static void test_batch_across_skip(void)
{
    fresh_pair(1024);
    CHECK(send_pattern(300, 1, 1));
    CHECK(send_pattern(300, 2, 2));
    CHECK(recv_pattern(300, 1, 1));
    CHECK(send_pattern(300, 3, 3)); /* skip marker at 768, slot at 0 */
    tachyon_msg_view_t v[4];
    size_t n = tachyon_acquire_rx_batch(cons, v, 4);
    CHECK_EQ(n, 2);
    CHECK_EQ(v[0].type_id, 2);
    CHECK_EQ(v[1].type_id, 3);
    CHECK_ERR(tachyon_commit_rx_batch(cons, v, n), TACHYON_SUCCESS);
    CHECK_EQ(cons->rx.tail, 1024 + 384);
}

static void test_zero_length(void)
{
    fresh_pair(1024);
    for (int i = 0; i < 16; i++) /* 64-byte slots: exactly 16 fit */
        CHECK(send_pattern(0, (uint32_t)(100 + i), 0));
    CHECK(tachyon_acquire_tx(prod, 0) == NULL);
    for (int i = 0; i < 16; i++)
        CHECK(recv_pattern(0, (uint32_t)(100 + i), 0));
    CHECK_ERR(tachyon_send(prod, NULL, 0, 5), TACHYON_SUCCESS);
    CHECK(recv_pattern(0, 5, 0));
}

/* capacity - 64 is the largest payload; it needs the whole ring from 0. */
static void test_largest_payload(void)
{
    fresh_pair(1024);
    CHECK_EQ(tachyon_bus_max_payload(prod), 960);
    CHECK(tachyon_acquire_tx(prod, 961) == NULL);
    CHECK_EQ(tachyon_bus_last_error(prod), TACHYON_ERR_INVALID_SZ);
    CHECK(tachyon_acquire_tx(prod, SIZE_MAX) == NULL);
    CHECK_EQ(tachyon_bus_last_error(prod), TACHYON_ERR_INVALID_SZ);
    CHECK(send_pattern(960, 1, 1));
    CHECK(tachyon_acquire_tx(prod, 0) == NULL); /* completely full */
    CHECK(recv_pattern(960, 1, 1));
    CHECK(send_pattern(10, 2, 2));
    CHECK(recv_pattern(10, 2, 2));
    /* At offset 64 the slot fits neither before the end nor, after a wrap,
     * before offset 64: only a consumer that reads a lone wrap marker could
     * take it. A plain ABI v4 consumer cannot, so it is refused here. */
    struct tachyon_bus *p = prod;
    p->peer_features = 0;
    ring_choose_publication(p);
    CHECK(tachyon_acquire_tx(prod, 960) == NULL);
    CHECK_EQ(tachyon_bus_last_error(prod), TACHYON_ERR_INVALID_SZ);
    CHECK(strstr(tachyon_error_message(TACHYON_ERR_INVALID_SZ), "lone wrap marker") != NULL);
    CHECK_EQ(p->tx.published, p->tx.committed); /* nothing half-done was published */
    /* With a consumer that reads lone markers, the marker is published alone. */
    p->peer_features = TACHYON_FEATURE_LONE_MARKER;
    ring_choose_publication(p);
    CHECK(tachyon_acquire_tx(prod, 960) == NULL);
    CHECK_EQ(tachyon_bus_last_error(prod), TACHYON_ERR_FULL);
    CHECK(tachyon_acquire_rx(cons, NULL, NULL) == NULL); /* consumes the marker */
    CHECK(send_pattern(960, 3, 3));
    CHECK(recv_pattern(960, 3, 3));
}

static void test_call_order_errors(void)
{
    fresh_pair(1024);
    CHECK_ERR(tachyon_commit_tx(prod, 0, 1), TACHYON_ERR_STATE);
    CHECK_ERR(tachyon_rollback_tx(prod), TACHYON_ERR_STATE);
    CHECK_ERR(tachyon_commit_rx(cons), TACHYON_ERR_STATE);
    REQUIRE(tachyon_acquire_tx(prod, 8) != NULL);
    CHECK(tachyon_acquire_tx(prod, 8) == NULL); /* one slot at a time */
    CHECK_EQ(tachyon_bus_last_error(prod), TACHYON_ERR_STATE);
    CHECK_ERR(tachyon_commit_tx(prod, 9, 1), TACHYON_ERR_INVALID_SZ); /* > the size acquired */
    CHECK_ERR(tachyon_commit_tx(prod, 8, 1), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_commit_tx(prod, 8, 1), TACHYON_ERR_STATE); /* double commit */
    REQUIRE(tachyon_acquire_rx(cons, NULL, NULL) != NULL);
    CHECK_ERR(tachyon_commit_rx(cons), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_commit_rx(cons), TACHYON_ERR_STATE);
    CHECK_ERR(tachyon_commit_tx(NULL, 0, 0), TACHYON_ERR_NULL_PTR);
    CHECK(tachyon_acquire_rx(NULL, NULL, NULL) == NULL);
}

static void test_send_batch(void)
{
    fresh_pair(4096);
    uint8_t recs[40 * 32];
    for (size_t i = 0; i < sizeof(recs); i++)
        recs[i] = (uint8_t)i;
    /* 32-byte records take 128-byte slots: 32 fit in 4 KiB. */
    CHECK_EQ(tachyon_send_batch(prod, recs, 32, 40, 6), 32);
    CHECK_EQ(tachyon_bus_last_error(prod), TACHYON_ERR_FULL);
    for (size_t i = 0; i < 32; i++) {
        uint32_t t;
        size_t s;
        const uint8_t *p = tachyon_acquire_rx(cons, &t, &s);
        REQUIRE(p != NULL);
        CHECK(t == 6 && s == 32 && memcmp(p, recs + i * 32, 32) == 0);
        tachyon_commit_rx(cons);
    }
    CHECK_EQ(tachyon_send_batch(prod, recs + 32 * 32, 32, 8, 6), 8);
}

/* flush has nothing to publish after a commit (commits publish): it must not
 * wake a sleeping consumer for nothing; a commit must wake it. */
static void test_flush_wakes_only_for_news(void)
{
    fresh_pair(1024);
    _Atomic uint32_t *word = &((struct tachyon_bus *)prod)->hdr->consumer_sleeping;
    atomic_store(word, TACHYON_CONSUMER_SLEEPING); /* as if the consumer slept */
    tachyon_flush(prod);
    CHECK_EQ(atomic_load(word), TACHYON_CONSUMER_SLEEPING);
    CHECK(send_pattern(8, 1, 0));
    CHECK_EQ(atomic_load(word), TACHYON_CONSUMER_AWAKE); /* claimed by the waker */
    atomic_store(word, TACHYON_CONSUMER_SLEEPING);
    tachyon_flush(prod);
    CHECK_EQ(atomic_load(word), TACHYON_CONSUMER_SLEEPING);
    atomic_store(word, TACHYON_CONSUMER_AWAKE);
    CHECK(recv_pattern(8, 1, 0));
}

int main(void)
{
    test_empty();
    test_full_and_exact_fit();
    test_wrap_without_skip();
    test_wrap_with_skip();
    test_rollback();
    test_batch_receive();
    test_batch_across_skip();
    test_zero_length();
    test_largest_payload();
    test_call_order_errors();
    test_send_batch();
    test_flush_wakes_only_for_news();
    tachyon_bus_destroy(prod);
    tachyon_bus_destroy(cons);
    return t_result("test_ring");
}
