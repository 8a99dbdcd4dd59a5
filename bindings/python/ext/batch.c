/*
 * batch.c - RxBatchGuard (drain_batch): up to max_msgs received messages read
 * in place, and RxMsgView, one of them (a read-only buffer, a DLPack tensor,
 * typed views, type_id and actual_size). The whole batch is released to the
 * producer when its with-block exits; as for RxGuard, not while a view or
 * tensor of any item is alive: the release then waits for the last one.
 */
#include <stdlib.h>
#include <string.h>

#include "ext.h"

static void batch_let_go(BatchObject *b)
{
    TachyonBusObject *bus = b->bus;
    b->bus = NULL;
    b->hold = TPY_IDLE;
    if (bus) {
        bus->exports -= b->exports; /* views left alive in a fork()ed child */
        if (bus->rx_holder == (PyObject *)b)
            bus->rx_holder = NULL;
        Py_DECREF(bus);
    }
}

static void batch_commit(BatchObject *b)
{
    if (b->bus && b->bus->bus && b->count > 0)
        tachyon_commit_rx_batch(b->bus->bus, b->views, (size_t)b->count);
    batch_let_go(b);
}

void tpy_batch_bus_closing(BatchObject *b)
{
    batch_let_go(b);
}

void tpy_batch_finish_orphan(BatchObject *b)
{
    batch_commit(b);
}

/* drain_batch(max_msgs=1024, spin_threshold=10000, *, timeout=None): the
 * published positional order, on Bus and TachyonBus alike. */
PyObject *tpy_bus_drain_batch(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    tpy_state *st = self->st;
    PyObject *names[] = {st->kw_max_msgs, st->kw_spin_threshold, st->kw_timeout};
    PyObject *a[3];
    int64_t timeout_ns;
    Py_ssize_t max = 1024;
    uint32_t spins = TPY_DEFAULT_SPIN_THRESHOLD;
    if (tpy_parse_args(args, nargs, kwnames, names, 2, 3, 0, "drain_batch", a) < 0 ||
        (a[1] && tpy_spin_arg(a[1], &spins) < 0) || tpy_timeout_ns(a[2], &timeout_ns) < 0)
        return NULL;
    if (a[0]) {
        if (!PyLong_Check(a[0]) || PyBool_Check(a[0])) {
            PyErr_Format(PyExc_TypeError, "max_msgs must be an int, not %.100s", Py_TYPE(a[0])->tp_name);
            return NULL;
        }
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(a[0], &overflow);
        if (v == -1 && PyErr_Occurred())
            return NULL;
        if (overflow < 0 || (!overflow && v <= 0)) {
            PyErr_SetString(PyExc_ValueError, "max_msgs must be > 0");
            return NULL;
        }
        max = overflow || v > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)v;
    }
    if (tpy_core_usable(self) < 0)
        return NULL;
    /* A ring never holds more than capacity / 64 messages: no need for more views. */
    Py_ssize_t most = self->capacity / 64;
    if (max > most)
        max = most;
    BatchObject *b = PyObject_GC_New(BatchObject, st->Batch_Type);
    if (!b)
        return NULL;
    b->bound[0] = b->bound[1] = NULL;
    b->bus = NULL;
    b->hold = TPY_IDLE;
    b->exports = 0;
    b->count = 0;
    b->views = PyMem_Malloc((size_t)max * sizeof(tachyon_msg_view_t));
    PyObject_GC_Track(b);
    if (!b->views) {
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    size_t n = tpy_bus_wait_batch(self, b->views, (size_t)max, timeout_ns, spins);
    if (n == 0) {
        Py_DECREF(b);
        return NULL;
    }
    b->count = (Py_ssize_t)n;
    b->bus = (TachyonBusObject *)Py_NewRef(self);
    b->hold = TPY_ACTIVE;
    self->rx_holder = (PyObject *)b;
    return (PyObject *)b;
}

static PyObject *batch_released_error(BatchObject *b)
{
    if (b->hold == TPY_ORPHANED) {
        PyErr_SetString(PyExc_BufferError,
                        "this batch's release was refused: a memoryview or tensor of one of its "
                        "messages is alive");
    } else {
        tpy_state *st = PyType_GetModuleState(Py_TYPE(b));
        PyErr_SetString(st->ClosedError,
                        "this batch was released (its with-block ended or its bus closed); copy "
                        "what you need inside the block");
    }
    return NULL;
}

static PyObject *batch_enter(PyObject *self, PyObject *unused)
{
    return Py_NewRef(self);
}

/* Release every message in one batch commit; with a view or tensor alive,
 * when the last one goes (BufferError on a clean exit). A second exit does
 * nothing, as published, unless a view is still alive. */
