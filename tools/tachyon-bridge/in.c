/*
 * in.c - tachyon-bridge in: NATS -> bus.
 *
 * The main thread takes messages from a synchronous subscription on
 * PREFIX.* and writes each into the local bus, waiting for room when the
 * reader is behind (the NATS client queues meanwhile, up to --pending).
 *
 * Messages from a tachyon-bridge out are placed by their stream numbers
 * (stream.h): a run's first message is marked, the rest follow in order.
 * Only the next expected number is delivered, so the reader sees each
 * message once, in order. Duplicates (a resend) are skipped. A gap is
 * recovered when the out side runs --confirm bridge (the marker names an
 * ack subject): the messages after it are discarded, a "nak" asks for them
 * again, and "ack"s report what is in the bus. Without it the gap is
 * reported and counted as lost. Messages from other publishers carry no
 * marker and are delivered as they come.
 */
#define _GNU_SOURCE
#include "bridge.h"
#include "bus_side.h"
#include "nats_side.h"
#include "stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE_WAIT_MS 50
#define ACK_EVERY_NS 1000000      /* at most one ack per millisecond */
#define NAK_REPEAT_NS 200000000   /* ask again for the same message after 200 ms */
#define MAX_REASON 400

typedef struct {
    const bridge_options_t *o;
    tachyon_bus_t *bus;
    nats_link_t link;
    natsSubscription *sub;
    size_t bus_max;

    /* The stream being followed. */
    bool have_stream;
    uint64_t stream_id;
    bool reliable;                 /* the out side waits for our acks */
    char ack_subject[STREAM_MAX_SUBJECT + 40];
    bool synced;                   /* next_pos is the number of the next unmarked message */
    uint64_t next_pos;
    uint64_t expected;             /* next number to deliver; 0 = not known yet */
    uint64_t acked_sent;
    int64_t last_ack_ns;
    uint64_t last_nak;
    int64_t last_nak_ns;
    uint64_t reconnects_seen;

    bool ended, reader_gone, reader_died, failed;
    char end_reason[MAX_REASON + 1];

    uint64_t received, delivered, duplicates, lost, discarded, refused;
    int64_t last_stats_ns;
    uint64_t last_stats_received;
} in_t;

/* ---- acknowledgements ---------------------------------------------------- */

static void send_control(in_t *in, ack_kind_t kind, uint64_t seq)
{
    char text[48];
    int n = stream_format_ack(text, sizeof text, kind, seq);
    nats_publish(&in->link, in->ack_subject, text, (size_t)n, NULL, NULL);
}

static void maybe_ack(in_t *in, bool force)
{
    if (!in->reliable || in->expected == 0 || in->expected - 1 <= in->acked_sent)
        return;
    int64_t now = now_ns();
    if (!force && now - in->last_ack_ns < ACK_EVERY_NS)
        return;
    send_control(in, ACK_ACK, in->expected - 1);
    in->acked_sent = in->expected - 1;
    in->last_ack_ns = now;
}

static void ask_again(in_t *in, uint64_t from)
{
    int64_t now = now_ns();
    if (from == in->last_nak && now - in->last_nak_ns < NAK_REPEAT_NS)
        return;
    send_control(in, ACK_NAK, from);
    in->last_nak = from;
    in->last_nak_ns = now;
}

/* ---- placing a message in the stream -------------------------------------- */

typedef enum { PLACE_DELIVER, PLACE_SKIP } place_t;

static void lose_sync(in_t *in, const char *why)
{
    if (in->have_stream && in->synced)
        say("%s: waiting for the next marked message to place the stream again", why);
    in->synced = false;
}

static void adopt_stream(in_t *in, const stream_marker_t *m, const char *ack_subject)
{
    if (in->have_stream && in->stream_id != m->id)
        say("a new stream replaces %016" PRIx64 " (the out side restarted)", in->stream_id);
    in->have_stream = true;
    in->stream_id = m->id;
    in->reliable = ack_subject != NULL;
    if (ack_subject)
        snprintf(in->ack_subject, sizeof in->ack_subject, "%s", ack_subject);
    in->expected = 0;
    in->acked_sent = 0;
    in->last_nak = UINT64_MAX;
}

