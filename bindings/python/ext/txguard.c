/*
 * txguard.c - TxGuard, a writable slot of the ring (Bus.send_zero_copy,
 * TachyonBus.acquire_tx), and send_packed, which packs a struct straight into
 * a slot.
 *
 * The guard exports the slot through the buffer protocol and counts its
 * exports: committing (or closing the bus) while a memoryview is alive would
 * leave that view pointing at memory the consumer is about to read, so the
 * commit is refused with BufferError and the slot is rolled back once the
 * last view is released.
 *
 * The seed writes one message per with-block, so guards are reused: the bus
 * keeps a few, and one that nobody else references is handed out again
 * instead of allocating a new object per message.
 */
#include <string.h>

#include "ext.h"

static TxGuardObject *new_tx_guard(tpy_state *st)
{
    TxGuardObject *g = PyObject_GC_New(TxGuardObject, st->TxGuard_Type);
    if (!g)
        return NULL;
    g->bound[0] = g->bound[1] = NULL;
    g->bus = NULL;
    g->hold = TPY_IDLE;
    g->exports = 0;
    g->ptr = NULL;
    g->size = 0;
    g->actual_size = g->size_obj = NULL;
    g->type_id = 0;
    PyObject_GC_Track(g);
    return g;
}

/* A guard for the next slot: an idle pooled one, or a new one (pooled if
 * there is room). Returns a new reference. */
static inline int pooled_guard_free(TxGuardObject *g)
{
    /* The usual state: referenced by the pool and its two bound methods only. */
    if (g->hold == TPY_IDLE && Py_REFCNT(g) == 3 && g->bound[0] && g->bound[1] &&
        Py_REFCNT(g->bound[0]) == 1 && Py_REFCNT(g->bound[1]) == 1)
        return 1;
    return g->hold == TPY_IDLE && tpy_guard_unreferenced((PyObject *)g);
}

static TxGuardObject *take_tx_guard(TachyonBusObject *bus)
{
    int free_slot = -1;
    for (int i = 0; i < TPY_GUARD_POOL; i++) {
        TxGuardObject *g = bus->tx_pool[i];
        if (!g) {
            if (free_slot < 0)
                free_slot = i;
        } else if (pooled_guard_free(g)) {
            return (TxGuardObject *)Py_NewRef(g);
        }
    }
    TxGuardObject *g = new_tx_guard(bus->st);
    if (g && free_slot >= 0)
        bus->tx_pool[free_slot] = (TxGuardObject *)Py_NewRef(g);
    return g;
}

/*
 * Ask the CPU for the next slot's two first lines (its header and payload)
 * for writing, now: a Python producer spends the next few hundred
 * nanoseconds in the interpreter, and by the next message the lines, last
 * touched by the consumer a lap ago, are in our cache. Prefetches never
 * fault; one past the end of the ring is merely useless.
 */
static inline void prefetch_for_write(const char *p)
{
#if defined(__x86_64__) || defined(__i386__)
    /* PREFETCHW (exclusive ownership): gcc emits a read prefetch for
     * __builtin_prefetch(p, 1) unless built with -mprfchw. Older CPUs
     * decode it as a no-op. */
    __asm__ volatile("prefetchw %0" : : "m"(*p));
#else
    __builtin_prefetch(p, 1, 3);
#endif
}

static inline void prefetch_next_slot(const char *payload, Py_ssize_t size)
{
    const char *next_header = payload + ((size + 63) & ~(Py_ssize_t)63);
    prefetch_for_write(next_header);
    prefetch_for_write(next_header + 64);
}

static void guard_hold_slot(TxGuardObject *g, TachyonBusObject *bus, void *slot, Py_ssize_t size,
                            PyObject *size_obj, uint32_t type_id)
{
    g->bus = (TachyonBusObject *)Py_NewRef(bus);
    g->ptr = slot;
    g->size = size;
    /* Usually the same int object as for this guard's previous slot. */
    if (g->size_obj != size_obj) {
        Py_INCREF(size_obj);
        Py_XSETREF(g->size_obj, size_obj);
    }
    if (g->actual_size != size_obj) {
        Py_INCREF(size_obj);
        Py_XSETREF(g->actual_size, size_obj);
    }
    g->type_id = type_id;
    g->hold = TPY_ACTIVE;
    bus->tx_holder = (PyObject *)g;
}

