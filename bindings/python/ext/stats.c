/*
 * stats.c - Bus._stats(): tachyon_bus_stats as a tuple, in the order of the
 * fields of tachyon.BusStats (tachyon/stats.py), which Bus.stats() builds
 * from it.
 */
#include "ext.h"

PyObject *tpy_bus_stats_tuple(TachyonBusObject *self)
{
    if (tpy_core_usable(self) < 0)
        return NULL;
    /* The C call reads both sides' private counters: not while another
     * thread is inside a call on this handle (a blocking one releases the GIL). */
    if (self->rx_waiting || self->tx_waiting) {
        PyErr_SetString(self->st->StateError,
                        "another thread is inside a blocking call on this bus; call stats() from that "
                        "thread, or once its call has returned");
        return NULL;
    }
    tachyon_stats_t s;
    tachyon_error_t err = tachyon_bus_stats(self->bus, &s);
    if (err != TACHYON_SUCCESS)
        return tpy_raise_code(self->st, err, TPY_OP_OTHER, "(stats)"), NULL;
    return Py_BuildValue("(KKKKKKKKKKKdiNkk)", (unsigned long long)s.messages_sent,
                         (unsigned long long)s.bytes_sent, (unsigned long long)s.messages_received,
                         (unsigned long long)s.bytes_received, (unsigned long long)s.ring_full,
                         (unsigned long long)s.sleeps, (unsigned long long)s.wakeups,
                         (unsigned long long)s.capacity, (unsigned long long)s.fill_bytes,
                         (unsigned long long)s.fill_max_bytes, (unsigned long long)s.lag_messages,
                         (double)s.idle_ns / 1e9, (int)s.peer_pid, PyBool_FromLong(s.peer_alive),
                         (unsigned long)s.features, (unsigned long)s.state);
}
