/*
 * fanout.c - one producer, many consumers, one ring (docs/protocol.md,
 * "Fan-out"; the ordering argument in docs/design.md and barrier.h, pairs
 * A-D, K/L, P-U).
 *
 * The producer writes each message once into a sealed memfd ring; every
 * consumer maps it (the ring read-only) and reads in place through its own
 * cursor, a tail in its entry of the table before the ring. The producer may
 * overwrite a byte only when every consumer counted has released it.
 *
 * Joining: the listener keeps its socket; a thread of the producer's process
 * (the "door") accepts consumers, checks their credentials, gives each a
 * table entry and hands over the memfd. It holds every consumer's connection
 * and notices at once when one closes or its process dies; the entry is then
 * freed and no longer holds the producer back. The door and the producer
 * share one lock, taken by the producer only on its slow path (every half
 * ring, or when it runs out of room): the producer writes freely below a
 * limit computed under the lock, and a joiner's cursor is placed at or
 * beyond limit - capacity, so that limit stays safe for it too.
 *
 * Slow consumers: BLOCK makes the producer wait for room (with a timeout);
 * DROP makes it drop a consumer a whole ring behind: it records where the
 * consumer may continue and bumps the entry's drop generation before it
 * overwrites anything (pair R/S). The consumer learns it on its next call
 * (TACHYON_ERR_OVERRUN and the exact count of messages it lost).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "barrier.h"
#include "fan.h"
#include "fan_wire.h"
#include "futex.h"
#include "internal.h"
#include "state.h"

#define NO_MESSAGE UINT64_MAX
#define FAN_SPIN_CHECK 1024u /* spins between looks at the clock */
#define GONE_CHECK_NS (10 * 1000000LL) /* a reader that keeps finding nothing looks this often */
#define ROOM_SPIN_ROUNDS 512u /* looks for room before the producer sleeps */
#define ROOM_SPIN_PAUSES 16   /* pauses between two looks */
#define FAN_MARKS 64u         /* message starts remembered per lap (advance_oldest) */
/* Publications between two looks at the readers' fence requests (pair V). */
uint32_t fan_fence_look_every = 256;
/* Readers that sleep after nearly every message ask for fences (pair V). */
int fan_readers_ask_fences = 1;

/* The producer's private view of one table entry (under the lock). */
struct fan_consumer {
    int conn;             /* the consumer's connection; -1: the entry is free */
    pid_t pid;
    uint32_t gen;         /* drop generation last published */
    int dropped;          /* dropped and not yet acknowledged */
    uint64_t resume_pos;  /* where a dropped consumer continues */
};

struct tachyon_fanout {
    uint64_t id;
    unsigned fork_generation;
    tachyon_fanout_header_t *hdr;
    uint8_t *ring;
    uint64_t capacity, mask;
    size_t map_size;
    uint32_t max_consumers;
    uint32_t policy;
    int memfd;

    /* Producer thread only. */
    uint64_t head;          /* next byte to write; published after each commit */
    uint64_t seq;           /* the next message's sequence number */
    uint64_t limit;         /* writes stay below this without taking the lock */
    uint64_t pending_pos;   /* the acquired slot */
    uint32_t pending_slot;  /* its size; 0: none acquired */
    uint32_t pending_max;
    uint64_t unstamped_skip; /* a skip marker written and not yet stamped (NO_MESSAGE: none) */
    uint64_t salt;           /* slot stamps are position ^ salt */
    _Atomic uint64_t newest; /* start of the newest published message (the door reads it) */
    /* A message start about every capacity / FAN_MARKS bytes, so that
     * advance_oldest reads a short stretch of old headers, not a lap's. */
    uint64_t marks[FAN_MARKS];
    unsigned next_mark;
    uint64_t mark_due;       /* the next message starting at or past this is remembered */
    int fence_free_ok;       /* registered for membarrier: may publish without a fence (pair V) */
    uint32_t fencing;        /* 1: every stamp fenced (what producer_fencing says) */
    uint32_t since_fence_look;

    /* Under the lock: the producer's slow path and the door. */
    pthread_mutex_t lock;
    uint64_t locked_limit;  /* the limit the producer works to */
    uint64_t oldest;        /* first message start at or after locked_limit - capacity */
    struct fan_consumer consumers[TACHYON_FAN_MAX_PEERS];
    _Atomic uint32_t live;

    /* The door. */
    char *path;
    int lfd;
    int stop_fd;
    pthread_t door;
    int door_running;
    tachyon_listen_opts_t opts;
};

struct tachyon_fanout_rx {
    uint64_t id;
    unsigned fork_generation;
    tachyon_fanout_header_t *hdr;
    tachyon_fan_entry_t *entry;
    const uint8_t *ring;
    uint64_t capacity, mask;
    size_t table_size;
    uint32_t index;
    int sock;
    pid_t producer_pid;
    int fatal;

    uint64_t tail;          /* next byte to read */
    uint64_t published_tail; /* the tail last stored in our entry */
    uint64_t salt;           /* the producer's stamp salt (from the header) */
    uint64_t cached_head;
    uint32_t ack;           /* the drop generation we work under */
    uint64_t next_seq;      /* the sequence number we expect; NO_MESSAGE: not known yet */
    int pending;
    uint64_t pending_end, pending_seq;
    uint64_t last_missed, missed_total, received;
    int gone;               /* 0 present, else the error (PEER_CLOSED / PEER_DEAD) */
    int64_t next_gone_check_ns; /* producer_gone_paced: the next look while spinning */
    uint64_t received_at_sleep; /* pair V: how sparse the stream is, judged at each sleep */
    uint32_t sparse_sleeps;
    uint32_t wants_fence;       /* what our entry's wants_fence says */
    int membarrier_failed;      /* we cannot fence the producer: ask it to fence itself */
};

/* ---- Errors and checks shared by both ends ---------------------------------- */

static tachyon_error_t fan_fail(uint64_t id, tachyon_error_t err)
{
    status_set_error(NULL, err); /* no detail */
    status_set_error_id(id, err);
    return err;
}

static tachyon_error_t fan_fail_kept(uint64_t id, tachyon_error_t err)
{
    status_set_error_id(id, err); /* the detail recorded just before stays */
    return err;
}

static int in_forked_child(unsigned generation)
{
    return atomic_load_explicit(&status_fork_count, memory_order_relaxed) != generation;
}

