/*
 * test_rpc.c - request/reply between two handles of this library: calls and
 * replies (copied and zero-copy), correlation ids, roles, pipelining and its
 * ordering rule, abandoned calls, timeouts, large messages on small rings,
 * waiting for room, the peer's end (clean close, kill -9 on either side),
 * cross-kind connections, fork(), and a caller whose calling and waiting run
 * in two threads.
 */
#include <signal.h>
#include <sys/wait.h>

#include "helpers.h"

#define SPIN 1000u
/* How soon a wait must learn that its peer died (the user's bound). */
#define DEATH_BOUND_MS 250

/* ---- An in-process pair: the server listens in a thread. ------------------- */

struct listen_arg {
    const char *path;
    size_t cap_fwd, cap_rev;
    tachyon_rpc_bus_t *rpc;
    tachyon_error_t err;
};

static void *listen_thread(void *p)
{
    struct listen_arg *a = p;
    a->err = tachyon_rpc_listen(a->path, a->cap_fwd, a->cap_rev, &a->rpc);
    return NULL;
}

static void make_pair(size_t cap_fwd, size_t cap_rev, tachyon_rpc_bus_t **server, tachyon_rpc_bus_t **client)
{
    char path[108];
    t_socket_path(path, sizeof(path), "rpc");
    struct listen_arg a = {path, cap_fwd, cap_rev, NULL, TACHYON_SUCCESS};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, listen_thread, &a) == 0);
    tachyon_error_t err = tachyon_rpc_connect_timeout(path, 5000, client);
    pthread_join(th, NULL);
    if (err != TACHYON_SUCCESS || a.err != TACHYON_SUCCESS) {
        fprintf(stderr, "rpc pair: connect %s, listen %s\n", tachyon_strerror(err), tachyon_strerror(a.err));
        exit(T_EXIT_FAIL);
    }
    *server = a.rpc;
}

/* Serve one request and answer it with `reply` (its own type), checking what came. */
static void serve_and_reply(tachyon_rpc_bus_t *server, const char *want, uint32_t want_type, const char *reply,
                            uint32_t reply_type, uint64_t *cid_out)
{
    uint64_t cid = 0;
    uint32_t type = 0;
    size_t size = 0;
    const char *p = tachyon_rpc_serve(server, &cid, &type, &size, SPIN);
    REQUIRE(p != NULL);
    CHECK_EQ(size, strlen(want));
    CHECK(memcmp(p, want, size) == 0);
    CHECK_EQ(type, want_type);
    CHECK_ERR(tachyon_rpc_commit_serve(server), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_reply(server, cid, reply, strlen(reply), reply_type), TACHYON_SUCCESS);
    if (cid_out)
        *cid_out = cid;
}

static void expect_reply(tachyon_rpc_bus_t *client, uint64_t cid, const char *want, uint32_t want_type)
{
    size_t size = 0;
    uint32_t type = 0;
    const char *p = tachyon_rpc_wait(client, cid, &size, &type, SPIN);
    if (!p) {
        fprintf(stderr, "wait(%llu): %s\n", (unsigned long long)cid,
                tachyon_error_message(tachyon_rpc_last_error(client)));
        t_failures++;
        return;
    }
    CHECK_EQ(size, strlen(want));
    CHECK(memcmp(p, want, size) == 0);
    CHECK_EQ(type, want_type);
    CHECK_ERR(tachyon_rpc_commit_rx(client), TACHYON_SUCCESS);
}

/* ---- Calls and replies ------------------------------------------------------- */

static void test_round_trips_and_ids(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(4096, 8192, &server, &client);
    CHECK_EQ(tachyon_rpc_get_state(server), TACHYON_STATE_READY);
    CHECK_EQ(tachyon_rpc_get_state(client), TACHYON_STATE_READY);
    CHECK_EQ(tachyon_rpc_max_request(client), 4096 - 64);
    CHECK_EQ(tachyon_rpc_max_reply(client), 8192 - 64);

    for (uint64_t i = 1; i <= 5; i++) {
        uint64_t cid = 0, served = 0;
        CHECK_ERR(tachyon_rpc_call(client, "ping", 4, 7, &cid), TACHYON_SUCCESS);
        CHECK_EQ(cid, i); /* ids are 1, 2, 3, ... on a fresh connection */
        serve_and_reply(server, "ping", 7, "pong!", 9, &served);
        CHECK_EQ(served, cid);
        expect_reply(client, cid, "pong!", 9); /* the reply's type is its own */
    }

    /* Types: only bits 15..0 are reported; an empty payload is a message. */
    uint64_t cid;
    CHECK_ERR(tachyon_rpc_call(client, "", 0, 0x50009, &cid), TACHYON_SUCCESS);
    serve_and_reply(server, "", 9, "", 0xFFFF, NULL);
    expect_reply(client, cid, "", 0xFFFF);

    tachyon_rpc_destroy(client);
    tachyon_rpc_destroy(server);
}

