/*
 * rpc.c - request/reply (docs/rpc.md): one caller and one server joined by
 * two plain rings, each exactly a plain bus's segment. The server listens,
 * consumes the request ring (fwd) and produces the reply ring (rev); the
 * caller connects and does the opposite. The correlation id in each message
 * header pairs a reply with the call it answers.
 *
 * Everything below the two handles is the plain bus's, reused as is: the
 * segments (attach.c), the handshake and its extension exchange
 * (handshake.c), the ring with its checks of every untrusted header
 * (ring.c), sleeping and peer liveness (wait.c, through the public waits of
 * bus.c). This file adds the roles, the ids, the pairing of replies with
 * calls, and the published tachyon_rpc_* entry points.
 *
 * Errors are kept per thread like the plain bus's, under the key of the
 * request ring's handle: tachyon_rpc_last_error reads them there, and a
 * failure on the reply ring is copied there with its detail.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier.h"
#include "internal.h"
#include "state.h"

/* How long a sender waiting for room spins before it sleeps in short steps. */
#define RPC_TX_SPIN 1000u
/* Room for a copy of an error's detail sentence (state.c keeps 320 bytes). */
#define RPC_DETAIL_BYTES 320

struct tachyon_rpc_bus {
    _Atomic int refs;    /* tachyon_rpc_ref / tachyon_rpc_destroy */
    tachyon_bus_t *fwd;  /* requests: the caller produces, the server consumes */
    tachyon_bus_t *rev;  /* replies: the server produces, the caller consumes */
    int serves;          /* made by listen: serves requests; else makes calls */
    /* The sending side's (one thread at a time). */
    _Atomic uint64_t next_cid; /* the caller's next correlation id: 1, 2, 3, ... (read by abandon) */
    int tx_pending;      /* a slot is acquired and neither committed nor rolled back */
    /* The receiving side's (one thread at a time). */
    int rx_held;         /* a wait/serve handed out a message not yet committed */
    uint64_t *abandoned; /* caller: calls whose replies are dropped when they come, ascending */
    size_t n_abandoned;
    size_t abandoned_room;
};

/* ---- Errors ------------------------------------------------------------------ */

static tachyon_error_t rpc_fail(const tachyon_rpc_bus_t *rpc, tachyon_error_t err)
{
    status_set_error(rpc->fwd, err);
    return err;
}

/* An inner call on `ring` failed: its error (and detail) becomes the rpc's. */
static tachyon_error_t rpc_take_error(const tachyon_rpc_bus_t *rpc, const tachyon_bus_t *ring)
{
    tachyon_error_t err = status_last_error(ring);
    if (err == TACHYON_SUCCESS)
        err = TACHYON_ERR_STATE; /* a NULL without a recorded cause: say "out of order" */
    if (ring == rpc->fwd)
        return err; /* already recorded under the rpc's key */
    const char *detail = status_detail_for(err);
    if (!detail)
        return rpc_fail(rpc, err);
    char copy[RPC_DETAIL_BYTES];
    snprintf(copy, sizeof(copy), "%s", detail);
    return status_error_detail(rpc->fwd, err, "%s", copy);
}

/* A receive failed: say it in request/reply terms when the peer is gone. */
static void rx_failed(const tachyon_rpc_bus_t *rpc, const tachyon_bus_t *ring)
{
    tachyon_error_t err = status_last_error(ring);
    if (err != TACHYON_ERR_PEER_DEAD && err != TACHYON_ERR_PEER_CLOSED) {
        rpc_take_error(rpc, ring);
        return;
    }
    const char *who = rpc->serves ? "caller" : "server";
    const char *what = rpc->serves ? "request" : "reply";
    if (err == TACHYON_ERR_PEER_CLOSED)
        status_error_detail(rpc->fwd, err, "the %s (pid %d) closed the connection; every %s it sent has been read",
                            who, (int)ring->peer_pid, what);
    else
        status_error_detail(rpc->fwd, err,
                            "the %s process (pid %d) ended without closing the connection; every %s it sent "
                            "has been read",
                            who, (int)ring->peer_pid, what);
}

