/*
 * bus.c - Bus: the high-level object. As in the published package it holds
 * its TachyonBus in Bus._bus, and both act on the same C handle: Bus adds the
 * published conveniences (listen/connect class methods, send, iteration,
 * send_zero_copy, recv_zero_copy, drain_batch) and this package's own
 * (timeouts, recv, send_packed, send_batch, close, peer_alive, ...).
 *
 * Every method forwards to the TachyonBus's C functions directly (no Python
 * call in between), so the seed's loop, bus.send_zero_copy(...) with
 * bus._bus.flush() every 64 messages, costs what it did when Bus was the
 * handle itself; _bus is a plain T_OBJECT_EX slot, the kind of attribute
 * the interpreter loads fastest (its load is specialised).
 */
#include <string.h>

#include "ext.h"

static TachyonBusObject *core_of(PyObject *self)
{
    return ((BusObject *)self)->core;
}

static PyObject *bus_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    tpy_state *st = tpy_state_of_type(type);
    if (!st)
        return NULL;
    if (type == st->Bus_Type && (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds)))) {
        PyErr_SetString(PyExc_TypeError,
                        "Bus() takes no arguments: open a bus with Bus.listen(socket_path, "
                        "capacity) or Bus.connect(socket_path)");
        return NULL;
    }
    BusObject *self = (BusObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->core = tpy_core_new(st);
    if (!self->core) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* cls(), as the published class methods make their bus (a subclass's
 * __init__ runs too); then its TachyonBus is opened. */
static BusObject *new_for(tpy_state *st, PyTypeObject *cls)
{
    PyObject *obj = PyObject_CallNoArgs((PyObject *)cls);
    if (obj && !PyObject_TypeCheck(obj, st->Bus_Type)) {
        PyErr_Format(PyExc_TypeError, "%.100s() returned %.100s, not a Bus", cls->tp_name,
                     Py_TYPE(obj)->tp_name);
        Py_CLEAR(obj);
    }
    return (BusObject *)obj;
}

/* socket_path or its alias path: one of them, not both. */
static int path_of(PyObject **a, int alias, const char *fname)
{
    if (a[alias]) {
        if (a[0]) {
            PyErr_Format(PyExc_TypeError, "%s() got both socket_path and path", fname);
            return -1;
        }
        a[0] = a[alias];
    }
    if (!a[0]) {
        PyErr_Format(PyExc_TypeError, "%s() missing required argument 'socket_path'", fname);
        return -1;
    }
    return 0;
}

static PyObject *bus_listen(PyTypeObject *cls, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    tpy_state *st = tpy_state_of_type(cls);
    if (!st)
        return NULL;
    PyObject *names[] = {st->kw_socket_path, st->kw_capacity, st->kw_timeout, st->kw_path};
    PyObject *a[4];
    size_t capacity = 1u << 20;
    int64_t timeout_ns;
    if (tpy_parse_args(args, nargs, kwnames, names, 2, 4, 0, "listen", a) < 0 ||
        path_of(a, 3, "listen") < 0)
        return NULL;
    if ((a[1] && tpy_capacity_arg(st, a[1], &capacity) < 0) || tpy_timeout_ns(a[2], &timeout_ns) < 0)
        return NULL;
    BusObject *bus = new_for(st, cls);
    if (!bus)
        return NULL;
    if (tpy_core_listen(bus->core, a[0], capacity, timeout_ns) < 0) {
        Py_DECREF(bus);
        return NULL;
    }
    return (PyObject *)bus;
}

static PyObject *bus_connect(PyTypeObject *cls, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    tpy_state *st = tpy_state_of_type(cls);
    if (!st)
        return NULL;
    PyObject *names[] = {st->kw_socket_path, st->kw_timeout, st->kw_path};
    PyObject *a[3];
    int64_t timeout_ns = 0; /* one attempt, as published and as the C API */
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 3, 0, "connect", a) < 0 ||
        path_of(a, 2, "connect") < 0)
        return NULL;
    if (a[1] && tpy_timeout_ns(a[1], &timeout_ns) < 0)
        return NULL;
    BusObject *bus = new_for(st, cls);
    if (!bus)
        return NULL;
    if (tpy_core_connect(bus->core, a[0], timeout_ns) < 0) {
        Py_DECREF(bus);
        return NULL;
    }
    return (PyObject *)bus;
}

static PyObject *bus_close(PyObject *self, PyObject *unused)
{
    if (tpy_core_close(core_of(self)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* As published: entering hands the bus back, open or not. */
static PyObject *bus_enter(PyObject *self, PyObject *unused)
{
    return Py_NewRef(self);
}

static PyObject *bus_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (tpy_core_close(core_of(self)) < 0)
        return NULL;
    Py_RETURN_FALSE;
}

static PyObject *bus_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return tpy_core_send(core_of(self), args, nargs, kwnames);
}

static PyObject *bus_send_zero_copy(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    return tpy_bus_send_zero_copy(core_of(self), args, nargs, kwnames);
}

static PyObject *bus_send_packed(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return tpy_bus_send_packed(core_of(self), args, nargs);
}

static PyObject *bus_send_batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    return tpy_core_send_batch(core_of(self), args, nargs, kwnames);
}

