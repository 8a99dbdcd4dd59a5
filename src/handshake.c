/*
 * handshake.c - the Unix-socket rendezvous: the listener hands the memfd and
 * 32 bytes of handshake to exactly one connector, checking who it is.
 *
 * Both ends learn the other's pid (SO_PEERCRED) and, where the kernel allows,
 * a pidfd for it, which is how peer death is noticed later without any change
 * to the wire format.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* How long a connector waits for the 32 bytes once connected. The listener
 * sends them right after accept, so only a broken listener takes this long. */
#define HANDSHAKE_RECV_TIMEOUT_MS 10000
#define CONNECT_RETRY_MS 5

static tachyon_error_t fill_sockaddr(const char *path, struct sockaddr_un *addr)
{
    size_t len = strlen(path);
    if (len == 0)
        return TACHYON_ERR_INVALID_SZ;
    if (len >= sizeof(addr->sun_path))
        return TACHYON_ERR_PATH_TOO_LONG;
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, path, len + 1);
    return TACHYON_SUCCESS;
}

/* Poll one fd for `events`, up to timeout_ms (< 0: forever). A signal ends the
 * wait with ERR_INTERRUPTED: poll is never restarted after a handler runs. */
static tachyon_error_t poll_one(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int rc = poll(&p, 1, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? TACHYON_ERR_INTERRUPTED : TACHYON_ERR_NETWORK;
    if (rc == 0)
        return TACHYON_ERR_TIMEOUT;
    return TACHYON_SUCCESS;
}

static int pidfd_for_socket(int sock, pid_t pid)
{
    int pidfd = -1;
    socklen_t len = sizeof(pidfd);
    if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0) {
        (void)fcntl(pidfd, F_SETFD, FD_CLOEXEC);
        return pidfd;
    }
    /* Older kernels: open it by pid. The peer is connected to us right now,
     * so the pid cannot have been recycled yet. */
    long fd = syscall(SYS_pidfd_open, (long)pid, 0L);
    return fd >= 0 ? (int)fd : -1;
}

static tachyon_error_t read_peer(int sock, struct ucred *cred, struct tachyon_peer *peer)
{
    socklen_t len = sizeof(*cred);
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, cred, &len) != 0 || len != sizeof(*cred))
        return TACHYON_ERR_NETWORK;
    peer->pid = cred->pid;
    peer->pidfd = pidfd_for_socket(sock, cred->pid);
    return TACHYON_SUCCESS;
}

static int uid_allowed(const tachyon_listen_opts_t *opts, uid_t uid)
{
    if (opts->n_allowed_uids == 0)
        return uid == geteuid();
    for (unsigned i = 0; i < opts->n_allowed_uids && i < TACHYON_MAX_ALLOWED_UIDS; i++)
        if (opts->allowed_uids[i] == uid)
            return 1;
    return 0;
}

/* The kernel's internal dev_t (major << 20 | minor), as sock_diag reports it. */
static int same_device(uint32_t kernel_dev, dev_t user_dev)
{
    return (kernel_dev >> 20) == major(user_dev) && (kernel_dev & 0xFFFFFu) == minor(user_dev);
}

/* Does this sock_diag reply describe a socket bound to the file (dev, ino)? */
static int diag_msg_matches(const struct nlmsghdr *h, const struct stat *st)
{
    const struct unix_diag_msg *d = NLMSG_DATA(h);
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*d)))
        return 0;
    int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*d)));
    for (const struct rtattr *a = (const void *)(d + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type != UNIX_DIAG_VFS || RTA_PAYLOAD(a) < sizeof(struct unix_diag_vfs))
            continue;
        const struct unix_diag_vfs *v = RTA_DATA(a);
        if (v->udiag_vfs_ino == st->st_ino && same_device(v->udiag_vfs_dev, st->st_dev))
            return 1;
    }
    return 0;
}

/*
 * Is the socket file `st` bound by a live socket? Asks the kernel with
 * sock_diag (UDIAG_SHOW_VFS gives each bound Unix socket's file dev/inode),
 * which is exact whatever path string the other process bound with. We never
 * probe with connect(): a live listener would accept the probe as its one peer.
 * Returns 1 bound, 0 not bound, -1 the kernel cannot tell us.
 */
