/* options.c - tachyon-bridge's command line and --help. */
#define _GNU_SOURCE
#include "options.h"
#include "stream.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --help, in parts: C11 promises string literals of 4095 bytes only. */
static const char *const usage_text[] = {
"usage: tachyon-bridge out (--listen PATH | --connect PATH) [options]\n"
"       tachyon-bridge in  (--connect PATH | --listen PATH) [options]\n"
"\n"
"Bridges a Tachyon bus to NATS so that readers on other machines get the\n"
"same stream.\n"
"\n"
"  out  reads every message of a local bus (this bridge is the bus's\n"
"       consumer) and publishes it to NATS on PREFIX.<type_id>.\n"
"  in   subscribes to PREFIX.* on NATS and writes every message into a local\n"
"       bus (this bridge is the bus's producer), where a reader takes it\n"
"       with no further copy.\n"
"\n"
"Bus:\n"
"  --listen PATH        own the socket PATH and wait for the bus peer (as the\n"
"                       seed's consumer does; the usual choice for out)\n"
"  --connect PATH       connect to a peer listening on PATH (the usual choice\n"
"                       for in, whose reader listens)\n"
"  --capacity BYTES     ring size when listening, a power of two\n"
"                       (default 1M; suffixes K, M, G)\n"
"  --bus-timeout SEC    give up if the bus peer has not come after SEC\n"
"                       seconds (default: wait forever)\n"
"\n"
"NATS:\n"
"  --nats URLS          server URL(s), comma-separated\n"
"                       (default nats://127.0.0.1:4222); the bridge\n"
"                       reconnects for as long as it runs\n"
"  --subject PREFIX     subject prefix (default ticks): data goes to\n"
"                       PREFIX.<type_id>, the end of a stream to PREFIX.end\n"
"  --jetstream STREAM   out: publish into the JetStream stream STREAM (created\n"
"                       on PREFIX.* with file storage if missing); a message\n"
"                       leaves the buffer when the stream has stored it.\n"
"                       in: read STREAM from its first message (replay), in\n"
"                       order, with an ordered consumer\n"
"  --name NAME          connection name shown by the server\n"
"                       (default tachyon-bridge-out / tachyon-bridge-in)\n"
"\n",
"out:\n"
"  --confirm server     (default) a message leaves the buffer once the NATS\n"
"                       server has processed it; after a reconnect everything\n"
"                       not yet confirmed is sent again. Subscribers that are\n"
"                       disconnected meanwhile miss messages (core NATS).\n"
"  --confirm bridge     a message leaves the buffer once a tachyon-bridge in\n"
"                       has written it into its bus: nothing is lost across\n"
"                       NATS restarts or reconnects. Needs exactly one\n"
"                       tachyon-bridge in on PREFIX; without one the buffer\n"
"                       fills and the bus producer waits.\n"
"  --flush-us US        while the bus keeps delivering, write to NATS every\n"
"                       US microseconds (default 200; 0 = after every batch\n"
"                       taken from the bus); when the bus runs dry, write at\n"
"                       once. Larger values batch more per write and add up\n"
"                       to US of latency under load.\n"
"  --buffer BYTES       messages taken from the bus and not yet confirmed are\n"
"                       kept here, up to BYTES (default 64M); when it is full\n"
"                       the bridge stops reading the bus and the producer\n"
"                       waits (back-pressure)\n"
"  --when-full wait|drop  wait (default): back-pressure as above; drop: keep\n"
"                       reading the bus and discard what does not fit,\n"
"                       counting it in every report\n"
"  --batch N            messages taken from the bus per read (default 256)\n"
"  --ack-timeout MS     send again what is unconfirmed after MS milliseconds\n"
"                       without progress (default 2000)\n"
"  --drain-timeout SEC  at the end, wait up to SEC seconds for the last\n"
"                       confirmations (default 10)\n"
"  --ack-prefix PREFIX  acknowledgements come on PREFIX.<stream id>\n"
"                       (default _TACHYON.ack)\n"
"\n",
"in:\n"
"  --pending MSGS       messages the NATS client may queue while the bus is\n"
"                       full (default 1000000; also at most 256 MiB).\n"
"                       Beyond that the client drops them: reported, and\n"
"                       sent again when the out side runs --confirm bridge\n"
"  --stay               keep running when a stream ends (default: close the\n"
"                       bus and exit once PREFIX.end has arrived, so the\n"
"                       reader sees the end as it would on the source bus)\n"
"\n"
"Both:\n"
"  --stats SEC          print counts every SEC seconds (default 5; 0 = never)\n"
"  -h, --help           this text\n"
"\n"
"Messages: a message larger than the bus or NATS allows is reported and\n"
"skipped, never truncated. The out side keeps every message it took from the\n"
"bus until it is confirmed; Ctrl-C or SIGTERM stops reading the bus, sends\n"
"what it holds, publishes PREFIX.end and waits for the confirmations. When the\n"
"bus producer closes the bus or dies, the out side forwards everything it\n"
"committed, reports how the producer ended, and exits. The in side exits when\n"
"the stream ends or its reader closes the bus (status 0), or when the reader\n"
"dies (status 1).\n"
"\n"
"Exit status: 0 everything taken was confirmed (out) / delivered (in);\n"
"1 an error, or messages left unconfirmed; 2 a usage error.\n",
};

