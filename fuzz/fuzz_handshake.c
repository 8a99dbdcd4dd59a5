/*
 * fuzz_handshake.c - libFuzzer target: what a hostile listener can hand a
 * connector. Each input describes the 32 handshake bytes, the memfd (size,
 * seals, first bytes of its header), which descriptors ride along and how the
 * bytes are split; a fake listener thread in this process sends exactly that
 * over a real Unix socket to tachyon_bus_connect.
 *
 * Properties: no crash or sanitizer report; a known error code; on failure no
 * bus and, once the fake listener has closed its side, not one descriptor or
 * memfd mapping more than before.
 *
 * Input layout (missing bytes read as zero):
 *   [0..31]  handshake       [32..35] memfd size (mod 1 MiB)
 *   [36]     seals: bit0 SHRINK, bit1 GROW, bit2 SEAL, bit3 WRITE, bit4 FUTURE_WRITE
 *   [37]     fds: 0 memfd, 1 none, 2 two memfds, 3 pipe, 4 /dev/null, 5 unsealable memfd
 *   [38]     bits 0-1 send: 0 whole, 1 split (fd first), 2 split (fd second), 3 truncated;
 *            bit 2: then read the connector's extension offer and answer with
 *            the 32 bytes at [40..71] (bit 3: with a pipe fd attached); then hang up
 *   [39]     split point / truncated length (mod 32)
 *   [40..]   bytes written at the start of the memfd (its segment header)
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
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "tachyon.h"
#include "wire.h"
#include "fake_peer.h"
#include "send_fds.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define PREFIX 40
#define MAX_MEMFD (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int make_memfd(int allow_sealing)
{
    uint32_t memfd_size;
    uint8_t b[4] = {byte_at(32), byte_at(33), byte_at(34), byte_at(35)};
    memcpy(&memfd_size, b, 4);
    memfd_size %= MAX_MEMFD;
    int fd = memfd_create("fuzz", MFD_CLOEXEC | (allow_sealing ? MFD_ALLOW_SEALING : 0));
    if (fd < 0 || ftruncate(fd, memfd_size) != 0)
        abort();
    size_t header = fake.size > PREFIX ? fake.size - PREFIX : 0;
    if (header > memfd_size)
        header = memfd_size;
    if (header > 0 && pwrite(fd, fake.data + PREFIX, header, 0) != (ssize_t)header)
        abort();
    uint8_t s = byte_at(36);
    int seals = (s & 1 ? F_SEAL_SHRINK : 0) | (s & 2 ? F_SEAL_GROW : 0) | (s & 8 ? F_SEAL_WRITE : 0) |
                (s & 16 ? F_SEAL_FUTURE_WRITE : 0) | (s & 4 ? F_SEAL_SEAL : 0);
    if (allow_sealing && seals)
        (void)fcntl(fd, F_ADD_SEALS, seals);
    return fd;
}

static int make_fds(int fds[2])
{
    int p[2];
    switch (byte_at(37) % 6) {
    case 0: fds[0] = make_memfd(1); return 1;
    case 1: return 0;
    case 2: fds[0] = make_memfd(1); fds[1] = make_memfd(1); return 2;
    case 3:
        if (pipe2(p, O_CLOEXEC) != 0)
            abort();
        close(p[1]);
        fds[0] = p[0];
        return 1;
    case 4: fds[0] = open("/dev/null", O_RDWR | O_CLOEXEC); return 1;
    default: fds[0] = make_memfd(0); return 1;
    }
}

static void send_part(int conn, const uint8_t *buf, size_t len, const int *fds, int nfds)
{
    if (len > 0)
        (void)send_with_fds(conn, buf, len, fds, nfds); /* the connector may have hung up */
}

/* A hostile answer to the connector's extension offer (if it sends one). */
static void answer_offer(int conn)
{
    uint8_t offer[32], answer[32];
    struct timeval tv = {.tv_sec = 2};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (recv(conn, offer, sizeof(offer), MSG_WAITALL) != (ssize_t)sizeof(offer))
        return;
    for (size_t i = 0; i < 32; i++)
        answer[i] = byte_at(PREFIX + i);
    int p[2] = {-1, -1};
    if ((byte_at(38) & 8) && pipe2(p, O_CLOEXEC) != 0)
        abort();
    send_part(conn, answer, sizeof(answer), p, p[0] >= 0 ? 1 : 0);
    if (p[0] >= 0) {
        close(p[0]);
        close(p[1]);
    }
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
    int fds[2];
    int nfds = make_fds(fds);
    size_t split = 1 + byte_at(39) % 31;
    switch (byte_at(38) % 4) {
    case 0: send_part(conn, hs, 32, fds, nfds); break;
    case 1: send_part(conn, hs, split, fds, nfds); send_part(conn, hs + split, 32 - split, NULL, 0); break;
    case 2: send_part(conn, hs, split, NULL, 0); send_part(conn, hs + split, 32 - split, fds, nfds); break;
    default: send_part(conn, hs, split, fds, nfds); break;
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    if ((byte_at(38) & 4) && byte_at(38) % 4 != 3) /* a whole handshake went out */
        answer_offer(conn);
    close(conn);
}

static void violated(const char *what, int a, int b)
{
    fake_violated("fuzz_handshake", what, (long)a, (long)b);
}

/* A bus that came through: use it both ways once, as a peer would. */
static void exercise(tachyon_bus_t *bus)
{
    uint32_t t;
    size_t s;
    if (tachyon_send(bus, "ping", 4, 1) == TACHYON_SUCCESS) {
        const char *p = tachyon_acquire_rx(bus, &t, &s);
        if (p && (s > tachyon_bus_max_payload(bus)))
            violated("received size above the maximum payload", (int)s, 0);
        if (p)
            tachyon_commit_rx(bus);
    }
    tachyon_bus_destroy(bus);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_begin(data, size);
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = tachyon_bus_connect_timeout(fake.path, 2000, &bus);
    fake_end();
    if (err == TACHYON_SUCCESS) {
        if (!bus)
            violated("success without a bus", 0, 0);
        exercise(bus);
    } else if (bus) {
        violated("failure with a bus", (int)err, 0);
    }
    if ((int)err < 0 || err > TACHYON_ERR_WRONG_REPLY)
        violated("unknown error code", (int)err, 0);
    fake_check_leaks("fuzz_handshake", (long)err);
    return 0;
}