static int file_bound_by_live_socket(const struct stat *st)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } msg;
    memset(&msg, 0, sizeof(msg));
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = AF_UNIX;
    msg.req.udiag_states = ~0u;
    msg.req.udiag_show = UDIAG_SHOW_VFS;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    int result = -1;
    if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        goto out;
    _Alignas(struct nlmsghdr) char buf[16384];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        /* Walk the replies by hand: every length is checked against what came. */
        for (size_t off = 0; off + sizeof(struct nlmsghdr) <= (size_t)n;) {
            const struct nlmsghdr *h = (const void *)(buf + off);
            if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > (size_t)n - off)
                goto out;
            off += NLMSG_ALIGN(h->nlmsg_len);
            if (h->nlmsg_type == NLMSG_DONE) {
                result = 0;
                goto out;
            }
            if (h->nlmsg_type == NLMSG_ERROR)
                goto out;
            if (diag_msg_matches(h, st)) {
                result = 1;
                goto out;
            }
        }
    }
out:
    close(fd);
    return result;
}

/*
 * Without sock_diag (no CONFIG_UNIX_DIAG): /proc/net/unix lists bound paths as
 * they were passed to bind(). Exact for absolute paths; a relative path bound
 * from another directory is not recognised, so this is only the fallback.
 */
static int path_bound_by_live_socket(const char *path)
{
    char abs[PATH_MAX];
    const char *alt = realpath(path, abs) ? abs : path;
    FILE *f = fopen("/proc/net/unix", "re");
    if (!f)
        return -1;
    char line[PATH_MAX + 128];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) {
        int path_at = 0;
        if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %n", &path_at) < 0 || path_at == 0)
            continue;
        char *p = line + path_at;
        p[strcspn(p, "\n")] = '\0';
        found = strcmp(p, path) == 0 || strcmp(p, alt) == 0;
    }
    fclose(f);
    return found;
}

/*
 * Make `path` free to bind: nothing there, or a stale socket file that no live
 * socket is bound to (removed). A regular file, directory, ... is never
 * touched; a socket another live process has bound is never stolen.
 */
static tachyon_error_t clear_stale_socket(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? TACHYON_SUCCESS : TACHYON_ERR_SYSTEM;
    if (!S_ISSOCK(st.st_mode))
        return TACHYON_ERR_NOT_SOCKET;
    int bound = file_bound_by_live_socket(&st);
    if (bound < 0)
        bound = path_bound_by_live_socket(path);
    if (bound != 0)
        return TACHYON_ERR_ADDR_IN_USE; /* live, or we cannot tell: leave it */
    if (unlink(path) != 0 && errno != ENOENT)
        return TACHYON_ERR_SYSTEM;
    return TACHYON_SUCCESS;
}

/* socket + owner-only mode + bind + listen. The mode is set on the socket
 * before bind, so the file never exists with wider permissions. */
static tachyon_error_t bind_listener(const char *path, const struct sockaddr_un *addr, int *out_fd)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return TACHYON_ERR_OPEN;
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
        close(fd);
        return TACHYON_ERR_CHMOD;
    }
    if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0) {
        int err = errno;
        close(fd);
        return err == EADDRINUSE ? TACHYON_ERR_ADDR_IN_USE : TACHYON_ERR_NETWORK;
    }
    if (chmod(path, S_IRUSR | S_IWUSR) != 0) {
        close(fd);
        unlink(path);
        return TACHYON_ERR_CHMOD;
    }
    if (listen(fd, 4) != 0) {
        close(fd);
        unlink(path);
        return TACHYON_ERR_NETWORK;
    }
    *out_fd = fd;
    return TACHYON_SUCCESS;
}

