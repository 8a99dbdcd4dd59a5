/*
 * top.h - tachyon-top: a live view of the Tachyon buses of the current user.
 *
 * The program runs in three steps each refresh, one file each:
 *   discover.c  which memfds the user's processes hold (/proc/<pid>/fd), grouped
 *               by segment (inode), with the processes that hold each;
 *   sample.c    each segment read from the outside (tachyon_segment_inspect),
 *               checked, and turned into a row: roles, liveness, fill, lag,
 *               and rates against the previous sample;
 *   table.c / json.c / screen.c  the rows as a text table, as JSON, or as a
 *               curses screen; main.c holds the options and the loop.
 *
 * Nothing here needs privilege: a process may open /proc/<pid>/fd/<n> of its
 * own user's processes. Every byte of a segment is untrusted: the core maps
 * only the header read-only, and sample.c checks every value it shows.
 */
#ifndef TACHYON_TOP_H
#define TACHYON_TOP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "tachyon.h"

#define TOP_COMM_MAX 16      /* /proc/<pid>/comm: 15 characters and a NUL */
#define TOP_NAME_MAX 256     /* a memfd name is at most 249 bytes */
#define TOP_REASON_MAX 200
#define TOP_HOLDER_FDS 4     /* descriptors listed per holder (more are counted) */
#define TOP_LINE_MAX 512     /* one line of the detail view */

/* ---- discover.c ----------------------------------------------------------- */

/* A process that has the segment open (or mapped). */
struct holder {
    pid_t pid;
    uid_t uid;
    char comm[TOP_COMM_MAX];
    int n_fds;                  /* descriptors of the segment it holds */
    int fds[TOP_HOLDER_FDS];    /* the first of them */
    int mapped_only;            /* found in its maps, with no descriptor open */
};

/* One memfd, as many descriptors as point at it. */
struct segment {
    dev_t dev;
    ino_t ino;
    char name[TOP_NAME_MAX];    /* the memfd's name: "tachyon:<socket path>" or the path alone */
    int prefixed;               /* named "tachyon:..." (a process of this project made it) */
    pid_t open_pid;             /* where to open it: /proc/<open_pid>/fd/<open_fd> */
    int open_fd;
    struct holder *holders;
    size_t n_holders, cap_holders;
};

/* A process whose descriptors could be read. */
struct scanned_proc {
    pid_t pid;
    uid_t uid;
};

struct scan {
    struct segment *segs;
    size_t n_segs, cap_segs;
    struct scanned_proc *procs;
    size_t n_procs, cap_procs;
    int all_users;              /* count every readable process's buses, not only ours */
    uid_t uid;                  /* whose buses: the real uid of tachyon-top */
};

/* Fill `scan` from /proc. Returns 0, or -1 when /proc cannot be read (errno). */
int discover(struct scan *scan);
/* Add, as holders, the processes that map one of `segs` with no descriptor
 * of it open (from /proc/<pid>/maps of the processes scanned). */
void discover_mappers(struct scan *scan, struct segment *const *segs, size_t n);
/* The socket path a segment was made for: its name without "tachyon:". */
const char *segment_path(const struct segment *seg);
/* Is this holder's process one of ours (or are all users shown)? */
int holder_counts(const struct scan *scan, const struct holder *h);
void scan_free(struct scan *scan);

/* ---- sample.c ------------------------------------------------------------- */

enum side_live {
    SIDE_UNKNOWN,   /* no pid known for this side */
    SIDE_ATTACHED,  /* its process holds the segment now */
    SIDE_UNSEEN,    /* its process exists but is not ours to look into */
    SIDE_DETACHED,  /* its process exists and no longer holds the segment */
    SIDE_ENDED      /* no such process any more */
};

struct side_view {
    tachyon_side_info_t info;   /* as the side last stored it (info.valid: ever stored) */
    pid_t pid;                  /* stored, or inferred from the holders; 0 unknown */
    int inferred;               /* pid comes from the holders, not from the side's block */
    char comm[TOP_COMM_MAX];
    enum side_live live;
};

enum bus_status { BUS_ALIVE, BUS_WAITING, BUS_GONE, BUS_FATAL };