int start_door(pthread_t *thread, void *(*main_fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(thread, NULL, main_fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

uint64_t fan_max_payload(uint64_t capacity)
{
    return capacity / 2 - TACHYON_MSG_HEADER;
}

/* ---- Producer: room ---------------------------------------------------------- */

/* The sequence number of the message at `pos` (a consumer's tail), read from
 * the ring the producer wrote. Clamped: a hostile tail gives a harmless value. */
static uint64_t seq_at(struct tachyon_fanout *p, uint64_t pos)
{
    for (int hop = 0; hop < 2 && pos < p->head && p->head - pos <= p->capacity; hop++) {
        uint64_t off = pos & p->mask;
        tachyon_msg_header_t *h = (tachyon_msg_header_t *)(p->ring + off);
        if (read_slot_word(&h->size) != TACHYON_SKIP_MARKER) {
            uint64_t s = read_slot_word64(&h->correlation_id);
            return s <= p->seq ? s : p->seq;
        }
        pos += p->capacity - off;
    }
    return p->seq;
}

/* Drop consumer i: it continues at our head; everything from its tail on
 * is lost to it. R: the fields, then the generation, then (later) the bytes. */
static void drop_consumer(struct tachyon_fanout *p, uint32_t i, uint64_t tail)
{
    struct fan_consumer *c = &p->consumers[i];
    tachyon_fan_entry_t *e = tachyon_fanout_entry(p->hdr, i);
    if (!c->dropped)
        store_drop_field(&e->tail_seq, seq_at(p, tail));
    store_drop_field(&e->resume_pos, p->head);
    store_drop_field(&e->resume_seq, p->seq);
    c->gen++;
    c->dropped = 1;
    c->resume_pos = p->head;
    publish_drop(&e->drop_gen, c->gen);
}

/* Forget consumer i (it left, died, or broke the protocol). Under the lock. */
static void release_consumer(struct tachyon_fanout *p, uint32_t i)
{
    struct fan_consumer *c = &p->consumers[i];
    if (c->conn < 0)
        return;
    store_table_word(&tachyon_fanout_entry(p->hdr, i)->active, 0);
    close(c->conn);
    c->conn = -1;
    c->dropped = 0;
    atomic_fetch_sub_explicit(&p->live, 1u, memory_order_relaxed);
}

/* Where consumer i holds the ring back from; drops it when the policy says
 * so. Its tail is read seq_cst (K2 / D: pairs with its L1 / C). */
static uint64_t consumer_position(struct tachyon_fanout *p, uint32_t i, uint64_t need_end)
{
    struct fan_consumer *c = &p->consumers[i];
    tachyon_fan_entry_t *e = tachyon_fanout_entry(p->hdr, i);
    if (c->dropped && observe_ack(&e->ack_gen) == c->gen)
        c->dropped = 0; /* it moved to resume_pos (pair T/U) */
    uint64_t pos = c->dropped ? c->resume_pos : recheck_tail(&e->tail);
    int sane = p->head - pos <= p->capacity; /* also catches pos > head */
    if (!sane && !c->dropped && p->policy != TACHYON_FAN_DROP) {
        release_consumer(p, i); /* a cursor no consumer could hold: it goes */
        return p->head;
    }
    if (!sane || (p->policy == TACHYON_FAN_DROP && pos + p->capacity < need_end)) {
        drop_consumer(p, i, pos);
        return p->head;
    }
    return pos;
}

/* Below this a joiner must not start: the producer may overwrite it without
 * taking the lock again. */
static uint64_t join_floor(const struct tachyon_fanout *p)
{
    return p->locked_limit > p->capacity ? p->locked_limit - p->capacity : 0;
}

/* The latest remembered message start in (oldest, floor]. Every position
 * at or past oldest (>= the previous join floor) still holds what the
 * producer wrote there, so walking on from it is walking the same chain. */
static uint64_t nearest_mark_below(const struct tachyon_fanout *p, uint64_t floor)
{
    uint64_t from = p->oldest;
    for (unsigned i = 0; i < FAN_MARKS; i++) {
        uint64_t m = p->marks[i];
        if (m > from && m <= floor && m <= p->head)
            from = m;
    }
    return from;
}

/* The oldest message start still safe to hand a joiner (>= the join floor):
 * from the nearest remembered start, header by header. Walking from oldest
 * itself would read one cold header per message of the lap (for a ring
 * larger than the cache, a miss per message). */
static void advance_oldest(struct tachyon_fanout *p)
{
    uint64_t floor = join_floor(p);
    if (p->oldest > p->head)
        p->oldest = p->head;
    p->oldest = nearest_mark_below(p, floor);
    while (p->oldest < floor && p->oldest < p->head) {
        uint64_t off = p->oldest & p->mask;
        tachyon_msg_header_t *h = (tachyon_msg_header_t *)(p->ring + off);
        uint32_t reserved = read_slot_word(&h->reserved_size);
        if (reserved < TACHYON_MSG_HEADER || reserved > p->capacity - off || (reserved & (TACHYON_MSG_ALIGN - 1))) {
            p->oldest = p->head;
            break;
        }
        p->oldest += reserved;
    }
    if (p->oldest < floor)
        p->oldest = p->head;
}

/*
 * The slow path: how far may the producer write, given every consumer's
 * cursor? Never past a whole ring beyond the slowest counted consumer, nor
 * past our own head + capacity (a joiner at head must be safe), nor more
 * than half a ring beyond what is needed now (the rest keeps history for a
 * joiner that asks for the oldest message). Under the lock.
 */
static void recompute_limit(struct tachyon_fanout *p, uint64_t need_end)
{
    uint64_t min = p->head;
    for (uint32_t i = 0; i < p->max_consumers; i++) {
        if (p->consumers[i].conn < 0)
            continue;
        uint64_t pos = consumer_position(p, i, need_end);
        if (p->head - pos > p->head - min)
            min = pos;
    }
    uint64_t limit = min + p->capacity;
    if (need_end + p->capacity / 2 < limit)
        limit = need_end + p->capacity / 2;
    p->locked_limit = limit;
    advance_oldest(p);
}

static int room_now(struct tachyon_fanout *p, uint64_t need_end)
{
    pthread_mutex_lock(&p->lock);
    recompute_limit(p, need_end);
    p->limit = p->locked_limit;
    pthread_mutex_unlock(&p->lock);
    return need_end <= p->limit;
}

/*
 * Wait until [head, need_end) may be written: spin, then sleep on
 * producer_waiting (K: announce, then look at the tails again; every
 * consumer's commit is the L side). The door wakes us too when a consumer
 * leaves. timeout_ms 0: one look; < 0: no deadline.
 */
static tachyon_error_t make_room(struct tachyon_fanout *p, uint64_t need_end, int timeout_ms)
{
    if (room_now(p, need_end))
        return TACHYON_SUCCESS;
    if (timeout_ms == 0)
        return TACHYON_ERR_FULL;
    int64_t deadline = timeout_ms < 0 ? -1 : wait_now_ms() + timeout_ms;
    for (uint32_t round = 0;; round++) {
        if (deadline >= 0 && wait_now_ms() >= deadline)
            return TACHYON_ERR_TIMEOUT;
        if (round < ROOM_SPIN_ROUNDS) {
            /* Short rounds: readers give room back a sixteenth of the ring
             * at a time, and a producer that looks late loses that time. */
            for (int k = 0; k < ROOM_SPIN_PAUSES; k++)
                tachyon_cpu_relax();
            if (room_now(p, need_end))
                return TACHYON_SUCCESS;
            continue;
        }
        announce_wait_for_room(&p->hdr->producer_waiting); /* K1 */
        if (room_now(p, need_end)) {                       /* K2 inside */
            (void)claim_room_waiter(&p->hdr->producer_waiting);
            return TACHYON_SUCCESS;
        }
        int64_t left = deadline < 0 ? wait_sleep_slice_ms : deadline - wait_now_ms();
        if (left > wait_sleep_slice_ms)
            left = wait_sleep_slice_ms;
        struct timespec ts = {left / 1000, (left % 1000) * 1000000L};
        if (left > 0 && futex_wait(&p->hdr->producer_waiting, 1u, &ts) != 0 && errno == EINTR) {
            (void)claim_room_waiter(&p->hdr->producer_waiting);
            return TACHYON_ERR_INTERRUPTED;
        }
        (void)claim_room_waiter(&p->hdr->producer_waiting);
        if (room_now(p, need_end))
            return TACHYON_SUCCESS;
    }
}

/* ---- Producer: API ----------------------------------------------------------- */

void *tachyon_fanout_acquire_tx(tachyon_fanout_t *p, size_t max_payload, int timeout_ms)
{
    if (!p)
        return NULL;
    if (in_forked_child(p->fork_generation)) {
        fan_fail(p->id, TACHYON_ERR_FORKED);
        return NULL;
    }
    if (p->pending_slot) {
        fan_fail(p->id, TACHYON_ERR_STATE);
        return NULL;
    }
    if (max_payload > fan_max_payload(p->capacity)) {
        status_error_detail(NULL, TACHYON_ERR_INVALID_SZ,
                            "a fan-out message holds at most %llu bytes (half the ring less its header); %zu asked",
                            (unsigned long long)fan_max_payload(p->capacity), max_payload);
        fan_fail_kept(p->id, TACHYON_ERR_INVALID_SZ);
        return NULL;
    }
    uint64_t slot = tachyon_slot_size(max_payload);
    uint64_t off = p->head & p->mask;
    uint64_t skip = p->capacity - off < slot ? p->capacity - off : 0;
    uint64_t need_end = p->head + skip + slot;
    if (need_end > p->limit) {
        tachyon_error_t err = make_room(p, need_end, timeout_ms);
        if (err != TACHYON_SUCCESS) {
            fan_fail(p->id, err);
            return NULL;
        }
    }
    if (skip) {
        tachyon_msg_header_t *h = (tachyon_msg_header_t *)(p->ring + off);
        write_slot_word(&h->reserved_size, (uint32_t)skip);
        write_slot_word(&h->type_id, 0);
        write_slot_word(&h->size, TACHYON_SKIP_MARKER);
        p->unstamped_skip = p->head; /* stamped with the message that follows */
        p->head += skip;
    }
    p->pending_pos = p->head;
    p->pending_slot = (uint32_t)slot;
    p->pending_max = (uint32_t)max_payload;
    return p->ring + (p->head & p->mask) + TACHYON_MSG_HEADER;
}

static _Atomic uint64_t *stamp_of(struct tachyon_fanout *p, uint64_t pos)
{
    return &((tachyon_msg_header_t *)(p->ring + (pos & p->mask)))->stamp;
}

/*
 * Publish the message at `pos`: its stamp, the stamp of a skip marker just
 * before it (stored last, so a reader waiting at the marker finds the
 * message complete once it sees the marker's; H), with the last of them an
 * exchange followed by the look at the sleeper count (Q: pairs with P, which
 * rechecks the stamp at the reader's tail); then head, for joiners and tools.
 * Taking the count back to 0 (claim_fan_sleepers) makes this the only wake
 * for those sleepers: publications before they run make no system call.
 */
static void publish(struct tachyon_fanout *p, uint64_t pos)
{
    _Atomic uint64_t *last = stamp_of(p, pos);
    uint64_t last_value = pos ^ p->salt;
    if (p->unstamped_skip != NO_MESSAGE) {
        publish_slot_stamp(last, last_value); /* H: before the marker's */
        last = stamp_of(p, p->unstamped_skip);
        last_value = p->unstamped_skip ^ p->salt;
        p->unstamped_skip = NO_MESSAGE;
    }
    uint32_t sleepers;
    if (p->fencing) {
        sleepers = publish_slot_stamp_check_sleeper(last, last_value, &p->hdr->sleepers); /* Q */
    } else {
        publish_slot_stamp(last, last_value); /* H, and Q1 without a fence: V */
        sleepers = peek_sleeper_after_membarrier(&p->hdr->sleepers);
    }
    if (sleepers != 0 && claim_fan_sleepers(&p->hdr->sleepers)) {
        bump_wake_seq(&p->hdr->wake_seq);
        futex_wake_all(&p->hdr->wake_seq);
    }
    write_counter_relaxed(&p->hdr->messages, p->seq);
    publish_head(&p->hdr->head, p->head); /* A: pairs with B (joiners, tools) */
}

/* Does a joined reader ask for fenced stamps? Entries are reader-written:
 * any non-zero word is a request, and a request only costs us fences. */
static int reader_wants_fence(struct tachyon_fanout *p)
{
    for (uint32_t i = 0; i < p->max_consumers; i++) {
        tachyon_fan_entry_t *e = tachyon_fanout_entry(p->hdr, i);
        if (load_table_word(&e->active) && peek_fencing_request(&e->wants_fence))
            return 1;
    }
    return 0;
}

/* Publish with or without a fence from now on, switching in the order pair
 * V needs: fences start before producer_fencing says 1, and stop only after
 * it says 0. */
static void update_fencing(struct tachyon_fanout *p)
{
    p->since_fence_look = 0;
    uint32_t want = !p->fence_free_ok || reader_wants_fence(p);
    if (want == p->fencing) {
        /* Readers can write the header: one that stored a 1 there while
         * we publish unfenced would have the others skip their membarrier
         * (and miss wake-ups) until we say 0 again; we say it at each look. */
        if (observe_fencing_ack(&p->hdr->producer_fencing) != want)
            ack_fencing(&p->hdr->producer_fencing, want);
        return;
    }
    if (want) {
        p->fencing = 1;
        ack_fencing(&p->hdr->producer_fencing, 1);
    } else {
        ack_fencing(&p->hdr->producer_fencing, 0);
        p->fencing = 0;
    }
}

tachyon_error_t tachyon_fanout_commit_tx(tachyon_fanout_t *p, size_t actual, uint32_t type_id)
{
    if (!p)
        return TACHYON_ERR_NULL_PTR;
    if (in_forked_child(p->fork_generation))
        return fan_fail(p->id, TACHYON_ERR_FORKED);
    if (!p->pending_slot)
        return fan_fail(p->id, TACHYON_ERR_STATE);
    if (actual > p->pending_max)
        return fan_fail(p->id, TACHYON_ERR_INVALID_SZ);
    tachyon_msg_header_t *h = (tachyon_msg_header_t *)(p->ring + (p->pending_pos & p->mask));
    write_slot_word(&h->size, (uint32_t)actual);
    write_slot_word(&h->type_id, type_id);
    write_slot_word(&h->reserved_size, p->pending_slot);
    write_slot_word64(&h->correlation_id, p->seq);
    p->head = p->pending_pos + p->pending_slot;
    p->seq++;
    if (p->pending_pos >= p->mark_due) {
        p->marks[p->next_mark++ % FAN_MARKS] = p->pending_pos;
        p->mark_due = p->pending_pos + p->capacity / FAN_MARKS;
    }
    p->pending_slot = 0;
    local_counter_store(&p->newest, p->pending_pos);
    if (unlikely(++p->since_fence_look >= fan_fence_look_every))
        update_fencing(p);
    publish(p, p->pending_pos);
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_fanout_rollback_tx(tachyon_fanout_t *p)
{
    if (!p)
        return TACHYON_ERR_NULL_PTR;
    if (!p->pending_slot)
        return fan_fail(p->id, TACHYON_ERR_STATE);
    p->pending_slot = 0;
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_fanout_send(tachyon_fanout_t *p, const void *data, size_t size, uint32_t type_id,
                                    int timeout_ms)
{
    if (!p || (!data && size))
        return TACHYON_ERR_NULL_PTR;
    void *slot = tachyon_fanout_acquire_tx(p, size, timeout_ms);
    if (!slot)
        return status_last_error_id(p->id);
    if (size)
        memcpy(slot, data, size);
    return tachyon_fanout_commit_tx(p, size, type_id);
}

uint32_t fan_producer_fencing(const tachyon_fanout_t *p)
{
    return p->fencing;
}

uint32_t tachyon_fanout_consumers(const tachyon_fanout_t *p)
{
    return p ? atomic_load_explicit(&((tachyon_fanout_t *)p)->live, memory_order_relaxed) : 0;
}

size_t tachyon_fanout_max_payload(const tachyon_fanout_t *p)
{
    return p ? (size_t)fan_max_payload(p->capacity) : 0;
}

tachyon_error_t tachyon_fanout_last_error(const tachyon_fanout_t *p)
{
    return p ? status_last_error_id(p->id) : TACHYON_ERR_NULL_PTR;
}

/* ---- Producer: the door -------------------------------------------------------- */

static void fill_hello(tachyon_fan_hello_t *h, const struct tachyon_fanout *p, uint32_t index, uint32_t flags)
{
    memset(h, 0, sizeof(*h));
    h->magic = TACHYON_FAN_MAGIC;
    h->version = TACHYON_FAN_VERSION;
    h->kind = TACHYON_FAN_KIND_OUT;
    h->index = index;
    h->max_peers = p->max_consumers;
    h->capacity = (uint32_t)p->capacity;
    h->ring_offset = tachyon_fanout_ring_offset(p->max_consumers);
    h->flags = flags;
}

/* Where a joiner starts: the newest message or the oldest one still safe,
 * never below the limit the producer works to less a ring. Under the lock. */
static uint64_t join_position(struct tachyon_fanout *p, uint32_t start)
{
    uint64_t head = observe_head(&p->hdr->head); /* B: the newest below is at least this old */
    uint64_t floor = join_floor(p);
    if (start == TACHYON_FAN_START_OLDEST)
        return p->oldest >= floor && p->oldest <= head ? p->oldest : head;
    uint64_t newest = local_counter_load(&p->newest);
    if (newest != NO_MESSAGE && newest < head && newest >= floor)
        return newest;
    return head;
}

static int free_entry(const struct tachyon_fanout *p)
{
    for (uint32_t i = 0; i < p->max_consumers; i++)
        if (p->consumers[i].conn < 0)
            return (int)i;
    return -1;
}

/* One consumer at the door: hello (no fd: a plain v4 connector stops here
 * with an ABI mismatch), its start request, an entry, the memfd. */
static void admit(struct tachyon_fanout *p, int conn, const struct tachyon_peer *peer)
{
    pthread_mutex_lock(&p->lock);
    int slot = free_entry(p);
    pthread_mutex_unlock(&p->lock);
    tachyon_fan_hello_t hello, req;
    fill_hello(&hello, p, slot < 0 ? TACHYON_FAN_FULL : (uint32_t)slot, p->policy);
    if (sock_send(conn, &hello, sizeof(hello), NULL, 0) != TACHYON_SUCCESS || slot < 0)
        goto refuse;
    int nfds = 0;
    if (sock_recv(conn, wait_now_ms() + FAN_JOIN_TIMEOUT_MS, &req, sizeof(req), NULL, 0, &nfds) != TACHYON_SUCCESS ||
        req.magic != TACHYON_FAN_MAGIC || req.version != TACHYON_FAN_VERSION || req.kind != TACHYON_FAN_KIND_OUT ||
        req.index != (uint32_t)slot || req.flags > TACHYON_FAN_START_OLDEST)
        goto refuse;

    pthread_mutex_lock(&p->lock);
    struct fan_consumer *c = &p->consumers[slot];
    tachyon_fan_entry_t *e = tachyon_fanout_entry(p->hdr, (uint32_t)slot);
    uint64_t pos = join_position(p, req.flags);
    write_counter_relaxed(&e->tail, pos);
    store_table_word(&e->ack_gen, c->gen);
    request_fencing(&e->wants_fence, 0); /* not what the entry's previous reader asked */
    store_table_word(&e->drop_gen, c->gen);
    atomic_store_explicit(&e->pid, (int32_t)peer->pid, memory_order_relaxed);
    store_table_word(&e->active, 1);
    c->conn = conn;
    c->pid = peer->pid;
    c->dropped = 0;
    atomic_fetch_add_explicit(&p->live, 1u, memory_order_relaxed);
    pthread_mutex_unlock(&p->lock);

    if (sock_send(conn, &hello, sizeof(hello), &p->memfd, 1) != TACHYON_SUCCESS) {
        pthread_mutex_lock(&p->lock);
        release_consumer(p, (uint32_t)slot);
        pthread_mutex_unlock(&p->lock);
    }
    if (peer->pidfd >= 0)
        close(peer->pidfd);
    return;
refuse:
    close(conn);
    if (peer->pidfd >= 0)
        close(peer->pidfd);
}

/* A consumer's connection said something: it closed (left or died), or it
 * sent bytes the protocol does not have. Either way it goes, and a producer
 * waiting for room looks again. */
static void consumer_hung_up(struct tachyon_fanout *p, uint32_t i)
{
    pthread_mutex_lock(&p->lock);
    release_consumer(p, i);
    pthread_mutex_unlock(&p->lock);
    if (claim_room_waiter(&p->hdr->producer_waiting))
        futex_wake_all(&p->hdr->producer_waiting);
}

static void *door_main(void *arg)
{
    struct tachyon_fanout *p = arg;
    for (;;) {
        struct pollfd fds[2 + TACHYON_FAN_MAX_PEERS];
        uint32_t who[TACHYON_FAN_MAX_PEERS];
        nfds_t n = 0;
        fds[n++] = (struct pollfd){.fd = p->stop_fd, .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        pthread_mutex_lock(&p->lock);
        for (uint32_t i = 0; i < p->max_consumers; i++) {
            if (p->consumers[i].conn >= 0) {
                who[n - 2] = i;
                fds[n++] = (struct pollfd){.fd = p->consumers[i].conn, .events = POLLIN | POLLRDHUP};
            }
        }
        pthread_mutex_unlock(&p->lock);
        if (poll(fds, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (fds[0].revents)
            return NULL;
        for (nfds_t k = 2; k < n; k++)
            if (fds[k].revents)
                consumer_hung_up(p, who[k - 2]);
        if (fds[1].revents & POLLIN) {
            int conn = -1;
            struct tachyon_peer peer = {0, -1};
            if (sock_accept_allowed(p->lfd, &p->opts, &conn, &peer) == TACHYON_SUCCESS)
                admit(p, conn, &peer);
        }
    }
}

/* ---- Producer: lifecycle ----------------------------------------------------- */

static void fanout_free(struct tachyon_fanout *p)
{
    if (p->hdr)
        munmap(p->hdr, p->map_size);
    if (p->memfd >= 0)
        close(p->memfd);
    if (p->stop_fd >= 0)
        close(p->stop_fd);
    pthread_mutex_destroy(&p->lock);
    free(p->path);
    free(p);
}

static tachyon_error_t fanout_segment(struct tachyon_fanout *p, const char *path)
{
    uint32_t ring_offset = tachyon_fanout_ring_offset(p->max_consumers);
    p->map_size = (size_t)ring_offset + p->capacity;
    /* shm_create_segment sizes the file as a bus header plus `capacity`. */
    tachyon_error_t err = shm_create_segment(p->map_size - TACHYON_HEADER_BYTES, path, &p->memfd);
    if (err != TACHYON_SUCCESS)
        return err;
    void *base;
    err = shm_map(p->memfd, p->map_size, 1, &base);
    if (err != TACHYON_SUCCESS)
        return err;
    p->hdr = base;
    p->ring = (uint8_t *)base + ring_offset;
    tachyon_fanout_header_t *h = p->hdr;
    h->magic = TACHYON_FAN_MAGIC;
    h->version = TACHYON_FAN_VERSION;
    h->capacity = (uint32_t)p->capacity;
    h->max_consumers = p->max_consumers;
    h->ring_offset = ring_offset;
    h->policy = p->policy;
    atomic_store_explicit(&h->producer_pid, (int32_t)getpid(), memory_order_relaxed);
    p->salt = shm_new_stamp_salt();
    write_counter_relaxed(&h->stamp_salt, p->salt);
    ack_fencing(&h->producer_fencing, 1); /* every stamp fenced until the first look (V) */
    store_state(&h->state, TACHYON_STATE_READY); /* last: the format is complete */
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_fanout_listen_ex(const char *socket_path, size_t capacity, uint32_t max_consumers,
                                         tachyon_fan_policy_t policy, const tachyon_listen_opts_t *opts,
                                         tachyon_fanout_t **out)
{
    if (!socket_path || !out)
        return TACHYON_ERR_NULL_PTR;
    *out = NULL;
    if (!tachyon_capacity_valid(capacity) || capacity < 256)
        return status_error_detail(NULL, TACHYON_ERR_INVALID_SZ,
                                   "capacity %zu: a fan-out ring is a power of two from 256 bytes to 1 GiB", capacity);
    if (max_consumers == 0 || max_consumers > TACHYON_FAN_MAX_PEERS)
        return status_error_detail(NULL, TACHYON_ERR_INVALID_SZ, "max_consumers %u: from 1 to %u", max_consumers,
                                   TACHYON_FAN_MAX_PEERS);
    if (policy != TACHYON_FAN_BLOCK && policy != TACHYON_FAN_DROP_SLOW)
        return status_error_detail(NULL, TACHYON_ERR_INVALID_SZ, "unknown slow-consumer policy %d", (int)policy);
    struct tachyon_fanout *p = calloc(1, sizeof(*p));
    if (!p)
        return TACHYON_ERR_MEM;
    pthread_mutex_init(&p->lock, NULL);
    p->id = status_new_bus_id();
    p->fork_generation = status_fork_generation();
    p->capacity = capacity;
    p->mask = capacity - 1;
    p->max_consumers = max_consumers;
    p->policy = policy == TACHYON_FAN_DROP_SLOW ? TACHYON_FAN_DROP : 0;
    p->memfd = p->lfd = -1;
    p->newest = NO_MESSAGE;
    p->unstamped_skip = NO_MESSAGE;
    p->limit = p->locked_limit = capacity / 2;
    p->fence_free_ok = wait_membarrier_ready();
    p->fencing = 1;                          /* as the segment says until the first look, */
    p->since_fence_look = UINT32_MAX - 1;    /* which the first publication makes */
    for (uint32_t i = 0; i < TACHYON_FAN_MAX_PEERS; i++)
        p->consumers[i].conn = -1;
    if (opts)
        p->opts = *opts;
    else
        tachyon_listen_opts_init(&p->opts, capacity);
    p->opts.keep_waiting = 0;
    p->opts.timeout_ms = 0;
    p->path = strdup(socket_path);
    p->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    tachyon_error_t err = !p->path || p->stop_fd < 0 ? TACHYON_ERR_MEM : fanout_segment(p, socket_path);
    if (err == TACHYON_SUCCESS)
        err = sock_listen(socket_path, &p->opts, &p->lfd);
    if (err == TACHYON_SUCCESS && start_door(&p->door, door_main, p) != 0) {
        sock_close_listener(p->lfd, socket_path);
        err = TACHYON_ERR_SYSTEM;
    }
    if (err != TACHYON_SUCCESS) {
        fanout_free(p);
        return err;
    }
    p->door_running = 1;
    *out = p;
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_fanout_listen(const char *socket_path, size_t capacity, uint32_t max_consumers,
                                      tachyon_fan_policy_t policy, tachyon_fanout_t **out)
{
    return tachyon_fanout_listen_ex(socket_path, capacity, max_consumers, policy, NULL, out);
}

void tachyon_fanout_destroy(tachyon_fanout_t *p)
{
    if (!p)
        return;
    if (in_forked_child(p->fork_generation)) {
        free(p->path); /* the parent's thread, mapping and socket are not ours */
        free(p);
        return;
    }
    /* G: everything published happens before a consumer sees DISCONNECTED;
     * it then reads what is left and ends with PEER_CLOSED. */
    mark_disconnected(&p->hdr->state, TACHYON_STATE_READY, TACHYON_STATE_DISCONNECTED);
    (void)claim_fan_sleepers(&p->hdr->sleepers);
    bump_wake_seq(&p->hdr->wake_seq);
    futex_wake_all(&p->hdr->wake_seq);
    if (p->door_running) {
        eventfd_signal(p->stop_fd);
        pthread_join(p->door, NULL);
        sock_close_listener(p->lfd, p->path);
    }
    for (uint32_t i = 0; i < p->max_consumers; i++)
        release_consumer(p, i);
    fanout_free(p);
}

/* ---- Consumer ---------------------------------------------------------------- */

static tachyon_error_t check_hello(const tachyon_fan_hello_t *h, uint32_t kind)
{
    if (h->magic != TACHYON_FAN_MAGIC || h->version != TACHYON_FAN_VERSION)
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                   "the listener is not a Tachyon fan channel of version %u (magic 0x%08x, "
                                   "version %u): a plain bus listens there, or another program",
                                   TACHYON_FAN_VERSION, h->magic, h->version);
    if (h->kind != kind)
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH, "the listener is a fan-%s channel, not a fan-%s one",
                                   h->kind == TACHYON_FAN_KIND_IN ? "in" : "out",
                                   kind == TACHYON_FAN_KIND_IN ? "in" : "out");
    if (h->max_peers == 0 || h->max_peers > TACHYON_FAN_MAX_PEERS)
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH, "the listener announces %u peers (at most %u)",
                                   h->max_peers, TACHYON_FAN_MAX_PEERS);
    if (h->index == TACHYON_FAN_FULL)
        return status_error_detail(NULL, TACHYON_ERR_FULL,
                                   "the channel has its %u peers already; one must leave before another joins",
                                   h->max_peers);
    if (h->index >= h->max_peers || !tachyon_capacity_valid(h->capacity))
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH, "the listener's hello is malformed (index %u of %u, "
                                   "capacity %u)", h->index, h->max_peers, h->capacity);
    if (kind == TACHYON_FAN_KIND_OUT &&
        (h->ring_offset != tachyon_fanout_ring_offset(h->max_peers) || h->flags > TACHYON_FAN_DROP ||
         h->capacity < 256))
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                   "the fan-out hello is malformed (ring at %u, flags 0x%x)", h->ring_offset, h->flags);
    return TACHYON_SUCCESS;
}

tachyon_error_t fan_check_hello(const tachyon_fan_hello_t *h, uint32_t kind)
{
    return check_hello(h, kind);
}

/* Map the table read-write and the ring read-only: a consumer cannot touch
 * what the others read. The header must say what the hello said. */
static tachyon_error_t map_fanout(struct tachyon_fanout_rx *c, int fd, const tachyon_fan_hello_t *h)
{
    tachyon_error_t err = shm_check_received_fd(fd, (uint64_t)h->ring_offset + h->capacity);
    if (err != TACHYON_SUCCESS)
        return status_error_detail(NULL, err, "the fan-out segment is too small or not sealed");
    void *table = mmap(NULL, h->ring_offset, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (table == MAP_FAILED)
        return TACHYON_ERR_MAP;
    void *ring = mmap(NULL, h->capacity, PROT_READ, MAP_SHARED, fd, h->ring_offset);
    if (ring == MAP_FAILED) {
        munmap(table, h->ring_offset);
        return TACHYON_ERR_MAP;
    }
#ifdef MADV_DONTFORK
    (void)madvise(table, h->ring_offset, MADV_DONTFORK);
    (void)madvise(ring, h->capacity, MADV_DONTFORK);
#endif
    c->hdr = table;
    c->ring = ring;
    c->table_size = h->ring_offset;
    c->capacity = h->capacity;
    c->mask = h->capacity - 1u;
    c->index = h->index;
    c->entry = tachyon_fanout_entry(c->hdr, h->index);
    tachyon_fanout_header_t *hdr = c->hdr;
    uint32_t state = observe_state(&hdr->state);
    if (hdr->magic != TACHYON_FAN_MAGIC || hdr->version != TACHYON_FAN_VERSION || hdr->capacity != h->capacity ||
        hdr->max_consumers != h->max_peers || hdr->ring_offset != h->ring_offset || hdr->policy != h->flags ||
        (state != TACHYON_STATE_READY && state != TACHYON_STATE_DISCONNECTED))
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                   "the fan-out segment's header does not match the hello");
    c->tail = read_counter_relaxed(&c->entry->tail);
    if (c->tail & (TACHYON_MSG_ALIGN - 1))
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                   "the fan-out segment starts us at byte %llu, not on a slot boundary",
                                   (unsigned long long)c->tail);
    c->published_tail = c->tail;
    c->salt = read_counter_relaxed(&hdr->stamp_salt);
    if (c->salt == 0)
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH, "the fan-out segment has no stamp salt");
    c->cached_head = observe_head(&hdr->head);
    c->ack = load_table_word(&c->entry->ack_gen);
    if (c->cached_head - c->tail > c->capacity)
        return status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                   "the fan-out segment places us %llu bytes behind a %llu-byte ring",
                                   (unsigned long long)(c->cached_head - c->tail), (unsigned long long)c->capacity);
    return TACHYON_SUCCESS;
}

static void fanout_rx_free(struct tachyon_fanout_rx *c)
{
    if (c->hdr)
        munmap(c->hdr, c->table_size);
    if (c->ring)
        munmap((void *)c->ring, c->capacity);
    if (c->sock >= 0)
        close(c->sock);
    free(c);
}

tachyon_error_t tachyon_fanout_connect(const char *socket_path, tachyon_fan_start_t start, int timeout_ms,
                                       tachyon_fanout_rx_t **out)
{
    if (!socket_path || !out)
        return TACHYON_ERR_NULL_PTR;
    *out = NULL;
    if (start != TACHYON_FAN_START_NEWEST && start != TACHYON_FAN_START_OLDEST)
        return TACHYON_ERR_INVALID_SZ;
    struct tachyon_fanout_rx *c = calloc(1, sizeof(*c));
    if (!c)
        return TACHYON_ERR_MEM;
    c->sock = -1;
    c->id = status_new_bus_id();
    c->fork_generation = status_fork_generation();
    c->next_seq = NO_MESSAGE;
    int64_t deadline = timeout_ms > 0 ? wait_now_ms() + timeout_ms : wait_now_ms() + FAN_JOIN_TIMEOUT_MS;
    tachyon_handshake_t raw;
    tachyon_fan_hello_t hello, again;
    int fds[1], nfds = 0, sock = -1;
    struct tachyon_peer peer = {0, -1};
    tachyon_error_t err = handshake_connect(socket_path, timeout_ms, NULL, 0, &raw, fds, 1, &nfds, &peer, &sock);
    if (err != TACHYON_SUCCESS)
        goto fail;
    c->sock = sock;
    c->producer_pid = peer.pid;
    if (peer.pidfd >= 0)
        close(peer.pidfd); /* the connection tells us of its end */
    memcpy(&hello, &raw, sizeof(hello));
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    err = nfds ? status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH, "the fan-out hello came with descriptors")
               : check_hello(&hello, TACHYON_FAN_KIND_OUT);
    if (err != TACHYON_SUCCESS)
        goto fail;
    tachyon_fan_hello_t req = hello;
    req.flags = (uint32_t)start;
    err = sock_send(sock, &req, sizeof(req), NULL, 0);
    if (err == TACHYON_SUCCESS)
        err = sock_recv(sock, deadline, &again, sizeof(again), fds, 1, &nfds);
    if (err != TACHYON_SUCCESS) {
        status_error_detail(NULL, err, "the fan-out producer at %s did not hand over its ring", socket_path);
        goto fail;
    }
    if (nfds != 1 || memcmp(&again, &hello, sizeof(hello)) != 0) {
        if (nfds == 1)
            close(fds[0]);
        err = status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH, "the fan-out producer's second hello differs from "
                                  "its first, or came without the ring");
        goto fail;
    }
    err = map_fanout(c, fds[0], &hello);
    close(fds[0]);
    if (err != TACHYON_SUCCESS)
        goto fail;
    *out = c;
    return TACHYON_SUCCESS;
fail:
    fanout_rx_free(c);
    return err;
}