/* A marked message: returns false when it cannot be placed yet. */
static bool place_marker(in_t *in, const stream_marker_t *m, const char *ack_subject)
{
    if (!in->have_stream || m->id != in->stream_id)
        adopt_stream(in, m, ack_subject);
    if (in->expected == 0) {
        /* A new stream starts at its out side's oldest held message when that
         * side waits for us (anything older was delivered by a previous in
         * side); otherwise wherever we joined. */
        if (in->reliable && m->seq != m->base) {
            ask_again(in, 0);
            return false;
        }
        in->expected = m->seq;
        say("following stream %016" PRIx64 " from message %" PRIu64 " (%s)", m->id, m->seq,
            in->reliable ? "acknowledged: nothing is lost" : "unacknowledged: NATS failures can lose messages");
    }
    in->synced = true;
    in->next_pos = m->seq;
    return true;
}

static place_t place(in_t *in, natsMsg *msg)
{
    const char *value = NULL, *ack_subject = NULL;
    stream_marker_t m;
    if (natsMsgHeader_Get(msg, STREAM_HDR_MARKER, &value) == NATS_OK && value) {
        if (!stream_parse_marker(value, &m)) {
            in->refused++;
            say("refused a message with a malformed %s header", STREAM_HDR_MARKER);
            lose_sync(in, "malformed marker");
            return PLACE_SKIP;
        }
        if (natsMsgHeader_Get(msg, STREAM_HDR_ACK, &ack_subject) != NATS_OK || !ack_subject ||
            !stream_prefix_valid(ack_subject))
            ack_subject = NULL;
        if (!place_marker(in, &m, ack_subject)) {
            in->discarded++;
            return PLACE_SKIP;
        }
    } else if (!in->have_stream) {
        return PLACE_DELIVER; /* a plain publisher: no numbers to follow */
    } else if (!in->synced) {
        /* Its number is unknown: with acknowledgements it comes again after
         * the nak; without, it is lost to this reader. */
        if (in->reliable) {
            in->discarded++;
            ask_again(in, in->expected);
        } else {
            in->lost++;
        }
        return PLACE_SKIP;
    }
    uint64_t seq = in->next_pos++;
    if (seq < in->expected) {
        in->duplicates++;
        return PLACE_SKIP;
    }
    if (seq > in->expected) {
        if (in->reliable) {
            in->discarded++;
            ask_again(in, in->expected);
            return PLACE_SKIP;
        }
        char n[32];
        say("lost %s messages (%" PRIu64 " to %" PRIu64 ") of stream %016" PRIx64
            ": its out side does not wait for acknowledgements (--confirm bridge would resend them)",
            group_u64(n, seq - in->expected), in->expected, seq - 1, in->stream_id);
        in->lost += seq - in->expected;
    }
    in->expected = seq + 1;
    return PLACE_DELIVER;
}

/* ---- delivering ----------------------------------------------------------- */

static void note_end(in_t *in, const char *data, int len)
{
    size_t n = len > 0 ? (size_t)len : 0;
    if (n > MAX_REASON)
        n = MAX_REASON;
    for (size_t i = 0; i < n; i++) /* the sentence came over the network: printable only */
        in->end_reason[i] = (data[i] >= ' ' && data[i] <= '~') ? data[i] : '?';
    in->end_reason[n] = '\0';
    in->ended = true;
    say("the stream ended: %s", n ? in->end_reason : "(no reason given)");
}

static void refuse(in_t *in, const char *what, const char *subject, size_t len)
{
    in->refused++;
    if (in->refused <= 10 || (in->refused & (in->refused - 1)) == 0)
        say("refused a %zu-byte message on %.*s: %s; skipped, %" PRIu64 " so far", len, 120, subject, what,
            in->refused);
}

