/*
 * bad_api.c - every public function fed NULLs, sizes out of range and calls
 * out of order. Each must return its documented error; none may crash.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define CAP 4096

static void test_null_lifecycle(void)
{
    sec_case_begin("NULL arguments: lifecycle and options");
    tachyon_bus_t *bus = (tachyon_bus_t *)0x1;
    char path[108];
    sec_socket_path(path, sizeof(path), "null");
    CHECK_ERR(tachyon_bus_listen(NULL, CAP, &bus), TACHYON_ERR_NULL_PTR, "listen(NULL path)");
    CHECK_ERR(tachyon_bus_listen(path, CAP, NULL), TACHYON_ERR_NULL_PTR, "listen(NULL out)");
    CHECK_ERR(tachyon_bus_listen_ex(path, NULL, &bus), TACHYON_ERR_NULL_PTR, "listen_ex(NULL opts)");
    CHECK_ERR(tachyon_bus_connect(NULL, &bus), TACHYON_ERR_NULL_PTR, "connect(NULL path)");
    CHECK_ERR(tachyon_bus_connect(path, NULL), TACHYON_ERR_NULL_PTR, "connect(NULL out)");
    CHECK_ERR(tachyon_bus_connect_timeout(NULL, 10, &bus), TACHYON_ERR_NULL_PTR, "connect_timeout(NULL)");
    CHECK_ERR(tachyon_listen_opts_allow_uid(NULL, 0), TACHYON_ERR_NULL_PTR, "allow_uid(NULL)");
    tachyon_listen_opts_init(NULL, CAP);
    tachyon_bus_ref(NULL);
    tachyon_bus_destroy(NULL);
    tachyon_bus_set_polling_mode(NULL, 1);
    tachyon_flush(NULL);
    CHECK_ERR(tachyon_bus_set_numa_node(NULL, 0), TACHYON_ERR_NULL_PTR, "set_numa_node(NULL)");
    CHECK(tachyon_get_state(NULL) == TACHYON_STATE_UNKNOWN, "get_state(NULL)");
    CHECK_ERR(tachyon_bus_last_error(NULL), TACHYON_ERR_NULL_PTR, "last_error(NULL)");
    CHECK(tachyon_peer_alive(NULL) == 0, "peer_alive(NULL)");
    CHECK(tachyon_bus_capacity(NULL) == 0 && tachyon_bus_max_payload(NULL) == 0, "sizes of NULL");
    CHECK(access(path, F_OK) != 0, "a socket file was created");
    sec_case_end();
}

static void test_null_data_calls(void)
{
    sec_case_begin("NULL bus: every data call");
    uint32_t t;
    size_t s;
    tachyon_msg_view_t v[2];
    CHECK(tachyon_acquire_tx(NULL, 8) == NULL, "acquire_tx");
    CHECK(tachyon_acquire_tx_blocking(NULL, 8, 0, 10) == NULL, "acquire_tx_blocking");
    CHECK_ERR(tachyon_commit_tx(NULL, 0, 0), TACHYON_ERR_NULL_PTR, "commit_tx");
    CHECK_ERR(tachyon_rollback_tx(NULL), TACHYON_ERR_NULL_PTR, "rollback_tx");
    CHECK_ERR(tachyon_send(NULL, "x", 1, 0), TACHYON_ERR_NULL_PTR, "send");
    CHECK(tachyon_send_batch(NULL, "x", 1, 1, 0) == 0, "send_batch");
    CHECK(tachyon_acquire_rx(NULL, &t, &s) == NULL, "acquire_rx");
    CHECK(tachyon_acquire_rx_spin(NULL, &t, &s, 10) == NULL, "acquire_rx_spin");
    CHECK(tachyon_acquire_rx_blocking(NULL, &t, &s, 10) == NULL, "acquire_rx_blocking");
    CHECK(tachyon_acquire_rx_timeout(NULL, &t, &s, 10, 10) == NULL, "acquire_rx_timeout");
    CHECK_ERR(tachyon_commit_rx(NULL), TACHYON_ERR_NULL_PTR, "commit_rx");
    CHECK(tachyon_acquire_rx_batch(NULL, v, 2) == 0, "acquire_rx_batch");
    CHECK(tachyon_drain_batch(NULL, v, 2, 10) == 0, "drain_batch");
    CHECK(tachyon_drain_batch_timeout(NULL, v, 2, 10, 10) == 0, "drain_batch_timeout");
    CHECK_ERR(tachyon_commit_rx_batch(NULL, v, 1), TACHYON_ERR_NULL_PTR, "commit_rx_batch");
    sec_case_end();
}

static void test_null_buffers_on_live_bus(tachyon_bus_t *tx, tachyon_bus_t *rx)
{
    sec_case_begin("NULL buffers and out-parameters on a live bus");
    CHECK_ERR(tachyon_send(tx, NULL, 5, 1), TACHYON_ERR_NULL_PTR, "send(NULL data, 5)");
    CHECK_ERR(tachyon_send(tx, NULL, 0, 1), TACHYON_SUCCESS, "send(NULL data, 0): an empty message");
    CHECK(tachyon_send_batch(tx, NULL, 8, 2, 1) == 0, "send_batch(NULL records)");
    CHECK_ERR(tachyon_bus_last_error(tx), TACHYON_ERR_NULL_PTR, "send_batch last error");
    CHECK(tachyon_acquire_rx_batch(rx, NULL, 4) == 0, "acquire_rx_batch(NULL views)");
    CHECK_ERR(tachyon_bus_last_error(rx), TACHYON_ERR_NULL_PTR, "acquire_rx_batch last error");
    CHECK(tachyon_drain_batch_timeout(rx, NULL, 4, 0, 10) == 0, "drain_batch(NULL views)");
    CHECK_ERR(tachyon_bus_last_error(rx), TACHYON_ERR_NULL_PTR, "drain_batch last error");
    CHECK_ERR(tachyon_commit_rx_batch(rx, NULL, 1), TACHYON_ERR_NULL_PTR, "commit_rx_batch(NULL views)");
    /* Out-parameters are optional. */
    CHECK(tachyon_acquire_rx(rx, NULL, NULL) != NULL, "acquire_rx with NULL out-parameters");
    CHECK_ERR(tachyon_commit_rx(rx), TACHYON_SUCCESS, "commit_rx");
    sec_case_end();
}

