/*
 * fan.c - fan-out and fan-in against their baselines, in one run:
 *
 *   1. throughput to 1, 2 and 4 blocking readers, 32 B and 1 KiB messages
 *      (every writer copies the whole payload in, every reader reads all of
 *      it):
 *      one fan-out ring (one write per message) vs N separate buses fed by
 *      the same producer (one copy per reader) vs ZeroMQ PUB/SUB over ipc://
 *      (one send, the library copies to each subscriber);
 *   2. one-way latency per reader at a fixed rate: a fan-out to 4 readers vs
 *      a single bus to one reader;
 *   3. fan-in from 2 and 4 producers vs one bus from one producer;
 *   4. the producer's own rate, fan-out vs N buses: after a lap that every
 *      reader has read, a burst that fits the ring, so that the producer
 *      never waits for a reader (on a machine with a core per reader the
 *      readers keep up and this is what bounds the stream; on two cores the
 *      steady state of section 1 is bounded by the readers' share instead).
 *
 * Readers and producers are fork()ed processes (forked before any listener
 * thread exists), blocking (they spin briefly, then sleep). Each figure is
 * the median of REPS runs. Nothing is pinned: on a 2-core machine the readers
 * share the cores with the producer and with each other, which the output
 * says. Environment: FAN_BENCH_MSGS (messages per throughput run, default
 * 200000), FAN_BENCH_REPS (default 3), FAN_BENCH_SECTIONS (the sections to
 * run, default "1234").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_ZMQ
#include <zmq.h>
#endif

#include "bench_common.h"
#include "tachyon.h"

#define MAX_READERS 4
#define SPIN 200
#define END_SEQ UINT64_MAX
#define PROBE_SEQ (UINT64_MAX - 1)
#define LAT_RATE 10000u   /* messages per second in the latency runs */
#define LAT_MSGS 20000u

struct result {
    uint64_t count;
    uint64_t t_last;
    uint64_t p50_ns;
    int ok;
};

static uint64_t n_msgs, reps;

/* Ring size of each fan-out and bus, and (section 4) the lap written before
 * the timed part: readers say they are ready once they have read it. */
static uint64_t ring_bytes = 1 << 20;
static int readers_cpu = -1; /* section 4: the CPU the children are pinned to (-1: none) */
static uint64_t warmup_msgs;
static uint64_t producer_cpu_ns; /* CPU time of the timed part of the producer's loop */

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- Children ------------------------------------------------------------------ */

typedef struct result (*child_fn)(int i, const char *path, size_t size, int go_fd);

struct kids {
    pid_t pid[MAX_READERS];
    int res_fd[MAX_READERS];
    int go_fd[MAX_READERS];
    int ready_fd[MAX_READERS];
    int n;
};

/* Fork n children running fn; each reports one struct result. go_fd: the
 * child reads one byte there before it starts (when the parent says go);
 * ready: the child may write one byte there when it is ready. */
static void spawn(struct kids *k, int n, child_fn fn, const char *paths, size_t path_len, size_t size)
{
    k->n = n;
    for (int i = 0; i < n; i++) {
        int res[2], go[2], ready[2];
        if (pipe(res) || pipe(go) || pipe(ready)) {
            perror("pipe");
            exit(1);
        }
        pid_t pid = fork();
        if (pid == 0) {
            if (readers_cpu >= 0)
                bench_pin(readers_cpu);
            close(res[0]);
            close(go[1]);
            close(ready[0]);
            dup2(ready[1], 100); /* children find their ready pipe at fd 100 */
            struct result r = fn(i, paths + (size_t)i * path_len, size, go[0]);
            if (write(res[1], &r, sizeof(r)) != sizeof(r))
                _exit(2);
            _exit(0);
        }
        close(res[1]);
        close(go[0]);
        close(ready[1]);
        k->pid[i] = pid;
        k->res_fd[i] = res[0];
        k->go_fd[i] = go[1];
        k->ready_fd[i] = ready[0];
    }
}