/* Calls that belong to the other role break the one-producer rule of a ring:
 * refused. The listener serves, the connector calls (as published). */
static int role_is(const tachyon_rpc_bus_t *rpc, int serving, const char *fn)
{
    if (likely(rpc->serves == serving))
        return 1;
    status_error_detail(rpc->fwd, TACHYON_ERR_STATE,
                        serving ? "%s is the server's: only a handle made by tachyon_rpc_listen serves and replies"
                                : "%s is the caller's: only a handle made by tachyon_rpc_connect calls and waits",
                        fn);
    return 0;
}

/* The ring this side consumes, and the one it produces into. */
static inline tachyon_bus_t *rx_ring(const tachyon_rpc_bus_t *rpc)
{
    return rpc->serves ? rpc->fwd : rpc->rev;
}

static inline tachyon_bus_t *tx_ring(const tachyon_rpc_bus_t *rpc)
{
    return rpc->serves ? rpc->rev : rpc->fwd;
}

/* ---- Lifecycle --------------------------------------------------------------- */

static tachyon_error_t check_capacity(const char *which, size_t capacity)
{
    if (tachyon_capacity_valid(capacity))
        return TACHYON_SUCCESS;
    return status_error_detail(NULL, TACHYON_ERR_INVALID_SZ,
                               "%s ring of %zu bytes: a ring is a power of two from 64 bytes to 1 GiB", which,
                               capacity);
}

/* Both handles learn who the peer is and what it handles; each keeps a pidfd
 * of its own (each handle closes its own). */
static void set_peer_on_both(tachyon_rpc_bus_t *rpc, const struct tachyon_peer *peer, uint32_t features)
{
    struct tachyon_peer second = *peer;
    if (peer->pidfd >= 0)
        second.pidfd = fcntl(peer->pidfd, F_DUPFD_CLOEXEC, 0); /* -1: rev falls back to kill(pid, 0) */
    bus_set_peer(rpc->fwd, peer, features);
    bus_set_peer(rpc->rev, &second, features);
}

static uint32_t features_of_both(const tachyon_rpc_bus_t *rpc)
{
    return bus_our_features(rpc->fwd) & bus_our_features(rpc->rev);
}

static tachyon_rpc_bus_t *rpc_alloc(int serves)
{
    tachyon_rpc_bus_t *rpc = calloc(1, sizeof(*rpc));
    if (rpc) {
        rpc->refs = 1;
        rpc->serves = serves;
        local_counter_store(&rpc->next_cid, 1);
    }
    return rpc;
}

static void rpc_free_unused(tachyon_rpc_bus_t *rpc)
{
    if (rpc->fwd)
        bus_free_unused(rpc->fwd);
    if (rpc->rev)
        bus_free_unused(rpc->rev);
    free(rpc);
}