static void test_sizes(tachyon_bus_t *tx, tachyon_bus_t *rx)
{
    sec_case_begin("payload sizes: 0, maximum, maximum + 1, SIZE_MAX");
    size_t max = tachyon_bus_max_payload(tx);
    CHECK(max == CAP - 64, "max payload %zu", max);
    void *p = tachyon_acquire_tx(tx, 0);
    CHECK(p != NULL, "acquire_tx(0)");
    CHECK_ERR(tachyon_commit_tx(tx, 0, 1), TACHYON_SUCCESS, "commit_tx(0)");
    uint32_t t;
    size_t s = 99;
    CHECK(tachyon_acquire_rx(rx, &t, &s) != NULL && s == 0, "zero-length message");
    tachyon_commit_rx(rx);

    /* The largest slot is the whole ring: it fits only at offset 0 of an
     * empty ring. The first try marks the end skipped, publishes the marker
     * and reports FULL; once the consumer has passed the marker it fits. */
    p = tachyon_acquire_tx(tx, max);
    CHECK(p == NULL, "acquire_tx(max) at offset 64");
    CHECK_ERR(tachyon_bus_last_error(tx), TACHYON_ERR_FULL, "acquire_tx(max) at offset 64");
    CHECK(tachyon_acquire_rx(rx, &t, &s) == NULL, "the skip marker is not a message");
    p = tachyon_acquire_tx(tx, max);
    CHECK(p != NULL, "acquire_tx(max) once the consumer passed the skip marker");
    if (p) {
        memset(p, 0x7E, max);
        CHECK_ERR(tachyon_commit_tx(tx, max, 1), TACHYON_SUCCESS, "commit_tx(max)");
        const uint8_t *m = tachyon_acquire_rx(rx, &t, &s);
        CHECK(m && s == max && m[max - 1] == 0x7E, "largest message");
        tachyon_commit_rx(rx);
    }
    CHECK(tachyon_acquire_tx(tx, max + 1) == NULL, "acquire_tx(max + 1)");
    CHECK_ERR(tachyon_bus_last_error(tx), TACHYON_ERR_INVALID_SZ, "max + 1");
    CHECK(tachyon_acquire_tx(tx, SIZE_MAX) == NULL, "acquire_tx(SIZE_MAX)");
    CHECK_ERR(tachyon_bus_last_error(tx), TACHYON_ERR_INVALID_SZ, "SIZE_MAX");
    CHECK(tachyon_acquire_tx(tx, SIZE_MAX - 63) == NULL, "acquire_tx(SIZE_MAX - 63): slot size would wrap");
    CHECK(tachyon_acquire_tx_blocking(tx, SIZE_MAX, 0, 100) == NULL, "acquire_tx_blocking(SIZE_MAX)");
    CHECK_ERR(tachyon_bus_last_error(tx), TACHYON_ERR_INVALID_SZ, "blocking SIZE_MAX");
    static uint8_t big[CAP * 2];
    CHECK_ERR(tachyon_send(tx, big, sizeof(big), 1), TACHYON_ERR_INVALID_SZ, "send(2 x capacity)");
    CHECK(tachyon_send_batch(tx, big, max + 1, 1, 1) == 0, "send_batch(record > max)");
    CHECK_ERR(tachyon_bus_last_error(tx), TACHYON_ERR_INVALID_SZ, "send_batch oversized");
    CHECK(tachyon_send_batch(tx, big, 8, 0, 1) == 0, "send_batch(count 0)");

    /* commit larger than acquired: refused, slot still ours */
    p = tachyon_acquire_tx(tx, 10);
    CHECK(p != NULL, "acquire_tx(10)");
    CHECK_ERR(tachyon_commit_tx(tx, 200, 1), TACHYON_ERR_INVALID_SZ, "commit 200 of 10 (slot is 64 B)");
    CHECK_ERR(tachyon_commit_tx(tx, SIZE_MAX, 1), TACHYON_ERR_INVALID_SZ, "commit SIZE_MAX");
    CHECK_ERR(tachyon_rollback_tx(tx), TACHYON_SUCCESS, "rollback after refused commit");
    CHECK(tachyon_acquire_rx(rx, &t, &s) == NULL, "a refused commit published something");

    tachyon_msg_view_t v[2];
    CHECK(tachyon_drain_batch_timeout(rx, v, 0, 0, 10) == 0, "drain_batch(max 0)");
    CHECK_ERR(tachyon_bus_last_error(rx), TACHYON_ERR_INVALID_SZ, "drain_batch(max 0)");
    CHECK(tachyon_acquire_rx_batch(rx, v, 0) == 0, "acquire_rx_batch(max 0)");
    CHECK_ERR(tachyon_bus_set_numa_node(tx, -1), TACHYON_ERR_INVALID_SZ, "numa node -1");
    CHECK_ERR(tachyon_bus_set_numa_node(tx, 64), TACHYON_ERR_INVALID_SZ, "numa node 64");
    sec_case_end();
}