static void go(struct kids *k)
{
    for (int i = 0; i < k->n; i++)
        if (write(k->go_fd[i], "g", 1) != 1)
            perror("go");
}

static void wait_ready(struct kids *k)
{
    for (int i = 0; i < k->n; i++) {
        char c;
        if (read(k->ready_fd[i], &c, 1) != 1)
            fprintf(stderr, "bench: a child never got ready\n");
    }
}

static int collect(struct kids *k, struct result *out)
{
    int ok = 1;
    for (int i = 0; i < k->n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        if (read(k->res_fd[i], &out[i], sizeof(out[i])) != (ssize_t)sizeof(out[i]))
            ok = 0;
        int st;
        waitpid(k->pid[i], &st, 0);
        ok &= out[i].ok;
        close(k->res_fd[i]);
        close(k->go_fd[i]);
        close(k->ready_fd[i]);
    }
    return ok;
}

static void signal_ready(void)
{
    (void)!write(100, "r", 1);
}

static void wait_go(int fd)
{
    char c;
    (void)!read(fd, &c, 1);
}

/* A reader's bookkeeping: one message seen (its seq and send time). */
struct tally {
    uint64_t count, next, t_last;
    uint64_t *lat;
    size_t nlat;
    int ok;
};

/* What every writer copies in and every reader reads through: the whole
 * payload, so that "one copy per reader" costs what it costs. */
static uint8_t source[1024];
static volatile uint64_t sink;

static void fill(void *slot, size_t size, uint64_t seq, uint64_t now)
{
    uint64_t w[2] = {seq, now};
    memcpy(slot, w, sizeof(w));
    memcpy((uint8_t *)slot + sizeof(w), source, size - sizeof(w));
}

static void read_through(const void *p, size_t size)
{
    uint64_t sum = 0, w;
    for (size_t off = 0; off + 8 <= size; off += 8) {
        memcpy(&w, (const uint8_t *)p + off, 8);
        sum += w;
    }
    sink = sum;
}

static void seen(struct tally *t, const void *p)
{
    uint64_t w[2];
    memcpy(w, p, sizeof(w));
    uint64_t now = bench_now_ns();
    if (w[0] != t->next)
        t->ok = 0;
    t->next = w[0] + 1;
    t->count++;
    t->t_last = now;
    if (t->lat && t->nlat < LAT_MSGS)
        t->lat[t->nlat++] = now - w[1];
}

static struct result finish(struct tally *t)
{
    struct result r = {t->count, t->t_last, 0, t->ok};
    if (t->lat) {
        r.p50_ns = bench_percentile(t->lat, t->nlat, 50);
        free(t->lat);
    }
    return r;
}

static struct tally tally_new(int latency)
{
    struct tally t = {0, 0, 0, NULL, 0, 1};
    if (latency)
        t.lat = calloc(LAT_MSGS, sizeof(uint64_t));
    return t;
}

/* ---- Fan-out ------------------------------------------------------------------- */

static int latency_mode;

static struct result fanout_reader(int i, const char *path, size_t size, int go_fd)
{
    tachyon_fanout_rx_t *rx;
    struct tally t = tally_new(latency_mode);
    if (tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, 20000, &rx) != TACHYON_SUCCESS) {
        t.ok = 0;
        return finish(&t);
    }
    tachyon_fan_msg_t m;
    while (tachyon_fanout_acquire_rx(rx, &m, SPIN, -1) == TACHYON_SUCCESS) {
        read_through(m.ptr, m.size);
        seen(&t, m.ptr);
        tachyon_fanout_commit_rx(rx);
        if (t.count == warmup_msgs)
            signal_ready();
    }
    tachyon_fanout_rx_destroy(rx);
    return finish(&t);
}

/* Send n messages of `size` bytes (seq, send time, then filler). With a
 * rate, message k goes out at start + k / rate. */
static void pace(uint64_t start, uint64_t k, unsigned rate)
{
    if (!rate)
        return;
    uint64_t due = start + k * 1000000000ull / rate;
    while (bench_now_ns() < due)
        ;
}

