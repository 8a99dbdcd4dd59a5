/*
 * hostile.c - memfds that look like bus segments and are not, held open for
 * the tachyon-top tests; each is the way a broken or malicious process could
 * lie to a monitor. Prints "ready <pid>" and waits for SIGTERM.
 *
 *   tachyon:/hostile/bad-header        sealed, the header is noise
 *   tachyon:/hostile/big-capacity      sealed, valid header claiming 1 GiB in a 4 KiB file
 *   tachyon:/hostile/unsealed          a valid header, but not sealed
 *   tachyon:/hostile/tail-past-head    sealed, valid header, tail beyond head
 *   tachyon:/hostile/absurd-counts     sealed, valid header, the producer's block
 *                                      claims 2^63 messages
 *   tachyon:/hostile/torn<ESC>"\xff    sealed, valid header, a counter block whose
 *                                      seqlock never settles (odd), and a name
 *                                      with a terminal escape, a quote and a
 *                                      byte that is not UTF-8
 *   /hostile/published-style           sealed, valid, named like a published-library
 *                                      segment (no prefix): a bus, listed; a child
 *                                      process maps it with every descriptor closed
 *                                      (as a peer that keeps only the mapping)
 *   not-a-bus                          any other program's memfd: ignored
 *
 * Prints "ready <pid> mapper <child pid>".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

#define RING 4096u

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void pause_briefly(void)
{
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
}

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

static void plausible_header(tachyon_segment_header_t *h, uint32_t capacity)
{
    memset(h, 0, sizeof(*h));
    h->magic = TACHYON_MAGIC;
    h->version = TACHYON_VERSION;
    h->capacity = capacity;
    h->msg_alignment = TACHYON_MSG_ALIGN;
    atomic_store(&h->state, 2); /* READY */
}

/* A memfd named `name` holding `hdr` (and zeros up to the ring's end);
 * sealed against shrinking and growing unless `seal` is 0. Stays open. */
static int make_memfd(const char *name, const void *hdr, size_t hdr_size, int seal)
{
    int fd = memfd_create(name, MFD_ALLOW_SEALING);
    if (fd < 0)
        fail("memfd_create");
    if (ftruncate(fd, TACHYON_HEADER_BYTES + RING) != 0)
        fail("ftruncate");
    if (pwrite(fd, hdr, hdr_size, 0) != (ssize_t)hdr_size)
        fail("pwrite");
    if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        fail("F_ADD_SEALS");
    return fd;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    static tachyon_segment_header_t h;
    static uint8_t noise[TACHYON_HEADER_BYTES];
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)(0xA5 ^ (i * 31));
    make_memfd("tachyon:/hostile/bad-header", noise, sizeof noise, 1);

    plausible_header(&h, 1u << 30);
    make_memfd("tachyon:/hostile/big-capacity", &h, sizeof h, 1);

    plausible_header(&h, RING);
    make_memfd("tachyon:/hostile/unsealed", &h, sizeof h, 0);

    plausible_header(&h, RING);
    atomic_store(&h.head, 100);
    atomic_store(&h.tail, 5000);
    make_memfd("tachyon:/hostile/tail-past-head", &h, sizeof h, 1);

    plausible_header(&h, RING);
    atomic_store(&h.head, 10 * RING);
    atomic_store(&h.tail, 10 * RING);
    atomic_store(&h.producer_stats.pid, (uint32_t)getpid());
    atomic_store(&h.producer_stats.seq, 2);
    atomic_store(&h.producer_stats.messages, 1ull << 63);
    atomic_store(&h.producer_stats.bytes, 10);
    make_memfd("tachyon:/hostile/absurd-counts", &h, sizeof h, 1);

    plausible_header(&h, RING);
    atomic_store(&h.consumer_stats.pid, (uint32_t)getpid());
    atomic_store(&h.consumer_stats.seq, 7); /* a writer that never finishes */
    atomic_store(&h.consumer_stats.messages, ~0ull);
    make_memfd("tachyon:/hostile/torn\x1b[2J\"\xff", &h, sizeof h, 1);

    plausible_header(&h, RING);
    int published = make_memfd("/hostile/published-style", &h, sizeof h, 1);

    make_memfd("not-a-bus", noise, sizeof noise, 0);

    pid_t parent = getpid(), mapper = fork();
    if (mapper < 0)
        fail("fork");
    if (mapper == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (mmap(NULL, TACHYON_HEADER_BYTES + RING, PROT_READ, MAP_SHARED, published, 0) == MAP_FAILED)
            _exit(1);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        while (!stop && getppid() == parent)
            pause_briefly();
        _exit(0);
    }
    printf("ready %d mapper %d\n", (int)getpid(), (int)mapper);
    fflush(stdout);
    while (!stop)
        pause_briefly();
    kill(mapper, SIGTERM);
    waitpid(mapper, NULL, 0);
    return 0;
}