static void deliver(in_t *in, natsMsg *msg, subject_kind_t kind, uint32_t type_id)
{
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    if (kind == SUBJECT_END) {
        note_end(in, data, len);
        return;
    }
    if (len < 0 || (size_t)len > in->bus_max) {
        char why[96];
        snprintf(why, sizeof why, "larger than the bus's largest message (%zu bytes)", in->bus_max);
        refuse(in, why, natsMsg_GetSubject(msg), (size_t)len);
        return;
    }
    tachyon_error_t err = TACHYON_SUCCESS;
    int waited = 0;
    produce_result_t r = bus_produce(in->bus, data ? data : "", (size_t)len, type_id, &err, &waited);
    if (r == PRODUCE_OK) {
        in->delivered++;
    } else if (r == PRODUCE_PEER_GONE) {
        say("the reader is gone after %" PRIu64 " messages: %s", in->delivered, bus_end_sentence(err));
        in->reader_gone = true;
        in->reader_died = err != TACHYON_ERR_PEER_CLOSED;
    } else if (r == PRODUCE_FAILED) {
        say("cannot write into the bus: %s", tachyon_error_message(err));
        in->failed = true;
    }
}

static void handle(in_t *in, natsMsg *msg)
{
    uint32_t type_id = 0;
    const char *subject = natsMsg_GetSubject(msg);
    subject_kind_t kind = stream_parse_subject(subject, in->o->prefix, &type_id);
    in->received++;
    if (kind == SUBJECT_INVALID) {
        refuse(in, "not <prefix>.<type_id> with a decimal type_id below 2^32, nor <prefix>.end", subject,
               (size_t)natsMsg_GetDataLength(msg));
        return;
    }
    if (in->o->jetstream || place(in, msg) == PLACE_DELIVER)
        deliver(in, msg, kind, type_id);
}

/* ---- reports ---------------------------------------------------------------- */

static void print_counts(in_t *in, const char *label)
{
    char a[32], b[32], c[32], d[32], e[32], f[32];
    say("%s%s received, %s into the bus, %s duplicates skipped, %s waiting for a resend, %s lost, "
        "%s refused; NATS %s",
        label, group_u64(a, in->received), group_u64(b, in->delivered), group_u64(c, in->duplicates),
        group_u64(d, in->discarded), group_u64(e, in->lost), group_u64(f, in->refused),
        nats_link_up(&in->link) ? "connected" : "disconnected");
}

static void maybe_print_stats(in_t *in)
{
    int64_t now = now_ns();
    if (in->o->stats_s <= 0 || now - in->last_stats_ns < (int64_t)(in->o->stats_s * 1e9))
        return;
    char label[64];
    snprintf(label, sizeof label, "%.0f msg/s; ",
             (in->received - in->last_stats_received) / ((now - in->last_stats_ns) / 1e9));
    print_counts(in, label);
    in->last_stats_ns = now;
    in->last_stats_received = in->received;
}

/* ---- the run -------------------------------------------------------------- */

static bool subscribe(in_t *in)
{
    char subject[STREAM_MAX_SUBJECT];
    snprintf(subject, sizeof subject, "%s.*", in->o->prefix);
    natsStatus s;
    if (in->o->jetstream) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = in->o->jetstream;
        so.Ordered = true;
        so.Config.DeliverPolicy = js_DeliverAll;
        if (!nats_js_open(&in->link, NULL, NULL, 0))
            return false;
        int64_t deadline = now_ns() + 30000000000LL;
        while (!nats_link_up(&in->link) && !stop_requested() && now_ns() < deadline) {
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
        }
        jsErrCode jerr = 0;
        s = js_SubscribeSync(&in->sub, in->link.js, subject, NULL, &so, &jerr);
        if (s != NATS_OK) {
            say("cannot read JetStream stream %s on %s: %s (error %d)", in->o->jetstream, subject,
                natsStatus_GetText(s), (int)jerr);
            return false;
        }
        say("reading JetStream stream %s from its first message", in->o->jetstream);
    } else {
        s = natsConnection_SubscribeSync(&in->sub, in->link.nc, subject);
        if (s == NATS_OK)
            s = natsSubscription_SetPendingLimits(in->sub, in->o->pending_msgs, in->o->pending_bytes);
        if (s != NATS_OK) {
            say("cannot subscribe to %s: %s", subject, natsStatus_GetText(s));
            return false;
        }
        say("subscribed to %s", subject);
    }
    return true;
}

