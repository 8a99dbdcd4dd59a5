/*
 * hostile_handshake.c - a fake listener (a forked child) hands the connector
 * crafted handshakes and fds. Each bad field must be refused by
 * tachyon_bus_connect with its own error code, with no crash, no descriptor
 * left open and nothing left mapped in the connector.
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

#include "helpers.h"
#include "send_fds.h"
#include "wire.h"

#define CAP 4096u

enum fd_kind { FD_MEMFD, FD_NONE, FD_TWO, FD_FIVE, FD_PIPE, FD_SOCKET, FD_DEVZERO, FD_TMPFILE };
enum send_mode { SEND_ALL, SEND_SHORT, SEND_SPLIT_FD_FIRST, SEND_SPLIT_FD_SECOND, SEND_SILENT };

/* What the fake listener sends. Defaults describe an honest listener. */
struct fake {
    tachyon_handshake_t hs;
    off_t memfd_size;
    int allow_sealing;
    int seals;
    enum fd_kind fd_kind;
    enum send_mode send_mode;
    /* The segment header it writes. */
    uint32_t magic, version, capacity, msg_alignment, state;
    uint64_t head, tail;
};

static void fake_defaults(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->hs.magic = TACHYON_MAGIC;
    f->hs.version = TACHYON_VERSION;
    f->hs.capacity_fwd = CAP;
    f->hs.shm_size_fwd = TACHYON_HEADER_BYTES + CAP;
    f->hs.msg_alignment = TACHYON_MSG_ALIGN;
    f->memfd_size = TACHYON_HEADER_BYTES + CAP;
    f->allow_sealing = 1;
    f->seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    f->fd_kind = FD_MEMFD;
    f->send_mode = SEND_ALL;
    f->magic = TACHYON_MAGIC;
    f->version = TACHYON_VERSION;
    f->capacity = CAP;
    f->msg_alignment = TACHYON_MSG_ALIGN;
    f->state = TACHYON_STATE_READY;
}

static int make_memfd(const struct fake *f)
{
    int fd = memfd_create("tachyon-fake", MFD_CLOEXEC | (f->allow_sealing ? MFD_ALLOW_SEALING : 0));
    if (fd < 0 || ftruncate(fd, f->memfd_size) != 0)
        _exit(101);
    size_t n = (size_t)f->memfd_size < TACHYON_HEADER_BYTES ? (size_t)f->memfd_size : TACHYON_HEADER_BYTES;
    if (n >= TACHYON_HEADER_BYTES) {
        tachyon_segment_header_t *h = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (h == MAP_FAILED)
            _exit(102);
        h->magic = f->magic;
        h->version = f->version;
        h->capacity = f->capacity;
        h->msg_alignment = f->msg_alignment;
        atomic_store(&h->state, f->state);
        atomic_store(&h->head, f->head);
        atomic_store(&h->tail, f->tail);
        munmap(h, n);
    }
    if (f->seals && fcntl(fd, F_ADD_SEALS, f->seals) != 0 && f->allow_sealing)
        _exit(103);
    return fd;
}

/* The descriptors the fake listener attaches; returns how many. */
static int make_fds(const struct fake *f, int fds[5])
{
    int p[2];
    switch (f->fd_kind) {
    case FD_NONE:
        return 0;
    case FD_MEMFD:
        fds[0] = make_memfd(f);
        return 1;
    case FD_TWO:
        fds[0] = make_memfd(f);
        fds[1] = make_memfd(f);
        return 2;
    case FD_FIVE:
        for (int i = 0; i < 5; i++)
            fds[i] = make_memfd(f);
        return 5;
    case FD_PIPE:
        if (pipe(p) != 0)
            _exit(104);
        fds[0] = p[0];
        return 1;
    case FD_SOCKET:
        fds[0] = socket(AF_UNIX, SOCK_STREAM, 0);
        return 1;
    case FD_DEVZERO:
        fds[0] = open("/dev/zero", O_RDWR);
        return 1;
    case FD_TMPFILE:
        fds[0] = open("/tmp", O_TMPFILE | O_RDWR, 0600);
        if (fds[0] < 0 || ftruncate(fds[0], f->memfd_size) != 0)
            _exit(105);
        return 1;
    }
    return 0;
}

/* Send one part; `must` says whether failing is the fake's own bug (a second
 * part may meet a connector that already hung up, rightly). */
