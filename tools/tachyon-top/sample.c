/*
 * sample.c - each discovered segment read from the outside and turned into a
 * row: which process produces and which consumes, whether they are still
 * there, how full the ring is, how far the reader lags, and rates against
 * the previous sample.
 *
 * What the segment says is untrusted: tachyon_segment_inspect checks the
 * header (ABI, seals, capacity) and reads each side's counters through their
 * seqlock a bounded number of times; what it returns is then checked here
 * against what a real bus can hold. A segment that fails either check is
 * skipped with the reason, and its values are shown nowhere.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "top.h"

#define SLOT_MIN 64u                        /* the smallest slot a message takes */
#define CLOCK_SLACK_NS 60000000000ull       /* a stored timestamp may run ahead by this much */
#define PID_MAX_DEFAULT 4194304

/* ---- words ------------------------------------------------------------------ */

const char *bus_status_name(enum bus_status st)
{
    switch (st) {
    case BUS_ALIVE: return "alive";
    case BUS_WAITING: return "waiting";
    case BUS_GONE: return "gone";
    case BUS_FATAL: return "fatal";
    }
    return "?";
}

const char *side_live_name(enum side_live live)
{
    switch (live) {
    case SIDE_UNKNOWN: return "unknown";
    case SIDE_ATTACHED: return "attached";
    case SIDE_UNSEEN: return "running";
    case SIDE_DETACHED: return "detached";
    case SIDE_ENDED: return "ended";
    }
    return "?";
}

const char *state_name(uint32_t state)
{
    switch (state) {
    case TACHYON_STATE_UNINITIALIZED: return "UNINITIALIZED";
    case TACHYON_STATE_INITIALIZING: return "INITIALIZING";
    case TACHYON_STATE_READY: return "READY";
    case TACHYON_STATE_DISCONNECTED: return "DISCONNECTED";
    case TACHYON_STATE_FATAL_ERROR: return "FATAL_ERROR";
    default: return "UNKNOWN";
    }
}

const char *sleeper_name(uint32_t word)
{
    switch (word) {
    case 0: return "awake";
    case 1: return "asleep";
    case 2: return "spin";
    case 3: return "evloop";
    default: return "?";
    }
}

/* ---- clocks and processes -------------------------------------------------- */

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static long pid_max(void)
{
    static long cached;
    if (cached)
        return cached;
    cached = PID_MAX_DEFAULT;
    FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
    if (f) {
        long v;
        if (fscanf(f, "%ld", &v) == 1 && v > 0)
            cached = v;
        fclose(f);
    }
    return cached;
}

/* 'R', 'S', 'Z', ... from /proc/<pid>/stat; 0 when there is no such process. */
static char process_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* the name may hold anything, even ')' */
    return paren && paren[1] == ' ' ? paren[2] : '?';
}

static int can_read_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    return access(path, R_OK | X_OK) == 0;
}

static void read_comm_of(pid_t pid, char out[TOP_COMM_MAX])
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(out, TOP_COMM_MAX, f))
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

/* ---- growing the sample ------------------------------------------------------ */

static void *grow_array(void *v, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return v;
    size_t cap2 = *cap ? *cap * 2 : 16;
    void *p = realloc(v, cap2 * elem);
    if (p)
        *cap = cap2;
    return p;
}

static void add_skip(struct sample *s, const struct segment *seg, const char *reason)
{
    struct skipped *v = grow_array(s->skips, &s->cap_skips, s->n_skips + 1, sizeof(*v));
    if (!v)
        return;
    s->skips = v;
    struct skipped *k = &s->skips[s->n_skips++];
    k->pid = seg->open_pid;
    k->fd = seg->open_fd;
    snprintf(k->name, sizeof k->name, "%s", seg->name);
    snprintf(k->reason, sizeof k->reason, "%s", reason);
}

/* ---- reading one segment -------------------------------------------------------- */

