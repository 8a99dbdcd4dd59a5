/*
 * test_stats.c - tachyon_bus_stats on a known stream: every count exact on
 * both sides, the segment's per-side blocks (what tachyon-top reads) agreeing
 * with them, the ring-full count, sleeps and wake-ups, fill, lag and idle time.
 */
#include <fcntl.h>
#include <sys/mman.h>

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

/* What a monitor reads from the memfd equals what the handles say. */
static void test_inspect(void)
{
    tachyon_bus_t *lis, *con;
    t_make_pair(4096, &lis, &con);
    for (int i = 0; i < 10; i++)
        CHECK_ERR(tachyon_send(con, "abcd", 4, 1), TACHYON_SUCCESS);
    for (int i = 0; i < 4; i++) {
        REQUIRE(tachyon_acquire_rx(lis, NULL, NULL) != NULL);
        tachyon_commit_rx(lis);
    }
    tachyon_stats_t ps, cs;
    tachyon_bus_stats(con, &ps);
    tachyon_bus_stats(lis, &cs);
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", lis->seg_fd);
    int fd = open(link, O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    tachyon_segment_info_t info;
    CHECK_ERR(tachyon_segment_inspect(fd, &info), TACHYON_SUCCESS);
    CHECK_EQ(info.capacity, 4096);
    CHECK_EQ(info.state, TACHYON_STATE_READY);
    CHECK_EQ(info.features, lis->peer_features);
    CHECK_EQ(info.producer.valid, 1);
    CHECK_EQ(info.producer.pid, getpid());
    CHECK_EQ(info.producer.messages, 10);
    CHECK_EQ(info.producer.bytes, 40);
    CHECK_EQ(info.consumer.messages, 4);
    CHECK_EQ(info.tail, 4 * 128);
    close(fd);

    /* Not a segment: refused, not misread. */
    int junk = memfd_create("junk", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    REQUIRE(junk >= 0 && ftruncate(junk, 4096) == 0);
    CHECK_ERR(tachyon_segment_inspect(junk, &info), TACHYON_ERR_SEAL); /* could shrink */
    REQUIRE(fcntl(junk, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
    CHECK_ERR(tachyon_segment_inspect(junk, &info), TACHYON_ERR_ABI_MISMATCH);
    uint8_t hdr[768];
    memcpy(hdr, lis->hdr, sizeof(hdr));
    ((tachyon_segment_header_t *)hdr)->capacity = 1u << 20; /* larger than the file */
    REQUIRE(pwrite(junk, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr));
    CHECK_ERR(tachyon_segment_inspect(junk, &info), TACHYON_ERR_INVALID_SZ);
    close(junk);
    CHECK_ERR(tachyon_segment_inspect(-1, &info), TACHYON_ERR_SYSTEM);
    tachyon_bus_destroy(lis);
    tachyon_bus_destroy(con);
}

int main(void)
{
    test_inspect();
    test_known_stream();
    test_full_sleeps_and_wakeups();
    CHECK_ERR(tachyon_bus_stats(NULL, NULL), TACHYON_ERR_NULL_PTR);
    return t_result("test_stats");
}