static void send_part(int conn, const void *buf, size_t len, const int *fds, int nfds, int must)
{
    if (send_with_fds(conn, buf, len, fds, nfds) != (ssize_t)len && must)
        _exit(106);
}

static void __attribute__((noreturn)) fake_listener(const char *path, const struct fake *f)
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
    int fds[5];
    int nfds = make_fds(f, fds);
    const uint8_t *hs = (const uint8_t *)&f->hs;
    switch (f->send_mode) {
    case SEND_ALL:
        send_part(conn, hs, 32, fds, nfds, 1);
        break;
    case SEND_SHORT:
        send_part(conn, hs, 16, fds, nfds, 1);
        _exit(0); /* hang up half-way */
    case SEND_SPLIT_FD_FIRST:
        send_part(conn, hs, 12, fds, nfds, 1);
        sec_sleep_ms(20);
        send_part(conn, hs + 12, 20, NULL, 0, 1);
        break;
    case SEND_SPLIT_FD_SECOND:
        send_part(conn, hs, 12, NULL, 0, 1);
        sec_sleep_ms(20);
        send_part(conn, hs + 12, 20, fds, nfds, 0);
        break;
    case SEND_SILENT:
        break;
    }
    /* Hold the connection until the connector hangs up. */
    struct pollfd p = {.fd = conn, .events = POLLIN};
    poll(&p, 1, 12000);
    _exit(0);
}

/* Mappings of a memfd in this process (there must be none after a refusal). */
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

static void run_case_checked(const char *name, mutator mutate, tachyon_error_t want, int check_resources)
{
    sec_case_begin(name);
    struct fake f;
    fake_defaults(&f);
    if (mutate)
        mutate(&f);
    char path[108];
    sec_socket_path(path, sizeof(path), "fake");
    int fds_before = sec_count_fds();
    int maps_before = sec_count_maps();
    pid_t pid = fork();
    if (pid == 0)
        fake_listener(path, &f);
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = tachyon_bus_connect_timeout(path, 3000, &bus);
    if (err == TACHYON_SUCCESS) {
        CHECK(bus != NULL, "success without a bus");
        tachyon_bus_destroy(bus);
    } else {
        CHECK(bus == NULL, "failure left *out set");
    }
    int status = sec_wait_child(pid, 15000);
    CHECK_ERR(err, want, "connect");
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "fake listener failed (status 0x%x)", status);
    int fds_after = sec_count_fds();
    int maps_after = sec_count_maps();
    if (!check_resources)
        fds_after = fds_before, maps_after = maps_before;
    CHECK(fds_after == fds_before, "open fds %d before, %d after", fds_before, fds_after);
    CHECK(count_memfd_maps() == 0, "a memfd is still mapped");
    CHECK(maps_after <= maps_before, "mappings %d before, %d after", maps_before, maps_after);
    unlink(path);
    sec_case_end();
}

static void run_case(const char *name, mutator mutate, tachyon_error_t want)
{
    run_case_checked(name, mutate, want, 1);
}

