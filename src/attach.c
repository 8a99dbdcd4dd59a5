/*
 * attach.c - making a bus handle over one segment: the listener's fresh one,
 * the connector's received one, and what both learn of the peer after the
 * handshake. A plain bus uses one; a request/reply pair two.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "barrier.h"
#include "internal.h"
#include "state.h"

/* Map `fd` and make a handle with one reference over it. */
static tachyon_error_t bus_from_fd(int fd, uint64_t capacity, tachyon_bus_t **out)
{
    size_t map_size = (size_t)(TACHYON_HEADER_BYTES + capacity);
    void *base;
    tachyon_error_t err = shm_map(fd, map_size, 1, &base);
    if (err != TACHYON_SUCCESS)
        return err;
    struct tachyon_bus *bus = calloc(1, sizeof(*bus));
    if (!bus) {
        munmap(base, map_size);
        return TACHYON_ERR_MEM;
    }
    bus->refs = 1; /* not yet shared with anyone */
    bus->id = status_new_bus_id();
    bus->fork_generation = status_fork_generation();
    bus->own_pid = (uint32_t)getpid(); /* once: getpid() is a system call */
    bus->hdr = base;
    bus->ring = (uint8_t *)base + TACHYON_HEADER_BYTES;
    bus->capacity = capacity;
    bus->mask = capacity - 1;
    bus->map_size = map_size;
    bus->peer_pidfd = -1;
    bus->seg_fd = -1;
    bus->evfd = notify_create();
    bus->peer_evfd = -1;
    bus->epfd = -1;
    bus->timerfd = -1;
    *out = bus;
    return TACHYON_SUCCESS;
}

/* The listener's own open file description of the segment, with its byte
 * held (shm.c): the memfd itself goes to the connector, and a description
 * shared with the peer could not tell who holds what. -1 when the system
 * offers no /proc or no OFD locks; the peer is then not told we hold one. */
static int listener_hold_segment(int memfd)
{
    int fd = shm_reopen(memfd);
    if (fd >= 0 && shm_hold(fd, SHM_LISTENER_BYTE) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

tachyon_error_t bus_new_segment(uint64_t capacity, const char *socket_path, tachyon_bus_t **out, int *out_memfd)
{
    int memfd;
    tachyon_error_t err = shm_create_segment(capacity, socket_path, &memfd);
    if (err != TACHYON_SUCCESS)
        return err;
    int own = listener_hold_segment(memfd);
    tachyon_bus_t *bus;
    err = bus_from_fd(own >= 0 ? own : memfd, capacity, &bus);
    if (err != TACHYON_SUCCESS) {
        if (own >= 0)
            close(own);
        close(memfd);
        return err;
    }
    bus->seg_fd = own;
    bus->peer_byte = SHM_CONNECTOR_BYTE;
    shm_format(bus->hdr, (uint32_t)capacity);
    ring_attach(bus);
    *out = bus;
    *out_memfd = memfd;
    return TACHYON_SUCCESS;
}

/* The header after mapping must say what the handshake said, and be READY
 * (or DISCONNECTED: a listener that sent its messages and left before we
 * mapped; they are ours to read, then the peer is gone). */
static tachyon_error_t check_attached(tachyon_bus_t *bus, uint64_t capacity)
{
    tachyon_error_t err = shm_check_header(bus->hdr, capacity);
    if (err != TACHYON_SUCCESS)
        return err;
    uint32_t state = observe_state(&bus->hdr->state);
    if (state == TACHYON_STATE_FATAL_ERROR)
        return TACHYON_ERR_FATAL;
    if (state != TACHYON_STATE_READY && state != TACHYON_STATE_DISCONNECTED)
        return TACHYON_ERR_ABI_MISMATCH;
    if (state == TACHYON_STATE_DISCONNECTED)
        status_note_peer_gone(bus, PEER_CLOSED);
    ring_attach(bus);
    return status_is_fatal(bus) ? TACHYON_ERR_FATAL : TACHYON_SUCCESS;
}

tachyon_error_t bus_attach_segment(int fd, uint64_t capacity, const struct tachyon_peer *peer, tachyon_bus_t **out)
{
    tachyon_error_t err = shm_check_received_fd(fd, TACHYON_HEADER_BYTES + capacity);
    tachyon_bus_t *bus = NULL;
    if (err == TACHYON_SUCCESS)
        err = bus_from_fd(fd, capacity, &bus);
    if (err != TACHYON_SUCCESS) {
        if (fd >= 0)
            close(fd);
        return err;
    }
    /* Kept to hold our byte while we keep the segment (shm.c). */
    if (shm_hold(fd, SHM_CONNECTOR_BYTE) == 0)
        bus->seg_fd = fd;
    else
        close(fd);
    bus->peer_byte = SHM_LISTENER_BYTE;
    bus->peer_pid = peer->pid;
    err = check_attached(bus, capacity);
    if (err != TACHYON_SUCCESS) {
        bus_free_unused(bus);
        return err;
    }
    *out = bus;
    return TACHYON_SUCCESS;
}

uint32_t bus_our_features(const tachyon_bus_t *bus)
{
    return TACHYON_FEATURE_LONE_MARKER | (bus->seg_fd >= 0 ? TACHYON_FEATURE_HOLD_LOCK : 0) |
           (bus->stamp_salt != 0 ? TACHYON_FEATURE_SLOT_STAMPS : 0) |
           (wait_membarrier_ready() ? TACHYON_FEATURE_MEMBARRIER : 0) |
           (bus->evfd >= 0 ? TACHYON_FEATURE_EVENTFD : 0);
}

void bus_set_peer(tachyon_bus_t *bus, const struct tachyon_peer *peer, uint32_t features)
{
    bus->peer_pid = peer->pid;
    bus->peer_pidfd = peer->pidfd;
    bus->peer_features = features;
    store_setup_word(&bus->hdr->ext_features, features);
    ring_choose_publication(bus);
}

void bus_free_unused(tachyon_bus_t *bus)
{
    if (bus->seg_fd >= 0)
        close(bus->seg_fd);
    notify_close(bus);
    munmap(bus->hdr, bus->map_size);
    ring_detach(bus);
    free(bus);
}