static void send_fanout(tachyon_fanout_t *fo, size_t size, uint64_t from, uint64_t to, uint64_t t0,
                        unsigned rate)
{
    for (uint64_t s = from; s < to; s++) {
        pace(t0, s - from, rate);
        void *p = tachyon_fanout_acquire_tx(fo, size, -1);
        fill(p, size, s, bench_now_ns()); /* written once for every reader */
        tachyon_fanout_commit_tx(fo, size, 1);
    }
}

static uint64_t run_fanout(int n, size_t size, uint64_t count, unsigned rate, struct result *res)
{
    char path[108];
    bench_socket_path(path, sizeof(path), "fo");
    struct kids k;
    spawn(&k, n, fanout_reader, path, 0, size);
    tachyon_fanout_t *fo;
    if (tachyon_fanout_listen(path, ring_bytes, MAX_READERS, TACHYON_FAN_BLOCK, &fo) != TACHYON_SUCCESS)
        exit(1);
    while (tachyon_fanout_consumers(fo) < (uint32_t)n)
        usleep(1000);
    if (warmup_msgs) {
        send_fanout(fo, size, 0, warmup_msgs, 0, 0);
        wait_ready(&k);
    }
    uint64_t t0 = bench_now_ns(), cpu0 = thread_cpu_ns();
    send_fanout(fo, size, warmup_msgs, warmup_msgs + count, t0, rate);
    producer_cpu_ns = thread_cpu_ns() - cpu0;
    tachyon_fanout_destroy(fo);
    if (!collect(&k, res))
        fprintf(stderr, "bench: a fan-out reader saw a gap or failed\n");
    return t0;
}

/* ---- N separate buses ---------------------------------------------------------------- */

static struct result bus_reader(int i, const char *path, size_t size, int go_fd)
{
    tachyon_bus_t *bus;
    struct tally t = tally_new(latency_mode);
    if (tachyon_bus_listen(path, ring_bytes, &bus) != TACHYON_SUCCESS) {
        t.ok = 0;
        return finish(&t);
    }
    uint32_t type;
    size_t sz;
    const void *p;
    while ((p = tachyon_acquire_rx_blocking(bus, &type, &sz, SPIN)) != NULL) {
        read_through(p, sz);
        seen(&t, p);
        tachyon_commit_rx(bus);
        if (t.count == warmup_msgs)
            signal_ready();
    }
    tachyon_bus_destroy(bus);
    return finish(&t);
}

static void send_buses(tachyon_bus_t **bus, int n, size_t size, uint64_t from, uint64_t to, uint64_t t0,
                       unsigned rate)
{
    for (uint64_t s = from; s < to; s++) {
        pace(t0, s - from, rate);
        uint64_t now = bench_now_ns();
        for (int i = 0; i < n; i++) { /* one copy per reader */
            void *p = tachyon_acquire_tx_blocking(bus[i], size, 100, -1);
            fill(p, size, s, now);
            tachyon_commit_tx(bus[i], size, 1);
        }
    }
}

static uint64_t run_buses(int n, size_t size, uint64_t count, unsigned rate, struct result *res)
{
    char paths[MAX_READERS][108] = {{0}};
    for (int i = 0; i < n; i++)
        bench_socket_path(paths[i], sizeof(paths[i]), "bus");
    struct kids k;
    spawn(&k, n, bus_reader, paths[0], sizeof(paths[0]), size);
    tachyon_bus_t *bus[MAX_READERS];
    for (int i = 0; i < n; i++)
        if (tachyon_bus_connect_timeout(paths[i], 20000, &bus[i]) != TACHYON_SUCCESS)
            exit(1);
    if (warmup_msgs) {
        send_buses(bus, n, size, 0, warmup_msgs, 0, 0);
        for (int i = 0; i < n; i++)
            tachyon_flush(bus[i]);
        wait_ready(&k);
    }
    uint64_t t0 = bench_now_ns(), cpu0 = thread_cpu_ns();
    send_buses(bus, n, size, warmup_msgs, warmup_msgs + count, t0, rate);
    producer_cpu_ns = thread_cpu_ns() - cpu0;
    for (int i = 0; i < n; i++)
        tachyon_bus_destroy(bus[i]);
    if (!collect(&k, res))
        fprintf(stderr, "bench: a bus reader saw a gap or failed\n");
    return t0;
}

