/*
 * test_rpc_published_peer.c - our request/reply layer against a peer written
 * from docs/rpc.md's description of the published tachyon-ipc 0.5.1 layer
 * alone, on raw sockets and raw shared memory (no code of this library on
 * its side):
 *
 *   - a published-style caller against our server: the handshake bytes and
 *     descriptors it receives, calls with ids 1, 2, 3, ..., pipelining, an
 *     odd id, requests with route bits, its end without notice;
 *   - a published-style server against our caller: the framing of our
 *     requests, its replies with stale header bytes, its sleeping consumer
 *     woken by our producer, wrong-order waits, its death mid-call;
 *   - hostile bytes from either: a corrupt header in the ring we read.
 *
 * Each raw peer runs in a child process and exits 0 when everything it saw
 * was as the description says. The published consumer publishes its tail
 * only every 32 messages; the sizes below leave room for that.
 */
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "helpers.h"
#include "wire.h"

#define SPIN 1000u
#define DEATH_BOUND_MS 250
#define HS_MAGIC 0x54414348u
#define SEG_HEADER 768u
#define PUBLISH_TAIL_EVERY 32

/* A raw peer's verdict: failed checks are printed and make it exit 1. */
static int peer_failures;
#define PEER_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "raw peer: %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
            peer_failures++;                                                               \
        }                                                                                  \
    } while (0)
#define PEER_REQUIRE(cond)                                                                 \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "raw peer: %s:%d: required: %s\n", __FILE__, __LINE__, #cond); \
            _exit(1);                                                                      \
        }                                                                                  \
    } while (0)

/* ---- One ring, as the published library drives it -------------------------- */

struct raw_ring {
    tachyon_segment_header_t *hdr;
    uint8_t *data;
    uint64_t cap;
    uint64_t head;        /* producer: next free byte */
    uint64_t tail;        /* consumer: private tail */
    uint64_t pending_end; /* consumer: the tail after the message handed out */
    unsigned unpublished; /* consumer: commits since the shared tail was stored */
    uint64_t slot_pos;    /* producer: the acquired slot */
    uint32_t slot_size;
};

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, 0);
}

static void raw_attach(struct raw_ring *r, void *base, uint64_t cap)
{
    memset(r, 0, sizeof(*r));
    r->hdr = base;
    r->data = (uint8_t *)base + SEG_HEADER;
    r->cap = cap;
}

/* Reserve round_up(64 + max, 64) bytes at head, wrapping with a full 64-byte
 * skip header when the slot would cross the end. NULL: full (the shared tail
 * is what counts, never blocks). */
static uint8_t *raw_acquire(struct raw_ring *r, size_t max)
{
    uint64_t need = (64 + max + 63) & ~(uint64_t)63;
    uint64_t off = r->head & (r->cap - 1);
    uint64_t to_end = r->cap - off;
    uint64_t total = to_end < need ? to_end + need : need;
    uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
    if (r->head + total - tail > r->cap)
        return NULL;
    if (to_end < need) {
        uint8_t *marker = r->data + off;
        memset(marker, 0, 64);
        uint32_t skip = 0xFFFFFFFFu;
        memcpy(marker, &skip, 4);
        r->head += to_end;
    }
    r->slot_pos = r->head;
    r->slot_size = (uint32_t)need;
    return r->data + (r->head & (r->cap - 1)) + 64;
}

/* Write the 24 header bytes the published writer writes (the other 40 keep
 * whatever was there: `stale` fills them to prove nobody reads them), publish
 * head, wake a sleeping consumer. */
