/*
 * fan.c - the fan channels (tachyon_fanout_*, tachyon_fanin_*) for the
 * Python package; tachyon/fan.py wraps them as FanOut, FanOutReader, FanIn.
 *
 *   _FanHandle  one C handle: a fan-out producer, a fan-out consumer or a
 *               fan-in consumer (kind says which)
 *   _FanSlot    a message in place: a writable slot of the producer
 *               (committed by the handle's commit) or a received message
 *               (released by the handle's release), exported through the
 *               buffer protocol and counted, so that nothing is committed or
 *               released under a live memoryview (BufferError instead)
 *
 * Waits release the GIL in slices of TPY_SLICE_MS; between two slices
 * pending signals run (Ctrl-C raises KeyboardInterrupt) and nothing is lost:
 * a slice that ends without a message took none. A handle is closed by
 * close(); a close from another thread while a call waits is done by that
 * call when it comes back (which then raises ClosedError).
 */
#include <string.h>

#include "ext.h"

enum fan_kind { FAN_OUT_TX = 1, FAN_OUT_RX = 2, FAN_IN_RX = 3 };

typedef struct FanSlotObject FanSlotObject;

typedef struct {
    PyObject_HEAD
    tpy_state *st;
    int kind;
    void *h;               /* tachyon_fanout_t / tachyon_fanout_rx_t / tachyon_fanin_t; NULL: closed */
    int busy;              /* a call is inside the library with the GIL released */
    int close_pending;     /* close() came meanwhile: the busy call closes */
    FanSlotObject *held;   /* the slot acquired or the message held (borrowed: the slot keeps its
                              handle alive, and clears this when it goes), or NULL */
    PyObject *path;
} FanHandleObject;

struct FanSlotObject {
    PyObject_HEAD
    FanHandleObject *owner; /* strong while it holds a slot or a message */
    char *ptr;
    Py_ssize_t size;
    int writable;
    Py_ssize_t exports;
    uint32_t type_id;
    uint64_t seq;
    uint32_t producer;
    int32_t pid;
};

static PyTypeObject *FanHandle_Type, *FanSlot_Type;

/* ---- Errors ------------------------------------------------------------------- */

static tachyon_error_t last_error(FanHandleObject *self)
{
    switch (self->kind) {
    case FAN_OUT_TX:
        return tachyon_fanout_last_error(self->h);
    case FAN_OUT_RX:
        return tachyon_fanout_rx_last_error(self->h);
    default:
        return tachyon_fanin_last_error(self->h);
    }
}

static void do_destroy(FanHandleObject *self)
{
    void *h = self->h;
    self->h = NULL;
    if (!h)
        return;
    if (self->kind == FAN_OUT_TX)
        tachyon_fanout_destroy(h);
    else if (self->kind == FAN_OUT_RX)
        tachyon_fanout_rx_destroy(h);
    else
        tachyon_fanin_destroy(h);
}

static int usable(FanHandleObject *self)
{
    if (self->h)
        return 0;
    PyErr_SetString(self->st->ClosedError, "this fan channel is closed");
    return -1;
}

/* After a call that released the GIL: did a close() come meanwhile? */
static int end_busy(FanHandleObject *self)
{
    self->busy = 0;
    if (!self->close_pending)
        return 0;
    self->close_pending = 0;
    do_destroy(self);
    PyErr_SetString(self->st->ClosedError, "the fan channel was closed by another thread while this call waited");
    return -1;
}

/* ---- Slots ------------------------------------------------------------------------ */

static FanSlotObject *new_slot(FanHandleObject *owner, void *ptr, size_t size, int writable)
{
    FanSlotObject *s = PyObject_New(FanSlotObject, FanSlot_Type);
    if (!s)
        return NULL;
    s->owner = (FanHandleObject *)Py_NewRef(owner);
    s->ptr = ptr;
    s->size = (Py_ssize_t)size;
    s->writable = writable;
    s->exports = 0;
    s->type_id = 0;
    s->seq = 0;
    s->producer = 0;
    s->pid = 0;
    return s;
}