/* The slot is committed or rolled back: let go of it and of the bus. */
static void guard_let_go(TxGuardObject *g)
{
    TachyonBusObject *bus = g->bus;
    g->bus = NULL;
    g->ptr = NULL;
    g->hold = TPY_IDLE;
    if (bus) {
        bus->exports -= g->exports; /* views left alive in a fork()ed child */
        if (bus->tx_holder == (PyObject *)g)
            bus->tx_holder = NULL;
        Py_DECREF(bus);
    }
}

static void guard_rollback(TxGuardObject *g)
{
    if (g->hold != TPY_IDLE && g->bus && g->bus->bus)
        tachyon_rollback_tx(g->bus->bus);
    guard_let_go(g);
}

/* The bus closes (or the guard was abandoned): roll the slot back. */
void tpy_txguard_bus_closing(TxGuardObject *g)
{
    guard_rollback(g);
}

/* The last view of a slot whose commit was refused is gone: discard it. */
void tpy_txguard_finish_orphan(TxGuardObject *g)
{
    guard_rollback(g);
}

static PyObject *send_zero_copy_general(TachyonBusObject *self, PyObject *const *args,
                                        Py_ssize_t nargs, PyObject *kwnames);

/* An idle pooled guard, found without a call (borrowed), or NULL. */
static inline TxGuardObject *idle_pooled_guard(TachyonBusObject *bus)
{
    for (int i = 0; i < TPY_GUARD_POOL; i++) {
        TxGuardObject *g = bus->tx_pool[i];
        if (g && pooled_guard_free(g))
            return g;
    }
    return NULL;
}

/*
 * send_zero_copy(size, type_id=0, *, timeout=None). The seed's call,
 * send_zero_copy(size=N, type_id=T) with the same N as last time, a small T,
 * an open bus with no slot held, room in the ring and an idle pooled guard,
 * takes the straight path below; anything else, including every error, goes
 * the general way, which checks and explains everything.
 */
PyObject *tpy_bus_send_zero_copy(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    tpy_state *st = self->st;
    if (nargs == 0 && kwnames && PyTuple_GET_SIZE(kwnames) == 2 &&
        PyTuple_GET_ITEM(kwnames, 0) == st->kw_size &&
        PyTuple_GET_ITEM(kwnames, 1) == st->kw_type_id && args[0] == self->last_size_obj &&
        self->bus && !self->tx_holder && !self->tx_waiting && self->liveness_countdown > 1) {
        long type_id = tpy_small_int(args[1]);
        TxGuardObject *g = idle_pooled_guard(self);
        if (type_id >= 0 && g) {
            void *slot = tachyon_acquire_tx(self->bus, (size_t)self->last_size);
            if (slot) {
                self->liveness_countdown--;
                guard_hold_slot(g, self, slot, self->last_size, args[0], (uint32_t)type_id);
                prefetch_next_slot(slot, self->last_size);
                return Py_NewRef(g);
            }
        }
    }
    return send_zero_copy_general(self, args, nargs, kwnames);
}

static PyObject *send_zero_copy_general(TachyonBusObject *self, PyObject *const *args,
                                        Py_ssize_t nargs, PyObject *kwnames)
{
    tpy_state *st = self->st;
    PyObject *a[3];
    uint32_t type_id = 0;
    int64_t timeout_ns = -1;
    if (nargs == 0 && kwnames && PyTuple_GET_SIZE(kwnames) == 2 &&
        PyTuple_GET_ITEM(kwnames, 0) == st->kw_size &&
        PyTuple_GET_ITEM(kwnames, 1) == st->kw_type_id) {
        /* The seed's call, send_zero_copy(size=..., type_id=...): no parsing. */
        a[0] = args[0];
        a[1] = args[1];
        a[2] = NULL;
    } else {
        PyObject *names[] = {st->kw_size, st->kw_type_id, st->kw_timeout};
        if (tpy_parse_args(args, nargs, kwnames, names, 2, 3, 1, "send_zero_copy", a) < 0)
            return NULL;
    }
    Py_ssize_t size;
    if (a[0] == self->last_size_obj) {
        size = self->last_size; /* the same int object as last time (a constant) */
    } else {
        if (!PyLong_Check(a[0]) || PyBool_Check(a[0])) {
            PyErr_Format(PyExc_TypeError, "size must be an int, not %.100s", Py_TYPE(a[0])->tp_name);
            return NULL;
        }
        size = PyLong_AsSsize_t(a[0]);
        if (size == -1 && PyErr_Occurred())
            return NULL;
        Py_INCREF(a[0]);
        Py_XSETREF(self->last_size_obj, a[0]);
        self->last_size = size;
    }
    if (a[1] && tpy_type_id(a[1], &type_id) < 0)
        return NULL;
    if (a[2] && tpy_timeout_ns(a[2], &timeout_ns) < 0)
        return NULL;
    void *slot = tpy_bus_acquire_tx(self, size, timeout_ns, TPY_OP_SEND);
    if (!slot)
        return NULL;
    TxGuardObject *g = take_tx_guard(self);
    if (!g) {
        tachyon_rollback_tx(self->bus);
        return NULL;
    }
    guard_hold_slot(g, self, slot, size, a[0], type_id);
    prefetch_next_slot(slot, size);
    return (PyObject *)g;
}