static void raw_commit(struct raw_ring *r, uint32_t size, uint32_t type_id, uint64_t cid, int stale)
{
    uint8_t *h = r->data + (r->slot_pos & (r->cap - 1));
    if (stale >= 0)
        memset(h + 24, stale, 40);
    uint32_t words[4] = {size, type_id, r->slot_size, 0};
    memcpy(h, words, 16);
    memcpy(h + 16, &cid, 8);
    r->head = r->slot_pos + r->slot_size;
    atomic_store_explicit(&r->hdr->head, r->head, memory_order_release);
    if (atomic_load_explicit(&r->hdr->consumer_sleeping, memory_order_relaxed) != 2) {
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&r->hdr->consumer_sleeping, memory_order_relaxed) == 1)
            futex(&r->hdr->consumer_sleeping, FUTEX_WAKE, 1, NULL);
    }
}

/* Commit the acquired slot, but with a header that claims `reserved` bytes
 * (head still moves by the slot's real size): a hostile writer. */
static void raw_commit_lying(struct raw_ring *r, uint32_t size, uint32_t reserved, uint64_t cid)
{
    uint32_t real = r->slot_size;
    r->slot_size = reserved;
    raw_commit(r, size, 1, cid, -1);
    r->head = r->slot_pos + real;
    atomic_store_explicit(&r->hdr->head, r->head, memory_order_release);
}

/* The next message if one is published: read 24 header bytes, follow a skip
 * marker to offset 0 at once, validate. NULL: empty; *bad set: corrupt (the
 * ring goes FATAL, as the published reader does). */
static const uint8_t *raw_try_read(struct raw_ring *r, uint32_t *size, uint32_t *type_id, uint64_t *cid, int *bad)
{
    uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
    if (r->tail == head)
        return NULL;
    const uint8_t *h = r->data + (r->tail & (r->cap - 1));
    uint32_t sz;
    memcpy(&sz, h, 4);
    if (sz == 0xFFFFFFFFu) {
        r->tail += r->cap - (r->tail & (r->cap - 1));
        /* A published head never ends on a marker when the peer is one of ours
         * that knows we are a published reader. */
        PEER_CHECK(r->tail != head);
        h = r->data;
        memcpy(&sz, h, 4);
    }
    uint32_t words[3];
    memcpy(words, h, 12);
    uint32_t reserved = words[2];
    if (reserved < 64 || reserved > r->cap || reserved % 64 || sz > reserved - 64) {
        atomic_store_explicit(&r->hdr->state, TACHYON_STATE_FATAL_ERROR, memory_order_release);
        *bad = 1;
        return NULL;
    }
    *size = sz;
    *type_id = words[1];
    memcpy(cid, h + 16, 8);
    r->pending_end = r->tail + reserved;
    return h + 64;
}

/* Release the message: the shared tail moves only every 32 releases. */
static void raw_release(struct raw_ring *r)
{
    r->tail = r->pending_end;
    if (++r->unpublished == PUBLISH_TAIL_EVERY) {
        atomic_store_explicit(&r->hdr->tail, r->tail, memory_order_release);
        r->unpublished = 0;
    }
}

/* Blocking read: spin, then sleep on the futex word (store 1, fence, re-check
 * head, FUTEX_WAIT for 1 up to 200 ms, store 0), as published. */
static const uint8_t *raw_read(struct raw_ring *r, uint32_t *size, uint32_t *type_id, uint64_t *cid)
{
    int bad = 0;
    for (unsigned spins = 0;; spins++) {
        const uint8_t *p = raw_try_read(r, size, type_id, cid, &bad);
        if (p || bad)
            return p;
        if (spins < 2000) {
            __builtin_ia32_pause();
            continue;
        }
        atomic_store_explicit(&r->hdr->consumer_sleeping, 1, memory_order_release);
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&r->hdr->head, memory_order_acquire) == r->tail) {
            struct timespec ts = {0, 200 * 1000000L};
            futex(&r->hdr->consumer_sleeping, FUTEX_WAIT, 1, &ts);
        }
        atomic_store_explicit(&r->hdr->consumer_sleeping, 0, memory_order_relaxed);
        spins = 0;
    }
}

/* ---- The published handshake, both ends -------------------------------------- */

