/*
 * helpers.h - shared by the security test programs in tests/security/.
 *
 * Each program is standalone: exit 0 all passed, 1 something failed, 77 the
 * whole program was skipped. Every case prints one "ok"/"FAIL" line and the
 * program ends with "N passed, N failed" (plus skips) for the runner.
 *
 * Nothing in a test may hang: waits go through timeouts, and each program
 * starts a watchdog that ends it with a failure when it runs far too long.
 */
#ifndef TACHYON_SEC_HELPERS_H
#define TACHYON_SEC_HELPERS_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "tachyon.h"

#define SKIP_EXIT 77

extern int sec_passed, sec_failed, sec_skipped;

/* Record a failed check with where it happened; the case keeps going so one
 * run shows every broken property, not just the first. */
#define CHECK(cond, ...)                                                             \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fprintf(stderr, "\n");                                                   \
            sec_case_failed = 1;                                                     \
        }                                                                            \
    } while (0)

#define CHECK_ERR(got, want, what)                                                   \
    CHECK((got) == (want), "%s: got %d (%s), want %d (%s)", what, (int)(got),       \
          tachyon_strerror(got), (int)(want), tachyon_strerror(want))

extern int sec_case_failed;

/* Start a case; end it with sec_case_end (prints ok/FAIL, counts it). */
void sec_case_begin(const char *name);
void sec_case_end(void);
void sec_case_skip(const char *name, const char *why);

/* Print the summary line and return the exit status. */
int sec_finish(void);

/* End the process with a failure if it is still running after `seconds`
 * (a thread, so it works whatever the test does with SIGALRM). */
void sec_watchdog(unsigned seconds);

int64_t sec_now_ms(void);
void sec_sleep_ms(int ms);

/* This process's directory for socket files: made under $TMPDIR (or /tmp)
 * on first use, searchable by every user, removed with its contents at exit. */
const char *sec_socket_dir(void);

/* A fresh socket path in sec_socket_dir(), unique to this process and `tag`. */
void sec_socket_path(char *buf, size_t len, const char *tag);

/* Open descriptors (/proc/self/fd entries) and mappings (/proc/self/maps lines). */
int sec_count_fds(void);
int sec_count_maps(void);

/*
 * A connected pair in this process: a thread listens with `capacity`, this
 * thread connects. *listener and *connector are two handles on one segment;
 * whichever calls tx is the producer. 0 on success.
 */
int sec_bus_pair(size_t capacity, tachyon_bus_t **listener, tachyon_bus_t **connector);

/* waitpid with a deadline: the child's status, or -1 after timeout_ms (the
 * child is then killed and reaped). */
int sec_wait_child(pid_t pid, int timeout_ms);

/* xorshift64*: cheap, seedable, reproducible randomness for tests. */
uint64_t sec_rand(uint64_t *state);

#endif
