/*
 * bus_peer.c - one side of a bus for the tachyon-top tests: it sends or
 * receives a known number of messages, stores its counters
 * (tachyon_bus_stats), prints "ready <pid>" and keeps the bus open until
 * SIGTERM (then closes it cleanly) or until it is killed.
 *
 *   bus_peer produce PATH [--count N] [--size B] [--rate R] [--forever] [--listen]
 *   bus_peer consume PATH [--count N] [--capacity C] [--connect]
 *
 * The consumer listens and the producer connects unless told otherwise.
 * --count: messages to send or receive before "ready" (default 1000).
 * --rate: messages per second (0: as fast as the ring takes them).
 * --forever (producer): after "ready", keep sending at --rate until SIGTERM.
 * A consumer with --forever keeps receiving after "ready" likewise.
 * Exit 0 after a clean close, 1 on error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tachyon.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

struct args {
    int produce, listen, forever;
    const char *path;
    unsigned long long count, size, rate, capacity;
};

static void die(const char *what, tachyon_error_t err)
{
    fprintf(stderr, "bus_peer: %s: %s\n", what, tachyon_error_message(err));
    exit(1);
}

static unsigned long long number(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end) {
        fprintf(stderr, "bus_peer: not a number: %s\n", s);
        exit(1);
    }
    return v;
}

static void parse(int argc, char **argv, struct args *a)
{
    if (argc < 3 || (strcmp(argv[1], "produce") && strcmp(argv[1], "consume"))) {
        fprintf(stderr, "usage: bus_peer produce|consume PATH [options]\n");
        exit(1);
    }
    memset(a, 0, sizeof(*a));
    a->produce = strcmp(argv[1], "produce") == 0;
    a->listen = !a->produce;
    a->path = argv[2];
    a->count = 1000;
    a->size = 32;
    a->capacity = 1 << 20;
    for (int i = 3; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(o, "--listen")) a->listen = 1;
        else if (!strcmp(o, "--connect")) a->listen = 0;
        else if (!strcmp(o, "--forever")) a->forever = 1;
        else if (!strcmp(o, "--count")) a->count = number(v), i++;
        else if (!strcmp(o, "--size")) a->size = number(v), i++;
        else if (!strcmp(o, "--rate")) a->rate = number(v), i++;
        else if (!strcmp(o, "--capacity")) a->capacity = number(v), i++;
        else {
            fprintf(stderr, "bus_peer: unknown option %s\n", o);
            exit(1);
        }
    }
}

static void pace(unsigned long long rate, unsigned long long i, const struct timespec *start)
{
    if (!rate)
        return;
    double due = (double)i / (double)rate;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed = (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
    if (due > elapsed) {
        double wait = due - elapsed;
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static int send_one(tachyon_bus_t *bus, const uint8_t *payload, size_t size)
{
    void *slot = tachyon_acquire_tx_blocking(bus, size, 1000, 30000);
    if (!slot)
        return -1;
    memcpy(slot, payload, size);
    return tachyon_commit_tx(bus, size, 1) == TACHYON_SUCCESS ? 0 : -1;
}

static int receive_one(tachyon_bus_t *bus)
{
    uint32_t type;
    size_t size;
    while (!stop) {
        if (tachyon_acquire_rx_timeout(bus, &type, &size, 1000, 200))
            return tachyon_commit_rx(bus) == TACHYON_SUCCESS ? 0 : -1;
        tachyon_error_t err = tachyon_bus_last_error(bus);
        if (err != TACHYON_ERR_TIMEOUT && err != TACHYON_ERR_INTERRUPTED)
            return -1;
    }
    return -1;
}

static void announce_ready(tachyon_bus_t *bus)
{
    tachyon_stats_t st;
    tachyon_error_t err = tachyon_bus_stats(bus, &st); /* stores our counters into the segment */
    if (err != TACHYON_SUCCESS)
        die("stats", err);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct args a;
    parse(argc, argv, &a);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    tachyon_bus_t *bus;
    tachyon_error_t err = a.listen ? tachyon_bus_listen(a.path, (size_t)a.capacity, &bus)
                                   : tachyon_bus_connect_timeout(a.path, 30000, &bus);
    if (err != TACHYON_SUCCESS)
        die(a.listen ? "listen" : "connect", err);

    uint8_t *payload = calloc(1, a.size ? a.size : 1);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned long long done = 0;
    for (; done < a.count && !stop; done++) {
        pace(a.rate, done, &start);
        if ((a.produce ? send_one(bus, payload, (size_t)a.size) : receive_one(bus)) != 0)
            die(a.produce ? "send" : "receive", tachyon_bus_last_error(bus));
    }
    announce_ready(bus);
    while (!stop) {
        if (a.forever) {
            pace(a.rate, done++, &start);
            if ((a.produce ? send_one(bus, payload, (size_t)a.size) : receive_one(bus)) != 0 && !stop)
                die(a.produce ? "send" : "receive", tachyon_bus_last_error(bus));
        } else {
            struct timespec ts = {0, 50 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    tachyon_bus_destroy(bus);
    free(payload);
    return 0;
}
