/*
 * ext.h - the pieces of the _tachyon extension that its files share.
 *
 *   module.c     module init and state, argument helpers, type_id functions,
 *                the fork counter
 *   errors.c     the exception classes and the translation of C errors
 *   core.c       TachyonBus: one C handle, its lifecycle, the waits shared by
 *                every send and receive, and the published low-level methods
 *   bus.c        Bus: the high-level object (published Bus plus this
 *                package's sends, receives and timeouts), acting on its
 *                TachyonBus (Bus._bus)
 *   txguard.c    TxGuard: a writable ring slot (send_zero_copy, acquire_tx,
 *                send_packed)
 *   rxguard.c    RxGuard: one received message in place (recv_zero_copy,
 *                acquire_rx)
 *   batch.c      RxBatchGuard and RxMsgView: many received messages in place
 *   dlpack.c     DLPack export and ArrayView (typed views) of received messages
 *   message.c    Message: a received message copied out (iteration, recv)
 *   guardmeth.c  __enter__/__exit__ of the guards without an allocation
 *   loop.c       the event-loop descriptor (fileno, arm) and its watcher hook
 *   stats.c      Bus._stats(): tachyon_bus_stats for tachyon.BusStats
 *   fan.c        fan-out and fan-in handles and their in-place messages
 *
 * Lifetime rules.
 *  - An object that points into the ring (a guard, a batch) holds a strong
 *    reference to its TachyonBus while it does, and every buffer or DLPack
 *    tensor exported from it is counted (on it and on the TachyonBus), so the
 *    segment is never unmapped, and a slot never handed back, under a live
 *    memoryview or tensor.
 *  - A call that releases the GIL holds its own C reference to the handle
 *    (tachyon_bus_ref) for as long as it is inside the library, so close()
 *    from another thread cannot unmap the segment under it.
 *  - Every error is read in the thread that got it, right after the failing
 *    call (the C library keeps errors per thread).
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
 * taken back, pending signals (Ctrl-C) are handled and a close() from
 * another thread is noticed. */
#define TPY_SLICE_MS 50
/* How long a producer goes without asking whether its consumer still lives. */
#define TPY_TX_LIVENESS_MS 50
/* Sends between two looks at the clock for the liveness check above. */
#define TPY_TX_LIVENESS_EVERY 8
/* Spins with the GIL held before a receive releases it to wait. */
#define TPY_RX_SPINS_WITH_GIL 256
/* Spins inside the C wait (GIL released) before it sleeps on the futex, for
 * the receives that take no spin_threshold. */
#define TPY_RX_SPINS_NOGIL 2000
/* The published default spin_threshold of acquire_rx and drain_batch. */
#define TPY_DEFAULT_SPIN_THRESHOLD 10000
/* Message objects kept for reuse (a loop holds two at a time). */
#define TPY_MESSAGE_FREELIST 8
/* Guard objects kept per bus for reuse (the seed's loop needs two). */
#define TPY_GUARD_POOL 4
/* Timeouts are capped here (about 31 years): "practically forever". */
#define TPY_TIMEOUT_MAX_NS ((int64_t)1000000000 * 1000000000)

/* What a call was doing when it failed: picks the hint of its exception. */
typedef enum {
    TPY_OP_LISTEN,
    TPY_OP_CONNECT,
    TPY_OP_SEND,       /* sends that may wait for room */
    TPY_OP_ACQUIRE_TX, /* TachyonBus.acquire_tx: never waits */
    TPY_OP_COMMIT,
    TPY_OP_RECV,
    TPY_OP_DRAIN,
    TPY_OP_RELEASE,
    TPY_OP_NUMA,
    TPY_OP_OTHER,
} tpy_op;

/* A C error and its sentence, copied right after the failing call: the
 * sentence is only valid until this thread's next call into the library. */
typedef struct {
    tachyon_error_t code;
    char text[400];
} tpy_error;