static PyObject *batch_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    BatchObject *b = (BatchObject *)self;
    int clean = nargs < 1 || args[0] == Py_None;
    if (b->hold != TPY_ACTIVE) {
        if (b->hold == TPY_ORPHANED && clean)
            return batch_released_error(b);
        Py_RETURN_FALSE;
    }
    if (b->bus->fork_gen != tpy_fork_generation) {
        /* A fork()ed child: nothing there is mapped; the messages are
         * its parent's to release, views or not. */
        tpy_state *st = b->bus->st;
        batch_let_go(b);
        return tpy_raise_code(st, TACHYON_ERR_FORKED, TPY_OP_RELEASE, NULL), NULL;
    }
    if (b->exports > 0) {
        b->hold = TPY_ORPHANED;
        if (!clean)
            Py_RETURN_FALSE;
        PyErr_SetString(PyExc_BufferError,
                        "a memoryview or tensor of a batch's message is still alive at the end of "
                        "the batch's with-block; the batch is released when the last one is");
        return NULL;
    }
    batch_commit(b);
    Py_RETURN_FALSE;
}

static PyObject *batch_release(BatchObject *b, PyObject *unused)
{
    PyObject *r = batch_exit((PyObject *)b, NULL, 0);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static Py_ssize_t batch_len(BatchObject *b)
{
    return b->count;
}

static PyObject *batch_item(BatchObject *b, Py_ssize_t i)
{
    if (i < 0 || i >= b->count) {
        PyErr_SetString(PyExc_IndexError, "batch index out of range");
        return NULL;
    }
    if (b->hold != TPY_ACTIVE)
        return batch_released_error(b);
    tpy_state *st = b->bus->st;
    BatchItemObject *it = PyObject_New(BatchItemObject, st->BatchItem_Type);
    if (!it)
        return NULL;
    it->batch = (BatchObject *)Py_NewRef(b);
    it->index = i;
    it->type_id_obj = PyLong_FromUnsignedLong(b->views[i].type_id);
    it->size_obj = PyLong_FromSize_t(b->views[i].actual_size);
    if (!it->type_id_obj || !it->size_obj) {
        Py_DECREF(it);
        return NULL;
    }
    return (PyObject *)it;
}

static PyObject *batch_get_active(BatchObject *b, void *c)
{
    return PyBool_FromLong(b->hold == TPY_ACTIVE);
}

static int batch_traverse(BatchObject *b, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(b));
    Py_VISIT(b->bus);
    return tpy_guard_traverse((PyObject *)b, visit, arg);
}

static int batch_clear(BatchObject *b)
{
    if (b->exports == 0 && b->hold != TPY_IDLE)
        batch_commit(b);
    tpy_guard_clear_bound((PyObject *)b);
    return 0;
}

static void batch_dealloc(BatchObject *b)
{
    PyTypeObject *tp = Py_TYPE(b);
    PyObject_GC_UnTrack(b);
    if (b->hold != TPY_IDLE)
        batch_commit(b);
    tpy_guard_clear_bound((PyObject *)b);
    PyMem_Free(b->views);
    PyObject_GC_Del(b);
    Py_DECREF(tp);
}

/* Installed by guardmeth.c as per-object cached bound methods. */
static PyMethodDef batch_enter_exit[] = {
    {"__enter__", (PyCFunction)batch_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))batch_exit, METH_FASTCALL, NULL},
};

