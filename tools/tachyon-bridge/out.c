/*
 * out.c - tachyon-bridge out: bus -> NATS.
 *
 * The main thread takes messages from the bus in batches, copies each into
 * the window (window.h) and releases the bus slots at once, so the producer
 * never waits on the network. It publishes from the window's send cursor and
 * writes to the socket as soon as the bus runs dry, and every --flush-us
 * while the bus keeps delivering. A write is a PING-answered flush: when it
 * succeeds and the connection was not re-established meanwhile, the server
 * has processed every message before it, which is what --confirm server
 * counts as confirmed. With --confirm bridge the acknowledgements of the in
 * side confirm; with --jetstream the stream's PubAcks do.
 *
 * Whatever is not confirmed stays in the window and is sent again after a
 * reconnect, a "nak" from the in side, a failed JetStream publish, or
 * --ack-timeout without progress. When the window is full the bridge stops
 * reading the bus (the producer waits), unless --when-full drop.
 */
#define _GNU_SOURCE
#include "bridge.h"
#include "bus_side.h"
#include "nats_side.h"
#include "stream.h"
#include "window.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define RX_SPIN 2000
#define IDLE_WAIT_MS 50
#define FLUSH_TIMEOUT_MS 1000
#define PUBLISH_BURST 4096       /* records per pass, so a big resend does not starve the rest */
#define NAK_MIN_GAP_NS 20000000  /* resend at most every 20 ms on naks */
#define MAX_ACK_BACKOFF_MS 30000
#define JS_MAX_PENDING 65536
/* NATS counts headers in max_payload: room kept for the marker (or the
 * JetStream id) and the ack subject on top of a payload. */
#define HEADER_ROOM 128
#define END_CONFIRM_WAIT_NS 2000000000LL /* for the end record once all data is confirmed */

typedef struct {
    const bridge_options_t *o;
    tachyon_bus_t *bus;
    nats_link_t link;
    window_t win;
    uint64_t stream_id;
    char ack_subject[STREAM_MAX_SUBJECT + 20];
    natsSubscription *ack_sub;

    /* Written by the library's threads, read by the main thread. */
    _Atomic uint64_t acked;        /* --confirm bridge: highest "ack" seen */
    _Atomic uint64_t nak_from;     /* 1 + seq of the last "nak" (0: none pending) */
    _Atomic uint64_t js_confirmed; /* --jetstream: stored without a gap through this seq */
    _Atomic uint64_t js_failed;    /* --jetstream: lowest failed seq (0: none) */
    atomic_uint bad_acks;

    /* Main thread only. */
    uint64_t confirmed;            /* --confirm server: processed through this seq */
    uint64_t reconnects_seen;
    bool marker_due;
    uint64_t max_sent;             /* highest seq ever published */
    uint64_t unflushed;
    int64_t last_flush_ns;
    int64_t last_progress_ns;
    int64_t last_nak_resend_ns;
    int ack_timeout_ms;
    int64_t nats_max_payload;
    bool holding;
    uint64_t end_seq;              /* seq of the end record, 0 before it exists */
    bool fatal;

    uint64_t from_bus, published, resent, confirmed_msgs, refused, dropped;
    int64_t start_ns, last_stats_ns;
    uint64_t last_stats_from_bus;
} out_t;

static const char *confirm_name(confirm_t c)
{
    return c == CONFIRM_SERVER ? "the NATS server" : c == CONFIRM_BRIDGE ? "a tachyon-bridge in" : "JetStream";
}

/* ---- confirmations arriving on the library's threads -------------------- */