typedef struct {
    PyObject_HEAD
    PyObject *data;         /* bytes (or whatever a user stored) */
    PyObject *type_id_obj;
    PyObject *size_obj;
} MessageObject;

typedef struct {
    PyTypeObject *TachyonBus_Type;
    PyTypeObject *Bus_Type;
    PyTypeObject *TxGuard_Type;
    PyTypeObject *RxGuard_Type;
    PyTypeObject *Batch_Type;
    PyTypeObject *BatchItem_Type;
    PyTypeObject *ArrayView_Type;
    PyTypeObject *Message_Type;
    PyTypeObject *GuardDescr_Type;
    PyObject *TachyonError;
    PyObject *PeerDeadError;
    PyObject *PeerClosedError;
    PyObject *RingFullError;
    PyObject *TimeoutError;
    PyObject *ConnectionError;
    PyObject *ValueError;
    PyObject *PermissionError;
    PyObject *OSError;
    PyObject *MemoryError;
    PyObject *StateError;
    PyObject *ClosedError;
    PyObject *struct_Struct;     /* struct.Struct, for send_packed("fmt", ...) */
    /* Messages freed and kept for reuse: iterating a bus makes one per
     * message, and allocating a collectable object costs more than the
     * copy of a small payload. */
    MessageObject *free_messages[TPY_MESSAGE_FREELIST];
    int n_free_messages;
    /* rpc.c's types (borrowed: the module's dict holds them). */
    PyTypeObject *RpcBus_Type, *RpcTxGuard_Type, *RpcRxGuard_Type;
    /* Interned keyword names, compared by identity first. */
    PyObject *kw_size, *kw_type_id, *kw_timeout, *kw_data, *kw_max_msgs, *kw_record_size,
        *kw_path, *kw_socket_path, *kw_capacity, *kw_pack_into, *kw_spin_threshold,
        *kw_max_payload_size, *kw_pure_spin, *kw_node_id, *kw_stream, *kw_max_version,
        *kw_dl_device, *kw_copy, *kw_format, *kw_shape, *kw_offset, *kw_route, *kw_msg_type;
} tpy_state;

/* Guard and batch lifecycle. */
enum tpy_hold {
    TPY_IDLE = 0,     /* pooled or finished: points at nothing */
    TPY_ACTIVE = 1,   /* holds a slot / message(s) of the ring */
    TPY_ORPHANED = 2, /* left with a buffer or tensor still exported: finished
                         when the last one is released */
};

typedef struct TachyonBusObject TachyonBusObject;

/*
 * The head shared by TxGuard, RxGuard and RxBatchGuard: their cached bound
 * __enter__/__exit__ (guardmeth.c), the TachyonBus they hold while not IDLE,
 * their state and their count of live exports (memoryviews, tensors).
 */
#define TPY_GUARD_HEAD          \
    PyObject_HEAD               \
    PyObject *bound[2];         \
    TachyonBusObject *bus;      \
    int hold;                   \
    Py_ssize_t exports;

typedef struct {
    TPY_GUARD_HEAD
} GuardHeadObject;

typedef struct {
    TPY_GUARD_HEAD
    char *ptr;              /* the slot's payload */
    Py_ssize_t size;        /* writable bytes (the size asked for) */
    PyObject *actual_size;  /* an int, checked at commit: a plain slot so that
                               "tx.actual_size = n" is the interpreter's
                               fastest attribute store */
    PyObject *size_obj;     /* the int given as size (actual_size's default) */
    uint32_t type_id;
} TxGuardObject;

typedef struct {
    TPY_GUARD_HEAD
    const char *ptr;
    Py_ssize_t size;
    PyObject *type_id_obj;  /* ints in plain slots: the fastest attribute loads */
    PyObject *size_obj;
} RxGuardObject;

typedef struct {
    TPY_GUARD_HEAD
    tachyon_msg_view_t *views;
    Py_ssize_t count;
} BatchObject;

