/*
 * consumer.c - the native consumer of the comparison benchmark.
 *
 * One program for every transport, so that what differs between variants is
 * the transport and nothing else. The consumer owns the endpoint (it starts
 * first; the Python producer connects and retries), receives `count`
 * MarketTicks, and for each one runs the same path, on_tick():
 *
 *   receive time = clock_gettime(CLOCK_REALTIME)
 *   latency      = receive time - timestamp at offset 20 (the producer's
 *                  time.time_ns(), also CLOCK_REALTIME)
 *   sequence     = quantity at offset 16, which the producers set to the
 *                  tick's index, so loss, duplication and reordering show.
 *
 * Both fields are read with memcpy: the tick is packed (<8sdIQ4x) and the
 * timestamp is not 8-byte aligned inside it.
 *
 * At the end it prints one line for the driver:
 *   RESULT variant=... transport=... count=... expected=... bad=...
 *          consumer_rate=... p50_ns=... p90_ns=... p99_ns=... p999_ns=... max_ns=...
 * and exits 0 only if every tick arrived once, in order, with 32 bytes.
 *
 * Transports (--transport):
 *   tachyon    tachyon_bus_listen, then acquire_rx_timeout/commit_rx per tick
 *   stream     AF_UNIX SOCK_STREAM; reads whatever is there, splits into ticks
 *   seqpacket  AF_UNIX SOCK_SEQPACKET; one recv per tick
 *   fifo       a named pipe; reads whatever is there, splits into ticks
 *   zmq        ZeroMQ PULL bound to ipc://ENDPOINT; one zmq_msg_recv per tick
 *   shmring    the pure-Python SPSC ring's reader (layout in shm_ring_*)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tachyon.h"
#ifdef HAVE_ZMQ
#include <zmq.h>
#endif

#define TICK_SIZE 32
#define TICK_QTY_OFFSET 16
#define TICK_TS_OFFSET 20
#define POLL_TIMEOUT_MS 100 /* how often a blocked receive looks at the deadline */
#define RX_BATCH 1024       /* tachyon --rx batch: views per drain */

struct options {
    const char *transport;
    const char *endpoint;
    const char *variant;
    uint64_t count;
    int timeout_s;       /* give up (and fail) after this long without finishing */
    uint32_t spin;       /* tachyon: spins before sleeping (the seed uses 10,000) */
    int pure_spin;       /* tachyon: never sleep (tachyon_bus_set_polling_mode) */
    int rx_batch;        /* tachyon: drain_batch + one commit, not one message per call */
    size_t capacity;     /* tachyon ring bytes; shmring slots */
};

struct run {
    int64_t *latency_ns; /* one per expected tick, preallocated */
    uint64_t expected;
    uint64_t received;
    uint64_t bad;        /* wrong size or wrong sequence number */
    struct timespec first, last;
    int64_t deadline_ns; /* CLOCK_MONOTONIC */
};

/* ---- the per-tick path, identical for every transport --------------------- */

static inline int64_t timespec_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static inline void on_tick(struct run *r, const void *data, size_t size)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    const uint8_t *p = data;
    uint64_t sent_ns;
    uint32_t seq;
    memcpy(&sent_ns, p + TICK_TS_OFFSET, sizeof sent_ns);
    memcpy(&seq, p + TICK_QTY_OFFSET, sizeof seq);
    if (r->received >= r->expected) {
        r->bad++; /* more ticks than the producer was asked to send */
        return;
    }
    if (size != TICK_SIZE || seq != (uint32_t)r->received)
        r->bad++;
    if (r->received == 0)
        r->first = now;
    r->last = now;
    r->latency_ns[r->received++] = timespec_ns(&now) - (int64_t)sent_ns;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return timespec_ns(&ts);
}

static int past_deadline(const struct run *r)
{
    if (monotonic_ns() < r->deadline_ns)
        return 0;
    fprintf(stderr, "consumer: timed out with %llu of %llu ticks\n",
            (unsigned long long)r->received, (unsigned long long)r->expected);
    return 1;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* ---- byte-stream transports: stream socket and FIFO ----------------------- */

/*
 * A byte stream has no message boundaries: read what is there and hand every
 * complete tick to on_tick, keeping a partial tick for the next read.
 */
static int drain_byte_stream(struct run *r, int fd)
{
    static uint8_t buf[65536];
    size_t have = 0;
    while (r->received < r->expected) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n == 0)
            break; /* the producer closed */
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
                if (past_deadline(r))
                    return -1;
                continue;
            }
            die("read");
        }
        have += (size_t)n;
        size_t off = 0;
        for (; have - off >= TICK_SIZE; off += TICK_SIZE)
            on_tick(r, buf + off, TICK_SIZE);
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    if (have != 0)
        r->bad++; /* a torn tick at the end */
    return 0;
}

