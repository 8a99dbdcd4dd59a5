/*
 * socket.c - the Unix-socket side of a rendezvous: a listening socket that
 * owns its path (never stealing a live listener's, never removing what is not
 * a socket), accepting only allowed users; a connector that retries until a
 * deadline and checks who listens; and messages of a few bytes with file
 * descriptors attached (SCM_RIGHTS), received by a deadline and checked.
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
#include "state.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define CONNECT_RETRY_MS 5
/* File descriptors one message may carry; more are closed and refused. */
#define SOCK_MAX_FDS 4

static tachyon_error_t fill_sockaddr(const char *path, struct sockaddr_un *addr)
{
    size_t len = strlen(path);
    if (len == 0)
        return status_error_detail(NULL, TACHYON_ERR_INVALID_SZ, "the socket path is empty");
    if (len >= sizeof(addr->sun_path))
        return status_error_detail(NULL, TACHYON_ERR_PATH_TOO_LONG,
                                   "the socket path is %zu bytes long; a Unix socket address holds at most %zu: %.80s...",
                                   len, sizeof(addr->sun_path) - 1, path);
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

/* Does the allow-list name a user other than ours? Then the socket file must
 * let that user connect(); the credential check does the refusing. */
static int allows_other_users(const tachyon_listen_opts_t *opts)
{
    for (unsigned i = 0; i < opts->n_allowed_uids && i < TACHYON_MAX_ALLOWED_UIDS; i++)
        if (opts->allowed_uids[i] != geteuid())
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
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return TACHYON_SUCCESS;
        return status_error_detail(NULL, TACHYON_ERR_NETWORK, "cannot listen on %s: %s", path, strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        return status_error_detail(NULL, TACHYON_ERR_NOT_SOCKET,
                                   "cannot listen on %s: it exists and is not a socket (refusing to remove it)",
                                   path);
    int bound = file_bound_by_live_socket(&st);
    if (bound < 0)
        bound = path_bound_by_live_socket(path);
    if (bound != 0) /* live, or we cannot tell: leave it */
        return status_error_detail(NULL, TACHYON_ERR_ADDR_IN_USE,
                                   "cannot listen on %s: another live process is listening there", path);
    if (unlink(path) != 0 && errno != ENOENT)
        return status_error_detail(NULL, TACHYON_ERR_NETWORK, "cannot remove the stale socket file %s: %s", path,
                                   strerror(errno));
    return TACHYON_SUCCESS;
}

/* Why bind() failed, in the listener's terms (it is the one making the file). */
static tachyon_error_t bind_failed(const char *path, int err)
{
    const char *hint = "";
    if (err == ENOENT || err == ENOTDIR)
        hint = " (its directory does not exist)";
    else if (err == EACCES || err == EPERM || err == EROFS)
        hint = " (this process may not create files in that directory)";
    return status_error_detail(NULL, err == EADDRINUSE ? TACHYON_ERR_ADDR_IN_USE : TACHYON_ERR_NETWORK,
                               "cannot create the socket file %s: %s%s", path, strerror(err), hint);
}

/* socket + mode + bind + listen. The mode is set on the socket before bind,
 * so the file never exists with wider permissions: owner-only, or open to
 * every user when the allow-list names other users (connect() needs write
 * permission on the file; the credential check after accept refuses anyone
 * not on the list). */
static tachyon_error_t bind_listener(const char *path, const struct sockaddr_un *addr, mode_t mode, int *out_fd)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return status_error_detail(NULL, TACHYON_ERR_OPEN, "socket(AF_UNIX): %s", strerror(errno));
    if (fchmod(fd, mode) != 0) {
        close(fd);
        return TACHYON_ERR_CHMOD;
    }
    if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0) {
        int err = errno;
        close(fd);
        return bind_failed(path, err);
    }
    /* chmod is not subject to the umask that bind applied. */
    if (chmod(path, mode) != 0) {
        tachyon_error_t err = status_error_detail(NULL, TACHYON_ERR_CHMOD, "chmod %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return err;
    }
    if (listen(fd, 4) != 0) {
        tachyon_error_t err = status_error_detail(NULL, TACHYON_ERR_NETWORK, "listen on %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return err;
    }
    *out_fd = fd;
    return TACHYON_SUCCESS;
}

/* Bind `path` (removing a stale socket file left there) and listen. */
tachyon_error_t sock_listen(const char *path, const tachyon_listen_opts_t *opts, int *out_lfd)
{
    if (!path || !opts)
        return TACHYON_ERR_NULL_PTR;
    struct sockaddr_un addr;
    tachyon_error_t err = fill_sockaddr(path, &addr);
    if (err != TACHYON_SUCCESS)
        return err;
    err = clear_stale_socket(path);
    if (err != TACHYON_SUCCESS)
        return err;
    mode_t mode = allows_other_users(opts) ? 0666 : (S_IRUSR | S_IWUSR);
    return bind_listener(path, &addr, mode, out_lfd);
}

/* The listener is done with its path: close it and remove the socket file. */
void sock_close_listener(int lfd, const char *path)
{
    close(lfd);
    unlink(path);
}

int64_t sock_remaining_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - wait_now_ms();
    return left > 0 ? left : 0;
}

/* Accept until an allowed peer comes (or, without keep_waiting, the first one). */
tachyon_error_t sock_accept_allowed(int lfd, const tachyon_listen_opts_t *opts, int *out_conn,
                                    struct tachyon_peer *peer)
{
    int64_t deadline = opts->timeout_ms < 0 ? -1 : wait_now_ms() + opts->timeout_ms;
    for (;;) {
        tachyon_error_t err = poll_one(lfd, POLLIN, (int)sock_remaining_ms(deadline));
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
            err = status_error_detail(NULL, TACHYON_ERR_PERMISSION,
                                      "refused a connection from pid %d, uid %u: that user is not allowed on "
                                      "this bus (tachyon_listen_opts_allow_uid adds users)",
                                      (int)cred.pid, (unsigned)cred.uid);
        if (!opts->keep_waiting)
            return err;
    }
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
 * The descriptors of a message: at most one control message, SOL_SOCKET /
 * SCM_RIGHTS, with at most `max` fds, nothing truncated. Anything else: every
 * fd that came is closed.
 */
static tachyon_error_t take_fds(struct msghdr *msg, int *fds, int max, int *nfds)
{
    struct cmsghdr *c = CMSG_FIRSTHDR(msg);
    *nfds = 0;
    if (c == NULL && !(msg->msg_flags & MSG_CTRUNC))
        return TACHYON_SUCCESS;
    int ok = !(msg->msg_flags & MSG_CTRUNC) && c != NULL && c->cmsg_level == SOL_SOCKET &&
             c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int)) &&
             (c->cmsg_len - CMSG_LEN(0)) % sizeof(int) == 0 &&
             (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) <= (size_t)max && CMSG_NXTHDR(msg, c) == NULL;
    if (!ok) {
        close_received_fds(msg);
        return TACHYON_ERR_ABI_MISMATCH;
    }
    *nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)*nfds);
    return TACHYON_SUCCESS;
}