static void test_zero_copy_and_slot_rules(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(4096, 4096, &server, &client);

    /* Acquiring 8 bytes gives a whole 64-byte slot: a commit may use it all. */
    char *slot = tachyon_rpc_acquire_tx(client, 8);
    REQUIRE(slot != NULL);
    CHECK(((uintptr_t)slot & 63) == 0);
    memset(slot, 'a', 64);
    uint64_t cid = 0;
    CHECK_ERR(tachyon_rpc_commit_call(client, 65, 1, &cid), TACHYON_ERR_INVALID_SZ);
    CHECK_EQ(cid, 0); /* nothing sent, *out_cid untouched */
    CHECK_ERR(tachyon_rpc_commit_call(client, 64, 1, &cid), TACHYON_SUCCESS); /* the slot stayed acquired */
    CHECK_EQ(cid, 2); /* the failed commit used up id 1, as published */

    /* A second acquire replaces the first; rollback gives it back unsent. */
    CHECK(tachyon_rpc_acquire_tx(client, 100) != NULL);
    slot = tachyon_rpc_acquire_tx(client, 100);
    REQUIRE(slot != NULL);
    memcpy(slot, "second", 6);
    CHECK_ERR(tachyon_rpc_commit_call(client, 6, 2, &cid), TACHYON_SUCCESS);
    CHECK_EQ(cid, 3);
    CHECK(tachyon_rpc_acquire_tx(client, 10) != NULL);
    tachyon_rpc_rollback_call(client);
    /* Rolling back with nothing acquired is an error, not a fatal ring. */
    tachyon_rpc_rollback_call(client);
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_STATE);
    CHECK_ERR(tachyon_rpc_commit_call(client, 1, 1, &cid), TACHYON_ERR_STATE);
    CHECK_EQ(tachyon_rpc_get_state(client), TACHYON_STATE_READY);

    uint64_t got_cid;
    uint32_t type;
    size_t size;
    const char *p = tachyon_rpc_serve(server, &got_cid, &type, &size, SPIN);
    REQUIRE(p != NULL);
    CHECK_EQ(got_cid, 2);
    CHECK_EQ(size, 64);
    CHECK(p[0] == 'a' && p[63] == 'a');
    CHECK_ERR(tachyon_rpc_commit_serve(server), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_commit_serve(server), TACHYON_ERR_STATE); /* nothing held */
    p = tachyon_rpc_serve(server, &got_cid, &type, &size, SPIN);
    REQUIRE(p != NULL);
    CHECK_EQ(got_cid, 3);
    CHECK(size == 6 && memcmp(p, "second", 6) == 0);
    /* Serving again before commit_serve returns the same request. */
    p = tachyon_rpc_serve(server, &got_cid, &type, &size, SPIN);
    CHECK(p != NULL && got_cid == 3 && size == 6);
    CHECK_ERR(tachyon_rpc_commit_serve(server), TACHYON_SUCCESS);

    /* Zero-copy replies: cid 0 is refused and the slot stays acquired. */
    char *r = tachyon_rpc_acquire_reply_tx(server, 32);
    REQUIRE(r != NULL);
    memcpy(r, "zc", 2);
    CHECK_ERR(tachyon_rpc_commit_reply(server, 0, 2, 5), TACHYON_ERR_INVALID_SZ);
    CHECK_ERR(tachyon_rpc_commit_reply(server, 2, 2, 5), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_reply(server, 0, "x", 1, 5), TACHYON_ERR_INVALID_SZ);
    CHECK_ERR(tachyon_rpc_reply(server, 3, "x", 1, 5), TACHYON_SUCCESS);
    tachyon_rpc_rollback_reply(server);
    CHECK_EQ(tachyon_rpc_last_error(server), TACHYON_ERR_STATE);
    expect_reply(client, 2, "zc", 5);
    expect_reply(client, 3, "x", 5);
    CHECK_ERR(tachyon_rpc_commit_rx(client), TACHYON_ERR_STATE);

    /* Too large for the ring: INVALID_SZ, not FULL. */
    CHECK_ERR(tachyon_rpc_call(client, slot, 4096, 1, &cid), TACHYON_ERR_INVALID_SZ);
    CHECK(tachyon_rpc_acquire_reply_tx(server, 5000) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(server), TACHYON_ERR_INVALID_SZ);

    /* NULL arguments. */
    CHECK_ERR(tachyon_rpc_call(client, NULL, 0, 1, &cid), TACHYON_ERR_NULL_PTR);
    CHECK_ERR(tachyon_rpc_call(client, "x", 1, 1, NULL), TACHYON_ERR_NULL_PTR);
    CHECK_ERR(tachyon_rpc_call(NULL, "x", 1, 1, &cid), TACHYON_ERR_NULL_PTR);
    CHECK(tachyon_rpc_wait(client, 1, NULL, &type, SPIN) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_NULL_PTR);
    CHECK(tachyon_rpc_serve(NULL, &got_cid, &type, &size, SPIN) == NULL);
    CHECK_ERR(tachyon_rpc_commit_rx(NULL), TACHYON_ERR_NULL_PTR);
    CHECK_EQ(tachyon_rpc_get_state(NULL), TACHYON_STATE_UNKNOWN);
    tachyon_rpc_destroy(NULL);
    tachyon_rpc_set_polling_mode(NULL, 1);

    tachyon_rpc_destroy(client);
    tachyon_rpc_destroy(server);
}