static void slot_detach(FanSlotObject *s)
{
    s->ptr = NULL;
    s->size = 0;
    Py_CLEAR(s->owner);
}

/* A slot dropped while it still held its message or slot (no memoryview can
 * be alive: each holds a reference to it): give that back, so the handle
 * is usable again and a fan-out reader does not hold the producer back. */
static void slot_dealloc(FanSlotObject *s)
{
    FanHandleObject *owner = s->owner;
    if (owner && owner->held == s) {
        owner->held = NULL;
        if (owner->h && !owner->busy) {
            if (s->writable)
                tachyon_fanout_rollback_tx(owner->h);
            else if (owner->kind == FAN_OUT_RX)
                tachyon_fanout_commit_rx(owner->h);
            else
                tachyon_fanin_commit_rx(owner->h);
        }
    }
    Py_XDECREF(owner);
    PyObject_Free(s);
}

static int slot_getbuffer(FanSlotObject *s, Py_buffer *view, int flags)
{
    if (!s->ptr) {
        PyErr_SetString(PyExc_BufferError, "this message was released (or its slot committed): copy what you "
                                           "need before leaving the with block");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)s, s->ptr, s->size, !s->writable, flags) < 0)
        return -1;
    s->exports++;
    return 0;
}

static void slot_releasebuffer(FanSlotObject *s, Py_buffer *view)
{
    s->exports--;
}

static PyObject *slot_get_type_id(FanSlotObject *s, void *c) { return PyLong_FromUnsignedLong(s->type_id); }
static PyObject *slot_get_seq(FanSlotObject *s, void *c) { return PyLong_FromUnsignedLongLong(s->seq); }
static PyObject *slot_get_producer(FanSlotObject *s, void *c) { return PyLong_FromUnsignedLong(s->producer); }
static PyObject *slot_get_pid(FanSlotObject *s, void *c) { return PyLong_FromLong(s->pid); }
static PyObject *slot_get_size(FanSlotObject *s, void *c) { return PyLong_FromSsize_t(s->size); }

