/*
 * hostile_fan.c - fan channels against hostile peers.
 *
 * A fake fan-out producer (a forked child) hands tachyon_fanout_connect
 * crafted hellos, descriptors and segments; each bad field must be refused
 * with its own error, with no crash, no descriptor left open and nothing
 * left mapped. A segment that passes the checks and then holds junk in the
 * ring must give ERR_FATAL, never a read out of bounds. A fake fan-in
 * consumer does the same to tachyon_fanin_connect. And a hostile fan-out
 * consumer (raw socket, its own mapping) that writes absurd cursors or
 * talks out of turn must not stop or crash a real producer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fan_wire.h"
#include "helpers.h"
#include "send_fds.h"

#define CAP 4096u
#define MAXC 4u

enum junk {
    JUNK_NONE, JUNK_HEADER, JUNK_HEAD_FAR, JUNK_SKIP, JUNK_TAIL_BEHIND, JUNK_STALE_STAMP, JUNK_TAIL_ODD,
    JUNK_RESUME_ODD
};

/* What the fake fan-out producer sends. Defaults describe an honest one. */
struct fake {
    tachyon_fan_hello_t first, second;
    int first_fd;        /* attach a memfd to the first hello */
    int second_fd;       /* attach the memfd to the second hello */
    int send_second;
    off_t memfd_size;
    int seals;
    uint32_t hdr_capacity;
    uint32_t hdr_state;
    uint64_t salt;
    enum junk junk;
};

static void fake_defaults(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    tachyon_fan_hello_t *h = &f->first;
    h->magic = TACHYON_FAN_MAGIC;
    h->version = TACHYON_FAN_VERSION;
    h->kind = TACHYON_FAN_KIND_OUT;
    h->index = 1;
    h->max_peers = MAXC;
    h->capacity = CAP;
    h->ring_offset = tachyon_fanout_ring_offset(MAXC);
    f->second = f->first;
    f->second_fd = 1;
    f->send_second = 1;
    f->memfd_size = tachyon_fanout_ring_offset(MAXC) + CAP;
    f->seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    f->hdr_capacity = CAP;
    f->hdr_state = TACHYON_STATE_READY;
    f->salt = 0x5A17C0DE0000003Full;
}

