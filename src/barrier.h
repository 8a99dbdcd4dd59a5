/*
 * barrier.h - every memory-ordering operation of the library, in one place.
 *
 * Call sites never use <stdatomic.h> orderings directly; they call one of the
 * helpers below, named for the protocol step it carries. The pairs are
 * lettered as in docs/design.md:
 *
 *   A  producer: publish_head (release)      pairs with  B  consumer: observe_head (acquire)
 *      "the slot's header and payload are written before head says so"
 *   C  consumer: publish_tail (release)      pairs with  D  producer: observe_tail (acquire)
 *      "the consumer is done reading a slot before the producer may reuse it"
 *   E  consumer: announce_sleep, then recheck_head / recheck_slot_stamp (seq_cst)
 *      pairs with F  producer: publish_head_check_sleeper or
 *                              publish_slot_stamp_check_sleeper (seq_cst)
 *      Dekker pair: the consumer stores sleeping=1 then loads head and the
 *      stamp of the slot at its tail; the producer stores head (or the stamp
 *      of the slot it just wrote) then loads sleeping. All four are seq_cst,
 *      so they sit in one total order and the two sides cannot both miss the
 *      other's store. The waker then takes the word from 1 to 0
 *      (claim_sleeper) before FUTEX_WAKE, so a wake that lands before the
 *      consumer's FUTEX_WAIT makes that wait return at once.
 *      Between two processes of this project registered for membarrier the
 *      producer's side needs no fence: it stores the stamp (release) and
 *      loads sleeping (peek_sleeper_after_membarrier); the consumer, between
 *      its store of 1 and its loads, calls membarrier(GLOBAL_EXPEDITED),
 *      which runs a full barrier in every thread of the producer at some
 *      point B. If the producer's load came before B, its stamp store (before
 *      the load) was visible at B, before the consumer's loads; if after B,
 *      the consumer's store of 1 (before the call) is what it loads.
 *   G  destroy/death: mark_disconnected (seq_cst) pairs with observe_state (acquire)
 *      "everything committed before leaving is visible once the peer sees state 3"
 *   I  a side storing its statistics block  pairs with  J  a tool reading it (a seqlock)
 *   H  producer: publish_slot_stamp (release)  pairs with  consumer: observe_slot_stamp (acquire)
 *      "a slot's header and payload are written before its stamp says so"
 *      (between two processes of this project, the stamp in a slot's header
 *      tells the consumer the slot is complete without a look at head)
 *
 * A futex wake orders nothing by itself; the pairs above do.
 */
#ifndef TACHYON_BARRIER_H
#define TACHYON_BARRIER_H

#include <stdatomic.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#define tachyon_cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define tachyon_cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define tachyon_cpu_relax() ((void)0)
#endif

/* A: the producer makes every byte of the slots up to `head` visible. */
static inline void publish_head(_Atomic uint64_t *head, uint64_t value)
{
    atomic_store_explicit(head, value, memory_order_release); /* pairs with B */
}

/*
 * F: publish head, then read the sleeper word, with a full barrier between
 * (the exchange is seq_cst; on x86 it is one locked instruction, cheaper than
 * a store plus mfence). Pairs with E.
 */
static inline uint32_t publish_head_check_sleeper(_Atomic uint64_t *head, uint64_t value,
                                                  _Atomic uint32_t *sleeping)
{
    atomic_exchange_explicit(head, value, memory_order_seq_cst);    /* F1: pairs with E2 */
    return atomic_load_explicit(sleeping, memory_order_seq_cst);    /* F2: pairs with E1 */
}

/* B: the consumer may read slots up to the returned head. Pairs with A/F1. */
static inline uint64_t observe_head(_Atomic uint64_t *head)
{
    return atomic_load_explicit(head, memory_order_acquire);
}

/* C: the consumer gives slots up to `tail` back. Pairs with D. */
static inline void publish_tail(_Atomic uint64_t *tail, uint64_t value)
{
    atomic_store_explicit(tail, value, memory_order_release);
}

/* D: the producer may overwrite bytes below the returned tail. Pairs with C. */
static inline uint64_t observe_tail(_Atomic uint64_t *tail)
{
    return atomic_load_explicit(tail, memory_order_acquire);
}