/* One sendmsg: the 32 bytes with the memfd as SCM_RIGHTS. */
static tachyon_error_t send_handshake(int conn, const tachyon_handshake_t *hs, int memfd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctrl;
    memset(&ctrl, 0, sizeof(ctrl));
    struct iovec iov = {.iov_base = (void *)hs, .iov_len = sizeof(*hs)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctrl.buf, .msg_controllen = sizeof(ctrl.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &memfd, sizeof(int));

    ssize_t n;
    do {
        n = sendmsg(conn, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(*hs) ? TACHYON_SUCCESS : TACHYON_ERR_NETWORK;
}

static int64_t remaining_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - wait_now_ms();
    return left > 0 ? left : 0;
}

/* Accept until an allowed peer comes (or, without keep_waiting, the first one). */
static tachyon_error_t accept_allowed_peer(int lfd, const tachyon_listen_opts_t *opts,
                                           int *out_conn, struct tachyon_peer *peer)
{
    int64_t deadline = opts->timeout_ms < 0 ? -1 : wait_now_ms() + opts->timeout_ms;
    for (;;) {
        tachyon_error_t err = poll_one(lfd, POLLIN, (int)remaining_ms(deadline));
        if (err != TACHYON_SUCCESS)
            return err;
        int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0) {
            if (errno == EINTR)
                return TACHYON_ERR_INTERRUPTED;
            if (errno == ECONNABORTED || errno == EAGAIN)
                continue;
            return TACHYON_ERR_NETWORK;
        }
        struct ucred cred;
        err = read_peer(conn, &cred, peer);
        if (err == TACHYON_SUCCESS && uid_allowed(opts, cred.uid)) {
            *out_conn = conn;
            return TACHYON_SUCCESS;
        }
        if (peer->pidfd >= 0)
            close(peer->pidfd);
        peer->pidfd = -1;
        close(conn);
        if (err == TACHYON_SUCCESS)
            err = TACHYON_ERR_PERMISSION;
        if (!opts->keep_waiting)
            return err;
    }
}

tachyon_error_t handshake_listen(const char *path, const tachyon_listen_opts_t *opts, int memfd,
                                 struct tachyon_peer *peer)
{
    struct sockaddr_un addr;
    tachyon_error_t err = fill_sockaddr(path, &addr);
    if (err != TACHYON_SUCCESS)
        return err;
    err = clear_stale_socket(path);
    if (err != TACHYON_SUCCESS)
        return err;
    int lfd;
    err = bind_listener(path, &addr, &lfd);
    if (err != TACHYON_SUCCESS)
        return err;

    int conn = -1;
    peer->pidfd = -1;
    err = accept_allowed_peer(lfd, opts, &conn, peer);
    if (err == TACHYON_SUCCESS) {
        tachyon_handshake_t hs;
        handshake_fill(&hs, (uint32_t)opts->capacity);
        err = send_handshake(conn, &hs, memfd);
        close(conn);
        if (err != TACHYON_SUCCESS && peer->pidfd >= 0) {
            close(peer->pidfd);
            peer->pidfd = -1;
        }
    }
    close(lfd);
    unlink(path);
    return err;
}

void handshake_fill(tachyon_handshake_t *hs, uint32_t capacity)
{
    memset(hs, 0, sizeof(*hs));
    hs->magic = TACHYON_MAGIC;
    hs->version = TACHYON_VERSION;
    hs->capacity_fwd = capacity;
    hs->shm_size_fwd = TACHYON_HEADER_BYTES + capacity;
    hs->capacity_rev = 0;
    hs->shm_size_rev = 0;
    hs->msg_alignment = TACHYON_MSG_ALIGN;
    hs->flags = 0;
}

/* Every field of a received handshake, before anything is mapped. */
tachyon_error_t handshake_validate(const tachyon_handshake_t *hs, uint64_t *capacity)
{
    if (hs->magic != TACHYON_MAGIC || hs->version != TACHYON_VERSION ||
        hs->msg_alignment != TACHYON_MSG_ALIGN || hs->flags != 0)
        return TACHYON_ERR_ABI_MISMATCH;
    if (hs->capacity_rev != 0 || hs->shm_size_rev != 0)
        return TACHYON_ERR_ABI_MISMATCH; /* only a plain bus is supported */
    if (!tachyon_capacity_valid(hs->capacity_fwd))
        return TACHYON_ERR_INVALID_SZ;
    if ((uint64_t)hs->shm_size_fwd != (uint64_t)TACHYON_HEADER_BYTES + hs->capacity_fwd)
        return TACHYON_ERR_INVALID_SZ;
    *capacity = hs->capacity_fwd;
    return TACHYON_SUCCESS;
}

static void close_received_fds(struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            close(fd);
        }
    }
}

/*
 * Exactly one control message, SOL_SOCKET/SCM_RIGHTS, carrying exactly one fd,
 * nothing truncated. Anything else: every fd that came is closed.
 */
static tachyon_error_t take_single_fd(struct msghdr *msg, int *out_fd)
{
    struct cmsghdr *c = CMSG_FIRSTHDR(msg);
    int ok = !(msg->msg_flags & MSG_CTRUNC) && c != NULL && c->cmsg_level == SOL_SOCKET &&
             c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)) &&
             CMSG_NXTHDR(msg, c) == NULL;
    if (!ok) {
        close_received_fds(msg);
        return TACHYON_ERR_ABI_MISMATCH;
    }
    memcpy(out_fd, CMSG_DATA(c), sizeof(int));
    return TACHYON_SUCCESS;
}

