/*
 * bus.c - the Bus type: creating one (listen/connect), closing it, copy-in
 * sends, and the blocking waits shared by every receive.
 *
 * Every blocking wait releases the GIL and calls the C library's timed
 * functions in slices of TPY_SLICE_MS; between slices it runs pending signal
 * handlers, so Ctrl-C raises KeyboardInterrupt promptly. A slice that ends
 * without a message has acquired nothing, so an interrupt never loses one.
 */
#include <string.h>
#include <time.h>

#include "ext.h"

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The length of the next wait slice, or 0 when the deadline (-1: none) passed. */
static int next_slice_ms(int64_t deadline)
{
    if (deadline < 0)
        return TPY_SLICE_MS;
    int64_t left = deadline - monotonic_ms();
    if (left <= 0)
        return 0;
    return left < TPY_SLICE_MS ? (int)left : TPY_SLICE_MS;
}

static int64_t deadline_from(int64_t timeout_ms)
{
    return timeout_ms < 0 ? -1 : monotonic_ms() + timeout_ms;
}

/* ---- Lifecycle ------------------------------------------------------------ */

static BusObject *bus_wrap(tpy_state *st, tachyon_bus_t *cbus, PyObject *path)
{
    BusObject *self = PyObject_GC_New(BusObject, st->Bus_Type);
    if (!self) {
        tachyon_bus_destroy(cbus);
        return NULL;
    }
    memset((char *)self + sizeof(PyObject), 0, sizeof(BusObject) - sizeof(PyObject));
    self->st = st;
    self->bus = cbus;
    self->path = Py_NewRef(path);
    self->max_payload = (Py_ssize_t)tachyon_bus_max_payload(cbus);
    self->next_liveness_ms = tpy_now_ms() + TPY_TX_LIVENESS_MS;
    self->liveness_countdown = TPY_TX_LIVENESS_EVERY;
    PyObject_GC_Track(self);
    return self;
}

/* Release whatever guard or batch still holds part of the ring (the bus is
 * going away), destroy the C bus, drop the reusable guards. */
static void bus_do_close(BusObject *self)
{
    if (self->tx_holder)
        tpy_txguard_bus_closing((TxGuardObject *)self->tx_holder);
    if (self->rx_holder) {
        if (Py_IS_TYPE(self->rx_holder, self->st->Batch_Type))
            tpy_batch_bus_closing((BatchObject *)self->rx_holder);
        else
            tpy_rxguard_bus_closing((RxGuardObject *)self->rx_holder);
    }
    self->tx_holder = self->rx_holder = NULL;
    tachyon_bus_t *cbus = self->bus;
    self->bus = NULL;
    self->closing = 0;
    tachyon_bus_destroy(cbus);
    for (int i = 0; i < TPY_GUARD_POOL; i++) {
        Py_CLEAR(self->tx_pool[i]);
        Py_CLEAR(self->rx_pool[i]);
    }
}

/* After a wait with the GIL released: did another thread ask to close? */
static int closed_while_waiting(BusObject *self)
{
    if (!self->closing)
        return 0;
    bus_do_close(self);
    PyErr_SetString(PyExc_ValueError, "the bus was closed by another thread during the wait");
    return 1;
}

