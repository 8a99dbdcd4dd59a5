/*
 * bridge.h - what every part of tachyon-bridge shares: reporting, the clock,
 * and the stop request set by SIGINT/SIGTERM.
 *
 * Threads: the main thread moves the messages; the NATS client library runs
 * its own threads (socket reader, flusher, callbacks); one thread waits for
 * SIGINT/SIGTERM (they are blocked everywhere else) and then interrupts the
 * main thread's waits with SIGUSR1.
 */
#ifndef TACHYON_BRIDGE_H
#define TACHYON_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "options.h"

/* One line on stderr: "tachyon-bridge out: ...". Thread-safe. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t now_ns(void);

/* 0: run; 1: stop asked (finish cleanly); 2: asked twice (stop now). */
int stop_requested(void);
/* The signal behind the stop request ("SIGINT", "SIGTERM"), or NULL. */
const char *stop_signal_name(void);

/* 1234567 -> "1 234 567" into buf (at least 32 bytes); returns buf. */
const char *group_u64(char *buf, uint64_t v);

int run_out(const bridge_options_t *opts);
int run_in(const bridge_options_t *opts);

#endif