static int make_segment(const struct fake *f)
{
    int fd = memfd_create("tachyon-fake-fan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, f->memfd_size) != 0)
        _exit(101);
    uint32_t ro = tachyon_fanout_ring_offset(MAXC);
    if ((uint64_t)f->memfd_size >= (uint64_t)ro + CAP) {
        uint8_t *base = mmap(NULL, ro + CAP, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED)
            _exit(102);
        tachyon_fanout_header_t *h = (void *)base;
        h->magic = TACHYON_FAN_MAGIC;
        h->version = TACHYON_FAN_VERSION;
        h->capacity = f->hdr_capacity;
        h->max_consumers = MAXC;
        h->ring_offset = ro;
        h->policy = 0;
        atomic_store(&h->state, f->hdr_state);
        atomic_store(&h->stamp_salt, f->salt);
        tachyon_fan_entry_t *e = tachyon_fanout_entry(h, 1);
        uint8_t *ring = base + ro;
        switch (f->junk) {
        case JUNK_NONE:
            break;
        case JUNK_HEADER: /* a stamped slot whose header claims 1 MiB */
            atomic_store(&h->head, 128);
            ((tachyon_msg_header_t *)ring)->reserved_size = 1u << 20;
            atomic_store(&((tachyon_msg_header_t *)ring)->stamp, 0 ^ f->salt);
            break;
        case JUNK_HEAD_FAR: /* head far beyond a ring past our tail */
            atomic_store(&h->head, 1ull << 40);
            atomic_store(&e->tail, (1ull << 40) - 64);
            atomic_store(&h->head, (1ull << 40) + 10 * CAP);
            break;
        case JUNK_SKIP: /* a stamped skip marker that does not reach the end of the ring */
            atomic_store(&h->head, 256);
            ((tachyon_msg_header_t *)ring)->size = TACHYON_SKIP_MARKER;
            ((tachyon_msg_header_t *)ring)->reserved_size = 64;
            atomic_store(&((tachyon_msg_header_t *)ring)->stamp, 0 ^ f->salt);
            break;
        case JUNK_STALE_STAMP: /* a complete-looking slot stamped for another lap: not ready */
            atomic_store(&h->head, 128);
            ((tachyon_msg_header_t *)ring)->size = 8;
            ((tachyon_msg_header_t *)ring)->reserved_size = 128;
            atomic_store(&((tachyon_msg_header_t *)ring)->stamp, (uint64_t)CAP ^ f->salt);
            break;
        case JUNK_TAIL_ODD: /* our cursor inside a slot, not at its start */
            atomic_store(&h->head, 4095);
            atomic_store(&e->tail, 4095);
            break;
        case JUNK_RESUME_ODD: /* a drop that resumes us inside a slot */
            atomic_store(&e->resume_pos, 4095);
            atomic_store(&e->resume_seq, 7);
            atomic_store(&e->drop_gen, 1);
            break;
        case JUNK_TAIL_BEHIND: /* our entry placed two rings behind head */
            atomic_store(&h->head, 3 * CAP);
            atomic_store(&e->tail, CAP);
            break;
        }
        munmap(base, ro + CAP);
    }
    if (f->seals && fcntl(fd, F_ADD_SEALS, f->seals) != 0)
        _exit(103);
    return fd;
}

static void __attribute__((noreturn)) fake_producer(const char *path, const struct fake *f)
{
    alarm(15);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(s, 1) != 0)
        _exit(107);
    int conn = accept(s, NULL, NULL);
    unlink(path);
    if (conn < 0)
        _exit(108);
    int seg = make_segment(f);
    (void)send_with_fds(conn, &f->first, sizeof(f->first), &seg, f->first_fd ? 1 : 0);
    tachyon_fan_hello_t req;
    struct pollfd p = {.fd = conn, .events = POLLIN};
    if (poll(&p, 1, 5000) > 0 && recv(conn, &req, sizeof(req), MSG_WAITALL) == (ssize_t)sizeof(req) &&
        f->send_second)
        (void)send_with_fds(conn, &f->second, sizeof(f->second), &seg, f->second_fd ? 1 : 0);
    poll(&p, 1, 12000); /* until the connector hangs up */
    _exit(0);
}

static int count_memfd_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, "memfd:") != NULL;
    fclose(f);
    return n;
}

typedef void (*mutator)(struct fake *f);

/* want: what connect returns; rx_want (when connect succeeds): what the
 * first receive returns. */
static void run_case(const char *name, mutator mutate, tachyon_error_t want, tachyon_error_t rx_want)
{
    sec_case_begin(name);
    struct fake f;
    fake_defaults(&f);
    if (mutate)
        mutate(&f);
    char path[108];
    sec_socket_path(path, sizeof(path), "fakefan");
    int fds_before = sec_count_fds();
    pid_t pid = fork();
    if (pid == 0)
        fake_producer(path, &f);
    tachyon_fanout_rx_t *rx = NULL;
    tachyon_error_t err = tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, 3000, &rx);
    CHECK_ERR(err, want, "connect");
    if (err == TACHYON_SUCCESS) {
        tachyon_fan_msg_t m;
        tachyon_error_t rx_err = tachyon_fanout_acquire_rx(rx, &m, 0, 0);
        CHECK_ERR(rx_err, rx_want, "first receive");
        tachyon_fanout_rx_destroy(rx);
    } else {
        CHECK(rx == NULL, "failure left *out set");
    }
    int status = sec_wait_child(pid, 15000);
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "fake producer failed (status 0x%x)",
          status);
    CHECK(sec_count_fds() == fds_before, "open fds %d before, %d after", fds_before, sec_count_fds());
    CHECK(count_memfd_maps() == 0, "a memfd is still mapped");
    unlink(path);
    sec_case_end();
}