void tachyon_fanout_rx_destroy(tachyon_fanout_rx_t *c)
{
    if (!c)
        return;
    if (in_forked_child(c->fork_generation)) {
        free(c);
        return;
    }
    fanout_rx_free(c); /* closing the connection is how the producer learns we left */
}

/* Has the producer gone? Its connection closes when its process ends or it
 * destroys the channel; the state word tells which. */
static int producer_gone(struct tachyon_fanout_rx *c)
{
    if (c->gone)
        return 1;
    struct pollfd pfd = {.fd = c->sock, .events = POLLIN | POLLRDHUP};
    if (poll(&pfd, 1, 0) <= 0 || pfd.revents == 0)
        return 0;
    c->gone = observe_state(&c->hdr->state) == TACHYON_STATE_DISCONNECTED ? TACHYON_ERR_PEER_CLOSED
                                                                         : TACHYON_ERR_PEER_DEAD;
    return 1;
}

/* producer_gone costs a system call: a reader that keeps catching up with
 * the producer would make one per message. While it spins (or polls with
 * timeout 0) it looks at most every GONE_CHECK_NS; before it sleeps, always,
 * so that a departure is never slept through. */
static int producer_gone_paced(struct tachyon_fanout_rx *c, int about_to_sleep)
{
    if (c->gone)
        return 1;
    if (!about_to_sleep) {
        int64_t now = wait_now_coarse_ns();
        if (now < c->next_gone_check_ns)
            return 0;
        c->next_gone_check_ns = now + GONE_CHECK_NS;
    }
    return producer_gone(c);
}

