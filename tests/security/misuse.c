/*
 * misuse.c - promises held under misuse and faults: two threads on one
 * handle, a handle used in a fork()ed child, a peer that exec()s, a listener
 * that accepts and never answers, timeouts with long spin phases, forged
 * batch views, commits larger than the acquire, a ring a peer declared
 * fatal, polling consumers whose producer was killed, and a handle destroyed
 * by one holder while another still waits on it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

/* A peer's end must be seen this soon, on a loaded machine too. */
#define NOTICE_MS 250
/* What a timeout may overrun: 10 ms plus a scheduling slice, generously. */
#define TIMEOUT_SLACK_MS 150

struct shared {
    _Atomic int64_t event_ms;
    _Atomic int ready;
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

static tachyon_bus_t *listen_for_child(const char *path, size_t capacity)
{
    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, capacity);
    opts.timeout_ms = 5000;
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = tachyon_bus_listen_ex(path, &opts, &bus);
    CHECK_ERR(err, TACHYON_SUCCESS, "listen");
    return bus;
}

static tachyon_bus_t *child_connect(const char *path)
{
    alarm(20);
    tachyon_bus_t *bus = NULL;
    if (tachyon_bus_connect_timeout(path, 5000, &bus) != TACHYON_SUCCESS)
        _exit(3);
    return bus;
}

/* ---- Two threads on one handle ------------------------------------------------ */

struct thread_errors {
    tachyon_bus_t *bus;
    atomic_int stop;
    long wrong; /* errors of the other side seen by this one */
    long seen;
};

static void *produce_until_full(void *arg)
{
    struct thread_errors *t = arg;
    while (!atomic_load(&t->stop)) {
        if (tachyon_send(t->bus, "0123456789abcdef", 16, 1) == TACHYON_SUCCESS)
            continue;
        tachyon_error_t err = tachyon_bus_last_error(t->bus);
        t->seen++;
        if (err != TACHYON_ERR_FULL)
            t->wrong++;
    }
    return NULL;
}

static void *consume_when_empty(void *arg)
{
    struct thread_errors *t = arg;
    uint32_t type;
    size_t size;
    for (long i = 0; i < 2000000; i++) {
        if (tachyon_acquire_rx(t->bus, &type, &size)) {
            tachyon_commit_rx(t->bus);
            continue;
        }
        t->seen++;
        if (tachyon_bus_last_error(t->bus) != TACHYON_ERR_EMPTY)
            t->wrong++;
    }
    return NULL;
}

static void test_errors_per_thread(void)
{
    sec_case_begin("a producer thread and a consumer thread on one handle: each sees its own errors");
    tachyon_bus_t *l, *c;
    if (sec_bus_pair(1024, &l, &c) != 0) {
        CHECK(0, "no pair");
        sec_case_end();
        return;
    }
    /* One handle, both sides: the ring loops back to itself. */
    struct thread_errors tx = {l, 0, 0, 0}, rx = {l, 0, 0, 0};
    pthread_t pt, ct;
    pthread_create(&pt, NULL, produce_until_full, &tx);
    pthread_create(&ct, NULL, consume_when_empty, &rx);
    pthread_join(ct, NULL);
    atomic_store(&tx.stop, 1);
    pthread_join(pt, NULL);
    CHECK(tx.wrong == 0, "the producer thread saw %ld errors that were not FULL (of %ld)", tx.wrong, tx.seen);
    CHECK(rx.wrong == 0, "the consumer thread saw %ld errors that were not EMPTY (of %ld)", rx.wrong, rx.seen);
    CHECK(tx.seen > 0 && rx.seen > 0, "both threads failed some calls (%ld, %ld)", tx.seen, rx.seen);
    tachyon_bus_destroy(l);
    tachyon_bus_destroy(c);
    sec_case_end();
}

/* ---- fork() --------------------------------------------------------------- */