tachyon_error_t tachyon_rpc_listen_ex(const char *socket_path, size_t cap_fwd, size_t cap_rev,
                                      const tachyon_listen_opts_t *opts, tachyon_rpc_bus_t **out)
{
    if (!socket_path || !out)
        return TACHYON_ERR_NULL_PTR;
    tachyon_listen_opts_t defaults;
    if (!opts) {
        tachyon_listen_opts_init(&defaults, cap_fwd);
        opts = &defaults;
    }
    if (opts->n_allowed_uids > TACHYON_MAX_ALLOWED_UIDS)
        return TACHYON_ERR_INVALID_SZ;
    tachyon_error_t err = check_capacity("request (cap_fwd)", cap_fwd);
    if (err == TACHYON_SUCCESS)
        err = check_capacity("reply (cap_rev)", cap_rev);
    if (err != TACHYON_SUCCESS)
        return err;

    tachyon_rpc_bus_t *rpc = rpc_alloc(1);
    if (!rpc)
        return TACHYON_ERR_MEM;
    int fds[2] = {-1, -1};
    err = bus_new_segment(cap_fwd, socket_path, &rpc->fwd, &fds[0]); /* fwd first, as published */
    if (err == TACHYON_SUCCESS)
        err = bus_new_segment(cap_rev, socket_path, &rpc->rev, &fds[1]);
    struct tachyon_peer peer = {0, -1};
    int conn = -1;
    if (err == TACHYON_SUCCESS) {
        tachyon_handshake_t hs;
        handshake_fill(&hs, (uint32_t)cap_fwd, (uint32_t)cap_rev, TACHYON_HS_FLAG_REQREP);
        err = handshake_listen(socket_path, opts, &hs, fds, 2, &peer, &conn);
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]); /* the mappings keep the segments; the peer has its own fds */
    if (err != TACHYON_SUCCESS) {
        rpc_free_unused(rpc);
        return err;
    }
    set_peer_on_both(rpc, &peer, handshake_ext_answer(conn, features_of_both(rpc)));
    close(conn);
    *out = rpc;
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_rpc_listen(const char *socket_path, size_t cap_fwd, size_t cap_rev, tachyon_rpc_bus_t **out)
{
    return tachyon_rpc_listen_ex(socket_path, cap_fwd, cap_rev, NULL, out);
}

/* The 32 bytes of a request/reply listener, before anything is mapped. */
static tachyon_error_t check_rpc_handshake(const tachyon_handshake_t *hs, int nfds, const char *path)
{
    tachyon_error_t err = handshake_check_abi(hs);
    if (err != TACHYON_SUCCESS)
        return err;
    if (hs->flags == 0)
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                   "the listener at %s serves a plain bus (one ring), not request/reply: "
                                   "connect to it with tachyon_bus_connect",
                                   path);
    if (hs->flags != TACHYON_HS_FLAG_REQREP || nfds != 2)
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                   "the listener at %s sent flags 0x%x with %d descriptors; request/reply is "
                                   "flags 0x1 with two (the request ring, then the reply ring)",
                                   path, hs->flags, nfds);
    err = handshake_check_ring(hs->capacity_fwd, hs->shm_size_fwd);
    if (err == TACHYON_SUCCESS)
        err = handshake_check_ring(hs->capacity_rev, hs->shm_size_rev);
    return err;
}

/* Check the handshake and attach both rings. Every fd received is the new
 * handles' or closed, whatever happens. */
static tachyon_error_t attach_both(tachyon_rpc_bus_t *rpc, const tachyon_handshake_t *hs, int *fds, int nfds,
                                   const struct tachyon_peer *peer, const char *path)
{
    tachyon_error_t err = check_rpc_handshake(hs, nfds, path);
    if (err != TACHYON_SUCCESS) {
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        return err;
    }
    err = bus_attach_segment(fds[0], hs->capacity_fwd, peer, &rpc->fwd);
    if (err != TACHYON_SUCCESS) {
        close(fds[1]);
        return err;
    }
    return bus_attach_segment(fds[1], hs->capacity_rev, peer, &rpc->rev);
}