/* Receive the 32 bytes and the fd; the fd arrives with the first byte. */
static tachyon_error_t recv_handshake(int sock, tachyon_handshake_t *hs, int *out_fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * 4)]; /* room to see (and close) extra fds */
        struct cmsghdr align;
    } ctrl;
    uint8_t *dst = (uint8_t *)hs;
    size_t got = 0;
    int fd = -1;
    int64_t deadline = wait_now_ms() + HANDSHAKE_RECV_TIMEOUT_MS;

    while (got < sizeof(*hs)) {
        tachyon_error_t err = poll_one(sock, POLLIN, (int)remaining_ms(deadline));
        if (err != TACHYON_SUCCESS)
            goto fail_with;
        memset(&ctrl, 0, sizeof(ctrl));
        struct iovec iov = {.iov_base = dst + got, .iov_len = sizeof(*hs) - got};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = ctrl.buf, .msg_controllen = sizeof(ctrl.buf)};
        ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) {
            err = TACHYON_ERR_INTERRUPTED;
            goto fail_with;
        }
        if (n <= 0) {
            err = TACHYON_ERR_NETWORK;
            goto fail_with;
        }
        if (got == 0) {
            err = take_single_fd(&msg, &fd);
            if (err != TACHYON_SUCCESS)
                goto fail_with;
        } else if (msg.msg_controllen > 0) {
            close_received_fds(&msg); /* a second fd later on is not ours to keep */
            err = TACHYON_ERR_ABI_MISMATCH;
            goto fail_with;
        }
        got += (size_t)n;
        continue;
    fail_with:
        if (fd >= 0)
            close(fd);
        return err;
    }
    *out_fd = fd;
    return TACHYON_SUCCESS;
}

/* connect(), retrying while the path is absent or refuses, until the deadline. */
static tachyon_error_t connect_with_retry(const struct sockaddr_un *addr, int timeout_ms, int *out)
{
    int64_t deadline = timeout_ms < 0 ? -1 : wait_now_ms() + timeout_ms;
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return TACHYON_ERR_OPEN;
        if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0) {
            *out = fd;
            return TACHYON_SUCCESS;
        }
        int err = errno;
        close(fd);
        if (err == EINTR)
            return TACHYON_ERR_INTERRUPTED;
        int retryable = err == ENOENT || err == ECONNREFUSED || err == EAGAIN;
        if (!retryable || remaining_ms(deadline) == 0)
            return TACHYON_ERR_NETWORK;
        struct timespec ts = {0, CONNECT_RETRY_MS * 1000000L};
        if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
            return TACHYON_ERR_INTERRUPTED;
    }
}

/*
 * The connector's side of the credential check: by default the listener must
 * run as our own user or as root (root could read our memory anyway), so a
 * process of another user that bound the path first cannot hand us a segment.
 */
static int listener_uid_allowed(uid_t uid, const uid_t *allowed, size_t n_allowed)
{
    if (n_allowed == 0)
        return uid == geteuid() || uid == 0;
    for (size_t i = 0; i < n_allowed; i++)
        if (allowed[i] == uid)
            return 1;
    return 0;
}

tachyon_error_t handshake_connect(const char *path, int timeout_ms, const uid_t *allowed_uids,
                                  size_t n_allowed, int *out_fd, tachyon_handshake_t *out_hs,
                                  struct tachyon_peer *peer)
{
    struct sockaddr_un addr;
    tachyon_error_t err = fill_sockaddr(path, &addr);
    if (err != TACHYON_SUCCESS)
        return err;
    int sock;
    err = connect_with_retry(&addr, timeout_ms, &sock);
    if (err != TACHYON_SUCCESS)
        return err;
    struct ucred cred;
    peer->pidfd = -1;
    err = read_peer(sock, &cred, peer);
    if (err == TACHYON_SUCCESS && !listener_uid_allowed(cred.uid, allowed_uids, n_allowed))
        err = TACHYON_ERR_PERMISSION;
    if (err == TACHYON_SUCCESS)
        err = recv_handshake(sock, out_hs, out_fd);
    close(sock);
    if (err != TACHYON_SUCCESS && peer->pidfd >= 0) {
        close(peer->pidfd);
        peer->pidfd = -1;
    }
    return err;
}
