/*
 * signals.c - a SIGALRM handler installed without SA_RESTART interrupts every
 * blocking call: it returns TACHYON_ERR_INTERRUPTED promptly, and nothing is
 * lost (the bus keeps working, a message sent afterwards arrives, the
 * listener's socket file is gone).
 *
 * The timer repeats every TICK_MS after the first shot: a signal landing just
 * outside the blocking system call (between two sleep slices, say) is
 * absorbed by the handler without interrupting, so the next tick must do it.
 * That window is a property of all "check, then sleep" loops; see SECURITY.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "helpers.h"

#define FIRST_MS 100
#define TICK_MS 100
#define PROMPT_MS 1000 /* from the call's start; the first tick comes at 100 ms */

static volatile sig_atomic_t ticks;

static void on_alarm(int sig)
{
    (void)sig;
    ticks++;
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls see EINTR */
    sigaction(SIGALRM, &sa, NULL);
}

static void arm(int first_ms, int interval_ms)
{
    struct itimerval it = {{interval_ms / 1000, (interval_ms % 1000) * 1000},
                           {first_ms / 1000, (first_ms % 1000) * 1000}};
    ticks = 0;
    setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm(void)
{
    struct itimerval it;
    memset(&it, 0, sizeof(it));
    setitimer(ITIMER_REAL, &it, NULL);
}

static void test_listen_interrupted(void)
{
    sec_case_begin("listen interrupted: INTERRUPTED, socket file removed");
    char path[108];
    sec_socket_path(path, sizeof(path), "sig-listen");
    tachyon_bus_t *bus = NULL;
    int64_t t0 = sec_now_ms();
    arm(FIRST_MS, TICK_MS);
    tachyon_error_t err = tachyon_bus_listen(path, 4096, &bus);
    disarm();
    int64_t took = sec_now_ms() - t0;
    CHECK_ERR(err, TACHYON_ERR_INTERRUPTED, "listen");
    CHECK(ticks > 0 && took < PROMPT_MS, "returned after %lld ms, %d ticks", (long long)took, (int)ticks);
    CHECK(access(path, F_OK) != 0, "socket file left behind");
    /* The path is usable again at once. */
    tachyon_bus_t *a, *b;
    CHECK(sec_bus_pair(4096, &a, &b) == 0, "a fresh listen/connect failed");
    tachyon_bus_destroy(a);
    tachyon_bus_destroy(b);
    sec_case_end();
}

static void test_connect_interrupted(void)
{
    sec_case_begin("connect_timeout waiting for a listener: INTERRUPTED");
    char path[108];
    sec_socket_path(path, sizeof(path), "sig-connect");
    tachyon_bus_t *bus = NULL;
    int64_t t0 = sec_now_ms();
    arm(FIRST_MS, TICK_MS);
    tachyon_error_t err = tachyon_bus_connect_timeout(path, 10000, &bus);
    disarm();
    int64_t took = sec_now_ms() - t0;
    CHECK_ERR(err, TACHYON_ERR_INTERRUPTED, "connect_timeout");
    CHECK(bus == NULL, "bus set");
    CHECK(took < PROMPT_MS, "returned after %lld ms", (long long)took);
    sec_case_end();
}

typedef int (*rx_call)(tachyon_bus_t *bus);

static int rx_blocking(tachyon_bus_t *bus)
{
    uint32_t t;
    size_t s;
    return tachyon_acquire_rx_blocking(bus, &t, &s, 100) != NULL;
}

static int rx_drain(tachyon_bus_t *bus)
{
    tachyon_msg_view_t v[4];
    return tachyon_drain_batch(bus, v, 4, 100) != 0;
}

static void test_receive_interrupted(const char *name, rx_call call)
{
    sec_case_begin(name);
    tachyon_bus_t *tx, *rx;
    if (sec_bus_pair(4096, &tx, &rx) != 0) {
        CHECK(0, "no bus pair");
        sec_case_end();
        return;
    }
    int64_t t0 = sec_now_ms();
    arm(FIRST_MS, TICK_MS);
    int got = call(rx);
    disarm();
    int64_t took = sec_now_ms() - t0;
    CHECK(!got, "received from an empty ring");
    CHECK_ERR(tachyon_bus_last_error(rx), TACHYON_ERR_INTERRUPTED, "receive");
    CHECK(tachyon_get_state(rx) == TACHYON_STATE_READY, "state %d", (int)tachyon_get_state(rx));
    CHECK(took < PROMPT_MS, "returned after %lld ms", (long long)took);
    CHECK_ERR(tachyon_send(tx, "after", 5, 2), TACHYON_SUCCESS, "send after the interruption");
    uint32_t t;
    size_t s;
    const char *p = tachyon_acquire_rx_timeout(rx, &t, &s, 0, 1000);
    CHECK(p && s == 5 && memcmp(p, "after", 5) == 0 && t == 2, "message after the interruption lost");
    tachyon_bus_destroy(tx);
    tachyon_bus_destroy(rx);
    sec_case_end();
}

struct trickle {
    tachyon_bus_t *bus;
    int count;
};

static void *trickle_producer(void *arg)
{
    struct trickle *tr = arg;
    uint64_t seed = 7;
    for (int i = 0; i < tr->count; i++) {
        sec_sleep_ms((int)(sec_rand(&seed) % 7));
        while (tachyon_send(tr->bus, &i, sizeof(i), 1) == TACHYON_ERR_FULL)
            sec_sleep_ms(1);
    }
    return NULL;
}

static void test_signals_during_stream(void)
{
    sec_case_begin("signals every 3 ms during a stream: nothing lost");
    tachyon_bus_t *tx, *rx;
    if (sec_bus_pair(1024, &tx, &rx) != 0) {
        CHECK(0, "no bus pair");
        sec_case_end();
        return;
    }
    /* The producer thread must not take the signals. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    struct trickle tr = {tx, 300};
    pthread_t t;
    pthread_create(&t, NULL, trickle_producer, &tr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    arm(3, 3);
    int expected = 0, interrupted = 0, bad = 0;
    int64_t deadline = sec_now_ms() + 20000;
    while (expected < tr.count && sec_now_ms() < deadline) {
        uint32_t type;
        size_t size;
        const int *p = tachyon_acquire_rx_blocking(rx, &type, &size, 50);
        if (!p) {
            if (tachyon_bus_last_error(rx) == TACHYON_ERR_INTERRUPTED)
                interrupted++;
            else
                break;
            continue;
        }
        bad |= size != sizeof(int) || *p != expected;
        expected++;
        tachyon_commit_rx(rx);
    }
    disarm();
    pthread_join(t, NULL);
    CHECK(expected == tr.count, "received %d of %d", expected, tr.count);
    CHECK(!bad, "a message out of order");
    CHECK(interrupted > 0, "no receive was interrupted (%d ticks)", (int)ticks);
    printf("  %d messages, %d interrupted receives, %d signals\n", expected, interrupted, (int)ticks);
    tachyon_bus_destroy(tx);
    tachyon_bus_destroy(rx);
    sec_case_end();
}

static void test_tx_blocking_interrupted(void)
{
    sec_case_begin("acquire_tx_blocking on a full ring: INTERRUPTED");
    tachyon_bus_t *tx, *rx;
    if (sec_bus_pair(1024, &tx, &rx) != 0) {
        CHECK(0, "no bus pair");
        sec_case_end();
        return;
    }
    while (tachyon_send(tx, "fill", 4, 1) == TACHYON_SUCCESS)
        ;
    int64_t t0 = sec_now_ms();
    arm(FIRST_MS, TICK_MS);
    void *p = tachyon_acquire_tx_blocking(tx, 4, 100, -1);
    disarm();
    int64_t took = sec_now_ms() - t0;
    CHECK(p == NULL, "slot on a full ring");
    CHECK_ERR(tachyon_bus_last_error(tx), TACHYON_ERR_INTERRUPTED, "acquire_tx_blocking");
    CHECK(took < PROMPT_MS, "returned after %lld ms", (long long)took);
    uint32_t t;
    size_t s;
    CHECK(tachyon_acquire_rx(rx, &t, &s) != NULL, "consumer cannot read");
    tachyon_commit_rx(rx);
    CHECK(tachyon_acquire_tx_blocking(tx, 4, 100, 1000) != NULL, "no room after the consumer read");
    tachyon_rollback_tx(tx);
    tachyon_bus_destroy(tx);
    tachyon_bus_destroy(rx);
    sec_case_end();
}

int main(void)
{
    sec_watchdog(60);
    install_handler();
    test_listen_interrupted();
    test_connect_interrupted();
    test_receive_interrupted("acquire_rx_blocking interrupted; next message arrives", rx_blocking);
    test_receive_interrupted("drain_batch interrupted; next message arrives", rx_drain);
    test_tx_blocking_interrupted();
    test_signals_during_stream();
    return sec_finish();
}