static PyMethodDef batch_methods[] = {
    {"release", (PyCFunction)batch_release, METH_NOARGS,
     "Release every message of the batch to the producer now."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef batch_getset[] = {
    {"active", (getter)batch_get_active, NULL, "True until released.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot batch_slots[] = {
    {Py_tp_doc, "Messages received in place by drain_batch: len(batch), batch[i] (an "
                "RxMsgView), iteration. Released at the with-exit."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_dealloc, batch_dealloc},
    {Py_tp_traverse, batch_traverse},
    {Py_tp_clear, batch_clear},
    {Py_tp_methods, batch_methods},
    {Py_tp_getset, batch_getset},
    {Py_sq_length, batch_len},
    {Py_sq_item, batch_item},
    {0, NULL},
};

static PyType_Spec batch_spec = {
    .name = "tachyon.RxBatchGuard",
    .basicsize = sizeof(BatchObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = batch_slots,
};

/* ---- RxMsgView ------------------------------------------------------------ */

static const tachyon_msg_view_t *item_view(BatchItemObject *it)
{
    return &it->batch->views[it->index];
}

static int item_getbuffer(BatchItemObject *it, Py_buffer *view, int flags)
{
    BatchObject *b = it->batch;
    if (tpy_guard_check_export((GuardHeadObject *)b, "batch") < 0) {
        view->obj = NULL;
        return -1;
    }
    const tachyon_msg_view_t *v = item_view(it);
    if (PyBuffer_FillInfo(view, (PyObject *)it, (void *)v->ptr, (Py_ssize_t)v->actual_size, 1,
                          flags) < 0)
        return -1;
    tpy_guard_export((GuardHeadObject *)b);
    return 0;
}

static void item_releasebuffer(BatchItemObject *it, Py_buffer *view)
{
    tpy_guard_unexport((GuardHeadObject *)it->batch);
}

/* A tensor or typed view must not outlive the batch unnoticed: it counts
 * on the batch, so leaving the batch's block waits for it. */
static PyObject *item_dlpack(BatchItemObject *it, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    const tachyon_msg_view_t *v = item_view(it);
    return tpy_dlpack_export((GuardHeadObject *)it->batch, v->ptr, (Py_ssize_t)v->actual_size, args,
                             nargs, kwnames);
}

static PyObject *item_view_method(BatchItemObject *it, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    const tachyon_msg_view_t *v = item_view(it);
    return tpy_array_view_new((GuardHeadObject *)it->batch, v->ptr, (Py_ssize_t)v->actual_size, args,
                              nargs, kwnames);
}

static PyObject *item_get_data(BatchItemObject *it, void *c)
{
    BatchObject *b = it->batch;
    if (b->hold == TPY_IDLE)
        return batch_released_error(b);
    if (b->bus->fork_gen != tpy_fork_generation)
        return tpy_raise_code(b->bus->st, TACHYON_ERR_FORKED, TPY_OP_OTHER, NULL), NULL;
    const tachyon_msg_view_t *v = item_view(it);
    return PyBytes_FromStringAndSize(v->ptr, (Py_ssize_t)v->actual_size);
}

static Py_ssize_t item_len(BatchItemObject *it)
{
    return PyLong_AsSsize_t(it->size_obj);
}

static PyObject *item_repr(BatchItemObject *it)
{
    return PyUnicode_FromFormat("<tachyon.RxMsgView type_id=%R actual_size=%R>", it->type_id_obj,
                                it->size_obj);
}

static void item_dealloc(BatchItemObject *it)
{
    PyTypeObject *tp = Py_TYPE(it);
    Py_DECREF(it->batch);
    Py_XDECREF(it->type_id_obj);
    Py_XDECREF(it->size_obj);
    PyObject_Free(it);
    Py_DECREF(tp);
}

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
#define CAST_FN(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef item_methods[] = {
    {"__dlpack__", CAST_FN(item_dlpack), FASTKW,
     "__dlpack__(stream=None, *, max_version=None, dl_device=None, copy=None)\n\nThe payload as "
     "a read-only uint8 DLPack tensor, zero-copy. The batch stays held until the tensor is gone."},
    {"__dlpack_device__", tpy_dlpack_device, METH_NOARGS, "(1, 0): the CPU."},
    {"view", CAST_FN(item_view_method), FASTKW,
     "view(format='B', shape=None, *, offset=0) -> ArrayView\n\nThe payload as a typed, read-only "
     "array, zero-copy (see RxGuard.view)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef item_members[] = {
    {"type_id", T_OBJECT_EX, offsetof(BatchItemObject, type_id_obj), READONLY, "The message's type_id."},
    {"actual_size", T_OBJECT_EX, offsetof(BatchItemObject, size_obj), READONLY,
     "The payload's size in bytes."},
    {"size", T_OBJECT_EX, offsetof(BatchItemObject, size_obj), READONLY, "Same as actual_size."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef item_getset[] = {
    {"data", (getter)item_get_data, NULL, "A bytes copy of the payload.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot item_slots[] = {
    {Py_tp_doc, "One message of an RxBatchGuard: a read-only buffer, a DLPack tensor, typed "
                "views (view()), type_id, actual_size, data."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_dealloc, item_dealloc},
    {Py_tp_repr, item_repr},
    {Py_tp_methods, item_methods},
    {Py_tp_members, item_members},
    {Py_tp_getset, item_getset},
    {Py_sq_length, item_len},
    {Py_bf_getbuffer, item_getbuffer},
    {Py_bf_releasebuffer, item_releasebuffer},
    {0, NULL},
};

static PyType_Spec item_spec = {
    .name = "tachyon.RxMsgView",
    .basicsize = sizeof(BatchItemObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = item_slots,
};

int tpy_batch_type_init(PyObject *module, tpy_state *st)
{
    st->Batch_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &batch_spec, NULL);
    if (!st->Batch_Type ||
        tpy_install_guard_methods(st, st->Batch_Type, batch_enter_exit) < 0 ||
        PyModule_AddObjectRef(module, "RxBatchGuard", (PyObject *)st->Batch_Type) < 0)
        return -1;
    st->BatchItem_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &item_spec, NULL);
    if (!st->BatchItem_Type)
        return -1;
    return PyModule_AddObjectRef(module, "RxMsgView", (PyObject *)st->BatchItem_Type);
}
