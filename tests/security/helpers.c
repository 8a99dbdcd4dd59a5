/* helpers.c - see helpers.h. */
#define _GNU_SOURCE
#include "helpers.h"

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

int sec_passed, sec_failed, sec_skipped;
int sec_case_failed;
static const char *current_case;

void sec_case_begin(const char *name)
{
    current_case = name;
    sec_case_failed = 0;
}

void sec_case_end(void)
{
    printf("%-60s %s\n", current_case, sec_case_failed ? "FAIL" : "ok");
    fflush(stdout);
    if (sec_case_failed)
        sec_failed++;
    else
        sec_passed++;
}

void sec_case_skip(const char *name, const char *why)
{
    printf("%-60s skip (%s)\n", name, why);
    fflush(stdout);
    sec_skipped++;
}

int sec_finish(void)
{
    printf("%d passed, %d failed, %d skipped\n", sec_passed, sec_failed, sec_skipped);
    fflush(stdout);
    if (sec_failed)
        return 1;
    return sec_passed == 0 && sec_skipped > 0 ? SKIP_EXIT : 0;
}

static void *watchdog_main(void *arg)
{
    unsigned seconds = (unsigned)(uintptr_t)arg;
    struct timespec ts = {(time_t)seconds, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    fprintf(stderr, "watchdog: still running after %u s (case: %s): hang\n", seconds,
            current_case ? current_case : "?");
    _exit(1);
    return NULL;
}

void sec_watchdog(unsigned seconds)
{
    pthread_t t;
    /* The watchdog must not take the test's signals. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    if (pthread_create(&t, NULL, watchdog_main, (void *)(uintptr_t)seconds) == 0)
        pthread_detach(t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int64_t sec_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sec_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static char sec_dir_path[80];
static pid_t sec_dir_owner;

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* Remove the directory and what is left in it (sockets of listeners that
 * were killed or never got a peer). Only the process that made it does: a
 * fork()ed child that exits must not pull it from under its parent. */
static void sec_remove_dir(void)
{
    if (getpid() == sec_dir_owner)
        nftw(sec_dir_path, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

const char *sec_socket_dir(void)
{
    if (sec_dir_path[0])
        return sec_dir_path;
    const char *base = getenv("TMPDIR");
    if (!base || !*base || strlen(base) > 40)
        base = "/tmp";
    snprintf(sec_dir_path, sizeof(sec_dir_path), "%s/tachyon-sec-XXXXXX", base);
    if (!mkdtemp(sec_dir_path)) {
        fprintf(stderr, "cannot create a directory under %s: %s\n", base, strerror(errno));
        exit(1);
    }
    /* Searchable by everyone (not listable): the credential cases connect
     * from another user, and the socket file's own mode decides. */
    chmod(sec_dir_path, 0711);
    sec_dir_owner = getpid();
    atexit(sec_remove_dir);
    return sec_dir_path;
}

void sec_socket_path(char *buf, size_t len, const char *tag)
{
    static int serial;
    int n = snprintf(buf, len, "%s/%s-%d.sock", sec_socket_dir(), tag, serial++);
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "socket path for %s does not fit in %zu bytes\n", tag, len);
        exit(1);
    }
    unlink(buf);
}

int sec_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own fd */
}

int sec_count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

struct listen_job {
    const char *path;
    size_t capacity;
    tachyon_bus_t *bus;
    tachyon_error_t err;
};

static void *listen_thread(void *arg)
{
    struct listen_job *job = arg;
    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, job->capacity);
    opts.timeout_ms = 5000;
    job->err = tachyon_bus_listen_ex(job->path, &opts, &job->bus);
    return NULL;
}

int sec_bus_pair(size_t capacity, tachyon_bus_t **listener, tachyon_bus_t **connector)
{
    char path[108];
    sec_socket_path(path, sizeof(path), "pair");
    struct listen_job job = {path, capacity, NULL, TACHYON_SUCCESS};
    pthread_t t;
    if (pthread_create(&t, NULL, listen_thread, &job) != 0)
        return -1;
    tachyon_error_t cerr = tachyon_bus_connect_timeout(path, 5000, connector);
    pthread_join(t, NULL);
    if (cerr != TACHYON_SUCCESS || job.err != TACHYON_SUCCESS) {
        fprintf(stderr, "  bus pair: connect %s, listen %s\n", tachyon_strerror(cerr),
                tachyon_strerror(job.err));
        if (cerr == TACHYON_SUCCESS)
            tachyon_bus_destroy(*connector);
        if (job.err == TACHYON_SUCCESS)
            tachyon_bus_destroy(job.bus);
        return -1;
    }
    *listener = job.bus;
    return 0;
}

int sec_wait_child(pid_t pid, int timeout_ms)
{
    int64_t deadline = sec_now_ms() + timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -1;
        if (sec_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        sec_sleep_ms(2);
    }
}

uint64_t sec_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}
