/*
 * fan.h - what fanout.c and fanin.c share. Nothing here is part of the ABI.
 */
#ifndef TACHYON_FAN_H
#define TACHYON_FAN_H

#include <pthread.h>

#include "fan_wire.h"
#include "internal.h"

/* How long a listener's door waits for a joiner's request, and a joiner for
 * the listener's answer: a local peer answers at once; a hung one is dropped. */
#define FAN_JOIN_TIMEOUT_MS 2000

/* Is this hello well formed for a channel of `kind`? ABI_MISMATCH when it is
 * not a fan channel of our version (a plain bus, another program), FULL
 * when the listener has no free slot. */
TACHYON_HIDDEN tachyon_error_t fan_check_hello(const tachyon_fan_hello_t *h, uint32_t kind);

/* The largest fan-out payload: half the ring less a header, so that a slot
 * and the skip marker before it always fit in one ring. */
TACHYON_HIDDEN uint64_t fan_max_payload(uint64_t capacity);

/* Start a listener's door thread with every signal blocked in it, so that a
 * signal meant for the application's own threads (Ctrl-C in a blocking
 * receive) is never taken by the door instead. 0 on success. */
TACHYON_HIDDEN int start_door(pthread_t *thread, void *(*main_fn)(void *), void *arg);

/* Publications between two looks of a fan-out producer at its readers'
 * requests for fenced stamps (pair V); tests make it 1. */
TACHYON_HIDDEN extern uint32_t fan_fence_look_every;

/* 0: readers never ask for fenced stamps, so that a test can keep the
 * producer on the unfenced protocol. */
TACHYON_HIDDEN extern int fan_readers_ask_fences;

/* 1 while the producer fences every stamp (tests watch it switch). */
TACHYON_HIDDEN uint32_t fan_producer_fencing(const tachyon_fanout_t *p);

#endif /* TACHYON_FAN_H */
