/*
 * test_fan.c - fan-out (one producer, many consumers) and fan-in (many
 * producers, one consumer) between processes: joining and leaving at every
 * point, both slow-consumer policies with the exact count of what a dropped
 * consumer missed, kill -9 of either side, the round robin, and peers of the
 * wrong kind (a plain bus at a fan socket and the other way round).
 *
 * Consumers and producers are fork()ed children that make their own handles.
 * Waits are bounded only by generous deadlines; nothing here measures time.
 */
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "helpers.h"

#define JOIN_MS 20000
#define PAYLOAD_WORDS 4

/* A message: its number in the stream, then words derived from it. */
static void fill(uint64_t *w, uint64_t n)
{
    w[0] = n;
    for (int i = 1; i < PAYLOAD_WORDS; i++)
        w[i] = t_mix(n * PAYLOAD_WORDS + (uint64_t)i);
}

static int intact(const void *p, size_t size, uint64_t *n)
{
    uint64_t w[PAYLOAD_WORDS];
    if (size != sizeof(w))
        return 0;
    memcpy(w, p, sizeof(w));
    *n = w[0];
    for (int i = 1; i < PAYLOAD_WORDS; i++)
        if (w[i] != t_mix(w[0] * PAYLOAD_WORDS + (uint64_t)i))
            return 0;
    return 1;
}