/* One mutator per bad field; their names say what they break. */
static void bad_magic(struct fake *f) { f->hs.magic = 0x48434154; }
static void bad_version(struct fake *f) { f->hs.version = 3; }
static void bad_alignment(struct fake *f) { f->hs.msg_alignment = 32; }
static void flags_reqrep(struct fake *f) { f->hs.flags = TACHYON_HS_FLAG_REQREP; }
static void flags_unknown(struct fake *f) { f->hs.flags = 0x80; }
static void reverse_ring(struct fake *f) { f->hs.capacity_rev = CAP; f->hs.shm_size_rev = TACHYON_HEADER_BYTES + CAP; }
static void cap_not_pow2(struct fake *f) { f->hs.capacity_fwd = 3000; f->hs.shm_size_fwd = TACHYON_HEADER_BYTES + 3000; }
static void cap_too_small(struct fake *f) { f->hs.capacity_fwd = 32; f->hs.shm_size_fwd = TACHYON_HEADER_BYTES + 32; }
static void cap_zero(struct fake *f) { f->hs.capacity_fwd = 0; f->hs.shm_size_fwd = TACHYON_HEADER_BYTES; }
static void cap_absurd(struct fake *f) { f->hs.capacity_fwd = 1u << 31; f->hs.shm_size_fwd = TACHYON_HEADER_BYTES + (1u << 31); }
static void shm_size_bigger(struct fake *f) { f->hs.shm_size_fwd += 4096; }
static void shm_size_smaller(struct fake *f) { f->hs.shm_size_fwd = CAP; }
static void memfd_short(struct fake *f) { f->memfd_size = TACHYON_HEADER_BYTES + CAP / 2; }
static void memfd_tiny(struct fake *f) { f->memfd_size = 100; }
static void memfd_bigger(struct fake *f) { f->memfd_size = TACHYON_HEADER_BYTES + 4 * CAP; }
static void no_seals(struct fake *f) { f->seals = 0; }
static void only_shrink_seal(struct fake *f) { f->seals = F_SEAL_SHRINK; }
static void only_grow_seal(struct fake *f) { f->seals = F_SEAL_GROW; }
static void sealing_not_allowed(struct fake *f) { f->allow_sealing = 0; f->seals = 0; }
static void write_sealed(struct fake *f) { f->seals |= F_SEAL_WRITE; }
static void hdr_bad_magic(struct fake *f) { f->magic = 0; }
static void hdr_bad_version(struct fake *f) { f->version = 5; }
static void hdr_bad_capacity(struct fake *f) { f->capacity = CAP * 2; }
static void hdr_bad_alignment(struct fake *f) { f->msg_alignment = 128; }
static void hdr_initializing(struct fake *f) { f->state = TACHYON_STATE_INITIALIZING; }
static void hdr_uninitialized(struct fake *f) { f->state = TACHYON_STATE_UNINITIALIZED; }
static void hdr_fatal(struct fake *f) { f->state = TACHYON_STATE_FATAL_ERROR; }
/* A listener that sent and left before we mapped: accepted (its messages are
 * readable; then the peer is gone). */
static void hdr_disconnected(struct fake *f) { f->state = TACHYON_STATE_DISCONNECTED; }
static void hdr_head_past_tail(struct fake *f) { f->head = 2 * CAP; f->tail = 0; }
static void hdr_head_behind_tail(struct fake *f) { f->head = 0; f->tail = 64; }
static void hdr_head_unaligned(struct fake *f) { f->head = 65; f->tail = 0; }
static void hdr_counters_far_but_sane(struct fake *f) { f->head = (1ULL << 60) + 128; f->tail = 1ULL << 60; }
static void no_fd(struct fake *f) { f->fd_kind = FD_NONE; }
static void two_fds(struct fake *f) { f->fd_kind = FD_TWO; }
static void five_fds(struct fake *f) { f->fd_kind = FD_FIVE; }
static void pipe_fd(struct fake *f) { f->fd_kind = FD_PIPE; }
static void socket_fd(struct fake *f) { f->fd_kind = FD_SOCKET; }
static void devzero_fd(struct fake *f) { f->fd_kind = FD_DEVZERO; }
static void tmpfile_fd(struct fake *f) { f->fd_kind = FD_TMPFILE; }
static void short_handshake(struct fake *f) { f->send_mode = SEND_SHORT; }
static void split_fd_first(struct fake *f) { f->send_mode = SEND_SPLIT_FD_FIRST; }
static void split_fd_second(struct fake *f) { f->send_mode = SEND_SPLIT_FD_SECOND; }
static void silent(struct fake *f) { f->send_mode = SEND_SILENT; }

