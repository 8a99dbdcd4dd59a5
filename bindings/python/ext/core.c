/*
 * core.c - TachyonBus: one C handle. Opening it (listen/connect), closing it,
 * the sends and the blocking waits shared by every method of Bus and
 * TachyonBus, and the published low-level methods of TachyonBus itself.
 *
 * Threads. One producer thread and one consumer thread may use a bus at the
 * same time; the GIL serialises everything except the waits, which release
 * it. A thread that releases the GIL takes its own C reference first
 * (inflight_begin) and drops it after (inflight_end), so close() from any
 * other thread only drops the bus's reference: the segment stays mapped
 * until the last call inside the library has left, and that call then
 * raises ClosedError. Two threads on the same side at once would break the
 * single-producer/single-consumer ring, so a second one is refused
 * (tx_waiting/rx_waiting, tx_holder/rx_holder).
 *
 * Waits run in slices of TPY_SLICE_MS with deadlines in nanoseconds: between
 * slices pending signal handlers run (Ctrl-C raises KeyboardInterrupt) and a
 * close() from another thread is seen; a slice that ends without a message
 * has taken nothing, so an interrupt never loses one. A timeout never ends
 * early: a slice the library ends a little before the deadline is followed
 * by another.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ext.h"

/* ---- Deadlines ---------------------------------------------------------------- */

static int64_t deadline_from(int64_t timeout_ns)
{
    return timeout_ns < 0 ? -1 : tpy_monotonic_ns() + timeout_ns;
}

static int64_t ns_left(int64_t deadline)
{
    int64_t left = deadline - tpy_monotonic_ns();
    return left > 0 ? left : 0;
}

/* The next wait slice in ms (rounded up), or 0 when the deadline (-1: none)
 * has passed. */
