/*
 * rpc.c - request/reply (tachyon_rpc_* of the C library): TachyonRpcBus, one
 * connection; RpcTxGuard, a request or reply slot written in place;
 * RpcRxGuard, a request or reply read in place. The pure-Python layer on top
 * (RpcBus, RpcDispatcher, RpcEndpoint) is tachyon/rpc.py.
 *
 * As the published TachyonRpcBus: constructed empty, then listen() (the
 * server) or connect() (the caller); guards from acquire_call /
 * acquire_reply / wait / serve; the published keyword names and defaults.
 * Beyond it: every blocking call takes timeout= and releases the GIL in
 * slices of TPY_SLICE_MS, between which signals are handled (Ctrl-C raises
 * KeyboardInterrupt); guards hold a reference to their connection; a slot is
 * never handed back while a memoryview of it is alive (BufferError, and the
 * slot goes when the view does); destroy() from another thread while one
 * waits takes effect when that wait's slice ends.
 *
 * Errors are read in the thread that got them, right after the failing call
 * (the C library keeps them per thread), and raised through tpy_raise_doing.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "ext.h"

/* The published default of wait/serve's spin_threshold. */
#define RPC_DEFAULT_SPIN 10000u

typedef struct RpcBusObject RpcBusObject;

typedef struct {
    PyObject_HEAD
    RpcBusObject *bus;      /* strong while the guard holds its slot */
    char *ptr;
    Py_ssize_t size;        /* the buffer's length: the size asked for */
    size_t actual_size;
    uint32_t msg_type;
    uint64_t reply_cid;     /* a reply's call; 0 for a call */
    uint64_t out_cid;       /* a call's id once committed */
    int is_reply;
    int hold;               /* enum tpy_hold */
    Py_ssize_t exports;
} RpcTxGuardObject;

typedef struct {
    PyObject_HEAD
    RpcBusObject *bus;      /* strong while the guard holds its message */
    const char *ptr;
    Py_ssize_t size;
    uint32_t msg_type;
    uint64_t cid;
    int serving;            /* a request (serve) rather than a reply (wait) */
    int hold;
    Py_ssize_t exports;
} RpcRxGuardObject;

struct RpcBusObject {
    PyObject_HEAD
    tpy_state *st;
    tachyon_rpc_bus_t *rpc;  /* NULL: not connected yet, or destroyed */
    int serves;              /* listen() made it */
    int opening;             /* listen/connect runs with the GIL released */
    int tx_waiting, rx_waiting; /* a thread is in the library with the GIL released */
    int closing;             /* destroy() was asked while a thread waits */
    PyObject *tx_holder;     /* borrowed: the guard holding the acquired slot */
    PyObject *rx_holder;     /* borrowed: the guard holding the received message */
    PyObject *weakrefs;
};

/* ---- Small helpers ---------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Seconds (int or float; None: forever) to milliseconds (-1: forever).
 * obj NULL (not given): default_ms. */