int main(int argc, char **argv)
{
    sec_watchdog(120);
    /* Warm up: the first connect may allocate (sanitizer, libc) once for good. */
    run_case_checked("honest listener (warm-up, resources not counted)", NULL, TACHYON_SUCCESS, 0);
    run_case("honest listener", NULL, TACHYON_SUCCESS);
    run_case("handshake magic", bad_magic, TACHYON_ERR_ABI_MISMATCH);
    run_case("handshake version 3", bad_version, TACHYON_ERR_ABI_MISMATCH);
    run_case("handshake msg_alignment 32", bad_alignment, TACHYON_ERR_ABI_MISMATCH);
    run_case("handshake flags: request/reply", flags_reqrep, TACHYON_ERR_ABI_MISMATCH);
    run_case("handshake flags: unknown bit", flags_unknown, TACHYON_ERR_ABI_MISMATCH);
    run_case("handshake reverse ring on a plain bus", reverse_ring, TACHYON_ERR_ABI_MISMATCH);
    run_case("capacity not a power of two", cap_not_pow2, TACHYON_ERR_INVALID_SZ);
    run_case("capacity 32 (< 64)", cap_too_small, TACHYON_ERR_INVALID_SZ);
    run_case("capacity 0", cap_zero, TACHYON_ERR_INVALID_SZ);
    run_case("capacity 2 GiB (absurd)", cap_absurd, TACHYON_ERR_INVALID_SZ);
    run_case("shm_size larger than 768 + capacity", shm_size_bigger, TACHYON_ERR_INVALID_SZ);
    run_case("shm_size smaller than 768 + capacity", shm_size_smaller, TACHYON_ERR_INVALID_SZ);
    run_case("memfd smaller than claimed", memfd_short, TACHYON_ERR_TRUNCATE);
    run_case("memfd smaller than the header", memfd_tiny, TACHYON_ERR_TRUNCATE);
    run_case("memfd larger than claimed (accepted)", memfd_bigger, TACHYON_SUCCESS);
    run_case("memfd without seals", no_seals, TACHYON_ERR_SEAL);
    run_case("memfd sealed against shrink only", only_shrink_seal, TACHYON_ERR_SEAL);
    run_case("memfd sealed against grow only", only_grow_seal, TACHYON_ERR_SEAL);
    run_case("memfd without MFD_ALLOW_SEALING", sealing_not_allowed, TACHYON_ERR_SEAL);
    run_case("memfd write-sealed (cannot map writable)", write_sealed, TACHYON_ERR_MAP);
    run_case("segment header magic", hdr_bad_magic, TACHYON_ERR_ABI_MISMATCH);
    run_case("segment header version", hdr_bad_version, TACHYON_ERR_ABI_MISMATCH);
    run_case("segment header capacity != handshake", hdr_bad_capacity, TACHYON_ERR_ABI_MISMATCH);
    run_case("segment header msg_alignment", hdr_bad_alignment, TACHYON_ERR_ABI_MISMATCH);
    run_case("segment state INITIALIZING", hdr_initializing, TACHYON_ERR_ABI_MISMATCH);
    run_case("segment state UNINITIALIZED", hdr_uninitialized, TACHYON_ERR_ABI_MISMATCH);
    run_case("segment state FATAL", hdr_fatal, TACHYON_ERR_FATAL);
    run_case("segment state DISCONNECTED (listener already left: accepted)", hdr_disconnected, TACHYON_SUCCESS);
    run_case("segment head - tail > capacity", hdr_head_past_tail, TACHYON_ERR_FATAL);
    run_case("segment tail ahead of head", hdr_head_behind_tail, TACHYON_ERR_FATAL);
    run_case("segment head not 64-aligned", hdr_head_unaligned, TACHYON_ERR_FATAL);
    run_case("segment counters huge but consistent (accepted)", hdr_counters_far_but_sane, TACHYON_SUCCESS);
    run_case("no fd sent", no_fd, TACHYON_ERR_ABI_MISMATCH);
    run_case("two fds sent", two_fds, TACHYON_ERR_ABI_MISMATCH);
    run_case("five fds sent (control truncated)", five_fds, TACHYON_ERR_ABI_MISMATCH);
    run_case("a pipe instead of a memfd", pipe_fd, TACHYON_ERR_ABI_MISMATCH);
    run_case("a socket instead of a memfd", socket_fd, TACHYON_ERR_ABI_MISMATCH);
    run_case("/dev/zero instead of a memfd", devzero_fd, TACHYON_ERR_ABI_MISMATCH);
    run_case("an unsealable tmpfile instead of a memfd", tmpfile_fd, TACHYON_ERR_SEAL);
    run_case("16 of 32 bytes, then hang-up", short_handshake, TACHYON_ERR_NETWORK);
    run_case("32 bytes in two sends, fd with the first", split_fd_first, TACHYON_SUCCESS);
    run_case("32 bytes in two sends, fd with the second", split_fd_second, TACHYON_ERR_ABI_MISMATCH);
    if (argc > 1 && strcmp(argv[1], "--slow") == 0)
        run_case("listener accepts and never sends (10 s bound)", silent, TACHYON_ERR_TIMEOUT);
    else
        sec_case_skip("listener accepts and never sends", "10 s; run with --slow");
    return sec_finish();
}