/* H: the slot at this stamp's position is complete. Pairs with observe_slot_stamp. */
static inline void publish_slot_stamp(_Atomic uint64_t *stamp, uint64_t value)
{
    atomic_store_explicit(stamp, value, memory_order_release);
}

/* F with stamps: store the stamp, then read the sleeper word, with a full
 * barrier between (one locked instruction on x86). Pairs with E. The stamp
 * store is also H's release: it orders the slot before the stamp. */
static inline uint32_t publish_slot_stamp_check_sleeper(_Atomic uint64_t *stamp, uint64_t value,
                                                        _Atomic uint32_t *sleeping)
{
    atomic_exchange_explicit(stamp, value, memory_order_seq_cst);   /* F1: pairs with E2 */
    return atomic_load_explicit(sleeping, memory_order_seq_cst);    /* F2: pairs with E1 */
}

/* H: may the consumer read the slot? It may when this equals the stamp its
 * position calls for. Pairs with publish_slot_stamp (and F1). */
static inline uint64_t observe_slot_stamp(_Atomic uint64_t *stamp)
{
    return atomic_load_explicit(stamp, memory_order_acquire);
}

/*
 * E: the consumer announces it is about to sleep (E1), then re-reads head
 * and the stamp of the slot at its tail (E2). If the producer's F1 came
 * first, E2 sees it; otherwise F2 sees the 1.
 */
static inline void announce_sleep(_Atomic uint32_t *sleeping)
{
    atomic_store_explicit(sleeping, 1u, memory_order_seq_cst);      /* E1: pairs with F2 */
}

static inline uint64_t recheck_head(_Atomic uint64_t *head)
{
    return atomic_load_explicit(head, memory_order_seq_cst);        /* E2: pairs with F1 (head) */
}

static inline uint64_t recheck_slot_stamp(_Atomic uint64_t *stamp)
{
    return atomic_load_explicit(stamp, memory_order_seq_cst);       /* E2: pairs with F1 (stamp) */
}

/*
 * The producer (or a leaving peer) takes the sleeper's 1 back to 0 before
 * FUTEX_WAKE. Without this a wake issued between the consumer's E2 and its
 * FUTEX_WAIT would find no waiter and the wait, seeing the word still 1,
 * would sleep the whole slice. With it the wait sees 0 and returns at once.
 * Returns 1 if this call took the word from 1 (and so should wake).
 */
static inline int claim_sleeper(_Atomic uint32_t *sleeping)
{
    uint32_t expected = 1u;
    return atomic_compare_exchange_strong_explicit(sleeping, &expected, 0u, memory_order_seq_cst,
                                                   memory_order_relaxed);
}

/* F2 against a consumer that issues membarrier before it sleeps (see E/F
 * above): the barrier comes from the consumer's side. seq_cst (a plain load
 * on x86) so that it also pairs with the consumer's look at the fencing
 * acknowledgement (M below). */
static inline uint32_t peek_sleeper_after_membarrier(_Atomic uint32_t *sleeping)
{
    /* The stamp's store (release) must stay before this load in the
     * instruction stream, which the membarrier argument needs and which C
     * alone does not promise for a release store and a later load: a
     * compiler barrier, no CPU fence. */
    atomic_signal_fence(memory_order_seq_cst);
    return atomic_load_explicit(sleeping, memory_order_seq_cst);
}

/*
 *   M  the membarrier is skipped when the producer fences anyway: a consumer
 *      that sleeps after nearly every message asks for per-stamp fences
 *      (request_fencing); the producer, seeing the request, switches and
 *      acknowledges (ack_fencing, seq_cst); a consumer about to sleep reads
 *      the acknowledgement (observe_fencing_ack, seq_cst) after its E1 and
 *      issues no membarrier when it says 1. Switching on, the producer fences
 *      before it acknowledges, so every stamp after the acknowledgement is
 *      fenced (pair E/F) and every stamp before it is visible to a consumer
 *      that read it (the acknowledgement is a release, its read an acquire).
 *      Switching off, the producer stores 0 before its first unfenced stamp;
 *      a consumer that still read 1 did so before that store in the total
 *      order, after its E1, so the producer's seq_cst look at the sleeper
 *      word (F2) comes later in that order and sees the consumer's 1.
 */
