/*
 * fuzz_fan.c - libFuzzer target: what a hostile fan-out producer can hand a
 * reader. Each input describes the two hellos, the memfd (size, seals, its
 * first bytes: header, reader table, ring) and which descriptors ride along;
 * a fake producer thread in this process plays it over a real Unix socket to
 * tachyon_fanout_connect, and a reader that gets in receives what it can.
 *
 * Properties: no crash or sanitizer report; a known error code; a received
 * message lies inside the ring; on failure no handle; afterwards not one
 * descriptor or memfd mapping more than before.
 *
 * Input layout (missing bytes read as zero):
 *   [0..31]   first hello          [32..35] memfd size (mod 1 MiB)
 *   [36]      seals: bit0 SHRINK, bit1 GROW, bit2 SEAL
 *   [37]      bit0: the memfd rides with the first hello; bit1: no second
 *             hello; bit2: the second hello is [40..71] (else the first
 *             again); bit3: the second hello comes without the memfd
 *   [40..71]  the second hello, when bit2 says so
 *   [72..]    bytes written at the start of the memfd
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

#include "fake_peer.h"
#include "send_fds.h"
#include "tachyon.h"

#define PREFIX 72
#define MAX_MEMFD (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int make_memfd(void)
{
    uint32_t memfd_size;
    uint8_t b[4] = {byte_at(32), byte_at(33), byte_at(34), byte_at(35)};
    memcpy(&memfd_size, b, 4);
    memfd_size %= MAX_MEMFD;
    int fd = memfd_create("fuzz-fan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, memfd_size) != 0)
        abort();
    size_t n = fake.size > PREFIX ? fake.size - PREFIX : 0;
    if (n > memfd_size)
        n = memfd_size;
    if (n > 0 && pwrite(fd, fake.data + PREFIX, n, 0) != (ssize_t)n)
        abort();
    uint8_t s = byte_at(36);
    int seals = (s & 1 ? F_SEAL_SHRINK : 0) | (s & 2 ? F_SEAL_GROW : 0) | (s & 4 ? F_SEAL_SEAL : 0);
    if (seals)
        (void)fcntl(fd, F_ADD_SEALS, seals);
    return fd;
}

/* One connection per input: hello, the reader's request, hello + memfd, then
 * hold the connection until the reader hangs up (or 2 s). */
static void serve_one(void)
{
    int conn = accept4(fake.lfd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        return;
    uint8_t first[32], second[32], req[32];
    for (size_t i = 0; i < 32; i++) {
        first[i] = byte_at(i);
        second[i] = byte_at(byte_at(37) & 4 ? 40 + i : i);
    }
    int memfd = make_memfd();
    uint8_t mode = byte_at(37);
    (void)send_with_fds(conn, first, sizeof(first), &memfd, mode & 1 ? 1 : 0);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (recv(conn, req, sizeof(req), MSG_WAITALL) == (ssize_t)sizeof(req) && !(mode & 2))
        (void)send_with_fds(conn, second, sizeof(second), &memfd, mode & 8 ? 0 : 1);
    close(memfd);
    (void)recv(conn, req, 1, 0); /* until the reader hangs up, or 2 s */
    close(conn);
}

static void violated(const char *what, long a, long b)
{
    fake_violated("fuzz_fan", what, (long)a, (long)b);
}

/* A reader that got in: receive what the segment offers, without waiting. */
static void exercise(tachyon_fanout_rx_t *rx, uint32_t capacity)
{
    for (int i = 0; i < 64; i++) {
        tachyon_fan_msg_t m;
        tachyon_error_t err = tachyon_fanout_acquire_rx(rx, &m, 0, 0);
        if (err != TACHYON_SUCCESS)
            break;
        if (m.size > capacity)
            violated("a message larger than the ring", (long)m.size, capacity);
        volatile uint8_t sum = 0;
        for (size_t k = 0; k < m.size; k++)
            sum ^= ((const uint8_t *)m.ptr)[k]; /* every byte readable: ASan checks */
        (void)sum;
        tachyon_fanout_commit_rx(rx);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_begin(data, size);
    tachyon_fanout_rx_t *rx = NULL;
    /* 200 ms: a producer that never sends its second hello costs that long. */
    tachyon_error_t err = tachyon_fanout_connect(fake.path, TACHYON_FAN_START_NEWEST, 200, &rx);
    if (err == TACHYON_SUCCESS) {
        if (!rx)
            violated("success without a handle", 0, 0);
        uint32_t capacity = (uint32_t)byte_at(20) | (uint32_t)byte_at(21) << 8 | (uint32_t)byte_at(22) << 16 |
                            (uint32_t)byte_at(23) << 24; /* the hello's, which the reader checked */
        exercise(rx, capacity);
        tachyon_fanout_rx_destroy(rx);
    } else if (rx) {
        violated("failure with a handle", (long)err, 0);
    }
    fake_end();
    if ((int)err < 0 || err > TACHYON_ERR_OVERRUN)
        violated("unknown error code", (long)err, 0);
    fake_check_leaks("fuzz_fan", (long)err);
    return 0;
}