static void set_receive_timeout(int fd)
{
    struct timeval tv = {0, POLL_TIMEOUT_MS * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
        die("setsockopt(SO_RCVTIMEO)");
}

/* Bind a Unix socket of `type` at path, accept one peer, return its fd. */
static int accept_one_unix(const char *path, int type, struct run *r)
{
    int ls = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (ls < 0)
        die("socket");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        fprintf(stderr, "consumer: socket path too long: %s\n", path);
        exit(2);
    }
    strcpy(addr.sun_path, path);
    unlink(path);
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("bind");
    if (listen(ls, 1) != 0)
        die("listen");
    set_receive_timeout(ls); /* accept honours SO_RCVTIMEO too */
    int fd;
    while ((fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC)) < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            die("accept");
        if (past_deadline(r))
            exit(1);
    }
    close(ls);
    unlink(path);
    set_receive_timeout(fd);
    return fd;
}

static int run_stream(struct run *r, const struct options *o)
{
    int fd = accept_one_unix(o->endpoint, SOCK_STREAM, r);
    int rc = drain_byte_stream(r, fd);
    close(fd);
    return rc;
}

static int run_fifo(struct run *r, const struct options *o)
{
    unlink(o->endpoint);
    if (mkfifo(o->endpoint, 0600) != 0)
        die("mkfifo");
    /* O_NONBLOCK so the open does not wait for a writer; then poll reads until
     * the writer has come (a read with no writer yet returns 0, like EOF). */
    int fd = open(o->endpoint, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        die("open fifo");
    uint8_t first[TICK_SIZE];
    size_t have = 0;
    while (have < TICK_SIZE) {
        ssize_t n = read(fd, first + have, TICK_SIZE - have);
        if (n > 0) {
            have += (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            die("read fifo");
        } else {
            if (past_deadline(r))
                return -1;
            usleep(200); /* no writer yet */
        }
    }
    on_tick(r, first, TICK_SIZE);
    /* A writer is there now: switch to blocking reads, like a normal reader. */
    if (fcntl(fd, F_SETFL, 0) != 0)
        die("fcntl");
    int rc = drain_byte_stream(r, fd);
    close(fd);
    unlink(o->endpoint);
    return rc;
}

/* ---- SOCK_SEQPACKET: one message per recv --------------------------------- */

static int run_seqpacket(struct run *r, const struct options *o)
{
    int fd = accept_one_unix(o->endpoint, SOCK_SEQPACKET, r);
    uint8_t buf[256];
    while (r->received < r->expected) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
                if (past_deadline(r))
                    return -1;
                continue;
            }
            die("recv");
        }
        on_tick(r, buf, (size_t)n);
    }
    close(fd);
    return 0;
}

/* ---- tachyon ---------------------------------------------------------------- */

/* Why a receive returned nothing: 0 to keep waiting, 1 to stop, -1 on error. */
static int tachyon_rx_stopped(struct run *r, tachyon_bus_t *bus)
{
    tachyon_error_t err = tachyon_bus_last_error(bus);
    if (err == TACHYON_ERR_TIMEOUT)
        return past_deadline(r) ? 1 : 0;
    if (err == TACHYON_ERR_PEER_DEAD)
        return 1; /* the producer left; the count shows whether anything is missing */
    fprintf(stderr, "consumer: receive: %s\n", tachyon_strerror(err));
    return -1;
}

/* One message per call, as the seed's consumer does. */
static int drain_tachyon_single(struct run *r, const struct options *o, tachyon_bus_t *bus)
{
    while (r->received < r->expected) {
        uint32_t type_id;
        size_t size;
        const void *p = tachyon_acquire_rx_timeout(bus, &type_id, &size, o->spin, POLL_TIMEOUT_MS);
        if (!p) {
            int stop = tachyon_rx_stopped(r, bus);
            if (stop)
                return stop < 0 ? -1 : 0;
            continue;
        }
        on_tick(r, p, size);
        tachyon_commit_rx(bus);
    }
    return 0;
}

/* Everything available per call (--rx batch), released in one commit. */
static int drain_tachyon_batches(struct run *r, const struct options *o, tachyon_bus_t *bus)
{
    static tachyon_msg_view_t views[RX_BATCH];
    while (r->received < r->expected) {
        size_t n = tachyon_drain_batch_timeout(bus, views, RX_BATCH, o->spin, POLL_TIMEOUT_MS);
        if (n == 0) {
            int stop = tachyon_rx_stopped(r, bus);
            if (stop)
                return stop < 0 ? -1 : 0;
            continue;
        }
        for (size_t i = 0; i < n; i++)
            on_tick(r, views[i].ptr, views[i].actual_size);
        tachyon_commit_rx_batch(bus, views, n);
    }
    return 0;
}