struct raw_pair {
    void *base[2];
    size_t size[2];
    struct raw_ring fwd, rev;
};

static void *map_fd(int fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    PEER_REQUIRE(p != MAP_FAILED);
    return p;
}

/* Connector: one recvmsg of 32 bytes with room for two fds. */
static void raw_connect(const char *path, uint32_t want_fwd, uint32_t want_rev, struct raw_pair *pair)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    int sock = -1;
    for (int tries = 0; tries < 400; tries++) { /* the published example retries every 50 ms; 25 here */
        sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) == 0)
            break;
        close(sock);
        sock = -1;
        usleep(25000);
    }
    PEER_REQUIRE(sock >= 0);
    uint32_t hs[8];
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } ctrl;
    struct iovec iov = {hs, sizeof(hs)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf, .msg_controllen = sizeof(ctrl.buf)};
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    close(sock); /* no extension offer: a published connector just closes */
    PEER_REQUIRE(n == 32);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    PEER_REQUIRE(c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS);
    PEER_CHECK(c->cmsg_len == CMSG_LEN(2 * sizeof(int))); /* two fds in one message */
    PEER_CHECK(CMSG_NXTHDR(&msg, c) == NULL);
    int fds[2];
    memcpy(fds, CMSG_DATA(c), sizeof(fds));
    /* (magic, 4, cap_fwd, 768 + cap_fwd, cap_rev, 768 + cap_rev, 64, 1) */
    uint32_t want[8] = {HS_MAGIC, 4, want_fwd, SEG_HEADER + want_fwd, want_rev, SEG_HEADER + want_rev, 64, 1};
    for (int i = 0; i < 8; i++)
        PEER_CHECK(hs[i] == want[i]);
    for (int i = 0; i < 2; i++) {
        struct stat st;
        PEER_REQUIRE(fstat(fds[i], &st) == 0);
        pair->size[i] = (size_t)st.st_size;
        PEER_CHECK(fcntl(fds[i], F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
    }
    PEER_CHECK(pair->size[0] == SEG_HEADER + want_fwd); /* the request ring comes first */
    PEER_CHECK(pair->size[1] == SEG_HEADER + want_rev);
    for (int i = 0; i < 2; i++) {
        pair->base[i] = map_fd(fds[i], pair->size[i]);
        close(fds[i]);
        const tachyon_segment_header_t *h = pair->base[i];
        PEER_CHECK(h->magic == HS_MAGIC && h->version == 4 && h->msg_alignment == 64);
        PEER_CHECK(h->capacity == (i == 0 ? want_fwd : want_rev));
        PEER_CHECK(atomic_load(&((tachyon_segment_header_t *)pair->base[i])->state) == TACHYON_STATE_READY);
    }
    raw_attach(&pair->fwd, pair->base[0], want_fwd);
    raw_attach(&pair->rev, pair->base[1], want_rev);
}

static int make_segment(const char *path, uint32_t cap, void **base)
{
    int fd = memfd_create(path, MFD_ALLOW_SEALING | MFD_CLOEXEC);
    PEER_REQUIRE(fd >= 0 && ftruncate(fd, SEG_HEADER + cap) == 0 && fchmod(fd, 0600) == 0);
    PEER_REQUIRE(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    *base = map_fd(fd, SEG_HEADER + cap);
    tachyon_segment_header_t *h = *base;
    h->magic = HS_MAGIC;
    h->version = 4;
    h->capacity = cap;
    h->msg_alignment = 64;
    atomic_store_explicit(&h->state, TACHYON_STATE_READY, memory_order_release);
    return fd;
}

/* Listener: both segments (fwd first), one connection, one sendmsg with the
 * 32 bytes and [fwd_fd, rev_fd], then close and unlink. */
static void raw_listen(const char *path, uint32_t cap_fwd, uint32_t cap_rev, struct raw_pair *pair)
{
    int fds[2] = {make_segment(path, cap_fwd, &pair->base[0]), make_segment(path, cap_rev, &pair->base[1])};
    raw_attach(&pair->fwd, pair->base[0], cap_fwd);
    raw_attach(&pair->rev, pair->base[1], cap_rev);
    unlink(path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    PEER_REQUIRE(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && listen(lfd, 1) == 0);
    struct pollfd p = {lfd, POLLIN, 0};
    while (poll(&p, 1, 100) == 0)
        ;
    int conn = accept(lfd, NULL, NULL);
    PEER_REQUIRE(conn >= 0);
    uint32_t hs[8] = {HS_MAGIC, 4, cap_fwd, SEG_HEADER + cap_fwd, cap_rev, SEG_HEADER + cap_rev, 64, 1};
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } ctrl;
    memset(&ctrl, 0, sizeof(ctrl));
    struct iovec iov = {hs, sizeof(hs)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf, .msg_controllen = sizeof(ctrl.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    PEER_REQUIRE(sendmsg(conn, &msg, MSG_NOSIGNAL) == 32);
    close(conn);
    close(lfd);
    unlink(path);
    close(fds[0]);
    close(fds[1]);
}

/* ---- Our side's helpers -------------------------------------------------------- */

static int wait_child(pid_t child)
{
    int status;
    if (waitpid(child, &status, 0) != child)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static pid_t start_child(void (*fn)(const char *, int), const char *path, int *note_read)
{
    int note[2];
    REQUIRE(pipe(note) == 0);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        close(note[0]);
        fn(path, note[1]);
        _exit(peer_failures ? 1 : 0);
    }
    close(note[1]);
    *note_read = note[0];
    return child;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31 + i);
}

static int filled(const uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)(seed * 31 + i))
            return 0;
    return 1;
}

/* ---- 1. A published-style caller against our server ------------------------- */

#define CALLER_FWD 8192u
#define CALLER_REV 16384u
#define CALLER_ROUNDS 300

/* The server's answer to a request: every byte + 1, type + 1. */
static void raw_caller(const char *path, int note)
{
    struct raw_pair pr;
    raw_connect(path, CALLER_FWD, CALLER_REV, &pr);
    uint8_t buf[512];
    uint64_t cid = 0;
    /* Ping-pong: ids 1, 2, 3, ...; some types with route bits (only the low
     * 16 bits reach the server); sizes 0..200 (wraps included). */
    for (int i = 0; i < CALLER_ROUNDS; i++) {
        size_t n = (size_t)(i * 37) % 201;
        uint32_t type = (uint32_t)(i % 3 == 0 ? 0x50000 | (i & 0xFFF) : i & 0xFFF);
        uint8_t *slot = raw_acquire(&pr.fwd, n);
        PEER_REQUIRE(slot != NULL);
        fill(slot, n, (uint64_t)i);
        raw_commit(&pr.fwd, (uint32_t)n, type, ++cid, -1);
        uint32_t size, rtype;
        uint64_t rcid;
        const uint8_t *p = raw_read(&pr.rev, &size, &rtype, &rcid);
        PEER_REQUIRE(p != NULL);
        PEER_CHECK(rcid == cid && size == n && rtype == (type & 0xFFFF) + 1);
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)(p[k] - 1);
        PEER_CHECK(filled(buf, n, (uint64_t)i));
        raw_release(&pr.rev);
    }
    /* Eight in flight, then their replies in order. */
    for (int i = 0; i < 8; i++) {
        uint8_t *slot = raw_acquire(&pr.fwd, 16);
        PEER_REQUIRE(slot != NULL);
        fill(slot, 16, 1000 + (uint64_t)i);
        raw_commit(&pr.fwd, 16, 7, ++cid, -1);
    }
    for (int i = 0; i < 8; i++) {
        uint32_t size, rtype;
        uint64_t rcid;
        PEER_REQUIRE(raw_read(&pr.rev, &size, &rtype, &rcid) != NULL);
        PEER_CHECK(rcid == cid - 7 + (uint64_t)i && size == 16 && rtype == 8);
        raw_release(&pr.rev);
    }
    /* The server does not check ids: an odd one comes back as it went. */
    uint8_t *slot = raw_acquire(&pr.fwd, 4);
    PEER_REQUIRE(slot != NULL);
    memcpy(slot, "odd!", 4);
    uint64_t odd = UINT64_MAX - 15;
    raw_commit(&pr.fwd, 4, 1, odd, -1);
    uint32_t size, rtype;
    uint64_t rcid;
    const uint8_t *answer = raw_read(&pr.rev, &size, &rtype, &rcid);
    PEER_REQUIRE(answer != NULL);
    PEER_CHECK(rcid == odd && size == 4 && memcmp(answer, "pee\"", 4) == 0);
    raw_release(&pr.rev);
    /* Two last calls, then leave as the published library does: no notice,
     * the states stay READY. */
    for (int i = 0; i < 2; i++) {
        slot = raw_acquire(&pr.fwd, 8);
        PEER_REQUIRE(slot != NULL);
        raw_commit(&pr.fwd, 8, 1, ++cid, -1);
    }
    (void)!write(note, "x", 1);
}

