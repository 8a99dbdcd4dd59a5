/*
 * peer_death.c - a peer that is killed (SIGKILL, at a random moment) or that
 * destroys its bus is noticed by the survivor within PEER_DEAD_MS, after the
 * survivor has read every message the dead producer committed.
 *
 * The child always connects; the parent listens. The child reports progress
 * through an anonymous MAP_SHARED page (not the bus: the bus is under test).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define ITERATIONS 50
#define PEER_DEAD_MS 250
#define RING 4096
#define SPIN 200

struct shared {
    _Atomic uint64_t committed; /* producer: messages committed so far */
    _Atomic int64_t event_ms;   /* child: when it destroyed its bus */
    _Atomic int connected;
};

static struct shared *shared_page(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

static tachyon_bus_t *child_connect(const char *path, struct shared *sh)
{
    alarm(20); /* a child that outlives its parent's interest must not linger */
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = tachyon_bus_connect_timeout(path, 5000, &bus);
    if (err != TACHYON_SUCCESS) {
        fprintf(stderr, "  child: connect: %s\n", tachyon_strerror(err));
        _exit(3);
    }
    atomic_store(&sh->connected, 1);
    return bus;
}

static tachyon_bus_t *parent_listen(const char *path)
{
    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, RING);
    opts.timeout_ms = 5000;
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = tachyon_bus_listen_ex(path, &opts, &bus);
    if (err != TACHYON_SUCCESS)
        fprintf(stderr, "  listen: %s\n", tachyon_strerror(err));
    return bus;
}

/* A message: its sequence number, then its low byte repeated. */
static void fill_message(uint8_t *p, uint64_t seq, size_t size)
{
    memcpy(p, &seq, sizeof(seq));
    memset(p + 8, (int)(seq & 0xFF), size - 8);
}

/* Producer child: sequence-numbered messages of random sizes, forever. */
static void __attribute__((noreturn)) producer_child(const char *path, struct shared *sh, uint64_t seed)
{
    tachyon_bus_t *bus = child_connect(path, sh);
    for (uint64_t seq = 0;; seq++) {
        size_t size = 8 + sec_rand(&seed) % 300;
        uint8_t *p = tachyon_acquire_tx_blocking(bus, size, SPIN, 5000);
        if (!p)
            _exit(4);
        fill_message(p, seq, size);
        tachyon_commit_tx(bus, size, 7);
        atomic_store(&sh->committed, seq + 1);
    }
}

struct killer {
    pid_t pid;
    int delay_ms;
    int64_t killed_at;
};

static void *killer_thread(void *arg)
{
    struct killer *k = arg;
    sec_sleep_ms(k->delay_ms);
    k->killed_at = sec_now_ms();
    kill(k->pid, SIGKILL);
    return NULL;
}

/* Consume until the bus reports the producer gone; check order and content. */
static uint64_t consume_until_gone(tachyon_bus_t *bus, int *bad)
{
    uint64_t received = 0;
    uint32_t type;
    size_t size;
    const uint8_t *p;
    while ((p = tachyon_acquire_rx_blocking(bus, &type, &size, SPIN)) != NULL) {
        uint64_t seq;
        memcpy(&seq, p, sizeof(seq));
        if (seq != received || size < 8 || type != 7 || (size > 8 && p[size - 1] != (seq & 0xFF)))
            *bad = 1;
        received++;
        tachyon_commit_rx(bus);
    }
    return received;
}