static void test_roles_are_enforced(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(1024, 1024, &server, &client);
    uint64_t cid;
    uint32_t type;
    size_t size;
    CHECK_ERR(tachyon_rpc_call(server, "x", 1, 1, &cid), TACHYON_ERR_STATE);
    CHECK(strstr(tachyon_error_message(TACHYON_ERR_STATE), "caller") != NULL);
    CHECK(tachyon_rpc_acquire_tx(server, 8) == NULL);
    CHECK(tachyon_rpc_wait_timeout(server, 1, &size, &type, SPIN, 0) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(server), TACHYON_ERR_STATE);
    CHECK(tachyon_rpc_serve_timeout(client, &cid, &type, &size, SPIN, 0) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_STATE);
    CHECK_ERR(tachyon_rpc_reply(client, 1, "x", 1, 1), TACHYON_ERR_STATE);
    CHECK(tachyon_rpc_acquire_reply_tx(client, 8) == NULL);
    CHECK_ERR(tachyon_rpc_abandon(server, 1), TACHYON_ERR_STATE);
    /* Nothing reached the rings. */
    CHECK(tachyon_rpc_serve_timeout(server, &cid, &type, &size, SPIN, 0) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(server), TACHYON_ERR_TIMEOUT);
    CHECK_EQ(tachyon_rpc_get_state(server), TACHYON_STATE_READY);
    tachyon_rpc_destroy(client);
    tachyon_rpc_destroy(server);
}

/* ---- Pipelining and the order of replies ---------------------------------- */

static void test_pipelining_in_order(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(1 << 14, 1 << 14, &server, &client);
    enum { N = 40 };
    uint64_t cids[N];
    for (int i = 0; i < N; i++) {
        char req[16];
        snprintf(req, sizeof(req), "req%d", i);
        CHECK_ERR(tachyon_rpc_call(client, req, strlen(req), (uint32_t)i, &cids[i]), TACHYON_SUCCESS);
    }
    /* The server answers in the order it was asked (FIFO). */
    for (int i = 0; i < N; i++) {
        uint64_t cid;
        uint32_t type;
        size_t size;
        const char *p = tachyon_rpc_serve(server, &cid, &type, &size, SPIN);
        REQUIRE(p != NULL);
        CHECK_EQ(cid, cids[i]);
        CHECK_EQ(type, (uint32_t)i);
        char reply[24];
        int n = snprintf(reply, sizeof(reply), "ans:%.*s", (int)size, p);
        CHECK_ERR(tachyon_rpc_commit_serve(server), TACHYON_SUCCESS);
        CHECK_ERR(tachyon_rpc_reply(server, cid, reply, (size_t)n, 100 + (uint32_t)i), TACHYON_SUCCESS);
    }
    for (int i = 0; i < N; i++) {
        char want[24];
        snprintf(want, sizeof(want), "ans:req%d", i);
        expect_reply(client, cids[i], want, 100 + (uint32_t)i);
    }
    tachyon_rpc_destroy(client);
    tachyon_rpc_destroy(server);
}

static void test_wrong_order_is_an_error_not_a_fatal_ring(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(4096, 4096, &server, &client);
    uint64_t a, b, c;
    CHECK_ERR(tachyon_rpc_call(client, "a", 1, 1, &a), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_call(client, "b", 1, 1, &b), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_call(client, "c", 1, 1, &c), TACHYON_SUCCESS);
    serve_and_reply(server, "a", 1, "A", 1, NULL);
    serve_and_reply(server, "b", 1, "B", 1, NULL);
    serve_and_reply(server, "c", 1, "C", 1, NULL);

    size_t size;
    uint32_t type;
    CHECK(tachyon_rpc_wait(client, b, &size, &type, SPIN) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_WRONG_REPLY);
    const char *msg = tachyon_error_message(TACHYON_ERR_WRONG_REPLY);
    CHECK(strstr(msg, "answers call 1, not 2") != NULL);
    CHECK_EQ(tachyon_rpc_get_state(client), TACHYON_STATE_READY);
    CHECK_EQ(tachyon_rpc_get_state(server), TACHYON_STATE_READY);
    CHECK_ERR(tachyon_rpc_commit_rx(client), TACHYON_ERR_STATE); /* the reply was not handed out */
    expect_reply(client, a, "A", 1);                               /* still there */
    /* Id 0 takes whichever reply is next. */
    const char *p = tachyon_rpc_wait(client, 0, &size, &type, SPIN);
    CHECK(p != NULL && size == 1 && p[0] == 'B');
    CHECK_ERR(tachyon_rpc_commit_rx(client), TACHYON_SUCCESS);
    expect_reply(client, c, "C", 1);
    tachyon_rpc_destroy(client);
    tachyon_rpc_destroy(server);
}