static PyObject *bus_flush(PyObject *self, PyObject *unused)
{
    return tpy_core_flush(core_of(self));
}

static PyObject *bus_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return tpy_core_recv(core_of(self), args, nargs, kwnames);
}

static PyObject *bus_recv_zero_copy(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    return tpy_bus_recv_zero_copy(core_of(self), args, nargs, kwnames);
}

static PyObject *bus_drain_batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    return tpy_bus_drain_batch(core_of(self), args, nargs, kwnames);
}

static PyObject *bus_set_polling_mode(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames)
{
    return tpy_core_set_polling_mode(core_of(self), args, nargs, kwnames);
}

static PyObject *bus_set_numa_node(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    return tpy_core_set_numa_node(core_of(self), args, nargs, kwnames);
}

static PyObject *bus_peer_alive(PyObject *self, PyObject *unused)
{
    return tpy_core_peer_alive(core_of(self));
}

static PyObject *bus_fileno(PyObject *self, PyObject *unused)
{
    return tpy_bus_fileno(core_of(self));
}

static PyObject *bus_arm(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return tpy_bus_arm(core_of(self), args, nargs);
}

static PyObject *bus_stats_tuple(PyObject *self, PyObject *unused)
{
    return tpy_bus_stats_tuple(core_of(self));
}

static PyObject *bus_iter(PyObject *self)
{
    if (tpy_core_usable(core_of(self)) < 0)
        return NULL;
    return Py_NewRef(self);
}

static PyObject *bus_iternext(PyObject *self)
{
    return tpy_core_next(core_of(self));
}

static PyObject *bus_get_closed(PyObject *self, void *c)
{
    return PyBool_FromLong(core_of(self)->bus == NULL);
}

static PyObject *bus_get_capacity(PyObject *self, void *c)
{
    TachyonBusObject *core = core_of(self);
    if (tpy_core_usable(core) < 0)
        return NULL;
    return PyLong_FromSsize_t(core->capacity);
}

static PyObject *bus_get_max_payload(PyObject *self, void *c)
{
    TachyonBusObject *core = core_of(self);
    if (tpy_core_usable(core) < 0)
        return NULL;
    return PyLong_FromSsize_t(core->max_payload);
}

static PyObject *bus_get_state(PyObject *self, void *c)
{
    return tpy_core_state(core_of(self));
}

static PyObject *bus_get_path(PyObject *self, void *c)
{
    return Py_NewRef(core_of(self)->path);
}

static PyObject *bus_repr(PyObject *self)
{
    TachyonBusObject *core = core_of(self);
    const char *name = Py_TYPE(self)->tp_name;
    if (core->bus)
        return PyUnicode_FromFormat("<%s path=%R capacity=%zd>", name, core->path, core->capacity);
    return PyUnicode_FromFormat("<%s %s>", name, core->ever_opened ? "closed" : "not open");
}

static int bus_traverse(BusObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->core);
    return 0;
}