static void test_forked_child(void)
{
    sec_case_begin("a fork()ed child gets ERR_FORKED from every call and crashes on none");
    tachyon_bus_t *l, *c;
    if (sec_bus_pair(4096, &l, &c) != 0) {
        CHECK(0, "no pair");
        sec_case_end();
        return;
    }
    CHECK(tachyon_acquire_tx(l, 8) != NULL, "acquire before the fork");
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        uint32_t type;
        size_t size;
        tachyon_msg_view_t views[4];
        bad |= tachyon_commit_tx(l, 8, 1) != TACHYON_ERR_FORKED;
        bad |= tachyon_rollback_tx(l) != TACHYON_ERR_FORKED;
        bad |= tachyon_acquire_tx(c, 8) != NULL || tachyon_bus_last_error(c) != TACHYON_ERR_FORKED;
        bad |= tachyon_send(c, "x", 1, 1) != TACHYON_ERR_FORKED;
        bad |= tachyon_send_batch(c, "x", 1, 1, 1) != 0 || tachyon_bus_last_error(c) != TACHYON_ERR_FORKED;
        bad |= tachyon_acquire_rx(c, &type, &size) != NULL || tachyon_bus_last_error(c) != TACHYON_ERR_FORKED;
        bad |= tachyon_acquire_rx_blocking(c, &type, &size, 10) != NULL;
        bad |= tachyon_drain_batch_timeout(c, views, 4, 0, 10) != 0;
        bad |= tachyon_commit_rx(c) != TACHYON_ERR_FORKED;
        bad |= tachyon_peer_alive(c) != 0;
        bad |= tachyon_get_state(c) != TACHYON_STATE_UNKNOWN;
        tachyon_flush(l);
        tachyon_bus_set_polling_mode(c, 1);
        tachyon_bus_destroy(l);
        tachyon_bus_destroy(c);
        _exit(bad ? 1 : 0);
    }
    int status = sec_wait_child(pid, 10000);
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
    /* The parent's handles are untouched. */
    CHECK_ERR(tachyon_commit_tx(l, 8, 7), TACHYON_SUCCESS, "parent's commit after the child left");
    uint32_t type = 0;
    size_t size = 0;
    CHECK(tachyon_acquire_rx_timeout(c, &type, &size, 0, 1000) != NULL && type == 7, "parent receives");
    tachyon_bus_destroy(l);
    tachyon_bus_destroy(c);
    sec_case_end();
}

/* ---- exec() ---------------------------------------------------------------- */

static void test_peer_execs(void)
{
    sec_case_begin("a producer that exec()s (process alive, segment gone): PEER_DEAD, after its messages");
    struct shared *sh = shared_page();
    char path[108];
    sec_socket_path(path, sizeof(path), "exec");
    pid_t pid = fork();
    if (pid == 0) {
        tachyon_bus_t *bus = child_connect(path);
        for (int i = 0; i < 3; i++)
            tachyon_send(bus, &i, sizeof(i), 1);
        atomic_store(&sh->event_ms, sec_now_ms());
        execl("/bin/sleep", "sleep", "20", (char *)NULL);
        _exit(4);
    }
    tachyon_bus_t *bus = listen_for_child(path, 4096);
    int got = 0;
    uint32_t type;
    size_t size;
    while (bus && tachyon_acquire_rx_blocking(bus, &type, &size, 100)) {
        got++;
        tachyon_commit_rx(bus);
    }
    int64_t latency = sec_now_ms() - atomic_load(&sh->event_ms);
    if (bus) {
        CHECK(got == 3, "received %d of 3", got);
        CHECK_ERR(tachyon_bus_last_error(bus), TACHYON_ERR_PEER_DEAD, "how it ended");
        CHECK(latency <= NOTICE_MS + 50, "noticed %lld ms after the exec", (long long)latency);
        CHECK(kill(pid, 0) == 0, "the exec'ed process should still be alive");
        tachyon_bus_destroy(bus);
    }
    kill(pid, SIGKILL);
    sec_wait_child(pid, 2000);
    munmap(sh, 4096);
    sec_case_end();
}

/* ---- A listener that accepts and never answers -------------------------------- */