static void test_abandoned_calls_are_dropped(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(4096, 4096, &server, &client);
    uint64_t a, b, c;
    CHECK_ERR(tachyon_rpc_call(client, "a", 1, 1, &a), TACHYON_SUCCESS);
    size_t size;
    uint32_t type;
    /* The server is slow: the wait times out, the caller gives up on a. */
    CHECK(tachyon_rpc_wait_timeout(client, a, &size, &type, SPIN, 20) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_TIMEOUT);
    CHECK_ERR(tachyon_rpc_abandon(client, a), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_abandon(client, 99), TACHYON_ERR_INVALID_SZ);
    CHECK_ERR(tachyon_rpc_abandon(client, 0), TACHYON_ERR_INVALID_SZ);
    CHECK_ERR(tachyon_rpc_call(client, "b", 1, 1, &b), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_call(client, "c", 1, 1, &c), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_abandon(client, c), TACHYON_SUCCESS);
    serve_and_reply(server, "a", 1, "late A", 1, NULL);
    serve_and_reply(server, "b", 1, "B", 1, NULL);
    serve_and_reply(server, "c", 1, "late C", 1, NULL);
    expect_reply(client, b, "B", 1); /* A's reply is dropped on the way */
    /* C's reply is dropped too, even by a wait for whichever comes next. */
    CHECK(tachyon_rpc_wait_timeout(client, 0, &size, &type, SPIN, 50) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_TIMEOUT);
    tachyon_rpc_destroy(client);
    tachyon_rpc_destroy(server);
}

/* ---- Timeouts --------------------------------------------------------------- */

static void test_timeouts(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(1024, 1024, &server, &client);
    uint64_t cid;
    uint32_t type;
    size_t size;
    uint64_t t0 = t_now_ns();
    CHECK(tachyon_rpc_serve_timeout(server, &cid, &type, &size, SPIN, 100) == NULL);
    uint64_t waited_ms = (t_now_ns() - t0) / 1000000;
    CHECK_EQ(tachyon_rpc_last_error(server), TACHYON_ERR_TIMEOUT);
    CHECK(waited_ms >= 99); /* deadlines are kept in whole milliseconds */
    CHECK(waited_ms < 5000);

    CHECK_ERR(tachyon_rpc_call(client, "q", 1, 1, &cid), TACHYON_SUCCESS);
    t0 = t_now_ns();
    CHECK(tachyon_rpc_wait_timeout(client, cid, &size, &type, SPIN, 100) == NULL);
    waited_ms = (t_now_ns() - t0) / 1000000;
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_TIMEOUT);
    CHECK(waited_ms >= 99 && waited_ms < 5000);
    CHECK(tachyon_rpc_wait_timeout(client, cid, &size, &type, SPIN, 0) == NULL); /* 0: only a look */
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_TIMEOUT);
    /* The call is still in flight: its reply comes to the next wait. */
    serve_and_reply(server, "q", 1, "r", 2, NULL);
    expect_reply(client, cid, "r", 2);
    tachyon_rpc_destroy(client);
    tachyon_rpc_destroy(server);
}

static void test_waiting_for_room(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(1024, 1024, &server, &client); /* eight 128-byte slots per ring */
    uint64_t cid;
    int sent = 0;
    while (tachyon_rpc_call(client, "0123456789", 10, 1, &cid) == TACHYON_SUCCESS)
        sent++;
    CHECK_EQ(sent, 8);
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_FULL);
    CHECK(tachyon_rpc_acquire_tx_timeout(client, 10, 50) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_TIMEOUT);
    /* One request served: room again for a waiting acquire. */
    uint32_t type;
    size_t size;
    CHECK(tachyon_rpc_serve(server, &cid, &type, &size, SPIN) != NULL);
    CHECK_ERR(tachyon_rpc_commit_serve(server), TACHYON_SUCCESS);
    char *slot = tachyon_rpc_acquire_tx_timeout(client, 10, 5000);
    CHECK(slot != NULL);
    if (slot)
        tachyon_rpc_rollback_call(client);
    /* Replies: the caller reads none, the reply ring fills. */
    for (int i = 0; i < 8; i++)
        CHECK_ERR(tachyon_rpc_reply(server, 1, "r", 1, 1), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_reply(server, 1, "r", 1, 1), TACHYON_ERR_FULL);
    CHECK(tachyon_rpc_acquire_reply_tx_timeout(server, 1, 30) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(server), TACHYON_ERR_TIMEOUT);
    tachyon_rpc_destroy(client);
    tachyon_rpc_destroy(server);
}

/* ---- Large messages on small rings ------------------------------------------- */

struct echo_arg {
    tachyon_rpc_bus_t *server;
    uint64_t served;
};

/* Echo every request back until the caller closes. */
static void *echo_server(void *p)
{
    struct echo_arg *a = p;
    for (;;) {
        uint64_t cid;
        uint32_t type;
        size_t size;
        const void *req = tachyon_rpc_serve(a->server, &cid, &type, &size, SPIN);
        if (!req)
            break;
        void *slot = tachyon_rpc_acquire_reply_tx_timeout(a->server, size, 10000);
        if (!slot)
            break;
        memcpy(slot, req, size);
        tachyon_rpc_commit_serve(a->server);
        if (tachyon_rpc_commit_reply(a->server, cid, size, type) != TACHYON_SUCCESS)
            break;
        a->served++;
    }
    return NULL;
}

/* The published layer stalls for good at the fourth 1000-byte call on 4 KiB
 * rings (its tail is published every 32 reads). Here every size up to the
 * largest payload goes through, round after round. */