static int run_tachyon(struct run *r, const struct options *o)
{
    tachyon_listen_opts_t lo;
    tachyon_listen_opts_init(&lo, o->capacity);
    lo.timeout_ms = o->timeout_s * 1000;
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = tachyon_bus_listen_ex(o->endpoint, &lo, &bus);
    if (err != TACHYON_SUCCESS) {
        fprintf(stderr, "consumer: tachyon_bus_listen_ex(%s): %s\n", o->endpoint,
                tachyon_strerror(err));
        return -1;
    }
    if (o->pure_spin)
        tachyon_bus_set_polling_mode(bus, 1);
    int rc = o->rx_batch ? drain_tachyon_batches(r, o, bus) : drain_tachyon_single(r, o, bus);
    tachyon_bus_destroy(bus);
    return rc;
}

/* ---- ZeroMQ PULL -------------------------------------------------------------- */

#ifdef HAVE_ZMQ
static int run_zmq(struct run *r, const struct options *o)
{
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_PULL);
    if (!ctx || !sock)
        die("zmq_socket");
    int timeout = POLL_TIMEOUT_MS;
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    char url[512];
    snprintf(url, sizeof url, "ipc://%s", o->endpoint);
    unlink(o->endpoint);
    if (zmq_bind(sock, url) != 0) {
        fprintf(stderr, "consumer: zmq_bind(%s): %s\n", url, zmq_strerror(zmq_errno()));
        return -1;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    while (r->received < r->expected) {
        int n = zmq_msg_recv(&msg, sock, 0);
        if (n < 0) {
            if ((zmq_errno() == EAGAIN || zmq_errno() == EINTR) && !past_deadline(r))
                continue;
            break;
        }
        on_tick(r, zmq_msg_data(&msg), zmq_msg_size(&msg));
    }
    zmq_msg_close(&msg);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    unlink(o->endpoint);
    return 0;
}
#else
static int run_zmq(struct run *r, const struct options *o)
{
    (void)r;
    (void)o;
    fprintf(stderr, "consumer: built without libzmq (install libzmq3-dev and rebuild)\n");
    return -1;
}
#endif

/* ---- the pure-Python SPSC ring's reader -------------------------------------- */

/*
 * Layout shared with producers.py (ShmRing): a POSIX shared memory object
 * (what multiprocessing.shared_memory opens) of SHM_RING_DATA + slots * 32
 * bytes. head counts ticks the producer published, tail ticks the consumer
 * released; both free-running, on their own cache lines. The consumer creates
 * and formats it; the producer checks magic and slot size.
 */
#define SHM_RING_MAGIC 0x474E4952u /* "RING" */
#define SHM_RING_HEAD 64
#define SHM_RING_TAIL 128
#define SHM_RING_DATA 192