static void test_published_caller_against_our_server(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "pub-caller");
    int note;
    pid_t child = start_child(raw_caller, path, &note);
    tachyon_rpc_bus_t *server;
    REQUIRE(tachyon_rpc_listen(path, CALLER_FWD, CALLER_REV, &server) == TACHYON_SUCCESS);
    uint64_t served = 0;
    for (;;) {
        uint64_t cid;
        uint32_t type;
        size_t size;
        const uint8_t *p = tachyon_rpc_serve_timeout(server, &cid, &type, &size, SPIN, 20000);
        if (!p)
            break;
        CHECK(type <= 0xFFFF);
        uint8_t *r = tachyon_rpc_acquire_reply_tx_timeout(server, size, 5000);
        REQUIRE(r != NULL);
        for (size_t k = 0; k < size; k++)
            r[k] = (uint8_t)(p[k] + 1);
        CHECK_ERR(tachyon_rpc_commit_serve(server), TACHYON_SUCCESS);
        CHECK_ERR(tachyon_rpc_commit_reply(server, cid, size, type + 1), TACHYON_SUCCESS);
        served++;
    }
    /* The caller left after its last two calls: both were served, then its
     * end was seen. */
    CHECK_EQ(tachyon_rpc_last_error(server), TACHYON_ERR_PEER_DEAD);
    CHECK_EQ(served, CALLER_ROUNDS + 8 + 1 + 2);
    CHECK_EQ(wait_child(child), 0);
    close(note);
    tachyon_rpc_destroy(server);
}

