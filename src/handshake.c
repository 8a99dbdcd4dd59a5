/*
 * handshake.c - the rendezvous protocol (docs/protocol.md, "Handshake" and
 * "Extensions"): the listener hands the one connector 32 bytes of ABI v4
 * handshake with the segment's memfd; then two processes of this project
 * exchange one more message each on the same connection to learn what the
 * other handles beyond plain v4. A published-library peer closes the
 * connection instead, which means "nothing beyond v4".
 *
 * Everything a peer sends is checked before use. The extension exchange can
 * only add features both sides announced, and every feature is safe when the
 * two sides end up disagreeing about it (one timed out waiting, say): it
 * changes how a side behaves towards a peer known to handle more, never what
 * a side accepts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>
#include <unistd.h>

#include "fan_wire.h"
#include "internal.h"
#include "state.h"

/* How long a connector without a timeout of its own waits for the 32 bytes
 * once connected. The listener sends them right after accept, so only a
 * broken listener takes this long. */
#define HANDSHAKE_RECV_TIMEOUT_MS 10000
/* How long either side waits for the other's extension message. A peer of
 * ours answers at once; a published-library peer closes the connection. */
#define EXT_WAIT_MS 5000

/* Every feature bit this build knows. */
#define KNOWN_FEATURES                                                                                        \
    (TACHYON_FEATURE_LONE_MARKER | TACHYON_FEATURE_HOLD_LOCK | TACHYON_FEATURE_SLOT_STAMPS |                  \
     TACHYON_FEATURE_MEMBARRIER | TACHYON_FEATURE_EVENTFD)

static void close_pidfd(struct tachyon_peer *peer)
{
    if (peer->pidfd >= 0)
        close(peer->pidfd);
    peer->pidfd = -1;
}

tachyon_error_t handshake_listen(const char *path, const tachyon_listen_opts_t *opts, const tachyon_handshake_t *hs,
                                 const int *fds, int nfds, struct tachyon_peer *peer, int *out_conn)
{
    int lfd = -1;
    tachyon_error_t err = sock_listen(path, opts, &lfd);
    if (err != TACHYON_SUCCESS)
        return err;
    int conn = -1;
    peer->pidfd = -1;
    err = sock_accept_allowed(lfd, opts, &conn, peer);
    sock_close_listener(lfd, path); /* one peer per bus: nobody else may come */
    if (err != TACHYON_SUCCESS)
        return err;
    err = sock_send(conn, hs, sizeof(*hs), fds, nfds);
    if (err != TACHYON_SUCCESS) {
        close(conn);
        close_pidfd(peer);
        return status_error_detail(NULL, err, "sending the handshake to pid %d on %s failed (it hung up)",
                                   (int)peer->pid, path);
    }
    *out_conn = conn;
    return TACHYON_SUCCESS;
}

void handshake_fill(tachyon_handshake_t *hs, uint32_t capacity_fwd, uint32_t capacity_rev, uint32_t flags)
{
    memset(hs, 0, sizeof(*hs));
    hs->magic = TACHYON_MAGIC;
    hs->version = TACHYON_VERSION;
    hs->capacity_fwd = capacity_fwd;
    hs->shm_size_fwd = TACHYON_HEADER_BYTES + capacity_fwd;
    hs->capacity_rev = capacity_rev;
    hs->shm_size_rev = capacity_rev ? TACHYON_HEADER_BYTES + capacity_rev : 0;
    hs->msg_alignment = TACHYON_MSG_ALIGN;
    hs->flags = flags;
}

/* Magic, version and alignment: is this Tachyon ABI v4 at all? */
tachyon_error_t handshake_check_abi(const tachyon_handshake_t *hs)
{
    if (hs->magic == TACHYON_FAN_MAGIC)
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                   "the listener is a fan-out or fan-in channel, not a bus: join it with "
                                   "tachyon_fanout_connect or tachyon_fanin_connect");
    if (hs->magic != TACHYON_MAGIC || hs->version != TACHYON_VERSION || hs->msg_alignment != TACHYON_MSG_ALIGN)
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                   "the listener is not a Tachyon ABI v4 bus (magic 0x%08x, version %u, "
                                   "alignment %u)",
                                   hs->magic, hs->version, hs->msg_alignment);
    return TACHYON_SUCCESS;
}

