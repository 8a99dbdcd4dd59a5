/*
 * state.h - what a bus handle knows about itself and its peer: the error of
 * the last failed call (per thread), whether the ring is unusable (fatal),
 * whether the peer is gone and how, and whether this process is a fork()ed
 * child of the one that made the handle.
 *
 * This is the lowest layer of the core: ring.c, wait.c and bus.c all use it,
 * and it calls none of them (it needs only the segment's state word and the
 * futex wake).
 */
#ifndef TACHYON_STATE_H
#define TACHYON_STATE_H

#include "barrier.h"
#include "internal.h"

/* ---- Errors ---------------------------------------------------------------
 * Errors are kept per thread and per bus: a thread asking
 * tachyon_bus_last_error gets the error of its own last failed call on that
 * bus, never another thread's. A detail (path, system error, peer pid, ...)
 * may come with an error; tachyon_error_message gives it. */

/* Record `err` as this thread's last error on `bus` (NULL: none), no detail. */
TACHYON_HIDDEN void status_set_error(const struct tachyon_bus *bus, tachyon_error_t err);

/* As status_set_error, with a printf-style detail sentence. Returns err. */
TACHYON_HIDDEN tachyon_error_t status_error_detail(const struct tachyon_bus *bus, tachyon_error_t err,
                                                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* This thread's last error on `bus` (SUCCESS when it had none). */
TACHYON_HIDDEN tachyon_error_t status_last_error(const struct tachyon_bus *bus);

/* The same for handles other than a bus (fan channels), keyed by an id
 * from status_new_bus_id. Keeps the detail recorded just before. */
TACHYON_HIDDEN void status_set_error_id(uint64_t id, tachyon_error_t err);
TACHYON_HIDDEN tachyon_error_t status_last_error_id(uint64_t id);

/* The detail recorded with this thread's last error if it was `err`, else NULL. */
TACHYON_HIDDEN const char *status_detail_for(tachyon_error_t err);

/* ---- Fatal ------------------------------------------------------------------
 * A corrupt counter or header, seen by us or by the peer (which stores FATAL
 * in the shared state word), makes the bus unusable for good. */

static inline int status_is_fatal(const struct tachyon_bus *bus)
{
    return local_flag_load(&bus->fatal);
}

/* Corruption seen: stop using the ring, tell the peer, wake a sleeper. */
TACHYON_HIDDEN void status_set_fatal(struct tachyon_bus *bus);

/* Fatal here, or declared fatal by the peer through the shared state word. */
static inline int status_fatal_anywhere(struct tachyon_bus *bus)
{
    if (status_is_fatal(bus))
        return 1;
    if (unlikely(observe_state(&bus->hdr->state) == TACHYON_STATE_FATAL_ERROR)) {
        status_set_fatal(bus);
        return 1;
    }
    return 0;
}

/* ---- The peer ---------------------------------------------------------------- */

enum peer_presence {
    PEER_PRESENT = 0,
    PEER_CLOSED = 1, /* it destroyed the bus (state DISCONNECTED) */
    PEER_DIED = 2,   /* its process ended (or dropped the mapping) without closing */
};

static inline enum peer_presence status_peer(const struct tachyon_bus *bus)
{
    return (enum peer_presence)local_flag_load(&bus->peer_gone);
}

/* Sticky: once gone, always gone; a later "closed" never overrides "died". */
static inline void status_note_peer_gone(struct tachyon_bus *bus, enum peer_presence how)
{
    local_flag_set_once(&bus->peer_gone, (int)how);
}

/* The error a call reports once the peer is gone and nothing is left to read. */
static inline tachyon_error_t status_peer_error(const struct tachyon_bus *bus)
{
    return status_peer(bus) == PEER_CLOSED ? TACHYON_ERR_PEER_CLOSED : TACHYON_ERR_PEER_DEAD;
}

/* ---- fork() ------------------------------------------------------------------
 * The segment is mapped with MADV_DONTFORK, so a child of the process that
 * made a handle has no mapping behind it: every call there must refuse
 * (ERR_FORKED) instead of touching the segment. */

TACHYON_HIDDEN extern _Atomic unsigned status_fork_count;

/* Called once per handle: installs the fork hook, returns the current count. */
TACHYON_HIDDEN unsigned status_fork_generation(void);

static inline int status_in_forked_child(const struct tachyon_bus *bus)
{
    return unlikely(atomic_load_explicit(&status_fork_count, memory_order_relaxed) != bus->fork_generation);
}

/* A process-unique id for a new handle (errors are keyed by it, not by the
 * address, which a later handle may reuse). */
TACHYON_HIDDEN uint64_t status_new_bus_id(void);

#endif /* TACHYON_STATE_H */