static void bad_magic(struct fake *f) { f->first.magic = TACHYON_MAGIC; f->second = f->first; }
static void bad_version(struct fake *f) { f->first.version = TACHYON_FAN_VERSION + 1; f->second = f->first; }
static void kind_in(struct fake *f) { f->first.kind = TACHYON_FAN_KIND_IN; f->second = f->first; }
static void max_zero(struct fake *f) { f->first.max_peers = 0; f->second = f->first; }
static void max_huge(struct fake *f) { f->first.max_peers = 1000; f->second = f->first; }
static void index_out(struct fake *f) { f->first.index = MAXC; f->second = f->first; }
static void index_full(struct fake *f) { f->first.index = TACHYON_FAN_FULL; f->second = f->first; }
static void cap_not_pow2(struct fake *f) { f->first.capacity = 3000; f->second = f->first; }
static void cap_tiny(struct fake *f) { f->first.capacity = 64; f->second = f->first; }
static void ring_offset_wrong(struct fake *f) { f->first.ring_offset = 512; f->second = f->first; }
static void flags_unknown(struct fake *f) { f->first.flags = 9; f->second = f->first; }
static void fd_with_first(struct fake *f) { f->first_fd = 1; }
static void second_differs(struct fake *f) { f->second.index = 2; }
static void second_without_fd(struct fake *f) { f->second_fd = 0; }
static void no_second(struct fake *f) { f->send_second = 0; }
static void memfd_short(struct fake *f) { f->memfd_size = tachyon_fanout_ring_offset(MAXC) + CAP / 2; }
static void no_seals(struct fake *f) { f->seals = 0; }
static void hdr_capacity(struct fake *f) { f->hdr_capacity = CAP * 2; }
static void hdr_initializing(struct fake *f) { f->hdr_state = TACHYON_STATE_INITIALIZING; }
static void junk_header(struct fake *f) { f->junk = JUNK_HEADER; }
static void junk_head_far(struct fake *f) { f->junk = JUNK_HEAD_FAR; }
static void junk_skip(struct fake *f) { f->junk = JUNK_SKIP; }
static void tail_behind(struct fake *f) { f->junk = JUNK_TAIL_BEHIND; }
static void stale_stamp(struct fake *f) { f->junk = JUNK_STALE_STAMP; }
static void no_salt(struct fake *f) { f->salt = 0; }
static void tail_odd(struct fake *f) { f->junk = JUNK_TAIL_ODD; }
static void resume_odd(struct fake *f) { f->junk = JUNK_RESUME_ODD; }

/* ---- A fake fan-in consumer ---------------------------------------------------- */

static void __attribute__((noreturn)) fake_fanin(const char *path, const tachyon_fan_hello_t *hello,
                                                 const tachyon_handshake_t *hs)
{
    alarm(15);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(s, 1) != 0)
        _exit(107);
    int conn = accept(s, NULL, NULL);
    unlink(path);
    if (conn < 0)
        _exit(108);
    (void)send_with_fds(conn, hello, sizeof(*hello), NULL, 0);
    if (hs) {
        int fd = memfd_create("tachyon-fake-fanin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || ftruncate(fd, TACHYON_HEADER_BYTES + CAP) != 0)
            _exit(109);
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
        (void)send_with_fds(conn, hs, sizeof(*hs), &fd, 1);
    }
    struct pollfd p = {.fd = conn, .events = POLLIN};
    poll(&p, 1, 12000);
    _exit(0);
}

static void fanin_case(const char *name, uint32_t kind, uint32_t index, int with_hs, uint32_t hs_cap,
                       tachyon_error_t want)
{
    sec_case_begin(name);
    tachyon_fan_hello_t hello;
    memset(&hello, 0, sizeof(hello));
    hello.magic = TACHYON_FAN_MAGIC;
    hello.version = TACHYON_FAN_VERSION;
    hello.kind = kind;
    hello.index = index;
    hello.max_peers = 2;
    hello.capacity = CAP;
    tachyon_handshake_t hs;
    memset(&hs, 0, sizeof(hs));
    hs.magic = TACHYON_MAGIC;
    hs.version = TACHYON_VERSION;
    hs.capacity_fwd = hs_cap;
    hs.shm_size_fwd = TACHYON_HEADER_BYTES + hs_cap;
    hs.msg_alignment = TACHYON_MSG_ALIGN;
    char path[108];
    sec_socket_path(path, sizeof(path), "fakefanin");
    int fds_before = sec_count_fds();
    pid_t pid = fork();
    if (pid == 0)
        fake_fanin(path, &hello, with_hs ? &hs : NULL);
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = tachyon_fanin_connect(path, 3000, NULL, &bus);
    CHECK_ERR(err, want, "fan-in connect");
    if (bus)
        tachyon_bus_destroy(bus);
    int status = sec_wait_child(pid, 15000);
    CHECK(status >= 0 && WIFEXITED(status), "fake fan-in failed (status 0x%x)", status);
    CHECK(sec_count_fds() == fds_before, "open fds %d before, %d after", fds_before, sec_count_fds());
    CHECK(count_memfd_maps() == 0, "a memfd is still mapped");
    unlink(path);
    sec_case_end();
}

