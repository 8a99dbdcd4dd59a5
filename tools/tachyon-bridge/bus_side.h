/*
 * bus_side.h - the Tachyon side of the bridge: opening the bus as listener
 * or connector, and writing into it with back-pressure. Only the public API
 * of tachyon.h is used.
 */
#ifndef TACHYON_BRIDGE_BUS_SIDE_H
#define TACHYON_BRIDGE_BUS_SIDE_H

#include <stddef.h>
#include <stdint.h>

#include <tachyon.h>

#include "options.h"

/* Listen on or connect to opts->bus_path, waiting for the peer up to
 * opts->bus_timeout_ms and giving up early when a stop is requested. NULL on
 * failure (reported). `role` names what the peer is ("producer", "reader"). */
tachyon_bus_t *bus_open(const bridge_options_t *opts, const char *role);

/* Why the peer's side of the bus ended, as a sentence: err is the error the
 * failing receive or send left (PEER_CLOSED, PEER_DEAD, ...). */
const char *bus_end_sentence(tachyon_error_t err);

typedef enum {
    PRODUCE_OK,
    PRODUCE_PEER_GONE, /* the reader left; *err says how */
    PRODUCE_STOPPED,   /* a stop was requested while waiting for room */
    PRODUCE_FAILED     /* another error; *err says which */
} produce_result_t;

/*
 * Copy `len` bytes into a slot and publish it with `type_id`, waiting for
 * room for as long as the reader is alive (the bus's back-pressure). The
 * caller has checked len <= tachyon_bus_max_payload(bus). `waited` is set
 * when the call had to wait for room.
 */
produce_result_t bus_produce(tachyon_bus_t *bus, const void *data, size_t len, uint32_t type_id,
                             tachyon_error_t *err, int *waited);

#endif
