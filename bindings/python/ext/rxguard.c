/*
 * rxguard.c - RxGuard, one received message read in place (Bus.recv_zero_copy,
 * TachyonBus.acquire_rx).
 *
 * The guard exports the message as a read-only buffer, as a DLPack tensor
 * (__dlpack__) and as typed views (view()). The message is released to the
 * producer when the with-block exits (cleanly or not: it was delivered either
 * way, and keeping it would hand the same message out again). Releasing it
 * while a memoryview or tensor is alive would let the producer overwrite
 * what that view shows, so a clean exit then raises BufferError and the
 * release waits for the last export to go. Guards are pooled like TxGuard.
 */
#include <string.h>

#include "ext.h"

static RxGuardObject *take_rx_guard(TachyonBusObject *bus)
{
    int free_slot = -1;
    for (int i = 0; i < TPY_GUARD_POOL; i++) {
        RxGuardObject *g = bus->rx_pool[i];
        if (!g) {
            if (free_slot < 0)
                free_slot = i;
        } else if (g->hold == TPY_IDLE && tpy_guard_unreferenced((PyObject *)g)) {
            return (RxGuardObject *)Py_NewRef(g);
        }
    }
    RxGuardObject *g = PyObject_GC_New(RxGuardObject, bus->st->RxGuard_Type);
    if (!g)
        return NULL;
    g->bound[0] = g->bound[1] = NULL;
    g->bus = NULL;
    g->hold = TPY_IDLE;
    g->exports = 0;
    g->ptr = NULL;
    g->size = 0;
    g->type_id_obj = g->size_obj = NULL;
    PyObject_GC_Track(g);
    if (free_slot >= 0)
        bus->rx_pool[free_slot] = (RxGuardObject *)Py_NewRef(g);
    return g;
}

static void guard_let_go(RxGuardObject *g)
{
    TachyonBusObject *bus = g->bus;
    g->bus = NULL;
    g->ptr = NULL;
    g->hold = TPY_IDLE;
    if (bus) {
        bus->exports -= g->exports; /* views left alive in a fork()ed child */
        if (bus->rx_holder == (PyObject *)g)
            bus->rx_holder = NULL;
        Py_DECREF(bus);
    }
}

/* Release the message to the producer and let go. */
static void guard_commit(RxGuardObject *g)
{
    if (g->bus && g->bus->bus)
        tachyon_commit_rx(g->bus->bus);
    guard_let_go(g);
}

/* The bus closes (or checks an abandoned guard): forget the message. */
void tpy_rxguard_bus_closing(RxGuardObject *g)
{
    guard_let_go(g);
}

/* The last view of a message whose with-block already ended is gone. */
void tpy_rxguard_finish_orphan(RxGuardObject *g)
{
    guard_commit(g);
}

/* Wrap a received message (not yet committed) in a guard. */
static PyObject *hold_message(TachyonBusObject *self, const void *p, uint32_t type_id, size_t size)
{
    RxGuardObject *g = take_rx_guard(self);
    PyObject *type_obj = g ? PyLong_FromUnsignedLong(type_id) : NULL;
    PyObject *size_obj = type_obj ? PyLong_FromSize_t(size) : NULL;
    if (!size_obj) {
        Py_XDECREF(type_obj);
        Py_XDECREF(g);
        return NULL; /* not committed: the message comes again */
    }
    g->bus = (TachyonBusObject *)Py_NewRef(self);
    g->ptr = p;
    g->size = (Py_ssize_t)size;
    Py_XSETREF(g->type_id_obj, type_obj);
    Py_XSETREF(g->size_obj, size_obj);
    g->hold = TPY_ACTIVE;
    self->rx_holder = (PyObject *)g;
    return (PyObject *)g;
}

PyObject *tpy_bus_recv_zero_copy(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    PyObject *names[] = {self->st->kw_timeout};
    PyObject *a[1];
    int64_t timeout_ns;
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 1, 0, "recv_zero_copy", a) < 0 ||
        tpy_timeout_ns(a[0], &timeout_ns) < 0)
        return NULL;
    uint32_t type_id;
    size_t size;
    const void *p = tpy_bus_wait_rx(self, &type_id, &size, timeout_ns, TPY_RX_SPINS_NOGIL);
    if (!p)
        return NULL;
    return hold_message(self, p, type_id, size);
}

