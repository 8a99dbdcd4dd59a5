/*
 * stream.c - one run of the streaming benchmark, built twice: against the
 * library as it ships and against the library compiled with
 * -DTACHYON_NO_STATS (no per-message counting). bench/stats/run.py runs the
 * two in turns and compares their medians.
 *
 *   stream per-message COUNT   C -> C, 32-byte messages, acquire_tx + commit_tx
 *                              -> acquire_rx_spin + commit_rx, producer pinned to
 *                              CPU 0, pure-spin consumer on CPU 1 (as case 1 of
 *                              bench/throughput.c)
 *   stream batch COUNT         the same with send_batch + drain_batch, 64 per call
 *   stream local COUNT         both ends in one thread: 256 messages in, 256 out,
 *                              again; timed by the thread's CPU time, which time
 *                              spent descheduled does not inflate: the work
 *                              per message, the counting included or not
 *       All print "rate <msg/s> counted <n>": n is what tachyon_bus_stats
 *       says the producer sent (COUNT with counting, 0 without).
 *
 *   stream sink PATH           listen at PATH and drain until a message with
 *                              type_id 0 (the seed's sentinel), wait for the
 *                              producer to close, then read the segment from
 *                              the outside as tachyon-top does and print
 *                              "received <n> producer_counted <m|none>".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "bench_common.h"
#include "tachyon.h"

#define RING_CAPACITY (1u << 20)
#define SIZE 32
#define BATCH 64

struct result {
    volatile uint64_t received;
    volatile uint64_t elapsed_ns;
    volatile uint64_t checksum;
};

static void consumer(const char *path, int batched, struct result *out)
{
    bench_pin(1);
    tachyon_bus_t *bus;
    if (tachyon_bus_listen(path, RING_CAPACITY, &bus) != TACHYON_SUCCESS)
        _exit(1);
    tachyon_bus_set_polling_mode(bus, 1);
    uint64_t n = 0, t0 = 0, sum = 0, w;
    tachyon_msg_view_t views[BATCH];
    for (;;) {
        if (batched) {
            size_t k = tachyon_drain_batch(bus, views, BATCH, 10000);
            if (k == 0)
                break;
            if (n == 0)
                t0 = bench_now_ns();
            for (size_t i = 0; i < k; i++) {
                memcpy(&w, views[i].ptr, 8);
                sum += w;
            }
            tachyon_commit_rx_batch(bus, views, k);
            n += k;
        } else {
            size_t size;
            const uint8_t *p = tachyon_acquire_rx_spin(bus, NULL, &size, 0);
            if (!p)
                break;
            if (n == 0)
                t0 = bench_now_ns();
            memcpy(&w, p, 8);
            sum += w;
            tachyon_commit_rx(bus);
            n++;
        }
    }
    out->elapsed_ns = bench_now_ns() - t0;
    out->received = n;
    out->checksum = sum; /* keeps the reads */
    tachyon_bus_destroy(bus);
    _exit(0);
}

/* Sends `count` messages; returns what the producer's stats say it sent. */
static uint64_t producer(const char *path, int batched, uint64_t count)
{
    bench_pin(0);
    tachyon_bus_t *bus;
    if (tachyon_bus_connect_timeout(path, 10000, &bus) != TACHYON_SUCCESS)
        exit(1);
    static uint8_t src[SIZE * BATCH];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)i;
    uint64_t sent = 0;
    while (sent < count) {
        if (batched) {
            size_t want = count - sent < BATCH ? (size_t)(count - sent) : BATCH;
            sent += tachyon_send_batch(bus, src, SIZE, want, 1);
        } else {
            uint8_t *p = tachyon_acquire_tx(bus, SIZE);
            if (!p)
                continue;
            memcpy(p, src + (sent & 31), SIZE);
            tachyon_commit_tx(bus, SIZE, 1);
            sent++;
        }
    }
    tachyon_stats_t st;
    uint64_t counted = tachyon_bus_stats(bus, &st) == TACHYON_SUCCESS ? st.messages_sent : 0;
    tachyon_bus_destroy(bus);
    return counted;
}

static int run_stream(int batched, uint64_t count)
{
    char path[108];
    bench_socket_path(path, sizeof path, "stats");
    struct result *res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED)
        return 1;
    pid_t child = fork();
    if (child == 0)
        consumer(path, batched, res);
    uint64_t counted = producer(path, batched, count);
    int status;
    waitpid(child, &status, 0);
    if (res->received != count) {
        fprintf(stderr, "stream: sent %llu, received %llu\n", (unsigned long long)count,
                (unsigned long long)res->received);
        return 1;
    }
    printf("rate %.0f counted %llu\n", (double)count / ((double)res->elapsed_ns / 1e9), (unsigned long long)counted);
    return 0;
}

struct listener {
    const char *path;
    tachyon_bus_t *bus;
    tachyon_error_t err;
};