static int wait_child(pid_t pid)
{
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static int wait_consumers(tachyon_fanout_t *fo, uint32_t n)
{
    for (int i = 0; i < JOIN_MS / 5; i++) {
        if (tachyon_fanout_consumers(fo) == n)
            return 1;
        usleep(5000);
    }
    fprintf(stderr, "%u consumers joined, %u expected\n", tachyon_fanout_consumers(fo), n);
    return 0;
}

static void send_n(tachyon_fanout_t *fo, uint64_t from, uint64_t count)
{
    uint64_t w[PAYLOAD_WORDS];
    for (uint64_t n = from; n < from + count; n++) {
        fill(w, n);
        tachyon_error_t err = tachyon_fanout_send(fo, w, sizeof(w), 7, 60000);
        if (err != TACHYON_SUCCESS) {
            fprintf(stderr, "send %llu: %s\n", (unsigned long long)n, tachyon_error_message(err));
            exit(T_EXIT_FAIL);
        }
    }
}

/* ---- Fan-out consumer children ------------------------------------------------- */

/* Read until the producer closes: every message intact, numbers consecutive
 * from `first` (UINT64_MAX: whatever comes first) to `last`; the end must be
 * `end_err`. Exit code 0 when all of that held. */
static int consume_all(const char *path, tachyon_fan_start_t start, uint64_t first, uint64_t last,
                       tachyon_error_t end_err)
{
    tachyon_fanout_rx_t *rx;
    tachyon_error_t err = tachyon_fanout_connect(path, start, JOIN_MS, &rx);
    if (err != TACHYON_SUCCESS) {
        fprintf(stderr, "consumer connect: %s\n", tachyon_error_message(err));
        return 2;
    }
    uint64_t expect = first, count = 0;
    tachyon_fan_msg_t m;
    for (;;) {
        err = tachyon_fanout_acquire_rx(rx, &m, 100, -1);
        if (err != TACHYON_SUCCESS)
            break;
        uint64_t n;
        if (!intact(m.ptr, m.size, &n) || m.type_id != 7 || m.seq != n) {
            fprintf(stderr, "consumer: damaged message (seq %llu)\n", (unsigned long long)m.seq);
            return 3;
        }
        if (expect != UINT64_MAX && n != expect) {
            fprintf(stderr, "consumer: got %llu, expected %llu\n", (unsigned long long)n, (unsigned long long)expect);
            return 4;
        }
        expect = n + 1;
        count++;
        if (tachyon_fanout_commit_rx(rx) != TACHYON_SUCCESS)
            return 5;
    }
    tachyon_fanout_rx_destroy(rx);
    if (err != end_err) {
        fprintf(stderr, "consumer ended with %s (%s), expected %s\n", tachyon_strerror(err), tachyon_error_message(err), tachyon_strerror(end_err));
        return 6;
    }
    if (expect != last + 1 || count == 0) {
        fprintf(stderr, "consumer: last %llu, expected %llu\n", (unsigned long long)expect - 1,
                (unsigned long long)last);
        return 7;
    }
    return 0;
}

/* Three consumers join before the first message; each reads all of them,
 * then learns the producer closed. */
static void test_fanout_all_see_all(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fo-all");
    tachyon_fanout_t *fo;
    CHECK_ERR(tachyon_fanout_listen(path, 1 << 14, 4, TACHYON_FAN_BLOCK, &fo), TACHYON_SUCCESS);
    pid_t kids[3];
    for (int i = 0; i < 3; i++)
        if ((kids[i] = fork()) == 0)
            _exit(consume_all(path, TACHYON_FAN_START_NEWEST, 0, 19999, TACHYON_ERR_PEER_CLOSED));
    REQUIRE(wait_consumers(fo, 3));
    send_n(fo, 0, 20000); /* ~2.5 MB through a 16 KiB ring: many wraps */
    tachyon_fanout_destroy(fo);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(wait_child(kids[i]), 0);
}

/* Joiners after the first messages: the oldest start reads the history, the
 * newest start begins at the last message; one that joins while the producer
 * streams reads a gap-free tail of the stream. */
static void test_fanout_late_join(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fo-late");
    tachyon_fanout_t *fo;
    CHECK_ERR(tachyon_fanout_listen(path, 1 << 16, 4, TACHYON_FAN_BLOCK, &fo), TACHYON_SUCCESS);
    send_n(fo, 0, 10); /* history, nobody listening */
    pid_t oldest = fork();
    if (oldest == 0)
        _exit(consume_all(path, TACHYON_FAN_START_OLDEST, 0, 3009, TACHYON_ERR_PEER_CLOSED));
    REQUIRE(wait_consumers(fo, 1));
    pid_t newest = fork();
    if (newest == 0)
        _exit(consume_all(path, TACHYON_FAN_START_NEWEST, 9, 3009, TACHYON_ERR_PEER_CLOSED));
    REQUIRE(wait_consumers(fo, 2));
    pid_t streaming = fork();
    if (streaming == 0)
        _exit(consume_all(path, TACHYON_FAN_START_NEWEST, UINT64_MAX, 3009, TACHYON_ERR_PEER_CLOSED));
    send_n(fo, 10, 1000); /* the third joins somewhere in here, or after */
    REQUIRE(wait_consumers(fo, 3));
    send_n(fo, 1010, 2000); /* wraps with all three */
    tachyon_fanout_destroy(fo);
    CHECK_EQ(wait_child(oldest), 0);
    CHECK_EQ(wait_child(newest), 0);
    CHECK_EQ(wait_child(streaming), 0);
}

/* Joining at the oldest message after many laps of mixed sizes, with
 * nobody reading meanwhile: the joiner starts at a real message, reads
 * every later one intact and in order, and gets the history the producer
 * keeps (at least half a ring less a few slots, at most a ring). */
#define MIXED_RING (1u << 14)
#define MIXED_MAX 600u

static size_t mixed_size(uint64_t n)
{
    return 8 + (size_t)(t_mix(n) % (MIXED_MAX - 8));
}

static uint64_t slot_bytes(size_t size)
{
    return (64 + (uint64_t)size + 63) / 64 * 64;
}

static void send_mixed(tachyon_fanout_t *fo, uint64_t from, uint64_t to)
{
    uint8_t buf[MIXED_MAX];
    for (uint64_t n = from; n < to; n++) {
        size_t size = mixed_size(n);
        for (size_t i = 0; i < size; i++)
            buf[i] = (uint8_t)(n + i);
        memcpy(buf, &n, sizeof(n));
        REQUIRE(tachyon_fanout_send(fo, buf, size, 9, 0) == TACHYON_SUCCESS);
    }
}

static void check_oldest_join(tachyon_fanout_t *fo, const char *path, uint64_t sent)
{
    tachyon_fanout_rx_t *rx;
    REQUIRE(tachyon_fanout_connect(path, TACHYON_FAN_START_OLDEST, JOIN_MS, &rx) == TACHYON_SUCCESS);
    uint64_t first = UINT64_MAX, expect = 0, history = 0;
    tachyon_fan_msg_t m;
    while (expect < sent) {
        tachyon_error_t err = tachyon_fanout_acquire_rx(rx, &m, 100, JOIN_MS);
        REQUIRE(err == TACHYON_SUCCESS);
        uint64_t n;
        memcpy(&n, m.ptr, sizeof(n));
        int ok = m.seq == n && m.size == mixed_size(n) && (first == UINT64_MAX || n == expect);
        const uint8_t *bytes = m.ptr;
        for (size_t i = sizeof(n); ok && i < m.size; i++)
            ok = bytes[i] == (uint8_t)(n + i);
        CHECK(ok);
        if (!ok)
            break;
        if (first == UINT64_MAX)
            first = n;
        history += slot_bytes(m.size);
        expect = n + 1;
        CHECK_ERR(tachyon_fanout_commit_rx(rx), TACHYON_SUCCESS);
    }
    CHECK_EQ(expect, sent);
    CHECK(history <= MIXED_RING);
    CHECK(history >= MIXED_RING / 2 - 3 * slot_bytes(MIXED_MAX));
    tachyon_fanout_rx_destroy(rx);
    REQUIRE(wait_consumers(fo, 0)); /* gone before the producer writes on */
}

static void test_fanout_oldest_after_laps(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fo-laps");
    tachyon_fanout_t *fo;
    CHECK_ERR(tachyon_fanout_listen(path, MIXED_RING, 2, TACHYON_FAN_BLOCK, &fo), TACHYON_SUCCESS);
    uint64_t stops[3] = {500, 4321, 20000}, sent = 0;
    for (int i = 0; i < 3; i++) {
        send_mixed(fo, sent, stops[i]);
        sent = stops[i];
        check_oldest_join(fo, path, sent);
    }
    tachyon_fanout_destroy(fo);
}

/* Join exactly at a wrap: the producer stops with its head just short of
 * the ring's end, so the joiner's first message comes after a skip marker. */
static void test_fanout_join_at_wrap(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fo-wrap");
    tachyon_fanout_t *fo;
    CHECK_ERR(tachyon_fanout_listen(path, 4096, 2, TACHYON_FAN_BLOCK, &fo), TACHYON_SUCCESS);
    /* 32-byte payloads take 128-byte slots: 31 of them leave 128 bytes. */
    send_n(fo, 0, 31);
    void *big = tachyon_fanout_acquire_tx(fo, 1000, 0); /* does not fit before the end: skips */
    REQUIRE(big != NULL);
    CHECK_ERR(tachyon_fanout_rollback_tx(fo), TACHYON_SUCCESS);
    pid_t kid = fork();
    if (kid == 0)
        _exit(consume_all(path, TACHYON_FAN_START_NEWEST, UINT64_MAX, 530, TACHYON_ERR_PEER_CLOSED));
    REQUIRE(wait_consumers(fo, 1));
    send_n(fo, 31, 500);
    tachyon_fanout_destroy(fo);
    CHECK_EQ(wait_child(kid), 0);
}

/* BLOCK: a consumer that reads nothing stops the producer, which times out;
 * once the consumer reads, the producer goes on. The consumer is told when
 * to read through a pipe. */
static void test_fanout_block_timeout(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fo-block");
    int go[2];
    REQUIRE(pipe(go) == 0);
    tachyon_fanout_t *fo;
    CHECK_ERR(tachyon_fanout_listen(path, 4096, 2, TACHYON_FAN_BLOCK, &fo), TACHYON_SUCCESS);
    pid_t kid = fork();
    if (kid == 0) {
        close(go[1]);
        tachyon_fanout_rx_t *rx;
        if (tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, JOIN_MS, &rx) != TACHYON_SUCCESS)
            _exit(2);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(3);
        uint64_t expect = 0;
        tachyon_fan_msg_t m;
        tachyon_error_t err;
        while ((err = tachyon_fanout_acquire_rx(rx, &m, 0, -1)) == TACHYON_SUCCESS) {
            uint64_t n;
            if (!intact(m.ptr, m.size, &n) || n != expect++)
                _exit(4);
            tachyon_fanout_commit_rx(rx);
        }
        _exit(err == TACHYON_ERR_PEER_CLOSED && expect > 40 ? 0 : 5);
    }
    close(go[0]);
    REQUIRE(wait_consumers(fo, 1));
    uint64_t w[PAYLOAD_WORDS];
    uint64_t n = 0;
    tachyon_error_t err;
    for (;; n++) {
        fill(w, n);
        err = tachyon_fanout_send(fo, w, sizeof(w), 7, 200);
        if (err != TACHYON_SUCCESS)
            break;
    }
    CHECK_ERR(err, TACHYON_ERR_TIMEOUT);
    CHECK(n >= 16 && n <= 32); /* half a ring to a ring of 128-byte slots */
    fill(w, n);
    CHECK_ERR(tachyon_fanout_send(fo, w, sizeof(w), 7, 0), TACHYON_ERR_FULL);
    CHECK(write(go[1], "g", 1) == 1);
    send_n(fo, n, 40); /* room comes back as the consumer reads */
    tachyon_fanout_destroy(fo);
    close(go[1]);
    CHECK_EQ(wait_child(kid), 0);
}