/* ---- ZeroMQ PUB/SUB -------------------------------------------------------------------- */

#ifdef HAVE_ZMQ
static struct result zmq_reader(int i, const char *path, size_t size, int go_fd)
{
    struct tally t = tally_new(0);
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int zero = 0;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &zero, sizeof(zero));
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    char ep[128];
    snprintf(ep, sizeof(ep), "ipc://%s", path);
    zmq_connect(sub, ep);
    char *buf = malloc(size + 16);
    int announced = 0;
    for (;;) {
        int len = zmq_recv(sub, buf, size, 0);
        if (len < 16)
            continue;
        uint64_t s;
        memcpy(&s, buf, 8);
        if (s == PROBE_SEQ) {
            if (!announced)
                signal_ready();
            announced = 1;
            continue;
        }
        if (s == END_SEQ)
            break;
        read_through(buf, (size_t)len);
        seen(&t, buf);
    }
    free(buf);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return finish(&t);
}

static uint64_t run_zmq(int n, size_t size, uint64_t count, struct result *res)
{
    char path[108];
    bench_socket_path(path, sizeof(path), "zmq");
    struct kids k;
    spawn(&k, n, zmq_reader, path, 0, size);
    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_PUB);
    int zero = 0;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &zero, sizeof(zero)); /* queue, never drop */
    char ep[128];
    snprintf(ep, sizeof(ep), "ipc://%s", path);
    zmq_bind(pub, ep);
    /* The slow-joiner problem: probe until every subscriber has one. */
    char *buf = calloc(1, size);
    uint64_t probe = PROBE_SEQ;
    memcpy(buf, &probe, 8);
    int announced[MAX_READERS] = {0}, ready = 0;
    while (ready < n) {
        zmq_send(pub, buf, size, 0);
        usleep(1000);
        for (int i = 0; i < n; i++) {
            struct pollfd p = {.fd = k.ready_fd[i], .events = POLLIN};
            char c;
            if (!announced[i] && poll(&p, 1, 0) == 1 && read(k.ready_fd[i], &c, 1) == 1) {
                announced[i] = 1;
                ready++;
            }
        }
    }
    uint64_t t0 = bench_now_ns();
    for (uint64_t s = 0; s < count; s++) {
        fill(buf, size, s, bench_now_ns());
        zmq_send(pub, buf, size, 0);
    }
    uint64_t end = END_SEQ;
    memcpy(buf, &end, 8);
    zmq_send(pub, buf, size, 0);
    if (!collect(&k, res))
        fprintf(stderr, "bench: a ZeroMQ reader saw a gap or failed\n");
    free(buf);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    return t0;
}
#endif

/* ---- Fan-in ------------------------------------------------------------------------------ */

static uint64_t per_producer;

static struct result fanin_producer(int i, const char *path, size_t size, int go_fd)
{
    struct result r = {0, 0, 0, 1};
    tachyon_bus_t *bus;
    tachyon_error_t err = i < 0 ? TACHYON_SUCCESS : tachyon_fanin_connect(path, 20000, NULL, &bus);
    if (err != TACHYON_SUCCESS) {
        r.ok = 0;
        return r;
    }
    signal_ready();
    wait_go(go_fd);
    for (uint64_t s = 0; s < per_producer; s++) {
        uint64_t *p = tachyon_acquire_tx_blocking(bus, size, 100, -1);
        p[0] = s;
        p[1] = 0;
        tachyon_commit_tx(bus, size, 1);
    }
    tachyon_bus_destroy(bus);
    return r;
}

