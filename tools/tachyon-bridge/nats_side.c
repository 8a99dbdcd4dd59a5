/* nats_side.c - see nats_side.h. */
#define _GNU_SOURCE
#include "nats_side.h"
#include "bridge.h"
#include "stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define RECONNECT_WAIT_MS 100
#define CONNECT_TIMEOUT_MS 2000
#define PING_INTERVAL_MS 5000

/* The URLs as printed: user and password (or token) replaced by "***". */
static void redact_urls(char *out, size_t cap, const char *urls)
{
    size_t o = 0;
    const char *p = urls;
    while (*p && o + 1 < cap) {
        const char *scheme = strstr(p, "://");
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *at = scheme && scheme < end ? memchr(scheme, '@', (size_t)(end - scheme)) : NULL;
        int n = at ? snprintf(out + o, cap - o, "%.*s***%.*s", (int)(scheme + 3 - p), p, (int)(end - at), at)
                   : snprintf(out + o, cap - o, "%.*s", (int)(end - p), p);
        if (n < 0 || (size_t)n >= cap - o)
            break;
        o += (size_t)n;
        p = end;
        if (*p == ',' && o + 1 < cap) {
            out[o++] = ',';
            p++;
        }
    }
    out[o < cap ? o : cap - 1] = '\0';
}

static void on_connected(natsConnection *nc, void *closure)
{
    char url[256] = "?", shown[256];
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    redact_urls(shown, sizeof shown, url);
    say("NATS connected to %s", shown);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    nats_link_t *l = closure;
    if (atomic_load(&l->closing))
        return;
    say("NATS connection lost; reconnecting (nothing is dropped meanwhile)");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    char url[256] = "?", shown[256];
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    redact_urls(shown, sizeof shown, url);
    say("NATS reconnected to %s", shown);
}

static void on_closed(natsConnection *nc, void *closure)
{
    nats_link_t *l = closure;
    if (!atomic_load(&l->closing))
        say("NATS connection closed: no server could be reached");
}

/* Mark the link refused: the server will not take our messages. */
static void refuse(nats_link_t *l, natsStatus err, const char *text)
{
    int none = 0;
    if (!atomic_compare_exchange_strong(&l->fatal, &none, 2))
        return; /* the first reason stays */
    snprintf(l->fatal_text, sizeof l->fatal_text, "%s", text ? text : natsStatus_GetText(err));
    atomic_store(&l->fatal, 1); /* the text is whole: readers may look (nats_link_refused) */
}

bool nats_link_refused(nats_link_t *l)
{
    return atomic_load(&l->fatal) == 1;
}

/* Errors the server or the library report asynchronously. A refused publish
 * (permissions) would lose messages silently, so it stops the bridge. */
static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    nats_link_t *l = closure;
    const char *text = NULL;
    natsConnection_GetLastError(nc, &text);
    if (err == NATS_SLOW_CONSUMER) {
        atomic_store(&l->slow_consumer, 1);
        return; /* counted and reported by the caller's loop */
    }
    if (err == NATS_NOT_PERMITTED || (text && strstr(text, "Permissions Violation")))
        refuse(l, err, text);
    say("NATS error: %s%s%s", natsStatus_GetText(err), text ? ": " : "", text ? text : "");
}

static bool check(natsStatus s, const char *what)
{
    if (s == NATS_OK)
        return true;
    say("NATS %s: %s", what, natsStatus_GetText(s));
    return false;
}

bool nats_link_open(nats_link_t *l, const bridge_options_t *o)
{
    natsOptions *opts = NULL;
    memset(l, 0, sizeof *l);
    if (!check(natsOptions_Create(&opts), "options"))
        return false;
    natsStatus s = natsOptions_SetURL(opts, o->nats_urls);
    if (s == NATS_OK) s = natsOptions_SetName(opts, o->name);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, RECONNECT_WAIT_MS);
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, CONNECT_TIMEOUT_MS);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(opts, PING_INTERVAL_MS);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts, 3);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_disconnected, l);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, on_reconnected, l);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(opts, on_closed, l);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, on_async_error, l);
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, l);
    if (!check(s, "options")) {
        natsOptions_Destroy(opts);
        return false;
    }
    char shown[512];
    redact_urls(shown, sizeof shown, o->nats_urls);
    say("connecting to NATS at %s", shown);
    s = natsConnection_Connect(&l->nc, opts);
    natsOptions_Destroy(opts);
    if (s == NATS_NOT_YET_CONNECTED) {
        say("no NATS server answers yet: retrying in the background");
        return true; /* on_connected reports it */
    }
    if (!check(s, "connect"))
        return false;
    on_connected(l->nc, l);
    return true;
}

