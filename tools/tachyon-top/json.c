/*
 * json.c - a sample as one JSON document on one line (the schema is in
 * README.md, "Watching buses: tachyon-top"). Strings come from other
 * processes: they are escaped, and bytes that are not UTF-8 become U+FFFD,
 * so the output always parses.
 */
#define _GNU_SOURCE
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "top.h"

#define SCHEMA_VERSION 1

/* Length of the valid UTF-8 sequence at s (1-4), or 0. */
static size_t utf8_sequence(const unsigned char *s)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0; /* overlong, beyond Unicode, or a surrogate */
    return len;
}

static void json_string(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    while (*s) {
        size_t len = utf8_sequence(s);
        if (len == 0) {
            fputs("\\ufffd", f);
            s++;
        } else if (len > 1) {
            fwrite(s, 1, len, f);
            s += len;
        } else {
            unsigned char ch = *s++;
            if (ch == '"' || ch == '\\')
                fprintf(f, "\\%c", ch);
            else if (ch == '\n')
                fputs("\\n", f);
            else if (ch == '\t')
                fputs("\\t", f);
            else if (ch < 0x20 || ch == 0x7f)
                fprintf(f, "\\u%04x", ch);
            else
                fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void key(FILE *f, int *first, const char *name)
{
    fprintf(f, "%s\"%s\":", *first ? "" : ",", name);
    *first = 0;
}

static void kv_str(FILE *f, int *first, const char *name, const char *value)
{
    key(f, first, name);
    if (value)
        json_string(f, value);
    else
        fputs("null", f);
}

static void kv_u64(FILE *f, int *first, const char *name, int present, uint64_t value)
{
    key(f, first, name);
    if (present)
        fprintf(f, "%llu", (unsigned long long)value);
    else
        fputs("null", f);
}

static void kv_num(FILE *f, int *first, const char *name, int present, double value)
{
    key(f, first, name);
    if (present)
        fprintf(f, "%.3f", value);
    else
        fputs("null", f);
}

static void kv_bool(FILE *f, int *first, const char *name, int value)
{
    key(f, first, name);
    fputs(value ? "true" : "false", f);
}

static double ago_s(uint64_t then_ns, uint64_t now_ns)
{
    return then_ns >= now_ns ? 0.0 : (double)(now_ns - then_ns) / 1e9;
}

static void side_json(FILE *f, const struct side_view *side, int producer, uint64_t now)
{
    const tachyon_side_info_t *i = &side->info;
    int first = 1, v = i->valid;
    fputc('{', f);
    kv_u64(f, &first, "pid", side->pid != 0, (uint64_t)side->pid);
    kv_str(f, &first, "name", side->pid && side->comm[0] ? side->comm : NULL);
    kv_bool(f, &first, "inferred", side->inferred);
    kv_str(f, &first, "process", side_live_name(side->live));
    kv_bool(f, &first, "reported", v);
    kv_u64(f, &first, "messages", v, i->messages);
    kv_u64(f, &first, "bytes", v, i->bytes);
    if (producer) {
        kv_u64(f, &first, "ring_full", v, i->stalls);
        kv_u64(f, &first, "wakeups", v, i->wakes);
        kv_u64(f, &first, "fill_max_bytes", v, i->fill_max);
    } else {
        kv_u64(f, &first, "sleeps", v, i->stalls);
    }
    kv_num(f, &first, "stored_ago_s", v && i->updated_ns, ago_s(i->updated_ns, now));
    kv_num(f, &first, "active_ago_s", v && i->active_ns, ago_s(i->active_ns, now));
    fputc('}', f);
}

static void holders_json(FILE *f, const struct segment *seg)
{
    fputc('[', f);
    for (size_t i = 0; i < seg->n_holders; i++) {
        const struct holder *h = &seg->holders[i];
        int first = 1;
        fputs(i ? ",{" : "{", f);
        kv_u64(f, &first, "pid", 1, (uint64_t)h->pid);
        kv_str(f, &first, "name", h->comm);
        kv_u64(f, &first, "uid", 1, (uint64_t)h->uid);
        key(f, &first, "fds");
        fputc('[', f);
        for (int k = 0; k < h->n_fds && k < TOP_HOLDER_FDS; k++)
            fprintf(f, "%s%d", k ? "," : "", h->fds[k]);
        fputc(']', f);
        kv_u64(f, &first, "fd_count", 1, (uint64_t)h->n_fds);
        kv_bool(f, &first, "mapped_only", h->mapped_only);
        fputc('}', f);
    }
    fputc(']', f);
}

static void row_json(FILE *f, const struct bus_row *row, uint64_t now)
{
    const tachyon_segment_info_t *info = &row->info;
    int first = 1, counted = info->producer.valid || info->consumer.valid;
    int live = row->status == BUS_ALIVE || row->status == BUS_WAITING;
    fputc('{', f);
    kv_str(f, &first, "path", segment_path(&row->seg));
    kv_str(f, &first, "memfd", row->seg.name);
    kv_u64(f, &first, "inode", 1, (uint64_t)row->seg.ino);
    kv_str(f, &first, "status", bus_status_name(row->status));
    kv_bool(f, &first, "alive", live);
    kv_str(f, &first, "detail", row->detail[0] ? row->detail : NULL);
    kv_str(f, &first, "state", state_name(info->state));
    kv_u64(f, &first, "capacity", 1, info->capacity);
    kv_u64(f, &first, "features", 1, info->features);
    kv_u64(f, &first, "head", 1, info->head);
    kv_u64(f, &first, "tail", 1, info->tail);
    kv_u64(f, &first, "fill_bytes", 1, row->fill_bytes);
    kv_num(f, &first, "fill_pct", 1, row->fill_pct);
    kv_u64(f, &first, "messages", counted, row->messages);
    kv_u64(f, &first, "bytes", counted, row->bytes);
    kv_u64(f, &first, "lag_messages", row->have_lag, row->lag_messages);
    kv_num(f, &first, "msgs_per_s", row->have_rate, row->msg_rate);
    kv_num(f, &first, "bytes_per_s", row->have_rate, row->byte_rate);
    kv_str(f, &first, "reader", sleeper_name(info->consumer_sleeping));
    key(f, &first, "producer");
    side_json(f, &row->producer, 1, now);
    key(f, &first, "consumer");
    side_json(f, &row->consumer, 0, now);
    key(f, &first, "holders");
    holders_json(f, &row->seg);
    fputc('}', f);
}

static void skipped_json(FILE *f, const struct sample *s)
{
    fputc('[', f);
    for (size_t i = 0; i < s->n_skips; i++) {
        const struct skipped *k = &s->skips[i];
        int first = 1;
        fputs(i ? ",{" : "{", f);
        kv_u64(f, &first, "pid", 1, (uint64_t)k->pid);
        kv_u64(f, &first, "fd", 1, (uint64_t)k->fd);
        kv_str(f, &first, "memfd", k->name);
        kv_str(f, &first, "reason", k->reason);
        fputc('}', f);
    }
    fputc(']', f);
}

void print_json(FILE *f, const struct sample *s, const char *watch)
{
    int first = 1;
    struct passwd *pw = getpwuid(s->uid);
    fputc('{', f);
    kv_u64(f, &first, "schema", 1, SCHEMA_VERSION);
    kv_u64(f, &first, "time_ns", 1, s->real_ns);
    kv_u64(f, &first, "uid", 1, (uint64_t)s->uid);
    kv_str(f, &first, "user", pw ? pw->pw_name : NULL);
    kv_bool(f, &first, "all_users", s->all_users);
    kv_num(f, &first, "interval_s", s->window_s > 0, s->window_s);
    kv_u64(f, &first, "processes", 1, s->procs_seen);
    key(f, &first, "buses");
    fputc('[', f);
    int n = 0;
    for (size_t i = 0; i < s->n_rows; i++) {
        const struct bus_row *row = &s->rows[i];
        if (watch && row != sample_find(s, watch))
            continue;
        if (n++)
            fputc(',', f);
        row_json(f, row, s->mono_ns);
    }
    fputc(']', f);
    key(f, &first, "skipped");
    skipped_json(f, s);
    fputs("}\n", f);
    fflush(f);
}