typedef struct {
    PyObject_HEAD
    BatchObject *batch;
    Py_ssize_t index;
    PyObject *type_id_obj;
    PyObject *size_obj;
} BatchItemObject;

/* The low-level handle: one tachyon_bus_t (NULL until opened, and again
 * after close/destroy). */
struct TachyonBusObject {
    PyObject_HEAD
    tpy_state *st;
    tachyon_bus_t *bus;      /* NULL when not open */
    unsigned fork_gen;       /* tpy_fork_generation when it was opened */
    int ever_opened;         /* for the message of the "not open" error */
    int opening;             /* listen/connect running in some thread */
    int destroy_requested;   /* destroy() while opening: close what it opens */
    PyObject *path;          /* as given to listen/connect (None before) */
    PyObject *weakrefs;
    Py_ssize_t exports;      /* buffers and tensors exported by all guards */
    int rx_waiting;          /* a thread is in a receive with the GIL released */
    int tx_waiting;          /* a thread is in a send with the GIL released */
    PyObject *tx_holder;     /* borrowed: the guard holding the acquired slot */
    PyObject *rx_holder;     /* borrowed: the guard/batch holding received messages */
    int64_t next_liveness_ms;
    int liveness_countdown;  /* sends until the clock is read again */
    PyObject *last_size_obj; /* the last int given as a size, and its value */
    Py_ssize_t last_size;
    Py_ssize_t max_payload;
    Py_ssize_t capacity;
    TxGuardObject *tx_pool[TPY_GUARD_POOL];
    RxGuardObject *rx_pool[TPY_GUARD_POOL];
    /* send_packed cache: the last format/Struct given and its bound pack_into. */
    PyObject *packed_key;
    PyObject *packed_pack_into;
    Py_ssize_t packed_size;
    /* The event-loop layer's watcher of this handle's descriptor (loop.c):
     * told before the handle closes. NULL when nothing watches. */
    PyObject *watcher;
};

/* The high-level object: Bus._bus is its TachyonBus, which does the work. */
typedef struct {
    PyObject_HEAD
    TachyonBusObject *core;
    PyObject *weakrefs;
} BusObject;

/* ---- module.c ---------------------------------------------------------------- */
extern PyModuleDef tpy_module_def;
/* Bumped in every fork()ed child: a handle opened under another value
 * belongs to an ancestor process. */
extern volatile unsigned tpy_fork_generation;

int tpy_parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                   PyObject *const *names, Py_ssize_t npos_max, Py_ssize_t nnames,
                   Py_ssize_t nrequired, const char *fname, PyObject **out);
int tpy_timeout_ns(PyObject *obj, int64_t *out_ns);
int tpy_type_id_slow(PyObject *obj, uint32_t *out);
int tpy_spin_arg(PyObject *obj, uint32_t *out);
PyObject *tpy_no_new(PyTypeObject *type, PyObject *args, PyObject *kwds);
int64_t tpy_monotonic_ns(void);
tpy_state *tpy_state_of_type(PyTypeObject *type);

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

/* ---- errors.c ---------------------------------------------------------------- */
int tpy_errors_init(PyObject *module, tpy_state *st);
/* Copy `code` and this thread's sentence for it (call right after the failure). */
void tpy_error_capture(tpy_error *e, tachyon_error_t code);
/* Raise the exception for a captured error; `subject` (may be NULL) names
 * what the call worked on, e.g. the socket path. Returns -1. */
int tpy_raise(tpy_state *st, const tpy_error *e, tpy_op op, const char *subject);
/* No error yet (without zeroing the whole sentence buffer: waits declare one
 * per slice). */
static inline void tpy_error_clear(tpy_error *e)
{
    e->code = TACHYON_SUCCESS;
    e->text[0] = '\0';
}
/* As tpy_error_capture, but the sentence is copied only for an error the
 * caller will raise as it is: a wait goes on after EMPTY, TIMEOUT,
 * INTERRUPTED and FULL, whose sentences carry no detail anyway. */