static PyGetSetDef slot_getset[] = {
    {"type_id", (getter)slot_get_type_id, NULL, "The message's type id.", NULL},
    {"seq", (getter)slot_get_seq, NULL, "Fan-out: the message's number; fan-in: the producer's count before it.", NULL},
    {"producer", (getter)slot_get_producer, NULL, "Fan-in: the sending producer's index.", NULL},
    {"pid", (getter)slot_get_pid, NULL, "The sending process.", NULL},
    {"size", (getter)slot_get_size, NULL, "Payload bytes (for a slot being written: its capacity).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot fanslot_slots[] = {
    {Py_tp_doc, "A fan message in place in shared memory: memoryview(slot) reads (or writes) it."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_dealloc, slot_dealloc},
    {Py_tp_getset, slot_getset},
    {Py_bf_getbuffer, slot_getbuffer},
    {Py_bf_releasebuffer, slot_releasebuffer},
    {0, NULL},
};

static PyType_Spec fanslot_spec = {
    .name = "tachyon._FanSlot",
    .basicsize = sizeof(FanSlotObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = fanslot_slots,
};

/* ---- Handles ---------------------------------------------------------------------- */

static FanHandleObject *new_handle(tpy_state *st, int kind, void *h, PyObject *path)
{
    FanHandleObject *self = PyObject_New(FanHandleObject, FanHandle_Type);
    if (!self) {
        void *tmp = h;
        FanHandleObject fake = {.kind = kind, .h = tmp};
        do_destroy(&fake);
        return NULL;
    }
    self->st = st;
    self->kind = kind;
    self->h = h;
    self->busy = 0;
    self->close_pending = 0;
    self->held = NULL;
    self->path = Py_NewRef(path);
    return self;
}

/* Let go of the slot or message held: its memoryviews say "released". */
static int drop_held(FanHandleObject *self, int check_exports)
{
    FanSlotObject *s = self->held;
    if (!s)
        return 0;
    if (check_exports && s->exports > 0) {
        PyErr_SetString(PyExc_BufferError, "a memoryview of the message is still alive: release it (or leave its "
                                           "with block) first");
        return -1;
    }
    self->held = NULL;
    slot_detach(s); /* drops the slot's reference to us: the caller holds its own */
    return 0;
}

static PyObject *handle_close(FanHandleObject *self, PyObject *unused)
{
    if (self->held && self->held->exports > 0) {
        PyErr_SetString(PyExc_BufferError, "cannot close while a memoryview of a message is alive");
        return NULL;
    }
    drop_held(self, 0);
    if (self->busy)
        self->close_pending = 1;
    else
        do_destroy(self);
    Py_RETURN_NONE;
}

static void handle_dealloc(FanHandleObject *self)
{
    drop_held(self, 0);
    if (!self->busy)
        do_destroy(self);
    Py_XDECREF(self->path);
    PyObject_Free(self);
}

static int64_t deadline_of(int64_t timeout_ns)
{
    return timeout_ns < 0 ? -1 : tpy_monotonic_ns() + timeout_ns;
}

/* The next slice in ms; 0 when the deadline (-1: none) has passed. A timeout
 * of 0 gives one look (0 ms). */
static int slice_ms(int64_t deadline, int first)
{
    if (deadline < 0)
        return TPY_SLICE_MS;
    int64_t left = deadline - tpy_monotonic_ns();
    if (left <= 0)
        return first ? 0 : -1;
    int64_t ms = (left + 999999) / 1000000;
    return ms < TPY_SLICE_MS ? (int)ms : TPY_SLICE_MS;
}

static int raise_code(FanHandleObject *self, tachyon_error_t code, tpy_op op)
{
    return tpy_raise_code(self->st, code, op, self->path ? PyUnicode_AsUTF8(self->path) : NULL);
}

/* Wait for a message: returns SUCCESS with *m, OVERRUN, PEER_CLOSED/DEAD
 * (fan-in: with m->producer/pid), or -1 with an exception. */
static int wait_message(FanHandleObject *self, tachyon_fan_msg_t *m, int64_t timeout_ns, uint32_t spin)
{
    int64_t deadline = deadline_of(timeout_ns);
    for (int first = 1;; first = 0) {
        int ms = slice_ms(deadline, first);
        if (ms < 0)
            return raise_code(self, TACHYON_ERR_TIMEOUT, TPY_OP_RECV);
        tachyon_error_t err;
        tpy_error e;
        tpy_error_clear(&e);
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        if (self->kind == FAN_OUT_RX)
            err = tachyon_fanout_acquire_rx(self->h, m, spin, ms);
        else
            err = tachyon_fanin_acquire_rx(self->h, m, spin, ms);
        if (err != TACHYON_SUCCESS)
            tpy_error_note(&e, err);
        Py_END_ALLOW_THREADS
        if (end_busy(self) < 0)
            return -1;
        if (err == TACHYON_SUCCESS || err == TACHYON_ERR_OVERRUN || err == TACHYON_ERR_PEER_CLOSED ||
            err == TACHYON_ERR_PEER_DEAD)
            return (int)err;
        if (err == TACHYON_ERR_FATAL && self->kind == FAN_IN_RX)
            return (int)err; /* one producer's ring: the others go on */
        if (err != TACHYON_ERR_TIMEOUT && err != TACHYON_ERR_EMPTY && err != TACHYON_ERR_INTERRUPTED)
            return tpy_raise(self->st, &e, TPY_OP_RECV, NULL);
        if (PyErr_CheckSignals() < 0)
            return -1;
        if (timeout_ns == 0)
            return raise_code(self, TACHYON_ERR_TIMEOUT, TPY_OP_RECV);
    }
}

static int spin_arg(PyObject *obj, uint32_t *out)
{
    if (!obj || obj == Py_None) {
        *out = 0;
        return 0;
    }
    return tpy_spin_arg(obj, out);
}

static int timeout_arg(PyObject *obj, int64_t *out)
{
    if (!obj || obj == Py_None) {
        *out = -1;
        return 0;
    }
    return tpy_timeout_ns(obj, out);
}

/* recv(timeout=None, spin=0, copy=True) -> (payload or _FanSlot, type_id, seq, producer, pid, status)
 * status: 0 a message; 26 overrun (payload None); 23/15 a producer's end
 * (fan-in; payload None); 17 a corrupt producer ring (fan-in). */
static PyObject *handle_recv(FanHandleObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (usable(self) < 0)
        return NULL;
    if (self->kind == FAN_OUT_TX)
        return PyErr_Format(self->st->StateError, "a fan-out producer does not receive"), NULL;
    int64_t timeout_ns;
    uint32_t spin;
    if (nargs != 3 || timeout_arg(args[0], &timeout_ns) < 0 || spin_arg(args[1], &spin) < 0)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_TypeError, "recv(timeout, spin, copy)"), NULL);
    int copy = PyObject_IsTrue(args[2]);
    if (copy < 0)
        return NULL;
    if (self->held) {
        /* The message of an earlier zero-copy receive whose block did not
         * release it (a memoryview was alive then): release it now. */
        if (drop_held(self, 1) < 0)
            return NULL;
        if (self->kind == FAN_OUT_RX)
            tachyon_fanout_commit_rx(self->h);
        else
            tachyon_fanin_commit_rx(self->h);
    }
    tachyon_fan_msg_t m;
    memset(&m, 0, sizeof(m));
    int status = wait_message(self, &m, timeout_ns, spin);
    if (status < 0)
        return NULL;
    if (status != TACHYON_SUCCESS) {
        unsigned long long missed = self->kind == FAN_OUT_RX ? tachyon_fanout_missed(self->h) : 0;
        return Py_BuildValue("(OkKkiiK)", Py_None, (unsigned long)m.type_id, (unsigned long long)m.seq,
                             (unsigned long)m.producer, (int)m.pid, status, missed);
    }
    PyObject *payload;
    if (copy) {
        payload = PyBytes_FromStringAndSize(m.ptr, (Py_ssize_t)m.size);
        tachyon_error_t rel = self->kind == FAN_OUT_RX ? tachyon_fanout_commit_rx(self->h)
                                                       : tachyon_fanin_commit_rx(self->h);
        if (rel == TACHYON_ERR_OVERRUN) {
            /* Overwritten while we copied: report the overrun instead. */
            Py_XDECREF(payload);
            return Py_BuildValue("(OkKkiiK)", Py_None, 0ul, 0ull, 0ul, 0, (int)TACHYON_ERR_OVERRUN, 0ull);
        }
    } else {
        FanSlotObject *s = new_slot(self, (void *)m.ptr, m.size, 0);
        if (s) {
            s->type_id = m.type_id;
            s->seq = m.seq;
            s->producer = m.producer;
            s->pid = m.pid;
            self->held = s;
        } else if (self->kind == FAN_OUT_RX) {
            tachyon_fanout_commit_rx(self->h);
        } else {
            tachyon_fanin_commit_rx(self->h);
        }
        payload = (PyObject *)s;
    }
    if (!payload)
        return NULL;
    PyObject *r = Py_BuildValue("(NkKkiiK)", payload, (unsigned long)m.type_id, (unsigned long long)m.seq,
                                (unsigned long)m.producer, (int)m.pid, 0, 0ull);
    return r;
}