/* DROP: a consumer that stops reading is dropped when it is a ring behind;
 * its next receive reports the overrun, and received + missed is exactly
 * what was sent after it joined. A second consumer's counts add up too. */
static int consume_counting(const char *path, int stall_fd, uint64_t total)
{
    tachyon_fanout_rx_t *rx;
    if (tachyon_fanout_connect(path, TACHYON_FAN_START_OLDEST, JOIN_MS, &rx) != TACHYON_SUCCESS)
        return 2;
    if (stall_fd >= 0) {
        char c;
        if (read(stall_fd, &c, 1) != 1)
            return 3;
    }
    uint64_t received = 0, overruns = 0, expect = 0;
    tachyon_fan_msg_t m;
    for (;;) {
        tachyon_error_t err = tachyon_fanout_acquire_rx(rx, &m, 100, -1);
        if (err == TACHYON_ERR_OVERRUN) {
            uint64_t missed = tachyon_fanout_missed(rx);
            if (missed == 0)
                return 4;
            expect += missed;
            overruns++;
            continue;
        }
        if (err != TACHYON_SUCCESS) {
            if (err != TACHYON_ERR_PEER_CLOSED)
                return 5;
            break;
        }
        uint64_t n = UINT64_MAX;
        int ok = intact(m.ptr, m.size, &n);
        err = tachyon_fanout_commit_rx(rx);
        if (err == TACHYON_ERR_OVERRUN)
            continue; /* overwritten while we read it: the next receive counts it as missed */
        if (err != TACHYON_SUCCESS || !ok)
            return 6;
        if (n != expect) {
            fprintf(stderr, "drop consumer: got %llu, expected %llu\n", (unsigned long long)n,
                    (unsigned long long)expect);
            return 7;
        }
        received++;
        expect++;
    }
    uint64_t missed_total = tachyon_fanout_missed_total(rx);
    tachyon_fanout_rx_destroy(rx);
    if (received + missed_total != total) {
        fprintf(stderr, "drop consumer: %llu received + %llu missed != %llu sent\n", (unsigned long long)received,
                (unsigned long long)missed_total, (unsigned long long)total);
        return 8;
    }
    return stall_fd >= 0 && overruns == 0 ? 9 : 0;
}