/* We were dropped: move to where the producer said, count what was lost. */
static tachyon_error_t take_overrun(struct tachyon_fanout_rx *c, uint32_t gen)
{
    tachyon_fan_entry_t *e = c->entry;
    uint64_t resume = load_drop_field(&e->resume_pos);
    uint64_t resume_seq = load_drop_field(&e->resume_seq);
    uint64_t tail_seq = load_drop_field(&e->tail_seq);
    if (!consumer_still_owns(&e->drop_gen, gen))
        return TACHYON_ERR_EMPTY; /* dropped again meanwhile: look again */
    if (resume & (TACHYON_MSG_ALIGN - 1)) { /* an honest producer resumes us at a slot */
        c->fatal = 1;
        status_error_detail(NULL, TACHYON_ERR_FATAL,
                            "the fan-out producer resumed us at byte %llu, not on a slot boundary",
                            (unsigned long long)resume);
        return fan_fail_kept(c->id, TACHYON_ERR_FATAL);
    }
    uint64_t from = c->next_seq != NO_MESSAGE ? c->next_seq : tail_seq;
    uint64_t missed = resume_seq >= from ? resume_seq - from : 0;
    c->tail = resume;
    c->cached_head = resume;
    c->next_seq = resume_seq;
    c->last_missed = missed;
    c->missed_total += missed;
    publish_tail(&e->tail, resume); /* C, and T below makes it count */
    c->published_tail = resume;
    ack_drop(&e->ack_gen, gen);
    c->ack = gen;
    status_error_detail(NULL, TACHYON_ERR_OVERRUN,
                        "this consumer fell a whole ring behind and was dropped: %llu messages missed; it "
                        "continues from the newest",
                        (unsigned long long)missed);
    return fan_fail_kept(c->id, TACHYON_ERR_OVERRUN);
}