/* release() -> bool: give the message held by a zero-copy receive back.
 * False: the consumer was dropped while it held it (its bytes may have been
 * overwritten: discard what was read). */
static PyObject *handle_release(FanHandleObject *self, PyObject *unused)
{
    if (usable(self) < 0)
        return NULL;
    if (!self->held || self->kind == FAN_OUT_TX)
        return PyErr_Format(self->st->StateError, "no message is held"), NULL;
    if (drop_held(self, 1) < 0)
        return NULL;
    tachyon_error_t err = self->kind == FAN_OUT_RX ? tachyon_fanout_commit_rx(self->h)
                                                   : tachyon_fanin_commit_rx(self->h);
    if (err == TACHYON_ERR_OVERRUN)
        Py_RETURN_FALSE;
    if (err != TACHYON_SUCCESS)
        return raise_code(self, err, TPY_OP_RELEASE), NULL;
    Py_RETURN_TRUE;
}

/* Producer: wait for a slot of `size` bytes, in slices. */
static void *wait_slot(FanHandleObject *self, Py_ssize_t size, int64_t timeout_ns)
{
    if (size < 0 || (size_t)size > tachyon_fanout_max_payload(self->h))
        return tpy_raise_text(self->st, TACHYON_ERR_INVALID_SZ, TPY_OP_SEND,
                              "a fan-out message holds at most %zu bytes (half the ring less 64); %zd asked",
                              tachyon_fanout_max_payload(self->h), size),
               NULL;
    int64_t deadline = deadline_of(timeout_ns);
    for (int first = 1;; first = 0) {
        int ms = slice_ms(deadline, first);
        if (ms < 0)
            return raise_code(self, TACHYON_ERR_TIMEOUT, TPY_OP_SEND), NULL;
        void *p = tachyon_fanout_acquire_tx(self->h, (size_t)size, 0);
        if (p)
            return p;
        tachyon_error_t err = tachyon_fanout_last_error(self->h);
        if (err != TACHYON_ERR_FULL)
            return raise_code(self, err, TPY_OP_SEND), NULL;
        if (timeout_ns == 0)
            return raise_code(self, TACHYON_ERR_FULL, TPY_OP_SEND), NULL;
        tpy_error e;
        tpy_error_clear(&e);
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        p = tachyon_fanout_acquire_tx(self->h, (size_t)size, ms);
        if (!p)
            tpy_error_note(&e, tachyon_fanout_last_error(self->h));
        Py_END_ALLOW_THREADS
        if (end_busy(self) < 0) {
            return NULL;
        }
        if (p)
            return p;
        if (e.code != TACHYON_ERR_TIMEOUT && e.code != TACHYON_ERR_INTERRUPTED && e.code != TACHYON_ERR_FULL)
            return tpy_raise(self->st, &e, TPY_OP_SEND, NULL), NULL;
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

/* send(data, type_id, timeout) */
static PyObject *handle_send(FanHandleObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (usable(self) < 0)
        return NULL;
    if (self->kind != FAN_OUT_TX)
        return PyErr_Format(self->st->StateError, "only a fan-out producer sends here (a fan-in producer "
                                                  "sends on its Bus)"), NULL;
    uint32_t type_id;
    int64_t timeout_ns;
    if (nargs != 3 || tpy_type_id(args[1], &type_id) < 0 || timeout_arg(args[2], &timeout_ns) < 0)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_TypeError, "send(data, type_id, timeout)"), NULL);
    if (self->held)
        return PyErr_Format(self->st->StateError, "a slot is acquired: commit it first"), NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(args[0], &b, PyBUF_SIMPLE) < 0)
        return NULL;
    void *slot = wait_slot(self, b.len, timeout_ns);
    if (slot) {
        memcpy(slot, b.buf, (size_t)b.len);
        tachyon_fanout_commit_tx(self->h, (size_t)b.len, type_id);
    }
    PyBuffer_Release(&b);
    if (!slot)
        return NULL;
    Py_RETURN_NONE;
}