static void test_producer_killed(void)
{
    sec_case_begin("producer SIGKILLed mid-stream x50: drained, then PEER_DEAD");
    uint64_t seed = 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
    struct shared *sh = shared_page();
    int64_t worst = 0;
    for (int it = 0; it < ITERATIONS && !sec_case_failed; it++) {
        char path[108];
        sec_socket_path(path, sizeof(path), "pdie");
        memset(sh, 0, sizeof(*sh));
        pid_t pid = fork();
        if (pid == 0)
            producer_child(path, sh, sec_rand(&seed));
        tachyon_bus_t *bus = parent_listen(path);
        CHECK(bus != NULL, "iteration %d: no bus", it);
        if (!bus) {
            sec_wait_child(pid, 1);
            break;
        }
        struct killer k = {pid, (int)(sec_rand(&seed) % 40), 0};
        pthread_t t;
        pthread_create(&t, NULL, killer_thread, &k);
        int bad = 0;
        uint64_t received = consume_until_gone(bus, &bad);
        int64_t returned_at = sec_now_ms();
        pthread_join(t, NULL);
        uint64_t committed = atomic_load(&sh->committed);
        int status = sec_wait_child(pid, 2000);

        CHECK(!bad, "iteration %d: a message arrived out of order or corrupted", it);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "iteration %d: producer ended on its own (status 0x%x)", it, status);
        CHECK(received >= committed && received <= committed + 1,
              "iteration %d: received %llu, producer had committed %llu", it,
              (unsigned long long)received, (unsigned long long)committed);
        CHECK(tachyon_get_state(bus) == TACHYON_STATE_DISCONNECTED, "iteration %d: state %d", it,
              (int)tachyon_get_state(bus));
        CHECK_ERR(tachyon_bus_last_error(bus), TACHYON_ERR_PEER_DEAD, "last error");
        int64_t latency = returned_at - k.killed_at;
        if (latency > worst)
            worst = latency;
        CHECK(latency <= PEER_DEAD_MS, "iteration %d: noticed %lld ms after the kill", it,
              (long long)latency);
        tachyon_bus_destroy(bus);
    }
    printf("  worst kill-to-PEER_DEAD: %lld ms\n", (long long)worst);
    munmap(sh, 4096);
    sec_case_end();
}

/* Consumer child: reads with small random delays, then is killed. */
static void __attribute__((noreturn)) consumer_child(const char *path, struct shared *sh, uint64_t seed,
                                                     int reads)
{
    tachyon_bus_t *bus = child_connect(path, sh);
    for (int i = 0; reads < 0 || i < reads; i++) {
        uint32_t type;
        size_t size;
        if (tachyon_acquire_rx_timeout(bus, &type, &size, SPIN, 5000) == NULL)
            _exit(4);
        tachyon_commit_rx(bus);
        if (sec_rand(&seed) % 64 == 0)
            sec_sleep_ms(1);
    }
    pause(); /* alive, not reading: the ring fills */
    _exit(0);
}

static void test_consumer_killed(void)
{
    sec_case_begin("consumer SIGKILLed, producer blocked on full ring x50");
    uint64_t seed = 0xD1B54A32D192ED03ULL ^ (uint64_t)getpid();
    struct shared *sh = shared_page();
    int64_t worst = 0;
    for (int it = 0; it < ITERATIONS && !sec_case_failed; it++) {
        char path[108];
        sec_socket_path(path, sizeof(path), "cdie");
        memset(sh, 0, sizeof(*sh));
        /* Half the runs: the consumer reads a while, so the kill may land
         * mid-read; the other half it never reads and the ring is full. */
        int reads = it % 2 ? -1 : 0;
        pid_t pid = fork();
        if (pid == 0)
            consumer_child(path, sh, sec_rand(&seed), reads);
        tachyon_bus_t *bus = parent_listen(path);
        CHECK(bus != NULL, "iteration %d: no bus", it);
        if (!bus) {
            sec_wait_child(pid, 1);
            break;
        }
        struct killer k = {pid, (int)(sec_rand(&seed) % 40), 0};
        pthread_t t;
        pthread_create(&t, NULL, killer_thread, &k);
        void *p;
        uint64_t sent = 0;
        while ((p = tachyon_acquire_tx_blocking(bus, 100, SPIN, 5000)) != NULL) {
            memcpy(p, &sent, sizeof(sent));
            tachyon_commit_tx(bus, 100, 1);
            sent++;
        }
        int64_t returned_at = sec_now_ms();
        pthread_join(t, NULL);
        sec_wait_child(pid, 2000);
        CHECK_ERR(tachyon_bus_last_error(bus), TACHYON_ERR_PEER_DEAD, "last error");
        CHECK(tachyon_get_state(bus) == TACHYON_STATE_DISCONNECTED, "iteration %d: state %d", it,
              (int)tachyon_get_state(bus));
        int64_t latency = returned_at - k.killed_at;
        if (latency > worst)
            worst = latency;
        CHECK(latency <= PEER_DEAD_MS, "iteration %d: noticed %lld ms after the kill", it,
              (long long)latency);
        /* Once dead, stays dead: no hang, no success. */
        CHECK(tachyon_acquire_tx_blocking(bus, 100, SPIN, 1000) == NULL &&
                  tachyon_bus_last_error(bus) == TACHYON_ERR_PEER_DEAD,
              "iteration %d: a second blocking acquire did not report PEER_DEAD", it);
        tachyon_bus_destroy(bus);
    }
    printf("  worst kill-to-PEER_DEAD: %lld ms\n", (long long)worst);
    munmap(sh, 4096);
    sec_case_end();
}