static void test_call_order(tachyon_bus_t *tx, tachyon_bus_t *rx)
{
    sec_case_begin("call order: commit/rollback without acquire, twice");
    CHECK_ERR(tachyon_commit_tx(tx, 0, 1), TACHYON_ERR_STATE, "commit_tx without acquire");
    CHECK_ERR(tachyon_rollback_tx(tx), TACHYON_ERR_STATE, "rollback_tx without acquire");
    CHECK(tachyon_acquire_tx(tx, 8) != NULL, "acquire");
    CHECK(tachyon_acquire_tx(tx, 8) == NULL, "second acquire while one is open");
    CHECK_ERR(tachyon_bus_last_error(tx), TACHYON_ERR_STATE, "second acquire");
    CHECK_ERR(tachyon_send(tx, "x", 1, 1), TACHYON_ERR_STATE, "send while a slot is open");
    CHECK_ERR(tachyon_commit_tx(tx, 8, 1), TACHYON_SUCCESS, "commit");
    CHECK_ERR(tachyon_commit_tx(tx, 8, 1), TACHYON_ERR_STATE, "double commit");
    CHECK_ERR(tachyon_rollback_tx(tx), TACHYON_ERR_STATE, "rollback after commit");

    CHECK_ERR(tachyon_commit_rx(rx), TACHYON_ERR_STATE, "commit_rx without acquire");
    uint32_t t;
    size_t s;
    CHECK(tachyon_acquire_rx(rx, &t, &s) != NULL, "acquire_rx");
    CHECK_ERR(tachyon_commit_rx(rx), TACHYON_SUCCESS, "commit_rx");
    CHECK_ERR(tachyon_commit_rx(rx), TACHYON_ERR_STATE, "double commit_rx");

    tachyon_msg_view_t v[4];
    CHECK_ERR(tachyon_commit_rx_batch(rx, v, 0), TACHYON_SUCCESS, "commit_rx_batch(count 0)");
    memset(v, 0, sizeof(v));
    CHECK_ERR(tachyon_commit_rx_batch(rx, v, 1), TACHYON_ERR_STATE, "commit_rx_batch without acquire");
    tachyon_send(tx, "a", 1, 1);
    tachyon_send(tx, "b", 1, 1);
    size_t n = tachyon_acquire_rx_batch(rx, v, 4);
    CHECK(n == 2, "batch of %zu", n);
    CHECK_ERR(tachyon_commit_rx_batch(rx, v, 3), TACHYON_ERR_STATE, "commit more views than acquired");
    tachyon_msg_view_t forged = v[1];
    forged.reserved_ += 1u << 20; /* an end far past what was handed out */
    CHECK_ERR(tachyon_commit_rx_batch(rx, &forged, 1), TACHYON_ERR_STATE, "forged view");
    forged.reserved_ = v[0].reserved_ - 64 * 1000; /* an end before the tail */
    CHECK_ERR(tachyon_commit_rx_batch(rx, &forged, 1), TACHYON_ERR_STATE, "view ending before the tail");
    CHECK_ERR(tachyon_commit_rx_batch(rx, v, n), TACHYON_SUCCESS, "commit the real batch");
    CHECK_ERR(tachyon_commit_rx_batch(rx, v, n), TACHYON_ERR_STATE, "commit the batch twice");
    CHECK(tachyon_acquire_rx(rx, &t, &s) == NULL, "ring not empty after the batch");
    CHECK_ERR(tachyon_bus_last_error(rx), TACHYON_ERR_EMPTY, "empty");
    sec_case_end();
}