static tachyon_error_t rx_corrupt(struct tachyon_fanout_rx *c)
{
    if (!consumer_still_owns(&c->entry->drop_gen, c->ack))
        return TACHYON_ERR_EMPTY; /* overwritten after a drop: the next look reports it */
    c->fatal = 1;
    status_error_detail(NULL, TACHYON_ERR_FATAL, "the fan-out ring holds a corrupt message header");
    return fan_fail_kept(c->id, TACHYON_ERR_FATAL);
}

/* One look: SUCCESS (msg filled), EMPTY, OVERRUN, FATAL. */
static tachyon_error_t try_rx(struct tachyon_fanout_rx *c, tachyon_fan_msg_t *msg)
{
    for (int rounds = 0; rounds < 4; rounds++) {
        uint32_t gen = observe_drop_gen(&c->entry->drop_gen);
        if (gen != c->ack) {
            tachyon_error_t err = take_overrun(c, gen);
            if (err == TACHYON_ERR_EMPTY)
                continue;
            return err;
        }
        uint64_t off = c->tail & c->mask;
        const tachyon_msg_header_t *h = (const tachyon_msg_header_t *)(c->ring + off);
        /* H: the stamp says the slot at our tail is complete (pairs with the
         * producer's stamp store); a stale one (a lap ago) differs. */
        if (observe_slot_stamp((_Atomic uint64_t *)&h->stamp) != (c->tail ^ c->salt))
            return TACHYON_ERR_EMPTY;
        uint64_t avail = c->capacity - off; /* a slot never wraps */
        uint32_t size = read_slot_word((_Atomic uint32_t *)&h->size);
        uint32_t reserved = read_slot_word((_Atomic uint32_t *)&h->reserved_size);
        if (size == TACHYON_SKIP_MARKER) {
            if (reserved != c->capacity - off || reserved > avail) {
                tachyon_error_t err = rx_corrupt(c);
                if (err == TACHYON_ERR_EMPTY)
                    continue;
                return err;
            }
            c->tail += reserved;
            rounds = 0;
            continue;
        }
        if (!(reserved >= TACHYON_MSG_HEADER && (reserved & (TACHYON_MSG_ALIGN - 1)) == 0 &&
              reserved <= c->capacity - off && reserved <= avail && size <= reserved - TACHYON_MSG_HEADER)) {
            tachyon_error_t err = rx_corrupt(c);
            if (err == TACHYON_ERR_EMPTY)
                continue;
            return err;
        }
        msg->ptr = (const uint8_t *)h + TACHYON_MSG_HEADER;
        msg->size = size;
        msg->type_id = read_slot_word((_Atomic uint32_t *)&h->type_id);
        msg->producer = 0;
        msg->pid = (int32_t)c->producer_pid;
        msg->reserved_ = 0;
        msg->seq = read_slot_word64((_Atomic uint64_t *)&h->correlation_id);
        c->pending = 1;
        c->pending_end = c->tail + reserved;
        c->pending_seq = msg->seq;
        return TACHYON_SUCCESS;
    }
    return TACHYON_ERR_EMPTY;
}

