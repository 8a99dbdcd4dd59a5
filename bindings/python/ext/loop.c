/*
 * loop.c - what an event loop needs from a Bus: the descriptor to watch
 * (fileno), the call that arms it (arm), and the watcher hook that lets the
 * asyncio layer (tachyon/aio.py) stop watching before the handle closes.
 *
 * The descriptor belongs to the C handle (tachyon_bus_fd): it is the same on
 * every call and closes with the bus. A loop that still watches it when the
 * bus closes would wait on a number the system may hand to another file, so
 * whoever watches it sets TachyonBus._watcher, and the core calls its
 * _bus_closing() right before the handle is dropped (tpy_core_tell_watcher).
 *
 * arm is level-triggered, as tachyon_bus_fd_arm: it clears the descriptor,
 * then returns True when what was asked for is there already (do not wait:
 * call the non-blocking receive or send), False when armed (wait until the
 * descriptor is readable, then call them; when they find nothing, arm
 * again).
 */
#include "ext.h"

PyObject *tpy_bus_fileno(TachyonBusObject *self)
{
    if (tpy_core_usable(self) < 0)
        return NULL;
    int fd = tachyon_bus_fd(self->bus);
    if (fd < 0)
        return tpy_raise_code(self->st, tachyon_bus_last_error(self->bus), TPY_OP_OTHER,
                              "(the bus's event-loop descriptor)"),
               NULL;
    return PyLong_FromLong(fd);
}

/* The side being armed must not be waiting in another thread: the blocking
 * waits announce themselves in the same shared words. */
static int check_side_free(TachyonBusObject *self, unsigned what)
{
    if ((what & TACHYON_WAIT_RX) && self->rx_waiting) {
        PyErr_SetString(self->st->StateError,
                        "another thread is receiving on this bus; wait on its descriptor from the "
                        "consumer thread only");
        return -1;
    }
    if ((what & TACHYON_WAIT_TX) && self->tx_waiting) {
        PyErr_SetString(self->st->StateError,
                        "another thread is sending on this bus; wait on its descriptor from the "
                        "producer thread only");
        return -1;
    }
    return 0;
}

PyObject *tpy_bus_arm(TachyonBusObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned what = TACHYON_WAIT_RX;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "arm() takes at most 1 argument (%zd given)", nargs);
        return NULL;
    }
    if (nargs == 1) {
        long v = tpy_small_int(args[0]);
        if (v < 1 || v > (long)(TACHYON_WAIT_RX | TACHYON_WAIT_TX)) {
            PyErr_Format(PyExc_ValueError,
                         "arm(what): what must be WAIT_RX (1), WAIT_TX (2) or WAIT_RX | WAIT_TX (3), "
                         "not %R",
                         args[0]);
            return NULL;
        }
        what = (unsigned)v;
    }
    if (tpy_core_usable(self) < 0 || check_side_free(self, what) < 0)
        return NULL;
    int r = tachyon_bus_fd_arm(self->bus, what);
    if (r < 0)
        return tpy_raise_code(self->st, tachyon_bus_last_error(self->bus), TPY_OP_OTHER,
                              "(arming the bus's descriptor)"),
               NULL;
    return PyBool_FromLong(r);
}

void tpy_core_tell_watcher(TachyonBusObject *self)
{
    PyObject *w = self->watcher;
    if (!w)
        return;
    self->watcher = NULL;
    /* May run from a deallocator: keep whatever exception is in flight. */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *r = PyObject_CallMethod(w, "_bus_closing", NULL);
    if (!r)
        PyErr_WriteUnraisable(w);
    Py_XDECREF(r);
    Py_DECREF(w);
    PyErr_Restore(type, value, tb);
}
