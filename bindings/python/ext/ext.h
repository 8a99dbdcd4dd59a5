/*
 * ext.h - the pieces of the _tachyon extension that its files share.
 *
 *   module.c   module init and state, exceptions, helpers, type_id functions
 *   bus.c      the Bus type: lifecycle, copy-in sends, blocking receives
 *   txguard.c  TxGuard: a writable ring slot (send_zero_copy, send_packed)
 *   rxguard.c  RxGuard: one received message in place (recv_zero_copy)
 *   batch.c    Batch and BatchItem: many received messages in place
 *   message.c  Message: a received message copied out (iteration, recv)
 *
 * Lifetime rule: an object that points into the ring (a guard, a batch)
 * holds a strong reference to its Bus while it does, and the Bus counts every
 * exported buffer, so the mapping is never unmapped under a live memoryview.
 */
#ifndef TACHYON_PY_EXT_H
#define TACHYON_PY_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <time.h>

#include "tachyon.h"

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *tpy_newref(PyObject *o) { Py_INCREF(o); return o; }
#define Py_NewRef(o) tpy_newref((PyObject *)(o))
static inline int PyModule_AddObjectRef(PyObject *m, const char *name, PyObject *v)
{
    Py_INCREF(v);
    if (PyModule_AddObject(m, name, v) < 0) {
        Py_DECREF(v);
        return -1;
    }
    return 0;
}
#endif

/* Blocking waits run in slices this long; between two slices the GIL is
 * taken back and pending signals (Ctrl-C) are handled. */
#define TPY_SLICE_MS 50
/* How long a producer goes without asking whether its consumer still lives. */
#define TPY_TX_LIVENESS_MS 50
/* Sends between two looks at the clock for the liveness check above. */
#define TPY_TX_LIVENESS_EVERY 8
/* Spins with the GIL held before a receive releases it to wait. */
#define TPY_RX_SPINS_WITH_GIL 256
/* Spins inside the C wait (GIL released) before it sleeps on the futex. */
#define TPY_RX_SPINS_NOGIL 2000
/* Guard objects kept per bus for reuse (the seed's loop needs two). */
#define TPY_GUARD_POOL 4

typedef struct {
    PyTypeObject *Bus_Type;
    PyTypeObject *TxGuard_Type;
    PyTypeObject *RxGuard_Type;
    PyTypeObject *Batch_Type;
    PyTypeObject *BatchItem_Type;
    PyTypeObject *Message_Type;
    PyTypeObject *GuardDescr_Type;
    PyObject *TachyonError;
    PyObject *PeerDeadError;
    PyObject *PeerClosedError;
    PyObject *RingFullError;
    PyObject *TimeoutError;
    PyObject *struct_Struct;     /* struct.Struct, for send_packed("fmt", ...) */
    /* rpc.c's types (borrowed: the module's dict holds them). */
    PyTypeObject *RpcBus_Type, *RpcTxGuard_Type, *RpcRxGuard_Type;
    /* Interned keyword names, compared by identity first. */
    PyObject *kw_size, *kw_type_id, *kw_timeout, *kw_data, *kw_max_msgs, *kw_record_size,
        *kw_path, *kw_capacity, *kw_pack_into;
} tpy_state;

/* Guard and batch lifecycle. */
enum tpy_hold {
    TPY_IDLE = 0,     /* pooled or finished: points at nothing */
    TPY_ACTIVE = 1,   /* holds a slot / message(s) of the ring */
    TPY_ORPHANED = 2, /* left with a buffer still exported: finished on its release */
};

typedef struct BusObject BusObject;

/*
 * The head shared by TxGuard, RxGuard and Batch: their __enter__ and
 * __exit__, made once per guard and reused (guardmeth.c), so that a
 * with-statement on a pooled guard allocates nothing.
 */
#define TPY_GUARD_HEAD \
    PyObject_HEAD      \
    PyObject *bound[2];

typedef struct {
    TPY_GUARD_HEAD
} GuardHeadObject;

typedef struct {
    TPY_GUARD_HEAD
    BusObject *bus;         /* strong while not IDLE */
    char *ptr;              /* the slot's payload */
    Py_ssize_t size;        /* writable bytes (the size asked for) */
    PyObject *actual_size;  /* an int, checked at commit: a plain slot so that
                               "tx.actual_size = n" is the interpreter's
                               fastest attribute store */
    PyObject *size_obj;     /* the int given as size (actual_size's default) */
    uint32_t type_id;
    int hold;
    Py_ssize_t exports;
} TxGuardObject;

typedef struct {
    TPY_GUARD_HEAD
    BusObject *bus;         /* strong while not IDLE */
    const char *ptr;
    Py_ssize_t size;
    PyObject *type_id_obj;  /* ints in plain slots: the fastest attribute loads */
    PyObject *size_obj;
    int hold;
    Py_ssize_t exports;
} RxGuardObject;

typedef struct {
    TPY_GUARD_HEAD
    BusObject *bus;         /* strong while not IDLE */
    tachyon_msg_view_t *views;
    Py_ssize_t count;
    int hold;
    Py_ssize_t exports;
} BatchObject;

typedef struct {
    PyObject_HEAD
    BatchObject *batch;
    Py_ssize_t index;
    PyObject *type_id_obj;
    PyObject *size_obj;
} BatchItemObject;

typedef struct {
    PyObject_HEAD
    PyObject *data;         /* bytes */
    PyObject *type_id_obj;
    PyObject *size_obj;
} MessageObject;