/* Ask the producer for fenced stamps, or stop asking (pair V). */
static void ask_for_fences(struct tachyon_fanout_rx *c, uint32_t want)
{
    if (want == c->wants_fence)
        return;
    c->wants_fence = want;
    request_fencing(&c->entry->wants_fence, want);
}

/* Pair V, between P1 and P2: a producer that publishes without a fence gets
 * one from us. 0 when it needed one and we could not give it: the producer
 * is asked to fence, and until it does the caller sleeps in short slices. */
static int fence_unfenced_producer(struct tachyon_fanout_rx *c)
{
    if (observe_fencing_ack(&c->hdr->producer_fencing))
        return 1; /* it fences every stamp */
    /* Only the producer registers: the command needs no registration of
     * its caller, and a registered reader would only be interrupted by the
     * other readers' membarriers for nothing. */
    if (!c->membarrier_failed && membarrier_global_expedited() == 0)
        return 1;
    c->membarrier_failed = 1;
    ask_for_fences(c, 1);
    return 0;
}

#define UNFENCED_SLICE_MS 1 /* a sleep that a missed wake-up may cost, while unfenced */

/* Sleep until the producer publishes (P: count ourselves in, look at head
 * once more, then wait on wake_seq while it holds the value read first). A
 * reader that sleeps after nearly every message asks for fenced stamps
 * rather than making a membarrier per sleep (V). */
