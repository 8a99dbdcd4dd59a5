/*
 * main.c - tachyon-bridge: a Tachyon bus to NATS (out) and NATS to a bus
 * (in). See --help, README.md "Beyond one machine" and docs/design.md
 * "Delivery guarantees of the NATS bridge".
 */
#define _GNU_SOURCE
#include "bridge.h"
#include "options.h"

#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

static atomic_int stop_count;
static atomic_int stop_signo;
static pthread_t main_thread;
static const char *mode_name = "";

void say(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "tachyon-bridge %s: %s\n", mode_name, line);
}

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int stop_requested(void)
{
    return atomic_load(&stop_count);
}

const char *stop_signal_name(void)
{
    switch (atomic_load(&stop_signo)) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return NULL;
    }
}

const char *group_u64(char *buf, uint64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ' ';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

/* SIGINT and SIGTERM are blocked in every thread and taken here, so that the
 * NATS library's threads never receive them; the main thread's waits are
 * cut short with SIGUSR1, whose handler does nothing (no SA_RESTART). */
static void *signal_thread(void *arg)
{
    sigset_t *set = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0)
            continue;
        atomic_store(&stop_signo, sig);
        int n = atomic_fetch_add(&stop_count, 1) + 1;
        if (n == 1)
            say("%s: finishing (a second one stops at once)", sig == SIGINT ? "SIGINT" : "SIGTERM");
        pthread_kill(main_thread, SIGUSR1);
    }
    return NULL;
}

static void wake_handler(int sig)
{
    (void)sig;
}

static bool setup_signals(void)
{
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return false;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = wake_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    main_thread = pthread_self();
    pthread_t t;
    if (pthread_create(&t, NULL, signal_thread, &set) != 0)
        return false;
    pthread_detach(t);
    return true;
}

int main(int argc, char **argv)
{
    bridge_options_t opts;
    int rc = options_parse(argc, argv, &opts);
    if (rc == 1)
        return 0;
    if (rc)
        return 2;
    mode_name = opts.mode == MODE_OUT ? "out" : "in";
    setvbuf(stderr, NULL, _IOLBF, 0);
    /* Sleeps until a flush is due are tens of microseconds: the default 50 us
     * timer slack would double them. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    if (!setup_signals()) {
        say("cannot set up signal handling");
        return 1;
    }
    if (nats_Open(-1) != NATS_OK) {
        say("cannot initialise the NATS library");
        return 1;
    }
    rc = opts.mode == MODE_OUT ? run_out(&opts) : run_in(&opts);
    nats_CloseAndWait(2000);
    return rc;
}