/*
 * TachyonBus.acquire_tx(max_payload_size): the published low-level acquire.
 * It never waits (RingFullError when the ring is full). The guard's
 * actual_size defaults to max_payload_size, as everywhere in this package.
 */
PyObject *tpy_bus_acquire_tx_guard(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    PyObject *names[] = {self->st->kw_max_payload_size};
    PyObject *a[1];
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 1, 1, "acquire_tx", a) < 0)
        return NULL;
    if (!PyLong_Check(a[0]) || PyBool_Check(a[0])) {
        PyErr_Format(PyExc_TypeError, "max_payload_size must be an int, not %.100s",
                     Py_TYPE(a[0])->tp_name);
        return NULL;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(a[0], &overflow);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    /* Out of any ring's range either way: say so below. */
    Py_ssize_t size = overflow > 0 || v > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX
                      : overflow < 0 || v < 0        ? -1
                                                     : (Py_ssize_t)v;
    void *slot = tpy_bus_acquire_tx(self, size, 0, TPY_OP_ACQUIRE_TX);
    if (!slot)
        return NULL;
    TxGuardObject *g = take_tx_guard(self);
    if (!g) {
        tachyon_rollback_tx(self->bus);
        return NULL;
    }
    guard_hold_slot(g, self, slot, size, a[0], 0);
    return (PyObject *)g;
}

/* ---- send_packed ---------------------------------------------------------- */

/* Remember `key` (a struct.Struct or a format) with its pack_into and size. */
static int resolve_packer(TachyonBusObject *self, PyObject *key)
{
    PyObject *s;
    if (PyUnicode_Check(key) || PyBytes_Check(key))
        s = PyObject_CallOneArg(self->st->struct_Struct, key);
    else
        s = Py_NewRef(key);
    if (!s)
        return -1;
    PyObject *pack_into = PyObject_GetAttr(s, self->st->kw_pack_into);
    PyObject *size_obj = pack_into ? PyObject_GetAttrString(s, "size") : NULL;
    Py_DECREF(s);
    if (!size_obj) {
        Py_XDECREF(pack_into);
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "send_packed needs a struct.Struct or a format string, not %.100s",
                         Py_TYPE(key)->tp_name);
        }
        return -1;
    }
    Py_ssize_t size = PyLong_AsSsize_t(size_obj);
    Py_DECREF(size_obj);
    if (size == -1 && PyErr_Occurred()) {
        Py_DECREF(pack_into);
        return -1;
    }
    Py_XSETREF(self->packed_key, Py_NewRef(key));
    Py_XSETREF(self->packed_pack_into, pack_into);
    self->packed_size = size;
    return 0;
}

#define PACKED_STACK_ARGS 16