static void test_fanout_drop(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fo-drop");
    int stall[2];
    REQUIRE(pipe(stall) == 0);
    tachyon_fanout_t *fo;
    CHECK_ERR(tachyon_fanout_listen(path, 8192, 2, TACHYON_FAN_DROP_SLOW, &fo), TACHYON_SUCCESS);
    pid_t slow = fork();
    if (slow == 0) {
        close(stall[1]);
        _exit(consume_counting(path, stall[0], 5000));
    }
    close(stall[0]);
    pid_t steady = fork();
    if (steady == 0)
        _exit(consume_counting(path, -1, 5000));
    REQUIRE(wait_consumers(fo, 2));
    send_n(fo, 0, 4000); /* the slow one is many rings behind: dropped, and never waited for */
    CHECK(write(stall[1], "g", 1) == 1);
    send_n(fo, 4000, 1000);
    tachyon_fanout_destroy(fo);
    close(stall[1]);
    CHECK_EQ(wait_child(slow), 0);
    CHECK_EQ(wait_child(steady), 0);
}

/* kill -9 of a consumer that holds the producer back (BLOCK): the producer
 * goes on, without any timeout expiring. */
static void test_fanout_consumer_killed(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fo-kill");
    tachyon_fanout_t *fo;
    CHECK_ERR(tachyon_fanout_listen(path, 4096, 2, TACHYON_FAN_BLOCK, &fo), TACHYON_SUCCESS);
    pid_t kid = fork();
    if (kid == 0) {
        tachyon_fanout_rx_t *rx;
        if (tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, JOIN_MS, &rx) != TACHYON_SUCCESS)
            _exit(2);
        for (;;)
            pause(); /* reads nothing */
    }
    REQUIRE(wait_consumers(fo, 1));
    uint64_t w[PAYLOAD_WORDS];
    uint64_t n = 0;
    while (fill(w, n), tachyon_fanout_send(fo, w, sizeof(w), 7, 0) == TACHYON_SUCCESS)
        n++;
    CHECK_ERR(tachyon_fanout_last_error(fo), TACHYON_ERR_FULL);
    kill(kid, SIGKILL);
    CHECK_EQ(wait_child(kid), 128 + SIGKILL);
    send_n(fo, n, 200); /* waits (60 s at most) until the dead consumer is forgotten */
    CHECK_EQ(tachyon_fanout_consumers(fo), 0);
    tachyon_fanout_destroy(fo);
}