static int next_slice_ms(int64_t deadline)
{
    if (deadline < 0)
        return TPY_SLICE_MS;
    int64_t left = ns_left(deadline);
    if (left == 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms < TPY_SLICE_MS ? (int)ms : TPY_SLICE_MS;
}

/* ---- In-flight references ----------------------------------------------------- */

/* Before releasing the GIL: a reference of this call's own. */
static inline tachyon_bus_t *inflight_begin(TachyonBusObject *self)
{
    tachyon_bus_t *c = self->bus;
    tachyon_bus_ref(c);
    return c;
}

/* With the GIL back: drop the call's reference. -1 with ClosedError when the
 * bus was closed meanwhile (what the call got dies with the bus). */
static int inflight_end(TachyonBusObject *self, tachyon_bus_t *c)
{
    int closed = self->bus != c;
    tachyon_bus_destroy(c);
    if (!closed)
        return 0;
    PyErr_SetString(self->st->ClosedError,
                    "the bus was closed by another thread while this call waited");
    return -1;
}

/* ---- Lifecycle ---------------------------------------------------------------- */

TachyonBusObject *tpy_core_new(tpy_state *st)
{
    TachyonBusObject *self = PyObject_GC_New(TachyonBusObject, st->TachyonBus_Type);
    if (!self)
        return NULL;
    memset((char *)self + sizeof(PyObject), 0, sizeof(TachyonBusObject) - sizeof(PyObject));
    self->st = st;
    self->path = Py_NewRef(Py_None);
    PyObject_GC_Track(self);
    return self;
}

static void core_attach(TachyonBusObject *self, tachyon_bus_t *c, PyObject *path)
{
    self->bus = c;
    self->fork_gen = tpy_fork_generation;
    self->ever_opened = 1;
    Py_INCREF(path);
    Py_XSETREF(self->path, path);
    self->max_payload = (Py_ssize_t)tachyon_bus_max_payload(c);
    self->capacity = (Py_ssize_t)tachyon_bus_capacity(c);
    self->next_liveness_ms = tpy_now_ms() + TPY_TX_LIVENESS_MS;
    self->liveness_countdown = TPY_TX_LIVENESS_EVERY;
}

void tpy_core_adopt(TachyonBusObject *self, tachyon_bus_t *c, PyObject *path)
{
    core_attach(self, c, path);
}

static int core_forked(TachyonBusObject *self)
{
    return self->fork_gen != tpy_fork_generation;
}

/* Let go of whatever guard or batch still holds part of the ring, drop the
 * bus's C reference (the last one unmaps; a call still inside the library
 * holds its own), drop the reusable guards. */
static void core_do_close(TachyonBusObject *self)
{
    tpy_core_tell_watcher(self); /* while its descriptor is still open */
    if (self->tx_holder)
        tpy_txguard_bus_closing((TxGuardObject *)self->tx_holder);
    if (self->rx_holder) {
        if (Py_IS_TYPE(self->rx_holder, self->st->Batch_Type))
            tpy_batch_bus_closing((BatchObject *)self->rx_holder);
        else
            tpy_rxguard_bus_closing((RxGuardObject *)self->rx_holder);
    }
    self->tx_holder = self->rx_holder = NULL;
    tachyon_bus_t *c = self->bus;
    self->bus = NULL;
    tachyon_bus_destroy(c);
    for (int i = 0; i < TPY_GUARD_POOL; i++) {
        Py_CLEAR(self->tx_pool[i]);
        Py_CLEAR(self->rx_pool[i]);
    }
}

int tpy_core_close(TachyonBusObject *self)
{
    if (!self->bus) {
        if (self->opening)
            self->destroy_requested = 1; /* listen/connect closes what it opens */
        return 0;
    }
    /* In a fork()ed child nothing is mapped: dropping the handle is all
     * there is to do, live views or not. */
    if (self->exports > 0 && !core_forked(self)) {
        PyErr_Format(PyExc_BufferError,
                     "cannot close the bus: %zd memoryview(s) or tensor(s) of its shared memory "
                     "are still alive; release them (exit their with-blocks, delete the arrays) "
                     "first",
                     self->exports);
        return -1;
    }
    core_do_close(self);
    return 0;
}

/* A socket path argument (str, bytes or os.PathLike) as file-system bytes;
 * a new reference, or NULL with TypeError. */
PyObject *tpy_path_arg(PyObject *obj)
{
    PyObject *bytes = NULL;
    if (!PyUnicode_Check(obj) && !PyBytes_Check(obj) && !PyObject_HasAttrString(obj, "__fspath__")) {
        PyErr_Format(PyExc_TypeError, "socket_path must be str, bytes or os.PathLike, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (!PyUnicode_FSConverter(obj, &bytes))
        return NULL;
    return bytes;
}

int tpy_capacity_arg(tpy_state *st, PyObject *obj, size_t *out)
{
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "capacity must be an int, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 64 || v > (1ll << 30) || (v & (v - 1)) != 0)
        return tpy_raise_text(st, TACHYON_ERR_INVALID_SZ, TPY_OP_LISTEN, "capacity %R is out of range",
                              obj);
    *out = (size_t)v;
    return 0;
}

static int begin_opening(TachyonBusObject *self)
{
    if (self->bus || self->opening) {
        PyErr_SetString(PyExc_RuntimeError,
                        self->bus ? "this TachyonBus is already open: destroy() it first"
                                  : "another thread is opening this TachyonBus (listen/connect)");
        return -1;
    }
    self->opening = 1;
    self->destroy_requested = 0;
    return 0;
}

/* The end of listen/connect: attach what was opened, unless destroy() came
 * meanwhile. */
static int end_opening(TachyonBusObject *self, tachyon_bus_t *c, PyObject *path)
{
    self->opening = 0;
    if (self->destroy_requested) {
        tachyon_bus_destroy(c);
        PyErr_SetString(self->st->ClosedError,
                        "the bus was destroyed by another thread while it was being opened");
        return -1;
    }
    core_attach(self, c, path);
    return 0;
}

/* The timeout for one tachyon_bus_listen_ex call: the C library counts
 * whole milliseconds from a truncated clock, so one more keeps it from ending
 * early; beyond INT_MAX ms (24.8 days) it waits forever. */
static int listen_timeout_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = ns_left(deadline);
    if (left == 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000 + 1;
    return ms > INT_MAX ? -1 : (int)ms;
}

int tpy_core_listen(TachyonBusObject *self, PyObject *path_obj, size_t capacity, int64_t timeout_ns)
{
    if (begin_opening(self) < 0)
        return -1;
    PyObject *path = tpy_path_arg(path_obj);
    if (!path) {
        self->opening = 0;
        return -1;
    }
    const char *cpath = PyBytes_AS_STRING(path);
    int64_t deadline = deadline_from(timeout_ns);
    tachyon_bus_t *c = NULL;
    tpy_error e;
    tpy_error_clear(&e);
    for (;;) {
        tachyon_listen_opts_t opts;
        tachyon_listen_opts_init(&opts, capacity);
        opts.timeout_ms = listen_timeout_ms(deadline);
        /* A signal ends poll() with EINTR (the library never restarts it),
         * so the wait need not be sliced: Ctrl-C comes back here at once. */
        Py_BEGIN_ALLOW_THREADS
        tachyon_error_t err = tachyon_bus_listen_ex(cpath, &opts, &c);
        if (err != TACHYON_SUCCESS)
            tpy_error_capture(&e, err);
        else
            e.code = TACHYON_SUCCESS;
        Py_END_ALLOW_THREADS
        if (e.code != TACHYON_ERR_INTERRUPTED)
            break;
        /* As published: run the handlers; if none raises, listen again. */
        if (PyErr_CheckSignals() < 0)
            goto fail;
        if (deadline >= 0 && ns_left(deadline) == 0) {
            tpy_raise_text(self->st, TACHYON_ERR_TIMEOUT, TPY_OP_LISTEN,
                           "no process connected to '%s' in time", cpath);
            goto fail;
        }
    }
    if (e.code != TACHYON_SUCCESS) {
        PyObject *subject = PyUnicode_FromFormat("on '%s'", cpath);
        tpy_raise(self->st, &e, TPY_OP_LISTEN, subject ? PyUnicode_AsUTF8(subject) : NULL);
        Py_XDECREF(subject);
        goto fail;
    }
    Py_DECREF(path);
    return end_opening(self, c, path_obj);
fail:
    self->opening = 0;
    Py_DECREF(path);
    return -1;
}

/* Sleep up to `ns` with the GIL released (between connect attempts). */
static void nap_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    Py_BEGIN_ALLOW_THREADS
    nanosleep(&ts, NULL);
    Py_END_ALLOW_THREADS
}

/* Pause between two connect attempts, as the C library's own retry does. */
#define CONNECT_RETRY_NS (5 * 1000000LL)

/*
 * May a failed connect succeed later? As the C library's retry rule: nothing
 * at the path yet, or a socket file nobody accepts on yet. A path that is
 * something else, or a socket this process may not write to, will not
 * change by waiting.
 */
static int connect_worth_retrying(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT;
    return S_ISSOCK(st.st_mode) && access(path, W_OK) == 0;
}

/*
 * One attempt (timeout 0, as published and as tachyon_bus_connect), or keep
 * trying until the deadline (-1: forever). The attempts are made here, one
 * C call each, so that pending signals are handled between them (a signal
 * that arrives while the library is not sleeping would otherwise go
 * unnoticed by a wait without end); each attempt keeps the library's own
 * deadline for the handshake once connected. The last attempt is made at
 * the deadline, so the timeout is never cut short.
 */
int tpy_core_connect(TachyonBusObject *self, PyObject *path_obj, int64_t timeout_ns)
{
    if (begin_opening(self) < 0)
        return -1;
    PyObject *path = tpy_path_arg(path_obj);
    if (!path) {
        self->opening = 0;
        return -1;
    }
    const char *cpath = PyBytes_AS_STRING(path);
    int64_t deadline = deadline_from(timeout_ns);
    tachyon_bus_t *c = NULL;
    tpy_error e;
    tpy_error_clear(&e);
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        tachyon_error_t err = tachyon_bus_connect(cpath, &c);
        if (err != TACHYON_SUCCESS)
            tpy_error_capture(&e, err);
        else
            e.code = TACHYON_SUCCESS;
        Py_END_ALLOW_THREADS
        if (e.code == TACHYON_SUCCESS || timeout_ns == 0)
            break;
        if (e.code == TACHYON_ERR_NETWORK && !connect_worth_retrying(cpath))
            break;
        if (e.code != TACHYON_ERR_NETWORK && e.code != TACHYON_ERR_INTERRUPTED)
            break;
        if (PyErr_CheckSignals() < 0)
            goto fail;
        int64_t left = deadline < 0 ? CONNECT_RETRY_NS : ns_left(deadline);
        if (left == 0)
            break;
        nap_ns(left < CONNECT_RETRY_NS ? left : CONNECT_RETRY_NS);
        if (PyErr_CheckSignals() < 0)
            goto fail;
    }
    if (e.code != TACHYON_SUCCESS) {
        if (timeout_ns != 0 && (e.code == TACHYON_ERR_NETWORK || e.code == TACHYON_ERR_INTERRUPTED) &&
            connect_worth_retrying(cpath)) {
            char secs[32];
            snprintf(secs, sizeof(secs), "%g", (double)timeout_ns / 1e9);
            tpy_raise_text(self->st, TACHYON_ERR_NETWORK, TPY_OP_CONNECT,
                           "no listener accepted a connection at '%s' within %s s; start the "
                           "listener, or wait longer",
                           cpath, secs);
        } else {
            PyObject *subject = PyUnicode_FromFormat("to '%s'", cpath);
            tpy_raise(self->st, &e, TPY_OP_CONNECT, subject ? PyUnicode_AsUTF8(subject) : NULL);
            Py_XDECREF(subject);
        }
        goto fail;
    }
    Py_DECREF(path);
    return end_opening(self, c, path_obj);
fail:
    self->opening = 0;
    Py_DECREF(path);
    return -1;
}

/* ---- Producer ------------------------------------------------------------- */

/* May a new slot be acquired? Not while a previous one is still open, nor
 * while another thread sends. */
int tpy_bus_check_tx_free(TachyonBusObject *self)
{
    if (self->tx_waiting) {
        PyErr_SetString(self->st->StateError,
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
    PyErr_SetString(self->st->StateError,
                    "the previous send_zero_copy/acquire_tx slot is still open; exit its with-block "
                    "(or call its __exit__) first");
    return -1;
}

/* Every TPY_TX_LIVENESS_EVERY sends, and at most every TPY_TX_LIVENESS_MS,
 * ask whether the consumer still lives: a dead consumer is otherwise only
 * noticed when the ring fills. */
static int check_consumer_alive(TachyonBusObject *self, tpy_op op)
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
    tpy_error e;
    tpy_error_capture(&e, tachyon_bus_last_error(self->bus));
    /* What the consumer left unread, as the library says when a full ring
     * finds the consumer gone (its liveness answer does not say). */
    tachyon_stats_t stats;
    if (tachyon_bus_stats(self->bus, &stats) == TACHYON_SUCCESS && stats.fill_bytes > 0)
        return tpy_raise_text(self->st, e.code, op, "%s; %llu bytes of messages it had not read are lost",
                              e.text, (unsigned long long)stats.fill_bytes);
    return tpy_raise(self->st, &e, op, NULL);
}

static int size_error(TachyonBusObject *self, Py_ssize_t size, tpy_op op)
{
    if (size < 0)
        return tpy_raise_text(self->st, TACHYON_ERR_INVALID_SZ, op, "size %zd is negative", size);
    return tpy_raise_text(self->st, TACHYON_ERR_INVALID_SZ, op,
                          "a %zd-byte message does not fit this bus (%zd bytes at most)", size,
                          self->max_payload);
}

/* Wait for room for `size` bytes, GIL released, in slices. */
static void *wait_for_room(TachyonBusObject *self, Py_ssize_t size, int64_t timeout_ns, tpy_op op)
{
    int64_t deadline = deadline_from(timeout_ns);
    for (;;) {
        int slice = next_slice_ms(deadline);
        if (slice == 0)
            return tpy_raise_code(self->st, TACHYON_ERR_FULL, op, NULL), NULL;
        void *p;
        tpy_error e;
        tpy_error_clear(&e);
        tachyon_bus_t *c = inflight_begin(self);
        self->tx_waiting = 1;
        Py_BEGIN_ALLOW_THREADS
        p = tachyon_acquire_tx_blocking(c, (size_t)size, 1000, slice);
        if (!p)
            tpy_error_note(&e, tachyon_bus_last_error(c));
        Py_END_ALLOW_THREADS
        self->tx_waiting = 0;
        if (p && self->bus != c)
            tachyon_rollback_tx(c); /* closed meanwhile: give the slot back first */
        if (inflight_end(self, c) < 0)
            return NULL;
        if (p)
            return p;
        if (e.code != TACHYON_ERR_TIMEOUT && e.code != TACHYON_ERR_INTERRUPTED &&
            e.code != TACHYON_ERR_FULL)
            return tpy_raise(self->st, &e, op, NULL), NULL;
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

/*
 * Acquire a slot of `size` bytes: the common start of every send. Checks the
 * bus, the previous slot and (every TPY_TX_LIVENESS_MS) the consumer's
 * liveness; waits for room while the ring is full, up to timeout_ns (-1:
 * forever, 0: not at all). NULL with an exception set on failure.
 */
void *tpy_bus_acquire_tx(TachyonBusObject *self, Py_ssize_t size, int64_t timeout_ns, tpy_op op)
{
    if (tpy_core_usable(self) < 0)
        return NULL;
    if (self->tx_holder || self->tx_waiting) {
        if (tpy_bus_check_tx_free(self) < 0)
            return NULL;
    }
    if (size < 0 || size > self->max_payload)
        return size_error(self, size, op), NULL;
    if (check_consumer_alive(self, op) < 0)
        return NULL;
    void *p = tachyon_acquire_tx(self->bus, (size_t)size);
    if (p)
        return p;
    tpy_error e;
    tpy_error_note(&e, tachyon_bus_last_error(self->bus));
    if (e.code != TACHYON_ERR_FULL || timeout_ns == 0)
        return tpy_raise(self->st, &e, op, NULL), NULL;
    return wait_for_room(self, size, timeout_ns, op);
}

PyObject *tpy_core_send(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    tpy_state *st = self->st;
    PyObject *names[] = {st->kw_data, st->kw_type_id, st->kw_timeout};
    PyObject *a[3];
    uint32_t type_id = 0;
    int64_t timeout_ns = -1;
    if (tpy_parse_args(args, nargs, kwnames, names, 2, 3, 1, "send", a) < 0)
        return NULL;
    if (a[1] && tpy_type_id(a[1], &type_id) < 0)
        return NULL;
    if (a[2] && tpy_timeout_ns(a[2], &timeout_ns) < 0)
        return NULL;
    if (PyBytes_CheckExact(a[0])) {
        /* The common case needs no buffer export. */
        Py_ssize_t n = PyBytes_GET_SIZE(a[0]);
        void *slot = tpy_bus_acquire_tx(self, n, timeout_ns, TPY_OP_SEND);
        if (!slot)
            return NULL;
        memcpy(slot, PyBytes_AS_STRING(a[0]), (size_t)n);
        tachyon_commit_tx(self->bus, (size_t)n, type_id);
        Py_RETURN_NONE;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(a[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    void *slot = tpy_bus_acquire_tx(self, view.len, timeout_ns, TPY_OP_SEND);
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
static PyObject *batch_send_error(TachyonBusObject *self, const tpy_error *e, Py_ssize_t sent)
{
    tpy_raise(self->st, e, TPY_OP_SEND, NULL);
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

static PyObject *send_batch_records(TachyonBusObject *self, const char *buf, Py_ssize_t record_size,
                                    Py_ssize_t count, uint32_t type_id, int64_t timeout_ns)
{
    int64_t deadline = deadline_from(timeout_ns);
    Py_ssize_t sent = 0;
    tpy_error e;
    tpy_error_clear(&e);
    while (sent < count) {
        size_t n;
        const char *src = buf + sent * record_size;
        size_t left = (size_t)(count - sent);
        if (left * (size_t)record_size >= BATCH_NOGIL_BYTES) {
            tachyon_bus_t *c = inflight_begin(self);
            self->tx_waiting = 1;
            Py_BEGIN_ALLOW_THREADS
            n = tachyon_send_batch(c, src, (size_t)record_size, left, type_id);
            if (n < left)
                tpy_error_note(&e, tachyon_bus_last_error(c));
            Py_END_ALLOW_THREADS
            self->tx_waiting = 0;
            if (inflight_end(self, c) < 0)
                return NULL;
        } else {
            n = tachyon_send_batch(self->bus, src, (size_t)record_size, left, type_id);
            if (n < left)
                tpy_error_note(&e, tachyon_bus_last_error(self->bus));
        }
        sent += (Py_ssize_t)n;
        if (sent == count)
            break;
        if (e.code != TACHYON_ERR_FULL)
            return batch_send_error(self, &e, sent);
        /* Full: wait for room for one more record, give the slot back, and
         * let the next send_batch fill whatever room there is. */
        int slice = next_slice_ms(deadline);
        if (slice == 0 || timeout_ns == 0)
            return batch_send_error(self, &e, sent);
        void *p;
        tachyon_bus_t *c = inflight_begin(self);
        self->tx_waiting = 1;
        Py_BEGIN_ALLOW_THREADS
        p = tachyon_acquire_tx_blocking(c, (size_t)record_size, 1000, slice);
        if (p)
            tachyon_rollback_tx(c);
        else
            tpy_error_note(&e, tachyon_bus_last_error(c));
        Py_END_ALLOW_THREADS
        self->tx_waiting = 0;
        if (inflight_end(self, c) < 0)
            return NULL;
        if (!p && e.code != TACHYON_ERR_TIMEOUT && e.code != TACHYON_ERR_INTERRUPTED)
            return batch_send_error(self, &e, sent);
        if (!p)
            tpy_error_note(&e, TACHYON_ERR_FULL); /* what a timeout reports */
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
    return PyLong_FromSsize_t(sent);
}

PyObject *tpy_core_send_batch(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    tpy_state *st = self->st;
    PyObject *names[] = {st->kw_data, st->kw_record_size, st->kw_type_id, st->kw_timeout};
    PyObject *a[4];
    uint32_t type_id = 0;
    int64_t timeout_ns = -1;
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
    if (a[3] && tpy_timeout_ns(a[3], &timeout_ns) < 0)
        return NULL;
    if (tpy_core_usable(self) < 0)
        return NULL;
    if ((self->tx_holder || self->tx_waiting) && tpy_bus_check_tx_free(self) < 0)
        return NULL;
    if (record_size <= 0 || record_size > self->max_payload) {
        if (record_size <= 0)
            tpy_raise_text(st, TACHYON_ERR_INVALID_SZ, TPY_OP_SEND, "record_size must be > 0");
        else
            size_error(self, record_size, TPY_OP_SEND);
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
    } else if (check_consumer_alive(self, TPY_OP_SEND) == 0) {
        result = send_batch_records(self, view.buf, record_size, view.len / record_size, type_id,
                                    timeout_ns);
    }
    PyBuffer_Release(&view);
    return result;
}

PyObject *tpy_core_flush(TachyonBusObject *self)
{
    if (tpy_core_usable(self) < 0)
        return NULL;
    if (self->tx_waiting) {
        /* The producer side is busy in another thread: a flush there would
         * be a second producer thread. Its own send publishes anyway. */
        PyErr_SetString(self->st->StateError,
                        "another thread is sending on this bus; flush from the producer thread");
        return NULL;
    }
    tachyon_flush(self->bus);
    Py_RETURN_NONE;
}

/* ---- Consumer ------------------------------------------------------------- */

/* May messages be received? Not while a guard or batch still holds some,
 * nor while another thread receives. */
int tpy_bus_check_rx_free(TachyonBusObject *self)
{
    if (self->rx_waiting) {
        PyErr_SetString(self->st->StateError,
                        "another thread is receiving on this bus; a bus has one consumer thread at a time");
        return -1;
    }
    PyObject *h = self->rx_holder;
    if (!h)
        return 0;
    int is_batch = Py_IS_TYPE(h, self->st->Batch_Type);
    if (((GuardHeadObject *)h)->hold == TPY_ORPHANED) {
        PyErr_SetString(PyExc_BufferError,
                        "a memoryview or tensor of a previously received message is still alive; "
                        "release it before receiving more");
        return -1;
    }
    if (!is_batch && tpy_guard_unreferenced(h)) {
        tpy_rxguard_bus_closing((RxGuardObject *)h); /* abandoned pooled guard */
        tachyon_commit_rx(self->bus);
        self->rx_holder = NULL;
        return 0;
    }
    PyErr_SetString(self->st->StateError,
                    "the previous recv_zero_copy/acquire_rx/drain_batch still holds its message(s); "
                    "exit its with-block first");
    return -1;
}

static int raise_timeout(TachyonBusObject *self, tpy_op op, int64_t timeout_ns)
{
    if (timeout_ns == 0)
        return tpy_raise_text(self->st, TACHYON_ERR_TIMEOUT, op, "no message available (timeout=0)");
    char secs[32];
    snprintf(secs, sizeof(secs), "%g", (double)timeout_ns / 1e9);
    return tpy_raise_text(self->st, TACHYON_ERR_TIMEOUT, op, "no message within %s s", secs);
}

static const void *wait_rx_slow(TachyonBusObject *self, uint32_t *type_id, size_t *size,
                                int64_t timeout_ns, uint32_t spins)
{
    int64_t deadline = deadline_from(timeout_ns);
    for (;;) {
        int slice = next_slice_ms(deadline);
        if (slice == 0)
            return raise_timeout(self, TPY_OP_RECV, timeout_ns), NULL;
        const void *p;
        tpy_error e;
        tpy_error_clear(&e);
        tachyon_bus_t *c = inflight_begin(self);
        self->rx_waiting = 1;
        Py_BEGIN_ALLOW_THREADS
        p = tachyon_acquire_rx_timeout(c, type_id, size, spins, slice);
        if (!p)
            tpy_error_note(&e, tachyon_bus_last_error(c));
        Py_END_ALLOW_THREADS
        self->rx_waiting = 0;
        if (inflight_end(self, c) < 0)
            return NULL; /* a message it took dies with the bus */
        if (p)
            return p;
        if (e.code != TACHYON_ERR_TIMEOUT && e.code != TACHYON_ERR_INTERRUPTED)
            return tpy_raise(self->st, &e, TPY_OP_RECV, NULL), NULL;
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

/*
 * The next message, acquired (the caller commits it): first a short spin
 * with the GIL held, which is all it takes while the producer keeps up, then
 * the sliced wait. NULL with an exception: closed, timeout, peer gone (after
 * the last message), signal, corrupt ring.
 */
const void *tpy_bus_wait_rx(TachyonBusObject *self, uint32_t *type_id, size_t *size,
                            int64_t timeout_ns, uint32_t spins)
{
    if (tpy_core_usable(self) < 0)
        return NULL;
    if ((self->rx_holder || self->rx_waiting) && tpy_bus_check_rx_free(self) < 0)
        return NULL;
    const void *p = timeout_ns == 0 ? tachyon_acquire_rx(self->bus, type_id, size)
                                    : tachyon_acquire_rx_spin(self->bus, type_id, size, TPY_RX_SPINS_WITH_GIL);
    if (p)
        return p;
    tpy_error e;
    tpy_error_note(&e, tachyon_bus_last_error(self->bus));
    if (e.code != TACHYON_ERR_EMPTY)
        return tpy_raise(self->st, &e, TPY_OP_RECV, NULL), NULL;
    if (timeout_ns == 0)
        return raise_timeout(self, TPY_OP_RECV, 0), NULL;
    return wait_rx_slow(self, type_id, size, timeout_ns, spins);
}

/* As tpy_bus_wait_rx for a batch of up to `max` messages; 0 with an exception. */
size_t tpy_bus_wait_batch(TachyonBusObject *self, tachyon_msg_view_t *views, size_t max,
                          int64_t timeout_ns, uint32_t spins)
{
    if (tpy_core_usable(self) < 0)
        return 0;
    if ((self->rx_holder || self->rx_waiting) && tpy_bus_check_rx_free(self) < 0)
        return 0;
    size_t n = tachyon_acquire_rx_batch(self->bus, views, max);
    if (n)
        return n;
    tpy_error e;
    tpy_error_note(&e, tachyon_bus_last_error(self->bus));
    int64_t deadline = deadline_from(timeout_ns);
    for (;;) {
        if (e.code != TACHYON_ERR_EMPTY && e.code != TACHYON_ERR_TIMEOUT &&
            e.code != TACHYON_ERR_INTERRUPTED)
            return tpy_raise(self->st, &e, TPY_OP_DRAIN, NULL), 0;
        if (PyErr_CheckSignals() < 0)
            return 0;
        int slice = timeout_ns == 0 ? 0 : next_slice_ms(deadline);
        if (slice == 0)
            return raise_timeout(self, TPY_OP_DRAIN, timeout_ns), 0;
        tachyon_bus_t *c = inflight_begin(self);
        self->rx_waiting = 1;
        Py_BEGIN_ALLOW_THREADS
        n = tachyon_drain_batch_timeout(c, views, max, spins, slice);
        if (!n)
            tpy_error_note(&e, tachyon_bus_last_error(c));
        Py_END_ALLOW_THREADS
        self->rx_waiting = 0;
        if (inflight_end(self, c) < 0)
            return 0;
        if (n)
            return n;
    }
}

PyObject *tpy_core_recv(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    PyObject *names[] = {self->st->kw_timeout};
    PyObject *a[1];
    int64_t timeout_ns;
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 1, 0, "recv", a) < 0 ||
        tpy_timeout_ns(a[0], &timeout_ns) < 0)
        return NULL;
    uint32_t type_id;
    size_t size;
    const void *p = tpy_bus_wait_rx(self, &type_id, &size, timeout_ns, TPY_RX_SPINS_NOGIL);
    if (!p)
        return NULL;
    PyObject *msg = tpy_message_new(self->st, type_id, p, size);
    if (msg)
        tachyon_commit_rx(self->bus); /* only once Python has it: else it comes again */
    return msg;
}

PyObject *tpy_core_next(TachyonBusObject *self)
{
    uint32_t type_id;
    size_t size;
    const void *p = tpy_bus_wait_rx(self, &type_id, &size, -1, TPY_RX_SPINS_NOGIL);
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

/* ---- Settings and state --------------------------------------------------- */

PyObject *tpy_core_set_polling_mode(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    PyObject *names[] = {self->st->kw_pure_spin};
    PyObject *a[1];
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 1, 1, "set_polling_mode", a) < 0)
        return NULL;
    if (!PyLong_Check(a[0])) {
        PyErr_Format(PyExc_TypeError,
                     "pure_spin must be an int or bool (non-zero: the consumer spins and never "
                     "sleeps), not %.100s",
                     Py_TYPE(a[0])->tp_name);
        return NULL;
    }
    int spin = PyObject_IsTrue(a[0]);
    if (spin < 0 || tpy_core_usable(self) < 0)
        return NULL;
    tachyon_bus_set_polling_mode(self->bus, spin);
    Py_RETURN_NONE;
}

PyObject *tpy_core_set_numa_node(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    PyObject *names[] = {self->st->kw_node_id};
    PyObject *a[1];
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 1, 1, "set_numa_node", a) < 0)
        return NULL;
    if (!PyLong_Check(a[0]) || PyBool_Check(a[0])) {
        PyErr_Format(PyExc_TypeError, "node_id must be an int, not %.100s", Py_TYPE(a[0])->tp_name);
        return NULL;
    }
    int overflow;
    long long node = PyLong_AsLongLongAndOverflow(a[0], &overflow);
    if (node == -1 && PyErr_Occurred())
        return NULL;
    if (tpy_core_usable(self) < 0)
        return NULL;
    if (overflow || node < 0 || node > 63)
        return tpy_raise_text(self->st, TACHYON_ERR_INVALID_SZ, TPY_OP_NUMA, "node_id %R is out of range",
                              a[0]),
               NULL;
    tachyon_error_t err = tachyon_bus_set_numa_node(self->bus, (int)node);
    if (err != TACHYON_SUCCESS)
        return tpy_raise_code(self->st, err, TPY_OP_NUMA, NULL), NULL;
    Py_RETURN_NONE;
}

PyObject *tpy_core_peer_alive(TachyonBusObject *self)
{
    if (tpy_core_usable(self) < 0)
        return NULL;
    return PyBool_FromLong(tachyon_peer_alive(self->bus));
}

PyObject *tpy_core_state(TachyonBusObject *self)
{
    if (tpy_core_usable(self) < 0)
        return NULL;
    return PyLong_FromLong((long)tachyon_get_state(self->bus));
}

/* ---- The TachyonBus type: the published low-level methods ---------------------- */

static PyObject *core_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    /* As published: any arguments are accepted and ignored. */
    return (PyObject *)tpy_core_new(PyType_GetModuleState(type));
}

/* socket_path (or path), then the rest: shared by listen and connect. */
static int socket_path_alias(tpy_state *st, PyObject **a, int path_index, int alias_index,
                             const char *fname)
{
    if (a[alias_index]) {
        if (a[path_index]) {
            PyErr_Format(PyExc_TypeError, "%s() got both socket_path and path", fname);
            return -1;
        }
        a[path_index] = a[alias_index];
    }
    if (!a[path_index]) {
        PyErr_Format(PyExc_TypeError, "%s() missing required argument 'socket_path'", fname);
        return -1;
    }
    return 0;
}

static PyObject *core_listen_method(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    tpy_state *st = self->st;
    PyObject *names[] = {st->kw_socket_path, st->kw_capacity, st->kw_timeout, st->kw_path};
    PyObject *a[4];
    size_t capacity;
    int64_t timeout_ns;
    if (tpy_parse_args(args, nargs, kwnames, names, 2, 4, 0, "listen", a) < 0 ||
        socket_path_alias(st, a, 0, 3, "listen") < 0)
        return NULL;
    if (!a[1]) {
        PyErr_SetString(PyExc_TypeError, "listen() missing required argument 'capacity'");
        return NULL;
    }
    if (tpy_capacity_arg(st, a[1], &capacity) < 0 || tpy_timeout_ns(a[2], &timeout_ns) < 0)
        return NULL;
    if (tpy_core_listen(self, a[0], capacity, timeout_ns) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *core_connect_method(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    tpy_state *st = self->st;
    PyObject *names[] = {st->kw_socket_path, st->kw_timeout, st->kw_path};
    PyObject *a[3];
    int64_t timeout_ns = 0;
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 3, 0, "connect", a) < 0 ||
        socket_path_alias(st, a, 0, 2, "connect") < 0)
        return NULL;
    if (a[1] && tpy_timeout_ns(a[1], &timeout_ns) < 0)
        return NULL;
    if (tpy_core_connect(self, a[0], timeout_ns) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *core_destroy(TachyonBusObject *self, PyObject *unused)
{
    if (tpy_core_close(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *core_flush_method(TachyonBusObject *self, PyObject *unused)
{
    return tpy_core_flush(self);
}

static PyObject *core_drain_batch(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    return tpy_bus_drain_batch(self, args, nargs, kwnames);
}

static PyObject *core_repr(TachyonBusObject *self)
{
    if (!self->bus)
        return PyUnicode_FromFormat("<tachyon.TachyonBus %s>", self->ever_opened ? "closed" : "not open");
    return PyUnicode_FromFormat("<tachyon.TachyonBus path=%R capacity=%zd>", self->path, self->capacity);
}

static int core_traverse(TachyonBusObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->path);
    Py_VISIT(self->packed_key);
    Py_VISIT(self->packed_pack_into);
    Py_VISIT(self->last_size_obj);
    Py_VISIT(self->watcher);
    for (int i = 0; i < TPY_GUARD_POOL; i++) {
        Py_VISIT(self->tx_pool[i]);
        Py_VISIT(self->rx_pool[i]);
    }
    return 0;
}

static int core_clear(TachyonBusObject *self)
{
    Py_CLEAR(self->packed_key);
    Py_CLEAR(self->packed_pack_into);
    Py_CLEAR(self->last_size_obj);
    Py_CLEAR(self->watcher);
    for (int i = 0; i < TPY_GUARD_POOL; i++) {
        Py_CLEAR(self->tx_pool[i]);
        Py_CLEAR(self->rx_pool[i]);
    }
    return 0;
}

static void core_dealloc(TachyonBusObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    /* No guard can still point into the ring (one that does holds a
     * reference to us) and no call is inside the library (it holds one
     * too), so dropping the handle here is safe. */
    if (self->bus)
        core_do_close(self);
    core_clear(self);
    Py_CLEAR(self->path);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
#define CAST_FN(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef core_methods[] = {
    {"listen", CAST_FN(core_listen_method), FASTKW,
     "listen(socket_path, capacity, *, timeout=None)\n\nCreate a ring of `capacity` bytes (a power "
     "of two), wait for one process to connect to `socket_path` and hand it the ring. "
     "RuntimeError if already open."},
    {"connect", CAST_FN(core_connect_method), FASTKW,
     "connect(socket_path, *, timeout=0)\n\nConnect to the listener at `socket_path`: one attempt "
     "(ConnectionError if nothing listens), or with a timeout wait that long for a listener "
     "(None: forever)."},
    {"destroy", (PyCFunction)core_destroy, METH_NOARGS,
     "Close the bus (idempotent); it may then listen or connect again. BufferError while a "
     "memoryview or tensor of its memory is alive."},
    {"flush", (PyCFunction)core_flush_method, METH_NOARGS,
     "Publish what was committed (commits already publish; cheap)."},
    {"acquire_tx", CAST_FN(tpy_bus_acquire_tx_guard), FASTKW,
     "acquire_tx(max_payload_size) -> TxGuard\n\nReserve a slot without waiting: RingFullError "
     "(a TachyonError) when the ring is full, PeerDeadError when the consumer is gone."},
    {"acquire_rx", CAST_FN(tpy_bus_acquire_rx_guard), FASTKW,
     "acquire_rx(spin_threshold=10000, *, timeout=None) -> RxGuard\n\nWait for the next message "
     "(spinning spin_threshold times before sleeping) and hold it in place."},
    {"drain_batch", CAST_FN(core_drain_batch), FASTKW,
     "drain_batch(max_msgs=1024, spin_threshold=10000, *, timeout=None) -> RxBatchGuard\n\nWait "
     "for at least one message and hold up to max_msgs in place."},
    {"set_numa_node", CAST_FN(tpy_core_set_numa_node), FASTKW,
     "set_numa_node(node_id)\n\nBind the shared memory to a NUMA node (mbind)."},
    {"set_polling_mode", CAST_FN(tpy_core_set_polling_mode), FASTKW,
     "set_polling_mode(pure_spin)\n\nNon-zero: the consumer spins and never sleeps; 0: it sleeps "
     "when idle."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef core_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TachyonBusObject, weakrefs), READONLY, NULL},
    {"_watcher", T_OBJECT, offsetof(TachyonBusObject, watcher), 0,
     "The event loop's watcher of this bus's descriptor (tachyon.aio); its _bus_closing() is "
     "called before the bus closes."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot core_slots[] = {
    {Py_tp_doc, "The low-level bus (the published API's TachyonBus, held in Bus._bus).\n\n"
                "TachyonBus() is not open; listen() or connect() opens it, destroy() closes it."},
    {Py_tp_new, core_tp_new},
    {Py_tp_dealloc, core_dealloc},
    {Py_tp_traverse, core_traverse},
    {Py_tp_clear, core_clear},
    {Py_tp_repr, core_repr},
    {Py_tp_methods, core_methods},
    {Py_tp_members, core_members},
    {0, NULL},
};

static PyType_Spec core_spec = {
    .name = "tachyon.TachyonBus",
    .basicsize = sizeof(TachyonBusObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = core_slots,
};

int tpy_core_type_init(PyObject *module, tpy_state *st)
{
    st->TachyonBus_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &core_spec, NULL);
    if (!st->TachyonBus_Type)
        return -1;
    return PyModule_AddObjectRef(module, "TachyonBus", (PyObject *)st->TachyonBus_Type);
}
