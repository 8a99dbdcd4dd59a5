/* options.h - tachyon-bridge's command line. */
#ifndef TACHYON_BRIDGE_OPTIONS_H
#define TACHYON_BRIDGE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { MODE_OUT, MODE_IN } bridge_mode_t;

/* How the out side learns that a message may leave its buffer. */
typedef enum {
    CONFIRM_SERVER, /* the NATS server processed it (a PING answered after it) */
    CONFIRM_BRIDGE, /* a tachyon-bridge in wrote it into its bus (end to end) */
    CONFIRM_STREAM  /* the JetStream stream stored it (--jetstream) */
} confirm_t;

typedef enum { FULL_WAIT, FULL_DROP } when_full_t;

typedef struct {
    bridge_mode_t mode;
    const char *nats_urls;    /* comma-separated */
    const char *prefix;       /* subject prefix */
    const char *bus_path;
    bool bus_listen;          /* listen on bus_path (else connect to it) */
    size_t capacity;          /* ring bytes when listening */
    int bus_timeout_ms;       /* < 0: wait forever for the bus peer */
    const char *jetstream;    /* stream name or NULL */
    double stats_s;           /* 0: no periodic counts */
    const char *name;         /* NATS connection name */
    /* out */
    confirm_t confirm;
    int64_t flush_us;
    size_t buffer_bytes;
    when_full_t when_full;
    unsigned batch;
    int ack_timeout_ms;
    double drain_timeout_s;
    const char *ack_prefix;
    /* in */
    int pending_msgs;
    int pending_bytes;
    bool stay;                /* keep running after a stream's end */
} bridge_options_t;

/* Parse argv. Returns 0 to run, 1 when --help was printed (exit 0), 2 on a
 * usage error (already reported on stderr). */
int options_parse(int argc, char **argv, bridge_options_t *opts);

#endif