static tachyon_error_t sleep_for_data(struct tachyon_fanout_rx *c, int slice_ms)
{
    tachyon_fanout_header_t *hdr = c->hdr;
    uint32_t want = wait_sleep_wants_fence(c->received, &c->received_at_sleep, &c->sparse_sleeps, c->wants_fence);
    ask_for_fences(c, (want && fan_readers_ask_fences) || c->membarrier_failed);
    uint32_t seen = observe_wake_seq(&hdr->wake_seq);
    announce_fan_sleep(&hdr->sleepers); /* P1: pairs with Q2 */
    if (!fence_unfenced_producer(c) && slice_ms > UNFENCED_SLICE_MS)
        slice_ms = UNFENCED_SLICE_MS;
    tachyon_error_t err = TACHYON_SUCCESS;
    _Atomic uint64_t *stamp = &((tachyon_msg_header_t *)(c->ring + (c->tail & c->mask)))->stamp;
    if (recheck_slot_stamp(stamp) != (c->tail ^ c->salt) && /* P2: pairs with Q1 */
        observe_drop_gen(&c->entry->drop_gen) == c->ack && observe_state(&hdr->state) == TACHYON_STATE_READY) {
        struct timespec ts = {slice_ms / 1000, (slice_ms % 1000) * 1000000L};
        if (futex_wait(&hdr->wake_seq, seen, &ts) != 0 && errno == EINTR)
            err = TACHYON_ERR_INTERRUPTED;
    }
    /* The count is not taken back: the producer zeroes it when it wakes us,
     * and a count left by a consumer that did not sleep costs one spurious
     * wake at the next publication. */
    return err;
}