/* One ring's size fields: a valid capacity in a segment of 768 + capacity. */
tachyon_error_t handshake_check_ring(uint32_t capacity, uint32_t shm_size)
{
    if (!tachyon_capacity_valid(capacity) || (uint64_t)shm_size != (uint64_t)TACHYON_HEADER_BYTES + capacity)
        return status_error_detail(NULL, TACHYON_ERR_INVALID_SZ,
                                   "the listener offers a ring of %u bytes in a %u-byte segment; a ring is a "
                                   "power of two from 64 B to 1 GiB after a 768-byte header",
                                   capacity, shm_size);
    return TACHYON_SUCCESS;
}

/* Every field of a plain bus's handshake (one fd), before anything is mapped. */
tachyon_error_t handshake_validate(const tachyon_handshake_t *hs, int nfds, uint64_t *capacity)
{
    tachyon_error_t err = handshake_check_abi(hs);
    if (err != TACHYON_SUCCESS)
        return err;
    if (hs->flags == TACHYON_HS_FLAG_REQREP)
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                   "the listener serves request/reply (two rings), not a plain bus");
    if (hs->flags != 0 || hs->capacity_rev != 0 || hs->shm_size_rev != 0 || nfds != 1)
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                   "the listener's handshake has flags 0x%x, a reverse ring of %u bytes and "
                                   "%d descriptors; a plain bus has one ring and one descriptor",
                                   hs->flags, hs->capacity_rev, nfds);
    err = handshake_check_ring(hs->capacity_fwd, hs->shm_size_fwd);
    if (err == TACHYON_SUCCESS)
        *capacity = hs->capacity_fwd;
    return err;
}

/*
 * timeout_ms > 0 bounds the whole connect, the wait for the handshake bytes
 * included; 0 (one attempt) and < 0 (wait for a listener forever) wait at
 * most HANDSHAKE_RECV_TIMEOUT_MS for the bytes once connected.
 */
tachyon_error_t handshake_connect(const char *path, int timeout_ms, const uid_t *allowed_uids, size_t n_allowed,
                                  tachyon_handshake_t *hs, int *fds, int max_fds, int *nfds,
                                  struct tachyon_peer *peer, int *out_sock)
{
    int64_t start = wait_now_ms();
    int64_t connect_deadline = timeout_ms < 0 ? -1 : start + timeout_ms;
    int sock = -1;
    *nfds = 0;
    peer->pidfd = -1;
    tachyon_error_t err = sock_connect(path, connect_deadline, &sock);
    if (err != TACHYON_SUCCESS)
        return err;
    err = sock_check_listener(sock, path, allowed_uids, n_allowed, peer);
    if (err == TACHYON_SUCCESS) {
        int64_t hs_deadline = timeout_ms > 0 ? connect_deadline : wait_now_ms() + HANDSHAKE_RECV_TIMEOUT_MS;
        err = sock_recv(sock, hs_deadline, hs, sizeof(*hs), fds, max_fds, nfds);
        if (err == TACHYON_ERR_TIMEOUT)
            status_error_detail(NULL, err,
                                "the listener at %s accepted the connection but sent no handshake within %lld ms",
                                path, (long long)(hs_deadline - start));
        else if (err == TACHYON_ERR_PEER_CLOSED || err == TACHYON_ERR_NETWORK)
            err = status_error_detail(NULL, TACHYON_ERR_NETWORK,
                                      "the listener at %s closed the connection before the handshake was complete",
                                      path);
        else if (err == TACHYON_ERR_ABI_MISMATCH)
            status_error_detail(NULL, err, "the listener at %s sent descriptors the protocol does not allow", path);
    }
    if (err != TACHYON_SUCCESS) {
        close(sock);
        close_pidfd(peer);
        return err;
    }
    *out_sock = sock;
    return TACHYON_SUCCESS;
}

/* ---- Extensions ---------------------------------------------------------------- */

static void ext_fill(tachyon_ext_msg_t *m, uint32_t kind, uint32_t features, int with_fd)
{
    memset(m, 0, sizeof(*m));
    m->magic = TACHYON_EXT_MAGIC;
    m->version = TACHYON_EXT_VERSION;
    m->kind = kind;
    m->features = features;
    m->n_fds = with_fd ? 1 : 0;
}