tachyon_error_t tachyon_rpc_connect_ex(const char *socket_path, int timeout_ms, const uid_t *allowed_uids,
                                       size_t n_allowed_uids, tachyon_rpc_bus_t **out)
{
    if (!socket_path || !out || (!allowed_uids && n_allowed_uids > 0))
        return TACHYON_ERR_NULL_PTR;
    if (n_allowed_uids > TACHYON_MAX_ALLOWED_UIDS)
        return TACHYON_ERR_INVALID_SZ;
    tachyon_rpc_bus_t *rpc = rpc_alloc(0);
    if (!rpc)
        return TACHYON_ERR_MEM;
    int fds[2], nfds = 0, sock = -1;
    tachyon_handshake_t hs;
    struct tachyon_peer peer = {0, -1};
    int64_t deadline = timeout_ms > 0 ? wait_now_ms() + timeout_ms : -1;
    tachyon_error_t err = handshake_connect(socket_path, timeout_ms, allowed_uids, n_allowed_uids, &hs, fds, 2,
                                            &nfds, &peer, &sock);
    if (err != TACHYON_SUCCESS) {
        free(rpc);
        return err;
    }
    err = attach_both(rpc, &hs, fds, nfds, &peer, socket_path);
    if (err != TACHYON_SUCCESS) {
        close(sock); /* no offer: the listener counts us as a published-library peer */
        if (peer.pidfd >= 0)
            close(peer.pidfd);
        rpc_free_unused(rpc);
        return err;
    }
    set_peer_on_both(rpc, &peer, handshake_ext_offer(sock, features_of_both(rpc), deadline));
    close(sock);
    *out = rpc;
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_rpc_connect_timeout(const char *socket_path, int timeout_ms, tachyon_rpc_bus_t **out)
{
    return tachyon_rpc_connect_ex(socket_path, timeout_ms, NULL, 0, out);
}

tachyon_error_t tachyon_rpc_connect(const char *socket_path, tachyon_rpc_bus_t **out)
{
    return tachyon_rpc_connect_ex(socket_path, 0, NULL, 0, out);
}

void tachyon_rpc_ref(tachyon_rpc_bus_t *rpc)
{
    if (rpc)
        local_ref_get(&rpc->refs);
}

void tachyon_rpc_destroy(tachyon_rpc_bus_t *rpc)
{
    if (!rpc || !local_ref_put(&rpc->refs))
        return;
    /* Each marks its segment disconnected and wakes the peer sleeping on it. */
    tachyon_bus_destroy(rpc->fwd);
    tachyon_bus_destroy(rpc->rev);
    free(rpc->abandoned);
    free(rpc);
}

/* ---- Sending: calls and replies ----------------------------------------------- */

/*
 * Reserve a slot for up to `max_size` bytes in the ring this side produces
 * into. A slot still acquired is given back first (a later acquire replaces
 * the pending one, as published). The payload limit is the whole 64-byte
 * slot, as published: acquiring 8 bytes lets a commit carry up to 64. The
 * slot the ring reserves is the same either way. timeout_ms 0: never wait.
 */
static void *rpc_acquire(tachyon_rpc_bus_t *rpc, size_t max_size, int timeout_ms)
{
    tachyon_bus_t *ring = tx_ring(rpc);
    if (rpc->tx_pending) {
        (void)tachyon_rollback_tx(ring);
        rpc->tx_pending = 0;
    }
    size_t room = max_size <= tachyon_bus_max_payload(ring)
                      ? (size_t)tachyon_slot_size(max_size) - TACHYON_MSG_HEADER
                      : max_size; /* too large: the ring says so */
    void *slot = timeout_ms == 0 ? tachyon_acquire_tx(ring, room)
                                 : tachyon_acquire_tx_blocking(ring, room, RPC_TX_SPIN, timeout_ms);
    if (!slot) {
        rpc_take_error(rpc, ring);
        return NULL;
    }
    rpc->tx_pending = 1;
    return slot;
}

/* Commit the acquired slot with `cid` in its header and publish it. */
static tachyon_error_t rpc_commit(tachyon_rpc_bus_t *rpc, size_t actual, uint32_t msg_type, uint64_t cid,
                                  const char *fn)
{
    if (unlikely(!rpc->tx_pending))
        return status_error_detail(rpc->fwd, TACHYON_ERR_STATE, "%s: no slot is acquired (acquire one first)", fn);
    tachyon_bus_t *ring = tx_ring(rpc);
    tachyon_error_t err = ring_commit_tx(ring, actual, msg_type, cid);
    if (likely(err == TACHYON_SUCCESS)) {
        rpc->tx_pending = 0;
        return TACHYON_SUCCESS;
    }
    if (err == TACHYON_ERR_INVALID_SZ)
        return status_error_detail(rpc->fwd, err,
                                   "%s: %zu bytes do not fit the acquired slot; it stays acquired (commit "
                                   "fewer bytes, or roll it back)",
                                   fn, actual);
    return rpc_take_error(rpc, ring);
}

static void rpc_rollback(tachyon_rpc_bus_t *rpc, const char *fn)
{
    if (!rpc->tx_pending) {
        status_error_detail(rpc->fwd, TACHYON_ERR_STATE, "%s: no slot is acquired", fn);
        return;
    }
    (void)tachyon_rollback_tx(tx_ring(rpc));
    rpc->tx_pending = 0;
}

void *tachyon_rpc_acquire_tx_timeout(tachyon_rpc_bus_t *rpc, size_t max_size, int timeout_ms)
{
    if (!rpc || !role_is(rpc, 0, "tachyon_rpc_acquire_tx"))
        return NULL;
    return rpc_acquire(rpc, max_size, timeout_ms);
}

void *tachyon_rpc_acquire_tx(tachyon_rpc_bus_t *rpc, size_t max_size)
{
    return tachyon_rpc_acquire_tx_timeout(rpc, max_size, 0);
}

tachyon_error_t tachyon_rpc_commit_call(tachyon_rpc_bus_t *rpc, size_t actual_size, uint32_t msg_type,
                                        uint64_t *out_cid)
{
    if (!rpc)
        return TACHYON_ERR_NULL_PTR;
    if (!out_cid)
        return rpc_fail(rpc, TACHYON_ERR_NULL_PTR);
    if (!role_is(rpc, 0, "tachyon_rpc_commit_call"))
        return TACHYON_ERR_STATE;
    uint64_t cid = local_counter_load(&rpc->next_cid); /* taken first: a failed commit uses one up, as published */
    local_counter_store(&rpc->next_cid, cid + 1);
    tachyon_error_t err = rpc_commit(rpc, actual_size, msg_type, cid, "tachyon_rpc_commit_call");
    if (err == TACHYON_SUCCESS)
        *out_cid = cid;
    return err;
}

tachyon_error_t tachyon_rpc_call(tachyon_rpc_bus_t *rpc, const void *payload, size_t size, uint32_t msg_type,
                                 uint64_t *out_cid)
{
    if (!rpc)
        return TACHYON_ERR_NULL_PTR;
    if (!payload || !out_cid)
        return rpc_fail(rpc, TACHYON_ERR_NULL_PTR);
    if (!role_is(rpc, 0, "tachyon_rpc_call"))
        return TACHYON_ERR_STATE;
    void *slot = rpc_acquire(rpc, size, 0);
    if (!slot)
        return status_last_error(rpc->fwd);
    memcpy(slot, payload, size);
    return tachyon_rpc_commit_call(rpc, size, msg_type, out_cid);
}

void tachyon_rpc_rollback_call(tachyon_rpc_bus_t *rpc)
{
    if (rpc && role_is(rpc, 0, "tachyon_rpc_rollback_call"))
        rpc_rollback(rpc, "tachyon_rpc_rollback_call");
}

static tachyon_error_t check_reply_cid(const tachyon_rpc_bus_t *rpc, uint64_t cid, const char *fn)
{
    if (likely(cid != 0))
        return TACHYON_SUCCESS;
    return status_error_detail(rpc->fwd, TACHYON_ERR_INVALID_SZ,
                               "%s: correlation id 0 answers no call (pass the id tachyon_rpc_serve gave)", fn);
}

void *tachyon_rpc_acquire_reply_tx_timeout(tachyon_rpc_bus_t *rpc, size_t max_size, int timeout_ms)
{
    if (!rpc || !role_is(rpc, 1, "tachyon_rpc_acquire_reply_tx"))
        return NULL;
    return rpc_acquire(rpc, max_size, timeout_ms);
}

void *tachyon_rpc_acquire_reply_tx(tachyon_rpc_bus_t *rpc, size_t max_size)
{
    return tachyon_rpc_acquire_reply_tx_timeout(rpc, max_size, 0);
}

tachyon_error_t tachyon_rpc_commit_reply(tachyon_rpc_bus_t *rpc, uint64_t cid, size_t actual_size,
                                         uint32_t msg_type)
{
    if (!rpc)
        return TACHYON_ERR_NULL_PTR;
    if (!role_is(rpc, 1, "tachyon_rpc_commit_reply"))
        return TACHYON_ERR_STATE;
    tachyon_error_t err = check_reply_cid(rpc, cid, "tachyon_rpc_commit_reply"); /* the slot stays acquired */
    if (err != TACHYON_SUCCESS)
        return err;
    return rpc_commit(rpc, actual_size, msg_type, cid, "tachyon_rpc_commit_reply");
}

tachyon_error_t tachyon_rpc_reply(tachyon_rpc_bus_t *rpc, uint64_t cid, const void *payload, size_t size,
                                  uint32_t msg_type)
{
    if (!rpc)
        return TACHYON_ERR_NULL_PTR;
    if (!payload)
        return rpc_fail(rpc, TACHYON_ERR_NULL_PTR);
    if (!role_is(rpc, 1, "tachyon_rpc_reply"))
        return TACHYON_ERR_STATE;
    tachyon_error_t err = check_reply_cid(rpc, cid, "tachyon_rpc_reply");
    if (err != TACHYON_SUCCESS)
        return err;
    void *slot = rpc_acquire(rpc, size, 0);
    if (!slot)
        return status_last_error(rpc->fwd);
    memcpy(slot, payload, size);
    return rpc_commit(rpc, size, msg_type, cid, "tachyon_rpc_reply");
}

void tachyon_rpc_rollback_reply(tachyon_rpc_bus_t *rpc)
{
    if (rpc && role_is(rpc, 1, "tachyon_rpc_rollback_reply"))
        rpc_rollback(rpc, "tachyon_rpc_rollback_reply");
}

/* ---- Receiving: serve and wait ------------------------------------------------ */

/* The next message of the ring this side consumes, with its correlation id.
 * timeout_ms < 0: no deadline. NULL with the rpc's error set. */
static const void *rpc_receive(tachyon_rpc_bus_t *rpc, uint32_t *type_id, size_t *size, uint64_t *cid,
                               uint32_t spin, int timeout_ms)
{
    tachyon_bus_t *ring = rx_ring(rpc);
    const void *p = timeout_ms < 0 ? tachyon_acquire_rx_blocking(ring, type_id, size, spin)
                                   : tachyon_acquire_rx_timeout(ring, type_id, size, spin, timeout_ms);
    if (unlikely(!p)) {
        rx_failed(rpc, ring);
        return NULL;
    }
    *cid = ring_rx_correlation_id(ring);
    return p;
}

/* Is `cid` a call whose reply the caller gave up on? Removed if so. */
static int take_abandoned(tachyon_rpc_bus_t *rpc, uint64_t cid)
{
    for (size_t i = 0; i < rpc->n_abandoned; i++) {
        if (rpc->abandoned[i] == cid) {
            memmove(rpc->abandoned + i, rpc->abandoned + i + 1, (rpc->n_abandoned - i - 1) * sizeof(uint64_t));
            rpc->n_abandoned--;
            return 1;
        }
    }
    return 0;
}

/* What is left of a deadline (wait_now_ms time, -1: none) as a timeout. */
static int remaining_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - wait_now_ms();
    return left > 0 ? (int)(left < INT32_MAX ? left : INT32_MAX) : 0;
}