void nats_link_close(nats_link_t *l)
{
    if (l->js)
        jsCtx_Destroy(l->js);
    if (l->nc) {
        if (nats_link_up(l))
            natsConnection_FlushTimeout(l->nc, 2000);
        atomic_store(&l->closing, 1);
        natsConnection_Close(l->nc);
        natsConnection_Destroy(l->nc);
    }
    if (l->stats)
        natsStatistics_Destroy(l->stats);
    l->js = NULL;
    l->nc = NULL;
    l->stats = NULL;
}

bool nats_link_up(nats_link_t *l)
{
    return natsConnection_Status(l->nc) == NATS_CONN_STATUS_CONNECTED;
}

uint64_t nats_link_reconnects(nats_link_t *l)
{
    uint64_t reconnects = 0;
    if (!l->stats && natsStatistics_Create(&l->stats) != NATS_OK)
        return 0;
    if (natsConnection_GetStats(l->nc, l->stats) == NATS_OK)
        natsStatistics_GetCounts(l->stats, NULL, NULL, NULL, NULL, &reconnects);
    return reconnects;
}

int64_t nats_link_max_payload(nats_link_t *l)
{
    return natsConnection_GetMaxPayload(l->nc);
}

/* A successful flush confirms what was published before it, unless the
 * server refused some of it: its -ERR comes before its PONG, and the library
 * records it as the connection's last error before the flush returns, while
 * the error callback (on_async_error) may run only later. */
natsStatus nats_link_flush(nats_link_t *l, int timeout_ms)
{
    natsStatus s = natsConnection_FlushTimeout(l->nc, timeout_ms);
    const char *text = NULL;
    if (s == NATS_OK && natsConnection_GetLastError(l->nc, &text) == NATS_NOT_PERMITTED) {
        refuse(l, NATS_NOT_PERMITTED, text);
        return NATS_NOT_PERMITTED;
    }
    return s;
}

natsStatus nats_publish(nats_link_t *l, const char *subject, const void *data, size_t len,
                        const char *marker, const char *ack_subject)
{
    if (!marker)
        return natsConnection_Publish(l->nc, subject, data, (int)len);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, STREAM_HDR_MARKER, marker);
    if (s == NATS_OK && ack_subject)
        s = natsMsgHeader_Set(m, STREAM_HDR_ACK, ack_subject);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(l->nc, m);
    natsMsg_Destroy(m);
    return s;
}

bool nats_js_open(nats_link_t *l, jsPubAckHandler ack_cb, void *closure, int64_t max_pending)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = ack_cb;
    jo.PublishAsync.AckHandlerClosure = closure;
    jo.PublishAsync.MaxPending = max_pending;
    jo.PublishAsync.StallWait = 50;
    return check(natsConnection_JetStream(&l->js, l->nc, &jo), "JetStream");
}

bool nats_js_ensure_stream(nats_link_t *l, const char *name, const char *prefix)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, l->js, name, NULL, &jerr);
    if (s == NATS_OK) {
        say("JetStream stream %s exists (%" PRIu64 " messages stored)", name, si->State.Msgs);
        jsStreamInfo_Destroy(si);
        return true;
    }
    if (s != NATS_NOT_FOUND) {
        say("JetStream stream %s: %s (is JetStream enabled on the server? nats-server -js)", name,
            natsStatus_GetText(s));
        return false;
    }
    char subject[STREAM_MAX_SUBJECT];
    snprintf(subject, sizeof subject, "%s.*", prefix);
    const char *subjects[1] = {subject};
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    s = js_AddStream(&si, l->js, &cfg, NULL, &jerr);
    if (s != NATS_OK) {
        say("cannot create JetStream stream %s on %s: %s (error %d)", name, subject, natsStatus_GetText(s),
            (int)jerr);
        return false;
    }
    say("JetStream stream %s created on %s (file storage)", name, subject);
    jsStreamInfo_Destroy(si);
    return true;
}

natsStatus nats_js_publish(nats_link_t *l, const char *subject, const void *data, size_t len,
                           const char *msg_id, int64_t ack_wait_ms)
{
    natsMsg *m = NULL;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = ack_wait_ms;
    natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, STREAM_HDR_JS_ID, msg_id);
    if (s == NATS_OK)
        s = js_PublishMsgAsync(l->js, &m, &po);
    natsMsg_Destroy(m); /* NULL once the library took it */
    return s;
}