/*
 * Give the producer the room we have read past: store the tail (C, and L1)
 * and look whether the producer waits for room (L2: pairs with its K). Done
 * once per sixteenth of the ring, and whenever we find nothing to read: a
 * consumer about to wait must not hold back room the producer may be
 * waiting for.
 */
static void publish_consumed(struct tachyon_fanout_rx *c)
{
    if (c->tail == c->published_tail)
        return;
    c->published_tail = c->tail;
    if (publish_tail_check_waiter(&c->entry->tail, c->tail, &c->hdr->producer_waiting) &&
        claim_room_waiter(&c->hdr->producer_waiting))
        futex_wake_all(&c->hdr->producer_waiting);
}

tachyon_error_t tachyon_fanout_acquire_rx(tachyon_fanout_rx_t *c, tachyon_fan_msg_t *msg, uint32_t spin,
                                          int timeout_ms)
{
    if (!c || !msg)
        return TACHYON_ERR_NULL_PTR;
    if (in_forked_child(c->fork_generation))
        return fan_fail(c->id, TACHYON_ERR_FORKED);
    if (c->fatal)
        return fan_fail(c->id, TACHYON_ERR_FATAL);
    if (c->pending)
        return fan_fail(c->id, TACHYON_ERR_STATE);
    int64_t deadline = INT64_MIN;
    uint32_t spins = 0;
    for (;;) {
        tachyon_error_t err = try_rx(c, msg);
        if (err == TACHYON_SUCCESS) {
            c->received++;
            return err;
        }
        if (err != TACHYON_ERR_EMPTY)
            return err;
        publish_consumed(c);
        if (observe_state(&c->hdr->state) == TACHYON_STATE_FATAL_ERROR)
            return fan_fail(c->id, TACHYON_ERR_FATAL);
        if (producer_gone_paced(c, timeout_ms != 0 && spins >= spin)) {
            /* Gone: what it published before is read first. */
            if (try_rx(c, msg) == TACHYON_SUCCESS)
                return TACHYON_SUCCESS;
            status_error_detail(NULL, (tachyon_error_t)c->gone,
                                c->gone == TACHYON_ERR_PEER_CLOSED
                                    ? "the fan-out producer (pid %d) closed the channel; every message was read"
                                    : "the fan-out producer (pid %d) ended without closing; every message it "
                                      "published was read",
                                (int)c->producer_pid);
            return fan_fail_kept(c->id, (tachyon_error_t)c->gone);
        }
        if (timeout_ms == 0)
            return fan_fail(c->id, TACHYON_ERR_EMPTY);
        if (deadline == INT64_MIN)
            deadline = timeout_ms < 0 ? -1 : wait_now_ms() + timeout_ms;
        int64_t left = deadline < 0 ? wait_sleep_slice_ms : deadline - wait_now_ms();
        if (left <= 0)
            return fan_fail(c->id, TACHYON_ERR_TIMEOUT);
        if (spins < spin) {
            uint32_t burst = spin - spins < FAN_SPIN_CHECK ? spin - spins : FAN_SPIN_CHECK;
            spins += burst;
            _Atomic uint64_t *stamp = &((tachyon_msg_header_t *)(c->ring + (c->tail & c->mask)))->stamp;
            for (uint32_t k = 0; k < burst; k++) {
                if (observe_slot_stamp(stamp) == (c->tail ^ c->salt))
                    break;
                tachyon_cpu_relax();
            }
            continue;
        }
        if (sleep_for_data(c, (int)(left < wait_sleep_slice_ms ? left : wait_sleep_slice_ms)) ==
            TACHYON_ERR_INTERRUPTED)
            return fan_fail(c->id, TACHYON_ERR_INTERRUPTED);
    }
}

tachyon_error_t tachyon_fanout_commit_rx(tachyon_fanout_rx_t *c)
{
    if (!c)
        return TACHYON_ERR_NULL_PTR;
    if (in_forked_child(c->fork_generation))
        return fan_fail(c->id, TACHYON_ERR_FORKED);
    if (!c->pending)
        return fan_fail(c->id, TACHYON_ERR_STATE);
    c->pending = 0;
    if (!consumer_still_owns(&c->entry->drop_gen, c->ack)) { /* S: pairs with R */
        status_error_detail(NULL, TACHYON_ERR_OVERRUN,
                            "this consumer was dropped while it read the message: it may have been overwritten");
        return fan_fail_kept(c->id, TACHYON_ERR_OVERRUN);
    }
    c->tail = c->pending_end;
    c->next_seq = c->pending_seq + 1;
    if (c->tail - c->published_tail >= c->capacity / 16)
        publish_consumed(c);
    return TACHYON_SUCCESS;
}

uint64_t tachyon_fanout_missed(const tachyon_fanout_rx_t *c)
{
    return c ? c->last_missed : 0;
}

uint64_t tachyon_fanout_missed_total(const tachyon_fanout_rx_t *c)
{
    return c ? c->missed_total : 0;
}

uint32_t tachyon_fanout_index(const tachyon_fanout_rx_t *c)
{
    return c ? c->index : 0;
}

tachyon_error_t tachyon_fanout_rx_last_error(const tachyon_fanout_rx_t *c)
{
    return c ? status_last_error_id(c->id) : TACHYON_ERR_NULL_PTR;
}
