/*
 * test_fan_stress.c - a long fan-out stream (10 M messages by default,
 * TACHYON_STRESS_MSGS to change it) through 4 consumer processes that check
 * every message (its number, and words derived from it) and a running
 * checksum against the producer's; then a fan-in stream from 4 producer
 * processes checked the same way. On a 2-core machine the consumers share
 * cores with the producer: the blocking waits are what this exercises.
 */
#include <sys/wait.h>

#include "helpers.h"

#define CONSUMERS 4
#define WORDS 4

static void fill(uint64_t *w, uint64_t n)
{
    w[0] = n;
    for (int i = 1; i < WORDS; i++)
        w[i] = t_mix(n ^ ((uint64_t)i << 56));
}

static int check(const void *p, size_t size, uint64_t n, uint64_t *sum)
{
    uint64_t w[WORDS];
    if (size != sizeof(w))
        return 0;
    memcpy(w, p, sizeof(w));
    uint64_t expect[WORDS];
    fill(expect, n);
    *sum = t_mix(*sum ^ w[WORDS - 1]);
    return memcmp(w, expect, sizeof(w)) == 0;
}

static uint64_t stream_sum(uint64_t count)
{
    uint64_t sum = 0, w[WORDS];
    for (uint64_t n = 0; n < count; n++) {
        fill(w, n);
        sum = t_mix(sum ^ w[WORDS - 1]);
    }
    return sum;
}

static int fanout_consumer(const char *path, uint64_t count)
{
    tachyon_fanout_rx_t *rx;
    if (tachyon_fanout_connect(path, TACHYON_FAN_START_OLDEST, 20000, &rx) != TACHYON_SUCCESS)
        return 2;
    uint64_t n = 0, sum = 0;
    tachyon_fan_msg_t m;
    tachyon_error_t err;
    while ((err = tachyon_fanout_acquire_rx(rx, &m, 2000, -1)) == TACHYON_SUCCESS) {
        if (m.seq != n || !check(m.ptr, m.size, n, &sum)) {
            fprintf(stderr, "fan-out consumer: message %llu damaged\n", (unsigned long long)n);
            return 3;
        }
        n++;
        if (tachyon_fanout_commit_rx(rx) != TACHYON_SUCCESS)
            return 4;
    }
    tachyon_fanout_rx_destroy(rx);
    if (err != TACHYON_ERR_PEER_CLOSED || n != count || sum != stream_sum(count)) {
        fprintf(stderr, "fan-out consumer: %llu of %llu, ended with %s\n", (unsigned long long)n,
                (unsigned long long)count, tachyon_strerror(err));
        return 5;
    }
    return 0;
}

static void test_fanout_stream(uint64_t count)
{
    char path[108];
    t_socket_path(path, sizeof(path), "stress-fo");
    tachyon_fanout_t *fo;
    REQUIRE(tachyon_fanout_listen(path, 1 << 20, CONSUMERS, TACHYON_FAN_BLOCK, &fo) == TACHYON_SUCCESS);
    pid_t kids[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        if ((kids[i] = fork()) == 0)
            _exit(fanout_consumer(path, count));
    for (int i = 0; i < 4000 && tachyon_fanout_consumers(fo) < CONSUMERS; i++)
        usleep(5000);
    REQUIRE(tachyon_fanout_consumers(fo) == CONSUMERS);
    uint64_t t0 = t_now_ns();
    for (uint64_t n = 0; n < count; n++) {
        void *slot = tachyon_fanout_acquire_tx(fo, WORDS * 8, -1);
        REQUIRE(slot != NULL);
        fill(slot, n);
        REQUIRE(tachyon_fanout_commit_tx(fo, WORDS * 8, 1) == TACHYON_SUCCESS);
    }
    tachyon_fanout_destroy(fo);
    for (int i = 0; i < CONSUMERS; i++) {
        int status = 0;
        waitpid(kids[i], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    printf("fan-out: %llu messages to %d consumers in %.2f s\n", (unsigned long long)count, CONSUMERS,
           (double)(t_now_ns() - t0) / 1e9);
    fflush(stdout); /* before the next fork: a child must not print it again */
}

static int fanin_producer(const char *path, uint64_t count)
{
    tachyon_bus_t *bus;
    if (tachyon_fanin_connect(path, 20000, NULL, &bus) != TACHYON_SUCCESS)
        return 2;
    for (uint64_t n = 0; n < count; n++) {
        void *slot = tachyon_acquire_tx_blocking(bus, WORDS * 8, 2000, -1);
        if (!slot)
            return 3;
        fill(slot, n);
        if (tachyon_commit_tx(bus, WORDS * 8, 1) != TACHYON_SUCCESS)
            return 4;
    }
    tachyon_bus_destroy(bus);
    return 0;
}

static void test_fanin_stream(uint64_t count)
{
    char path[108];
    t_socket_path(path, sizeof(path), "stress-fi");
    /* The producers are forked before the listener's thread exists: a child
     * forked while that thread allocates would inherit a held allocator lock. */
    pid_t kids[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        if ((kids[i] = fork()) == 0)
            _exit(fanin_producer(path, count));
    tachyon_fanin_t *fi;
    REQUIRE(tachyon_fanin_listen(path, 1 << 18, CONSUMERS, &fi) == TACHYON_SUCCESS);
    uint64_t next[CONSUMERS] = {0}, sum[CONSUMERS] = {0};
    int32_t pid_at[CONSUMERS] = {0};
    int ended = 0;
    while (ended < CONSUMERS) {
        tachyon_fan_msg_t m;
        tachyon_error_t err = tachyon_fanin_acquire_rx(fi, &m, 2000, 120000);
        if (err == TACHYON_ERR_PEER_CLOSED) {
            /* A slot is freed when its producer leaves, and a producer that
             * joins later may get it: check this one's stream, start afresh. */
            CHECK_EQ(m.seq, count);
            CHECK_EQ(next[m.producer], count);
            CHECK(sum[m.producer] == stream_sum(count));
            CHECK_EQ(pid_at[m.producer], m.pid);
            next[m.producer] = sum[m.producer] = 0;
            pid_at[m.producer] = 0;
            ended++;
            continue;
        }
        REQUIRE(err == TACHYON_SUCCESS);
        REQUIRE(m.producer < CONSUMERS);
        if (pid_at[m.producer] == 0)
            pid_at[m.producer] = m.pid;
        CHECK_EQ(pid_at[m.producer], m.pid);
        REQUIRE(check(m.ptr, m.size, next[m.producer], &sum[m.producer]));
        next[m.producer]++;
        tachyon_fanin_commit_rx(fi);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        int status = 0;
        waitpid(kids[i], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    tachyon_fanin_destroy(fi);
}

int main(void)
{
    uint64_t count = t_env_u64("TACHYON_STRESS_MSGS", 10000000);
    test_fanout_stream(count);
    test_fanin_stream(count / 8);
    return t_result("test_fan_stress");
}