/* acquire(size, timeout) -> _FanSlot (writable) */
static PyObject *handle_acquire(FanHandleObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (usable(self) < 0)
        return NULL;
    Py_ssize_t size;
    int64_t timeout_ns;
    if (self->kind != FAN_OUT_TX)
        return PyErr_Format(self->st->StateError, "only a fan-out producer acquires slots"), NULL;
    if (nargs != 2 || (size = PyLong_AsSsize_t(args[0])) == -1 || timeout_arg(args[1], &timeout_ns) < 0)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_TypeError, "acquire(size, timeout)"), NULL);
    if (self->held)
        return PyErr_Format(self->st->StateError, "a slot is acquired already: commit it first"), NULL;
    void *p = wait_slot(self, size, timeout_ns);
    if (!p)
        return NULL;
    FanSlotObject *s = new_slot(self, p, (size_t)size, 1);
    if (!s) {
        tachyon_fanout_rollback_tx(self->h);
        return NULL;
    }
    self->held = s;
    return (PyObject *)s;
}

/* commit(actual_size, type_id) or commit(None, 0): roll back. */
static PyObject *handle_commit(FanHandleObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (usable(self) < 0)
        return NULL;
    if (self->kind != FAN_OUT_TX || !self->held)
        return PyErr_Format(self->st->StateError, "no slot is acquired"), NULL;
    uint32_t type_id = 0;
    if (nargs != 2 || (args[0] != Py_None && tpy_type_id(args[1], &type_id) < 0))
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_TypeError, "commit(actual_size, type_id)"), NULL);
    Py_ssize_t actual = args[0] == Py_None ? -1 : PyLong_AsSsize_t(args[0]);
    if (actual == -1 && PyErr_Occurred())
        return NULL;
    if (actual > self->held->size)
        return tpy_raise_text(self->st, TACHYON_ERR_INVALID_SZ, TPY_OP_COMMIT,
                              "actual_size %zd is larger than the slot (%zd bytes)", actual, self->held->size), NULL;
    if (drop_held(self, 1) < 0)
        return NULL;
    if (actual < 0)
        tachyon_fanout_rollback_tx(self->h);
    else
        tachyon_fanout_commit_tx(self->h, (size_t)actual, type_id);
    Py_RETURN_NONE;
}