enum read_result { READ_OK, READ_IGNORE, READ_SKIP };

static const char *inspect_reason(tachyon_error_t err)
{
    switch (err) {
    case TACHYON_ERR_ABI_MISMATCH: return "not a Tachyon segment: no valid ABI v4 header";
    case TACHYON_ERR_SEAL: return "not sealed against shrinking: reading it could fault";
    case TACHYON_ERR_INVALID_SZ: return "its header claims a capacity that is invalid or larger than the segment";
    case TACHYON_ERR_MAP: return "it could not be mapped";
    default: return tachyon_strerror(err);
    }
}

/* Open the segment through its holder's descriptor and inspect it. */
static enum read_result read_segment(const struct segment *seg, tachyon_segment_info_t *info, char *reason,
                                     size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)seg->open_pid, seg->open_fd);
    /* O_NONBLOCK: should the descriptor have been replaced by a FIFO since
     * the scan, opening it must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ESRCH)
            return READ_IGNORE; /* closed, or its process ended, since the scan */
        snprintf(reason, cap, "cannot open %s: %s", path, strerror(errno));
        return seg->prefixed ? READ_SKIP : READ_IGNORE;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != seg->dev || st.st_ino != seg->ino) {
        close(fd);
        return READ_IGNORE; /* the descriptor number now names another file */
    }
    tachyon_error_t err = tachyon_segment_inspect(fd, info);
    close(fd);
    if (err == TACHYON_SUCCESS)
        return READ_OK;
    snprintf(reason, cap, "%s", inspect_reason(err));
    /* Any program may use memfds: one that is not named like ours and does
     * not even start like a segment is none of our business. */
    if (!seg->prefixed && (err == TACHYON_ERR_ABI_MISMATCH || err == TACHYON_ERR_SEAL || err == TACHYON_ERR_SYSTEM))
        return READ_IGNORE;
    return READ_SKIP;
}