/* TachyonBus.acquire_rx(spin_threshold=10000, *, timeout=None). */
PyObject *tpy_bus_acquire_rx_guard(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    PyObject *names[] = {self->st->kw_spin_threshold, self->st->kw_timeout};
    PyObject *a[2];
    int64_t timeout_ns;
    uint32_t spins = TPY_DEFAULT_SPIN_THRESHOLD;
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 2, 0, "acquire_rx", a) < 0 ||
        (a[0] && tpy_spin_arg(a[0], &spins) < 0) || tpy_timeout_ns(a[1], &timeout_ns) < 0)
        return NULL;
    uint32_t type_id;
    size_t size;
    const void *p = tpy_bus_wait_rx(self, &type_id, &size, timeout_ns, spins);
    if (!p)
        return NULL;
    return hold_message(self, p, type_id, size);
}

static PyObject *released_error(RxGuardObject *g)
{
    if (g->hold == TPY_ORPHANED) {
        PyErr_SetString(PyExc_BufferError,
                        "this message's release was refused: a memoryview or tensor of it is "
                        "still alive");
    } else {
        tpy_state *st = PyType_GetModuleState(Py_TYPE(g));
        PyErr_SetString(st->ClosedError,
                        "this received message was released (its with-block ended or its bus "
                        "closed); copy what you need inside the block");
    }
    return NULL;
}

/* As published: entering hands the guard back (the message is already held). */
static PyObject *rxguard_enter(PyObject *self, PyObject *unused)
{
    return Py_NewRef(self);
}

/*
 * Release the message. With a view or tensor still alive the release waits
 * for it (BufferError on a clean exit, so the mistake shows). A second exit
 * does nothing, as published, unless a view is still alive.
 */
static PyObject *rxguard_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    RxGuardObject *g = (RxGuardObject *)self;
    int clean = nargs < 1 || args[0] == Py_None;
    if (g->hold != TPY_ACTIVE) {
        if (g->hold == TPY_ORPHANED && clean)
            return released_error(g);
        Py_RETURN_FALSE;
    }
    if (g->bus->fork_gen != tpy_fork_generation) {
        /* A fork()ed child: nothing there is mapped; the message is its
         * parent's to release, views or not. */
        tpy_state *st = g->bus->st;
        guard_let_go(g);
        return tpy_raise_code(st, TACHYON_ERR_FORKED, TPY_OP_RELEASE, NULL), NULL;
    }
    if (g->exports > 0) {
        g->hold = TPY_ORPHANED;
        if (!clean)
            Py_RETURN_FALSE; /* do not mask the exception in flight */
        PyErr_SetString(PyExc_BufferError,
                        "a memoryview or tensor of the received message is still alive at the end "
                        "of its with-block; the message is released when the last one is; use "
                        "'with memoryview(rx) as mv:', or delete the array first");
        return NULL;
    }
    guard_commit(g);
    Py_RETURN_FALSE;
}

static PyObject *rxguard_release(RxGuardObject *g, PyObject *unused)
{
    PyObject *r = rxguard_exit((PyObject *)g, NULL, 0);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static int rxguard_getbuffer(RxGuardObject *g, Py_buffer *view, int flags)
{
    if (tpy_guard_check_export((GuardHeadObject *)g, "received message") < 0) {
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)g, (void *)g->ptr, g->size, 1, flags) < 0)
        return -1;
    tpy_guard_export((GuardHeadObject *)g);
    return 0;
}

static void rxguard_releasebuffer(RxGuardObject *g, Py_buffer *view)
{
    tpy_guard_unexport((GuardHeadObject *)g);
}

static PyObject *rxguard_dlpack(RxGuardObject *g, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    return tpy_dlpack_export((GuardHeadObject *)g, g->ptr, g->size, args, nargs, kwnames);
}

static PyObject *rxguard_view(RxGuardObject *g, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    return tpy_array_view_new((GuardHeadObject *)g, g->ptr, g->size, args, nargs, kwnames);
}

static PyObject *rxguard_get_data(RxGuardObject *g, void *c)
{
    if (g->hold == TPY_IDLE)
        return released_error(g);
    /* An orphaned message is still held: reading it is fine. */
    if (g->bus->fork_gen != tpy_fork_generation)
        return tpy_raise_code(g->bus->st, TACHYON_ERR_FORKED, TPY_OP_OTHER, NULL), NULL;
    return PyBytes_FromStringAndSize(g->ptr, g->size);
}

static PyObject *rxguard_get_active(RxGuardObject *g, void *c)
{
    return PyBool_FromLong(g->hold == TPY_ACTIVE);
}

static PyObject *rxguard_get_route_id(RxGuardObject *g, void *c)
{
    if (!g->type_id_obj)
        return released_error(g);
    return PyLong_FromLong(TACHYON_ROUTE_ID(PyLong_AsUnsignedLong(g->type_id_obj)));
}

static PyObject *rxguard_get_msg_type(RxGuardObject *g, void *c)
{
    if (!g->type_id_obj)
        return released_error(g);
    return PyLong_FromLong(TACHYON_MSG_TYPE(PyLong_AsUnsignedLong(g->type_id_obj)));
}