static void test_capacities(void)
{
    sec_case_begin("listen capacities: 0, 1, 32, 63, 100, 1000, 2^30 + 1, 2^31, SIZE_MAX");
    const size_t bad[] = {0, 1, 32, 63, 100, 1000, (1u << 30) + 1, (size_t)1 << 31,
                          ((size_t)1 << 32) + 64, SIZE_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[108];
        sec_socket_path(path, sizeof(path), "cap");
        tachyon_bus_t *bus = NULL;
        tachyon_error_t err = tachyon_bus_listen(path, bad[i], &bus);
        CHECK(err == TACHYON_ERR_INVALID_SZ, "capacity %zu: %s", bad[i], tachyon_strerror(err));
        CHECK(bus == NULL, "capacity %zu: bus set", bad[i]);
        CHECK(access(path, F_OK) != 0, "capacity %zu: socket file created", bad[i]);
    }
    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, CAP);
    for (int i = 0; i < TACHYON_MAX_ALLOWED_UIDS; i++)
        CHECK_ERR(tachyon_listen_opts_allow_uid(&opts, (uid_t)i), TACHYON_SUCCESS, "allow_uid");
    CHECK_ERR(tachyon_listen_opts_allow_uid(&opts, 99), TACHYON_ERR_INVALID_SZ, "17th uid");
    opts.n_allowed_uids = 1000; /* a caller scribbling on the struct */
    tachyon_bus_t *bus = NULL;
    char path[108];
    sec_socket_path(path, sizeof(path), "uids");
    CHECK_ERR(tachyon_bus_listen_ex(path, &opts, &bus), TACHYON_ERR_INVALID_SZ, "n_allowed_uids 1000");
    sec_case_end();
}