static void atomic_max_u64(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load(a);
    while (cur < v && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

static void on_ack(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    out_t *out = closure;
    ack_kind_t kind;
    uint64_t seq;
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    if (!data || len <= 0 || !stream_parse_ack(data, (size_t)len, &kind, &seq))
        atomic_fetch_add(&out->bad_acks, 1);
    else if (kind == ACK_ACK)
        atomic_max_u64(&out->acked, seq);
    else
        atomic_store(&out->nak_from, seq + 1);
    natsMsg_Destroy(msg);
}

/* JetStream answers in publish order on one connection; a failed publish
 * stops the gap-free count until it is stored on a resend. */
static void on_js_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    out_t *out = closure;
    const char *id = NULL;
    uint64_t seq;
    if (natsMsgHeader_Get(msg, STREAM_HDR_JS_ID, &id) == NATS_OK && id &&
        stream_parse_js_id(id, out->stream_id, &seq)) {
        if (pa) {
            if (seq == atomic_load(&out->js_confirmed) + 1)
                atomic_store(&out->js_confirmed, seq);
        } else {
            uint64_t cur = atomic_load(&out->js_failed);
            while ((cur == 0 || seq < cur) && !atomic_compare_exchange_weak(&out->js_failed, &cur, seq))
                ;
        }
    }
    natsMsg_Destroy(msg);
}

/* ---- the window ---------------------------------------------------------- */

static uint64_t confirmed_through(out_t *out)
{
    uint64_t c;
    switch (out->o->confirm) {
    case CONFIRM_SERVER: c = out->confirmed; break;
    case CONFIRM_BRIDGE: c = atomic_load(&out->acked); break;
    default: c = atomic_load(&out->js_confirmed); break;
    }
    /* An acknowledgement for something never sent confirms nothing more. */
    return c > out->max_sent ? out->max_sent : c;
}

static void apply_confirmations(out_t *out)
{
    uint64_t c = confirmed_through(out);
    if (c >= out->win.base_seq) {
        uint64_t end_released = out->end_seq && c >= out->end_seq && out->win.base_seq <= out->end_seq;
        uint64_t n = window_release_through(&out->win, c);
        out->confirmed_msgs += n - end_released;
        out->last_progress_ns = now_ns();
        out->ack_timeout_ms = out->o->ack_timeout_ms;
    }
    if (window_empty(&out->win))
        out->last_progress_ns = now_ns();
}

static void resend_from(out_t *out, uint64_t seq)
{
    window_rewind(&out->win, seq);
    out->marker_due = true;
}

static void handle_resend_requests(out_t *out)
{
    int64_t now = now_ns();
    uint64_t nak = atomic_exchange(&out->nak_from, 0);
    if (nak && now - out->last_nak_resend_ns >= NAK_MIN_GAP_NS) {
        resend_from(out, nak - 1); /* "nak 0": from the oldest held */
        out->last_nak_resend_ns = now;
    }
    uint64_t failed = atomic_exchange(&out->js_failed, 0);
    if (failed)
        resend_from(out, failed);
    if (!window_empty(&out->win) && window_all_sent(&out->win) && nats_link_up(&out->link) &&
        now - out->last_progress_ns > (int64_t)out->ack_timeout_ms * 1000000) {
        char n[32];
        say("no confirmation from %s for %d ms: sending the %s unconfirmed messages again%s",
            confirm_name(out->o->confirm), out->ack_timeout_ms, group_u64(n, window_count(&out->win)),
            out->o->confirm == CONFIRM_BRIDGE ? " (is a tachyon-bridge in running on this subject?)" : "");
        resend_from(out, out->win.base_seq);
        out->last_progress_ns = now;
        out->ack_timeout_ms = out->ack_timeout_ms * 2 > MAX_ACK_BACKOFF_MS ? MAX_ACK_BACKOFF_MS
                                                                            : out->ack_timeout_ms * 2;
    }
}

/* ---- publishing ---------------------------------------------------------- */

static void notice_reconnect(out_t *out)
{
    uint64_t r = nats_link_reconnects(&out->link);
    if (r == out->reconnects_seen)
        return;
    out->reconnects_seen = r;
    out->unflushed = 0;
    if (out->win.send_seq > out->win.base_seq) {
        char n[32];
        say("resending the %s messages not yet confirmed before the reconnect",
            group_u64(n, out->win.send_seq - out->win.base_seq));
    }
    resend_from(out, out->win.base_seq);
}

static natsStatus publish_record(out_t *out, const window_rec_t *rec)
{
    char subject[STREAM_MAX_SUBJECT];
    bool end = rec->flags & WINDOW_FLAG_END;
    if (end)
        stream_end_subject(subject, sizeof subject, out->o->prefix);
    else
        stream_data_subject(subject, sizeof subject, out->o->prefix, rec->type_id);
    if (out->o->confirm == CONFIRM_STREAM) {
        char id[STREAM_MAX_MARKER];
        stream_format_js_id(id, sizeof id, out->stream_id, rec->seq);
        return nats_js_publish(&out->link, subject, rec->data, rec->size, id, out->o->ack_timeout_ms);
    }
    if (!out->marker_due && !end)
        return nats_publish(&out->link, subject, rec->data, rec->size, NULL, NULL);
    char marker[STREAM_MAX_MARKER];
    stream_marker_t m = {out->stream_id, rec->seq, out->win.base_seq};
    stream_format_marker(marker, sizeof marker, &m);
    natsStatus s = nats_publish(&out->link, subject, rec->data, rec->size, marker,
                                out->o->confirm == CONFIRM_BRIDGE ? out->ack_subject : NULL);
    if (s == NATS_OK)
        out->marker_due = false;
    return s;
}

/* The largest payload the server takes with our headers; 0 while unknown. */
static int64_t server_payload_limit(out_t *out)
{
    int64_t max = nats_link_max_payload(&out->link);
    if (max <= 0)
        return out->nats_max_payload;
    max -= HEADER_ROOM + (int64_t)strlen(out->ack_subject);
    out->nats_max_payload = max > 0 ? max : 1;
    return out->nats_max_payload;
}

/* A record the server cannot take would block the stream forever. */
static bool fits_server(out_t *out, const window_rec_t *rec)
{
    int64_t max = server_payload_limit(out);
    if (max <= 0 || (int64_t)rec->size <= max)
        return true;
    say("message %" PRIu64 " (%zu bytes) is larger than the NATS server now takes (%" PRId64
        " bytes with the bridge's headers): its max_payload shrank after the message was taken from the bus; "
        "raise max_payload on the server",
        rec->seq, rec->size, max);
    out->fatal = true;
    return false;
}

static void publish_pending(out_t *out)
{
    if (!nats_link_up(&out->link))
        return;
    notice_reconnect(out);
    window_rec_t rec;
    for (int i = 0; i < PUBLISH_BURST && window_peek_send(&out->win, &rec); i++) {
        if (!fits_server(out, &rec))
            return;
        natsStatus s = publish_record(out, &rec);
        if (s != NATS_OK) {
            /* Disconnected meanwhile, or JetStream has too many unanswered:
             * the record stays at the cursor and goes out on a later pass. */
            out->marker_due = true;
            return;
        }
        if (rec.seq <= out->max_sent)
            out->resent++;
        else {
            out->published++;
            out->max_sent = rec.seq;
        }
        window_advance_send(&out->win);
        out->unflushed++;
    }
}

/* While the bus keeps delivering: one write per --flush-us. */
static bool flush_due(const out_t *out, int64_t now)
{
    return out->unflushed && now - out->last_flush_ns >= out->o->flush_us * 1000;
}

static void flush(out_t *out)
{
    if (!out->unflushed || !nats_link_up(&out->link))
        return;
    uint64_t epoch = out->reconnects_seen;
    uint64_t sent_through = out->win.send_seq - 1;
    natsStatus s = nats_link_flush(&out->link, FLUSH_TIMEOUT_MS);
    out->last_flush_ns = now_ns();
    if (s != NATS_OK)
        return; /* disconnected or slow: the reconnect or --ack-timeout resends */
    out->unflushed = 0;
    out->marker_due = true; /* every run starts numbered: a reader can join at any write */
    if (out->o->confirm == CONFIRM_SERVER && nats_link_reconnects(&out->link) == epoch &&
        sent_through > out->confirmed)
        out->confirmed = sent_through;
}

/* ---- reports ------------------------------------------------------------- */

static void print_counts(out_t *out, const char *label)
{
    char a[32], b[32], c[32], d[32], e[32], f[32], g[32];
    say("%s%s from bus, %s published (%s resent), %s confirmed by %s, %s held (%zu bytes), "
        "%s refused, %s dropped; NATS %s",
        label, group_u64(a, out->from_bus), group_u64(b, out->published), group_u64(c, out->resent),
        group_u64(d, out->confirmed_msgs), confirm_name(out->o->confirm),
        group_u64(e, window_count(&out->win) - (out->end_seq && out->win.base_seq <= out->end_seq)),
        window_bytes(&out->win), group_u64(f, out->refused), group_u64(g, out->dropped),
        nats_link_up(&out->link) ? "connected" : "disconnected");
}

static void maybe_print_stats(out_t *out, int64_t now)
{
    if (out->o->stats_s <= 0 || now - out->last_stats_ns < (int64_t)(out->o->stats_s * 1e9))
        return;
    double dt = (now - out->last_stats_ns) / 1e9;
    char label[64];
    snprintf(label, sizeof label, "%.0f msg/s; ", (out->from_bus - out->last_stats_from_bus) / dt);
    print_counts(out, label);
    out->last_stats_ns = now;
    out->last_stats_from_bus = out->from_bus;
}

static void report_refused(out_t *out, size_t size, size_t limit)
{
    out->refused++;
    if (out->refused <= 10 || (out->refused & (out->refused - 1)) == 0)
        say("refused a %zu-byte message from the bus: larger than %zu bytes (%s); skipped, "
            "%" PRIu64 " so far", size, limit,
            out->nats_max_payload && size > (size_t)out->nats_max_payload
                ? "the NATS server's max_payload less room for the bridge's headers"
                : "--buffer",
            out->refused);
}

/* ---- taking from the bus ------------------------------------------------- */

static size_t message_limit(out_t *out)
{
    size_t limit = window_max_payload(&out->win);
    int64_t server = server_payload_limit(out);
    if (server > 0 && (size_t)server < limit)
        limit = (size_t)server;
    return limit;
}

/* Copy views into the window; returns how many were taken (copied, refused
 * or dropped), which the caller commits. Stops at the first that does not
 * fit when waiting is the policy. */
static size_t take_batch(out_t *out, const tachyon_msg_view_t *views, size_t n)
{
    size_t limit = message_limit(out), i;
    for (i = 0; i < n; i++) {
        const tachyon_msg_view_t *v = &views[i];
        if (v->actual_size > limit) {
            report_refused(out, v->actual_size, limit);
        } else if (!window_append(&out->win, v->ptr, v->actual_size, v->type_id, 0)) {
            if (out->o->when_full == FULL_WAIT) {
                if (!out->holding) {
                    char m[32];
                    say("buffer full (%s messages, %zu bytes, not yet confirmed by %s): holding the bus, "
                        "the producer waits", group_u64(m, window_count(&out->win)), window_bytes(&out->win),
                        confirm_name(out->o->confirm));
                    out->holding = true;
                }
                break;
            }
            out->dropped++;
            if (out->dropped == 1 || (out->dropped & (out->dropped - 1)) == 0)
                say("buffer full: dropped %" PRIu64 " messages so far (--when-full drop)", out->dropped);
        } else if (out->holding) {
            say("buffer has room again: reading the bus");
            out->holding = false;
        }
    }
    out->from_bus += i;
    return i;
}

static void sleep_until(int64_t deadline_ns)
{
    int64_t left = deadline_ns - now_ns();
    if (left <= 0)
        return;
    struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
    nanosleep(&ts, NULL);
}

typedef enum { BUS_MORE, BUS_ENDED, BUS_FAILED } bus_status_t;

/* One receive from the bus. Returns BUS_ENDED with *err the producer's end
 * once everything it committed was read. */
static bus_status_t read_bus(out_t *out, tachyon_msg_view_t *views, tachyon_error_t *err)
{
    size_t n = tachyon_acquire_rx_batch(out->bus, views, out->o->batch);
    if (n == 0) {
        tachyon_error_t e = tachyon_bus_last_error(out->bus);
        if (e == TACHYON_ERR_EMPTY) {
            if (out->unflushed) {
                flush(out); /* the bus ran dry: write now */
                return BUS_MORE;
            }
            n = tachyon_drain_batch_timeout(out->bus, views, out->o->batch, RX_SPIN, IDLE_WAIT_MS);
            if (n == 0)
                e = tachyon_bus_last_error(out->bus);
        }
        if (n == 0) {
            if (e == TACHYON_ERR_EMPTY || e == TACHYON_ERR_TIMEOUT || e == TACHYON_ERR_INTERRUPTED)
                return BUS_MORE;
            *err = e;
            return (e == TACHYON_ERR_PEER_CLOSED || e == TACHYON_ERR_PEER_DEAD) ? BUS_ENDED : BUS_FAILED;
        }
    }
    size_t taken = take_batch(out, views, n);
    tachyon_error_t ce = tachyon_commit_rx_batch(out->bus, views, taken);
    if (ce != TACHYON_SUCCESS) {
        *err = ce;
        return BUS_FAILED;
    }
    if (taken < n)
        sleep_until(now_ns() + 1000000); /* full: let confirmations come */
    return BUS_MORE;
}

/* ---- the run ------------------------------------------------------------- */

static void service(out_t *out)
{
    apply_confirmations(out);
    handle_resend_requests(out);
    publish_pending(out);
    int64_t now = now_ns();
    if (flush_due(out, now))
        flush(out);
    maybe_print_stats(out, now);
}

/* After the last message: the end record, then wait for confirmations. */
static void finish(out_t *out, const char *reason)
{
    int stops_before = stop_requested();
    int64_t deadline = now_ns() + (int64_t)(out->o->drain_timeout_s * 1e9);
    say("end of stream: %s; forwarding what is held (up to %.0f s)", reason, out->o->drain_timeout_s);
    while (!out->fatal && !window_append(&out->win, reason, strlen(reason), 0, WINDOW_FLAG_END)) {
        service(out);
        if (now_ns() >= deadline || stop_requested() > stops_before)
            return;
        sleep_until(now_ns() + 1000000);
    }
    out->end_seq = out->win.end_seq - 1;
    int64_t end_deadline = -1;
    while (!out->fatal && !window_empty(&out->win) && now_ns() < deadline && stop_requested() <= stops_before &&
           !nats_link_refused(&out->link)) {
        /* Only the end record left: its reader may have gone with the data. */
        if (out->win.base_seq == out->end_seq) {
            if (end_deadline < 0)
                end_deadline = now_ns() + END_CONFIRM_WAIT_NS;
            else if (now_ns() > end_deadline)
                break;
        }
        service(out);
        if (out->unflushed)
            flush(out);
        if (!window_empty(&out->win))
            sleep_until(now_ns() + 1000000);
    }
}

static bool start_confirmations(out_t *out)
{
    if (out->o->confirm == CONFIRM_BRIDGE) {
        char hex[STREAM_MAX_MARKER];
        snprintf(hex, sizeof hex, "%016" PRIx64, out->stream_id);
        snprintf(out->ack_subject, sizeof out->ack_subject, "%s.%s", out->o->ack_prefix, hex);
        natsStatus s = natsConnection_Subscribe(&out->ack_sub, out->link.nc, out->ack_subject, on_ack, out);
        if (s != NATS_OK) {
            say("cannot subscribe to %s for acknowledgements: %s", out->ack_subject, natsStatus_GetText(s));
            return false;
        }
    }
    if (out->o->confirm == CONFIRM_STREAM) {
        if (!nats_js_open(&out->link, on_js_ack, out, JS_MAX_PENDING))
            return false;
        /* The stream is looked up once connected (the server may start later). */
        int64_t deadline = now_ns() + 30000000000LL;
        while (!nats_link_up(&out->link)) {
            if (stop_requested() || now_ns() > deadline) {
                say("no NATS server to set up JetStream stream %s on", out->o->jetstream);
                return false;
            }
            sleep_until(now_ns() + 20000000);
        }
        if (!nats_js_ensure_stream(&out->link, out->o->jetstream, out->o->prefix))
            return false;
    }
    return true;
}

static uint64_t new_stream_id(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
    return id;
}

static int run(out_t *out)
{
    const bridge_options_t *o = out->o;
    tachyon_msg_view_t *views = calloc(o->batch, sizeof *views);
    if (!views || !window_init(&out->win, o->buffer_bytes)) {
        say("out of memory for a %zu-byte buffer", o->buffer_bytes);
        free(views);
        return 1;
    }
    out->stream_id = new_stream_id();
    out->marker_due = true;
    out->ack_timeout_ms = o->ack_timeout_ms;
    if (!nats_link_open(&out->link, o) || !start_confirmations(out)) {
        free(views);
        return 1;
    }
    out->reconnects_seen = nats_link_reconnects(&out->link);
    out->bus = bus_open(o, "producer");
    if (!out->bus) {
        free(views);
        return stop_requested() ? 0 : 1;
    }
    say("forwarding to %s.<type_id> (stream %016" PRIx64 ", confirmed by %s; writes when the bus runs dry, "
        "and every %" PRId64 " us while it keeps delivering)",
        o->prefix, out->stream_id, confirm_name(o->confirm), o->flush_us);
    out->start_ns = out->last_stats_ns = out->last_progress_ns = now_ns();

    char reason[512];
    tachyon_error_t err = TACHYON_SUCCESS;
    bool bus_failed = false;
    for (;;) {
        service(out);
        if (out->fatal || nats_link_refused(&out->link)) {
            if (nats_link_refused(&out->link))
                say("the NATS server refuses our messages (%s): stopping", out->link.fatal_text);
            out->fatal = true;
            snprintf(reason, sizeof reason, "the bridge stopped: NATS refused its messages");
            break;
        }
        if (stop_requested()) {
            snprintf(reason, sizeof reason, "the bridge was stopped (%s)", stop_signal_name());
            break;
        }
        bus_status_t st = read_bus(out, views, &err);
        if (st == BUS_ENDED) {
            snprintf(reason, sizeof reason, "%s", bus_end_sentence(err));
            say("the producer is gone after %s messages: %s",
                group_u64((char[32]){0}, out->from_bus), reason);
            break;
        }
        if (st == BUS_FAILED) {
            snprintf(reason, sizeof reason, "the bus failed: %s", tachyon_error_message(err));
            say("%s", reason);
            bus_failed = true;
            break;
        }
    }
    /* Leave the bus first: a producer still sending learns we are gone
     * instead of filling a ring nobody reads. */
    tachyon_bus_destroy(out->bus);
    out->bus = NULL;
    finish(out, reason);
    apply_confirmations(out);

    uint64_t unconfirmed = window_count(&out->win) - (out->end_seq && out->win.base_seq <= out->end_seq);
    if (!out->fatal && nats_link_refused(&out->link)) {
        say("the NATS server refused our messages (%s)", out->link.fatal_text);
        out->fatal = true;
    }
    print_counts(out, "done: ");
    if (unconfirmed)
        say("%" PRIu64 " messages taken from the bus were not confirmed by %s", unconfirmed,
            confirm_name(o->confirm));
    if (atomic_load(&out->bad_acks))
        say("ignored %u malformed acknowledgements", atomic_load(&out->bad_acks));
    if (out->ack_sub)
        natsSubscription_Destroy(out->ack_sub);
    nats_link_close(&out->link);
    window_free(&out->win);
    free(views);
    return (unconfirmed || out->fatal || bus_failed) ? 1 : 0;
}

int run_out(const bridge_options_t *opts)
{
    static out_t out; /* large atomics: keep off the stack */
    memset(&out, 0, sizeof out);
    out.o = opts;
    return run(&out);
}
