/*
 * shm.c - the shared segment: a sealed memfd, mapped once by each side.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "barrier.h"
#include "internal.h"
#include "state.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

/* A memfd's name is at most 249 bytes; "tachyon:" and as much of the socket
 * path as fits name it in /proc/<pid>/fd, so a tool can tell which bus a
 * segment belongs to. */
#define MEMFD_NAME_MAX 249

static tachyon_error_t segment_failed(int fd, tachyon_error_t err, const char *what)
{
    int e = errno;
    if (fd >= 0)
        close(fd);
    return status_error_detail(NULL, err, "creating the shared memory: %s: %s", what, strerror(e));
}

/* Create, size and seal the memfd. The seals make the size a fact the peer can
 * check: nobody can shrink the file under a mapping (SIGBUS) or grow it. */
tachyon_error_t shm_create_segment(uint64_t capacity, const char *socket_path, int *out_fd)
{
    char name[MEMFD_NAME_MAX + 1];
    snprintf(name, sizeof(name), "tachyon:%s", socket_path);
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return segment_failed(-1, TACHYON_ERR_OPEN, "memfd_create");
    if (ftruncate(fd, (off_t)(TACHYON_HEADER_BYTES + capacity)) != 0)
        return segment_failed(fd, TACHYON_ERR_TRUNCATE, "ftruncate");
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        return segment_failed(fd, TACHYON_ERR_SEAL, "sealing");
    *out_fd = fd;
    return TACHYON_SUCCESS;
}

/* Before mapping a peer's fd: it must be a regular file at least map_size long
 * that can neither shrink nor grow. */
tachyon_error_t shm_check_received_fd(int fd, uint64_t map_size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return TACHYON_ERR_SYSTEM;
    if (!S_ISREG(st.st_mode))
        return TACHYON_ERR_ABI_MISMATCH;
    if (st.st_size < 0 || (uint64_t)st.st_size < map_size)
        return TACHYON_ERR_TRUNCATE;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & REQUIRED_SEALS) != REQUIRED_SEALS)
        return TACHYON_ERR_SEAL;
    return TACHYON_SUCCESS;
}

/* Map shared, keep it out of fork()ed children (a child writing the ring would
 * be a third party in an SPSC protocol), optionally pre-fault every page. */
tachyon_error_t shm_map(int fd, size_t map_size, int prefault, void **out)
{
    int flags = MAP_SHARED;
#ifdef MAP_POPULATE
    if (prefault)
        flags |= MAP_POPULATE;
#endif
    void *p = mmap(NULL, map_size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p == MAP_FAILED)
        return status_error_detail(NULL, TACHYON_ERR_MAP, "mapping %zu bytes of shared memory: %s", map_size,
                                   strerror(errno));
#ifdef MADV_DONTFORK
    (void)madvise(p, map_size, MADV_DONTFORK);
#endif
    *out = p;
    return TACHYON_SUCCESS;
}

/* ---- Holding the mapping -------------------------------------------------------
 *
 * Each side of a bus between two processes of this project holds a write lock
 * on one byte of the segment file (byte 0 the listener, byte 1 the connector)
 * through an open file description of its own. The lock lives exactly as long
 * as that description: while the side keeps the fd or the mapping. So a peer
 * whose lock is gone has dropped the segment although its process may live on
 * (it called exec(), say), which a pidfd cannot tell. OFD locks, unlike
 * classic POSIX locks, are not released when the process closes some other
 * fd of the same file, and they belong to the description, not the process.
 */

/* A second open file description of the same memfd (its own lock owner). */
int shm_reopen(int fd)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    return open(path, O_RDWR | O_CLOEXEC);
}

static struct flock one_byte(short type, uint32_t byte)
{
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)byte;
    fl.l_len = 1;
    return fl;
}

/* Take our side's byte. 0 on success. */
int shm_hold(int fd, uint32_t byte)
{
    struct flock fl = one_byte(F_WRLCK, byte);
    return fcntl(fd, F_OFD_SETLK, &fl);
}

/* Does another description hold the peer's byte? 1 yes, 0 no, -1 unknown. */
int shm_held_by_peer(int fd, uint32_t byte)
{
    struct flock fl = one_byte(F_WRLCK, byte);
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return -1;
    return fl.l_type != F_UNLCK;
}

/* A salt for slot stamps (ring.c): unpredictable, so that no payload can
 * hold a stamp by chance, and with its low six bits set, so that a stamp
 * (a 64-aligned position ^ salt) is never 0, what a fresh segment holds. */
static uint64_t stamp_salt(void)
{
    uint64_t salt = 0;
    if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != (ssize_t)sizeof(salt)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        salt = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 16) ^
               (uint64_t)(uintptr_t)&ts;
        salt *= 0x9E3779B97F4A7C15ull;
    }
    return salt | (TACHYON_MSG_ALIGN - 1);
}

uint64_t shm_new_stamp_salt(void)
{
    return stamp_salt();
}

/* The listener formats a fresh (zero-filled) segment; READY is stored last. */
void shm_format(tachyon_segment_header_t *hdr, uint32_t capacity)
{
    store_state(&hdr->state, TACHYON_STATE_INITIALIZING);
    hdr->magic = TACHYON_MAGIC;
    hdr->version = TACHYON_VERSION;
    hdr->capacity = capacity;
    hdr->msg_alignment = TACHYON_MSG_ALIGN;
    write_counter_relaxed(&hdr->head, 0);
    write_counter_relaxed(&hdr->tail, 0);
    set_sleeper_word(&hdr->consumer_sleeping, TACHYON_CONSUMER_AWAKE);
    write_counter_relaxed(&hdr->producer_heartbeat, 0);
    write_counter_relaxed(&hdr->consumer_heartbeat, 0);
    write_counter_relaxed(&hdr->stamp_salt, stamp_salt());
    store_state(&hdr->state, TACHYON_STATE_READY);
}

/* The connector's check that the mapped header says what the handshake said. */
tachyon_error_t shm_check_header(const tachyon_segment_header_t *hdr, uint64_t capacity)
{
    if (hdr->magic != TACHYON_MAGIC || hdr->version != TACHYON_VERSION ||
        hdr->capacity != capacity || hdr->msg_alignment != TACHYON_MSG_ALIGN)
        return TACHYON_ERR_ABI_MISMATCH;
    return TACHYON_SUCCESS;
}
