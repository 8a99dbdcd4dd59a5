/*
 * inspect.c - reading a bus segment from the outside, as a monitor does: the
 * header's words and each side's counters, from a descriptor of the memfd
 * (for instance /proc/<pid>/fd/<n> of a process of the same user).
 *
 * The segment may belong to anyone and hold anything: it is mapped read-only
 * and only when sealed against shrinking (so no SIGBUS), only its 768-byte
 * header is mapped, every value is read once and checked, and the counter
 * blocks are read through their seqlock a bounded number of times.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "barrier.h"
#include "internal.h"

#define STATS_READ_TRIES 64

/* One side's block, if a consistent copy could be had and it was ever written. */
static void read_side(tachyon_side_stats_t *b, tachyon_side_info_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int tries = 0; tries < STATS_READ_TRIES; tries++) {
        uint32_t seq = stats_read_begin(&b->seq); /* J: pairs with the writer's I */
        tachyon_side_info_t v;
        v.pid = (int32_t)atomic_load_explicit(&b->pid, memory_order_relaxed);
        v.messages = stats_load(&b->messages);
        v.bytes = stats_load(&b->bytes);
        v.stalls = stats_load(&b->stalls);
        v.wakes = stats_load(&b->wakes);
        v.fill_max = stats_load(&b->fill_max);
        v.updated_ns = stats_load(&b->updated_ns);
        v.active_ns = stats_load(&b->active_ns);
        if (stats_read_consistent(&b->seq, seq)) {
            v.valid = seq != 0 && v.pid > 0;
            *out = v;
            return;
        }
    }
}

tachyon_error_t tachyon_segment_inspect(int fd, tachyon_segment_info_t *out)
{
    if (!out)
        return TACHYON_ERR_NULL_PTR;
    memset(out, 0, sizeof(*out));
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return TACHYON_ERR_SYSTEM;
    if (!S_ISREG(st.st_mode) || st.st_size < (off_t)TACHYON_HEADER_BYTES)
        return TACHYON_ERR_ABI_MISMATCH;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK))
        return TACHYON_ERR_SEAL; /* it could shrink under the mapping */
    void *map = mmap(NULL, TACHYON_HEADER_BYTES, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        return TACHYON_ERR_MAP;
    tachyon_segment_header_t *hdr = map;
    tachyon_error_t err = TACHYON_SUCCESS;
    uint32_t capacity = hdr->capacity;
    if (hdr->magic != TACHYON_MAGIC || hdr->version != TACHYON_VERSION || hdr->msg_alignment != TACHYON_MSG_ALIGN)
        err = TACHYON_ERR_ABI_MISMATCH;
    else if (!tachyon_capacity_valid(capacity) || (uint64_t)st.st_size < TACHYON_HEADER_BYTES + (uint64_t)capacity)
        err = TACHYON_ERR_INVALID_SZ;
    if (err == TACHYON_SUCCESS) {
        out->version = TACHYON_VERSION;
        out->capacity = capacity;
        uint32_t state = observe_state(&hdr->state);
        out->state = state <= TACHYON_STATE_UNKNOWN ? state : TACHYON_STATE_UNKNOWN;
        out->features = atomic_load_explicit(&hdr->ext_features, memory_order_relaxed);
        out->head = read_counter_relaxed(&hdr->head);
        out->tail = read_counter_relaxed(&hdr->tail);
        out->consumer_sleeping = peek_sleeper_word(&hdr->consumer_sleeping);
        read_side(&hdr->producer_stats, &out->producer);
        read_side(&hdr->consumer_stats, &out->consumer);
    }
    munmap(map, TACHYON_HEADER_BYTES);
    return err;
}