/* The child produces `count` messages, destroys its bus, records when, and
 * stays alive: only the segment's state can tell the parent. */
static void __attribute__((noreturn)) destroying_producer(const char *path, struct shared *sh, int count)
{
    tachyon_bus_t *bus = child_connect(path, sh);
    for (uint64_t seq = 0; seq < (uint64_t)count; seq++) {
        uint8_t *p = tachyon_acquire_tx_blocking(bus, 64, SPIN, 5000);
        if (!p)
            _exit(4);
        fill_message(p, seq, 64);
        tachyon_commit_tx(bus, 64, 7);
        atomic_store(&sh->committed, seq + 1);
    }
    atomic_store(&sh->event_ms, sec_now_ms());
    tachyon_bus_destroy(bus);
    sleep(3);
    _exit(0);
}

static void test_producer_destroys(void)
{
    sec_case_begin("producer destroys its bus (process alive): drained, PEER_CLOSED");
    struct shared *sh = shared_page();
    char path[108];
    sec_socket_path(path, sizeof(path), "pdestroy");
    const int count = 1000;
    pid_t pid = fork();
    if (pid == 0)
        destroying_producer(path, sh, count);
    tachyon_bus_t *bus = parent_listen(path);
    CHECK(bus != NULL, "no bus");
    if (bus) {
        int bad = 0;
        uint64_t received = consume_until_gone(bus, &bad);
        int64_t latency = sec_now_ms() - atomic_load(&sh->event_ms);
        CHECK(!bad, "message out of order");
        CHECK(received == (uint64_t)count, "received %llu of %d", (unsigned long long)received, count);
        CHECK(tachyon_get_state(bus) == TACHYON_STATE_DISCONNECTED, "state %d", (int)tachyon_get_state(bus));
        CHECK_ERR(tachyon_bus_last_error(bus), TACHYON_ERR_PEER_CLOSED, "last error (a clean close)");
        CHECK(latency <= PEER_DEAD_MS, "noticed %lld ms after destroy", (long long)latency);
        CHECK(kill(pid, 0) == 0, "the child should still be alive");
        tachyon_bus_destroy(bus);
    }
    kill(pid, SIGKILL);
    sec_wait_child(pid, 2000);
    munmap(sh, 4096);
    sec_case_end();
}

/* The consumer child destroys its bus without reading; the producer, blocked
 * on the full ring, must learn it although the child process lives on. */
static void __attribute__((noreturn)) destroying_consumer(const char *path, struct shared *sh)
{
    tachyon_bus_t *bus = child_connect(path, sh);
    sec_sleep_ms(50);
    atomic_store(&sh->event_ms, sec_now_ms());
    tachyon_bus_destroy(bus);
    sleep(3);
    _exit(0);
}

static void test_consumer_destroys(void)
{
    sec_case_begin("consumer destroys its bus (process alive): producer PEER_CLOSED");
    struct shared *sh = shared_page();
    char path[108];
    sec_socket_path(path, sizeof(path), "cdestroy");
    pid_t pid = fork();
    if (pid == 0)
        destroying_consumer(path, sh);
    tachyon_bus_t *bus = parent_listen(path);
    CHECK(bus != NULL, "no bus");
    if (bus) {
        void *p;
        while ((p = tachyon_acquire_tx_blocking(bus, 200, SPIN, 5000)) != NULL)
            tachyon_commit_tx(bus, 200, 1);
        int64_t latency = sec_now_ms() - atomic_load(&sh->event_ms);
        CHECK_ERR(tachyon_bus_last_error(bus), TACHYON_ERR_PEER_CLOSED, "last error (a clean close)");
        CHECK(strstr(tachyon_error_message(TACHYON_ERR_PEER_CLOSED), "consumer") != NULL,
              "the message names the consumer: %s", tachyon_error_message(TACHYON_ERR_PEER_CLOSED));
        CHECK(tachyon_get_state(bus) == TACHYON_STATE_DISCONNECTED, "state %d", (int)tachyon_get_state(bus));
        CHECK(latency <= PEER_DEAD_MS, "noticed %lld ms after destroy", (long long)latency);
        CHECK(tachyon_peer_alive(bus) == 0, "tachyon_peer_alive says alive");
        tachyon_bus_destroy(bus);
    }
    kill(pid, SIGKILL);
    sec_wait_child(pid, 2000);
    munmap(sh, 4096);
    sec_case_end();
}

int main(void)
{
    sec_watchdog(120);
    test_producer_killed();
    test_consumer_killed();
    test_producer_destroys();
    test_consumer_destroys();
    return sec_finish();
}
