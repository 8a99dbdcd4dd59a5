/* bus_side.c - see bus_side.h. */
#define _GNU_SOURCE
#include "bus_side.h"
#include "bridge.h"

#include <string.h>

/* Waits are cut into slices so that a stop request is seen within one. */
#define BUS_WAIT_SLICE_MS 200
#define TX_SPIN 2000

static int slice_ms(int64_t deadline_ns)
{
    if (deadline_ns < 0)
        return BUS_WAIT_SLICE_MS;
    int64_t left = (deadline_ns - now_ns()) / 1000000;
    if (left <= 0)
        return 0;
    return left < BUS_WAIT_SLICE_MS ? (int)left : BUS_WAIT_SLICE_MS;
}

static tachyon_error_t open_once(const bridge_options_t *opts, int timeout_ms, tachyon_bus_t **bus)
{
    if (opts->bus_listen) {
        tachyon_listen_opts_t lo;
        tachyon_listen_opts_init(&lo, opts->capacity);
        lo.timeout_ms = timeout_ms;
        return tachyon_bus_listen_ex(opts->bus_path, &lo, bus);
    }
    return tachyon_bus_connect_timeout(opts->bus_path, timeout_ms, bus);
}

tachyon_bus_t *bus_open(const bridge_options_t *opts, const char *role)
{
    int64_t deadline = opts->bus_timeout_ms < 0 ? -1 : now_ns() + (int64_t)opts->bus_timeout_ms * 1000000;
    say("%s %s and waiting for the bus %s", opts->bus_listen ? "listening on" : "connecting to",
        opts->bus_path, role);
    for (;;) {
        tachyon_bus_t *bus = NULL;
        int wait = slice_ms(deadline);
        tachyon_error_t err = open_once(opts, wait, &bus);
        if (err == TACHYON_SUCCESS) {
            say("bus %s connected (ring %zu bytes, largest message %zu bytes)", role,
                tachyon_bus_capacity(bus), tachyon_bus_max_payload(bus));
            return bus;
        }
        if (stop_requested()) {
            say("stopped (%s) before the bus %s came", stop_signal_name(), role);
            return NULL;
        }
        if (err != TACHYON_ERR_TIMEOUT && err != TACHYON_ERR_INTERRUPTED) {
            say("cannot open the bus at %s: %s", opts->bus_path, tachyon_error_message(err));
            return NULL;
        }
        if (deadline >= 0 && now_ns() >= deadline) {
            say("no bus %s at %s after %.1f s", role, opts->bus_path, opts->bus_timeout_ms / 1000.0);
            return NULL;
        }
    }
}

const char *bus_end_sentence(tachyon_error_t err)
{
    return tachyon_error_message(err);
}

produce_result_t bus_produce(tachyon_bus_t *bus, const void *data, size_t len, uint32_t type_id,
                             tachyon_error_t *err, int *waited)
{
    void *slot = tachyon_acquire_tx(bus, len);
    while (!slot) {
        tachyon_error_t e = tachyon_bus_last_error(bus);
        if (e != TACHYON_ERR_FULL && e != TACHYON_ERR_TIMEOUT && e != TACHYON_ERR_INTERRUPTED) {
            *err = e;
            return (e == TACHYON_ERR_PEER_DEAD || e == TACHYON_ERR_PEER_CLOSED) ? PRODUCE_PEER_GONE
                                                                               : PRODUCE_FAILED;
        }
        if (stop_requested() >= 2)
            return PRODUCE_STOPPED;
        *waited = 1;
        slot = tachyon_acquire_tx_blocking(bus, len, TX_SPIN, BUS_WAIT_SLICE_MS);
    }
    memcpy(slot, data, len);
    tachyon_error_t e = tachyon_commit_tx(bus, len, type_id);
    if (e != TACHYON_SUCCESS) {
        *err = e;
        return PRODUCE_FAILED;
    }
    return PRODUCE_OK;
}