static PyObject *handle_count(FanHandleObject *self, PyObject *unused)
{
    if (usable(self) < 0)
        return NULL;
    if (self->kind == FAN_OUT_TX)
        return PyLong_FromUnsignedLong(tachyon_fanout_consumers(self->h));
    if (self->kind == FAN_IN_RX)
        return PyLong_FromUnsignedLong(tachyon_fanin_producers(self->h));
    return PyLong_FromUnsignedLong(tachyon_fanout_index(self->h));
}

static PyObject *handle_missed(FanHandleObject *self, PyObject *unused)
{
    if (usable(self) < 0)
        return NULL;
    if (self->kind != FAN_OUT_RX)
        return Py_BuildValue("(KK)", 0ull, 0ull);
    return Py_BuildValue("(KK)", (unsigned long long)tachyon_fanout_missed(self->h),
                         (unsigned long long)tachyon_fanout_missed_total(self->h));
}

static PyObject *handle_max_payload(FanHandleObject *self, PyObject *unused)
{
    if (usable(self) < 0)
        return NULL;
    if (self->kind != FAN_OUT_TX)
        return PyLong_FromLong(0);
    return PyLong_FromSize_t(tachyon_fanout_max_payload(self->h));
}

static PyObject *handle_get_closed(FanHandleObject *self, void *c)
{
    return PyBool_FromLong(self->h == NULL);
}