static inline void request_fencing(_Atomic uint32_t *wants, uint32_t on)
{
    atomic_store_explicit(wants, on, memory_order_relaxed);
}

static inline uint32_t peek_fencing_request(_Atomic uint32_t *wants)
{
    return atomic_load_explicit(wants, memory_order_relaxed);
}

static inline void ack_fencing(_Atomic uint32_t *ack, uint32_t on)
{
    atomic_store_explicit(ack, on, memory_order_seq_cst); /* M: pairs with observe_fencing_ack */
}

static inline uint32_t observe_fencing_ack(_Atomic uint32_t *ack)
{
    return atomic_load_explicit(ack, memory_order_seq_cst); /* M: pairs with ack_fencing */
}

/* The producer (or a leaving peer) takes an event-loop waiter's 3 back to 0
 * before it signals the waiter's eventfd, as claim_sleeper does for 1.
 * Returns 1 if this call took the word from 3 (and so should signal). */
static inline int claim_fd_waiter(_Atomic uint32_t *sleeping)
{
    uint32_t expected = 3u;
    return atomic_compare_exchange_strong_explicit(sleeping, &expected, 0u, memory_order_seq_cst,
                                                   memory_order_relaxed);
}

/* E for an event loop: the consumer announces it waits on its descriptor
 * (3 instead of 1); the recheck and the pairing with F are as for sleep. */
static inline void announce_fd_wait(_Atomic uint32_t *sleeping)
{
    atomic_store_explicit(sleeping, 3u, memory_order_seq_cst);      /* E1: pairs with F2 */
}

/*
 *   K  producer: announce_wait_for_room, then recheck_tail (seq_cst)
 *      pairs with L  consumer: publish_tail_check_waiter (seq_cst)
 *      Dekker pair for a producer that waits for room on its descriptor: it
 *      stores waiting=1 then loads tail; the consumer stores tail then loads
 *      waiting. Either the producer sees the new tail or the consumer sees the
 *      1 and signals it.
 */
static inline void announce_wait_for_room(_Atomic uint32_t *waiting)
{
    atomic_store_explicit(waiting, 1u, memory_order_seq_cst);       /* K1: pairs with L2 */
}

static inline uint64_t recheck_tail(_Atomic uint64_t *tail)
{
    return atomic_load_explicit(tail, memory_order_seq_cst);        /* K2: pairs with L1; also D */
}

static inline uint32_t publish_tail_check_waiter(_Atomic uint64_t *tail, uint64_t value, _Atomic uint32_t *waiting)
{
    atomic_exchange_explicit(tail, value, memory_order_seq_cst);    /* L1: pairs with K2; also C */
    return atomic_load_explicit(waiting, memory_order_seq_cst);     /* L2: pairs with K1 */
}

/* The consumer (or a leaving peer) takes the producer's 1 back to 0 before it
 * signals the producer's eventfd. Returns 1 if this call took it. */
static inline int claim_room_waiter(_Atomic uint32_t *waiting)
{
    uint32_t expected = 1u;
    return atomic_compare_exchange_strong_explicit(waiting, &expected, 0u, memory_order_seq_cst,
                                                   memory_order_relaxed);
}

/* The consumer is awake again; nothing is ordered by this store. */
static inline void set_sleeper_word(_Atomic uint32_t *sleeping, uint32_t value)
{
    atomic_store_explicit(sleeping, value, memory_order_relaxed);
}

/* The producer's cheap look at the sleeper word (is it pure-spin?). */
static inline uint32_t peek_sleeper_word(_Atomic uint32_t *sleeping)
{
    return atomic_load_explicit(sleeping, memory_order_relaxed);
}

/* G: leave the bus: all our earlier publications happen before state 3. */
static inline void mark_disconnected(_Atomic uint32_t *state, uint32_t ready, uint32_t gone)
{
    uint32_t expected = ready;
    /* Only READY becomes DISCONNECTED: a fatal state is never overwritten. */
    atomic_compare_exchange_strong_explicit(state, &expected, gone, memory_order_seq_cst,
                                            memory_order_relaxed);
}

/* G: pairs with mark_disconnected; also reads FATAL set by either side. */
static inline uint32_t observe_state(_Atomic uint32_t *state)
{
    return atomic_load_explicit(state, memory_order_acquire);
}