static void bus_dealloc(BusObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    /* The TachyonBus closes when its last reference goes (guards and calls
     * in progress hold theirs). */
    Py_CLEAR(self->core);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
#define CAST_FN(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef bus_methods[] = {
    {"listen", CAST_FN(bus_listen), FASTKW | METH_CLASS,
     "listen(socket_path, capacity=1<<20, *, timeout=None) -> Bus\n\nCreate a ring of `capacity` "
     "bytes (a power of two, 64 B to 1 GiB), wait for one process to connect to `socket_path`, "
     "hand it the ring. `path` is accepted for socket_path. timeout: seconds to wait for the "
     "peer (None: forever)."},
    {"connect", CAST_FN(bus_connect), FASTKW | METH_CLASS,
     "connect(socket_path, *, timeout=0) -> Bus\n\nConnect to the listener at `socket_path`. "
     "timeout=0 (the default, as published): one attempt, ConnectionError if nothing listens "
     "there yet; timeout=N: wait up to N seconds for a listener; None: forever."},
    {"close", (PyCFunction)bus_close, METH_NOARGS,
     "Close the bus (idempotent). BufferError while a memoryview or tensor of its memory is "
     "alive. From another thread it makes a call blocked on this bus raise ClosedError."},
    {"__enter__", (PyCFunction)bus_enter, METH_NOARGS, NULL},
    {"__exit__", CAST_FN(bus_exit), METH_FASTCALL, NULL},
    {"send", CAST_FN(bus_send), FASTKW,
     "send(data, type_id=0, *, timeout=None)\n\nCopy a bytes-like object into the ring and "
     "publish it. While the ring is full it waits for room: RingFullError after `timeout` "
     "seconds (timeout=0: at once, as the published send does)."},
    {"send_zero_copy", CAST_FN(bus_send_zero_copy), FASTKW,
     "send_zero_copy(size, type_id=0, *, timeout=None) -> TxGuard\n\nA writable slot of `size` "
     "bytes in shared memory; commits (and publishes) on a clean with-exit, rolls back on an "
     "exception. Waits for room like send."},
    {"send_packed", CAST_FN(bus_send_packed), METH_FASTCALL,
     "send_packed(fmt, type_id, *values)\n\nPack `values` with a struct.Struct (or a format "
     "string) straight into a slot and publish it: no context manager, no bytes object."},
    {"send_batch", CAST_FN(bus_send_batch), FASTKW,
     "send_batch(data, record_size, type_id=0, *, timeout=None) -> int\n\nSend every "
     "`record_size`-byte record of a bytes-like object (bytes, bytearray, numpy array) as one "
     "message each, publishing in bulk; waits for room while the ring is full."},
    {"flush", (PyCFunction)bus_flush, METH_NOARGS,
     "Publish what was committed and wake the consumer (commits already do; cheap)."},
    {"recv", CAST_FN(bus_recv), FASTKW,
     "recv(timeout=None) -> Message\n\nThe next message, copied. TachyonTimeoutError after "
     "`timeout` seconds; PeerClosedError / PeerDeadError once the producer is gone and every "
     "message it committed was read."},
    {"recv_zero_copy", CAST_FN(bus_recv_zero_copy), FASTKW,
     "recv_zero_copy(timeout=None) -> RxGuard\n\nThe next message in place (read-only buffer, "
     "DLPack, typed views); released when its with-block exits."},
    {"drain_batch", CAST_FN(bus_drain_batch), FASTKW,
     "drain_batch(max_msgs=1024, spin_threshold=10000, *, timeout=None) -> RxBatchGuard\n\nWait "
     "for at least one message and hold up to `max_msgs` in place; released when the batch's "
     "with-block exits."},
    {"set_polling_mode", CAST_FN(bus_set_polling_mode), FASTKW,
     "set_polling_mode(pure_spin)\n\nNon-zero: the consumer spins and never sleeps (the producer "
     "skips the wake-up check); 0: it sleeps when idle."},
    {"set_numa_node", CAST_FN(bus_set_numa_node), FASTKW,
     "set_numa_node(node_id)\n\nBind the shared memory to a NUMA node (mbind)."},
    {"peer_alive", (PyCFunction)bus_peer_alive, METH_NOARGS,
     "True while the peer process lives and has not closed the bus."},
    {"fileno", (PyCFunction)bus_fileno, METH_NOARGS,
     "fileno() -> int\n\nA descriptor for select/poll/epoll or an event loop: readable after "
     "arm() once what it waits for may be there. Owned by the bus (closed with it), the same "
     "on every call."},
    {"arm", CAST_FN(bus_arm), METH_FASTCALL,
     "arm(what=WAIT_RX) -> bool\n\nClear fileno() and arm it for a message (WAIT_RX), room "
     "(WAIT_TX) or both. True: it is there already, do not wait; False: wait until fileno() is "
     "readable, then try the non-blocking calls, and arm again when they find nothing."},
    {"_stats", (PyCFunction)bus_stats_tuple, METH_NOARGS,
     "The fields of stats() as a tuple."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef bus_getset[] = {
    {"closed", (getter)bus_get_closed, NULL, "True unless the bus is open.", NULL},
    {"capacity", (getter)bus_get_capacity, NULL, "The ring's size in bytes.", NULL},
    {"max_payload", (getter)bus_get_max_payload, NULL, "The largest message, in bytes.", NULL},
    {"state", (getter)bus_get_state, NULL, "2 ready, 3 peer gone, 4 corrupt (see tachyon.h).", NULL},
    {"path", (getter)bus_get_path, NULL, "The socket path given to listen/connect.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef bus_members[] = {
    {"_bus", T_OBJECT_EX, offsetof(BusObject, core), READONLY,
     "The TachyonBus this Bus acts on (the published low-level object)."},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(BusObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot bus_slots[] = {
    {Py_tp_doc, "A Tachyon bus: one shared-memory ring between two processes.\n\n"
                "Open one with Bus.listen(socket_path, capacity) or Bus.connect(socket_path); use "
                "it as a context manager. One producer thread and one consumer thread at a time."},
    {Py_tp_new, bus_tp_new},
    {Py_tp_dealloc, bus_dealloc},
    {Py_tp_traverse, bus_traverse},
    {Py_tp_repr, bus_repr},
    {Py_tp_iter, bus_iter},
    {Py_tp_iternext, bus_iternext},
    {Py_tp_methods, bus_methods},
    {Py_tp_getset, bus_getset},
    {Py_tp_members, bus_members},
    {0, NULL},
};

static PyType_Spec bus_spec = {
    .name = "tachyon.Bus",
    .basicsize = sizeof(BusObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = bus_slots,
};

int tpy_bus_type_init(PyObject *module, tpy_state *st)
{
    st->Bus_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &bus_spec, NULL);
    if (!st->Bus_Type)
        return -1;
    return PyModule_AddObjectRef(module, "Bus", (PyObject *)st->Bus_Type);
}