static void close_fds(int *fds, int *nfds)
{
    for (int i = 0; i < *nfds; i++)
        close(fds[i]);
    *nfds = 0;
}

/*
 * Receive exactly `len` bytes by `deadline` (wait_now_ms() time, -1: none).
 * Descriptors may come only with the first bytes, at most `max_fds` of them.
 * Errors: TIMEOUT, INTERRUPTED, PEER_CLOSED (the other end closed or reset
 * the connection before sending a byte), NETWORK (closed part way),
 * ABI_MISMATCH (descriptors that break the rule above). On error no fd is
 * left open.
 */
tachyon_error_t sock_recv(int sock, int64_t deadline, void *buf, size_t len, int *fds, int max_fds, int *nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * SOCK_MAX_FDS)]; /* room to see (and close) extra fds */
        struct cmsghdr align;
    } ctrl;
    uint8_t *dst = buf;
    size_t got = 0;
    int dummy[SOCK_MAX_FDS];
    int *into = fds ? fds : dummy;
    *nfds = 0;
    if (max_fds > SOCK_MAX_FDS)
        max_fds = SOCK_MAX_FDS;

    while (got < len) {
        tachyon_error_t err = poll_one(sock, POLLIN, (int)sock_remaining_ms(deadline));
        if (err != TACHYON_SUCCESS)
            goto fail_with;
        memset(&ctrl, 0, sizeof(ctrl));
        struct iovec iov = {.iov_base = dst + got, .iov_len = len - got};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = ctrl.buf, .msg_controllen = sizeof(ctrl.buf)};
        ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) {
            err = TACHYON_ERR_INTERRUPTED;
            goto fail_with;
        }
        if (n <= 0) {
            int closed = n == 0 || errno == ECONNRESET || errno == EPIPE;
            close_received_fds(&msg);
            err = closed && got == 0 ? TACHYON_ERR_PEER_CLOSED : TACHYON_ERR_NETWORK;
            goto fail_with;
        }
        if (got == 0) {
            err = take_fds(&msg, into, max_fds, nfds);
            if (err != TACHYON_SUCCESS)
                goto fail_with;
        } else if (msg.msg_controllen > 0) {
            close_received_fds(&msg); /* descriptors later on are not ours to keep */
            err = TACHYON_ERR_ABI_MISMATCH;
            goto fail_with;
        }
        got += (size_t)n;
        continue;
    fail_with:
        close_fds(into, nfds);
        return err;
    }
    if (!fds)
        close_fds(into, nfds);
    return TACHYON_SUCCESS;
}

