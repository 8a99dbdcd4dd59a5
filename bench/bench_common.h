/*
 * bench_common.h - shared by the C benchmarks: clocks, CPU pinning, the
 * machine line, percentiles, and the RESULT line format that
 * bench/compare/run.py collects.
 */
#ifndef TACHYON_BENCH_COMMON_H
#define TACHYON_BENCH_COMMON_H

#include <dirent.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A clock in nanoseconds: CLOCK_REALTIME for stamps another process
 * compares with its own reading, CLOCK_MONOTONIC for pacing. */
static inline int64_t bench_clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleep until CLOCK_MONOTONIC reads t (nanoseconds). */
static inline void bench_sleep_until_mono(int64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

/* Pin the calling process to one CPU (if it exists); a benchmark on two cores
 * is only repeatable when the scheduler does not move the two sides around.
 * 0 when pinned; -1 on a one-CPU machine or when the kernel refused. */
static inline int bench_pin(int cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 1)
        return -1;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % (int)n, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

static inline void bench_print_machine(void)
{
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(model, sizeof(model), "%s", c + 2);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        }
        fclose(f);
    }
    struct utsname u;
    uname(&u);
    printf("machine: %s, %ld cores, Linux %s\n", model, sysconf(_SC_NPROCESSORS_ONLN), u.release);
}

static int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* p in [0, 100]; sorts v in place. */
static inline uint64_t bench_percentile(uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), bench_cmp_u64);
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* ---- Socket paths: in a directory of this process's own, removed at exit -- */

static char bench_dir_path[80];
static pid_t bench_dir_owner;

static void bench_remove_dir(void)
{
    if (getpid() != bench_dir_owner)
        return; /* a fork()ed child leaves it to its parent */
    DIR *d = opendir(bench_dir_path);
    if (d) {
        struct dirent *e;
        char file[sizeof(bench_dir_path) + 256];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                snprintf(file, sizeof(file), "%s/%s", bench_dir_path, e->d_name);
                unlink(file);
            }
        }
        closedir(d);
    }
    rmdir(bench_dir_path);
}

/* A fresh socket path named `tag` in a directory made under $TMPDIR (or
 * /tmp) on first use. */
static inline void bench_socket_path(char *buf, size_t len, const char *tag)
{
    if (!bench_dir_path[0]) {
        const char *base = getenv("TMPDIR");
        if (!base || !*base || strlen(base) > 40)
            base = "/tmp";
        snprintf(bench_dir_path, sizeof(bench_dir_path), "%s/tachyon-bench-XXXXXX", base);
        if (!mkdtemp(bench_dir_path)) {
            perror("mkdtemp");
            exit(1);
        }
        bench_dir_owner = getpid();
        atexit(bench_remove_dir);
    }
    static unsigned serial;
    snprintf(buf, len, "%s/%s-%u.sock", bench_dir_path, tag, serial++);
}

static inline uint64_t bench_env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : def;
}

#endif /* TACHYON_BENCH_COMMON_H */