static PyObject *path_arg(PyObject *obj)
{
    PyObject *bytes = NULL;
    if (!PyUnicode_Check(obj) && !PyBytes_Check(obj) && !PyObject_HasAttrString(obj, "__fspath__")) {
        PyErr_Format(PyExc_TypeError, "path must be str, bytes or os.PathLike, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (!PyUnicode_FSConverter(obj, &bytes))
        return NULL;
    return bytes;
}

static int capacity_arg(PyObject *obj, size_t *out)
{
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "capacity must be an int, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        v = 0;
    }
    if (v < 64 || v > (1ull << 30) || (v & (v - 1)) != 0) {
        PyErr_SetString(PyExc_ValueError,
                        "capacity must be a power of two from 64 to 2**30 bytes (e.g. 1 << 20)");
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static PyObject *bus_listen(PyTypeObject *cls, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    tpy_state *st = PyType_GetModuleState(cls);
    PyObject *names[] = {st->kw_path, st->kw_capacity, st->kw_timeout};
    PyObject *a[3];
    if (tpy_parse_args(args, nargs, kwnames, names, 2, 3, 1, "listen", a) < 0)
        return NULL;
    size_t capacity = 1u << 20;
    int64_t timeout_ms;
    if (a[1] && capacity_arg(a[1], &capacity) < 0)
        return NULL;
    if (tpy_timeout_ms(a[2], &timeout_ms) < 0)
        return NULL;
    PyObject *path = path_arg(a[0]);
    if (!path)
        return NULL;
    int64_t deadline = deadline_from(timeout_ms);
    tachyon_bus_t *cbus = NULL;
    tachyon_error_t err;
    for (;;) {
        tachyon_listen_opts_t opts;
        tachyon_listen_opts_init(&opts, capacity);
        opts.timeout_ms = deadline < 0 ? -1 : (int)(deadline - monotonic_ms() > 0 ? deadline - monotonic_ms() : 0);
        /* A signal ends poll() with EINTR (the library never restarts it),
         * so the wait need not be sliced: Ctrl-C comes back here at once. */
        Py_BEGIN_ALLOW_THREADS
        err = tachyon_bus_listen_ex(PyBytes_AS_STRING(path), &opts, &cbus);
        Py_END_ALLOW_THREADS
        if (err != TACHYON_ERR_INTERRUPTED)
            break;
        if (PyErr_CheckSignals() < 0) {
            Py_DECREF(path);
            return NULL;
        }
    }
    if (err != TACHYON_SUCCESS) {
        PyObject *doing = PyUnicode_FromFormat("listen on '%s'", PyBytes_AS_STRING(path));
        tpy_set_error(st, err, doing ? PyUnicode_AsUTF8(doing) : "listen");
        Py_XDECREF(doing);
        Py_DECREF(path);
        return NULL;
    }
    PyObject *bus = (PyObject *)bus_wrap(st, cbus, a[0]);
    Py_DECREF(path);
    return bus;
}

static PyObject *bus_connect(PyTypeObject *cls, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    tpy_state *st = PyType_GetModuleState(cls);
    PyObject *names[] = {st->kw_path, st->kw_timeout};
    PyObject *a[2];
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 2, 1, "connect", a) < 0)
        return NULL;
    int64_t timeout_ms = 5000;
    if (a[1] && tpy_timeout_ms(a[1], &timeout_ms) < 0)
        return NULL;
    PyObject *path = path_arg(a[0]);
    if (!path)
        return NULL;
    int64_t deadline = deadline_from(timeout_ms);
    tachyon_bus_t *cbus = NULL;
    tachyon_error_t err;
    for (;;) {
        /* Slices: a connector retries while nothing listens; between slices
         * we look at signals. A slice that connected is never discarded. */
        int slice = next_slice_ms(deadline);
        Py_BEGIN_ALLOW_THREADS
        err = tachyon_bus_connect_timeout(PyBytes_AS_STRING(path), slice, &cbus);
        Py_END_ALLOW_THREADS
        if (err == TACHYON_SUCCESS)
            break;
        if (PyErr_CheckSignals() < 0) {
            Py_DECREF(path);
            return NULL;
        }
        int retry = err == TACHYON_ERR_INTERRUPTED ||
                    (err == TACHYON_ERR_NETWORK && next_slice_ms(deadline) > 0);
        if (!retry)
            break;
    }
    if (err != TACHYON_SUCCESS) {
        PyObject *doing = PyUnicode_FromFormat("connect to '%s'", PyBytes_AS_STRING(path));
        tpy_set_error(st, err, doing ? PyUnicode_AsUTF8(doing) : "connect");
        Py_XDECREF(doing);
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    return (PyObject *)bus_wrap(st, cbus, a[0]);
}

static PyObject *bus_close(BusObject *self, PyObject *unused)
{
    if (!self->bus)
        Py_RETURN_NONE;
    if (self->exports > 0) {
        PyErr_Format(PyExc_BufferError,
                     "cannot close the bus: %zd memoryview(s) of its shared memory are still "
                     "alive; release them (exit their with-blocks) first",
                     self->exports);
        return NULL;
    }
    if (self->rx_waiting || self->tx_waiting) {
        /* Another thread is inside the library with this bus: it closes the
         * bus itself when its current slice ends. */
        self->closing = 1;
        Py_RETURN_NONE;
    }
    bus_do_close(self);
    Py_RETURN_NONE;
}

static PyObject *bus_enter(BusObject *self, PyObject *unused)
{
    if (!self->bus)
        return tpy_closed_error(), NULL;
    return Py_NewRef(self);
}

static PyObject *bus_exit(BusObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *r = bus_close(self, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static int bus_traverse(BusObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->path);
    Py_VISIT(self->packed_key);
    Py_VISIT(self->packed_pack_into);
    Py_VISIT(self->last_size_obj);
    for (int i = 0; i < TPY_GUARD_POOL; i++) {
        Py_VISIT(self->tx_pool[i]);
        Py_VISIT(self->rx_pool[i]);
    }
    return 0;
}

static int bus_clear(BusObject *self)
{
    Py_CLEAR(self->packed_key);
    Py_CLEAR(self->packed_pack_into);
    Py_CLEAR(self->last_size_obj);
    for (int i = 0; i < TPY_GUARD_POOL; i++) {
        Py_CLEAR(self->tx_pool[i]);
        Py_CLEAR(self->rx_pool[i]);
    }
    return 0;
}

static void bus_dealloc(BusObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    /* No guard can still point into the ring: one that does holds a
     * reference to us. So destroying the C bus here is safe. */
    if (self->bus)
        bus_do_close(self);
    bus_clear(self);
    Py_CLEAR(self->path);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

/* ---- Producer ------------------------------------------------------------- */

/* May a new slot be acquired? Not while a previous one is still open. */
int tpy_bus_check_tx_free(BusObject *self)
{
    if (self->tx_waiting) {
        PyErr_SetString(PyExc_RuntimeError,
                        "another thread is sending on this bus; a bus has one producer thread at a time");
        return -1;
    }
    TxGuardObject *g = (TxGuardObject *)self->tx_holder;
    if (!g)
        return 0;
    if (g->hold == TPY_ORPHANED) {
        PyErr_SetString(PyExc_BufferError,
                        "a memoryview of the previous send_zero_copy slot is still alive; release "
                        "it (the slot is then discarded) before sending again");
        return -1;
    }
    if (tpy_guard_unreferenced((PyObject *)g)) {
        /* A pooled guard nobody references any more: abandoned, roll it back. */
        tpy_txguard_bus_closing(g);
        self->tx_holder = NULL;
        return 0;
    }
    PyErr_SetString(PyExc_RuntimeError,
                    "the previous send_zero_copy slot is still open; exit its with-block first");
    return -1;
}

/* Every TPY_TX_LIVENESS_EVERY sends, and at most every TPY_TX_LIVENESS_MS,
 * ask whether the consumer still lives: a dead consumer is otherwise only
 * noticed when the ring fills. */
static int check_consumer_alive(BusObject *self)
{
    if (--self->liveness_countdown > 0)
        return 0;
    self->liveness_countdown = TPY_TX_LIVENESS_EVERY;
    int64_t now = tpy_now_ms();
    if (now < self->next_liveness_ms)
        return 0;
    self->next_liveness_ms = now + TPY_TX_LIVENESS_MS;
    if (tachyon_peer_alive(self->bus))
        return 0;
    return tpy_set_error(self->st, tachyon_bus_last_error(self->bus), "send");
}

static int size_error(BusObject *self, Py_ssize_t size)
{
    if (size < 0)
        PyErr_SetString(PyExc_ValueError, "size must be >= 0");
    else
        PyErr_Format(PyExc_ValueError,
                     "message of %zd bytes does not fit this bus: at most bus.max_payload = %zd "
                     "bytes (capacity - 64); listen with a larger capacity",
                     size, self->max_payload);
    return -1;
}

/* Wait for room for `size` bytes, GIL released, in slices. */
static void *wait_for_room(BusObject *self, Py_ssize_t size, int64_t timeout_ms)
{
    int64_t deadline = deadline_from(timeout_ms);
    for (;;) {
        int slice = next_slice_ms(deadline);
        if (slice == 0) {
            tpy_set_error(self->st, TACHYON_ERR_FULL, "send");
            return NULL;
        }
        void *p;
        tachyon_bus_t *cbus = self->bus;
        self->tx_waiting = 1;
        Py_BEGIN_ALLOW_THREADS
        p = tachyon_acquire_tx_blocking(cbus, (size_t)size, 1000, slice);
        Py_END_ALLOW_THREADS
        self->tx_waiting = 0;
        if (p && !self->closing)
            return p;
        if (p)
            tachyon_rollback_tx(cbus);
        if (closed_while_waiting(self))
            return NULL;
        tachyon_error_t err = tachyon_bus_last_error(cbus);
        if (err != TACHYON_ERR_TIMEOUT && err != TACHYON_ERR_INTERRUPTED && err != TACHYON_ERR_FULL) {
            tpy_set_error(self->st, err, "send");
            return NULL;
        }
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

/*
 * Acquire a slot of `size` bytes: the common start of every send. Checks the
 * bus, the previous slot and (every TPY_TX_LIVENESS_MS) the consumer's
 * liveness; waits for room while the ring is full, up to timeout_ms (-1:
 * forever, 0: not at all). NULL with an exception set on failure.
 */
void *tpy_bus_acquire_tx(BusObject *self, Py_ssize_t size, int64_t timeout_ms)
{
    if (!self->bus)
        return tpy_closed_error(), NULL;
    if (self->tx_holder || self->tx_waiting) {
        if (tpy_bus_check_tx_free(self) < 0)
            return NULL;
    }
    if (size < 0 || size > self->max_payload)
        return size_error(self, size), NULL;
    if (check_consumer_alive(self) < 0)
        return NULL;
    void *p = tachyon_acquire_tx(self->bus, (size_t)size);
    if (p)
        return p;
    tachyon_error_t err = tachyon_bus_last_error(self->bus);
    if (err != TACHYON_ERR_FULL) {
        tpy_set_error(self->st, err, "send");
        return NULL;
    }
    if (timeout_ms == 0) {
        tpy_set_error(self->st, TACHYON_ERR_FULL, "send");
        return NULL;
    }
    return wait_for_room(self, size, timeout_ms);
}

static PyObject *bus_send(BusObject *self, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames)
{
    tpy_state *st = self->st;
    PyObject *names[] = {st->kw_data, st->kw_type_id, st->kw_timeout};
    PyObject *a[3];
    uint32_t type_id = 0;
    int64_t timeout_ms = -1;
    if (tpy_parse_args(args, nargs, kwnames, names, 2, 3, 1, "send", a) < 0)
        return NULL;
    if (a[1] && tpy_type_id(a[1], &type_id) < 0)
        return NULL;
    if (a[2] && tpy_timeout_ms(a[2], &timeout_ms) < 0)
        return NULL;
    if (PyBytes_CheckExact(a[0])) {
        /* The common case needs no buffer export. */
        Py_ssize_t n = PyBytes_GET_SIZE(a[0]);
        void *slot = tpy_bus_acquire_tx(self, n, timeout_ms);
        if (!slot)
            return NULL;
        memcpy(slot, PyBytes_AS_STRING(a[0]), (size_t)n);
        tachyon_commit_tx(self->bus, (size_t)n, type_id);
        Py_RETURN_NONE;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(a[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    void *slot = tpy_bus_acquire_tx(self, view.len, timeout_ms);
    if (slot) {
        memcpy(slot, view.buf, (size_t)view.len);
        tachyon_commit_tx(self->bus, (size_t)view.len, type_id);
    }
    PyBuffer_Release(&view);
    if (!slot)
        return NULL;
    Py_RETURN_NONE;
}

/* Raise for a send_batch that stopped after `sent` records; returns NULL. */
static PyObject *batch_send_error(BusObject *self, tachyon_error_t err, Py_ssize_t sent)
{
    tpy_set_error(self->st, err, "send_batch");
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *n = PyLong_FromSsize_t(sent);
    if (value && n)
        (void)PyObject_SetAttrString(value, "sent", n);
    Py_XDECREF(n);
    PyErr_Restore(type, value, tb);
    return NULL;
}

/* Large copies run without the GIL; the buffer is held, so it cannot move. */
#define BATCH_NOGIL_BYTES (256 * 1024)

static PyObject *send_batch_records(BusObject *self, const char *buf, Py_ssize_t record_size,
                                    Py_ssize_t count, uint32_t type_id, int64_t timeout_ms)
{
    int64_t deadline = deadline_from(timeout_ms);
    Py_ssize_t sent = 0;
    tachyon_bus_t *cbus = self->bus;
    while (sent < count) {
        size_t n;
        const char *src = buf + sent * record_size;
        size_t left = (size_t)(count - sent);
        if (left * (size_t)record_size >= BATCH_NOGIL_BYTES) {
            self->tx_waiting = 1;
            Py_BEGIN_ALLOW_THREADS
            n = tachyon_send_batch(cbus, src, (size_t)record_size, left, type_id);
            Py_END_ALLOW_THREADS
            self->tx_waiting = 0;
        } else {
            n = tachyon_send_batch(cbus, src, (size_t)record_size, left, type_id);
        }
        sent += (Py_ssize_t)n;
        if (sent == count)
            break;
        tachyon_error_t err = tachyon_bus_last_error(cbus);
        if (err != TACHYON_ERR_FULL)
            return batch_send_error(self, err, sent);
        /* Full: wait for room for one more record, give the slot back, and
         * let the next send_batch fill whatever room there is. */
        int slice = next_slice_ms(deadline);
        if (slice == 0 || timeout_ms == 0)
            return batch_send_error(self, TACHYON_ERR_FULL, sent);
        void *p;
        self->tx_waiting = 1;
        Py_BEGIN_ALLOW_THREADS
        p = tachyon_acquire_tx_blocking(cbus, (size_t)record_size, 1000, slice);
        if (p)
            tachyon_rollback_tx(cbus);
        Py_END_ALLOW_THREADS
        self->tx_waiting = 0;
        if (closed_while_waiting(self))
            return NULL;
        if (!p) {
            err = tachyon_bus_last_error(cbus);
            if (err != TACHYON_ERR_TIMEOUT && err != TACHYON_ERR_INTERRUPTED)
                return batch_send_error(self, err, sent);
        }
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
    return PyLong_FromSsize_t(sent);
}

static PyObject *bus_send_batch(BusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    tpy_state *st = self->st;
    PyObject *names[] = {st->kw_data, st->kw_record_size, st->kw_type_id, st->kw_timeout};
    PyObject *a[4];
    uint32_t type_id = 0;
    int64_t timeout_ms = -1;
    if (tpy_parse_args(args, nargs, kwnames, names, 3, 4, 2, "send_batch", a) < 0)
        return NULL;
    if (!PyLong_Check(a[1]) || PyBool_Check(a[1])) {
        PyErr_Format(PyExc_TypeError, "record_size must be an int, not %.100s", Py_TYPE(a[1])->tp_name);
        return NULL;
    }
    Py_ssize_t record_size = PyLong_AsSsize_t(a[1]);
    if (record_size == -1 && PyErr_Occurred())
        return NULL;
    if (a[2] && tpy_type_id(a[2], &type_id) < 0)
        return NULL;
    if (a[3] && tpy_timeout_ms(a[3], &timeout_ms) < 0)
        return NULL;
    if (!self->bus)
        return tpy_closed_error(), NULL;
    if ((self->tx_holder || self->tx_waiting) && tpy_bus_check_tx_free(self) < 0)
        return NULL;
    if (record_size <= 0 || record_size > self->max_payload) {
        if (record_size <= 0)
            PyErr_SetString(PyExc_ValueError, "record_size must be > 0");
        else
            size_error(self, record_size);
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(a[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL;
    if (view.len % record_size != 0) {
        PyErr_Format(PyExc_ValueError,
                     "the buffer's length (%zd bytes) is not a multiple of record_size (%zd)",
                     view.len, record_size);
    } else if (check_consumer_alive(self) == 0) {
        result = send_batch_records(self, view.buf, record_size, view.len / record_size, type_id,
                                    timeout_ms);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *bus_flush(BusObject *self, PyObject *unused)
{
    if (!self->bus)
        return tpy_closed_error(), NULL;
    tachyon_flush(self->bus);
    Py_RETURN_NONE;
}

/* ---- Consumer ------------------------------------------------------------- */

/* May messages be received? Not while a guard or batch still holds some. */
int tpy_bus_check_rx_free(BusObject *self)
{
    if (self->rx_waiting) {
        PyErr_SetString(PyExc_RuntimeError,
                        "another thread is receiving on this bus; a bus has one consumer thread at a time");
        return -1;
    }
    PyObject *h = self->rx_holder;
    if (!h)
        return 0;
    int is_batch = Py_IS_TYPE(h, self->st->Batch_Type);
    int hold = is_batch ? ((BatchObject *)h)->hold : ((RxGuardObject *)h)->hold;
    if (hold == TPY_ORPHANED) {
        PyErr_SetString(PyExc_BufferError,
                        "a memoryview of a previously received message is still alive; release it "
                        "before receiving more");
        return -1;
    }
    if (!is_batch && tpy_guard_unreferenced(h)) {
        tpy_rxguard_bus_closing((RxGuardObject *)h); /* abandoned pooled guard */
        tachyon_commit_rx(self->bus);
        self->rx_holder = NULL;
        return 0;
    }
    PyErr_SetString(PyExc_RuntimeError,
                    "the previous recv_zero_copy/drain_batch still holds its message(s); exit its "
                    "with-block first");
    return -1;
}

static const void *wait_rx_slow(BusObject *self, uint32_t *type_id, size_t *size, int64_t timeout_ms)
{
    int64_t deadline = deadline_from(timeout_ms);
    tachyon_bus_t *cbus = self->bus;
    for (;;) {
        int slice = next_slice_ms(deadline);
        if (slice == 0) {
            tpy_set_error(self->st, TACHYON_ERR_TIMEOUT, "receive");
            return NULL;
        }
        const void *p;
        self->rx_waiting = 1;
        Py_BEGIN_ALLOW_THREADS
        p = tachyon_acquire_rx_timeout(cbus, type_id, size, TPY_RX_SPINS_NOGIL, slice);
        Py_END_ALLOW_THREADS
        self->rx_waiting = 0;
        if (closed_while_waiting(self))
            return NULL; /* an acquired message dies with the bus */
        if (p)
            return p;
        tachyon_error_t err = tachyon_bus_last_error(cbus);
        if (err != TACHYON_ERR_TIMEOUT && err != TACHYON_ERR_INTERRUPTED) {
            tpy_set_error(self->st, err, "receive");
            return NULL;
        }
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

/*
 * The next message, acquired (the caller commits it): first a short spin
 * with the GIL held, which is all it takes while the producer keeps up, then
 * the sliced wait. NULL with an exception: closed, timeout, peer dead (after
 * the last message), signal, corrupt ring.
 */
const void *tpy_bus_wait_rx(BusObject *self, uint32_t *type_id, size_t *size, int64_t timeout_ms)
{
    if (!self->bus)
        return tpy_closed_error(), NULL;
    if ((self->rx_holder || self->rx_waiting) && tpy_bus_check_rx_free(self) < 0)
        return NULL;
    const void *p = timeout_ms == 0 ? tachyon_acquire_rx(self->bus, type_id, size)
                                    : tachyon_acquire_rx_spin(self->bus, type_id, size, TPY_RX_SPINS_WITH_GIL);
    if (p)
        return p;
    tachyon_error_t err = tachyon_bus_last_error(self->bus);
    if (err != TACHYON_ERR_EMPTY) {
        tpy_set_error(self->st, err, "receive");
        return NULL;
    }
    if (timeout_ms == 0) {
        tpy_set_error(self->st, TACHYON_ERR_TIMEOUT, "receive");
        return NULL;
    }
    return wait_rx_slow(self, type_id, size, timeout_ms);
}

/* As tpy_bus_wait_rx for a batch of up to `max` messages; 0 with an exception. */
size_t tpy_bus_wait_batch(BusObject *self, tachyon_msg_view_t *views, size_t max, int64_t timeout_ms)
{
    if (!self->bus)
        return tpy_closed_error(), 0;
    if ((self->rx_holder || self->rx_waiting) && tpy_bus_check_rx_free(self) < 0)
        return 0;
    tachyon_bus_t *cbus = self->bus;
    size_t n = tachyon_acquire_rx_batch(cbus, views, max);
    if (n)
        return n;
    int64_t deadline = deadline_from(timeout_ms);
    for (;;) {
        tachyon_error_t err = tachyon_bus_last_error(cbus);
        if (err != TACHYON_ERR_EMPTY && err != TACHYON_ERR_TIMEOUT && err != TACHYON_ERR_INTERRUPTED) {
            tpy_set_error(self->st, err, "drain_batch");
            return 0;
        }
        if (PyErr_CheckSignals() < 0)
            return 0;
        int slice = next_slice_ms(deadline);
        if (slice == 0 || timeout_ms == 0) {
            tpy_set_error(self->st, TACHYON_ERR_TIMEOUT, "drain_batch");
            return 0;
        }
        self->rx_waiting = 1;
        Py_BEGIN_ALLOW_THREADS
        n = tachyon_drain_batch_timeout(cbus, views, max, TPY_RX_SPINS_NOGIL, slice);
        Py_END_ALLOW_THREADS
        self->rx_waiting = 0;
        if (closed_while_waiting(self))
            return 0;
        if (n)
            return n;
    }
}

static PyObject *bus_recv(BusObject *self, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames)
{
    PyObject *names[] = {self->st->kw_timeout};
    PyObject *a[1];
    int64_t timeout_ms;
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 1, 0, "recv", a) < 0 ||
        tpy_timeout_ms(a[0], &timeout_ms) < 0)
        return NULL;
    uint32_t type_id;
    size_t size;
    const void *p = tpy_bus_wait_rx(self, &type_id, &size, timeout_ms);
    if (!p)
        return NULL;
    PyObject *msg = tpy_message_new(self->st, type_id, p, size);
    if (msg)
        tachyon_commit_rx(self->bus); /* only once Python has it: else it comes again */
    return msg;
}

static PyObject *bus_iternext(BusObject *self)
{
    uint32_t type_id;
    size_t size;
    const void *p = tpy_bus_wait_rx(self, &type_id, &size, -1);
    if (!p) {
        /* The producer closed the bus and everything was read: the end of
         * the stream, not an error (StopIteration). */
        if (PyErr_ExceptionMatches(self->st->PeerClosedError))
            PyErr_Clear();
        return NULL;
    }
    PyObject *msg = tpy_message_new(self->st, type_id, p, size);
    if (msg)
        tachyon_commit_rx(self->bus);
    return msg;
}

static PyObject *bus_iter(BusObject *self)
{
    if (!self->bus)
        return tpy_closed_error(), NULL;
    return Py_NewRef(self);
}

/* ---- Settings and state --------------------------------------------------- */

static PyObject *bus_set_polling_mode(BusObject *self, PyObject *arg)
{
    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "mode must be an int (0 sleep, 1 pure spin), not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    long mode = PyLong_AsLong(arg);
    if (mode == -1 && PyErr_Occurred())
        return NULL;
    if (mode != 0 && mode != 1) {
        PyErr_SetString(PyExc_ValueError, "mode must be 0 (sleep when idle) or 1 (pure spin)");
        return NULL;
    }
    if (!self->bus)
        return tpy_closed_error(), NULL;
    tachyon_bus_set_polling_mode(self->bus, (int)mode);
    Py_RETURN_NONE;
}

static PyObject *bus_peer_alive(BusObject *self, PyObject *unused)
{
    if (!self->bus)
        return tpy_closed_error(), NULL;
    return PyBool_FromLong(tachyon_peer_alive(self->bus));
}

static PyObject *bus_get_closed(BusObject *self, void *c)
{
    return PyBool_FromLong(self->bus == NULL);
}

static PyObject *bus_get_self(BusObject *self, void *c)
{
    return Py_NewRef(self);
}

static PyObject *bus_get_capacity(BusObject *self, void *c)
{
    if (!self->bus)
        return tpy_closed_error(), NULL;
    return PyLong_FromSize_t(tachyon_bus_capacity(self->bus));
}

static PyObject *bus_get_max_payload(BusObject *self, void *c)
{
    if (!self->bus)
        return tpy_closed_error(), NULL;
    return PyLong_FromSsize_t(self->max_payload);
}

static PyObject *bus_get_state(BusObject *self, void *c)
{
    if (!self->bus)
        return tpy_closed_error(), NULL;
    return PyLong_FromLong((long)tachyon_get_state(self->bus));
}

static PyObject *bus_get_path(BusObject *self, void *c)
{
    return Py_NewRef(self->path);
}

static PyObject *bus_repr(BusObject *self)
{
    return PyUnicode_FromFormat("<tachyon.Bus path=%R %s>", self->path, self->bus ? "open" : "closed");
}

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
#define CAST_FN(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef bus_methods[] = {
    {"listen", CAST_FN(bus_listen), FASTKW | METH_CLASS,
     "listen(path, capacity=1<<20, *, timeout=None) -> Bus\n\nCreate a ring of `capacity` bytes "
     "(a power of two), wait for one process to connect to `path`, hand it the ring."},
    {"connect", CAST_FN(bus_connect), FASTKW | METH_CLASS,
     "connect(path, *, timeout=5.0) -> Bus\n\nConnect to the listener at `path`, retrying for up "
     "to `timeout` seconds while none is there yet (None: forever, 0: one try)."},
    {"close", (PyCFunction)bus_close, METH_NOARGS,
     "Close the bus (idempotent). BufferError while a memoryview of its memory is alive."},
    {"__enter__", (PyCFunction)bus_enter, METH_NOARGS, NULL},
    {"__exit__", CAST_FN(bus_exit), METH_FASTCALL, NULL},
    {"send", CAST_FN(bus_send), FASTKW,
     "send(data, type_id=0, *, timeout=None)\n\nCopy a bytes-like object into the ring and "
     "publish it: one C call. Waits while the ring is full (RingFullError after `timeout`)."},
    {"send_zero_copy", CAST_FN(tpy_bus_send_zero_copy), FASTKW,
     "send_zero_copy(size, type_id=0, *, timeout=None) -> TxGuard\n\nA writable slot of `size` "
     "bytes in shared memory; commits on a clean with-exit, rolls back on an exception."},
    {"send_packed", CAST_FN(tpy_bus_send_packed), METH_FASTCALL,
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
     "`timeout` seconds, PeerDeadError once the producer is gone and all was read."},
    {"recv_zero_copy", CAST_FN(tpy_bus_recv_zero_copy), FASTKW,
     "recv_zero_copy(timeout=None) -> RxGuard\n\nThe next message in place (read-only buffer); "
     "released when its with-block exits."},
    {"drain_batch", CAST_FN(tpy_bus_drain_batch), FASTKW,
     "drain_batch(max_msgs=1024, timeout=None) -> Batch\n\nWait for at least one message and "
     "take up to `max_msgs` in place; released when the batch's with-block exits."},
    {"set_polling_mode", (PyCFunction)bus_set_polling_mode, METH_O,
     "set_polling_mode(mode): 1 = the consumer spins and never sleeps, 0 = it sleeps when idle."},
    {"peer_alive", (PyCFunction)bus_peer_alive, METH_NOARGS,
     "True while the peer process lives and has not closed the bus."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef bus_getset[] = {
    {"closed", (getter)bus_get_closed, NULL, "True once close() was called.", NULL},
    {"_bus", (getter)bus_get_self, NULL, "The bus itself (the published API's raw handle).", NULL},
    {"capacity", (getter)bus_get_capacity, NULL, "The ring's size in bytes.", NULL},
    {"max_payload", (getter)bus_get_max_payload, NULL, "The largest message, in bytes.", NULL},
    {"state", (getter)bus_get_state, NULL, "2 ready, 3 peer gone, 4 corrupt (see tachyon.h).", NULL},
    {"path", (getter)bus_get_path, NULL, "The socket path given to listen/connect.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef bus_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(BusObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot bus_slots[] = {
    {Py_tp_doc, "A Tachyon bus: one shared-memory ring between two processes.\n\n"
                "Create one with Bus.listen(path, capacity) or Bus.connect(path); use it as a "
                "context manager. One thread produces and one consumes at a time."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_dealloc, bus_dealloc},
    {Py_tp_traverse, bus_traverse},
    {Py_tp_clear, bus_clear},
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
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = bus_slots,
};

int tpy_bus_type_init(PyObject *module, tpy_state *st)
{
    st->Bus_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &bus_spec, NULL);
    if (!st->Bus_Type)
        return -1;
    return PyModule_AddObjectRef(module, "Bus", (PyObject *)st->Bus_Type);
}
