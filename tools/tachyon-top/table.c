/*
 * table.c - a sample as text: the table of buses (--once, and the rows of
 * the curses screen) and one bus in detail (--watch).
 *
 * Paths and process names come from other processes and may hold anything;
 * only printable ASCII reaches the terminal.
 */
#define _GNU_SOURCE
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "top.h"

#define COL_STATUS 7
#define COL_SIDE 16
#define COL_PID 8
#define PATH_MIN 12
#define PATH_MAX_WIDTH 60

void printable(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return;
    size_t len = strlen(src), room = cap - 1;
    if (len > room && room >= 5) {
        /* keep both ends: socket paths differ at the end, directories at the start */
        size_t head = (room - 3) / 2, tail = room - 3 - head;
        char tmp[TOP_NAME_MAX * 2];
        snprintf(tmp, sizeof tmp, "%.*s...%s", (int)head, src, src + len - tail);
        printable(dst, cap, tmp);
        return;
    }
    size_t n = 0;
    for (; src[n] && n < room; n++) {
        unsigned char ch = (unsigned char)src[n];
        dst[n] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[n] = '\0';
}

void si_number(char *dst, size_t cap, double v)
{
    if (v < 9999.5)
        snprintf(dst, cap, "%.0f", v);
    else if (v < 999.95e3)
        snprintf(dst, cap, "%.1fk", v / 1e3);
    else if (v < 999.95e6)
        snprintf(dst, cap, "%.2fM", v / 1e6);
    else if (v < 999.95e9)
        snprintf(dst, cap, "%.2fG", v / 1e9);
    else
        snprintf(dst, cap, "%.2fT", v / 1e12);
}

static void pid_comm(char *dst, size_t cap, const char *mark, pid_t pid, const char *comm)
{
    char name[TOP_COMM_MAX];
    printable(name, sizeof name, comm);
    snprintf(dst, cap, "%s%d %s", mark, (int)pid, name);
}

void side_label(char *dst, size_t cap, const struct bus_row *row, int which)
{
    const struct side_view *side = which ? &row->consumer : &row->producer;
    if (side->pid) {
        pid_comm(dst, cap, "", side->pid, side->live == SIDE_ENDED ? "(ended)" : side->comm[0] ? side->comm : "?");
        return;
    }
    /* No side has said which it is: list who holds the bus, role unknown. */
    if (!row->producer.pid && !row->consumer.pid && (size_t)which < row->seg.n_holders) {
        const struct holder *h = &row->seg.holders[which];
        pid_comm(dst, cap, "?", h->pid, h->comm);
        return;
    }
    snprintf(dst, cap, "-");
}

static void fill_text(char *dst, size_t cap, const struct bus_row *row)
{
    if (row->fill_bytes > 0 && row->fill_pct < 1)
        snprintf(dst, cap, "<1%%");
    else
        snprintf(dst, cap, "%.0f%%", row->fill_pct);
}

void table_header(char *dst, size_t cap, int path_width, int compact)
{
    if (compact)
        snprintf(dst, cap, "%-*s %-*s %-*s %-*s %7s %7s %5s %7s %-6s", path_width, "PATH", COL_STATUS, "STATUS",
                 COL_PID, "PRODUCER", COL_PID, "CONSUMER", "MSG/S", "MB/S", "FILL", "LAG", "READER");
    else
        snprintf(dst, cap, "%-*s %-*s %-*s %-*s %7s %7s %5s %7s %-6s %8s", path_width, "PATH", COL_STATUS, "STATUS",
                 COL_SIDE, "PRODUCER", COL_SIDE, "CONSUMER", "MSG/S", "MB/S", "FILL", "LAG", "READER", "MSGS");
}

/* The compact columns keep the pid: "1234" or "?1234". */
static void pid_only(char *dst, size_t cap, const char *label)
{
    snprintf(dst, cap, "%.*s", (int)strcspn(label, " "), label);
}

void table_row(char *dst, size_t cap, int path_width, int compact, const struct bus_row *row)
{
    char path[PATH_MAX_WIDTH + 1], prod[COL_SIDE + 1], cons[COL_SIDE + 1], label[COL_SIDE + 1];
    char rate[16] = "-", mbps[16] = "-", fill[8], lag[16] = "-", msgs[16] = "-";
    printable(path, (size_t)path_width + 1 < sizeof path ? (size_t)path_width + 1 : sizeof path,
              segment_path(&row->seg));
    side_label(prod, sizeof prod, row, 0);
    side_label(cons, sizeof cons, row, 1);
    if (row->have_rate) {
        si_number(rate, sizeof rate, row->msg_rate);
        snprintf(mbps, sizeof mbps, row->byte_rate < 9.95e6 ? "%.2f" : "%.1f", row->byte_rate / 1e6);
    }
    fill_text(fill, sizeof fill, row);
    if (row->have_lag)
        si_number(lag, sizeof lag, (double)row->lag_messages);
    if (row->producer.info.valid || row->consumer.info.valid)
        si_number(msgs, sizeof msgs, (double)row->messages);
    const char *reader = row->status == BUS_ALIVE || row->status == BUS_WAITING
                             ? sleeper_name(row->info.consumer_sleeping) : "-";
    if (compact) {
        pid_only(label, sizeof label, prod);
        snprintf(prod, sizeof prod, "%s", label);
        pid_only(label, sizeof label, cons);
        snprintf(cons, sizeof cons, "%s", label);
        snprintf(dst, cap, "%-*s %-*s %-*s %-*s %7s %7s %5s %7s %-6s", path_width, path, COL_STATUS,
                 bus_status_name(row->status), COL_PID, prod, COL_PID, cons, rate, mbps, fill, lag, reader);
    } else {
        snprintf(dst, cap, "%-*s %-*s %-*s %-*s %7s %7s %5s %7s %-6s %8s", path_width, path, COL_STATUS,
                 bus_status_name(row->status), COL_SIDE, prod, COL_SIDE, cons, rate, mbps, fill, lag, reader, msgs);
    }
}

int table_path_width(const struct sample *s, int max_width)
{
    int w = PATH_MIN;
    for (size_t i = 0; i < s->n_rows; i++) {
        int len = (int)strlen(segment_path(&s->rows[i].seg));
        if (len > w)
            w = len;
    }
    if (max_width > PATH_MAX_WIDTH)
        max_width = PATH_MAX_WIDTH;
    if (max_width < PATH_MIN)
        max_width = PATH_MIN;
    return w < max_width ? w : max_width;
}

static const char *user_name(uid_t uid)
{
    struct passwd *pw = getpwuid(uid);
    return pw ? pw->pw_name : "?";
}

static void print_skips(FILE *f, const struct sample *s)
{
    for (size_t i = 0; i < s->n_skips; i++) {
        char name[TOP_NAME_MAX];
        printable(name, sizeof name, s->skips[i].name);
        fprintf(f, "skipped: pid %d fd %d memfd %s: %s\n", (int)s->skips[i].pid, s->skips[i].fd, name,
                s->skips[i].reason);
    }
}

void print_table(FILE *f, const struct sample *s)
{
    char line[512];
    if (s->all_users)
        fprintf(f, "%zu bus%s of every user", s->n_rows, s->n_rows == 1 ? "" : "es");
    else
        fprintf(f, "%zu bus%s of %s (uid %d)", s->n_rows, s->n_rows == 1 ? "" : "es", user_name(s->uid),
                (int)s->uid);
    fprintf(f, ", %zu processes looked at", s->procs_seen);
    if (s->window_s > 0)
        fprintf(f, ", rates over %.2f s", s->window_s);
    fprintf(f, "\n");
    int w = table_path_width(s, PATH_MAX_WIDTH);
    table_header(line, sizeof line, w, 0);
    fprintf(f, "%s\n", line);
    for (size_t i = 0; i < s->n_rows; i++) {
        table_row(line, sizeof line, w, 0, &s->rows[i]);
        fprintf(f, "%s\n", line);
    }
    print_skips(f, s);
}

/* ---- one bus in detail ------------------------------------------------------------- */

static void bytes_text(char *dst, size_t cap, uint64_t b)
{
    if (b >= (1ull << 30) && b % (1ull << 30) == 0)
        snprintf(dst, cap, "%llu GiB", (unsigned long long)(b >> 30));
    else if (b >= (1ull << 20) && b % (1ull << 20) == 0)
        snprintf(dst, cap, "%llu MiB", (unsigned long long)(b >> 20));
    else if (b >= 1024 && b % 1024 == 0)
        snprintf(dst, cap, "%llu KiB", (unsigned long long)(b >> 10));
    else
        snprintf(dst, cap, "%llu B", (unsigned long long)b);
}

static void ago_text(char *dst, size_t cap, uint64_t then_ns, uint64_t now_ns)
{
    if (!then_ns)
        snprintf(dst, cap, "never");
    else if (then_ns >= now_ns)
        snprintf(dst, cap, "just now");
    else
        snprintf(dst, cap, "%.1f s ago", (double)(now_ns - then_ns) / 1e9);
}

static void side_line(char *dst, size_t cap, const char *role, const struct side_view *side, int producer,
                      uint64_t now)
{
    char who[64], updated[32], active[32];
    if (side->pid)
        pid_comm(who, sizeof who, "", side->pid, side->comm[0] ? side->comm : "?");
    else
        snprintf(who, sizeof who, "unknown");
    const tachyon_side_info_t *i = &side->info;
    if (!i->valid) {
        snprintf(dst, cap, "%-10s %s, %s%s; its counters not stored yet", role, who, side_live_name(side->live),
                 side->inferred ? " (the other holder)" : "");
        return;
    }
    ago_text(updated, sizeof updated, i->updated_ns, now);
    ago_text(active, sizeof active, i->active_ns, now);
    if (producer)
        snprintf(dst, cap, "%-10s %s, %s: sent %llu msgs, %llu B; ring full %llu times; woke the reader %llu "
                 "times; stored %s, active %s",
                 role, who, side_live_name(side->live), (unsigned long long)i->messages,
                 (unsigned long long)i->bytes, (unsigned long long)i->stalls, (unsigned long long)i->wakes, updated,
                 active);
    else
        snprintf(dst, cap, "%-10s %s, %s: received %llu msgs, %llu B; slept %llu times; stored %s, active %s", role,
                 who, side_live_name(side->live), (unsigned long long)i->messages, (unsigned long long)i->bytes,
                 (unsigned long long)i->stalls, updated, active);
}

static void holders_line(char *dst, size_t cap, const struct bus_row *row)
{
    size_t n = (size_t)snprintf(dst, cap, "%-10s", "holders");
    for (size_t i = 0; i < row->seg.n_holders && n < cap; i++) {
        const struct holder *h = &row->seg.holders[i];
        char who[64];
        pid_comm(who, sizeof who, "", h->pid, h->comm);
        if (h->mapped_only)
            n += (size_t)snprintf(dst + n, cap - n, " %s (mapped, no descriptor);", who);
        else
            n += (size_t)snprintf(dst + n, cap - n, " %s fd %d%s;", who, h->fds[0], h->n_fds > 1 ? " and more" : "");
    }
}

size_t detail_lines(const struct bus_row *row, char lines[][TOP_LINE_MAX], size_t max_lines)
{
    const size_t w = TOP_LINE_MAX;
    char path[120], name[120], cap_text[32], max_text[32];
    size_t n = 0;
    uint64_t now = mono_ns();
    const tachyon_segment_info_t *info = &row->info;
    printable(path, sizeof path, segment_path(&row->seg));
    printable(name, sizeof name, row->seg.name);
#define LINE(...) \
    do { if (n < max_lines) snprintf(lines[n++], w, __VA_ARGS__); } while (0)
    LINE("%-10s %s", "bus", path);
    LINE("%-10s memfd %s, inode %llu", "segment", name, (unsigned long long)row->seg.ino);
    LINE("%-10s %s%s%s", "status", bus_status_name(row->status), row->detail[0] ? ": " : "", row->detail);
    bytes_text(cap_text, sizeof cap_text, info->capacity);
    LINE("%-10s %s, features 0x%x, ring %s", "state", state_name(info->state), info->features, cap_text);
    if (n < max_lines)
        side_line(lines[n++], w, "producer", &row->producer, 1, now);
    if (n < max_lines)
        side_line(lines[n++], w, "consumer", &row->consumer, 0, now);
    LINE("%-10s %s", "reader", info->consumer_sleeping == 1 ? "asleep on the futex"
                               : info->consumer_sleeping == 2 ? "spinning (never sleeps)"
                               : info->consumer_sleeping == 3 ? "waiting in an event loop"
                                                               : "awake");
    if (row->have_rate)
        LINE("%-10s %.0f msg/s, %.3f MB/s", "rate", row->msg_rate, row->byte_rate / 1e6);
    else
        LINE("%-10s - (after the next sample)", "rate");
    bytes_text(max_text, sizeof max_text, info->producer.fill_max);
    LINE("%-10s %llu B of %s (%.1f%%), highest at most %s (the producer's upper bound)", "fill", (unsigned long long)row->fill_bytes, cap_text,
         row->fill_pct, info->producer.valid ? max_text : "unknown");
    if (row->have_lag)
        LINE("%-10s %llu messages (as last stored), %llu bytes unread", "lag", (unsigned long long)row->lag_messages,
             (unsigned long long)row->fill_bytes);
    else
        LINE("%-10s unknown (a side has not stored its counters), %llu bytes unread", "lag",
             (unsigned long long)row->fill_bytes);
    LINE("%-10s head %llu, tail %llu", "counters", (unsigned long long)info->head, (unsigned long long)info->tail);
    if (n < max_lines)
        holders_line(lines[n++], w, row);
#undef LINE
    return n;
}

void print_detail(FILE *f, const struct bus_row *row)
{
    char lines[16][TOP_LINE_MAX];
    size_t n = detail_lines(row, lines, 16);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", lines[i]);
}