static Py_ssize_t rxguard_len(RxGuardObject *g)
{
    return g->size;
}

static int rxguard_traverse(RxGuardObject *g, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(g));
    Py_VISIT(g->bus);
    return tpy_guard_traverse((PyObject *)g, visit, arg);
}

static int rxguard_clear(RxGuardObject *g)
{
    if (g->exports == 0 && g->hold != TPY_IDLE)
        guard_commit(g);
    tpy_guard_clear_bound((PyObject *)g);
    return 0;
}

static void rxguard_dealloc(RxGuardObject *g)
{
    PyTypeObject *tp = Py_TYPE(g);
    PyObject_GC_UnTrack(g);
    if (g->hold != TPY_IDLE)
        guard_commit(g); /* delivered to Python: never hand it out twice */
    tpy_guard_clear_bound((PyObject *)g);
    Py_CLEAR(g->type_id_obj);
    Py_CLEAR(g->size_obj);
    PyObject_GC_Del(g);
    Py_DECREF(tp);
}

/* Installed by guardmeth.c as per-object cached bound methods. */
static PyMethodDef rxguard_enter_exit[] = {
    {"__enter__", (PyCFunction)rxguard_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))rxguard_exit, METH_FASTCALL, NULL},
};

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
#define CAST_FN(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef rxguard_methods[] = {
    {"release", (PyCFunction)rxguard_release, METH_NOARGS,
     "Release the message to the producer now (what the with-exit does)."},
    {"__dlpack__", CAST_FN(rxguard_dlpack), FASTKW,
     "__dlpack__(stream=None, *, max_version=None, dl_device=None, copy=None)\n\nThe payload as "
     "a read-only uint8 DLPack tensor, zero-copy (np.from_dlpack(rx), torch.from_dlpack(rx)). "
     "The message stays held until the tensor is gone."},
    {"__dlpack_device__", tpy_dlpack_device, METH_NOARGS, "(1, 0): the CPU."},
    {"view", CAST_FN(rxguard_view), FASTKW,
     "view(format='B', shape=None, *, offset=0) -> ArrayView\n\nThe payload as a typed, read-only "
     "array, zero-copy: a struct format ('f', 'd', 'i', 'Q', ...) or a numpy dtype, and a shape "
     "(one dimension may be -1). np.asarray(v), memoryview(v), np.from_dlpack(v) and "
     "torch.from_dlpack(v) all see it."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef rxguard_members[] = {
    {"type_id", T_OBJECT_EX, offsetof(RxGuardObject, type_id_obj), READONLY, "The message's type_id."},
    {"actual_size", T_OBJECT_EX, offsetof(RxGuardObject, size_obj), READONLY,
     "The payload's size in bytes."},
    {"size", T_OBJECT_EX, offsetof(RxGuardObject, size_obj), READONLY, "Same as actual_size."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef rxguard_getset[] = {
    {"data", (getter)rxguard_get_data, NULL, "A bytes copy of the payload.", NULL},
    {"active", (getter)rxguard_get_active, NULL, "True until released.", NULL},
    {"route_id", (getter)rxguard_get_route_id, NULL, "Bits 31..16 of type_id.", NULL},
    {"msg_type", (getter)rxguard_get_msg_type, NULL, "Bits 15..0 of type_id.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot rxguard_slots[] = {
    {Py_tp_doc, "A received message in place, from Bus.recv_zero_copy or TachyonBus.acquire_rx: "
                "a read-only buffer (memoryview(rx)), a DLPack tensor, typed views (rx.view), "
                "type_id and actual_size. Released at the with-exit."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_dealloc, rxguard_dealloc},
    {Py_tp_traverse, rxguard_traverse},
    {Py_tp_clear, rxguard_clear},
    {Py_tp_methods, rxguard_methods},
    {Py_tp_members, rxguard_members},
    {Py_tp_getset, rxguard_getset},
    {Py_sq_length, rxguard_len},
    {Py_bf_getbuffer, rxguard_getbuffer},
    {Py_bf_releasebuffer, rxguard_releasebuffer},
    {0, NULL},
};

static PyType_Spec rxguard_spec = {
    .name = "tachyon.RxGuard",
    .basicsize = sizeof(RxGuardObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = rxguard_slots,
};

int tpy_rxguard_type_init(PyObject *module, tpy_state *st)
{
    st->RxGuard_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &rxguard_spec, NULL);
    if (!st->RxGuard_Type ||
        tpy_install_guard_methods(st, st->RxGuard_Type, rxguard_enter_exit) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "RxGuard", (PyObject *)st->RxGuard_Type);
}