PyObject *tpy_bus_send_packed(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "send_packed(fmt, type_id, *values) needs fmt and type_id");
        return NULL;
    }
    uint32_t type_id;
    if (tpy_type_id(args[1], &type_id) < 0)
        return NULL;
    if (args[0] != self->packed_key && resolve_packer(self, args[0]) < 0)
        return NULL;
    PyObject *pack_into = Py_NewRef(self->packed_pack_into);
    Py_ssize_t size = self->packed_size;
    Py_ssize_t nvalues = nargs - 2;

    void *slot = tpy_bus_acquire_tx(self, size, -1, TPY_OP_SEND);
    if (!slot) {
        Py_DECREF(pack_into);
        return NULL;
    }
    TxGuardObject *g = take_tx_guard(self);
    if (!g) {
        tachyon_rollback_tx(self->bus);
        Py_DECREF(pack_into);
        return NULL;
    }
    PyObject *size_obj = PyLong_FromSsize_t(size);
    if (!size_obj) {
        tachyon_rollback_tx(self->bus);
        Py_DECREF(g);
        Py_DECREF(pack_into);
        return NULL;
    }
    guard_hold_slot(g, self, slot, size, size_obj, type_id);
    Py_DECREF(size_obj);

    /* pack_into(slot, 0, *values), with one spare slot in front so a bound
     * method can prepend its self without copying (PY_VECTORCALL_ARGUMENTS_OFFSET). */
    PyObject *small[PACKED_STACK_ARGS + 3];
    PyObject **stack = small;
    if (nvalues > PACKED_STACK_ARGS) {
        stack = PyMem_Malloc((size_t)(nvalues + 3) * sizeof(PyObject *));
        if (!stack) {
            tpy_txguard_bus_closing(g);
            Py_DECREF(g);
            Py_DECREF(pack_into);
            return PyErr_NoMemory();
        }
    }
    PyObject *zero = PyLong_FromLong(0);
    stack[1] = (PyObject *)g;
    stack[2] = zero;
    memcpy(stack + 3, args + 2, (size_t)nvalues * sizeof(PyObject *));
    PyObject *res = PyObject_Vectorcall(pack_into, stack + 1,
                                        (size_t)(nvalues + 2) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(zero);
    Py_DECREF(pack_into);
    if (stack != small)
        PyMem_Free(stack);

    PyObject *result = NULL;
    if (res && g->exports == 0 && g->bus && g->bus->bus) {
        tachyon_commit_tx(self->bus, (size_t)size, type_id);
        guard_let_go(g);
        result = Py_NewRef(Py_None);
    } else if (res && g->exports > 0) {
        g->hold = TPY_ORPHANED; /* the packer kept a view: the slot is dropped on its release */
        PyErr_SetString(PyExc_BufferError, "the packer kept a buffer of the slot; nothing was sent");
    } else if (!res && g->hold == TPY_ACTIVE && g->exports == 0) {
        tpy_txguard_bus_closing(g); /* packing failed: roll back */
    } else if (res) {
        PyErr_SetString(self->st->ClosedError, "the bus was closed while packing");
    }
    Py_XDECREF(res);
    Py_DECREF(g);
    return result;
}

/* ---- The guard's methods -------------------------------------------------- */

static PyObject *closed_guard_error(PyObject *self)
{
    tpy_state *st = PyType_GetModuleState(Py_TYPE(self));
    PyErr_SetString(st ? st->ClosedError : PyExc_RuntimeError,
                    "this send_zero_copy slot is finished (committed, rolled back, or its bus "
                    "closed); use it only inside its with-block");
    return NULL;
}

static PyObject *finished_error(TxGuardObject *g)
{
    if (g->hold != TPY_ORPHANED)
        return closed_guard_error((PyObject *)g);
    PyErr_SetString(PyExc_BufferError,
                    "this slot's commit was refused: a memoryview of it is still alive");
    return NULL;
}

/* As published: acquisition happened when the guard was made; entering it
 * only hands it back. */
static PyObject *txguard_enter(PyObject *self, PyObject *unused)
{
    return Py_NewRef(self);
}

/* actual_size as a byte count, checked against the slot; -1 with an exception. */
static Py_ssize_t resolve_actual_size(TxGuardObject *g)
{
    PyObject *v = g->actual_size;
    if (v == g->size_obj)
        return g->size; /* not set, or set to the size given: the usual case */
    if (!v || !PyLong_Check(v) || PyBool_Check(v)) {
        PyErr_Format(PyExc_TypeError, "actual_size must be an int, not %.100s",
                     v ? Py_TYPE(v)->tp_name : "a deleted attribute");
        return -1;
    }
    Py_ssize_t n = PyLong_AsSsize_t(v);
    if (n == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        n = -1;
    }
    if (n < 0 || n > g->size) {
        tpy_raise_text(g->bus->st, TACHYON_ERR_INVALID_SZ, TPY_OP_COMMIT,
                       "actual_size %R is outside the slot: it must be in [0, %zd], the size "
                       "acquired; the message was not sent",
                       v, g->size);
        return -1;
    }
    return n;
}