static double run_fanin(int n, size_t size, uint64_t total)
{
    char path[108];
    bench_socket_path(path, sizeof(path), "fi");
    per_producer = total / (uint64_t)n;
    struct kids k;
    spawn(&k, n, fanin_producer, path, 0, size);
    tachyon_fanin_t *fi;
    if (tachyon_fanin_listen(path, 1 << 20, MAX_READERS, &fi) != TACHYON_SUCCESS)
        exit(1);
    wait_ready(&k);
    uint64_t t0 = bench_now_ns(), got = 0, t_last = t0;
    go(&k);
    tachyon_fan_msg_t m;
    int ended = 0;
    while (ended < n) {
        tachyon_error_t err = tachyon_fanin_acquire_rx(fi, &m, SPIN, 60000);
        if (err == TACHYON_SUCCESS) {
            got++;
            t_last = bench_now_ns();
            tachyon_fanin_commit_rx(fi);
        } else if (err == TACHYON_ERR_PEER_CLOSED || err == TACHYON_ERR_PEER_DEAD) {
            ended++;
        } else {
            fprintf(stderr, "bench: fan-in: %s\n", tachyon_strerror(err));
            break;
        }
    }
    struct result res[MAX_READERS];
    collect(&k, res);
    tachyon_fanin_destroy(fi);
    if (got != per_producer * (uint64_t)n)
        fprintf(stderr, "bench: fan-in got %llu of %llu\n", (unsigned long long)got,
                (unsigned long long)(per_producer * (uint64_t)n));
    return (double)got / ((double)(t_last - t0) / 1e9);
}

static struct result bus_producer(int i, const char *path, size_t size, int go_fd)
{
    struct result r = {0, 0, 0, 1};
    tachyon_bus_t *bus;
    if (tachyon_bus_connect_timeout(path, 20000, &bus) != TACHYON_SUCCESS) {
        r.ok = 0;
        return r;
    }
    signal_ready();
    wait_go(go_fd);
    for (uint64_t s = 0; s < per_producer; s++) {
        uint64_t *p = tachyon_acquire_tx_blocking(bus, size, 100, -1);
        p[0] = s;
        tachyon_commit_tx(bus, size, 1);
    }
    tachyon_bus_destroy(bus);
    return r;
}

static double run_one_bus_in(size_t size, uint64_t total)
{
    char path[108];
    bench_socket_path(path, sizeof(path), "bi");
    per_producer = total;
    struct kids k;
    spawn(&k, 1, bus_producer, path, 0, size);
    tachyon_bus_t *bus;
    if (tachyon_bus_listen(path, 1 << 20, &bus) != TACHYON_SUCCESS)
        exit(1);
    wait_ready(&k);
    uint64_t t0 = bench_now_ns(), got = 0, t_last = t0;
    go(&k);
    uint32_t type;
    size_t sz;
    while (tachyon_acquire_rx_blocking(bus, &type, &sz, SPIN) != NULL) {
        got++;
        t_last = bench_now_ns();
        tachyon_commit_rx(bus);
    }
    struct result res[1];
    collect(&k, res);
    tachyon_bus_destroy(bus);
    return (double)got / ((double)(t_last - t0) / 1e9);
}

/* ---- Figures ------------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return v[n / 2];
}

/* Messages per second each reader got: count / (its last message - start). */
static double per_reader_rate(struct result *res, int n, uint64_t t0)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double secs = (double)(res[i].t_last - t0) / 1e9;
        if (secs > worst)
            worst = secs;
    }
    return worst > 0 ? (double)res[0].count / worst : 0;
}

enum transport { T_FAN, T_BUSES, T_ZMQ };

static double throughput(enum transport t, int n, size_t size)
{
    double v[16];
    struct result res[MAX_READERS];
    for (uint64_t r = 0; r < reps && r < 16; r++) {
        uint64_t t0 = 0;
        if (t == T_FAN)
            t0 = run_fanout(n, size, n_msgs, 0, res);
        else if (t == T_BUSES)
            t0 = run_buses(n, size, n_msgs, 0, res);
#ifdef HAVE_ZMQ
        else
            t0 = run_zmq(n, size, n_msgs, res);
#endif
        v[r] = per_reader_rate(res, n, t0);
    }
    return median(v, reps < 16 ? reps : 16);
}