static int timeout_arg(PyObject *obj, int64_t default_ms, int64_t *ms)
{
    if (obj == NULL) {
        *ms = default_ms;
        return 0;
    }
    if (obj == Py_None) {
        *ms = -1;
        return 0;
    }
    if (PyBool_Check(obj) || !(PyFloat_Check(obj) || PyLong_Check(obj))) {
        PyErr_Format(PyExc_TypeError, "timeout must be a number of seconds or None, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    double s = PyFloat_AsDouble(obj);
    if (s == -1.0 && PyErr_Occurred())
        return -1;
    if (isinf(s) && s > 0) {
        *ms = -1;
        return 0;
    }
    if (!(s >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "timeout must be >= 0 seconds (or None to wait forever)");
        return -1;
    }
    *ms = (int64_t)ceil((s > 1e9 ? 1e9 : s) * 1000.0);
    return 0;
}

/* A deadline in now_ms() time for a timeout (-1: none). */
static int64_t deadline_after(int64_t timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* The next slice of a wait: TPY_SLICE_MS, less near the deadline; 0 once it passed. */
static int slice_ms(int64_t deadline)
{
    if (deadline < 0)
        return TPY_SLICE_MS;
    int64_t left = deadline - now_ms();
    if (left <= 0)
        return 0;
    return left < TPY_SLICE_MS ? (int)left : TPY_SLICE_MS;
}

static int u64_arg(PyObject *obj, const char *what, uint64_t *out)
{
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be in [0, 2**64)", what);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* A message type as published: stored mod 2**32, negative refused. */
static int msg_type_arg(PyObject *obj, uint32_t *out)
{
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "msg_type must be an int, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow < 0 || (overflow == 0 && v < 0)) {
        PyErr_SetString(PyExc_OverflowError, "msg_type must not be negative");
        return -1;
    }
    *out = (uint32_t)PyLong_AsUnsignedLongLongMask(obj);
    return 0;
}

static int size_arg(PyObject *obj, const char *what, Py_ssize_t *out)
{
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t v = PyLong_AsSsize_t(obj);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0) {
        PyErr_Format(PyExc_ValueError, "%s must be >= 0, got %zd", what, v);
        return -1;
    }
    *out = v;
    return 0;
}

static int spin_arg(PyObject *obj, uint32_t *out)
{
    if (!obj) {
        *out = RPC_DEFAULT_SPIN;
        return 0;
    }
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "spin_threshold must be an int, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    unsigned long v = PyLong_AsUnsignedLong(obj);
    if (v == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    *out = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    return 0;
}

/* Raise the C library's error `err` (just returned to this thread). */
static void raise_rpc_error(RpcBusObject *self, tachyon_error_t err, const char *doing)
{
    tpy_raise_doing(self->st, err, doing);
}

/* ---- TachyonRpcBus: lifecycle ------------------------------------------------- */

static int require_connected(RpcBusObject *self)
{
    if (self->rpc)
        return 0;
    PyErr_SetString(PyExc_RuntimeError,
                    "TachyonRpcBus is not connected: call listen() or connect() first (or it was destroyed)");
    return -1;
}

static int require_role(RpcBusObject *self, int serving, const char *fn)
{
    if (require_connected(self) < 0)
        return -1;
    if (self->serves == serving)
        return 0;
    PyErr_Format(PyExc_RuntimeError,
                 serving ? "%s() is the server's: only a TachyonRpcBus that listened serves and replies"
                         : "%s() is the caller's: only a TachyonRpcBus that connected calls and waits",
                 fn);
    return -1;
}

static PyObject *rpcbus_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    /* As published: any arguments are accepted and ignored. */
    RpcBusObject *self = (RpcBusObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->st = PyType_GetModuleState(type);
    return (PyObject *)self;
}

static void txguard_finish(RpcTxGuardObject *g, int commit_ok);
static void rxguard_release(RpcRxGuardObject *g);

/* Give back what guards still hold, then destroy the C handle. */
static void rpcbus_do_destroy(RpcBusObject *self)
{
    if (self->tx_holder)
        txguard_finish((RpcTxGuardObject *)self->tx_holder, 0);
    if (self->rx_holder)
        rxguard_release((RpcRxGuardObject *)self->rx_holder);
    tachyon_rpc_bus_t *rpc = self->rpc;
    self->rpc = NULL;
    self->closing = 0;
    tachyon_rpc_destroy(rpc);
}

static Py_ssize_t live_exports(RpcBusObject *self)
{
    Py_ssize_t n = 0;
    if (self->tx_holder)
        n += ((RpcTxGuardObject *)self->tx_holder)->exports;
    if (self->rx_holder)
        n += ((RpcRxGuardObject *)self->rx_holder)->exports;
    return n;
}

static PyObject *rpcbus_destroy(RpcBusObject *self, PyObject *unused)
{
    if (!self->rpc)
        Py_RETURN_NONE;
    if (live_exports(self) > 0) {
        PyErr_SetString(PyExc_BufferError,
                        "cannot destroy the connection: a memoryview of one of its messages is still alive; "
                        "release it first");
        return NULL;
    }
    if (self->tx_waiting || self->rx_waiting) {
        self->closing = 1; /* the waiting thread destroys it when its slice ends */
        Py_RETURN_NONE;
    }
    rpcbus_do_destroy(self);
    Py_RETURN_NONE;
}

/* After a wait with the GIL released: did another thread destroy us meanwhile? */
static int destroyed_while_waiting(RpcBusObject *self)
{
    if (!self->closing)
        return 0;
    if (!self->tx_waiting && !self->rx_waiting)
        rpcbus_do_destroy(self);
    PyErr_SetString(PyExc_RuntimeError, "the connection was destroyed by another thread during the wait");
    return 1;
}

static int begin_open(RpcBusObject *self)
{
    if (self->rpc || self->opening) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this TachyonRpcBus is already connected (destroy() it first, or use a new one)");
        return -1;
    }
    return 0;
}

static int capacity_arg(PyObject *obj, const char *what, size_t *out)
{
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        v = 0;
    }
    if (v < 64 || v > (1ull << 30) || (v & (v - 1)) != 0) {
        PyErr_Format(PyExc_ValueError, "%s must be a power of two from 64 to 2**30 bytes (e.g. 1 << 16)", what);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static PyObject *rpcbus_listen(RpcBusObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"socket_path", "cap_fwd", "cap_rev", "timeout", NULL};
    PyObject *path_obj, *fwd_obj, *rev_obj, *timeout = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|$O:listen", kwlist, &path_obj, &fwd_obj, &rev_obj, &timeout))
        return NULL;
    size_t cap_fwd, cap_rev;
    int64_t timeout_ms;
    if (begin_open(self) < 0 || capacity_arg(fwd_obj, "cap_fwd", &cap_fwd) < 0 ||
        capacity_arg(rev_obj, "cap_rev", &cap_rev) < 0 || timeout_arg(timeout, -1, &timeout_ms) < 0)
        return NULL;
    int64_t deadline = deadline_after(timeout_ms);
    PyObject *path = tpy_path_arg(path_obj);
    if (!path)
        return NULL;
    tachyon_rpc_bus_t *rpc = NULL;
    tachyon_error_t err;
    self->opening = 1;
    for (;;) {
        tachyon_listen_opts_t opts;
        tachyon_listen_opts_init(&opts, cap_fwd);
        opts.timeout_ms = deadline < 0 ? -1 : (int)(deadline > now_ms() ? deadline - now_ms() : 0);
        /* A signal ends the C library's poll() with ERR_INTERRUPTED: pending
         * handlers run here; if none raises, the listen goes on. */
        Py_BEGIN_ALLOW_THREADS
        err = tachyon_rpc_listen_ex(PyBytes_AS_STRING(path), cap_fwd, cap_rev, &opts, &rpc);
        Py_END_ALLOW_THREADS
        if (err != TACHYON_ERR_INTERRUPTED)
            break;
        if (PyErr_CheckSignals() < 0) {
            self->opening = 0;
            Py_DECREF(path);
            return NULL;
        }
    }
    self->opening = 0;
    if (err != TACHYON_SUCCESS) {
        PyObject *doing = PyUnicode_FromFormat("listen on '%s'", PyBytes_AS_STRING(path));
        raise_rpc_error(self, err, doing ? PyUnicode_AsUTF8(doing) : "listen");
        Py_XDECREF(doing);
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    self->rpc = rpc;
    self->serves = 1;
    Py_RETURN_NONE;
}

static PyObject *rpcbus_connect(RpcBusObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"socket_path", "timeout", NULL};
    PyObject *path_obj, *timeout = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:connect", kwlist, &path_obj, &timeout))
        return NULL;
    int64_t timeout_ms;
    if (begin_open(self) < 0 || timeout_arg(timeout, 0, &timeout_ms) < 0) /* default: one attempt, as published */
        return NULL;
    int64_t deadline = deadline_after(timeout_ms);
    PyObject *path = tpy_path_arg(path_obj);
    if (!path)
        return NULL;
    tachyon_rpc_bus_t *rpc = NULL;
    tachyon_error_t err;
    self->opening = 1;
    for (;;) {
        /* In slices, so that signals are handled while nobody listens yet. */
        int slice = timeout_ms == 0 ? 0 : slice_ms(deadline);
        Py_BEGIN_ALLOW_THREADS
        err = tachyon_rpc_connect_timeout(PyBytes_AS_STRING(path), slice, &rpc);
        Py_END_ALLOW_THREADS
        if (err == TACHYON_SUCCESS)
            break;
        int retry = err == TACHYON_ERR_INTERRUPTED ||
                    (err == TACHYON_ERR_NETWORK && timeout_ms != 0 && slice_ms(deadline) > 0);
        if (!retry)
            break;
        if (PyErr_CheckSignals() < 0) {
            self->opening = 0;
            Py_DECREF(path);
            return NULL;
        }
    }
    self->opening = 0;
    if (err != TACHYON_SUCCESS) {
        PyObject *doing = PyUnicode_FromFormat("connect to '%s'", PyBytes_AS_STRING(path));
        raise_rpc_error(self, err, doing ? PyUnicode_AsUTF8(doing) : "connect");
        Py_XDECREF(doing);
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    self->rpc = rpc;
    self->serves = 0;
    Py_RETURN_NONE;
}

static void rpcbus_dealloc(RpcBusObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    /* A guard that holds a slot holds a reference to us: none is left. */
    if (self->rpc)
        tachyon_rpc_destroy(self->rpc);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* ---- Sending: RpcTxGuard ----------------------------------------------------------- */

/* May a new slot be acquired? Not while a previous guard still holds one. */
static int tx_free(RpcBusObject *self)
{
    if (self->tx_waiting) {
        PyErr_SetString(PyExc_RuntimeError,
                        "another thread is sending on this connection; one thread sends at a time");
        return -1;
    }
    RpcTxGuardObject *g = (RpcTxGuardObject *)self->tx_holder;
    if (!g)
        return 0;
    if (g->hold == TPY_ORPHANED)
        PyErr_SetString(PyExc_BufferError,
                        "a memoryview of the previous slot is still alive; release it (the slot is then given "
                        "back) before acquiring another");
    else
        PyErr_SetString(PyExc_RuntimeError,
                        "the previous acquire_call/acquire_reply slot is still open: exit its with-block first");
    return -1;
}

/* Reserve a slot, waiting for room up to the deadline (0: not at all) in
 * slices. NULL with an exception set. */
static void *acquire_slot(RpcBusObject *self, Py_ssize_t size, int64_t timeout_ms, const char *doing)
{
    int64_t deadline = deadline_after(timeout_ms);
    tachyon_rpc_bus_t *rpc = self->rpc;
    void *(*acquire)(tachyon_rpc_bus_t *, size_t, int) =
        self->serves ? tachyon_rpc_acquire_reply_tx_timeout : tachyon_rpc_acquire_tx_timeout;
    if (timeout_ms == 0) {
        void *p = acquire(rpc, (size_t)size, 0);
        if (!p)
            raise_rpc_error(self, tachyon_rpc_last_error(rpc), doing);
        return p;
    }
    for (;;) {
        int slice = slice_ms(deadline);
        void *p;
        tachyon_error_t err = TACHYON_SUCCESS;
        self->tx_waiting = 1;
        tachyon_rpc_ref(rpc); /* mapped until we are out, whoever destroys meanwhile */
        Py_BEGIN_ALLOW_THREADS
        p = acquire(rpc, (size_t)size, slice);
        if (!p)
            err = tachyon_rpc_last_error(rpc);
        Py_END_ALLOW_THREADS
        self->tx_waiting = 0;
        tachyon_rpc_destroy(rpc); /* our reference; the handle's own is still there */
        if (self->closing) {
            if (p)
                self->serves ? tachyon_rpc_rollback_reply(rpc) : tachyon_rpc_rollback_call(rpc);
            destroyed_while_waiting(self);
            return NULL;
        }
        if (p)
            return p;
        if (err == TACHYON_ERR_TIMEOUT && slice_ms(deadline) == 0) {
            raise_rpc_error(self, TACHYON_ERR_FULL, doing); /* room never came: the ring is full */
            return NULL;
        }
        if (err != TACHYON_ERR_TIMEOUT && err != TACHYON_ERR_INTERRUPTED) {
            raise_rpc_error(self, err, doing);
            return NULL;
        }
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

static PyObject *new_txguard(RpcBusObject *self, void *slot, Py_ssize_t size, int is_reply, uint64_t cid)
{
    RpcTxGuardObject *g = PyObject_New(RpcTxGuardObject, self->st->RpcTxGuard_Type);
    if (!g) {
        is_reply ? tachyon_rpc_rollback_reply(self->rpc) : tachyon_rpc_rollback_call(self->rpc);
        return NULL;
    }
    g->bus = (RpcBusObject *)Py_NewRef(self);
    g->ptr = slot;
    g->size = size;
    g->actual_size = 0; /* as published: a message of 0 bytes unless set */
    g->msg_type = 0;
    g->reply_cid = cid;
    g->out_cid = 0;
    g->is_reply = is_reply;
    g->hold = TPY_ACTIVE;
    g->exports = 0;
    self->tx_holder = (PyObject *)g;
    return (PyObject *)g;
}

/* The guard is done with its slot: committed (commit_ok) or given back. */
static void txguard_finish(RpcTxGuardObject *g, int committed)
{
    RpcBusObject *bus = g->bus;
    if (!committed && bus && bus->rpc && g->hold != TPY_IDLE)
        g->is_reply ? tachyon_rpc_rollback_reply(bus->rpc) : tachyon_rpc_rollback_call(bus->rpc);
    g->hold = TPY_IDLE;
    g->ptr = NULL;
    g->bus = NULL;
    if (bus) {
        if (bus->tx_holder == (PyObject *)g)
            bus->tx_holder = NULL;
        Py_DECREF(bus);
    }
}

static PyObject *rpcbus_acquire_call(RpcBusObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_payload_size", "timeout", NULL};
    PyObject *size_obj, *timeout = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:acquire_call", kwlist, &size_obj, &timeout))
        return NULL;
    Py_ssize_t size;
    int64_t timeout_ms;
    if (size_arg(size_obj, "max_payload_size", &size) < 0 || timeout_arg(timeout, 0, &timeout_ms) < 0 ||
        require_role(self, 0, "acquire_call") < 0 || tx_free(self) < 0)
        return NULL;
    void *slot = acquire_slot(self, size, timeout_ms, "call");
    return slot ? new_txguard(self, slot, size, 0, 0) : NULL;
}

static PyObject *rpcbus_acquire_reply(RpcBusObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"correlation_id", "max_payload_size", "timeout", NULL};
    PyObject *cid_obj, *size_obj, *timeout = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$O:acquire_reply", kwlist, &cid_obj, &size_obj, &timeout))
        return NULL;
    uint64_t cid;
    Py_ssize_t size;
    int64_t timeout_ms;
    if (u64_arg(cid_obj, "correlation_id", &cid) < 0 || size_arg(size_obj, "max_payload_size", &size) < 0 ||
        timeout_arg(timeout, -1, &timeout_ms) < 0)
        return NULL;
    if (cid == 0) {
        PyErr_SetString(PyExc_ValueError, "correlation_id 0 answers no call: pass the id serve() gave");
        return NULL;
    }
    if (require_role(self, 1, "acquire_reply") < 0 || tx_free(self) < 0)
        return NULL;
    void *slot = acquire_slot(self, size, timeout_ms, "reply");
    return slot ? new_txguard(self, slot, size, 1, cid) : NULL;
}

/* call(payload, msg_type, *, timeout=0) -> int: one C call. */
static PyObject *rpcbus_call(RpcBusObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"payload", "msg_type", "timeout", NULL};
    PyObject *payload, *type_obj, *timeout = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$O:call", kwlist, &payload, &type_obj, &timeout))
        return NULL;
    uint32_t msg_type;
    int64_t timeout_ms;
    if (msg_type_arg(type_obj, &msg_type) < 0 || timeout_arg(timeout, 0, &timeout_ms) < 0 ||
        require_role(self, 0, "call") < 0 || tx_free(self) < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL;
    void *slot = acquire_slot(self, view.len, timeout_ms, "call");
    if (slot) {
        memcpy(slot, view.buf, (size_t)view.len);
        uint64_t cid;
        tachyon_error_t err = tachyon_rpc_commit_call(self->rpc, (size_t)view.len, msg_type, &cid);
        if (err == TACHYON_SUCCESS)
            result = PyLong_FromUnsignedLongLong(cid);
        else
            raise_rpc_error(self, err, "call");
    }
    PyBuffer_Release(&view);
    return result;
}

/* reply(correlation_id, payload, msg_type, *, timeout=None): one C call,
 * waiting for room while the reply ring is full. */
static PyObject *rpcbus_reply(RpcBusObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"correlation_id", "payload", "msg_type", "timeout", NULL};
    PyObject *cid_obj, *payload, *type_obj, *timeout = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|$O:reply", kwlist, &cid_obj, &payload, &type_obj, &timeout))
        return NULL;
    uint64_t cid;
    uint32_t msg_type;
    int64_t timeout_ms;
    if (u64_arg(cid_obj, "correlation_id", &cid) < 0 || msg_type_arg(type_obj, &msg_type) < 0 ||
        timeout_arg(timeout, -1, &timeout_ms) < 0)
        return NULL;
    if (cid == 0) {
        PyErr_SetString(PyExc_ValueError, "correlation_id 0 answers no call: pass the id serve() gave");
        return NULL;
    }
    if (require_role(self, 1, "reply") < 0 || tx_free(self) < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL;
    void *slot = acquire_slot(self, view.len, timeout_ms, "reply");
    if (slot) {
        memcpy(slot, view.buf, (size_t)view.len);
        tachyon_error_t err = tachyon_rpc_commit_reply(self->rpc, cid, (size_t)view.len, msg_type);
        if (err == TACHYON_SUCCESS)
            result = Py_NewRef(Py_None);
        else
            raise_rpc_error(self, err, "reply");
    }
    PyBuffer_Release(&view);
    return result;
}

static int txguard_getbuffer(RpcTxGuardObject *g, Py_buffer *view, int flags)
{
    if (g->hold != TPY_ACTIVE) {
        PyErr_SetString(PyExc_BufferError, "this slot was already sent or given back");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)g, g->ptr, g->size, 0, flags) < 0)
        return -1;
    g->exports++;
    return 0;
}

static void txguard_releasebuffer(RpcTxGuardObject *g, Py_buffer *view)
{
    if (--g->exports == 0 && g->hold == TPY_ORPHANED)
        txguard_finish(g, 0); /* left with a view alive: never sent, given back now */
}

static PyObject *txguard_enter(PyObject *self, PyObject *unused)
{
    return Py_NewRef(self);
}

static PyObject *txguard_exit(RpcTxGuardObject *g, PyObject *args)
{
    PyObject *exc_type = Py_None, *exc = Py_None, *tb = Py_None;
    if (!PyArg_UnpackTuple(args, "__exit__", 0, 3, &exc_type, &exc, &tb))
        return NULL;
    if (g->hold != TPY_ACTIVE)
        Py_RETURN_FALSE; /* a second exit does nothing */
    if (g->exports > 0) {
        /* Sending (or giving back) a slot a view still writes into would let
         * the view scribble over what the peer reads next. */
        g->hold = TPY_ORPHANED;
        PyErr_Format(PyExc_BufferError,
                     "%zd memoryview(s) of the slot are still alive: nothing was sent; the slot is given back "
                     "when they are released (use 'with memoryview(guard) as mv:')",
                     g->exports);
        return NULL;
    }
    if (exc_type != Py_None) {
        txguard_finish(g, 0);
        Py_RETURN_FALSE;
    }
    RpcBusObject *bus = g->bus;
    tachyon_error_t err;
    if (!bus->rpc) {
        txguard_finish(g, 0);
        PyErr_SetString(PyExc_RuntimeError, "the connection was destroyed: nothing was sent");
        return NULL;
    }
    if (g->is_reply) {
        err = tachyon_rpc_commit_reply(bus->rpc, g->reply_cid, g->actual_size, g->msg_type);
    } else {
        uint64_t cid = 0;
        err = tachyon_rpc_commit_call(bus->rpc, g->actual_size, g->msg_type, &cid);
        if (err == TACHYON_SUCCESS)
            g->out_cid = cid;
    }
    if (err != TACHYON_SUCCESS) {
        raise_rpc_error(bus, err, g->is_reply ? "commit the reply" : "commit the call");
        txguard_finish(g, 0);
        return NULL;
    }
    txguard_finish(g, 1);
    Py_RETURN_FALSE;
}

static void txguard_dealloc(RpcTxGuardObject *g)
{
    PyTypeObject *tp = Py_TYPE(g);
    if (g->hold != TPY_IDLE)
        txguard_finish(g, 0); /* never exited: given back */
    PyObject_Free(g);
    Py_DECREF(tp);
}

static PyObject *txguard_get_actual_size(RpcTxGuardObject *g, void *c)
{
    return PyLong_FromSize_t(g->actual_size);
}

static int txguard_set_actual_size(RpcTxGuardObject *g, PyObject *value, void *c)
{
    if (!value) {
        PyErr_SetString(PyExc_TypeError, "cannot delete actual_size");
        return -1;
    }
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "actual_size must be an int, not %.100s", Py_TYPE(value)->tp_name);
        return -1;
    }
    size_t v = PyLong_AsSize_t(value); /* negative: OverflowError, as published */
    if (v == (size_t)-1 && PyErr_Occurred())
        return -1;
    g->actual_size = v;
    return 0;
}

static PyObject *txguard_get_msg_type(RpcTxGuardObject *g, void *c)
{
    return PyLong_FromUnsignedLong(g->msg_type);
}

static int txguard_set_msg_type(RpcTxGuardObject *g, PyObject *value, void *c)
{
    if (!value) {
        PyErr_SetString(PyExc_TypeError, "cannot delete msg_type");
        return -1;
    }
    return msg_type_arg(value, &g->msg_type);
}

static PyObject *txguard_get_out_cid(RpcTxGuardObject *g, void *c)
{
    return PyLong_FromUnsignedLongLong(g->out_cid);
}

static PyMethodDef txguard_methods[] = {
    {"__enter__", (PyCFunction)txguard_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)txguard_exit, METH_VARARGS,
     "Commit the slot (no exception) or give it back (exception); never suppresses."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef txguard_getset[] = {
    {"actual_size", (getter)txguard_get_actual_size, (setter)txguard_set_actual_size,
     "Bytes to send (default 0: set it after writing).", NULL},
    {"msg_type", (getter)txguard_get_msg_type, (setter)txguard_set_msg_type,
     "The message type to send (stored mod 2**32).", NULL},
    {"out_cid", (getter)txguard_get_out_cid, NULL,
     "A call's correlation id once committed (0 before, and always for replies).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot txguard_slots[] = {
    {Py_tp_doc, "A request or reply slot in shared memory, from acquire_call / acquire_reply: a writable "
                "buffer of the size asked for. Set actual_size (and msg_type); leaving the with-block "
                "sends it, an exception gives it back."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_dealloc, txguard_dealloc},
    {Py_tp_methods, txguard_methods},
    {Py_tp_getset, txguard_getset},
    {Py_bf_getbuffer, txguard_getbuffer},
    {Py_bf_releasebuffer, txguard_releasebuffer},
    {0, NULL},
};

static PyType_Spec txguard_spec = {
    .name = "tachyon.RpcTxGuard",
    .basicsize = sizeof(RpcTxGuardObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = txguard_slots,
};

/* ---- Receiving: RpcRxGuard ---------------------------------------------------------- */

static int rx_free(RpcBusObject *self)
{
    if (self->rx_waiting) {
        PyErr_SetString(PyExc_RuntimeError,
                        "another thread is waiting on this connection; one thread receives at a time");
        return -1;
    }
    RpcRxGuardObject *g = (RpcRxGuardObject *)self->rx_holder;
    if (!g)
        return 0;
    if (g->hold == TPY_ORPHANED)
        PyErr_SetString(PyExc_BufferError,
                        "a memoryview of the previous message is still alive; release it before receiving more");
    else
        PyErr_Format(PyExc_RuntimeError, "the previous %s is still held: exit its with-block first",
                     g->serving ? "request" : "reply");
    return -1;
}

static void rxguard_release(RpcRxGuardObject *g)
{
    RpcBusObject *bus = g->bus;
    if (bus && bus->rpc && g->hold != TPY_IDLE)
        g->serving ? tachyon_rpc_commit_serve(bus->rpc) : tachyon_rpc_commit_rx(bus->rpc);
    g->hold = TPY_IDLE;
    g->ptr = NULL;
    g->bus = NULL;
    if (bus) {
        if (bus->rx_holder == (PyObject *)g)
            bus->rx_holder = NULL;
        Py_DECREF(bus);
    }
}

/* Wait for the next request (serving) or the reply to `cid`, in slices with
 * the GIL released. */
static PyObject *receive(RpcBusObject *self, int serving, uint64_t cid, uint32_t spin, int64_t timeout_ms)
{
    int64_t deadline = deadline_after(timeout_ms);
    tachyon_rpc_bus_t *rpc = self->rpc;
    const char *doing = serving ? "serve" : "wait for the reply";
    for (;;) {
        int slice = slice_ms(deadline);
        const void *p;
        uint64_t got_cid = cid;
        uint32_t msg_type = 0;
        size_t size = 0;
        tachyon_error_t err = TACHYON_SUCCESS;
        self->rx_waiting = 1;
        tachyon_rpc_ref(rpc); /* mapped until we are out, whoever destroys meanwhile */
        Py_BEGIN_ALLOW_THREADS
        if (serving)
            p = tachyon_rpc_serve_timeout(rpc, &got_cid, &msg_type, &size, spin, slice);
        else
            p = tachyon_rpc_wait_timeout(rpc, cid, &size, &msg_type, spin, slice);
        if (!p)
            err = tachyon_rpc_last_error(rpc);
        Py_END_ALLOW_THREADS
        self->rx_waiting = 0;
        tachyon_rpc_destroy(rpc); /* our reference; the handle's own is still there */
        if (self->closing) {
            if (p)
                serving ? tachyon_rpc_commit_serve(rpc) : tachyon_rpc_commit_rx(rpc);
            destroyed_while_waiting(self);
            return NULL;
        }
        if (p) {
            RpcRxGuardObject *g = PyObject_New(RpcRxGuardObject, self->st->RpcRxGuard_Type);
            if (!g)
                return NULL; /* the message stays: the next wait gets it again */
            g->bus = (RpcBusObject *)Py_NewRef(self);
            g->ptr = p;
            g->size = (Py_ssize_t)size;
            g->msg_type = msg_type;
            g->cid = got_cid; /* a wait's guard carries the id asked for, as published */
            g->serving = serving;
            g->hold = TPY_ACTIVE;
            g->exports = 0;
            self->rx_holder = (PyObject *)g;
            return (PyObject *)g;
        }
        if (err == TACHYON_ERR_TIMEOUT && slice_ms(deadline) == 0) {
            raise_rpc_error(self, TACHYON_ERR_TIMEOUT, doing);
            return NULL;
        }
        if (err != TACHYON_ERR_TIMEOUT && err != TACHYON_ERR_INTERRUPTED) {
            raise_rpc_error(self, err, doing);
            return NULL;
        }
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

static PyObject *rpcbus_wait(RpcBusObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"correlation_id", "spin_threshold", "timeout", NULL};
    PyObject *cid_obj, *spin_obj = NULL, *timeout = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O$O:wait", kwlist, &cid_obj, &spin_obj, &timeout))
        return NULL;
    uint64_t cid;
    uint32_t spin;
    int64_t timeout_ms;
    if (u64_arg(cid_obj, "correlation_id", &cid) < 0 || spin_arg(spin_obj, &spin) < 0 ||
        timeout_arg(timeout, -1, &timeout_ms) < 0 || require_role(self, 0, "wait") < 0 || rx_free(self) < 0)
        return NULL;
    return receive(self, 0, cid, spin, timeout_ms);
}

static PyObject *rpcbus_serve(RpcBusObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"spin_threshold", "timeout", NULL};
    PyObject *spin_obj = NULL, *timeout = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$O:serve", kwlist, &spin_obj, &timeout))
        return NULL;
    uint32_t spin;
    int64_t timeout_ms;
    if (spin_arg(spin_obj, &spin) < 0 || timeout_arg(timeout, -1, &timeout_ms) < 0 ||
        require_role(self, 1, "serve") < 0 || rx_free(self) < 0)
        return NULL;
    return receive(self, 1, 0, spin, timeout_ms);
}

static PyObject *rpcbus_abandon(RpcBusObject *self, PyObject *arg)
{
    uint64_t cid;
    if (u64_arg(arg, "correlation_id", &cid) < 0 || require_role(self, 0, "abandon") < 0)
        return NULL;
    tachyon_error_t err = tachyon_rpc_abandon(self->rpc, cid);
    if (err != TACHYON_SUCCESS) {
        raise_rpc_error(self, err, "abandon");
        return NULL;
    }
    Py_RETURN_NONE;
}

static int rxguard_getbuffer(RpcRxGuardObject *g, Py_buffer *view, int flags)
{
    if (g->hold != TPY_ACTIVE) {
        PyErr_SetString(PyExc_BufferError, "this message was already released");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)g, (void *)g->ptr, g->size, 1, flags) < 0)
        return -1;
    g->exports++;
    return 0;
}

static void rxguard_releasebuffer(RpcRxGuardObject *g, Py_buffer *view)
{
    if (--g->exports == 0 && g->hold == TPY_ORPHANED)
        rxguard_release(g);
}

static PyObject *rxguard_exit(RpcRxGuardObject *g, PyObject *args)
{
    if (g->hold != TPY_ACTIVE)
        Py_RETURN_FALSE;
    if (g->exports > 0) {
        /* The peer could overwrite what the view shows: release when it goes. */
        g->hold = TPY_ORPHANED;
        PyErr_Format(PyExc_BufferError,
                     "%zd memoryview(s) of the message are still alive; it is released when they are "
                     "(copy what you keep: bytes(view))",
                     g->exports);
        return NULL;
    }
    rxguard_release(g); /* even when an exception is in flight: it was delivered */
    Py_RETURN_FALSE;
}

static void rxguard_dealloc(RpcRxGuardObject *g)
{
    PyTypeObject *tp = Py_TYPE(g);
    if (g->hold != TPY_IDLE)
        rxguard_release(g);
    PyObject_Free(g);
    Py_DECREF(tp);
}

static PyObject *rxguard_get_actual_size(RpcRxGuardObject *g, void *c)
{
    return PyLong_FromSsize_t(g->size);
}

static PyObject *rxguard_get_type_id(RpcRxGuardObject *g, void *c)
{
    return PyLong_FromUnsignedLong(g->msg_type);
}

static PyObject *rxguard_get_correlation_id(RpcRxGuardObject *g, void *c)
{
    return PyLong_FromUnsignedLongLong(g->cid);
}

static PyMethodDef rxguard_methods[] = {
    {"__enter__", (PyCFunction)txguard_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)rxguard_exit, METH_VARARGS, "Release the message; never suppresses."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef rxguard_getset[] = {
    {"actual_size", (getter)rxguard_get_actual_size, NULL, "The payload's size in bytes.", NULL},
    {"type_id", (getter)rxguard_get_type_id, NULL, "The message type (16 bits).", NULL},
    {"correlation_id", (getter)rxguard_get_correlation_id, NULL,
     "serve(): the call's id (pass it to reply). wait(): the id waited for.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot rxguard_slots[] = {
    {Py_tp_doc, "A request (serve) or reply (wait) read in place: a read-only buffer of actual_size bytes, "
                "released when the with-block exits."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_dealloc, rxguard_dealloc},
    {Py_tp_methods, rxguard_methods},
    {Py_tp_getset, rxguard_getset},
    {Py_bf_getbuffer, rxguard_getbuffer},
    {Py_bf_releasebuffer, rxguard_releasebuffer},
    {0, NULL},
};

static PyType_Spec rxguard_spec = {
    .name = "tachyon.RpcRxGuard",
    .basicsize = sizeof(RpcRxGuardObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = rxguard_slots,
};

/* ---- TachyonRpcBus: settings and state ----------------------------------------------- */

static PyObject *rpcbus_set_polling_mode(RpcBusObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"pure_spin", NULL};
    int pure_spin;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i:set_polling_mode", kwlist, &pure_spin) ||
        require_connected(self) < 0)
        return NULL;
    tachyon_rpc_set_polling_mode(self->rpc, pure_spin);
    Py_RETURN_NONE;
}

static PyObject *rpcbus_peer_alive(RpcBusObject *self, PyObject *unused)
{
    if (require_connected(self) < 0)
        return NULL;
    return PyBool_FromLong(tachyon_rpc_peer_alive(self->rpc));
}

static PyObject *rpcbus_get_state(RpcBusObject *self, void *c)
{
    if (require_connected(self) < 0)
        return NULL;
    return PyLong_FromLong((long)tachyon_rpc_get_state(self->rpc));
}

static PyObject *rpcbus_get_max_request(RpcBusObject *self, void *c)
{
    if (require_connected(self) < 0)
        return NULL;
    return PyLong_FromSize_t(tachyon_rpc_max_request(self->rpc));
}

static PyObject *rpcbus_get_max_reply(RpcBusObject *self, void *c)
{
    if (require_connected(self) < 0)
        return NULL;
    return PyLong_FromSize_t(tachyon_rpc_max_reply(self->rpc));
}

static PyObject *rpcbus_get_connected(RpcBusObject *self, void *c)
{
    return PyBool_FromLong(self->rpc != NULL);
}

static PyObject *rpcbus_get_serves(RpcBusObject *self, void *c)
{
    if (require_connected(self) < 0)
        return NULL;
    return PyBool_FromLong(self->serves);
}

static PyObject *rpcbus_repr(RpcBusObject *self)
{
    if (!self->rpc)
        return PyUnicode_FromString("<tachyon.TachyonRpcBus not connected>");
    return PyUnicode_FromFormat("<tachyon.TachyonRpcBus %s>", self->serves ? "server" : "caller");
}

#define KW (METH_VARARGS | METH_KEYWORDS)
#define CAST(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef rpcbus_methods[] = {
    {"listen", CAST(rpcbus_listen), KW,
     "listen(socket_path, cap_fwd, cap_rev, *, timeout=None)\n\nBe the server: create the request ring "
     "(cap_fwd bytes) and the reply ring (cap_rev), wait for one caller at socket_path."},
    {"connect", CAST(rpcbus_connect), KW,
     "connect(socket_path, *, timeout=0)\n\nBe the caller: connect to the server at socket_path (timeout: "
     "seconds to keep retrying while nobody listens yet; 0: one attempt, None: forever)."},
    {"destroy", (PyCFunction)rpcbus_destroy, METH_NOARGS,
     "Close this end (idempotent); the peer's waits end with PeerClosedError."},
    {"acquire_call", CAST(rpcbus_acquire_call), KW,
     "acquire_call(max_payload_size, *, timeout=0) -> RpcTxGuard\n\nA request slot to write in place. "
     "timeout: seconds to wait for room (0: RingFullError at once, as published; None: forever)."},
    {"acquire_reply", CAST(rpcbus_acquire_reply), KW,
     "acquire_reply(correlation_id, max_payload_size, *, timeout=None) -> RpcTxGuard\n\nA reply slot for "
     "call correlation_id, waiting for room while the caller has not read earlier replies."},
    {"call", CAST(rpcbus_call), KW,
     "call(payload, msg_type, *, timeout=0) -> int\n\nCopy a bytes-like payload into a request and send "
     "it; its correlation id."},
    {"reply", CAST(rpcbus_reply), KW,
     "reply(correlation_id, payload, msg_type, *, timeout=None)\n\nCopy a bytes-like payload into the "
     "reply to call correlation_id and send it."},
    {"wait", CAST(rpcbus_wait), KW,
     "wait(correlation_id, spin_threshold=10000, *, timeout=None) -> RpcRxGuard\n\nThe reply to call "
     "correlation_id (0: whichever comes next). Replies come in the order of the calls: waiting for a later "
     "one first raises TachyonError (ERR_WRONG_REPLY). TachyonTimeoutError after timeout seconds; "
     "PeerDeadError once the server is gone and every reply it sent was read."},
    {"serve", CAST(rpcbus_serve), KW,
     "serve(spin_threshold=10000, *, timeout=None) -> RpcRxGuard\n\nThe next request; its "
     "correlation_id is what reply() needs."},
    {"abandon", (PyCFunction)rpcbus_abandon, METH_O,
     "abandon(correlation_id)\n\nGive up on a call: its reply is dropped when it comes."},
    {"set_polling_mode", CAST(rpcbus_set_polling_mode), KW,
     "set_polling_mode(pure_spin)\n\nNon-zero: this side's waits never sleep (lowest latency, one core busy)."},
    {"peer_alive", (PyCFunction)rpcbus_peer_alive, METH_NOARGS,
     "True while the peer process lives and has not closed the connection."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef rpcbus_getset[] = {
    {"state", (getter)rpcbus_get_state, NULL, "2 ready, 3 peer gone, 4 corrupt ring (see tachyon.h).", NULL},
    {"max_request", (getter)rpcbus_get_max_request, NULL, "The largest request payload in bytes.", NULL},
    {"max_reply", (getter)rpcbus_get_max_reply, NULL, "The largest reply payload in bytes.", NULL},
    {"connected", (getter)rpcbus_get_connected, NULL, "True between listen/connect and destroy.", NULL},
    {"serves", (getter)rpcbus_get_serves, NULL, "True for the server (it listened).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef rpcbus_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(RpcBusObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot rpcbus_slots[] = {
    {Py_tp_doc, "One request/reply connection (low level; tachyon.RpcBus wraps it).\n\n"
                "TachyonRpcBus() is not connected: listen() makes it the server, connect() the caller."},
    {Py_tp_new, rpcbus_new},
    {Py_tp_dealloc, rpcbus_dealloc},
    {Py_tp_repr, rpcbus_repr},
    {Py_tp_methods, rpcbus_methods},
    {Py_tp_getset, rpcbus_getset},
    {Py_tp_members, rpcbus_members},
    {0, NULL},
};

static PyType_Spec rpcbus_spec = {
    .name = "tachyon.TachyonRpcBus",
    .basicsize = sizeof(RpcBusObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = rpcbus_slots,
};

static int add_type(PyObject *module, PyType_Spec *spec, PyTypeObject **slot)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, NULL);
    if (!type)
        return -1;
    *slot = (PyTypeObject *)type; /* borrowed: the module's dict keeps it */
    int rc = PyModule_AddObjectRef(module, strrchr(spec->name, '.') + 1, type);
    Py_DECREF(type);
    return rc;
}

int tpy_rpc_types_init(PyObject *module, tpy_state *st)
{
    if (add_type(module, &txguard_spec, &st->RpcTxGuard_Type) < 0 ||
        add_type(module, &rxguard_spec, &st->RpcRxGuard_Type) < 0 ||
        add_type(module, &rpcbus_spec, &st->RpcBus_Type) < 0)
        return -1;
    return 0;
}
