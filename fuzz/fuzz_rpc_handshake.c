/*
 * fuzz_rpc_handshake.c - libFuzzer target: what a hostile request/reply
 * listener can hand tachyon_rpc_connect. Each input describes the 32
 * handshake bytes, two memfds (size, seals, first bytes of each header),
 * which descriptors ride along and how the bytes are split; a fake listener
 * thread in this process sends exactly that over a real Unix socket.
 *
 * Properties: no crash or sanitizer report; a known error code; on failure
 * no handle, and once the fake listener has closed its side not one
 * descriptor or memfd mapping more than before; on success a call and a
 * look for a reply behave (a reply is never larger than the reply ring
 * allows), and destroy gives everything back.
 *
 * Input layout (missing bytes read as zero):
 *   [0..31]  handshake
 *   [32..35] memfd A size (mod 1 MiB)      [36..39] memfd B size (mod 1 MiB)
 *   [40]     seals of A, [41] seals of B: bit0 SHRINK, bit1 GROW, bit2 SEAL, bit3 WRITE, bit4 FUTURE_WRITE
 *   [42]     fds: 0 A B, 1 none, 2 A, 3 A B A, 4 A pipe, 5 A /dev/null, 6 A and an unsealable B
 *   [43]     send: 0 whole, 1 split (fds first), 2 split (fds second), 3 truncated, then hang up
 *   [44]     split point / truncated length (mod 31, plus 1)
 *   [46..47] n: how many of the bytes after 48 go to A's header (little endian); the rest go to B's
 *   [48..]   A's header bytes, then B's
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tachyon.h"
#include "fake_peer.h"
#include "send_fds.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define PREFIX 48
#define MAX_MEMFD (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t u32_at(size_t i)
{
    return (uint32_t)byte_at(i) | (uint32_t)byte_at(i + 1) << 8 | (uint32_t)byte_at(i + 2) << 16 |
           (uint32_t)byte_at(i + 3) << 24;
}

/* Memfd `which` (0 = A, 1 = B): its size, seals and header bytes from the input. */
static int make_memfd(int which, int allow_sealing)
{
    uint32_t memfd_size = u32_at(32 + 4 * (size_t)which) % MAX_MEMFD;
    int fd = memfd_create("fuzz", MFD_CLOEXEC | (allow_sealing ? MFD_ALLOW_SEALING : 0));
    if (fd < 0 || ftruncate(fd, memfd_size) != 0)
        abort();
    size_t rest = fake.size > PREFIX ? fake.size - PREFIX : 0;
    size_t a_len = (size_t)byte_at(46) | (size_t)byte_at(47) << 8;
    if (a_len > rest)
        a_len = rest;
    const uint8_t *header = fake.data + PREFIX + (which ? a_len : 0);
    size_t len = which ? rest - a_len : a_len;
    if (len > memfd_size)
        len = memfd_size;
    if (len > 0 && pwrite(fd, header, len, 0) != (ssize_t)len)
        abort();
    uint8_t s = byte_at(40 + (size_t)which);
    int seals = (s & 1 ? F_SEAL_SHRINK : 0) | (s & 2 ? F_SEAL_GROW : 0) | (s & 8 ? F_SEAL_WRITE : 0) |
                (s & 16 ? F_SEAL_FUTURE_WRITE : 0) | (s & 4 ? F_SEAL_SEAL : 0);
    if (allow_sealing && seals)
        (void)fcntl(fd, F_ADD_SEALS, seals);
    return fd;
}

static int make_fds(int fds[3])
{
    int p[2];
    switch (byte_at(42) % 7) {
    case 0: fds[0] = make_memfd(0, 1); fds[1] = make_memfd(1, 1); return 2;
    case 1: return 0;
    case 2: fds[0] = make_memfd(0, 1); return 1;
    case 3: fds[0] = make_memfd(0, 1); fds[1] = make_memfd(1, 1); fds[2] = make_memfd(0, 1); return 3;
    case 4:
        if (pipe2(p, O_CLOEXEC) != 0)
            abort();
        close(p[1]);
        fds[0] = make_memfd(0, 1);
        fds[1] = p[0];
        return 2;
    case 5: fds[0] = make_memfd(0, 1); fds[1] = open("/dev/null", O_RDWR | O_CLOEXEC); return 2;
    default: fds[0] = make_memfd(0, 1); fds[1] = make_memfd(1, 0); return 2;
    }
}

static void send_part(int conn, const uint8_t *buf, size_t len, const int *fds, int nfds)
{
    if (len > 0)
        (void)send_with_fds(conn, buf, len, fds, nfds); /* the connector may have hung up */
}

/* One connection per input: accept, send what the input says, close all. */
static void serve_one(void)
{
    int conn = accept4(fake.lfd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        return;
    uint8_t hs[32];
    for (size_t i = 0; i < 32; i++)
        hs[i] = byte_at(i);
    int fds[3];
    int nfds = make_fds(fds);
    size_t split = 1 + byte_at(44) % 31;
    switch (byte_at(43) % 4) {
    case 0: send_part(conn, hs, 32, fds, nfds); break;
    case 1: send_part(conn, hs, split, fds, nfds); send_part(conn, hs + split, 32 - split, NULL, 0); break;
    case 2: send_part(conn, hs, split, NULL, 0); send_part(conn, hs + split, 32 - split, fds, nfds); break;
    default: send_part(conn, hs, split, fds, nfds); break;
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    close(conn);
}

static void violated(const char *what, int a, int b)
{
    fake_violated("fuzz_rpc_handshake", what, (long)a, (long)b);
}

/* A connection that came through: call once and look for a reply, as a
 * caller would (the fake server never answers, but its rings may hold
 * anything). */
static void exercise(tachyon_rpc_bus_t *rpc)
{
    uint64_t cid = 0;
    (void)tachyon_rpc_call(rpc, "ping", 4, 1, &cid);
    for (int i = 0; i < 4; i++) {
        size_t size = 0;
        uint32_t type = 0;
        const void *p = tachyon_rpc_wait_timeout(rpc, 0, &size, &type, 16, 0);
        if (!p)
            break;
        if (size > tachyon_rpc_max_reply(rpc))
            violated("reply larger than the reply ring allows", (int)size, 0);
        if (type > 0xFFFF)
            violated("reply type beyond 16 bits", (int)type, 0);
        tachyon_rpc_commit_rx(rpc);
    }
    (void)tachyon_rpc_get_state(rpc);
    tachyon_rpc_destroy(rpc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_begin(data, size);
    tachyon_rpc_bus_t *rpc = NULL;
    tachyon_error_t err = tachyon_rpc_connect_timeout(fake.path, 2000, &rpc);
    fake_end();
    if (err == TACHYON_SUCCESS) {
        if (!rpc)
            violated("success without a handle", 0, 0);
        exercise(rpc);
    } else if (rpc) {
        violated("failure with a handle", (int)err, 0);
    }
    if ((int)err < 0 || err > TACHYON_ERR_WRONG_REPLY)
        violated("unknown error code", (int)err, 0);
    fake_check_leaks("fuzz_rpc_handshake", (long)err);
    return 0;
}