static void test_large_payloads_never_stall(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(4096, 4096, &server, &client);
    struct echo_arg a = {server, 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, echo_server, &a) == 0);
    static uint8_t req[4096];
    const size_t sizes[] = {1000, 2000, 4032, 1, 3000, 1000};
    uint64_t rounds = 0;
    for (int i = 0; i < 3000; i++) {
        size_t n = sizes[i % 6];
        for (size_t k = 0; k < n; k++)
            req[k] = (uint8_t)(i + k);
        uint64_t cid;
        char *slot = tachyon_rpc_acquire_tx_timeout(client, n, 10000);
        REQUIRE(slot != NULL);
        memcpy(slot, req, n);
        CHECK_ERR(tachyon_rpc_commit_call(client, n, (uint32_t)i, &cid), TACHYON_SUCCESS);
        size_t size;
        uint32_t type;
        const uint8_t *p = tachyon_rpc_wait_timeout(client, cid, &size, &type, SPIN, 10000);
        REQUIRE(p != NULL);
        CHECK(size == n && memcmp(p, req, n) == 0);
        CHECK_EQ(type, (uint32_t)i & 0xFFFF);
        tachyon_rpc_commit_rx(client);
        rounds++;
    }
    CHECK_EQ(rounds, 3000);
    tachyon_rpc_destroy(client);
    pthread_join(th, NULL);
    CHECK_EQ(a.served, 3000);
    tachyon_rpc_destroy(server);
}

/* ---- Two threads on the caller: one calls, one waits ------------------------- */

struct waiter_arg {
    tachyon_rpc_bus_t *client;
    uint64_t n;
    uint64_t ok;
};

static void *waiter_thread(void *p)
{
    struct waiter_arg *w = p;
    for (uint64_t i = 1; i <= w->n; i++) {
        size_t size;
        uint32_t type;
        const uint64_t *v = tachyon_rpc_wait_timeout(w->client, i, &size, &type, SPIN, 20000);
        if (!v)
            break;
        w->ok += size == 8 && *v == i * 3;
        tachyon_rpc_commit_rx(w->client);
        /* The receiving side may ask about ids while the other thread issues them. */
        if (i % 1000 == 0 && tachyon_rpc_abandon(w->client, UINT64_MAX) != TACHYON_ERR_INVALID_SZ)
            w->ok = 0;
    }
    return NULL;
}

static void *triple_server(void *p)
{
    tachyon_rpc_bus_t *server = p;
    for (;;) {
        uint64_t cid;
        uint32_t type;
        size_t size;
        const uint64_t *v = tachyon_rpc_serve(server, &cid, &type, &size, SPIN);
        if (!v)
            break;
        uint64_t r = *v * 3;
        tachyon_rpc_commit_serve(server);
        uint64_t *slot = tachyon_rpc_acquire_reply_tx_timeout(server, 8, 20000);
        if (!slot)
            break;
        *slot = r;
        tachyon_rpc_commit_reply(server, cid, 8, 1);
    }
    return NULL;
}

static void test_calls_and_waits_in_two_threads(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(2048, 2048, &server, &client);
    pthread_t srv, waiter;
    struct waiter_arg w = {client, 20000, 0};
    REQUIRE(pthread_create(&srv, NULL, triple_server, server) == 0);
    REQUIRE(pthread_create(&waiter, NULL, waiter_thread, &w) == 0);
    for (uint64_t i = 1; i <= w.n; i++) {
        uint64_t *slot = tachyon_rpc_acquire_tx_timeout(client, 8, 20000);
        REQUIRE(slot != NULL);
        *slot = i;
        uint64_t cid;
        CHECK_ERR(tachyon_rpc_commit_call(client, 8, 1, &cid), TACHYON_SUCCESS);
        CHECK_EQ(cid, i);
    }
    pthread_join(waiter, NULL);
    CHECK_EQ(w.ok, w.n);
    tachyon_rpc_destroy(client);
    pthread_join(srv, NULL);
    tachyon_rpc_destroy(server);
}

/* ---- The peer's end ------------------------------------------------------------ */

static void test_clean_close(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(4096, 4096, &server, &client);
    uint64_t a, b;
    CHECK_ERR(tachyon_rpc_call(client, "a", 1, 1, &a), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_call(client, "b", 1, 1, &b), TACHYON_SUCCESS);
    serve_and_reply(server, "a", 1, "A", 1, NULL);
    tachyon_rpc_destroy(server); /* b is never answered */
    expect_reply(client, a, "A", 1);
    size_t size;
    uint32_t type;
    CHECK(tachyon_rpc_wait_timeout(client, b, &size, &type, SPIN, 5000) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_PEER_CLOSED);
    CHECK(strstr(tachyon_error_message(TACHYON_ERR_PEER_CLOSED), "every reply it sent has been read") != NULL);
    CHECK_EQ(tachyon_rpc_get_state(client), TACHYON_STATE_DISCONNECTED);
    CHECK_EQ(tachyon_rpc_peer_alive(client), 0);
    tachyon_rpc_destroy(client);

    make_pair(4096, 4096, &server, &client);
    CHECK_ERR(tachyon_rpc_call(client, "last", 4, 1, &a), TACHYON_SUCCESS);
    CHECK_EQ(tachyon_rpc_peer_alive(server), 1);
    tachyon_rpc_destroy(client);
    uint64_t cid;
    const char *p = tachyon_rpc_serve(server, &cid, &type, &size, SPIN);
    CHECK(p != NULL && size == 4); /* what the caller sent before closing */
    tachyon_rpc_commit_serve(server);
    CHECK(tachyon_rpc_serve(server, &cid, &type, &size, SPIN) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(server), TACHYON_ERR_PEER_CLOSED);
    tachyon_rpc_destroy(server);
}