static void print_usage(void)
{
    for (size_t i = 0; i < sizeof usage_text / sizeof usage_text[0]; i++)
        fputs(usage_text[i], stdout);
}

enum {
    OPT_LISTEN = 256, OPT_CONNECT, OPT_CAPACITY, OPT_BUS_TIMEOUT, OPT_NATS, OPT_SUBJECT,
    OPT_JETSTREAM, OPT_NAME, OPT_CONFIRM, OPT_FLUSH_US, OPT_BUFFER, OPT_WHEN_FULL, OPT_BATCH,
    OPT_ACK_TIMEOUT, OPT_DRAIN_TIMEOUT, OPT_ACK_PREFIX, OPT_PENDING, OPT_STAY, OPT_STATS
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"connect", required_argument, NULL, OPT_CONNECT},
    {"capacity", required_argument, NULL, OPT_CAPACITY},
    {"bus-timeout", required_argument, NULL, OPT_BUS_TIMEOUT},
    {"nats", required_argument, NULL, OPT_NATS},
    {"subject", required_argument, NULL, OPT_SUBJECT},
    {"jetstream", required_argument, NULL, OPT_JETSTREAM},
    {"name", required_argument, NULL, OPT_NAME},
    {"confirm", required_argument, NULL, OPT_CONFIRM},
    {"flush-us", required_argument, NULL, OPT_FLUSH_US},
    {"buffer", required_argument, NULL, OPT_BUFFER},
    {"when-full", required_argument, NULL, OPT_WHEN_FULL},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"ack-timeout", required_argument, NULL, OPT_ACK_TIMEOUT},
    {"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
    {"ack-prefix", required_argument, NULL, OPT_ACK_PREFIX},
    {"pending", required_argument, NULL, OPT_PENDING},
    {"stay", no_argument, NULL, OPT_STAY},
    {"stats", required_argument, NULL, OPT_STATS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "tachyon-bridge: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(tachyon-bridge --help explains every option)\n");
    return 2;
}

/* "64M", "1048576", "4K": a byte count with an optional binary suffix. */
static bool parse_bytes(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return false;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return false;
    }
    if (*end == 'i' && end[1] == 'B')
        end += 2;
    else if (*end == 'B')
        end++;
    if (*end != '\0' || v > (SIZE_MAX >> shift))
        return false;
    *out = (size_t)v << shift;
    return true;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_seconds(const char *s, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > max)
        return false;
    *out = v;
    return true;
}

static void set_defaults(bridge_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->nats_urls = "nats://127.0.0.1:4222";
    o->prefix = "ticks";
    o->capacity = 1u << 20;
    o->bus_timeout_ms = -1;
    o->stats_s = 5;
    o->confirm = CONFIRM_SERVER;
    o->flush_us = 200;
    o->buffer_bytes = (size_t)64 << 20;
    o->when_full = FULL_WAIT;
    o->batch = 256;
    o->ack_timeout_ms = 2000;
    o->drain_timeout_s = 10;
    o->ack_prefix = "_TACHYON.ack";
    o->pending_msgs = 1000000;
    o->pending_bytes = 256 << 20;
}