struct bus_row {
    struct segment seg;         /* holders owned by the row */
    tachyon_segment_info_t info;
    struct side_view producer, consumer;
    enum bus_status status;
    char detail[TOP_REASON_MAX]; /* why gone, or what it waits for */
    uint64_t messages;          /* messages known to have been sent: max of both sides' counts */
    uint64_t bytes;
    uint64_t fill_bytes;        /* head - tail as stored */
    double fill_pct;
    int have_lag;
    uint64_t lag_messages;      /* producer's count - consumer's count */
    int have_rate;
    double msg_rate, byte_rate; /* per second, since the previous sample */
};

struct skipped {
    pid_t pid;
    int fd;
    char name[TOP_NAME_MAX];
    char reason[TOP_REASON_MAX];
};

struct sample {
    uint64_t mono_ns, real_ns;
    double window_s;            /* time since the previous sample the rates cover (0: none) */
    uid_t uid;
    int all_users;
    size_t procs_seen;
    struct bus_row *rows;
    size_t n_rows, cap_rows;
    struct skipped *skips;
    size_t n_skips, cap_skips;
};

/* Take a sample: discover, inspect, compare with `prev` (NULL: no rates). */
int sample_take(struct sample *out, const struct sample *prev, int all_users);
void sample_free(struct sample *s);
/* The row for `path` (a socket path or a memfd name), NULL if none. */
const struct bus_row *sample_find(const struct sample *s, const char *path);

/* Sorting. */
enum sort_key { SORT_PATH, SORT_PRODUCER, SORT_CONSUMER, SORT_MSGS, SORT_RATE, SORT_MBPS, SORT_FILL, SORT_LAG,
                SORT_STATUS, SORT_COUNT };
const char *sort_key_name(enum sort_key k);
int sort_key_parse(const char *name, enum sort_key *out);
void sample_sort(struct sample *s, enum sort_key key, int reverse);

/* Words for the values (stable: the JSON uses them). */
const char *bus_status_name(enum bus_status st);
const char *side_live_name(enum side_live live);
const char *state_name(uint32_t state);
const char *sleeper_name(uint32_t word);

/* ---- table.c: text for terminals and pipes -------------------------------- */

/* `src` with every byte that is not printable ASCII replaced by '?', cut to
 * fit `cap` (with "..." in the middle when cut, so both ends show). */
void printable(char *dst, size_t cap, const char *src);
/* 1234567 -> "1.23M"; below 10000 the plain number. */
void si_number(char *dst, size_t cap, double v);
/* The producer's (which 0) or consumer's (1) column: "1234 comm"; when no
 * side has reported yet, the holders as "?1234 comm" (role not known); "-". */
void side_label(char *dst, size_t cap, const struct bus_row *row, int which);
/* Columns for the path: the longest path of the sample, at most max_width. */
int table_path_width(const struct sample *s, int max_width);
/* Columns a row takes besides its path; the compact layout (for narrow
 * screens) shows pids without names and leaves out MSGS. */
#define TABLE_FIXED_WIDTH 88
#define TABLE_COMPACT_FIXED_WIDTH 64
/* One table row / its header, `path_width` columns for the path. */
void table_header(char *dst, size_t cap, int path_width, int compact);
void table_row(char *dst, size_t cap, int path_width, int compact, const struct bus_row *row);
/* The whole sample as a table on `f`, or one bus in detail. */
void print_table(FILE *f, const struct sample *s);
void print_detail(FILE *f, const struct bus_row *row);
/* One line per detail, for print_detail and the curses watch view. */
size_t detail_lines(const struct bus_row *row, char lines[][TOP_LINE_MAX], size_t max_lines);

/* ---- json.c --------------------------------------------------------------- */

/* One JSON document, on one line; `watch` restricts it to that bus. */
void print_json(FILE *f, const struct sample *s, const char *watch);

/* ---- screen.c ------------------------------------------------------------- */

struct options {
    double interval_s;
    int once, json, all_users, reverse;
    enum sort_key sort;
    const char *watch;
};

/* The live curses view until q; returns the exit status. */
int run_screen(const struct options *opt);

/* ---- main.c --------------------------------------------------------------- */

uint64_t mono_ns(void);

#endif /* TACHYON_TOP_H */