/* A child that serves `answer` requests, replies to each, tells the parent on
 * `note`, then waits to be killed. */
static void child_server(const char *path, int answer, int note)
{
    tachyon_rpc_bus_t *server;
    if (tachyon_rpc_listen(path, 4096, 4096, &server) != TACHYON_SUCCESS)
        _exit(2);
    for (int i = 0; i < answer; i++) {
        uint64_t cid;
        uint32_t type;
        size_t size;
        if (!tachyon_rpc_serve(server, &cid, &type, &size, SPIN))
            _exit(3);
        tachyon_rpc_commit_serve(server);
        tachyon_rpc_reply(server, cid, "ok", 2, type);
    }
    /* The last request is read but never answered: killed mid-call. */
    uint64_t cid;
    uint32_t type;
    size_t size;
    if (!tachyon_rpc_serve(server, &cid, &type, &size, SPIN))
        _exit(4);
    (void)!write(note, "x", 1);
    for (;;)
        pause();
}

static void test_server_killed_mid_call(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "rpc-kill-server");
    int note[2];
    REQUIRE(pipe(note) == 0);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        close(note[0]);
        child_server(path, 3, note[1]);
    }
    close(note[1]);
    tachyon_rpc_bus_t *client;
    REQUIRE(tachyon_rpc_connect_timeout(path, 10000, &client) == TACHYON_SUCCESS);
    uint64_t cids[4];
    for (int i = 0; i < 4; i++)
        CHECK_ERR(tachyon_rpc_call(client, "req", 3, (uint32_t)i, &cids[i]), TACHYON_SUCCESS);
    char c;
    REQUIRE(read(note[0], &c, 1) == 1);
    kill(child, SIGKILL);
    uint64_t t0 = t_now_ns();
    for (int i = 0; i < 3; i++)
        expect_reply(client, cids[i], "ok", (uint32_t)i); /* every reply sent is read first */
    size_t size;
    uint32_t type;
    CHECK(tachyon_rpc_wait(client, cids[3], &size, &type, SPIN) == NULL);
    uint64_t ms = (t_now_ns() - t0) / 1000000;
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_PEER_DEAD);
    if (ms >= DEATH_BOUND_MS)
        fprintf(stderr, "the caller learned of the server's death after %llu ms\n", (unsigned long long)ms);
    CHECK(ms < DEATH_BOUND_MS);
    CHECK(strstr(tachyon_error_message(TACHYON_ERR_PEER_DEAD), "server process") != NULL);
    CHECK_EQ(tachyon_rpc_get_state(client), TACHYON_STATE_DISCONNECTED);
    waitpid(child, NULL, 0);
    close(note[0]);
    tachyon_rpc_destroy(client);
}

/* A child that makes `calls` calls, tells the parent, then waits for a reply
 * that never comes until it is killed. */
static void child_caller(const char *path, int calls, int note)
{
    tachyon_rpc_bus_t *client;
    if (tachyon_rpc_connect_timeout(path, 10000, &client) != TACHYON_SUCCESS)
        _exit(2);
    uint64_t cid = 0;
    for (int i = 0; i < calls; i++)
        if (tachyon_rpc_call(client, "req", 3, (uint32_t)i, &cid) != TACHYON_SUCCESS)
            _exit(3);
    (void)!write(note, "x", 1);
    size_t size;
    uint32_t type;
    (void)tachyon_rpc_wait(client, cid, &size, &type, SPIN);
    _exit(4);
}

static void test_caller_killed_mid_call(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "rpc-kill-caller");
    int note[2];
    REQUIRE(pipe(note) == 0);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        close(note[0]);
        child_caller(path, 3, note[1]);
    }
    close(note[1]);
    tachyon_rpc_bus_t *server;
    REQUIRE(tachyon_rpc_listen(path, 4096, 4096, &server) == TACHYON_SUCCESS);
    char c;
    REQUIRE(read(note[0], &c, 1) == 1);
    kill(child, SIGKILL);
    uint64_t t0 = t_now_ns();
    for (int i = 0; i < 3; i++) {
        uint64_t cid;
        uint32_t type;
        size_t size;
        CHECK(tachyon_rpc_serve(server, &cid, &type, &size, SPIN) != NULL); /* every request sent */
        CHECK_EQ(cid, (uint64_t)i + 1);
        tachyon_rpc_commit_serve(server);
    }
    uint64_t cid;
    uint32_t type;
    size_t size;
    CHECK(tachyon_rpc_serve(server, &cid, &type, &size, SPIN) == NULL);
    uint64_t ms = (t_now_ns() - t0) / 1000000;
    CHECK_EQ(tachyon_rpc_last_error(server), TACHYON_ERR_PEER_DEAD);
    if (ms >= DEATH_BOUND_MS)
        fprintf(stderr, "the server learned of the caller's death after %llu ms\n", (unsigned long long)ms);
    CHECK(ms < DEATH_BOUND_MS);
    /* A reply to the dead caller: the ring is there, nobody reads it. */
    CHECK(tachyon_rpc_acquire_reply_tx_timeout(server, 8, 0) != NULL);
    tachyon_rpc_rollback_reply(server);
    waitpid(child, NULL, 0);
    close(note[0]);
    tachyon_rpc_destroy(server);
}