static int run_shmring(struct run *r, const struct options *o)
{
    uint64_t slots = o->capacity;
    size_t bytes = SHM_RING_DATA + slots * TICK_SIZE;
    shm_unlink(o->endpoint);
    int fd = shm_open(o->endpoint, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        die("shm_open");
    if (ftruncate(fd, (off_t)bytes) != 0)
        die("ftruncate");
    uint8_t *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        die("mmap");
    close(fd);
    _Atomic uint64_t *head = (_Atomic uint64_t *)(base + SHM_RING_HEAD);
    _Atomic uint64_t *tail = (_Atomic uint64_t *)(base + SHM_RING_TAIL);
    uint32_t hdr[4] = {SHM_RING_MAGIC, TICK_SIZE, (uint32_t)slots, 0};
    memcpy(base + 4, hdr + 1, 12);
    /* The magic goes last: the producer waits for it before trusting the rest. */
    atomic_store_explicit((_Atomic uint32_t *)base, SHM_RING_MAGIC, memory_order_release);

    uint64_t pos = 0, idle = 0;
    while (r->received < r->expected) {
        /* Acquire pairs with the producer's head store, which CPython makes
         * after the tick's bytes (x86 keeps stores in order). */
        uint64_t h = atomic_load_explicit(head, memory_order_acquire);
        if (h == pos) {
            if ((++idle & 0xFFFF) == 0 && past_deadline(r))
                break;
            __builtin_ia32_pause();
            continue;
        }
        if (h - pos > slots) {
            fprintf(stderr, "consumer: shmring head %llu is impossible at tail %llu\n",
                    (unsigned long long)h, (unsigned long long)pos);
            break; /* a torn or corrupt head: never read past what exists */
        }
        for (; pos != h; pos++)
            on_tick(r, base + SHM_RING_DATA + (pos & (slots - 1)) * TICK_SIZE, TICK_SIZE);
        /* Release: the slots are read before the producer may overwrite them. */
        atomic_store_explicit(tail, pos, memory_order_release);
    }
    munmap(base, bytes);
    shm_unlink(o->endpoint);
    return 0;
}

/* ---- report -------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static int64_t percentile(const int64_t *sorted, uint64_t n, double pct)
{
    if (n == 0)
        return 0;
    uint64_t rank = (uint64_t)(pct / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

/* Write the latencies (unsorted, in arrival order) for the plots. */
static void dump_latencies(const struct run *r, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        die(path);
    fwrite(r->latency_ns, sizeof(int64_t), r->received, f);
    fclose(f);
}

static void report(struct run *r, const struct options *o)
{
    double span = (double)(timespec_ns(&r->last) - timespec_ns(&r->first)) / 1e9;
    double rate = r->received > 1 && span > 0 ? (double)(r->received - 1) / span : 0.0;
    qsort(r->latency_ns, r->received, sizeof(int64_t), cmp_i64);
    uint64_t n = r->received;
    printf("RESULT variant=%s transport=%s count=%llu expected=%llu bad=%llu consumer_rate=%.0f "
           "p50_ns=%lld p90_ns=%lld p99_ns=%lld p999_ns=%lld max_ns=%lld min_ns=%lld\n",
           o->variant, o->transport, (unsigned long long)n, (unsigned long long)r->expected,
           (unsigned long long)r->bad, rate, (long long)percentile(r->latency_ns, n, 50),
           (long long)percentile(r->latency_ns, n, 90), (long long)percentile(r->latency_ns, n, 99),
           (long long)percentile(r->latency_ns, n, 99.9), (long long)(n ? r->latency_ns[n - 1] : 0),
           (long long)(n ? r->latency_ns[0] : 0));
    fflush(stdout);
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: consumer --features\n"
            "       consumer --transport tachyon|stream|seqpacket|fifo|zmq|shmring\n"
            "                --endpoint PATH --count N [--variant NAME] [--timeout-s S]\n"
            "                [--spin N] [--pure-spin] [--rx single|batch]\n"
            "                [--capacity N]\n"
            "                [--dump FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct options o = {.variant = "unnamed", .timeout_s = 60, .spin = 10000, .capacity = 0};
    const char *dump = NULL;
    if (argc == 2 && !strcmp(argv[1], "--features")) {
#ifdef HAVE_ZMQ
        puts("zmq=1"); /* the driver rebuilds us when libzmq appeared later */
#else
        puts("zmq=0");
#endif
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--pure-spin")) {
            o.pure_spin = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--rx"))
            o.rx_batch = !strcmp(v, "batch");
        else if (!strcmp(a, "--transport"))
            o.transport = v;
        else if (!strcmp(a, "--endpoint"))
            o.endpoint = v;
        else if (!strcmp(a, "--variant"))
            o.variant = v;
        else if (!strcmp(a, "--count"))
            o.count = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--timeout-s"))
            o.timeout_s = atoi(v);
        else if (!strcmp(a, "--spin"))
            o.spin = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--capacity"))
            o.capacity = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--dump"))
            dump = v;
        else
            usage();
    }
    if (!o.transport || !o.endpoint || o.count == 0)
        usage();

    struct run r = {.expected = o.count};
    r.latency_ns = calloc(o.count, sizeof(int64_t));
    if (!r.latency_ns)
        die("calloc");
    /* Touch the array now, not during the measurement. */
    memset(r.latency_ns, 0, o.count * sizeof(int64_t));
    r.deadline_ns = monotonic_ns() + (int64_t)o.timeout_s * 1000000000;

    int rc;
    if (!strcmp(o.transport, "tachyon")) {
        if (!o.capacity)
            o.capacity = 1u << 20;
        rc = run_tachyon(&r, &o);
    } else if (!strcmp(o.transport, "stream")) {
        rc = run_stream(&r, &o);
    } else if (!strcmp(o.transport, "seqpacket")) {
        rc = run_seqpacket(&r, &o);
    } else if (!strcmp(o.transport, "fifo")) {
        rc = run_fifo(&r, &o);
    } else if (!strcmp(o.transport, "zmq")) {
        rc = run_zmq(&r, &o);
    } else if (!strcmp(o.transport, "shmring")) {
        if (!o.capacity)
            o.capacity = 1u << 13; /* as many ticks as tachyon's 1 MiB ring holds */
        if (o.capacity & (o.capacity - 1)) {
            fprintf(stderr, "consumer: --capacity must be a power of two for shmring\n");
            return 2;
        }
        rc = run_shmring(&r, &o);
    } else {
        usage();
        return 2;
    }
    if (dump)
        dump_latencies(&r, dump);
    report(&r, &o);
    if (rc != 0 || r.received != r.expected || r.bad != 0) {
        fprintf(stderr, "consumer: %s: %llu of %llu ticks arrived, %llu bad\n", o.variant,
                (unsigned long long)r.received, (unsigned long long)r.expected,
                (unsigned long long)r.bad);
        return 1;
    }
    return 0;
}