static const size_t sizes[2] = {32, 1024};
static const int readers[3] = {1, 2, 4};

/* Section 4: the producer's messages per second of its own CPU time over a
 * burst of `burst` messages after a lap of the ring every reader has read
 * (median of the runs). The producer is pinned to CPU 0 and the readers
 * to CPU 1, so that the producer has a core of its own, as on a machine with
 * a core per process; it is measured in CPU time, which leaves out what
 * the machine's other work takes from it. */
#define BURST_RING (256ull << 20)

static double producer_rate(enum transport t, int n, size_t size, uint64_t burst)
{
    double v[16];
    struct result res[MAX_READERS];
    for (uint64_t r = 0; r < reps && r < 16; r++) {
        if (t == T_FAN)
            run_fanout(n, size, burst, 0, res);
        else
            run_buses(n, size, burst, 0, res);
        v[r] = (double)burst / ((double)producer_cpu_ns / 1e9);
    }
    return median(v, reps < 16 ? reps : 16);
}

static void producer_rates(void)
{
    printf("\n4. The producer's own rate, messages per second of its CPU time (what it sends with a core of its\n"
           "   own): after a lap of a %llu MiB ring that every reader has read, a burst of 9/10 of a ring, so that\n"
           "   it never waits for a reader (readers blocking, reading as it goes; waking them is counted)\n",
           (unsigned long long)(BURST_RING >> 20));
    cpu_set_t all;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || sched_getaffinity(0, sizeof(all), &all) != 0 || bench_pin(0) != 0) {
        printf("   (skipped: it needs two CPUs to pin the producer and the readers apart)\n");
        return;
    }
    readers_cpu = 1;
    printf("   the producer is pinned to CPU 0, the readers share CPU 1\n");
    printf("%-6s %-7s %14s %14s %10s\n", "size", "readers", "fan-out", "N buses", "fan/buses");
    ring_bytes = BURST_RING;
    for (int si = 0; si < 2; si++) {
        uint64_t slot = (64 + sizes[si] + 63) & ~(uint64_t)63;
        warmup_msgs = BURST_RING / slot;
        uint64_t burst = warmup_msgs * 9 / 10;
        for (int ri = 0; ri < 3; ri++) {
            double fan = producer_rate(T_FAN, readers[ri], sizes[si], burst);
            double buses = producer_rate(T_BUSES, readers[ri], sizes[si], burst);
            printf("%-6zu %-7d %14.0f %14.0f %9.2fx\n", sizes[si], readers[ri], fan, buses, fan / buses);
            printf("RESULT fan_producer size=%zu readers=%d fanout=%.0f buses=%.0f\n", sizes[si], readers[ri], fan,
                   buses);
            fflush(stdout);
        }
    }
    ring_bytes = 1 << 20;
    warmup_msgs = 0;
    readers_cpu = -1;
    sched_setaffinity(0, sizeof(all), &all);
}

static void print_load(void)
{
    double l1 = 0, l5 = 0, l15 = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) != 3)
            l1 = l5 = l15 = 0;
        fclose(f);
    }
    printf("load average: %.2f %.2f %.2f\n", l1, l5, l15);
}

static void fanout_throughputs(void)
{
    printf("1. Fan-out throughput, messages/s delivered to each reader (every reader gets every message;\n"
           "   the producer copies each payload in: once for the fan-out, once per bus; readers read all of it)\n");
    printf("%-6s %-7s %14s %14s %14s %10s %10s\n", "size", "readers", "fan-out", "N buses", "ZeroMQ", "fan/buses",
           "fan/zmq");
    for (int si = 0; si < 2; si++) {
        for (int ri = 0; ri < 3; ri++) {
            double fan = throughput(T_FAN, readers[ri], sizes[si]);
            double buses = throughput(T_BUSES, readers[ri], sizes[si]);
#ifdef HAVE_ZMQ
            double zmq = throughput(T_ZMQ, readers[ri], sizes[si]);
#else
            double zmq = 0;
#endif
            printf("%-6zu %-7d %14.0f %14.0f %14.0f %9.2fx %9.2fx\n", sizes[si], readers[ri], fan, buses, zmq,
                   fan / buses, zmq > 0 ? fan / zmq : 0.0);
            printf("RESULT fan_throughput size=%zu readers=%d fanout=%.0f buses=%.0f zmq=%.0f\n", sizes[si],
                   readers[ri], fan, buses, zmq);
            fflush(stdout);
        }
    }

}