/* ---- Connections: capacities, cross-kind, fork ---------------------------------- */

struct plain_listen_arg {
    const char *path;
    tachyon_error_t err;
    tachyon_bus_t *bus;
};

static void *plain_listen_thread(void *p)
{
    struct plain_listen_arg *a = p;
    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, 4096);
    opts.timeout_ms = 10000;
    a->err = tachyon_bus_listen_ex(a->path, &opts, &a->bus);
    return NULL;
}

static void test_connections(void)
{
    tachyon_rpc_bus_t *rpc = NULL;
    CHECK_ERR(tachyon_rpc_listen(NULL, 4096, 4096, &rpc), TACHYON_ERR_NULL_PTR);
    CHECK_ERR(tachyon_rpc_listen("/tmp/x.sock", 4096, 4096, NULL), TACHYON_ERR_NULL_PTR);
    CHECK_ERR(tachyon_rpc_listen("/tmp/x.sock", 0, 4096, &rpc), TACHYON_ERR_INVALID_SZ);
    CHECK_ERR(tachyon_rpc_listen("/tmp/x.sock", 4096, 3000, &rpc), TACHYON_ERR_INVALID_SZ);
    CHECK(strstr(tachyon_error_message(TACHYON_ERR_INVALID_SZ), "reply (cap_rev) ring of 3000") != NULL);
    CHECK_ERR(tachyon_rpc_listen("/tmp/x.sock", 32, 4096, &rpc), TACHYON_ERR_INVALID_SZ);
    CHECK(rpc == NULL);
    CHECK_ERR(tachyon_rpc_connect(NULL, &rpc), TACHYON_ERR_NULL_PTR);
    CHECK_ERR(tachyon_rpc_connect("/tmp/tachyon-test-nobody-listens.sock", &rpc), TACHYON_ERR_NETWORK);
    CHECK(rpc == NULL);

    /* A request/reply listener with a timeout and nobody coming. */
    char path[108];
    t_socket_path(path, sizeof(path), "rpc-lonely");
    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, 0);
    opts.timeout_ms = 30;
    CHECK_ERR(tachyon_rpc_listen_ex(path, 1024, 1024, &opts, &rpc), TACHYON_ERR_TIMEOUT);
    CHECK(access(path, F_OK) != 0); /* the socket file is gone */

    /* An rpc connector meeting a plain listener: a clear refusal. */
    t_socket_path(path, sizeof(path), "rpc-vs-plain");
    struct plain_listen_arg a = {path, TACHYON_SUCCESS, NULL};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, plain_listen_thread, &a) == 0);
    CHECK_ERR(tachyon_rpc_connect_timeout(path, 5000, &rpc), TACHYON_ERR_ABI_MISMATCH);
    CHECK(strstr(tachyon_error_message(TACHYON_ERR_ABI_MISMATCH), "plain bus") != NULL);
    pthread_join(th, NULL);
    if (a.err == TACHYON_SUCCESS)
        tachyon_bus_destroy(a.bus);

    /* A plain connector meeting an rpc listener. */
    t_socket_path(path, sizeof(path), "plain-vs-rpc");
    struct listen_arg la = {path, 1024, 1024, NULL, TACHYON_SUCCESS};
    REQUIRE(pthread_create(&th, NULL, listen_thread, &la) == 0);
    tachyon_bus_t *bus = NULL;
    CHECK_ERR(tachyon_bus_connect_timeout(path, 5000, &bus), TACHYON_ERR_ABI_MISMATCH);
    pthread_join(th, NULL);
    if (la.err == TACHYON_SUCCESS)
        tachyon_rpc_destroy(la.rpc);
}

static void test_fork_child_cannot_use_the_handle(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(1024, 1024, &server, &client);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        uint64_t cid;
        int ok = tachyon_rpc_call(client, "x", 1, 1, &cid) == TACHYON_ERR_FORKED;
        tachyon_rpc_destroy(client);
        tachyon_rpc_destroy(server);
        _exit(ok ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The parent's handles still work. */
    uint64_t cid;
    CHECK_ERR(tachyon_rpc_call(client, "y", 1, 1, &cid), TACHYON_SUCCESS);
    serve_and_reply(server, "y", 1, "z", 1, NULL);
    expect_reply(client, cid, "z", 1);
    tachyon_rpc_destroy(client);
    tachyon_rpc_destroy(server);
}

static void test_pure_spin_waits(void)
{
    tachyon_rpc_bus_t *server, *client;
    make_pair(4096, 4096, &server, &client);
    tachyon_rpc_set_polling_mode(server, 1);
    tachyon_rpc_set_polling_mode(client, 1);
    struct echo_arg a = {server, 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, echo_server, &a) == 0);
    for (uint32_t i = 0; i < 2000; i++) {
        uint64_t cid;
        CHECK_ERR(tachyon_rpc_call(client, &i, sizeof(i), 3, &cid), TACHYON_SUCCESS);
        size_t size;
        uint32_t type;
        const uint32_t *p = tachyon_rpc_wait_timeout(client, cid, &size, &type, UINT32_MAX, 10000);
        REQUIRE(p != NULL);
        CHECK(size == 4 && *p == i);
        tachyon_rpc_commit_rx(client);
    }
    tachyon_rpc_destroy(client);
    pthread_join(th, NULL);
    tachyon_rpc_destroy(server);
}