static void check_continuity(in_t *in, natsStatus s)
{
    uint64_t r = nats_link_reconnects(&in->link);
    if (r != in->reconnects_seen) {
        in->reconnects_seen = r;
        lose_sync(in, "reconnected to NATS");
    }
    if (s == NATS_SLOW_CONSUMER || atomic_exchange(&in->link.slow_consumer, 0)) {
        int64_t dropped = 0;
        natsSubscription_GetDropped(in->sub, &dropped);
        say("the NATS client dropped messages (%" PRId64 " so far): the bus reader is slower than the "
            "stream (raise --pending)", dropped);
        lose_sync(in, "messages dropped");
    }
}

/* On a stop: deliver what the client had queued at that moment (not what
 * keeps arriving), then stop. */
static void drain_queued(in_t *in)
{
    natsMsg *msg = NULL;
    int queued = 0, bytes = 0;
    if (natsSubscription_GetPending(in->sub, &queued, &bytes) != NATS_OK)
        return;
    while (queued-- > 0 && !in->ended && !in->reader_gone && !in->failed && stop_requested() < 2 &&
           natsSubscription_NextMsg(&msg, in->sub, 0) == NATS_OK) {
        handle(in, msg);
        natsMsg_Destroy(msg);
    }
}

static int run(in_t *in)
{
    const bridge_options_t *o = in->o;
    if (!nats_link_open(&in->link, o))
        return 1;
    in->reconnects_seen = nats_link_reconnects(&in->link);
    in->bus = bus_open(o, "reader");
    if (!in->bus) {
        nats_link_close(&in->link);
        return stop_requested() ? 0 : 1;
    }
    in->bus_max = tachyon_bus_max_payload(in->bus);
    if (!subscribe(in)) {
        tachyon_bus_destroy(in->bus);
        nats_link_close(&in->link);
        return 1;
    }
    in->last_stats_ns = now_ns();
    in->last_nak = UINT64_MAX;

    while (!in->ended || o->stay) {
        if (in->reader_gone || in->failed || stop_requested())
            break;
        if (in->ended) { /* --stay: the next stream starts afresh */
            in->ended = false;
            in->have_stream = false;
        }
        natsMsg *msg = NULL;
        bool ack_pending = in->reliable && in->expected > 0 && in->expected - 1 > in->acked_sent;
        natsStatus s = natsSubscription_NextMsg(&msg, in->sub, ack_pending ? 1 : IDLE_WAIT_MS);
        check_continuity(in, s);
        if (s == NATS_OK) {
            handle(in, msg);
            natsMsg_Destroy(msg);
        } else if (s == NATS_TIMEOUT) {
            if (!tachyon_peer_alive(in->bus)) {
                tachyon_error_t e = tachyon_bus_last_error(in->bus);
                say("the reader is gone after %" PRIu64 " messages: %s", in->delivered, bus_end_sentence(e));
                in->reader_gone = true;
                in->reader_died = e != TACHYON_ERR_PEER_CLOSED;
            }
        } else if (s != NATS_SLOW_CONSUMER) {
            say("the subscription failed: %s", natsStatus_GetText(s));
            in->failed = true;
        }
        maybe_ack(in, false);
        maybe_print_stats(in);
    }
    if (stop_requested() && !in->ended) {
        say("stopped (%s): delivering what was already received", stop_signal_name());
        drain_queued(in);
    }
    maybe_ack(in, true);
    print_counts(in, "done: ");
    natsSubscription_Destroy(in->sub);
    nats_link_close(&in->link);
    /* Closing the bus is the reader's end of stream, after everything. */
    tachyon_bus_destroy(in->bus);
    /* A reader that closed its bus chose to stop (the seed's consumer does at
     * the sentinel); one that died did not. */
    return (in->reader_died || in->failed) ? 1 : 0;
}

int run_in(const bridge_options_t *opts)
{
    static in_t in;
    memset(&in, 0, sizeof in);
    in.o = opts;
    return run(&in);
}
