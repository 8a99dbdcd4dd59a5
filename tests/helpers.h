/*
 * helpers.h - shared by the C test programs in tests/.
 *
 * Convention (as liburing's test/): a test program exits 0 on pass, 1 on
 * failure, 77 when it cannot run here; tests/run_tests.sh runs each with a
 * timeout and prints "N passed, N failed".
 */
#ifndef TACHYON_TEST_HELPERS_H
#define TACHYON_TEST_HELPERS_H


#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tachyon.h"

#define T_EXIT_PASS 0
#define T_EXIT_FAIL 1
#define T_EXIT_SKIP 77

static int t_failures;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
            t_failures++;                                                                \
        }                                                                                \
    } while (0)

#define CHECK_EQ(a, b)                                                                   \
    do {                                                                                 \
        long long va_ = (long long)(a), vb_ = (long long)(b);                            \
        if (va_ != vb_) {                                                                \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", __FILE__, \
                    __LINE__, #a, va_, #b, vb_);                                         \
            t_failures++;                                                                \
        }                                                                                \
    } while (0)

#define CHECK_ERR(call, expected)                                                        \
    do {                                                                                 \
        tachyon_error_t got_ = (call);                                                   \
        if (got_ != (expected)) {                                                        \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %s\n", __FILE__,       \
                    __LINE__, #call, (int)got_, tachyon_strerror(got_), #expected);      \
            t_failures++;                                                                \
        }                                                                                \
    } while (0)

#define REQUIRE(cond)                                                                    \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(T_EXIT_FAIL);                                                           \
        }                                                                                \
    } while (0)

static inline int t_result(const char *name)
{
    if (t_failures)
        fprintf(stderr, "%s: %d check(s) failed\n", name, t_failures);
    else
        printf("%s: ok\n", name);
    return t_failures ? T_EXIT_FAIL : T_EXIT_PASS;
}

/* ---- Socket paths: in a directory of this process's own ------------------ */

static char t_dir_path[80];
static pid_t t_dir_owner;

/* Remove the directory and whatever the tests left in it (sockets of
 * listeners that never got a peer). Only the process that made it does: a
 * fork()ed child that exits must not pull it from under its parent. */
static void t_remove_dir(void)
{
    if (getpid() != t_dir_owner)
        return;
    DIR *d = opendir(t_dir_path);
    if (d) {
        struct dirent *e;
        char file[sizeof(t_dir_path) + 256];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(file, sizeof(file), "%s/%s", t_dir_path, e->d_name);
            unlink(file);
        }
        closedir(d);
    }
    rmdir(t_dir_path);
}

/* A fresh directory under $TMPDIR (or /tmp, when $TMPDIR is unset or too
 * long for a socket path), made on first use and removed at exit. */
static inline const char *t_private_dir(void)
{
    if (t_dir_path[0])
        return t_dir_path;
    const char *base = getenv("TMPDIR");
    if (!base || !*base || strlen(base) > 40)
        base = "/tmp";
    snprintf(t_dir_path, sizeof(t_dir_path), "%s/tachyon-test-XXXXXX", base);
    REQUIRE(mkdtemp(t_dir_path) != NULL);
    t_dir_owner = getpid();
    atexit(t_remove_dir);
    return t_dir_path;
}

/* A socket path private to this process and call. */
static inline void t_socket_path(char *buf, size_t len, const char *tag)
{
    static int counter;
    int n = snprintf(buf, len, "%s/%s-%d.sock", t_private_dir(), tag, counter++);
    REQUIRE(n > 0 && (size_t)n < len);
    unlink(buf);
}

static inline uint64_t t_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t t_env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : def;
}

/* splitmix64: a fast, well-mixed stream for sizes, type ids and payloads. */
static inline uint64_t t_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* ---- An in-process pair: listener in a thread, connector here. ---------- */

struct t_listen_arg {
    const char *path;
    size_t capacity;
    tachyon_bus_t *bus;
    tachyon_error_t err;
};

static void *t_listen_thread(void *p)
{
    struct t_listen_arg *a = p;
    a->err = tachyon_bus_listen(a->path, a->capacity, &a->bus);
    return NULL;
}

/* *listener and *connector map the same ring; either may produce. */
static inline void t_make_pair(size_t capacity, tachyon_bus_t **listener, tachyon_bus_t **connector)
{
    char path[108];
    t_socket_path(path, sizeof(path), "pair");
    struct t_listen_arg a = {path, capacity, NULL, TACHYON_SUCCESS};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, t_listen_thread, &a) == 0);
    tachyon_error_t err = tachyon_bus_connect_timeout(path, 5000, connector);
    pthread_join(th, NULL);
    if (err != TACHYON_SUCCESS || a.err != TACHYON_SUCCESS) {
        fprintf(stderr, "pair: connect %s, listen %s\n", tachyon_strerror(err), tachyon_strerror(a.err));
        exit(T_EXIT_FAIL);
    }
    *listener = a.bus;
}

#endif /* TACHYON_TEST_HELPERS_H */