/* kill -9 of the producer: consumers read everything it published, then get
 * PEER_DEAD (not PEER_CLOSED). */
static void test_fanout_producer_killed(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fo-pkill");
    int ready[2];
    REQUIRE(pipe(ready) == 0);
    pid_t producer = fork();
    if (producer == 0) {
        close(ready[0]);
        tachyon_fanout_t *fo;
        if (tachyon_fanout_listen(path, 1 << 16, 2, TACHYON_FAN_BLOCK, &fo) != TACHYON_SUCCESS)
            _exit(2);
        if (write(ready[1], "r", 1) != 1 || !wait_consumers(fo, 2))
            _exit(3);
        send_n(fo, 0, 500);
        raise(SIGKILL);
    }
    close(ready[1]);
    char c;
    REQUIRE(read(ready[0], &c, 1) == 1);
    close(ready[0]);
    pid_t other = fork();
    if (other == 0)
        _exit(consume_all(path, TACHYON_FAN_START_OLDEST, 0, 499, TACHYON_ERR_PEER_DEAD));
    CHECK_EQ(consume_all(path, TACHYON_FAN_START_OLDEST, 0, 499, TACHYON_ERR_PEER_DEAD), 0);
    CHECK_EQ(wait_child(other), 0);
    CHECK_EQ(wait_child(producer), 128 + SIGKILL);
}

/* Leaving and coming back, and the table's limit. */
static void test_fanout_leave_rejoin_full(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fo-full");
    tachyon_fanout_t *fo;
    CHECK_ERR(tachyon_fanout_listen(path, 4096, 1, TACHYON_FAN_BLOCK, &fo), TACHYON_SUCCESS);
    tachyon_fanout_rx_t *a, *b;
    CHECK_ERR(tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, JOIN_MS, &a), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, JOIN_MS, &b), TACHYON_ERR_FULL);
    send_n(fo, 0, 3);
    tachyon_fan_msg_t m;
    CHECK_ERR(tachyon_fanout_acquire_rx(a, &m, 0, 5000), TACHYON_SUCCESS);
    CHECK_EQ(m.seq, 0);
    CHECK_EQ(m.pid, getpid());
    CHECK_ERR(tachyon_fanout_acquire_rx(a, &m, 0, 0), TACHYON_ERR_STATE);
    CHECK_ERR(tachyon_fanout_commit_rx(a), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_fanout_commit_rx(a), TACHYON_ERR_STATE);
    tachyon_fanout_rx_destroy(a); /* leaves mid-stream */
    for (int i = 0; i < 2000 && tachyon_fanout_consumers(fo) != 0; i++)
        usleep(5000);
    CHECK_EQ(tachyon_fanout_consumers(fo), 0);
    send_n(fo, 3, 100); /* nobody holds the ring: never waits */
    CHECK_ERR(tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, JOIN_MS, &b), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_fanout_acquire_rx(b, &m, 0, 5000), TACHYON_SUCCESS);
    CHECK_EQ(m.seq, 102);
    tachyon_fanout_commit_rx(b);
    CHECK_ERR(tachyon_fanout_acquire_rx(b, &m, 0, 0), TACHYON_ERR_EMPTY);
    CHECK_ERR(tachyon_fanout_acquire_rx(b, &m, 0, 30), TACHYON_ERR_TIMEOUT);
    CHECK(tachyon_fanout_acquire_tx(fo, tachyon_fanout_max_payload(fo) + 1, 0) == NULL);
    CHECK_ERR(tachyon_fanout_last_error(fo), TACHYON_ERR_INVALID_SZ);
    tachyon_fanout_destroy(fo);
    CHECK_ERR(tachyon_fanout_acquire_rx(b, &m, 0, -1), TACHYON_ERR_PEER_CLOSED);
    tachyon_fanout_rx_destroy(b);
}