/* ---- A hostile fan-out consumer against a real producer -------------------------- */

/* Join by hand: hello, request, the memfd; returns the connection, maps the
 * table read-write into *table. */
static int raw_join(const char *path, uint32_t start_flags, tachyon_fanout_header_t **table, uint32_t *index)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        return -1;
    tachyon_fan_hello_t hello;
    if (recv(s, &hello, sizeof(hello), MSG_WAITALL) != (ssize_t)sizeof(hello))
        return -1;
    *index = hello.index;
    tachyon_fan_hello_t req = hello;
    req.flags = start_flags;
    if (send(s, &req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req))
        return s;
    if (!table)
        return s;
    char buf[sizeof(hello)];
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr a;
    } ctrl;
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.b, .msg_controllen = sizeof(ctrl.b)};
    if (recvmsg(s, &msg, MSG_WAITALL) != (ssize_t)sizeof(buf))
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(fd));
    *table = mmap(NULL, hello.ring_offset, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return *table == MAP_FAILED ? -1 : s;
}

static int wait_consumers(tachyon_fanout_t *fo, uint32_t n)
{
    for (int i = 0; i < 2000; i++) {
        if (tachyon_fanout_consumers(fo) == n)
            return 1;
        sec_sleep_ms(5);
    }
    return 0;
}

static void hostile_consumer_case(const char *name, tachyon_fan_policy_t policy, int how)
{
    sec_case_begin(name);
    char path[108];
    sec_socket_path(path, sizeof(path), "realfan");
    tachyon_fanout_t *fo = NULL;
    CHECK_ERR(tachyon_fanout_listen(path, CAP, MAXC, policy, &fo), TACHYON_SUCCESS, "listen");
    tachyon_fanout_rx_t *honest = NULL;
    CHECK_ERR(tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, 3000, &honest), TACHYON_SUCCESS, "honest");
    tachyon_fanout_header_t *table = NULL;
    uint32_t index = 0;
    int s = raw_join(path, how == 3 ? 77 : 0, how == 3 ? NULL : &table, &index);
    CHECK(s >= 0, "raw join failed");
    if (how != 3)
        CHECK(wait_consumers(fo, 2), "the raw consumer was not admitted");
    if (table && index < MAXC) {
        tachyon_fan_entry_t *e = tachyon_fanout_entry(table, index);
        if (how == 0)
            atomic_store(&e->tail, UINT64_MAX / 2); /* far ahead of head */
        if (how == 1)
            atomic_store(&e->ack_gen, 12345); /* acknowledges a drop that never was */
    }
    if (how == 2)
        (void)!send(s, "junk", 4, MSG_NOSIGNAL); /* talks out of turn */
    /* The producer goes on: the honest consumer keeps up, the hostile one is
     * dropped, disconnected or never counted. */
    int sent = 0;
    tachyon_fan_msg_t m;
    for (int i = 0; i < 200; i++) {
        char payload[40];
        memset(payload, i, sizeof(payload));
        tachyon_error_t err = tachyon_fanout_send(fo, payload, sizeof(payload), 1, how == 1 && s >= 0 ? 500 : 10000);
        if (err != TACHYON_SUCCESS && how == 1 && s >= 0) {
            /* A bogus acknowledgement is not a tail: with BLOCK the raw
             * consumer, which reads nothing, holds the ring; leaving frees it. */
            close(s);
            s = -1;
            err = tachyon_fanout_send(fo, payload, sizeof(payload), 1, 10000);
        }
        CHECK_ERR(err, TACHYON_SUCCESS, "send");
        if (err != TACHYON_SUCCESS)
            break;
        sent++;
        CHECK_ERR(tachyon_fanout_acquire_rx(honest, &m, 0, 10000), TACHYON_SUCCESS, "honest receive");
        CHECK(m.size == sizeof(payload) && ((const uint8_t *)m.ptr)[0] == (uint8_t)i, "honest consumer's message");
        tachyon_fanout_commit_rx(honest);
    }
    CHECK(sent == 200, "sent %d of 200", sent);
    if (table)
        munmap(table, tachyon_fanout_ring_offset(MAXC));
    if (s >= 0)
        close(s);
    tachyon_fanout_rx_destroy(honest);
    tachyon_fanout_destroy(fo);
    sec_case_end();
}