/* Send our message of `kind`, with our eventfd when we offer one. */
static int ext_send(int sock, uint32_t kind, uint32_t features, int our_evfd)
{
    int with_fd = (features & TACHYON_FEATURE_EVENTFD) && our_evfd >= 0;
    if (!with_fd)
        features &= ~TACHYON_FEATURE_EVENTFD;
    tachyon_ext_msg_t m;
    ext_fill(&m, kind, features, with_fd);
    return sock_send(sock, &m, sizeof(m), with_fd ? &our_evfd : NULL, with_fd) == TACHYON_SUCCESS;
}

/*
 * Receive the other side's extension message of `kind`: 0 when it sent none
 * (closed, timed out) or one that is not well formed. Its eventfd is kept
 * (in *peer_evfd) only when it announced one, sent exactly that, and it is an
 * eventfd; otherwise the feature is dropped and whatever came is closed.
 */
static int ext_receive(int sock, uint32_t kind, int64_t deadline, uint32_t *features, int *peer_evfd)
{
    tachyon_ext_msg_t m;
    int fds[2], nfds = 0;
    *peer_evfd = -1;
    tachyon_error_t err = sock_recv(sock, deadline, &m, sizeof(m), fds, 2, &nfds);
    if (err != TACHYON_SUCCESS)
        return 0;
    int ok = m.magic == TACHYON_EXT_MAGIC && m.version == TACHYON_EXT_VERSION && m.kind == kind &&
             m.n_fds == (uint32_t)nfds;
    int keep = ok && (m.features & TACHYON_FEATURE_EVENTFD) && nfds == 1 && notify_accept_peer_fd(fds[0]);
    for (int i = keep ? 1 : 0; i < nfds; i++)
        close(fds[i]);
    if (!ok)
        return 0;
    *peer_evfd = keep ? fds[0] : -1;
    *features = keep ? m.features : m.features & ~TACHYON_FEATURE_EVENTFD;
    return 1;
}

/* Keep the peer's eventfd only if the agreed features include it. */
static uint32_t ext_agree(uint32_t agreed, int *peer_evfd)
{
    if (!(agreed & TACHYON_FEATURE_EVENTFD) && *peer_evfd >= 0) {
        close(*peer_evfd);
        *peer_evfd = -1;
    }
    return agreed;
}

/* Listener: wait for the connector's offer, answer with what both handle
 * (of `ours`). */
uint32_t handshake_ext_answer_fd(int conn, uint32_t ours, int our_evfd, int *peer_evfd)
{
    uint32_t offered = 0;
    if (our_evfd < 0)
        ours &= ~TACHYON_FEATURE_EVENTFD;
    if (!ext_receive(conn, TACHYON_EXT_OFFER, wait_now_ms() + EXT_WAIT_MS, &offered, peer_evfd))
        return 0;
    uint32_t agreed = offered & ours & KNOWN_FEATURES;
    if (!ext_send(conn, TACHYON_EXT_ANSWER, agreed, our_evfd))
        agreed = 0;
    return ext_agree(agreed, peer_evfd);
}

/* Connector: offer `ours`, take the listener's answer. */
uint32_t handshake_ext_offer_fd(int sock, uint32_t ours, int our_evfd, int64_t deadline, int *peer_evfd)
{
    *peer_evfd = -1;
    if (our_evfd < 0)
        ours &= ~TACHYON_FEATURE_EVENTFD;
    if (!ext_send(sock, TACHYON_EXT_OFFER, ours & KNOWN_FEATURES, our_evfd))
        return 0;
    int64_t cap = wait_now_ms() + EXT_WAIT_MS;
    uint32_t agreed = 0;
    if (!ext_receive(sock, TACHYON_EXT_ANSWER, deadline >= 0 && deadline < cap ? deadline : cap, &agreed, peer_evfd))
        return 0;
    return ext_agree(agreed & ours & KNOWN_FEATURES, peer_evfd);
}

uint32_t handshake_ext_answer(int conn, uint32_t ours)
{
    int peer_evfd;
    return handshake_ext_answer_fd(conn, ours & ~TACHYON_FEATURE_EVENTFD, -1, &peer_evfd);
}

uint32_t handshake_ext_offer(int sock, uint32_t ours, int64_t deadline)
{
    int peer_evfd;
    return handshake_ext_offer_fd(sock, ours & ~TACHYON_FEATURE_EVENTFD, -1, deadline, &peer_evfd);
}