struct silent {
    int fd;
    atomic_int stop;
};

static void *accept_and_stay_silent(void *arg)
{
    struct silent *s = arg;
    int conns[4], n = 0;
    while (!atomic_load(&s->stop) && n < 4) {
        int c = accept(s->fd, NULL, NULL);
        if (c >= 0)
            conns[n++] = c;
    }
    while (!atomic_load(&s->stop))
        sec_sleep_ms(5);
    for (int i = 0; i < n; i++)
        close(conns[i]);
    return NULL;
}

static void test_silent_listener(void)
{
    sec_case_begin("a listener that accepts and never sends: connect's timeout holds");
    char path[108];
    sec_socket_path(path, sizeof(path), "silent");
    struct silent s = {socket(AF_UNIX, SOCK_STREAM, 0), 0};
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
    CHECK(bind(s.fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && listen(s.fd, 4) == 0, "bind");
    pthread_t t;
    pthread_create(&t, NULL, accept_and_stay_silent, &s);
    for (int timeout = 100; timeout <= 300; timeout += 200) {
        tachyon_bus_t *bus = NULL;
        int64_t t0 = sec_now_ms();
        tachyon_error_t err = tachyon_bus_connect_timeout(path, timeout, &bus);
        int64_t took = sec_now_ms() - t0;
        CHECK_ERR(err, TACHYON_ERR_TIMEOUT, "connect to a silent listener");
        CHECK(took >= timeout - 5 && took <= timeout + TIMEOUT_SLACK_MS, "timeout %d ms took %lld ms", timeout,
              (long long)took);
        CHECK(strstr(tachyon_error_message(err), "sent no handshake") != NULL, "message: %s",
              tachyon_error_message(err));
    }
    atomic_store(&s.stop, 1);
    shutdown(s.fd, SHUT_RDWR);
    close(s.fd);
    pthread_join(t, NULL);
    unlink(path);
    sec_case_end();
}

/* ---- Waiting for room ---------------------------------------------------------- */

static void test_tx_blocking_timeout_while_spinning(void)
{
    sec_case_begin("acquire_tx_blocking: the timeout holds in a long spin phase");
    tachyon_bus_t *l, *c;
    if (sec_bus_pair(256, &l, &c) != 0) {
        CHECK(0, "no pair");
        sec_case_end();
        return;
    }
    while (tachyon_send(l, "x", 1, 1) == TACHYON_SUCCESS)
        ;
    int64_t t0 = sec_now_ms();
    void *p = tachyon_acquire_tx_blocking(l, 1, UINT32_MAX, 100);
    int64_t took = sec_now_ms() - t0;
    CHECK(p == NULL, "no room appeared");
    CHECK_ERR(tachyon_bus_last_error(l), TACHYON_ERR_TIMEOUT, "error");
    CHECK(took >= 95 && took <= 100 + TIMEOUT_SLACK_MS, "100 ms timeout took %lld ms", (long long)took);
    tachyon_bus_destroy(l);
    tachyon_bus_destroy(c);
    sec_case_end();
}

static void test_tx_blocking_sees_killed_consumer(void)
{
    sec_case_begin("acquire_tx_blocking spinning: a killed consumer is seen within 250 ms");
    struct shared *sh = shared_page();
    char path[108];
    sec_socket_path(path, sizeof(path), "txkill");
    pid_t pid = fork();
    if (pid == 0) {
        child_connect(path);
        atomic_store(&sh->ready, 1);
        pause();
        _exit(0);
    }
    tachyon_bus_t *bus = listen_for_child(path, 256);
    while (bus && tachyon_send(bus, "x", 1, 1) == TACHYON_SUCCESS)
        ;
    while (!atomic_load(&sh->ready))
        sec_sleep_ms(1);
    int64_t killed = sec_now_ms();
    kill(pid, SIGKILL);
    void *p = bus ? tachyon_acquire_tx_blocking(bus, 1, UINT32_MAX, 5000) : NULL;
    int64_t took = sec_now_ms() - killed;
    if (bus) {
        CHECK(p == NULL, "room appeared");
        CHECK_ERR(tachyon_bus_last_error(bus), TACHYON_ERR_PEER_DEAD, "error");
        CHECK(took <= NOTICE_MS, "noticed after %lld ms", (long long)took);
        CHECK(strstr(tachyon_error_message(TACHYON_ERR_PEER_DEAD), "consumer") != NULL, "message: %s",
              tachyon_error_message(TACHYON_ERR_PEER_DEAD));
        tachyon_bus_destroy(bus);
    }
    sec_wait_child(pid, 2000);
    munmap(sh, 4096);
    sec_case_end();
}

/* ---- Polling consumers ---------------------------------------------------------- */

enum poll_kind { POLL_RX, POLL_SPIN, POLL_BATCH };
static const char *const poll_names[] = {"acquire_rx", "acquire_rx_spin(100)", "acquire_rx_batch"};

/* One non-blocking receive of `kind`; 1 got a message (released), 0 none. */
static int poll_once(tachyon_bus_t *bus, enum poll_kind kind)
{
    uint32_t type;
    size_t size;
    tachyon_msg_view_t views[8];
    switch (kind) {
    case POLL_RX:
        if (!tachyon_acquire_rx(bus, &type, &size))
            return 0;
        tachyon_commit_rx(bus);
        return 1;
    case POLL_SPIN:
        if (!tachyon_acquire_rx_spin(bus, &type, &size, 100))
            return 0;
        tachyon_commit_rx(bus);
        return 1;
    default: {
        size_t n = tachyon_acquire_rx_batch(bus, views, 8);
        if (n)
            tachyon_commit_rx_batch(bus, views, n);
        return n > 0 ? (int)n : 0;
    }
    }
}

static void test_polling_consumer_after_kill(enum poll_kind kind)
{
    char name[128];
    snprintf(name, sizeof(name), "polling with %s: PEER_DEAD within 250 ms of kill -9, after 100 messages",
             poll_names[kind]);
    sec_case_begin(name);
    struct shared *sh = shared_page();
    char path[108];
    sec_socket_path(path, sizeof(path), "poll");
    pid_t pid = fork();
    if (pid == 0) {
        tachyon_bus_t *bus = child_connect(path);
        for (int i = 0; i < 100; i++)
            tachyon_send(bus, &i, sizeof(i), 1);
        atomic_store(&sh->ready, 1);
        pause();
        _exit(0);
    }
    tachyon_bus_t *bus = listen_for_child(path, 1 << 16);
    while (!atomic_load(&sh->ready))
        sec_sleep_ms(1);
    int64_t killed = sec_now_ms();
    kill(pid, SIGKILL);
    int got = 0;
    int64_t deadline = killed + 5000;
    while (bus && sec_now_ms() < deadline) {
        int n = poll_once(bus, kind);
        if (n) {
            got += n;
            continue;
        }
        if (tachyon_bus_last_error(bus) != TACHYON_ERR_EMPTY)
            break;
    }
    int64_t took = sec_now_ms() - killed;
    if (bus) {
        CHECK(got == 100, "received %d of 100", got);
        CHECK_ERR(tachyon_bus_last_error(bus), TACHYON_ERR_PEER_DEAD, "how polling ended");
        CHECK(took <= NOTICE_MS, "noticed after %lld ms", (long long)took);
        CHECK(tachyon_get_state(bus) == TACHYON_STATE_DISCONNECTED, "state %d", (int)tachyon_get_state(bus));
        tachyon_bus_destroy(bus);
    }
    sec_wait_child(pid, 2000);
    munmap(sh, 4096);
    sec_case_end();
}

/* ---- Forged views, oversized commits, a peer's FATAL ------------------------------ */

static void test_forged_views(void)
{
    sec_case_begin("commit_rx_batch refuses views it did not hand out; nothing is released");
    tachyon_bus_t *l, *c;
    if (sec_bus_pair(4096, &l, &c) != 0) {
        CHECK(0, "no pair");
        sec_case_end();
        return;
    }
    for (int i = 0; i < 3; i++)
        tachyon_send(l, "abcdefgh", 8, (uint32_t)i);
    tachyon_msg_view_t v[4], forged[4];
    size_t n = tachyon_acquire_rx_batch(c, v, 4);
    CHECK(n == 3, "batch of %zu", n);
    uint64_t tail = atomic_load(&c->hdr->tail);
    memcpy(forged, v, sizeof(v));
    forged[1].ptr = (const uint8_t *)forged[1].ptr + 4; /* mid-message */
    CHECK_ERR(tachyon_commit_rx_batch(c, forged, 3), TACHYON_ERR_STATE, "a moved pointer");
    memcpy(forged, v, sizeof(v));
    forged[2].reserved_ += 64; /* a slot that ends past the message */
    CHECK_ERR(tachyon_commit_rx_batch(c, forged, 3), TACHYON_ERR_STATE, "a longer slot");
    memcpy(forged, v, sizeof(v));
    forged[0].reserved_ = 12; /* not a message boundary at all */
    CHECK_ERR(tachyon_commit_rx_batch(c, forged, 1), TACHYON_ERR_STATE, "a misaligned end");
    CHECK_ERR(tachyon_commit_rx_batch(c, v, 4), TACHYON_ERR_STATE, "more views than handed out");
    CHECK(atomic_load(&c->hdr->tail) == tail, "a refused commit published a tail");
    CHECK(tachyon_get_state(c) == TACHYON_STATE_READY && tachyon_get_state(l) == TACHYON_STATE_READY,
          "a refused commit made the ring fatal");
    CHECK_ERR(tachyon_commit_rx_batch(c, v, 2), TACHYON_SUCCESS, "the real views, a prefix");
    CHECK_ERR(tachyon_commit_rx_batch(c, v + 2, 1), TACHYON_SUCCESS, "the rest");
    CHECK(tachyon_acquire_rx(c, NULL, NULL) == NULL, "all three released once");
    tachyon_bus_destroy(l);
    tachyon_bus_destroy(c);
    sec_case_end();
}

static void test_commit_larger_than_acquired(void)
{
    sec_case_begin("commit_tx larger than the acquire is refused; the slot stays acquired");
    tachyon_bus_t *l, *c;
    if (sec_bus_pair(4096, &l, &c) != 0) {
        CHECK(0, "no pair");
        sec_case_end();
        return;
    }
    CHECK(tachyon_acquire_tx(l, 100) != NULL, "acquire 100");
    CHECK_ERR(tachyon_commit_tx(l, 128, 1), TACHYON_ERR_INVALID_SZ, "commit 128 of an acquired 100");
    CHECK_ERR(tachyon_commit_tx(l, 101, 1), TACHYON_ERR_INVALID_SZ, "commit 101");
    CHECK(tachyon_acquire_rx(c, NULL, NULL) == NULL, "nothing was published");
    CHECK_ERR(tachyon_commit_tx(l, 100, 1), TACHYON_SUCCESS, "commit 100");
    size_t size = 0;
    CHECK(tachyon_acquire_rx(c, NULL, &size) != NULL && size == 100, "the message, size %zu", size);
    tachyon_bus_destroy(l);
    tachyon_bus_destroy(c);
    sec_case_end();
}

static void test_peer_declared_fatal(void)
{
    sec_case_begin("a ring the peer declared FATAL: data calls refuse, as get_state says");
    tachyon_bus_t *l, *c;
    if (sec_bus_pair(4096, &l, &c) != 0) {
        CHECK(0, "no pair");
        sec_case_end();
        return;
    }
    tachyon_send(l, "msg", 3, 1);
    atomic_store(&l->hdr->state, TACHYON_STATE_FATAL_ERROR); /* what a peer's corruption check does */
    CHECK(tachyon_get_state(c) == TACHYON_STATE_FATAL_ERROR, "state %d", (int)tachyon_get_state(c));
    CHECK(tachyon_acquire_rx(c, NULL, NULL) == NULL, "a message handed out from a fatal ring");
    CHECK_ERR(tachyon_bus_last_error(c), TACHYON_ERR_FATAL, "error");
    CHECK(tachyon_acquire_tx(l, 8) == NULL && tachyon_bus_last_error(l) == TACHYON_ERR_FATAL, "producer refused");
    tachyon_bus_destroy(l);
    tachyon_bus_destroy(c);
    sec_case_end();
}

static void test_path_errors_name_the_cause(void)
{
    sec_case_begin("socket-path errors name the path and the cause");
    tachyon_bus_t *bus = NULL;
    CHECK_ERR(tachyon_bus_listen("", 4096, &bus), TACHYON_ERR_INVALID_SZ, "empty path");
    CHECK(strstr(tachyon_error_message(TACHYON_ERR_INVALID_SZ), "empty") != NULL, "message: %s",
          tachyon_error_message(TACHYON_ERR_INVALID_SZ));
    tachyon_error_t err = tachyon_bus_listen("/nonexistent-dir/x.sock", 4096, &bus);
    CHECK_ERR(err, TACHYON_ERR_NETWORK, "listen in a missing directory");
    const char *m = tachyon_error_message(err);
    CHECK(strstr(m, "/nonexistent-dir/x.sock") && strstr(m, "No such file") && strstr(m, "directory does not exist"),
          "message: %s", m);
    CHECK(strstr(m, "listener running") == NULL, "a listen error must not ask for a listener: %s", m);
    err = tachyon_bus_connect("/nonexistent-dir/x.sock", &bus);
    CHECK_ERR(err, TACHYON_ERR_NETWORK, "connect to a missing path");
    CHECK(strstr(tachyon_error_message(err), "nothing listens") != NULL, "message: %s", tachyon_error_message(err));
    sec_case_end();
}

/* ---- Destroyed by one holder while another waits ---------------------------------- */

struct waiter {
    tachyon_bus_t *bus;
    const void *got;
};

static void *wait_on_bus(void *arg)
{
    struct waiter *w = arg;
    uint32_t type;
    size_t size;
    w->got = tachyon_acquire_rx_timeout(w->bus, &type, &size, 100, 300);
    tachyon_bus_destroy(w->bus); /* this thread's reference */
    return NULL;
}

static void test_destroy_while_another_holder_waits(void)
{
    sec_case_begin("destroy by one holder while another waits: mapped until the last reference");
    tachyon_bus_t *l, *c;
    if (sec_bus_pair(4096, &l, &c) != 0) {
        CHECK(0, "no pair");
        sec_case_end();
        return;
    }
    tachyon_bus_ref(c);
    struct waiter w = {c, NULL};
    pthread_t t;
    pthread_create(&t, NULL, wait_on_bus, &w);
    sec_sleep_ms(50);
    tachyon_bus_destroy(c); /* ours; the waiter still holds one (ASan sees any use after free) */
    pthread_join(t, NULL);
    CHECK(w.got == NULL, "a message appeared from nowhere");
    CHECK(tachyon_get_state(l) == TACHYON_STATE_DISCONNECTED || !tachyon_peer_alive(l),
          "the last reference closed the bus");
    tachyon_bus_destroy(l);
    sec_case_end();
}

int main(void)
{
    sec_watchdog(180);
    test_errors_per_thread();
    test_forked_child();
    test_peer_execs();
    test_silent_listener();
    test_tx_blocking_timeout_while_spinning();
    test_tx_blocking_sees_killed_consumer();
    test_polling_consumer_after_kill(POLL_RX);
    test_polling_consumer_after_kill(POLL_SPIN);
    test_polling_consumer_after_kill(POLL_BATCH);
    test_forged_views();
    test_commit_larger_than_acquired();
    test_peer_declared_fatal();
    test_path_errors_name_the_cause();
    test_destroy_while_another_holder_waits();
    return sec_finish();
}