/*
 * A clean exit commits actual_size bytes (and publishes them); an exception
 * rolls back. A live memoryview of the slot refuses the commit (BufferError)
 * and keeps the slot reserved until it goes, then rolls back: the consumer
 * never reads bytes someone may still be writing. A second exit does nothing,
 * as published, unless a view is still alive.
 */
static PyObject *txguard_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    TxGuardObject *g = (TxGuardObject *)self;
    int clean = nargs < 1 || args[0] == Py_None;
    if (g->hold != TPY_ACTIVE) {
        if (g->hold == TPY_ORPHANED && clean)
            return finished_error(g);
        Py_RETURN_FALSE;
    }
    if (g->bus->fork_gen != tpy_fork_generation) {
        /* A fork()ed child: nothing there is mapped; the slot is the parent's. */
        tpy_state *st = g->bus->st;
        guard_let_go(g);
        return tpy_raise_code(st, TACHYON_ERR_FORKED, TPY_OP_COMMIT, NULL), NULL;
    }
    if (g->exports > 0) {
        /* A view still points at the slot: keep the slot ours (nothing else
         * may reuse it) until the view goes, then roll it back. */
        g->hold = TPY_ORPHANED;
        if (!clean)
            Py_RETURN_FALSE;
        PyErr_SetString(PyExc_BufferError,
                        "a memoryview of the send_zero_copy slot is still alive at commit: the "
                        "message was not sent; use 'with memoryview(tx) as mv:' so the view is "
                        "released inside the block");
        return NULL;
    }
    TachyonBusObject *bus = g->bus;
    if (!clean) {
        guard_rollback(g);
        Py_RETURN_FALSE;
    }
    Py_ssize_t actual = resolve_actual_size(g);
    if (actual < 0) {
        guard_rollback(g);
        return NULL;
    }
    tachyon_error_t err = tachyon_commit_tx(bus->bus, (size_t)actual, g->type_id);
    if (err != TACHYON_SUCCESS) {
        tpy_error e;
        tpy_error_capture(&e, err); /* before the rollback, a call of its own */
        tpy_state *st = bus->st;
        guard_rollback(g);
        tpy_raise(st, &e, TPY_OP_COMMIT, NULL);
        return NULL;
    }
    guard_let_go(g);
    Py_RETURN_FALSE;
}

static PyObject *txguard_commit(TxGuardObject *g, PyObject *unused)
{
    if (g->hold == TPY_IDLE)
        return closed_guard_error((PyObject *)g);
    PyObject *none_args[3] = {Py_None, Py_None, Py_None};
    PyObject *r = txguard_exit((PyObject *)g, none_args, 3);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *txguard_rollback(TxGuardObject *g, PyObject *unused)
{
    if (g->hold != TPY_ACTIVE)
        return g->hold == TPY_IDLE ? closed_guard_error((PyObject *)g) : finished_error(g);
    if (g->exports > 0) {
        g->hold = TPY_ORPHANED;
        Py_RETURN_NONE;
    }
    guard_rollback(g);
    Py_RETURN_NONE;
}

static int txguard_getbuffer(TxGuardObject *g, Py_buffer *view, int flags)
{
    if (g->hold != TPY_ACTIVE || g->bus->fork_gen != tpy_fork_generation) {
        view->obj = NULL;
        return tpy_guard_check_export((GuardHeadObject *)g, "send_zero_copy slot");
    }
    /* PyBuffer_FillInfo, minus the checks a writable byte buffer never fails. */
    view->obj = Py_NewRef(g);
    view->buf = g->ptr;
    view->len = g->size;
    view->readonly = 0;
    view->itemsize = 1;
    view->format = (flags & PyBUF_FORMAT) ? "B" : NULL;
    view->ndim = 1;
    view->shape = (flags & PyBUF_ND) ? &view->len : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? &view->itemsize : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    tpy_guard_export((GuardHeadObject *)g);
    return 0;
}

static void txguard_releasebuffer(TxGuardObject *g, Py_buffer *view)
{
    tpy_guard_unexport((GuardHeadObject *)g);
}

static PyObject *txguard_get_type_id(TxGuardObject *g, void *c)
{
    return PyLong_FromUnsignedLong(g->type_id);
}

static int txguard_set_type_id(TxGuardObject *g, PyObject *value, void *c)
{
    uint32_t t;
    if (!value) {
        PyErr_SetString(PyExc_TypeError, "type_id cannot be deleted");
        return -1;
    }
    if (tpy_type_id(value, &t) < 0)
        return -1;
    if (g->hold != TPY_ACTIVE) {
        finished_error(g);
        return -1;
    }
    g->type_id = t;
    return 0;
}

static PyObject *txguard_get_size(TxGuardObject *g, void *c)
{
    return PyLong_FromSsize_t(g->size);
}

static PyObject *txguard_get_active(TxGuardObject *g, void *c)
{
    return PyBool_FromLong(g->hold == TPY_ACTIVE);
}

static int txguard_traverse(TxGuardObject *g, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(g));
    Py_VISIT(g->bus);
    Py_VISIT(g->actual_size);
    return tpy_guard_traverse((PyObject *)g, visit, arg);
}