/* ---- 2. A published-style server against our caller ---------------------------- */

#define SERVER_FWD 16384u
#define SERVER_REV 8192u
enum { OP_ECHO = 1, OP_SLOW = 2, OP_CORRUPT = 3, OP_HANG = 4, OP_QUIT = 5 };

/* Serve until OP_QUIT / OP_HANG. Replies echo the request reversed, with
 * type 0x10000 | op (the route bits must not reach the caller), stale bytes
 * after the 24 the published writer writes, and every request checked for
 * the framing the description requires. */
static void raw_server(const char *path, int note)
{
    struct raw_pair pr;
    raw_listen(path, SERVER_FWD, SERVER_REV, &pr);
    uint64_t expect_cid = 1;
    for (;;) {
        uint32_t size, type;
        uint64_t cid;
        const uint8_t *p = raw_read(&pr.fwd, &size, &type, &cid);
        PEER_REQUIRE(p != NULL);
        const uint8_t *h = p - 64;
        uint32_t reserved;
        memcpy(&reserved, h + 8, 4);
        PEER_CHECK(reserved >= 64 + size && reserved % 64 == 0);
        PEER_CHECK(cid == expect_cid); /* 1, 2, 3, ...: one id per commit */
        expect_cid = cid + 1;
        uint32_t op = type & 0xFFFF;
        if (op == OP_SLOW)
            PEER_CHECK(type == 0x70000 + OP_SLOW); /* the caller's type is sent unmasked */
        uint8_t req[4096];
        PEER_REQUIRE(size <= sizeof(req));
        memcpy(req, p, size);
        raw_release(&pr.fwd);
        if (op == OP_QUIT)
            break;
        if (op == OP_HANG) {
            (void)!write(note, "x", 1);
            for (;;)
                pause();
        }
        uint8_t *slot = raw_acquire(&pr.rev, size);
        PEER_REQUIRE(slot != NULL);
        for (uint32_t k = 0; k < size; k++)
            slot[k] = req[size - 1 - k];
        raw_commit(&pr.rev, size, 0x10000 | op, cid, 0xEE);
        if (op == OP_CORRUPT) {
            /* Then a header no honest writer makes: reserved not a multiple of 64. */
            slot = raw_acquire(&pr.rev, 8);
            PEER_REQUIRE(slot != NULL);
            raw_commit_lying(&pr.rev, 8, 100, cid + 1000);
            (void)!write(note, "x", 1);
            for (;;)
                pause();
        }
    }
    (void)!write(note, "x", 1);
}

