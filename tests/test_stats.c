/*
 * test_stats.c - tachyon_bus_stats on a known stream: every count exact on
 * both sides, the segment's per-side blocks (what tachyon-top reads) agreeing
 * with them, the ring-full count, sleeps and wake-ups, fill, lag and idle time.
 */
#include "helpers.h"
#include "internal.h"

static tachyon_stats_t stats_of(tachyon_bus_t *bus)
{
    tachyon_stats_t st;
    REQUIRE(tachyon_bus_stats(bus, &st) == TACHYON_SUCCESS);
    return st;
}

static void test_known_stream(void)
{
    tachyon_bus_t *lis, *con;
    t_make_pair(1 << 20, &lis, &con);
    static uint8_t buf[100 * 32];
    uint64_t bytes = 0;
    for (int i = 0; i < 300; i++) {
        size_t size = (size_t)(i % 7) * 50;
        CHECK_ERR(tachyon_send(con, buf, size, 1), TACHYON_SUCCESS);
        bytes += size;
    }
    CHECK_EQ(tachyon_send_batch(con, buf, 32, 100, 2), 100);
    bytes += 100 * 32;

    tachyon_stats_t p = stats_of(con);
    CHECK_EQ(p.messages_sent, 400);
    CHECK_EQ(p.bytes_sent, bytes);
    CHECK_EQ(p.messages_received, 0);
    CHECK_EQ(p.capacity, 1 << 20);
    CHECK(p.fill_bytes > 0 && p.fill_bytes <= 1 << 20);
    CHECK(p.fill_max_bytes >= p.fill_bytes);
    CHECK_EQ(p.peer_pid, getpid());
    CHECK_EQ(p.peer_alive, 1);
    CHECK_EQ(p.state, TACHYON_STATE_READY);

    /* Receive: 150 one by one, the rest in batches, one batch committed in two parts. */
    uint64_t got_bytes = 0;
    for (int i = 0; i < 150; i++) {
        size_t size;
        REQUIRE(tachyon_acquire_rx(lis, NULL, &size) != NULL);
        got_bytes += size;
        CHECK_ERR(tachyon_commit_rx(lis), TACHYON_SUCCESS);
    }
    tachyon_stats_t c = stats_of(lis);
    CHECK_EQ(c.messages_received, 150);
    CHECK_EQ(c.bytes_received, got_bytes);
    CHECK_EQ(c.lag_messages, 250); /* the producer stored its count when asked for stats */
    tachyon_msg_view_t v[64];
    size_t n;
    while ((n = tachyon_acquire_rx_batch(lis, v, 64)) > 0) {
        size_t first = n / 2;
        for (size_t i = 0; i < n; i++)
            got_bytes += v[i].actual_size;
        CHECK_ERR(tachyon_commit_rx_batch(lis, v, first), TACHYON_SUCCESS);
        CHECK_ERR(tachyon_commit_rx_batch(lis, v + first, n - first), TACHYON_SUCCESS);
    }
    c = stats_of(lis);
    CHECK_EQ(c.messages_received, 400);
    CHECK_EQ(c.bytes_received, bytes);
    CHECK_EQ(got_bytes, bytes);
    CHECK_EQ(c.lag_messages, 0);
    CHECK_EQ(c.messages_sent, 0);
    CHECK_EQ(c.fill_bytes, 0);

    /* The segment's blocks say the same, for a tool in another process. */
    tachyon_side_stats_t *pb = &lis->hdr->producer_stats, *cb = &lis->hdr->consumer_stats;
    tachyon_stats_t p2 = stats_of(con);
    (void)p2;
    CHECK_EQ(atomic_load(&pb->messages), 400);
    CHECK_EQ(atomic_load(&pb->bytes), bytes);
    CHECK_EQ(atomic_load(&pb->pid), getpid());
    CHECK_EQ(atomic_load(&pb->seq) % 2, 0);
    CHECK_EQ(atomic_load(&cb->messages), 400);
    CHECK_EQ(atomic_load(&cb->bytes), bytes);
    CHECK(atomic_load(&cb->updated_ns) > 0 && atomic_load(&cb->active_ns) > 0);

    /* Idle: nothing happens for a while. */
    struct timespec ts = {0, 60 * 1000000};
    nanosleep(&ts, NULL);
    c = stats_of(lis);
    CHECK(c.idle_ns >= 30 * 1000000ull);
    tachyon_bus_destroy(lis);
    tachyon_bus_destroy(con);
}

static void test_full_sleeps_and_wakeups(void)
{
    tachyon_bus_t *lis, *con;
    t_make_pair(1024, &lis, &con);
    int sent = 0;
    while (tachyon_send(con, "x", 1, 1) == TACHYON_SUCCESS)
        sent++;
    CHECK_EQ(sent, 8);
    CHECK(tachyon_send(con, "x", 1, 1) == TACHYON_ERR_FULL);
    tachyon_stats_t p = stats_of(con);
    CHECK_EQ(p.ring_full, 2);
    CHECK_EQ(p.fill_bytes, 1024);
    CHECK_EQ(p.fill_max_bytes, 1024);
    for (int i = 0; i < 8; i++) {
        REQUIRE(tachyon_acquire_rx(lis, NULL, NULL) != NULL);
        tachyon_commit_rx(lis);
    }
    /* A consumer that sleeps, a producer that wakes it. */
    uint32_t t;
    size_t s;
    CHECK(tachyon_acquire_rx_timeout(lis, &t, &s, 0, 30) == NULL);
    tachyon_stats_t c = stats_of(lis);
    CHECK(c.sleeps >= 1);
    tachyon_bus_destroy(lis);
    tachyon_bus_destroy(con);
}

int main(void)
{
    test_known_stream();
    test_full_sleeps_and_wakeups();
    CHECK_ERR(tachyon_bus_stats(NULL, NULL), TACHYON_ERR_NULL_PTR);
    return t_result("test_stats");
}