static int txguard_clear(TxGuardObject *g)
{
    if (g->exports == 0)
        tpy_txguard_bus_closing(g);
    tpy_guard_clear_bound((PyObject *)g);
    Py_CLEAR(g->actual_size);
    return 0;
}

static void txguard_dealloc(TxGuardObject *g)
{
    PyTypeObject *tp = Py_TYPE(g);
    PyObject_GC_UnTrack(g);
    tpy_txguard_bus_closing(g); /* never entered or never exited: roll back */
    tpy_guard_clear_bound((PyObject *)g);
    Py_CLEAR(g->actual_size);
    Py_CLEAR(g->size_obj);
    PyObject_GC_Del(g);
    Py_DECREF(tp);
}

/* Installed by guardmeth.c as per-object cached bound methods. */
static PyMethodDef txguard_enter_exit[] = {
    {"__enter__", (PyCFunction)txguard_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))txguard_exit, METH_FASTCALL, NULL},
};

static PyMethodDef txguard_methods[] = {
    {"commit", (PyCFunction)txguard_commit, METH_NOARGS,
     "Commit now with actual_size (what a clean with-exit does)."},
    {"rollback", (PyCFunction)txguard_rollback, METH_NOARGS, "Give the slot back unsent."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef txguard_members[] = {
    {"actual_size", T_OBJECT_EX, offsetof(TxGuardObject, actual_size), 0,
     "Bytes to commit, in [0, size]; defaults to size. Checked at commit (ValueError)."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef txguard_getset[] = {
    {"type_id", (getter)txguard_get_type_id, (setter)txguard_set_type_id,
     "The message's type_id.", NULL},
    {"size", (getter)txguard_get_size, NULL, "The slot's writable size.", NULL},
    {"active", (getter)txguard_get_active, NULL, "True until committed or rolled back.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot txguard_slots[] = {
    {Py_tp_doc, "A writable slot in the ring, from Bus.send_zero_copy or TachyonBus.acquire_tx. "
                "Write through memoryview(tx) inside the with-block; a clean exit commits "
                "actual_size bytes (default: the size acquired), an exception rolls back."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_dealloc, txguard_dealloc},
    {Py_tp_traverse, txguard_traverse},
    {Py_tp_clear, txguard_clear},
    {Py_tp_methods, txguard_methods},
    {Py_tp_getset, txguard_getset},
    {Py_tp_members, txguard_members},
    {Py_bf_getbuffer, txguard_getbuffer},
    {Py_bf_releasebuffer, txguard_releasebuffer},
    {0, NULL},
};

static PyType_Spec txguard_spec = {
    .name = "tachyon.TxGuard",
    .basicsize = sizeof(TxGuardObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = txguard_slots,
};

int tpy_txguard_type_init(PyObject *module, tpy_state *st)
{
    st->TxGuard_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &txguard_spec, NULL);
    if (!st->TxGuard_Type ||
        tpy_install_guard_methods(st, st->TxGuard_Type, txguard_enter_exit) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "TxGuard", (PyObject *)st->TxGuard_Type);
}