#define CAST(f) (PyCFunction)(void (*)(void))(f)
static PyMethodDef handle_methods[] = {
    {"close", (PyCFunction)handle_close, METH_NOARGS, "Close this end of the channel."},
    {"recv", CAST(handle_recv), METH_FASTCALL, "recv(timeout, spin, copy): see tachyon/fan.py."},
    {"release", (PyCFunction)handle_release, METH_NOARGS, "Release the message of a zero-copy receive."},
    {"send", CAST(handle_send), METH_FASTCALL, "send(data, type_id, timeout)"},
    {"acquire", CAST(handle_acquire), METH_FASTCALL, "acquire(size, timeout) -> a writable slot"},
    {"commit", CAST(handle_commit), METH_FASTCALL, "commit(actual_size, type_id); commit(None, 0) rolls back"},
    {"count", (PyCFunction)handle_count, METH_NOARGS,
     "consumers (fan-out producer), producers (fan-in), this consumer's index (fan-out consumer)"},
    {"missed", (PyCFunction)handle_missed, METH_NOARGS, "(at the last overrun, in all)"},
    {"max_payload", (PyCFunction)handle_max_payload, METH_NOARGS, "the largest fan-out message"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef handle_getset[] = {
    {"closed", (getter)handle_get_closed, NULL, "True once closed.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot fanhandle_slots[] = {
    {Py_tp_doc, "One end of a fan channel (low level; tachyon.FanOut, FanOutReader and FanIn wrap it)."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_dealloc, handle_dealloc},
    {Py_tp_methods, handle_methods},
    {Py_tp_getset, handle_getset},
    {0, NULL},
};

static PyType_Spec fanhandle_spec = {
    .name = "tachyon._FanHandle",
    .basicsize = sizeof(FanHandleObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = fanhandle_slots,
};

/* ---- Opening ------------------------------------------------------------------------ */

/* _fanout_listen(path, capacity, max_consumers, drop) */
static PyObject *mod_fanout_listen(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    tpy_state *st = PyModule_GetState(mod);
    size_t capacity;
    if (nargs != 4 || tpy_capacity_arg(st, args[1], &capacity) < 0)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_TypeError, "_fanout_listen(path, capacity, max, drop)"), NULL);
    long max = PyLong_AsLong(args[2]);
    int drop = PyObject_IsTrue(args[3]);
    if ((max == -1 && PyErr_Occurred()) || drop < 0)
        return NULL;
    PyObject *b = tpy_path_arg(args[0]);
    if (!b)
        return NULL;
    tachyon_fanout_t *h = NULL;
    tpy_error e;
    tpy_error_clear(&e);
    tachyon_error_t err = tachyon_fanout_listen(PyBytes_AS_STRING(b), capacity, max < 0 ? 0u : (uint32_t)max,
                                                drop ? TACHYON_FAN_DROP_SLOW : TACHYON_FAN_BLOCK, &h);
    if (err != TACHYON_SUCCESS)
        tpy_error_capture(&e, err);
    Py_DECREF(b);
    if (err != TACHYON_SUCCESS)
        return tpy_raise(st, &e, TPY_OP_LISTEN, NULL), NULL;
    return (PyObject *)new_handle(st, FAN_OUT_TX, h, args[0]);
}

/* Connect with retries while nothing listens, releasing the GIL. */
typedef tachyon_error_t (*connect_fn)(const char *path, int timeout_ms, void *arg, void **out);

static tachyon_error_t fanout_connect_fn(const char *path, int timeout_ms, void *arg, void **out)
{
    return tachyon_fanout_connect(path, *(int *)arg ? TACHYON_FAN_START_OLDEST : TACHYON_FAN_START_NEWEST,
                                  timeout_ms, (tachyon_fanout_rx_t **)out);
}

static tachyon_error_t fanin_connect_fn(const char *path, int timeout_ms, void *arg, void **out)
{
    return tachyon_fanin_connect(path, timeout_ms, NULL, (tachyon_bus_t **)out);
}

static void *connect_sliced(tpy_state *st, PyObject *path, int64_t timeout_ns, connect_fn fn, void *arg)
{
    PyObject *b = tpy_path_arg(path);
    if (!b)
        return NULL;
    int64_t deadline = deadline_of(timeout_ns);
    void *out = NULL;
    tpy_error e;
    for (int first = 1;; first = 0) {
        int ms = timeout_ns == 0 ? 0 : slice_ms(deadline, first);
        if (ms < 0)
            break;
        tpy_error_clear(&e);
        Py_BEGIN_ALLOW_THREADS
        tachyon_error_t err = fn(PyBytes_AS_STRING(b), ms == 0 ? 0 : ms * 4, arg, &out);
        if (err != TACHYON_SUCCESS)
            tpy_error_capture(&e, err);
        Py_END_ALLOW_THREADS
        if (e.code == TACHYON_SUCCESS || timeout_ns == 0 ||
            (e.code != TACHYON_ERR_NETWORK && e.code != TACHYON_ERR_INTERRUPTED && e.code != TACHYON_ERR_TIMEOUT))
            break;
        if (PyErr_CheckSignals() < 0) {
            Py_DECREF(b);
            return NULL;
        }
    }
    Py_DECREF(b);
    if (e.code != TACHYON_SUCCESS)
        return tpy_raise(st, &e, TPY_OP_CONNECT, NULL), NULL;
    return out;
}

/* _fanout_connect(path, oldest, timeout) */
static PyObject *mod_fanout_connect(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    tpy_state *st = PyModule_GetState(mod);
    int64_t timeout_ns;
    if (nargs != 3 || timeout_arg(args[2], &timeout_ns) < 0)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_TypeError, "_fanout_connect(path, oldest, timeout)"), NULL);
    int oldest = PyObject_IsTrue(args[1]);
    if (oldest < 0)
        return NULL;
    void *h = connect_sliced(st, args[0], timeout_ns, fanout_connect_fn, &oldest);
    return h ? (PyObject *)new_handle(st, FAN_OUT_RX, h, args[0]) : NULL;
}

