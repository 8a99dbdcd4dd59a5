/*
 * layout_probe.c - what the C compiler thinks of tachyon.h, for the Rust
 * layout test (tests/layout.rs). Nothing here is linked into a program that
 * does not call these functions: the static archive only contributes objects
 * that are referenced.
 */
#include <stddef.h>
#include <string.h>

#include "tachyon.h"

#define ENTRY(expr) { #expr, (long long)(expr) }

static const struct {
    const char *name;
    long long value;
} probe_table[] = {
    ENTRY(sizeof(tachyon_msg_view_t)),
    ENTRY(offsetof(tachyon_msg_view_t, ptr)),
    ENTRY(offsetof(tachyon_msg_view_t, actual_size)),
    ENTRY(offsetof(tachyon_msg_view_t, reserved_)),
    ENTRY(offsetof(tachyon_msg_view_t, type_id)),
    ENTRY(offsetof(tachyon_msg_view_t, padding_)),
    ENTRY(sizeof(tachyon_listen_opts_t)),
    ENTRY(sizeof(tachyon_side_info_t)),
    ENTRY(sizeof(tachyon_segment_info_t)),
    ENTRY(offsetof(tachyon_segment_info_t, producer)),
    ENTRY(offsetof(tachyon_segment_info_t, consumer)),
    ENTRY(offsetof(tachyon_side_info_t, active_ns)),
    ENTRY(sizeof(tachyon_stats_t)),
    ENTRY(offsetof(tachyon_stats_t, lag_messages)),
    ENTRY(offsetof(tachyon_stats_t, idle_ns)),
    ENTRY(offsetof(tachyon_stats_t, peer_pid)),
    ENTRY(offsetof(tachyon_stats_t, state)),
    ENTRY(offsetof(tachyon_listen_opts_t, capacity)),
    ENTRY(offsetof(tachyon_listen_opts_t, timeout_ms)),
    ENTRY(offsetof(tachyon_listen_opts_t, keep_waiting)),
    ENTRY(offsetof(tachyon_listen_opts_t, n_allowed_uids)),
    ENTRY(offsetof(tachyon_listen_opts_t, allowed_uids)),
    ENTRY(sizeof(uid_t)),
    ENTRY(sizeof(tachyon_error_t)),
    ENTRY(sizeof(tachyon_state_t)),
    ENTRY(TACHYON_MAX_ALLOWED_UIDS),
    ENTRY(TACHYON_MAX_PUBLISH_BATCH),
    ENTRY(TACHYON_WAIT_RX),
    ENTRY(TACHYON_WAIT_TX),
    ENTRY(TACHYON_SUCCESS),
    ENTRY(TACHYON_ERR_NULL_PTR),
    ENTRY(TACHYON_ERR_MEM),
    ENTRY(TACHYON_ERR_OPEN),
    ENTRY(TACHYON_ERR_TRUNCATE),
    ENTRY(TACHYON_ERR_CHMOD),
    ENTRY(TACHYON_ERR_SEAL),
    ENTRY(TACHYON_ERR_MAP),
    ENTRY(TACHYON_ERR_INVALID_SZ),
    ENTRY(TACHYON_ERR_FULL),
    ENTRY(TACHYON_ERR_EMPTY),
    ENTRY(TACHYON_ERR_NETWORK),
    ENTRY(TACHYON_ERR_SYSTEM),
    ENTRY(TACHYON_ERR_INTERRUPTED),
    ENTRY(TACHYON_ERR_ABI_MISMATCH),
    ENTRY(TACHYON_ERR_PEER_DEAD),
    ENTRY(TACHYON_ERR_PERMISSION),
    ENTRY(TACHYON_ERR_FATAL),
    ENTRY(TACHYON_ERR_STATE),
    ENTRY(TACHYON_ERR_TIMEOUT),
    ENTRY(TACHYON_ERR_ADDR_IN_USE),
    ENTRY(TACHYON_ERR_NOT_SOCKET),
    ENTRY(TACHYON_ERR_PATH_TOO_LONG),
    ENTRY(TACHYON_ERR_PEER_CLOSED),
    ENTRY(TACHYON_ERR_FORKED),
    ENTRY(TACHYON_ERR_WRONG_REPLY),
    ENTRY(TACHYON_ERR_OVERRUN),
    ENTRY(sizeof(tachyon_fan_msg_t)),
    ENTRY(offsetof(tachyon_fan_msg_t, size)),
    ENTRY(offsetof(tachyon_fan_msg_t, type_id)),
    ENTRY(offsetof(tachyon_fan_msg_t, producer)),
    ENTRY(offsetof(tachyon_fan_msg_t, pid)),
    ENTRY(offsetof(tachyon_fan_msg_t, seq)),
    ENTRY(TACHYON_FAN_BLOCK),
    ENTRY(TACHYON_FAN_DROP_SLOW),
    ENTRY(TACHYON_FAN_START_NEWEST),
    ENTRY(TACHYON_FAN_START_OLDEST),
    ENTRY(TACHYON_STATE_UNINITIALIZED),
    ENTRY(TACHYON_STATE_INITIALIZING),
    ENTRY(TACHYON_STATE_READY),
    ENTRY(TACHYON_STATE_DISCONNECTED),
    ENTRY(TACHYON_STATE_FATAL_ERROR),
    ENTRY(TACHYON_STATE_UNKNOWN),
};

/* The value of `name` as spelled in probe_table; *found = 0 if unknown. */
long long tachyon_sys_probe(const char *name, int *found);
long long tachyon_sys_probe(const char *name, int *found)
{
    for (size_t i = 0; i < sizeof(probe_table) / sizeof(probe_table[0]); i++) {
        if (strcmp(probe_table[i].name, name) == 0) {
            *found = 1;
            return probe_table[i].value;
        }
    }
    *found = 0;
    return 0;
}

/* The header's macros, evaluated by C. */
unsigned tachyon_sys_probe_type_id(unsigned route, unsigned type);
unsigned tachyon_sys_probe_type_id(unsigned route, unsigned type)
{
    return TACHYON_TYPE_ID(route, type);
}
unsigned tachyon_sys_probe_route_id(unsigned id);
unsigned tachyon_sys_probe_route_id(unsigned id)
{
    return TACHYON_ROUTE_ID(id);
}
unsigned tachyon_sys_probe_msg_type(unsigned id);
unsigned tachyon_sys_probe_msg_type(unsigned id)
{
    return TACHYON_MSG_TYPE(id);
}