static void fanout_latencies(void)
{
    printf("\n2. One-way latency at %u messages/s, 32 B, p50 per reader (median of the runs)\n", LAT_RATE);
    latency_mode = 1;
    struct result res[MAX_READERS];
    double fan_p50[MAX_READERS][16], bus_p50[16];
    for (uint64_t r = 0; r < reps && r < 16; r++) {
        run_fanout(4, 32, LAT_MSGS, LAT_RATE, res);
        for (int i = 0; i < 4; i++)
            fan_p50[i][r] = (double)res[i].p50_ns / 1000.0;
        run_buses(1, 32, LAT_MSGS, LAT_RATE, res);
        bus_p50[r] = (double)res[0].p50_ns / 1000.0;
    }
    latency_mode = 0;
    double bus_lat = median(bus_p50, reps < 16 ? reps : 16);
    printf("single bus, 1 reader: p50 %.1f us\n", bus_lat);
    for (int i = 0; i < 4; i++) {
        double l = median(fan_p50[i], reps < 16 ? reps : 16);
        printf("fan-out reader %d of 4: p50 %.1f us (%.2fx the single bus)\n", i, l, l / bus_lat);
        printf("RESULT fan_latency reader=%d p50_us=%.1f bus_p50_us=%.1f\n", i, l, bus_lat);
    }

}

static void fanin_throughputs(void)
{
    printf("\n3. Fan-in throughput, 32 B, messages/s received by the one reader\n");
    double one[16], two[16], four[16];
    for (uint64_t r = 0; r < reps && r < 16; r++) {
        one[r] = run_one_bus_in(32, n_msgs);
        two[r] = run_fanin(2, 32, n_msgs);
        four[r] = run_fanin(4, 32, n_msgs);
    }
    size_t nr = reps < 16 ? reps : 16;
    double b1 = median(one, nr), f2 = median(two, nr), f4 = median(four, nr);
    printf("one bus, 1 producer:   %12.0f\n", b1);
    printf("fan-in, 2 producers:   %12.0f (%.2fx one bus)\n", f2, f2 / b1);
    printf("fan-in, 4 producers:   %12.0f (%.2fx one bus)\n", f4, f4 / b1);
    printf("RESULT fan_in bus=%.0f fanin2=%.0f fanin4=%.0f\n", b1, f2, f4);

}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    n_msgs = bench_env_u64("FAN_BENCH_MSGS", 200000);
    reps = bench_env_u64("FAN_BENCH_REPS", 3);
    if (reps == 0)
        reps = 1;
    for (size_t i = 0; i < sizeof(source); i++)
        source[i] = (uint8_t)(i * 7);
    bench_print_machine();
    print_load();
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("readers and producers are separate processes, blocking (spin %d, then sleep), not pinned;\n", SPIN);
    if (cores <= 4)
        printf("note: %ld cores: with 2 or 4 readers they share the cores with the producer and each other\n",
               cores);
    printf("each figure: the median of %llu runs of %llu messages\n\n", (unsigned long long)reps,
           (unsigned long long)n_msgs);

    const char *sections = getenv("FAN_BENCH_SECTIONS");
    if (!sections || !*sections)
        sections = "1234";
    if (strchr(sections, '1'))
        fanout_throughputs();
    if (strchr(sections, '2'))
        fanout_latencies();
    if (strchr(sections, '3'))
        fanin_throughputs();
    if (strchr(sections, '4'))
        producer_rates();
    print_load();
    return 0;
}