static int call_and_check(tachyon_rpc_bus_t *client, uint32_t op, size_t n, uint64_t seed)
{
    static uint8_t req[4096];
    fill(req, n, seed);
    uint64_t cid;
    tachyon_error_t err = tachyon_rpc_call(client, req, n, op, &cid);
    if (err != TACHYON_SUCCESS) {
        fprintf(stderr, "call: %s\n", tachyon_error_message(err));
        return 0;
    }
    size_t size;
    uint32_t type;
    const uint8_t *p = tachyon_rpc_wait_timeout(client, cid, &size, &type, SPIN, 10000);
    if (!p) {
        fprintf(stderr, "wait: %s\n", tachyon_error_message(tachyon_rpc_last_error(client)));
        return 0;
    }
    int ok = size == n && type == (op & 0xFFFF);
    for (size_t k = 0; ok && k < n; k++)
        ok = p[k] == req[n - 1 - k];
    tachyon_rpc_commit_rx(client);
    return ok;
}

static void test_our_caller_against_published_server(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "pub-server");
    int note;
    pid_t child = start_child(raw_server, path, &note);
    tachyon_rpc_bus_t *client;
    REQUIRE(tachyon_rpc_connect_timeout(path, 10000, &client) == TACHYON_SUCCESS);
    CHECK_EQ(tachyon_rpc_max_request(client), SERVER_FWD - 64);

    int ok = 0;
    for (int i = 0; i < 300; i++)
        ok += call_and_check(client, OP_ECHO, (size_t)(i * 53) % 301, (uint64_t)i);
    CHECK_EQ(ok, 300);

    /* The server's consumer sleeps (200 ms futex slices): our producer must
     * wake it, not leave the request for its slice to end. */
    uint64_t slowest_ms = 0, total_ms = 0;
    for (int i = 0; i < 5; i++) {
        usleep(30000);
        uint64_t t0 = t_now_ns();
        CHECK(call_and_check(client, 0x70000 + OP_SLOW, 10, (uint64_t)i));
        uint64_t ms = (t_now_ns() - t0) / 1000000;
        total_ms += ms;
        slowest_ms = ms > slowest_ms ? ms : slowest_ms;
    }
    if (total_ms >= 5 * 100)
        fprintf(stderr, "round trips to a sleeping server took %llu ms (slowest %llu)\n",
                (unsigned long long)total_ms, (unsigned long long)slowest_ms);
    CHECK(total_ms < 5 * 100);

    /* Zero-copy call with a smaller commit; pipelining; the wrong order. */
    uint8_t *slot = tachyon_rpc_acquire_tx(client, 100);
    REQUIRE(slot != NULL);
    memcpy(slot, "abc", 3);
    uint64_t a, b;
    CHECK_ERR(tachyon_rpc_commit_call(client, 3, OP_ECHO, &a), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_call(client, "xy", 2, OP_ECHO, &b), TACHYON_SUCCESS);
    size_t size;
    uint32_t type;
    CHECK(tachyon_rpc_wait(client, b, &size, &type, SPIN) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_WRONG_REPLY);
    const char *p = tachyon_rpc_wait(client, a, &size, &type, SPIN);
    CHECK(p && size == 3 && memcmp(p, "cba", 3) == 0);
    tachyon_rpc_commit_rx(client);
    p = tachyon_rpc_wait(client, b, &size, &type, SPIN);
    CHECK(p && size == 2 && memcmp(p, "yx", 2) == 0);
    tachyon_rpc_commit_rx(client);
    CHECK_EQ(tachyon_rpc_get_state(client), TACHYON_STATE_READY);

    uint64_t q;
    CHECK_ERR(tachyon_rpc_call(client, "", 0, OP_QUIT, &q), TACHYON_SUCCESS);
    char c;
    CHECK(read(note, &c, 1) == 1);
    CHECK_EQ(wait_child(child), 0);
    close(note);
    tachyon_rpc_destroy(client);
}