/* A signal ends a blocking receive with ERR_INTERRUPTED. */
static void on_alarm(int sig)
{
    (void)sig;
}

static void test_fanout_interrupted(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fo-intr");
    tachyon_fanout_t *fo;
    CHECK_ERR(tachyon_fanout_listen(path, 4096, 1, TACHYON_FAN_BLOCK, &fo), TACHYON_SUCCESS);
    tachyon_fanout_rx_t *rx;
    CHECK_ERR(tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, JOIN_MS, &rx), TACHYON_SUCCESS);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    /* Every 100 ms: one that lands between two sleeps is followed by another. */
    struct itimerval it = {{0, 100000}, {0, 100000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    tachyon_fan_msg_t m;
    CHECK_ERR(tachyon_fanout_acquire_rx(rx, &m, 0, 60000), TACHYON_ERR_INTERRUPTED);
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_DFL);
    tachyon_fanout_rx_destroy(rx);
    tachyon_fanout_destroy(fo);
}

/* ---- Wrong kinds ------------------------------------------------------------------ */

static void test_wrong_kinds(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fo-kind");
    tachyon_fanout_t *fo;
    CHECK_ERR(tachyon_fanout_listen(path, 4096, 2, TACHYON_FAN_BLOCK, &fo), TACHYON_SUCCESS);
    tachyon_bus_t *bus = NULL;
    CHECK_ERR(tachyon_bus_connect_timeout(path, JOIN_MS, &bus), TACHYON_ERR_ABI_MISMATCH);
    CHECK(bus == NULL);
    uint32_t index;
    CHECK_ERR(tachyon_fanin_connect(path, JOIN_MS, &index, &bus), TACHYON_ERR_ABI_MISMATCH);
    tachyon_fanout_destroy(fo);

    t_socket_path(path, sizeof(path), "fi-kind");
    tachyon_fanin_t *fi;
    CHECK_ERR(tachyon_fanin_listen(path, 4096, 1, &fi), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_bus_connect_timeout(path, JOIN_MS, &bus), TACHYON_ERR_ABI_MISMATCH);
    tachyon_fanout_rx_t *rx;
    CHECK_ERR(tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, JOIN_MS, &rx), TACHYON_ERR_ABI_MISMATCH);
    tachyon_bus_t *p1, *p2;
    CHECK_ERR(tachyon_fanin_connect(path, JOIN_MS, &index, &p1), TACHYON_SUCCESS);
    CHECK_EQ(index, 0);
    CHECK_ERR(tachyon_fanin_connect(path, JOIN_MS, &index, &p2), TACHYON_ERR_FULL);
    tachyon_bus_destroy(p1);
    tachyon_fanin_destroy(fi);

    /* A fan connector at a plain bus listener. */
    t_socket_path(path, sizeof(path), "bus-kind");
    pid_t kid = fork();
    if (kid == 0) {
        tachyon_bus_t *b;
        tachyon_error_t e = tachyon_bus_listen(path, 4096, &b);
        if (e == TACHYON_SUCCESS)
            tachyon_bus_destroy(b);
        _exit(0);
    }
    CHECK_ERR(tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, JOIN_MS, &rx), TACHYON_ERR_ABI_MISMATCH);
    CHECK_EQ(wait_child(kid), 0);
    t_socket_path(path, sizeof(path), "bus-kind2");
    kid = fork();
    if (kid == 0) {
        tachyon_bus_t *b;
        tachyon_error_t e = tachyon_bus_listen(path, 4096, &b);
        if (e == TACHYON_SUCCESS)
            tachyon_bus_destroy(b);
        _exit(0);
    }
    CHECK_ERR(tachyon_fanin_connect(path, JOIN_MS, &index, &p2), TACHYON_ERR_ABI_MISMATCH);
    CHECK_EQ(wait_child(kid), 0);
}