struct BusObject {
    PyObject_HEAD
    tpy_state *st;
    tachyon_bus_t *bus;      /* NULL once closed */
    PyObject *path;
    PyObject *weakrefs;
    Py_ssize_t exports;      /* buffers exported by all guards/batches of this bus */
    int closing;             /* close() asked while another thread waits */
    int rx_waiting;          /* a thread waits in a receive with the GIL released */
    int tx_waiting;          /* a thread waits for room with the GIL released */
    PyObject *tx_holder;     /* borrowed: the guard holding the acquired slot */
    PyObject *rx_holder;     /* borrowed: the guard/batch holding received messages */
    int64_t next_liveness_ms;
    int liveness_countdown;  /* sends until the clock is read again */
    PyObject *last_size_obj; /* the last int given as a size, and its value */
    Py_ssize_t last_size;
    Py_ssize_t max_payload;
    TxGuardObject *tx_pool[TPY_GUARD_POOL];
    RxGuardObject *rx_pool[TPY_GUARD_POOL];
    /* send_packed cache: the last format/Struct given and its bound pack_into. */
    PyObject *packed_key;
    PyObject *packed_pack_into;
    Py_ssize_t packed_size;
};

/* module.c */
extern PyModuleDef tpy_module_def;
int tpy_set_error(tpy_state *st, tachyon_error_t err, const char *doing);
int tpy_closed_error(void);
int tpy_parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                   PyObject *const *names, Py_ssize_t npos_max, Py_ssize_t nnames,
                   Py_ssize_t nrequired, const char *fname, PyObject **out);
int tpy_timeout_ms(PyObject *obj, int64_t *out_ms);
int tpy_type_id_slow(PyObject *obj, uint32_t *out);

/* The value of an exact int that fits one internal digit (0 <= v < 2**30),
 * read without a call: this is on every send. -1 when it is not one. */
static inline long tpy_small_int(PyObject *obj)
{
    if (!PyLong_CheckExact(obj))
        return -1;
#if PY_VERSION_HEX >= 0x030C0000
    if (!PyUnstable_Long_IsCompact((PyLongObject *)obj))
        return -1;
    Py_ssize_t v = PyUnstable_Long_CompactValue((PyLongObject *)obj);
    return v >= 0 ? (long)v : -1;
#else
    Py_ssize_t n = Py_SIZE(obj);
    if (n == 0)
        return 0;
    if (n == 1)
        return (long)((PyLongObject *)obj)->ob_digit[0];
    return -1;
#endif
}

/* A type_id: an int in [0, 2**32). */
static inline int tpy_type_id(PyObject *obj, uint32_t *out)
{
    long v = tpy_small_int(obj);
    if (v >= 0) {
        *out = (uint32_t)v;
        return 0;
    }
    return tpy_type_id_slow(obj, out);
}
/* A cheap clock (vDSO, ~4 ms resolution) for the producer's liveness checks. */
static inline int64_t tpy_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
PyObject *tpy_no_new(PyTypeObject *type, PyObject *args, PyObject *kwds);

/* bus.c */
int tpy_bus_type_init(PyObject *module, tpy_state *st);
void tpy_bus_export_released(BusObject *bus);
int tpy_bus_check_tx_free(BusObject *self);
int tpy_bus_check_rx_free(BusObject *self);
void *tpy_bus_acquire_tx(BusObject *self, Py_ssize_t size, int64_t timeout_ms);

/* txguard.c */
int tpy_txguard_type_init(PyObject *module, tpy_state *st);
PyObject *tpy_bus_send_zero_copy(BusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames);
PyObject *tpy_bus_send_packed(BusObject *self, PyObject *const *args, Py_ssize_t nargs);
void tpy_txguard_bus_closing(TxGuardObject *g);

/* rxguard.c */
int tpy_rxguard_type_init(PyObject *module, tpy_state *st);
PyObject *tpy_bus_recv_zero_copy(BusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames);
void tpy_rxguard_bus_closing(RxGuardObject *g);

/* batch.c */
int tpy_batch_type_init(PyObject *module, tpy_state *st);
PyObject *tpy_bus_drain_batch(BusObject *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames);
void tpy_batch_bus_closing(BatchObject *b);

/* guardmeth.c: install __enter__/__exit__ on a guard type. */
int tpy_guardmeth_types_init(PyObject *module, tpy_state *st);
int tpy_install_guard_methods(tpy_state *st, PyTypeObject *type, PyMethodDef *defs);
int tpy_guard_unreferenced(PyObject *guard);
int tpy_guard_traverse(PyObject *guard, visitproc visit, void *arg);
void tpy_guard_clear_bound(PyObject *guard);

/* message.c */
int tpy_message_type_init(PyObject *module, tpy_state *st);
PyObject *tpy_message_new(tpy_state *st, uint32_t type_id, const void *data, size_t size);

/* Receive helper in bus.c: wait for one message (GIL released in slices).
 * Returns the payload, or NULL with an exception set. */
const void *tpy_bus_wait_rx(BusObject *self, uint32_t *type_id, size_t *size, int64_t timeout_ms);
size_t tpy_bus_wait_batch(BusObject *self, tachyon_msg_view_t *views, size_t max, int64_t timeout_ms);

/* rpc.c: TachyonRpcBus, RpcTxGuard and RpcRxGuard (request/reply). */
int tpy_rpc_types_init(PyObject *module, tpy_state *st);

#endif