/* One sendmsg: `len` bytes with `nfds` descriptors as SCM_RIGHTS. */
tachyon_error_t sock_send(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * SOCK_MAX_FDS)];
        struct cmsghdr align;
    } ctrl;
    if (nfds < 0 || nfds > SOCK_MAX_FDS)
        return TACHYON_ERR_INVALID_SZ;
    memset(&ctrl, 0, sizeof(ctrl));
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        msg.msg_control = ctrl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? TACHYON_SUCCESS : TACHYON_ERR_NETWORK;
}

/* Why connect() failed, in the connector's terms. */
static tachyon_error_t connect_failed(const char *path, int err)
{
    switch (err) {
    case ENOENT:
        return status_error_detail(NULL, TACHYON_ERR_NETWORK,
                                   "nothing listens at %s (no such file): start the listener first, or "
                                   "connect with a timeout to wait for it",
                                   path);
    case ECONNREFUSED:
        return status_error_detail(NULL, TACHYON_ERR_NETWORK,
                                   "%s is a socket file but no process listens on it (its listener exited, "
                                   "or already took its one peer)",
                                   path);
    case EACCES:
    case EPERM:
        return status_error_detail(NULL, TACHYON_ERR_NETWORK,
                                   "connect to %s: %s (the socket file belongs to a listener that does not "
                                   "allow this user)",
                                   path, strerror(err));
    default:
        return status_error_detail(NULL, TACHYON_ERR_NETWORK, "connect to %s: %s", path, strerror(err));
    }
}

/* connect(), retrying while the path is absent or refuses, until the
 * deadline (wait_now_ms() time; -1: none; 0: one attempt). */
tachyon_error_t sock_connect(const char *path, int64_t deadline, int *out)
{
    struct sockaddr_un sun;
    tachyon_error_t fill_err = fill_sockaddr(path, &sun);
    if (fill_err != TACHYON_SUCCESS)
        return fill_err;
    const struct sockaddr_un *addr = &sun;
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
        if (!retryable || sock_remaining_ms(deadline) == 0)
            return connect_failed(path, err);
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

/* Who listens on the connected socket: learn its pid (and a pidfd), and
 * refuse a user that is not allowed. */
tachyon_error_t sock_check_listener(int sock, const char *path, const uid_t *allowed, size_t n_allowed,
                                    struct tachyon_peer *peer)
{
    struct ucred cred;
    peer->pidfd = -1;
    tachyon_error_t err = read_peer(sock, &cred, peer);
    if (err == TACHYON_SUCCESS && !listener_uid_allowed(cred.uid, allowed, n_allowed)) {
        if (peer->pidfd >= 0)
            close(peer->pidfd);
        peer->pidfd = -1;
        err = status_error_detail(NULL, TACHYON_ERR_PERMISSION,
                                  "the listener at %s runs as uid %u (pid %d); only this process's own user "
                                  "or root is accepted unless allowed (tachyon_bus_connect_ex)",
                                  path, (unsigned)cred.uid, (int)cred.pid);
    }
    return err;
}