const void *tachyon_rpc_wait_timeout(tachyon_rpc_bus_t *rpc, uint64_t cid, size_t *out_size, uint32_t *out_msg_type,
                                     uint32_t spin, int timeout_ms)
{
    if (!rpc)
        return NULL;
    if (!out_size || !out_msg_type) {
        rpc_fail(rpc, TACHYON_ERR_NULL_PTR);
        return NULL;
    }
    if (!role_is(rpc, 0, "tachyon_rpc_wait"))
        return NULL;
    /* One deadline for the whole wait when replies to abandoned calls may
     * have to be dropped on the way (the clock is read only then). */
    int64_t deadline = timeout_ms > 0 && rpc->n_abandoned ? wait_now_ms() + timeout_ms : -1;
    for (;;) {
        uint32_t type_id;
        size_t size;
        uint64_t got;
        const void *p = rpc_receive(rpc, &type_id, &size, &got, spin,
                                    deadline < 0 ? timeout_ms : remaining_ms(deadline));
        if (!p)
            return NULL;
        if (unlikely(got != cid || rpc->n_abandoned != 0)) {
            if (take_abandoned(rpc, got) && got != cid) {
                (void)tachyon_commit_rx(rpc->rev); /* the answer to a call given up on: dropped */
                continue;
            }
            if (cid != 0 && got != cid) {
                /* Not consumed: a wait for `got` still finds it. */
                status_error_detail(rpc->fwd, TACHYON_ERR_WRONG_REPLY,
                                    "the next reply answers call %llu, not %llu: wait for replies in the order "
                                    "the calls were made (or with id 0 for whichever comes next)",
                                    (unsigned long long)got, (unsigned long long)cid);
                return NULL;
            }
        }
        rpc->rx_held = 1;
        *out_size = size;
        *out_msg_type = TACHYON_MSG_TYPE(type_id);
        return p;
    }
}