/* Store a state value (formatting, fatal). */
static inline void store_state(_Atomic uint32_t *state, uint32_t value)
{
    atomic_store_explicit(state, value, memory_order_release);
}

/* Header fields of a slot are read once into locals, racy by nature when the
 * peer is hostile; relaxed atomic loads keep that defined behaviour. */
static inline uint32_t read_slot_word(_Atomic uint32_t *word)
{
    return atomic_load_explicit(word, memory_order_relaxed);
}

/* The producer fills a slot header with plain stores; head's release (A/F1)
 * is what publishes them. */
static inline void write_slot_word(_Atomic uint32_t *word, uint32_t value)
{
    atomic_store_explicit(word, value, memory_order_relaxed);
}

/* The 64-bit header fields (correlation id), read and written like the rest. */
static inline uint64_t read_slot_word64(_Atomic uint64_t *word)
{
    return atomic_load_explicit(word, memory_order_relaxed);
}

static inline void write_slot_word64(_Atomic uint64_t *word, uint64_t value)
{
    atomic_store_explicit(word, value, memory_order_relaxed);
}

/* Set-up words (the agreed features): written once, read for diagnostics. */
static inline void store_setup_word(_Atomic uint32_t *word, uint32_t value)
{
    atomic_store_explicit(word, value, memory_order_relaxed);
}