static void *listen_thread(void *arg)
{
    struct listener *l = arg;
    l->err = tachyon_bus_listen(l->path, RING_CAPACITY, &l->bus);
    return NULL;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define LOCAL_BURST 256

static int run_local(uint64_t count)
{
    char path[108];
    bench_socket_path(path, sizeof path, "stats");
    bench_pin(0);
    struct listener l = {path, NULL, TACHYON_SUCCESS};
    pthread_t th;
    tachyon_bus_t *tx;
    if (pthread_create(&th, NULL, listen_thread, &l) != 0)
        return 1;
    tachyon_error_t err = tachyon_bus_connect_timeout(path, 10000, &tx);
    pthread_join(th, NULL);
    if (err != TACHYON_SUCCESS || l.err != TACHYON_SUCCESS) {
        fprintf(stderr, "local: connect %s, listen %s\n", tachyon_strerror(err), tachyon_strerror(l.err));
        return 1;
    }
    tachyon_bus_t *rx = l.bus;
    static uint8_t src[SIZE];
    uint64_t sent = 0, received = 0, sum = 0, w;
    uint64_t t0 = thread_cpu_ns();
    while (sent < count) {
        for (int i = 0; i < LOCAL_BURST && sent < count; i++, sent++) {
            uint8_t *p = tachyon_acquire_tx(tx, SIZE);
            if (!p)
                return 1;
            src[0] = (uint8_t)sent;
            memcpy(p, src, SIZE);
            tachyon_commit_tx(tx, SIZE, 1);
        }
        const uint8_t *p;
        size_t size;
        while (received < sent && (p = tachyon_acquire_rx(rx, NULL, &size)) != NULL) {
            memcpy(&w, p, 8);
            sum += w;
            tachyon_commit_rx(rx);
            received++;
        }
    }
    uint64_t elapsed = thread_cpu_ns() - t0;
    tachyon_stats_t st;
    uint64_t counted = tachyon_bus_stats(tx, &st) == TACHYON_SUCCESS ? st.messages_sent : 0;
    tachyon_bus_destroy(tx);
    tachyon_bus_destroy(rx);
    if (received != count) {
        fprintf(stderr, "local: sent %llu, received %llu\n", (unsigned long long)count, (unsigned long long)received);
        return 1;
    }
    printf("rate %.0f counted %llu checksum %llu\n", (double)count / ((double)elapsed / 1e9),
           (unsigned long long)counted, (unsigned long long)sum);
    return 0;
}

/* Our own descriptor of the segment made for `path`, as tachyon-top finds it. */
static int own_segment_fd(const char *path)
{
    char want[300], link[400], name[300];
    snprintf(want, sizeof want, "/memfd:tachyon:%s (deleted)", path);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *de;
    int found = -1;
    while (found < 0 && (de = readdir(d)) != NULL) {
        snprintf(name, sizeof name, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(name, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (strcmp(link, want) == 0)
            found = open(name, O_RDONLY | O_CLOEXEC);
    }
    closedir(d);
    return found;
}

static int run_sink(const char *path)
{
    tachyon_bus_t *bus;
    tachyon_error_t err = tachyon_bus_listen(path, RING_CAPACITY, &bus);
    if (err != TACHYON_SUCCESS) {
        fprintf(stderr, "sink: listen %s: %s\n", path, tachyon_strerror(err));
        return 1;
    }
    static tachyon_msg_view_t views[1024];
    uint64_t count = 0;
    int done = 0;
    while (!done) {
        size_t n = tachyon_drain_batch(bus, views, 1024, 1000);
        if (n == 0) {
            fprintf(stderr, "sink: %s after %llu messages\n", tachyon_strerror(tachyon_bus_last_error(bus)),
                    (unsigned long long)count);
            return 1;
        }
        size_t take = n;
        for (size_t i = 0; i < n && !done; i++)
            if (views[i].type_id == 0) {
                done = 1;
                take = i + 1;
            } else {
                count++;
            }
        tachyon_commit_rx_batch(bus, views, take);
    }
    /* The producer stores its counters when it leaves. */
    while (tachyon_acquire_rx_timeout(bus, NULL, NULL, 1000, 30000))
        tachyon_commit_rx(bus);
    tachyon_segment_info_t info;
    int fd = own_segment_fd(path);
    if (fd >= 0 && tachyon_segment_inspect(fd, &info) == TACHYON_SUCCESS && info.producer.valid)
        printf("received %llu producer_counted %llu\n", (unsigned long long)count,
               (unsigned long long)info.producer.messages);
    else
        printf("received %llu producer_counted none\n", (unsigned long long)count);
    if (fd >= 0)
        close(fd);
    tachyon_bus_destroy(bus);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "sink") == 0)
        return run_sink(argv[2]);
    if (argc == 3 && strcmp(argv[1], "local") == 0)
        return run_local(strtoull(argv[2], NULL, 10));
    if (argc == 3 && (strcmp(argv[1], "per-message") == 0 || strcmp(argv[1], "batch") == 0))
        return run_stream(strcmp(argv[1], "batch") == 0, strtoull(argv[2], NULL, 10));
    fprintf(stderr, "usage: stream per-message|batch|local COUNT | stream sink PATH\n");
    return 2;
}