static uint64_t add_saturating(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

/* One side's stored counters against what the ring can have carried: each
 * message takes at least 64 bytes of ring, and `ring_bytes` (head or tail)
 * can be behind the counts by at most one ring. */
static int side_plausible(const char *role, const tachyon_side_info_t *side, uint64_t ring_bytes, uint64_t capacity,
                          uint64_t now, char *reason, size_t cap)
{
    if (!side->valid)
        return 1;
    uint64_t carried = add_saturating(ring_bytes, capacity);
    if (side->pid <= 0 || side->pid > pid_max())
        snprintf(reason, cap, "%s pid %d is not a process id", role, (int)side->pid);
    else if (side->messages > carried / SLOT_MIN)
        snprintf(reason, cap, "%s counted %llu messages; %llu bytes of ring carry at most %llu", role,
                 (unsigned long long)side->messages, (unsigned long long)carried,
                 (unsigned long long)(carried / SLOT_MIN));
    else if (side->bytes > carried)
        snprintf(reason, cap, "%s counted %llu payload bytes, more than the %llu bytes of ring carried", role,
                 (unsigned long long)side->bytes, (unsigned long long)carried);
    else if (side->fill_max > capacity)
        snprintf(reason, cap, "%s saw %llu bytes in a ring of %llu", role, (unsigned long long)side->fill_max,
                 (unsigned long long)capacity);
    else if (side->updated_ns > now + CLOCK_SLACK_NS || side->active_ns > now + CLOCK_SLACK_NS)
        snprintf(reason, cap, "%s counters are stamped %.0f s in the future", role,
                 ((double)(side->updated_ns > side->active_ns ? side->updated_ns : side->active_ns) - (double)now) /
                     1e9);
    else
        return 1;
    return 0;
}

/* Does the header describe a ring that can exist? The reader never passes
 * what was written, but the stored head may be behind the real one by at
 * most one ring (a producer of this project stores it lazily between two
 * processes of this project, the published library every 32 commits): tail
 * may lead head by up to the capacity, head may lead tail by up to the
 * capacity, no more. */
static int info_plausible(const tachyon_segment_info_t *info, uint64_t now, char *reason, size_t cap)
{
    uint64_t ahead = info->head - info->tail, behind = info->tail - info->head; /* free-running */
    if (ahead > info->capacity && behind > info->capacity) {
        if (behind < ahead)
            snprintf(reason, cap, "tail %llu is %llu bytes past head %llu, more than the %llu-byte ring",
                     (unsigned long long)info->tail, (unsigned long long)behind, (unsigned long long)info->head,
                     (unsigned long long)info->capacity);
        else
            snprintf(reason, cap, "head %llu is %llu bytes past tail %llu, more than the %llu-byte ring holds",
                     (unsigned long long)info->head, (unsigned long long)ahead, (unsigned long long)info->tail,
                     (unsigned long long)info->capacity);
        return 0;
    }
    if (info->consumer_sleeping > 3) {
        snprintf(reason, cap, "sleeper word %u is none of 0-3", info->consumer_sleeping);
        return 0;
    }
    return side_plausible("producer", &info->producer, info->head, info->capacity, now, reason, cap) &&
           side_plausible("consumer", &info->consumer, info->tail, info->capacity, now, reason, cap);
}

/* ---- roles, liveness, status ------------------------------------------------------ */

static const struct holder *holder_of(const struct segment *seg, pid_t pid)
{
    for (size_t i = 0; i < seg->n_holders; i++)
        if (seg->holders[i].pid == pid)
            return &seg->holders[i];
    return NULL;
}

/* The one holder that is not `pid` (NULL: none, or more than one). */
static const struct holder *other_holder(const struct segment *seg, pid_t pid)
{
    const struct holder *found = NULL;
    for (size_t i = 0; i < seg->n_holders; i++) {
        if (seg->holders[i].pid == pid)
            continue;
        if (found)
            return NULL;
        found = &seg->holders[i];
    }
    return found;
}

/* A side that never stored its counters: if the other side did, the side
 * is whoever else holds the segment (the same process when it holds two
 * descriptors: both ends in one process). */
static void infer_side(struct side_view *side, const struct side_view *other, const struct segment *seg)
{
    if (side->pid || !other->info.valid)
        return;
    const struct holder *h = other_holder(seg, other->pid);
    if (!h) {
        const struct holder *same = holder_of(seg, other->pid);
        if (same && same->n_fds >= 2)
            h = same;
    }
    if (h) {
        side->pid = h->pid;
        side->inferred = 1;
    }
}

static void classify_side(struct side_view *side, const struct segment *seg)
{
    if (!side->pid) {
        side->live = SIDE_UNKNOWN;
        return;
    }
    const struct holder *h = holder_of(seg, side->pid);
    if (h) {
        side->live = SIDE_ATTACHED;
        snprintf(side->comm, sizeof side->comm, "%s", h->comm);
        return;
    }
    char state = process_state(side->pid);
    if (state == 0 || state == 'Z' || state == 'X') {
        if (state == 0 && kill(side->pid, 0) != 0 && errno == EPERM)
            side->live = SIDE_UNSEEN; /* hidden from us: /proc mounted with hidepid */
        else
            side->live = SIDE_ENDED;
        return;
    }
    read_comm_of(side->pid, side->comm);
    side->live = can_read_fds(side->pid) ? SIDE_DETACHED : SIDE_UNSEEN;
}

/* Is a listener waiting at the socket path? Only looked at, never connected
 * to (a connection would be taken for the peer). Relative paths are the
 * holder's, resolved through its working directory. */
static int socket_present(const struct segment *seg)
{
    const char *path = segment_path(seg);
    char buf[TOP_NAME_MAX + 64];
    if (path[0] != '/' && seg->n_holders > 0) {
        snprintf(buf, sizeof buf, "/proc/%d/cwd/%s", (int)seg->holders[0].pid, path);
        path = buf;
    }
    struct stat st;
    return path[0] != '\0' && stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Processes attached: the holders, and a side whose process runs where we
 * cannot look (another user's). */
static size_t processes_attached(const struct bus_row *row)
{
    size_t n = row->seg.n_holders;
    if (row->producer.live == SIDE_UNSEEN)
        n++;
    if (row->consumer.live == SIDE_UNSEEN && row->consumer.pid != row->producer.pid)
        n++;
    return n;
}

static int side_left(const struct side_view *side, const char *role, uint32_t state, char *detail, size_t cap)
{
    if (side->live == SIDE_ENDED)
        snprintf(detail, cap, "the %s (pid %d) ended%s", role, (int)side->pid,
                 state == TACHYON_STATE_READY ? " without closing the bus" : "");
    else if (side->live == SIDE_DETACHED)
        snprintf(detail, cap, "the %s (pid %d %s) no longer holds the bus", role, (int)side->pid, side->comm);
    else
        return 0;
    return 1;
}

static void decide_status(struct bus_row *row)
{
    const tachyon_segment_info_t *info = &row->info;
    size_t cap = sizeof row->detail;
    row->detail[0] = '\0';
    if (info->state == TACHYON_STATE_FATAL_ERROR) {
        row->status = BUS_FATAL;
        snprintf(row->detail, cap, "a side found the segment corrupt and marked it FATAL_ERROR");
        return;
    }
    row->status = BUS_GONE;
    if (side_left(&row->producer, "producer", info->state, row->detail, cap) ||
        side_left(&row->consumer, "consumer", info->state, row->detail, cap))
        return;
    if (info->state == TACHYON_STATE_DISCONNECTED) {
        snprintf(row->detail, cap, "a side closed the bus");
        return;
    }
    size_t procs = processes_attached(row);
    if (procs >= 2) {
        row->status = BUS_ALIVE;
        return;
    }
    const struct holder *h = row->seg.n_holders ? &row->seg.holders[0] : NULL;
    int reported = info->producer.valid || info->consumer.valid;
    if (info->producer.valid && info->consumer.valid && info->producer.pid == info->consumer.pid) {
        row->status = BUS_ALIVE; /* both ends in one process */
    } else if (!reported && socket_present(&row->seg)) {
        row->status = BUS_WAITING;
        snprintf(row->detail, cap, "listening for a peer");
    } else if (h && h->n_fds >= 2) {
        row->status = BUS_ALIVE; /* both ends in one process, not reported yet */
    } else if (h) {
        snprintf(row->detail, cap, "only pid %d (%s) holds the bus: its peer is gone", (int)h->pid, h->comm);
    } else {
        snprintf(row->detail, cap, "no process holds the bus");
    }
}

/* ---- the figures ------------------------------------------------------------------- */

static void compute_figures(struct bus_row *row)
{
    const tachyon_segment_info_t *info = &row->info;
    /* Checked: at most the capacity. A tail past the stored head means the
     * reader has caught up with a head stored late: nothing known unread. */
    row->fill_bytes = info->head - info->tail <= info->capacity ? info->head - info->tail : 0;
    row->fill_pct = info->capacity ? 100.0 * (double)row->fill_bytes / (double)info->capacity : 0;
    const tachyon_side_info_t *p = &info->producer, *c = &info->consumer;
    /* Each side stores its counts now and then: the producer's may be behind
     * the consumer's. What was sent is at least the larger of the two. */
    row->messages = p->valid ? p->messages : 0;
    row->bytes = p->valid ? p->bytes : 0;
    if (c->valid && c->messages > row->messages)
        row->messages = c->messages;
    if (c->valid && c->bytes > row->bytes)
        row->bytes = c->bytes;
    row->have_lag = p->valid && c->valid;
    row->lag_messages = row->have_lag && p->messages > c->messages ? p->messages - c->messages : 0;
}

static const struct bus_row *find_row(const struct sample *s, const struct segment *seg)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n_rows; i++)
        if (s->rows[i].seg.dev == seg->dev && s->rows[i].seg.ino == seg->ino &&
            strcmp(s->rows[i].seg.name, seg->name) == 0)
            return &s->rows[i];
    return NULL;
}

static void compute_rates(struct bus_row *row, const struct sample *prev, double window_s)
{
    const struct bus_row *before = find_row(prev, &row->seg);
    row->have_rate = 0;
    /* Counts that went backwards: another segment reused the inode. */
    if (!before || window_s <= 0 || row->messages < before->messages || row->bytes < before->bytes)
        return;
    row->have_rate = 1;
    row->msg_rate = (double)(row->messages - before->messages) / window_s;
    row->byte_rate = (double)(row->bytes - before->bytes) / window_s;
}

static void make_row(struct bus_row *row, struct segment *seg, const tachyon_segment_info_t *info)
{
    memset(row, 0, sizeof(*row));
    row->seg = *seg;
    seg->holders = NULL; /* the row owns them now */
    seg->n_holders = seg->cap_holders = 0;
    row->info = *info;
    row->producer.info = info->producer;
    row->consumer.info = info->consumer;
    row->producer.pid = info->producer.valid ? info->producer.pid : 0;
    row->consumer.pid = info->consumer.valid ? info->consumer.pid : 0;
    infer_side(&row->producer, &row->consumer, &row->seg);
    infer_side(&row->consumer, &row->producer, &row->seg);
    classify_side(&row->producer, &row->seg);
    classify_side(&row->consumer, &row->seg);
    decide_status(row);
    compute_figures(row);
}

int sample_take(struct sample *out, const struct sample *prev, int all_users)
{
    memset(out, 0, sizeof(*out));
    struct scan scan = {0};
    scan.all_users = all_users;
    scan.uid = getuid();
    out->uid = scan.uid;
    out->all_users = all_users;
    if (discover(&scan) != 0)
        return -1;
    out->mono_ns = mono_ns();
    out->real_ns = clock_ns(CLOCK_REALTIME);
    out->procs_seen = scan.n_procs;
    out->window_s = prev ? (double)(out->mono_ns - prev->mono_ns) / 1e9 : 0;
    enum read_result *results = calloc(scan.n_segs ? scan.n_segs : 1, sizeof(*results));
    tachyon_segment_info_t *infos = calloc(scan.n_segs ? scan.n_segs : 1, sizeof(*infos));
    struct segment **lonely = calloc(scan.n_segs ? scan.n_segs : 1, sizeof(*lonely));
    if (!results || !infos || !lonely) {
        free(results), free(infos), free(lonely);
        scan_free(&scan);
        return -1;
    }
    size_t n_lonely = 0;
    for (size_t i = 0; i < scan.n_segs; i++) {
        struct segment *seg = &scan.segs[i];
        char reason[TOP_REASON_MAX];
        results[i] = read_segment(seg, &infos[i], reason, sizeof reason);
        if (results[i] == READ_OK && !info_plausible(&infos[i], out->mono_ns, reason, sizeof reason))
            results[i] = READ_SKIP;
        if (results[i] == READ_SKIP)
            add_skip(out, seg, reason);
        if (results[i] == READ_OK && seg->n_holders < 2)
            lonely[n_lonely++] = seg;
    }
    /* A bus with one holder: is its peer there with the descriptor closed? */
    discover_mappers(&scan, lonely, n_lonely);
    for (size_t i = 0; i < scan.n_segs; i++) {
        if (results[i] != READ_OK)
            continue;
        struct bus_row *rows = grow_array(out->rows, &out->cap_rows, out->n_rows + 1, sizeof(*rows));
        if (!rows)
            break;
        out->rows = rows;
        struct bus_row *row = &out->rows[out->n_rows++];
        make_row(row, &scan.segs[i], &infos[i]);
        compute_rates(row, prev, out->window_s);
    }
    free(results);
    free(infos);
    free(lonely);
    scan_free(&scan);
    return 0;
}

void sample_free(struct sample *s)
{
    for (size_t i = 0; i < s->n_rows; i++)
        free(s->rows[i].seg.holders);
    free(s->rows);
    free(s->skips);
    memset(s, 0, sizeof(*s));
}

const struct bus_row *sample_find(const struct sample *s, const char *path)
{
    for (size_t i = 0; i < s->n_rows; i++)
        if (strcmp(segment_path(&s->rows[i].seg), path) == 0 || strcmp(s->rows[i].seg.name, path) == 0)
            return &s->rows[i];
    return NULL;
}

/* ---- sorting --------------------------------------------------------------------------- */

static const char *const sort_names[SORT_COUNT] = {"path", "producer", "consumer", "msgs", "rate",
                                                   "mbps", "fill", "lag", "status"};

const char *sort_key_name(enum sort_key k)
{
    return k < SORT_COUNT ? sort_names[k] : "?";
}

int sort_key_parse(const char *name, enum sort_key *out)
{
    for (int k = 0; k < SORT_COUNT; k++)
        if (strcmp(name, sort_names[k]) == 0) {
            *out = (enum sort_key)k;
            return 0;
        }
    return -1;
}

static enum sort_key current_key;
static int current_reverse;

static int cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static int cmp_double(double a, double b)
{
    return (a > b) - (a < b);
}

/* Problems first: fatal, gone, waiting, alive. */
static int status_rank(enum bus_status st)
{
    switch (st) {
    case BUS_FATAL: return 0;
    case BUS_GONE: return 1;
    case BUS_WAITING: return 2;
    case BUS_ALIVE: return 3;
    }
    return 4;
}

/* Natural order of a column: names ascending, figures descending (the
 * busiest, fullest, furthest behind first), problems first. */
static int compare_rows(const void *pa, const void *pb)
{
    const struct bus_row *a = pa, *b = pb;
    int c = 0;
    switch (current_key) {
    case SORT_PATH: break;
    case SORT_PRODUCER: c = (a->producer.pid > b->producer.pid) - (a->producer.pid < b->producer.pid); break;
    case SORT_CONSUMER: c = (a->consumer.pid > b->consumer.pid) - (a->consumer.pid < b->consumer.pid); break;
    case SORT_MSGS: c = -cmp_u64(a->messages, b->messages); break;
    case SORT_RATE: c = -cmp_double(a->have_rate ? a->msg_rate : -1, b->have_rate ? b->msg_rate : -1); break;
    case SORT_MBPS: c = -cmp_double(a->have_rate ? a->byte_rate : -1, b->have_rate ? b->byte_rate : -1); break;
    case SORT_FILL: c = -cmp_u64(a->fill_bytes * 1000 / (a->info.capacity ? a->info.capacity : 1),
                                 b->fill_bytes * 1000 / (b->info.capacity ? b->info.capacity : 1));
        break;
    case SORT_LAG: c = -cmp_u64(a->have_lag ? a->lag_messages + 1 : 0, b->have_lag ? b->lag_messages + 1 : 0); break;
    case SORT_STATUS: c = status_rank(a->status) - status_rank(b->status); break;
    case SORT_COUNT: break;
    }
    if (c == 0)
        c = strcmp(segment_path(&a->seg), segment_path(&b->seg));
    if (c == 0)
        c = cmp_u64((uint64_t)a->seg.ino, (uint64_t)b->seg.ino);
    return current_reverse ? -c : c;
}

void sample_sort(struct sample *s, enum sort_key key, int reverse)
{
    current_key = key;
    current_reverse = reverse;
    if (s->n_rows > 1)
        qsort(s->rows, s->n_rows, sizeof(*s->rows), compare_rows);
}