/* ---- A program written against the published API, unchanged ------------------- */

/* The published example's pattern: a 176-byte snapshot reply, msg_type 0 as
 * the caller's shutdown sentinel (never answered), pure-spin waits with
 * spin = UINT32_MAX, commit_serve before acquiring the reply slot, and a
 * connector that retries every 50 ms. Only the 17 published functions. */
#define SNAPSHOT_BYTES 176

static void *published_style_server(void *p)
{
    const char *path = p;
    tachyon_rpc_bus_t *rpc = NULL;
    if (tachyon_rpc_listen(path, 1 << 16, 1 << 16, &rpc) != TACHYON_SUCCESS)
        return (void *)1;
    tachyon_rpc_set_polling_mode(rpc, 1);
    for (;;) {
        uint64_t cid;
        uint32_t type;
        size_t size;
        const void *req = tachyon_rpc_serve(rpc, &cid, &type, &size, UINT32_MAX);
        if (!req)
            break;
        uint32_t symbol = 0;
        if (size >= sizeof(symbol))
            memcpy(&symbol, req, sizeof(symbol));
        tachyon_rpc_commit_serve(rpc);
        if (type == 0)
            break; /* the shutdown sentinel: no reply */
        uint8_t *out = tachyon_rpc_acquire_reply_tx(rpc, SNAPSHOT_BYTES);
        if (!out)
            break;
        for (int i = 0; i < SNAPSHOT_BYTES; i++)
            out[i] = (uint8_t)(symbol + (uint32_t)i);
        if (tachyon_rpc_commit_reply(rpc, cid, SNAPSHOT_BYTES, type) != TACHYON_SUCCESS)
            break;
    }
    tachyon_rpc_destroy(rpc);
    return NULL;
}

static void test_published_style_program(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "rpc-published-style");
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, published_style_server, path) == 0);
    tachyon_rpc_bus_t *rpc = NULL;
    for (int tries = 0; tries < 200 && tachyon_rpc_connect(path, &rpc) != TACHYON_SUCCESS; tries++)
        usleep(50 * 1000);
    REQUIRE(rpc != NULL);
    tachyon_rpc_set_polling_mode(rpc, 1);
    CHECK_EQ(tachyon_rpc_get_state(rpc), TACHYON_STATE_READY);
    int good = 0;
    for (uint32_t symbol = 1; symbol <= 1000; symbol++) {
        uint64_t cid = 0;
        if (tachyon_rpc_call(rpc, &symbol, sizeof(symbol), 7, &cid) != TACHYON_SUCCESS)
            break;
        size_t size = 0;
        uint32_t type = 0;
        const uint8_t *snap = tachyon_rpc_wait(rpc, cid, &size, &type, UINT32_MAX);
        if (!snap)
            break;
        good += size == SNAPSHOT_BYTES && type == 7 && snap[0] == (uint8_t)symbol &&
                snap[SNAPSHOT_BYTES - 1] == (uint8_t)(symbol + SNAPSHOT_BYTES - 1);
        tachyon_rpc_commit_rx(rpc);
    }
    CHECK_EQ(good, 1000);
    /* Zero-copy call, then the sentinel. */
    uint32_t *slot = tachyon_rpc_acquire_tx(rpc, sizeof(uint32_t));
    REQUIRE(slot != NULL);
    *slot = 5;
    uint64_t cid = 0;
    CHECK_ERR(tachyon_rpc_commit_call(rpc, sizeof(uint32_t), 3, &cid), TACHYON_SUCCESS);
    size_t size = 0;
    uint32_t type = 0;
    const uint8_t *snap = tachyon_rpc_wait(rpc, cid, &size, &type, UINT32_MAX);
    CHECK(snap != NULL && size == SNAPSHOT_BYTES && snap[1] == 6);
    tachyon_rpc_commit_rx(rpc);
    CHECK_ERR(tachyon_rpc_call(rpc, "", 0, 0, &cid), TACHYON_SUCCESS);
    void *ret = NULL;
    pthread_join(th, &ret);
    CHECK(ret == NULL);
    tachyon_rpc_destroy(rpc);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_round_trips_and_ids();
    test_zero_copy_and_slot_rules();
    test_roles_are_enforced();
    test_pipelining_in_order();
    test_wrong_order_is_an_error_not_a_fatal_ring();
    test_abandoned_calls_are_dropped();
    test_timeouts();
    test_waiting_for_room();
    test_large_payloads_never_stall();
    test_calls_and_waits_in_two_threads();
    test_clean_close();
    test_server_killed_mid_call();
    test_caller_killed_mid_call();
    test_connections();
    test_fork_child_cannot_use_the_handle();
    test_pure_spin_waits();
    test_published_style_program();
    return t_result("test_rpc");
}