/* Counters are read at attach time and for diagnostics only. */
static inline uint64_t read_counter_relaxed(_Atomic uint64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

static inline void write_counter_relaxed(_Atomic uint64_t *counter, uint64_t value)
{
    atomic_store_explicit(counter, value, memory_order_relaxed);
}

/* ---- Statistics blocks (a seqlock across processes) -----------------------------
 * One side writes its block now and then; a tool in another process reads
 * it. The writer makes seq odd, writes, makes it even; a reader retries while
 * seq is odd or moved under it. I pairs with J. */

/* I: begin a write; the fields stored after this are ordered after the odd seq. */
static inline uint32_t stats_write_begin(_Atomic uint32_t *seq)
{
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed) + 1;
    atomic_store_explicit(seq, s, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* I1: pairs with J2 */
    return s;
}

/* I: end a write; the fields are stored before the even seq. */
static inline void stats_write_end(_Atomic uint32_t *seq, uint32_t odd)
{
    atomic_store_explicit(seq, odd + 1, memory_order_release); /* I2: pairs with J1 */
}

static inline void stats_store(_Atomic uint64_t *field, uint64_t value)
{
    atomic_store_explicit(field, value, memory_order_relaxed);
}

/* J: begin a read (J1, acquire: pairs with I2). */
static inline uint32_t stats_read_begin(_Atomic uint32_t *seq)
{
    return atomic_load_explicit(seq, memory_order_acquire);
}

static inline uint64_t stats_load(_Atomic uint64_t *field)
{
    return atomic_load_explicit(field, memory_order_relaxed);
}

/* J: was what was read between begin and now one consistent write? (J2:
 * the fence orders the field loads before this second look at seq; pairs
 * with I1.) */
static inline int stats_read_consistent(_Atomic uint32_t *seq, uint32_t begun)
{
    atomic_thread_fence(memory_order_acquire);
    return (begun & 1u) == 0 && atomic_load_explicit(seq, memory_order_relaxed) == begun;
}

/* ---- Process-local words (not shared memory) -------------------------------
 * A bus handle's flags may be touched by its producer thread and its consumer
 * thread; relaxed atomics keep that free of data races. They order nothing. */
static inline int local_flag_load(const _Atomic int *flag)
{
    return atomic_load_explicit((_Atomic int *)flag, memory_order_relaxed);
}

static inline void local_flag_store(const _Atomic int *flag, int value)
{
    atomic_store_explicit((_Atomic int *)flag, value, memory_order_relaxed);
}

/* A process-local deadline word read by one thread and written by another. */
static inline int64_t local_pace_load(const _Atomic int64_t *t)
{
    return atomic_load_explicit((_Atomic int64_t *)t, memory_order_relaxed);
}

static inline void local_pace_store(_Atomic int64_t *t, int64_t value)
{
    atomic_store_explicit(t, value, memory_order_relaxed);
}

/* A process-local counter written by one thread, read by another. */
static inline uint64_t local_counter_load(const _Atomic uint64_t *c)
{
    return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

static inline void local_counter_store(_Atomic uint64_t *c, uint64_t value)
{
    atomic_store_explicit(c, value, memory_order_relaxed);
}

/* Set a flag that is still 0; a flag already set keeps its value. */
static inline void local_flag_set_once(_Atomic int *flag, int value)
{
    int expected = 0;
    atomic_compare_exchange_strong_explicit(flag, &expected, value, memory_order_relaxed,
                                            memory_order_relaxed);
}

static inline void local_ref_get(_Atomic int *refs)
{
    atomic_fetch_add_explicit(refs, 1, memory_order_relaxed);
}

/* 1 when this was the last reference. acq_rel: every use of the bus by other
 * holders happens before the last one frees it. */
static inline int local_ref_put(_Atomic int *refs)
{
    return atomic_fetch_sub_explicit(refs, 1, memory_order_acq_rel) == 1;
}

/* ---- Fan-out (fanout.c) --------------------------------------------------------
 *
 * A fan-out ring has one producer and many consumers. H (each slot's
 * stamp) tells a consumer that the slot at its tail is complete, and C/D
 * (each consumer's tail) give room back, with the helpers above; A/B (head)
 * only serve joiners and tools; K/L (the producer waiting for room) as on a
 * bus, every consumer taking the L side. Three more:
 *
 *   P  consumer: announce_fan_sleep (seq_cst RMW on sleepers), then
 *      recheck_slot_stamp (seq_cst) of the slot at its tail
 *      pairs with Q  producer: publish_slot_stamp_check_sleeper (seq_cst
 *      exchange of a publication's last stamp, seq_cst load of sleepers, the
 *      F helper reused; H orders the slot before its stamp)
 *      Dekker pair with one shared word: a consumer counts itself in before
 *      its last look at the stamp; the producer stores the stamp before it
 *      looks at the count. Either the consumer sees the new head, or the producer sees
 *      a count above zero, takes it back to 0 (claim_fan_sleepers: the next
 *      publications make no system call until someone counts in again),
 *      bumps wake_seq (bump_wake_seq) and wakes every sleeper. A consumer read wake_seq before counting itself in and waits
 *      only while it still holds that value, so a bump that lands between its
 *      look at head and its FUTEX_WAIT makes the wait return at once.
 *   R  producer: publish_drop (seq_cst store of drop_gen, then a full fence)
 *      before it overwrites a slot the dropped consumer may be reading
 *      pairs with S  consumer: consumer_still_owns (acquire fence, then the
 *      load of drop_gen) after it has read the slot
 *      A seqlock, as I/J: the fields of the drop (resume_pos, missed) are
 *      stored before drop_gen, and the slot bytes after it; a consumer that
 *      finds drop_gen unchanged after reading knows no byte it read was
 *      overwritten. One that finds it changed reports an overrun.
 *   T  consumer: ack_drop (release) after it moved its tail to resume_pos
 *      pairs with U  producer: observe_ack (acquire) before it reads that
 *      tail again: an acknowledged consumer is counted by its new tail.
 *   V  Q without the producer's fence, as E/F and M on a bus. A producer
 *      registered for membarrier stores the stamp (release) and loads
 *      sleepers (peek_sleeper_after_membarrier) while producer_fencing is 0;
 *      a consumer that reads 0 there (observe_fencing_ack, after its P1)
 *      calls membarrier(GLOBAL_EXPEDITED) before its P2, which puts a full
 *      barrier in the producer's thread between the two: the E/F argument
 *      above, for each consumer. A consumer that sleeps after nearly every
 *      message asks for fences instead (request_fencing on wants_fence in
 *      its table entry); the producer looks at the live entries every
 *      fan_fence_look_every publications and switches as in M (switching on:
 *      fence from the next stamp, then store 1; switching off: store 0, then
 *      stop fencing), so a consumer that read 1 after its P1 is covered by a
 *      fenced stamp or by the producer's seq_cst look at sleepers coming
 *      after that read. Untrusted both ways: a consumer's request only makes
 *      the producer fence; a producer's 1 only saves the consumer a
 *      membarrier, and a wake it then misses costs at most a sleep slice.
 *      Hot-line cost: the exchange of Q made the producer wait, per message,
 *      for the stamp's cache line that a caught-up consumer keeps reading; a
 *      plain store does not.
 */
static inline uint32_t observe_wake_seq(_Atomic uint32_t *wake_seq)
{
    /* No pairing of its own: the futex compares the value again in the kernel. */
    return atomic_load_explicit(wake_seq, memory_order_relaxed);
}

static inline void announce_fan_sleep(_Atomic uint32_t *sleepers)
{
    atomic_fetch_add_explicit(sleepers, 1u, memory_order_seq_cst); /* P1: pairs with Q2 */
}

/* Q, after the producer's load saw sleepers: take the count back to 0, so
 * that one wake serves everyone counted so far. 1 when this call took a
 * non-zero count (and so should wake). */
static inline int claim_fan_sleepers(_Atomic uint32_t *sleepers)
{
    return atomic_exchange_explicit(sleepers, 0u, memory_order_seq_cst) != 0;
}

/* Q, after the producer saw sleepers: make every sleeper's futex compare fail. */
static inline void bump_wake_seq(_Atomic uint32_t *wake_seq)
{
    atomic_fetch_add_explicit(wake_seq, 1u, memory_order_seq_cst);
}

/* R: the drop's fields (stored before, relaxed) and this generation are
 * visible before any slot byte the producer writes next. */
static inline void publish_drop(_Atomic uint32_t *drop_gen, uint32_t gen)
{
    atomic_store_explicit(drop_gen, gen, memory_order_seq_cst); /* R1: pairs with S */
    atomic_thread_fence(memory_order_seq_cst);                  /* R2: slot stores come after */
}

/* S (before reading): the generation, then (acquire) the drop's fields. */
static inline uint32_t observe_drop_gen(_Atomic uint32_t *drop_gen)
{
    return atomic_load_explicit(drop_gen, memory_order_acquire); /* pairs with R1 */
}

/* S (after reading): were the bytes just read still ours? The fence orders
 * the slot reads before this second look at drop_gen (seqlock read side). */
static inline int consumer_still_owns(_Atomic uint32_t *drop_gen, uint32_t gen)
{
    atomic_thread_fence(memory_order_acquire); /* S2: pairs with R2 */
    return atomic_load_explicit(drop_gen, memory_order_relaxed) == gen;
}

/* The drop's fields: plain words ordered by R/S around them. */
static inline void store_drop_field(_Atomic uint64_t *field, uint64_t value)
{
    atomic_store_explicit(field, value, memory_order_relaxed);
}

static inline uint64_t load_drop_field(_Atomic uint64_t *field)
{
    return atomic_load_explicit(field, memory_order_relaxed);
}

/* T: the consumer's tail (stored before, release) counts from now on. */
static inline void ack_drop(_Atomic uint32_t *ack_gen, uint32_t gen)
{
    atomic_store_explicit(ack_gen, gen, memory_order_release); /* T: pairs with U */
}

/* U: pairs with T; a tail read after this is at least the resume point. */
static inline uint32_t observe_ack(_Atomic uint32_t *ack_gen)
{
    return atomic_load_explicit(ack_gen, memory_order_acquire);
}

/* A fan-out table word set up by the producer's joining thread under its
 * lock before the consumer learns of it (the socket orders the rest). */
static inline void store_table_word(_Atomic uint32_t *word, uint32_t value)
{
    atomic_store_explicit(word, value, memory_order_release);
}

static inline uint32_t load_table_word(_Atomic uint32_t *word)
{
    return atomic_load_explicit(word, memory_order_acquire);
}

/* Fan-in: a producer's ring handle is published to the consumer thread by
 * the thread that accepted it (release) and taken by the consumer (acquire):
 * the handle is fully set up before the consumer reads it. */
static inline void publish_slot_ptr(void *_Atomic *slot, void *value)
{
    atomic_store_explicit(slot, value, memory_order_release);
}

static inline void *observe_slot_ptr(void *_Atomic *slot)
{
    return atomic_load_explicit(slot, memory_order_acquire);
}

/* The public tachyon_memory_barrier_acquire: pairs with whatever release the
 * caller is reading past (for the ring, the producer's A). */
static inline void acquire_fence(void)
{
    atomic_thread_fence(memory_order_acquire);
}

#endif /* TACHYON_BARRIER_H */
