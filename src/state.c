/*
 * state.c - errors per thread, the fatal state, the fork hook (see state.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "futex.h"
#include "state.h"

/* ---- Errors ---------------------------------------------------------------- */

/* A thread keeps the last error of its last few buses (a thread rarely
 * drives more; an older entry is overwritten round robin). */
#define ERROR_SLOTS 4
#define DETAIL_BYTES 320

struct thread_errors {
    uint64_t bus_id[ERROR_SLOTS];
    int err[ERROR_SLOTS];
    unsigned next;
    int detail_err; /* the error `detail` belongs to; 0: none */
    char detail[DETAIL_BYTES];
};

/* initial-exec: the error paths include the polling consumer's EMPTY, so the
 * access must be one instruction, not a call into the dynamic loader. */
static __thread struct thread_errors thread_errors __attribute__((tls_model("initial-exec")));

static void record_error_id(uint64_t id, tachyon_error_t err)
{
    struct thread_errors *t = &thread_errors;
    for (unsigned i = 0; i < ERROR_SLOTS; i++) {
        if (t->bus_id[i] == id) {
            t->err[i] = (int)err;
            return;
        }
    }
    unsigned i = t->next++ % ERROR_SLOTS;
    t->bus_id[i] = id;
    t->err[i] = (int)err;
}

static void record_error(const struct tachyon_bus *bus, tachyon_error_t err)
{
    if (bus)
        record_error_id(bus->id, err);
}

void status_set_error_id(uint64_t id, tachyon_error_t err)
{
    record_error_id(id, err);
}

tachyon_error_t status_last_error_id(uint64_t id)
{
    const struct thread_errors *t = &thread_errors;
    for (unsigned i = 0; i < ERROR_SLOTS; i++)
        if (t->bus_id[i] == id)
            return (tachyon_error_t)t->err[i];
    return TACHYON_SUCCESS;
}

void status_set_error(const struct tachyon_bus *bus, tachyon_error_t err)
{
    thread_errors.detail_err = 0;
    record_error(bus, err);
}

tachyon_error_t status_error_detail(const struct tachyon_bus *bus, tachyon_error_t err, const char *fmt, ...)
{
    struct thread_errors *t = &thread_errors;
    record_error(bus, err);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->detail, sizeof(t->detail), fmt, ap);
    va_end(ap);
    t->detail_err = (int)err;
    return err;
}

tachyon_error_t status_last_error(const struct tachyon_bus *bus)
{
    const struct thread_errors *t = &thread_errors;
    for (unsigned i = 0; i < ERROR_SLOTS; i++)
        if (t->bus_id[i] == bus->id)
            return (tachyon_error_t)t->err[i];
    return TACHYON_SUCCESS;
}

const char *status_detail_for(tachyon_error_t err)
{
    const struct thread_errors *t = &thread_errors;
    return err != TACHYON_SUCCESS && t->detail_err == (int)err ? t->detail : NULL;
}

/* ---- Fatal ------------------------------------------------------------------- */

void status_set_fatal(struct tachyon_bus *bus)
{
    local_flag_store(&bus->fatal, 1);
    store_state(&bus->hdr->state, TACHYON_STATE_FATAL_ERROR);
    status_set_error(bus, TACHYON_ERR_FATAL);
    futex_wake_consumer(bus->hdr); /* a sleeping consumer learns it now */
    eventfd_signal(bus->peer_evfd);              /* and one waiting in an event loop */
}

/* ---- fork() ------------------------------------------------------------------ */

_Atomic unsigned status_fork_count;
static pthread_once_t fork_hook_once = PTHREAD_ONCE_INIT;

static void count_fork_in_child(void)
{
    atomic_fetch_add_explicit(&status_fork_count, 1u, memory_order_relaxed);
}

static void install_fork_hook(void)
{
    (void)pthread_atfork(NULL, NULL, count_fork_in_child);
}

unsigned status_fork_generation(void)
{
    (void)pthread_once(&fork_hook_once, install_fork_hook);
    return atomic_load_explicit(&status_fork_count, memory_order_relaxed);
}

uint64_t status_new_bus_id(void)
{
    static _Atomic uint64_t last_id;
    return atomic_fetch_add_explicit(&last_id, 1u, memory_order_relaxed) + 1;
}