const void *tachyon_rpc_wait(tachyon_rpc_bus_t *rpc, uint64_t cid, size_t *out_size, uint32_t *out_msg_type,
                             uint32_t spin)
{
    return tachyon_rpc_wait_timeout(rpc, cid, out_size, out_msg_type, spin, -1);
}

const void *tachyon_rpc_serve_timeout(tachyon_rpc_bus_t *rpc, uint64_t *out_cid, uint32_t *out_msg_type,
                                      size_t *out_size, uint32_t spin, int timeout_ms)
{
    if (!rpc)
        return NULL;
    if (!out_cid || !out_msg_type || !out_size) {
        rpc_fail(rpc, TACHYON_ERR_NULL_PTR);
        return NULL;
    }
    if (!role_is(rpc, 1, "tachyon_rpc_serve"))
        return NULL;
    uint32_t type_id;
    size_t size;
    uint64_t cid;
    const void *p = rpc_receive(rpc, &type_id, &size, &cid, spin, timeout_ms);
    if (!p)
        return NULL;
    rpc->rx_held = 1;
    *out_cid = cid;
    *out_msg_type = TACHYON_MSG_TYPE(type_id);
    *out_size = size;
    return p;
}

const void *tachyon_rpc_serve(tachyon_rpc_bus_t *rpc, uint64_t *out_cid, uint32_t *out_msg_type, size_t *out_size,
                              uint32_t spin)
{
    return tachyon_rpc_serve_timeout(rpc, out_cid, out_msg_type, out_size, spin, -1);
}