static int parse_one(int c, const char *arg, bridge_options_t *o, bool *confirm_given)
{
    long l;
    double d;
    switch (c) {
    case OPT_LISTEN:
    case OPT_CONNECT:
        if (o->bus_path)
            return usage_error("give one of --listen and --connect, once (%s)", arg);
        o->bus_path = arg;
        o->bus_listen = (c == OPT_LISTEN);
        return 0;
    case OPT_CAPACITY:
        if (!parse_bytes(arg, &o->capacity) || o->capacity < 64 || (o->capacity & (o->capacity - 1)))
            return usage_error("--capacity %s: give a power of two of at least 64 bytes (e.g. 1M)", arg);
        return 0;
    case OPT_BUS_TIMEOUT:
        if (!parse_seconds(arg, 86400.0 * 365, &d))
            return usage_error("--bus-timeout %s: give seconds, e.g. 30", arg);
        o->bus_timeout_ms = (int)(d * 1000 > 2e9 ? 2e9 : d * 1000);
        return 0;
    case OPT_NATS: o->nats_urls = arg; return 0;
    case OPT_SUBJECT:
        if (!stream_prefix_valid(arg))
            return usage_error("--subject %s: give a NATS subject without wildcards or spaces, "
                               "at most 200 bytes, e.g. ticks or md.eu.ticks", arg);
        o->prefix = arg;
        return 0;
    case OPT_JETSTREAM:
        if (!*arg || strpbrk(arg, ". *>\t"))
            return usage_error("--jetstream %s: a stream name has no '.', '*', '>' or spaces", arg);
        o->jetstream = arg;
        return 0;
    case OPT_NAME: o->name = arg; return 0;
    case OPT_CONFIRM:
        if (strcmp(arg, "server") == 0)
            o->confirm = CONFIRM_SERVER;
        else if (strcmp(arg, "bridge") == 0)
            o->confirm = CONFIRM_BRIDGE;
        else
            return usage_error("--confirm %s: give server or bridge", arg);
        *confirm_given = true;
        return 0;
    case OPT_FLUSH_US:
        if (!parse_long(arg, 0, 10000000, &l))
            return usage_error("--flush-us %s: give microseconds from 0 to 10000000", arg);
        o->flush_us = l;
        return 0;
    case OPT_BUFFER:
        if (!parse_bytes(arg, &o->buffer_bytes) || o->buffer_bytes < 4096 || o->buffer_bytes > ((size_t)1 << 40))
            return usage_error("--buffer %s: give at least 4K (e.g. 64M)", arg);
        return 0;
    case OPT_WHEN_FULL:
        if (strcmp(arg, "wait") == 0)
            o->when_full = FULL_WAIT;
        else if (strcmp(arg, "drop") == 0)
            o->when_full = FULL_DROP;
        else
            return usage_error("--when-full %s: give wait or drop", arg);
        return 0;
    case OPT_BATCH:
        if (!parse_long(arg, 1, 65536, &l))
            return usage_error("--batch %s: give 1 to 65536", arg);
        o->batch = (unsigned)l;
        return 0;
    case OPT_ACK_TIMEOUT:
        if (!parse_long(arg, 10, 3600000, &l))
            return usage_error("--ack-timeout %s: give milliseconds from 10 to 3600000", arg);
        o->ack_timeout_ms = (int)l;
        return 0;
    case OPT_DRAIN_TIMEOUT:
        if (!parse_seconds(arg, 86400, &o->drain_timeout_s))
            return usage_error("--drain-timeout %s: give seconds, e.g. 10", arg);
        return 0;
    case OPT_ACK_PREFIX:
        if (!stream_prefix_valid(arg))
            return usage_error("--ack-prefix %s: give a NATS subject without wildcards or spaces", arg);
        o->ack_prefix = arg;
        return 0;
    case OPT_PENDING:
        if (!parse_long(arg, 1, 1000000000, &l))
            return usage_error("--pending %s: give a message count of at least 1", arg);
        o->pending_msgs = (int)l;
        return 0;
    case OPT_STAY: o->stay = true; return 0;
    case OPT_STATS:
        if (!parse_seconds(arg, 86400, &o->stats_s))
            return usage_error("--stats %s: give seconds (0 = never)", arg);
        return 0;
    default:
        return 2;
    }
}

int options_parse(int argc, char **argv, bridge_options_t *o)
{
    bool confirm_given = false;
    set_defaults(o);
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        print_usage();
        return 1;
    }
    if (argc < 2 || (strcmp(argv[1], "out") != 0 && strcmp(argv[1], "in") != 0))
        return usage_error("%s", argc < 2 ? "give a mode: out or in" : "the mode is out or in");
    o->mode = strcmp(argv[1], "out") == 0 ? MODE_OUT : MODE_IN;
    optind = 2;
    opterr = 0;
    for (;;) {
        int idx = 0;
        int c = getopt_long(argc, argv, "h", long_options, &idx);
        if (c == -1)
            break;
        if (c == 'h') {
            print_usage();
            return 1;
        }
        if (c == '?' || c == ':')
            return usage_error("unknown option or missing value: %s", argv[optind - 1]);
        int rc = parse_one(c, optarg, o, &confirm_given);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return usage_error("unexpected argument %s", argv[optind]);
    if (!o->bus_path)
        return usage_error("%s", "give the bus: --listen PATH or --connect PATH");
    if (o->jetstream && confirm_given && o->mode == MODE_OUT)
        return usage_error("%s", "--jetstream confirms through the stream; leave out --confirm");
    if (o->jetstream)
        o->confirm = CONFIRM_STREAM;
    if (!o->name)
        o->name = o->mode == MODE_OUT ? "tachyon-bridge-out" : "tachyon-bridge-in";
    return 0;
}