/* ---- Fan-in -------------------------------------------------------------------- */

/* A producer child: join, send `count` messages numbered from 0 with its
 * tag in the type, then leave (or die, with kill_self). */
static int produce(const char *path, uint32_t tag, uint64_t count, int kill_self)
{
    tachyon_bus_t *bus;
    uint32_t index;
    if (tachyon_fanin_connect(path, JOIN_MS, &index, &bus) != TACHYON_SUCCESS)
        return 2;
    uint64_t w[PAYLOAD_WORDS];
    for (uint64_t n = 0; n < count; n++) {
        fill(w, n);
        void *slot = tachyon_acquire_tx_blocking(bus, sizeof(w), 100, 60000);
        if (!slot)
            return 3;
        memcpy(slot, w, sizeof(w));
        if (tachyon_commit_tx(bus, sizeof(w), tag) != TACHYON_SUCCESS)
            return 4;
    }
    if (kill_self)
        raise(SIGKILL);
    tachyon_bus_destroy(bus);
    return 0;
}

/* Three producers; every message of each arrives intact and in its order,
 * with the sender's pid; each departure is reported once, after its last
 * message; one of them is killed with -9. */
static void test_fanin_many(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fi-many");
    const uint64_t count[3] = {5000, 3000, 4000};
    pid_t kids[3];
    /* Forked before the listener's thread exists (it allocates as it admits). */
    for (uint32_t i = 0; i < 3; i++)
        if ((kids[i] = fork()) == 0)
            _exit(produce(path, 100 + i, count[i], i == 1));
    tachyon_fanin_t *fi;
    CHECK_ERR(tachyon_fanin_listen(path, 8192, 4, &fi), TACHYON_SUCCESS);
    uint64_t got[3] = {0}, ended = 0;
    tachyon_error_t how[3] = {0};
    int32_t pid_of[3] = {0};
    while (ended < 3) {
        tachyon_fan_msg_t m;
        tachyon_error_t err = tachyon_fanin_acquire_rx(fi, &m, 100, 60000);
        if (err == TACHYON_ERR_PEER_CLOSED || err == TACHYON_ERR_PEER_DEAD) {
            int k = -1;
            for (int i = 0; i < 3; i++)
                if (kids[i] == m.pid)
                    k = i;
            REQUIRE(k >= 0);
            CHECK_EQ(how[k], 0);
            how[k] = err;
            CHECK_EQ(m.seq, count[k]);
            ended++;
            continue;
        }
        REQUIRE(err == TACHYON_SUCCESS);
        uint32_t tag = m.type_id - 100;
        REQUIRE(tag < 3);
        uint64_t n;
        CHECK(intact(m.ptr, m.size, &n));
        CHECK_EQ(n, got[tag]);
        CHECK_EQ(m.seq, got[tag]);
        CHECK_EQ(m.pid, kids[tag]);
        pid_of[tag] = m.pid;
        got[tag]++;
        CHECK_ERR(tachyon_fanin_commit_rx(fi), TACHYON_SUCCESS);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(got[i], count[i]);
        CHECK_EQ(wait_child(kids[i]), i == 1 ? 128 + SIGKILL : 0);
        CHECK_EQ(pid_of[i], kids[i]);
    }
    CHECK_ERR(how[0], TACHYON_ERR_PEER_CLOSED);
    CHECK_ERR(how[1], TACHYON_ERR_PEER_DEAD);
    CHECK_ERR(how[2], TACHYON_ERR_PEER_CLOSED);
    CHECK_EQ(tachyon_fanin_producers(fi), 0);
    tachyon_fan_msg_t m;
    CHECK_ERR(tachyon_fanin_acquire_rx(fi, &m, 0, 0), TACHYON_ERR_EMPTY);
    tachyon_fanin_destroy(fi);
}

/* Round robin: two producers whose rings are full before the consumer reads;
 * the consumer then alternates between them while both have messages. */