/* The published server is killed while our caller waits: the replies it sent
 * are read, then the wait ends with PEER_DEAD (no held-lock feature with a
 * published peer: the pidfd alone tells). */
static void test_published_server_killed_mid_call(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "pub-server-kill");
    int note;
    pid_t child = start_child(raw_server, path, &note);
    tachyon_rpc_bus_t *client;
    REQUIRE(tachyon_rpc_connect_timeout(path, 10000, &client) == TACHYON_SUCCESS);
    uint64_t a, b, hang;
    CHECK_ERR(tachyon_rpc_call(client, "one", 3, OP_ECHO, &a), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_call(client, "two", 3, OP_ECHO, &b), TACHYON_SUCCESS);
    CHECK_ERR(tachyon_rpc_call(client, "", 0, OP_HANG, &hang), TACHYON_SUCCESS);
    char c;
    REQUIRE(read(note, &c, 1) == 1);
    kill(child, SIGKILL);
    uint64_t t0 = t_now_ns();
    size_t size;
    uint32_t type;
    const char *p = tachyon_rpc_wait(client, a, &size, &type, SPIN);
    CHECK(p && size == 3 && memcmp(p, "eno", 3) == 0);
    tachyon_rpc_commit_rx(client);
    p = tachyon_rpc_wait(client, b, &size, &type, SPIN);
    CHECK(p && size == 3 && memcmp(p, "owt", 3) == 0);
    tachyon_rpc_commit_rx(client);
    CHECK(tachyon_rpc_wait(client, hang, &size, &type, SPIN) == NULL);
    uint64_t ms = (t_now_ns() - t0) / 1000000;
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_PEER_DEAD);
    if (ms >= DEATH_BOUND_MS)
        fprintf(stderr, "the caller learned of the published server's death after %llu ms\n", (unsigned long long)ms);
    CHECK(ms < DEATH_BOUND_MS);
    wait_child(child);
    close(note);
    tachyon_rpc_destroy(client);
}

/* ---- 3. Hostile bytes from either side ------------------------------------------ */