static inline void tpy_error_note(tpy_error *e, tachyon_error_t code)
{
    if (code == TACHYON_ERR_EMPTY || code == TACHYON_ERR_TIMEOUT || code == TACHYON_ERR_INTERRUPTED ||
        code == TACHYON_ERR_FULL) {
        e->code = code;
        e->text[0] = '\0';
    } else {
        tpy_error_capture(e, code);
    }
}
/* Capture and raise at once: the failing call was the last one. Returns -1. */
int tpy_raise_code(tpy_state *st, tachyon_error_t code, tpy_op op, const char *subject);
/* Capture and raise, the message starting with `doing` ("call", "listen on
 * '/p'"): for callers that name their operation themselves. Returns -1. */
int tpy_raise_doing(tpy_state *st, tachyon_error_t code, const char *doing);
/* Raise an error of class `code` with our own sentence. Returns -1. */
int tpy_raise_text(tpy_state *st, tachyon_error_t code, tpy_op op, const char *fmt, ...);
/* The exception (not raised) a C error code becomes, with the library's text. */
PyObject *tpy_exception_for_code(tpy_state *st, tachyon_error_t code);
/* ClosedError for a bus that is not open (never opened, or closed). */
int tpy_not_open_error(TachyonBusObject *self);

/* ---- core.c ------------------------------------------------------------------ */
int tpy_core_type_init(PyObject *module, tpy_state *st);
TachyonBusObject *tpy_core_new(tpy_state *st);
/* Open as listener/connector; 0, or -1 with an exception. */
int tpy_core_listen(TachyonBusObject *self, PyObject *path, size_t capacity, int64_t timeout_ns);
int tpy_core_connect(TachyonBusObject *self, PyObject *path, int64_t timeout_ns);
int tpy_core_close(TachyonBusObject *self);
/* Make a closed handle the owner of an open C bus (fan-in producers). */
void tpy_core_adopt(TachyonBusObject *self, tachyon_bus_t *c, PyObject *path);
int tpy_capacity_arg(tpy_state *st, PyObject *obj, size_t *out);

/* Is the handle usable by this process? Else -1 with ClosedError/ERR_FORKED. */
static inline int tpy_core_usable(TachyonBusObject *self)
{
    if (self->bus && self->fork_gen == tpy_fork_generation)
        return 0;
    if (!self->bus)
        return tpy_not_open_error(self);
    return tpy_raise_code(self->st, TACHYON_ERR_FORKED, TPY_OP_OTHER, NULL);
}

void *tpy_bus_acquire_tx(TachyonBusObject *self, Py_ssize_t size, int64_t timeout_ns, tpy_op op);
int tpy_bus_check_tx_free(TachyonBusObject *self);
int tpy_bus_check_rx_free(TachyonBusObject *self);
/* Wait for one message (GIL released in slices). The payload, or NULL with
 * an exception set. */
const void *tpy_bus_wait_rx(TachyonBusObject *self, uint32_t *type_id, size_t *size,
                            int64_t timeout_ns, uint32_t spins);
size_t tpy_bus_wait_batch(TachyonBusObject *self, tachyon_msg_view_t *views, size_t max,
                          int64_t timeout_ns, uint32_t spins);
PyObject *tpy_core_send(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames);
PyObject *tpy_core_send_batch(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames);
PyObject *tpy_core_flush(TachyonBusObject *self);
/* A socket path argument (str, bytes or os.PathLike) as file-system bytes. */
PyObject *tpy_path_arg(PyObject *obj);
PyObject *tpy_core_recv(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames);
PyObject *tpy_core_next(TachyonBusObject *self);
PyObject *tpy_core_set_polling_mode(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames);
PyObject *tpy_core_set_numa_node(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames);
PyObject *tpy_core_peer_alive(TachyonBusObject *self);
PyObject *tpy_core_state(TachyonBusObject *self);