static void test_fanin_round_robin(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fi-rr");
    tachyon_fanin_t *fi;
    CHECK_ERR(tachyon_fanin_listen(path, 8192, 2, &fi), TACHYON_SUCCESS);
    tachyon_bus_t *a, *b;
    uint32_t ia, ib;
    CHECK_ERR(tachyon_fanin_connect(path, JOIN_MS, &ia, &a), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_fanin_connect(path, JOIN_MS, &ib, &b), TACHYON_SUCCESS);
    CHECK(ia != ib);
    uint64_t w[PAYLOAD_WORDS];
    int na = 0, nb = 0;
    for (; na < 100; na++)
        if (fill(w, (uint64_t)na), tachyon_send(a, w, sizeof(w), 1) != TACHYON_SUCCESS)
            break;
    for (; nb < 10; nb++)
        if (fill(w, (uint64_t)nb), tachyon_send(b, w, sizeof(w), 2) != TACHYON_SUCCESS)
            break;
    CHECK(na >= 32); /* 8 KiB of 128-byte slots: a's ring is full */
    int last = 0, alternations = 0;
    for (int k = 0; k < na + nb; k++) {
        tachyon_fan_msg_t m;
        REQUIRE(tachyon_fanin_acquire_rx(fi, &m, 0, 5000) == TACHYON_SUCCESS);
        if (k < 2 * nb && k > 0)
            alternations += (int)m.type_id != last;
        last = (int)m.type_id;
        if (k >= 2 * nb)
            CHECK_EQ(m.type_id, 1); /* b ran dry: the rest is a's */
        tachyon_fanin_commit_rx(fi);
    }
    CHECK_EQ(alternations, 2 * nb - 1); /* a, b, a, b, ... never twice in a row */
    tachyon_bus_destroy(a);
    tachyon_bus_destroy(b);
    for (int k = 0; k < 2; k++) { /* both departures, which free their slots */
        tachyon_fan_msg_t m;
        CHECK_ERR(tachyon_fanin_acquire_rx(fi, &m, 0, 5000), TACHYON_ERR_PEER_CLOSED);
    }
    /* Sends to a closed fan-in fail with PEER_CLOSED. */
    tachyon_bus_t *c;
    CHECK_ERR(tachyon_fanin_connect(path, JOIN_MS, NULL, &c), TACHYON_SUCCESS);
    tachyon_fanin_destroy(fi);
    CHECK(!tachyon_peer_alive(c));
    tachyon_error_t err = TACHYON_SUCCESS;
    for (int k = 0; k < 1000 && err == TACHYON_SUCCESS; k++)
        err = tachyon_send(c, w, sizeof(w), 1); /* the ring fills up, then the bus says why */
    CHECK_ERR(err, TACHYON_ERR_PEER_CLOSED);
    tachyon_bus_destroy(c);
}

/* A producer joins while the consumer sleeps with no producer at all. */
static void test_fanin_join_while_sleeping(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "fi-sleep");
    tachyon_fanin_t *fi;
    CHECK_ERR(tachyon_fanin_listen(path, 4096, 2, &fi), TACHYON_SUCCESS);
    pid_t kid = fork();
    if (kid == 0) {
        usleep(200000);
        _exit(produce(path, 9, 3, 0));
    }
    tachyon_fan_msg_t m;
    for (int i = 0; i < 3; i++) {
        CHECK_ERR(tachyon_fanin_acquire_rx(fi, &m, 0, 60000), TACHYON_SUCCESS);
        CHECK_EQ(m.type_id, 9);
        tachyon_fanin_commit_rx(fi);
    }
    CHECK_ERR(tachyon_fanin_acquire_rx(fi, &m, 0, 60000), TACHYON_ERR_PEER_CLOSED);
    CHECK_EQ(m.pid, kid);
    CHECK(m.ptr == NULL);
    CHECK_EQ(wait_child(kid), 0);
    tachyon_fanin_destroy(fi);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_fanout_all_see_all();
    test_fanout_late_join();
    test_fanout_oldest_after_laps();
    test_fanout_join_at_wrap();
    test_fanout_block_timeout();
    test_fanout_drop();
    test_fanout_consumer_killed();
    test_fanout_producer_killed();
    test_fanout_leave_rejoin_full();
    test_fanout_interrupted();
    test_wrong_kinds();
    test_fanin_many();
    test_fanin_round_robin();
    test_fanin_join_while_sleeping();
    return t_result("test_fan");
}
