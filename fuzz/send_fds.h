/*
 * send_fds.h - one sendmsg of `len` bytes carrying `nfds` descriptors as
 * SCM_RIGHTS, as a hostile listener sends its handshake. Shared by the
 * libFuzzer target fuzz_handshake.c and tests/security/hostile_handshake.c.
 */
#ifndef TACHYON_SEND_FDS_H
#define TACHYON_SEND_FDS_H

#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define SEND_FDS_MAX 8

/* What sendmsg returns (-1 with errno); nfds in [0, SEND_FDS_MAX]. */
static inline ssize_t send_with_fds(int conn, const void *buf, size_t len, const int *fds, int nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * SEND_FDS_MAX)];
        struct cmsghdr align;
    } ctrl;
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
    return sendmsg(conn, &msg, MSG_NOSIGNAL); /* the peer may have hung up */
}

#endif /* TACHYON_SEND_FDS_H */