/* _fanin_listen(path, capacity, max_producers) */
static PyObject *mod_fanin_listen(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    tpy_state *st = PyModule_GetState(mod);
    size_t capacity;
    if (nargs != 3 || tpy_capacity_arg(st, args[1], &capacity) < 0)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_TypeError, "_fanin_listen(path, capacity, max)"), NULL);
    long max = PyLong_AsLong(args[2]);
    if (max == -1 && PyErr_Occurred())
        return NULL;
    PyObject *b = tpy_path_arg(args[0]);
    if (!b)
        return NULL;
    tachyon_fanin_t *h = NULL;
    tpy_error e;
    tpy_error_clear(&e);
    tachyon_error_t err = tachyon_fanin_listen(PyBytes_AS_STRING(b), capacity, max < 0 ? 0u : (uint32_t)max, &h);
    if (err != TACHYON_SUCCESS)
        tpy_error_capture(&e, err);
    Py_DECREF(b);
    if (err != TACHYON_SUCCESS)
        return tpy_raise(st, &e, TPY_OP_LISTEN, NULL), NULL;
    return (PyObject *)new_handle(st, FAN_IN_RX, h, args[0]);
}

/* _fanin_connect(core, path, timeout): open the closed TachyonBus `core`
 * (Bus()._bus) as a producer of the fan-in at path. */
static PyObject *mod_fanin_connect(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    tpy_state *st = PyModule_GetState(mod);
    int64_t timeout_ns;
    if (nargs != 3 || !PyObject_TypeCheck(args[0], st->TachyonBus_Type) || timeout_arg(args[2], &timeout_ns) < 0)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_TypeError, "_fanin_connect(core, path, timeout)"), NULL);
    TachyonBusObject *core = (TachyonBusObject *)args[0];
    if (core->bus || core->opening)
        return PyErr_Format(st->StateError, "this bus is open already"), NULL;
    tachyon_bus_t *c = connect_sliced(st, args[1], timeout_ns, fanin_connect_fn, NULL);
    if (!c)
        return NULL;
    tpy_core_adopt(core, c, args[1]);
    Py_RETURN_NONE;
}

static PyMethodDef fan_functions[] = {
    {"_fanout_listen", CAST(mod_fanout_listen), METH_FASTCALL, "_fanout_listen(path, capacity, max, drop)"},
    {"_fanout_connect", CAST(mod_fanout_connect), METH_FASTCALL, "_fanout_connect(path, oldest, timeout)"},
    {"_fanin_listen", CAST(mod_fanin_listen), METH_FASTCALL, "_fanin_listen(path, capacity, max)"},
    {"_fanin_connect", CAST(mod_fanin_connect), METH_FASTCALL, "_fanin_connect(core, path, timeout)"},
    {NULL, NULL, 0, NULL},
};

int tpy_fan_init(PyObject *module, tpy_state *st)
{
    PyObject *t = PyType_FromModuleAndSpec(module, &fanhandle_spec, NULL);
    if (!t || PyModule_AddObjectRef(module, "_FanHandle", t) < 0)
        return -1;
    FanHandle_Type = (PyTypeObject *)t;
    Py_DECREF(t);
    t = PyType_FromModuleAndSpec(module, &fanslot_spec, NULL);
    if (!t || PyModule_AddObjectRef(module, "_FanSlot", t) < 0)
        return -1;
    FanSlot_Type = (PyTypeObject *)t;
    Py_DECREF(t);
    return PyModule_AddFunctions(module, fan_functions);
}