/* Release the message the last wait/serve handed out. */
static tachyon_error_t rpc_release(tachyon_rpc_bus_t *rpc, int serving, const char *fn)
{
    if (!rpc)
        return TACHYON_ERR_NULL_PTR;
    if (!role_is(rpc, serving, fn))
        return TACHYON_ERR_STATE;
    if (unlikely(!rpc->rx_held))
        return status_error_detail(rpc->fwd, TACHYON_ERR_STATE, "%s: no %s is held (nothing to release)", fn,
                                   serving ? "request" : "reply");
    tachyon_bus_t *ring = rx_ring(rpc);
    tachyon_error_t err = tachyon_commit_rx(ring);
    rpc->rx_held = 0;
    return err == TACHYON_SUCCESS ? TACHYON_SUCCESS : rpc_take_error(rpc, ring);
}

tachyon_error_t tachyon_rpc_commit_rx(tachyon_rpc_bus_t *rpc)
{
    return rpc_release(rpc, 0, "tachyon_rpc_commit_rx");
}

tachyon_error_t tachyon_rpc_commit_serve(tachyon_rpc_bus_t *rpc)
{
    return rpc_release(rpc, 1, "tachyon_rpc_commit_serve");
}

tachyon_error_t tachyon_rpc_abandon(tachyon_rpc_bus_t *rpc, uint64_t cid)
{
    if (!rpc)
        return TACHYON_ERR_NULL_PTR;
    if (!role_is(rpc, 0, "tachyon_rpc_abandon"))
        return TACHYON_ERR_STATE;
    if (cid == 0 || cid >= local_counter_load(&rpc->next_cid))
        return status_error_detail(rpc->fwd, TACHYON_ERR_INVALID_SZ,
                                   "tachyon_rpc_abandon: %llu is not the id of a call made on this connection",
                                   (unsigned long long)cid);
    for (size_t i = 0; i < rpc->n_abandoned; i++)
        if (rpc->abandoned[i] == cid)
            return TACHYON_SUCCESS;
    if (rpc->n_abandoned == rpc->abandoned_room) {
        size_t room = rpc->abandoned_room ? rpc->abandoned_room * 2 : 8;
        uint64_t *grown = realloc(rpc->abandoned, room * sizeof(uint64_t));
        if (!grown)
            return rpc_fail(rpc, TACHYON_ERR_MEM);
        rpc->abandoned = grown;
        rpc->abandoned_room = room;
    }
    rpc->abandoned[rpc->n_abandoned++] = cid;
    return TACHYON_SUCCESS;
}

