/*
 * fd_check.h - the descriptor-leak property of the handshake fuzzers: after
 * each input the process must hold exactly the descriptors it held before.
 * A descriptor the library leaked stays; one that something else in the
 * process holds for an instant (a runtime's helper reading /proc, a
 * symbolizer's pipe) goes, so the count is given a moment to settle before
 * it counts as a leak, and a leak names what is open.
 */
#ifndef TACHYON_FD_CHECK_H
#define TACHYON_FD_CHECK_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Open descriptors, not counting the one that lists them. */
static inline int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        abort();
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* The count once it equals `baseline`, or after 200 ms of differing. */
static inline int fd_count_settled(int baseline)
{
    int n = fd_count();
    for (int i = 0; i < 100 && n != baseline; i++) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        n = fd_count();
    }
    return n;
}

/* Every open descriptor and what it is, on stderr. */
static inline void fd_print_open(const char *who)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[64], target[256];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        target[len > 0 ? len : 0] = '\0';
        fprintf(stderr, "%s: fd %s -> %s\n", who, e->d_name, target);
    }
    closedir(d);
}

#endif /* TACHYON_FD_CHECK_H */