int main(void)
{
    sec_watchdog(170);
    signal(SIGPIPE, SIG_IGN);
    run_case("honest fan-out producer", NULL, TACHYON_SUCCESS, TACHYON_ERR_EMPTY);
    run_case("hello magic of a bus", bad_magic, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("hello of a later version", bad_version, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("hello of a fan-in", kind_in, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("hello max_peers 0", max_zero, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("hello max_peers 1000", max_huge, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("hello index out of the table", index_out, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("hello: the table is full", index_full, TACHYON_ERR_FULL, 0);
    run_case("hello capacity 3000", cap_not_pow2, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("hello capacity 64", cap_tiny, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("hello ring_offset inside the table", ring_offset_wrong, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("hello unknown flags", flags_unknown, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("first hello with a descriptor", fd_with_first, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("second hello differs", second_differs, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("second hello without the memfd", second_without_fd, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("no second hello", no_second, TACHYON_ERR_TIMEOUT, 0);
    run_case("memfd shorter than the ring", memfd_short, TACHYON_ERR_TRUNCATE, 0);
    run_case("memfd without seals", no_seals, TACHYON_ERR_SEAL, 0);
    run_case("segment header's capacity differs", hdr_capacity, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("segment still initializing", hdr_initializing, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("our cursor two rings behind head", tail_behind, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("slot header claims 1 MiB", junk_header, TACHYON_SUCCESS, TACHYON_ERR_FATAL);
    run_case("head far beyond a ring past our cursor", junk_head_far, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("skip marker short of the end", junk_skip, TACHYON_SUCCESS, TACHYON_ERR_FATAL);
    run_case("a slot stamped for another lap", stale_stamp, TACHYON_SUCCESS, TACHYON_ERR_EMPTY);
    run_case("segment without a stamp salt", no_salt, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("our cursor inside a slot", tail_odd, TACHYON_ERR_ABI_MISMATCH, 0);
    run_case("a drop that resumes us inside a slot", resume_odd, TACHYON_SUCCESS, TACHYON_ERR_FATAL);

    fanin_case("fan-in hello of a fan-out", TACHYON_FAN_KIND_OUT, 0, 0, CAP, TACHYON_ERR_ABI_MISMATCH);
    fanin_case("fan-in: the table is full", TACHYON_FAN_KIND_IN, TACHYON_FAN_FULL, 0, CAP, TACHYON_ERR_FULL);
    fanin_case("fan-in ring of another size than the hello", TACHYON_FAN_KIND_IN, 0, 1, CAP * 2,
               TACHYON_ERR_ABI_MISMATCH);
    fanin_case("fan-in ring capacity 3000", TACHYON_FAN_KIND_IN, 0, 1, 3000, TACHYON_ERR_INVALID_SZ);
    fanin_case("fan-in without a ring", TACHYON_FAN_KIND_IN, 0, 0, CAP, TACHYON_ERR_TIMEOUT);

    hostile_consumer_case("consumer cursor far ahead (block)", TACHYON_FAN_BLOCK, 0);
    hostile_consumer_case("consumer cursor far ahead (drop)", TACHYON_FAN_DROP_SLOW, 0);
    hostile_consumer_case("consumer acknowledges a drop that never was (block)", TACHYON_FAN_BLOCK, 1);
    hostile_consumer_case("consumer acknowledges a drop that never was (drop)", TACHYON_FAN_DROP_SLOW, 1);
    hostile_consumer_case("consumer talks out of turn", TACHYON_FAN_BLOCK, 2);
    hostile_consumer_case("consumer asks for an unknown start", TACHYON_FAN_BLOCK, 3);
    return sec_finish();
}