static void test_corrupt_reply_is_refused(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "pub-corrupt-reply");
    int note;
    pid_t child = start_child(raw_server, path, &note);
    tachyon_rpc_bus_t *client;
    REQUIRE(tachyon_rpc_connect_timeout(path, 10000, &client) == TACHYON_SUCCESS);
    uint64_t cid;
    CHECK_ERR(tachyon_rpc_call(client, "zz", 2, OP_CORRUPT, &cid), TACHYON_SUCCESS);
    char c;
    REQUIRE(read(note, &c, 1) == 1);
    size_t size;
    uint32_t type;
    const char *p = tachyon_rpc_wait(client, cid, &size, &type, SPIN); /* the honest reply first */
    CHECK(p && size == 2);
    tachyon_rpc_commit_rx(client);
    CHECK(tachyon_rpc_wait(client, 0, &size, &type, SPIN) == NULL);
    CHECK_EQ(tachyon_rpc_last_error(client), TACHYON_ERR_FATAL);
    CHECK_EQ(tachyon_rpc_get_state(client), TACHYON_STATE_FATAL_ERROR);
    CHECK(tachyon_rpc_wait(client, 0, &size, &type, SPIN) == NULL); /* and stays refused */
    kill(child, SIGKILL);
    wait_child(child);
    close(note);
    tachyon_rpc_destroy(client);
}

/* A caller that writes a slot header no honest writer makes, then a head far
 * beyond the ring, in separate connections. */
static int hostile_mode;

static void raw_hostile_caller(const char *path, int note)
{
    struct raw_pair pr;
    raw_connect(path, 4096, 4096, &pr);
    uint8_t *slot = raw_acquire(&pr.fwd, 16);
    PEER_REQUIRE(slot != NULL);
    if (hostile_mode == 0) {
        raw_commit(&pr.fwd, 16, 1, 1, -1); /* honest */
        slot = raw_acquire(&pr.fwd, 16);
        PEER_REQUIRE(slot != NULL);
        raw_commit_lying(&pr.fwd, 16, 64 + 4096, 2); /* a slot larger than the ring */
    } else {
        atomic_store_explicit(&pr.fwd.hdr->head, (uint64_t)1 << 40, memory_order_release);
    }
    (void)!write(note, "x", 1);
    /* Our server must mark the ring it read fatal, for both to see. */
    for (int i = 0; i < 500 && atomic_load(&pr.fwd.hdr->state) != TACHYON_STATE_FATAL_ERROR; i++)
        usleep(10000);
    PEER_CHECK(atomic_load(&pr.fwd.hdr->state) == TACHYON_STATE_FATAL_ERROR);
}

static void test_corrupt_request_is_refused(void)
{
    for (hostile_mode = 0; hostile_mode < 2; hostile_mode++) {
        char path[108];
        t_socket_path(path, sizeof(path), "pub-corrupt-request");
        int note;
        pid_t child = start_child(raw_hostile_caller, path, &note);
        tachyon_rpc_bus_t *server;
        REQUIRE(tachyon_rpc_listen(path, 4096, 4096, &server) == TACHYON_SUCCESS);
        char c;
        REQUIRE(read(note, &c, 1) == 1);
        uint64_t cid;
        uint32_t type;
        size_t size;
        if (hostile_mode == 0) {
            CHECK(tachyon_rpc_serve(server, &cid, &type, &size, SPIN) != NULL); /* the honest one */
            tachyon_rpc_commit_serve(server);
        }
        CHECK(tachyon_rpc_serve(server, &cid, &type, &size, SPIN) == NULL);
        CHECK_EQ(tachyon_rpc_last_error(server), TACHYON_ERR_FATAL);
        CHECK_EQ(tachyon_rpc_get_state(server), TACHYON_STATE_FATAL_ERROR);
        CHECK_EQ(wait_child(child), 0);
        close(note);
        tachyon_rpc_destroy(server);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_published_caller_against_our_server();
    test_our_caller_against_published_server();
    test_published_server_killed_mid_call();
    test_corrupt_reply_is_refused();
    test_corrupt_request_is_refused();
    return t_result("test_rpc_published_peer");
}