static void test_paths(void)
{
    sec_case_begin("socket paths: empty, 107 bytes, 108 bytes, 4 KiB");
    char path[4200];
    tachyon_bus_t *bus = NULL;
    CHECK_ERR(tachyon_bus_listen("", CAP, &bus), TACHYON_ERR_INVALID_SZ, "listen(\"\")");
    CHECK_ERR(tachyon_bus_connect("", &bus), TACHYON_ERR_INVALID_SZ, "connect(\"\")");
    memset(path, 'a', sizeof(path));
    memcpy(path, "/tmp/", 5);
    path[108] = '\0';
    CHECK_ERR(tachyon_bus_listen(path, CAP, &bus), TACHYON_ERR_PATH_TOO_LONG, "listen(108 bytes)");
    CHECK_ERR(tachyon_bus_connect(path, &bus), TACHYON_ERR_PATH_TOO_LONG, "connect(108 bytes)");
    path[4199] = '\0';
    path[108] = 'a';
    CHECK_ERR(tachyon_bus_connect_timeout(path, 100, &bus), TACHYON_ERR_PATH_TOO_LONG, "connect(4 KiB)");
    path[107] = '\0';
    int64_t t0 = sec_now_ms();
    CHECK_ERR(tachyon_bus_connect(path, &bus), TACHYON_ERR_NETWORK, "connect(107 bytes, nobody there)");
    CHECK_ERR(tachyon_bus_connect_timeout(path, 200, &bus), TACHYON_ERR_NETWORK, "connect_timeout(200 ms)");
    int64_t took = sec_now_ms() - t0;
    CHECK(took >= 150 && took < 2000, "connect_timeout(200) took %lld ms", (long long)took);
    CHECK_ERR(tachyon_bus_connect("/nonexistent-dir/x.sock", &bus), TACHYON_ERR_NETWORK, "missing directory");
    sec_case_end();
}

static void test_strerror(void)
{
    sec_case_begin("strerror: every code has a message, others are unknown");
    for (int i = 0; i <= TACHYON_ERR_OVERRUN; i++) {
        const char *m = tachyon_strerror((tachyon_error_t)i);
        CHECK(m && strcmp(m, "unknown error") != 0, "code %d has no message", i);
    }
    CHECK(strcmp(tachyon_strerror((tachyon_error_t)(TACHYON_ERR_OVERRUN + 1)), "unknown error") == 0, "past the last");
    CHECK(strcmp(tachyon_strerror((tachyon_error_t)-1), "unknown error") == 0, "-1");
    CHECK(strcmp(tachyon_strerror((tachyon_error_t)0x7FFFFFFF), "unknown error") == 0, "INT_MAX");
    sec_case_end();
}

static void test_refcount(void)
{
    sec_case_begin("bus_ref: the bus lives until the last destroy");
    tachyon_bus_t *a, *b;
    if (sec_bus_pair(CAP, &a, &b) == 0) {
        tachyon_bus_ref(b);
        tachyon_bus_destroy(b);
        CHECK(tachyon_peer_alive(a) == 1, "one destroy of two references left the bus");
        CHECK_ERR(tachyon_send(b, "x", 1, 1), TACHYON_SUCCESS, "send on the remaining reference");
        tachyon_bus_destroy(b);
        CHECK(tachyon_peer_alive(a) == 0, "the last destroy did not tell the peer");
        tachyon_bus_destroy(a);
    } else {
        CHECK(0, "no bus pair");
    }
    sec_case_end();
}

int main(void)
{
    sec_watchdog(60);
    test_null_lifecycle();
    test_null_data_calls();
    tachyon_bus_t *tx, *rx;
    if (sec_bus_pair(CAP, &tx, &rx) != 0) {
        fprintf(stderr, "no bus pair\n");
        return 1;
    }
    test_null_buffers_on_live_bus(tx, rx);
    test_sizes(tx, rx);
    test_call_order(tx, rx);
    tachyon_bus_destroy(tx);
    tachyon_bus_destroy(rx);
    test_capacities();
    test_paths();
    test_strerror();
    test_refcount();
    return sec_finish();
}