/* ---- loop.c and stats.c: event loops and statistics --------------------------- */
PyObject *tpy_bus_fileno(TachyonBusObject *self);
PyObject *tpy_bus_arm(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs);
/* Tell the watcher (if any) that the handle is about to close, and drop it. */
void tpy_core_tell_watcher(TachyonBusObject *self);
PyObject *tpy_bus_stats_tuple(TachyonBusObject *self);

/* ---- fan.c: fan-out and fan-in ---------------------------------------------------- */
int tpy_fan_init(PyObject *module, tpy_state *st);

/* ---- bus.c ------------------------------------------------------------------- */
int tpy_bus_type_init(PyObject *module, tpy_state *st);

/* ---- txguard.c --------------------------------------------------------------- */
int tpy_txguard_type_init(PyObject *module, tpy_state *st);
PyObject *tpy_bus_send_zero_copy(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames);
PyObject *tpy_bus_acquire_tx_guard(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames);
PyObject *tpy_bus_send_packed(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs);
void tpy_txguard_bus_closing(TxGuardObject *g);
void tpy_txguard_finish_orphan(TxGuardObject *g);

/* ---- rxguard.c --------------------------------------------------------------- */
int tpy_rxguard_type_init(PyObject *module, tpy_state *st);
PyObject *tpy_bus_recv_zero_copy(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames);
PyObject *tpy_bus_acquire_rx_guard(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames);
void tpy_rxguard_bus_closing(RxGuardObject *g);
void tpy_rxguard_finish_orphan(RxGuardObject *g);

/* ---- batch.c ----------------------------------------------------------------- */
int tpy_batch_type_init(PyObject *module, tpy_state *st);
PyObject *tpy_bus_drain_batch(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames);
void tpy_batch_bus_closing(BatchObject *b);
void tpy_batch_finish_orphan(BatchObject *b);

/* ---- dlpack.c ---------------------------------------------------------------- */
int tpy_dlpack_type_init(PyObject *module, tpy_state *st);
/* __dlpack__ and __dlpack_device__ of a read-only message: `owner` is the
 * RxGuard or RxBatchGuard whose exports count the tensor. */
PyObject *tpy_dlpack_export(GuardHeadObject *owner, const void *data, Py_ssize_t nbytes,
                            PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *tpy_dlpack_device(PyObject *self, PyObject *unused);
/* guard.view(format='B', shape=None, *, offset=0) for the same owners. */
PyObject *tpy_array_view_new(GuardHeadObject *owner, const void *data, Py_ssize_t nbytes,
                             PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);

/* ---- guardmeth.c ------------------------------------------------------------- */
int tpy_guardmeth_types_init(PyObject *module, tpy_state *st);
int tpy_install_guard_methods(tpy_state *st, PyTypeObject *type, PyMethodDef *defs);
int tpy_guard_unreferenced(PyObject *guard);
int tpy_guard_traverse(PyObject *guard, visitproc visit, void *arg);
void tpy_guard_clear_bound(PyObject *guard);
/* Count one more export of a guard's memory (a buffer or a tensor). */
static inline void tpy_guard_export(GuardHeadObject *g)
{
    g->exports++;
    g->bus->exports++;
}
/* One export is gone; the last one finishes an orphaned guard. */
void tpy_guard_unexport(GuardHeadObject *g);
/* The guard may hand out its memory: active, and in the process that made it. */
int tpy_guard_check_export(GuardHeadObject *g, const char *what);

/* ---- message.c --------------------------------------------------------------- */
int tpy_message_type_init(PyObject *module, tpy_state *st);
void tpy_message_freelist_clear(tpy_state *st);
PyObject *tpy_message_new(tpy_state *st, uint32_t type_id, const void *data, size_t size);

/* ---- rpc.c ------------------------------------------------------------------- */
/* TachyonRpcBus, RpcTxGuard and RpcRxGuard (request/reply). */
int tpy_rpc_types_init(PyObject *module, tpy_state *st);

#endif