/* ---- State ---------------------------------------------------------------------- */

void tachyon_rpc_set_polling_mode(const tachyon_rpc_bus_t *rpc, int pure_spin)
{
    /* Only the ring this side waits on: a pure-spin word on the other ring
     * would make this side, its producer, skip waking a peer that sleeps. */
    if (rpc)
        tachyon_bus_set_polling_mode(rx_ring(rpc), pure_spin);
}

tachyon_state_t tachyon_rpc_get_state(const tachyon_rpc_bus_t *rpc)
{
    if (!rpc)
        return TACHYON_STATE_UNKNOWN;
    tachyon_state_t f = tachyon_get_state(rpc->fwd);
    tachyon_state_t r = tachyon_get_state(rpc->rev);
    if (f == TACHYON_STATE_FATAL_ERROR || r == TACHYON_STATE_FATAL_ERROR)
        return TACHYON_STATE_FATAL_ERROR;
    if (f == TACHYON_STATE_DISCONNECTED || r == TACHYON_STATE_DISCONNECTED)
        return TACHYON_STATE_DISCONNECTED;
    return f == TACHYON_STATE_READY && r == TACHYON_STATE_READY ? TACHYON_STATE_READY : TACHYON_STATE_UNKNOWN;
}

tachyon_error_t tachyon_rpc_last_error(const tachyon_rpc_bus_t *rpc)
{
    return rpc ? status_last_error(rpc->fwd) : TACHYON_ERR_NULL_PTR;
}

int tachyon_rpc_peer_alive(tachyon_rpc_bus_t *rpc)
{
    if (!rpc)
        return 0;
    tachyon_bus_t *ring = rx_ring(rpc);
    if (tachyon_peer_alive(ring))
        return 1;
    rx_failed(rpc, ring);
    return 0;
}

size_t tachyon_rpc_max_request(const tachyon_rpc_bus_t *rpc)
{
    return rpc ? tachyon_bus_max_payload(rpc->fwd) : 0;
}

size_t tachyon_rpc_max_reply(const tachyon_rpc_bus_t *rpc)
{
    return rpc ? tachyon_bus_max_payload(rpc->rev) : 0;
}
