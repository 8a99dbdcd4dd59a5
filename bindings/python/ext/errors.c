/*
 * errors.c - the exception classes and the translation of C errors.
 *
 * Every error of the C library becomes an instance of TachyonError (with
 * .code and .code_name) and, where the published tachyon-ipc package raises a
 * builtin exception for that error, of that builtin class too: a program
 * written against it (a retry loop on ConnectionError, say) keeps working.
 *
 *   code                                   class               also a
 *   NULL_PTR, INVALID_SZ                   TachyonValueError   ValueError
 *   MEM                                    TachyonMemoryError  MemoryError
 *   OPEN, TRUNCATE, MAP, SYSTEM            TachyonOSError      OSError
 *   CHMOD, SEAL, PERMISSION                TachyonPermissionError PermissionError
 *   NETWORK, ABI_MISMATCH, ADDR_IN_USE,
 *   NOT_SOCKET, PATH_TOO_LONG              TachyonConnectionError ConnectionError
 *   FULL                                   RingFullError       TimeoutError
 *   TIMEOUT, EMPTY                         TachyonTimeoutError TimeoutError
 *   PEER_DEAD, FATAL                       PeerDeadError
 *   PEER_CLOSED                            PeerClosedError     (a PeerDeadError)
 *   STATE, FORKED                          TachyonStateError   RuntimeError
 *   INTERRUPTED                            KeyboardInterrupt (only if it escapes
 *                                          the retry that runs signal handlers)
 *
 * ClosedError (RuntimeError and ValueError, not a TachyonError) is misuse: a
 * bus that is not open, a guard used after its release.
 *
 * The sentence is the C library's (tachyon_error_message: it names the path,
 * the system's reason, the peer's pid); the hint after it depends on what the
 * call was doing, so that a listener is never told to start a listener.
 */
#include <stdarg.h>
#include <string.h>

#include "ext.h"

static const char *error_name(tachyon_error_t err)
{
    static const char *const names[] = {
        "SUCCESS", "ERR_NULL_PTR", "ERR_MEM", "ERR_OPEN", "ERR_TRUNCATE", "ERR_CHMOD",
        "ERR_SEAL", "ERR_MAP", "ERR_INVALID_SZ", "ERR_FULL", "ERR_EMPTY", "ERR_NETWORK",
        "ERR_SYSTEM", "ERR_INTERRUPTED", "ERR_ABI_MISMATCH", "ERR_PEER_DEAD",
        "ERR_PERMISSION", "ERR_FATAL", "ERR_STATE", "ERR_TIMEOUT", "ERR_ADDR_IN_USE",
        "ERR_NOT_SOCKET", "ERR_PATH_TOO_LONG", "ERR_PEER_CLOSED", "ERR_FORKED", "ERR_WRONG_REPLY", "ERR_OVERRUN",
    };
    size_t i = (size_t)err;
    return i < sizeof(names) / sizeof(names[0]) ? names[i] : "ERR_UNKNOWN";
}

static const char *op_name(tpy_op op)
{
    switch (op) {
    case TPY_OP_LISTEN:
        return "listen";
    case TPY_OP_CONNECT:
        return "connect";
    case TPY_OP_SEND:
        return "send";
    case TPY_OP_ACQUIRE_TX:
        return "acquire_tx";
    case TPY_OP_COMMIT:
        return "commit";
    case TPY_OP_RECV:
        return "receive";
    case TPY_OP_DRAIN:
        return "drain_batch";
    case TPY_OP_RELEASE:
        return "release";
    case TPY_OP_NUMA:
        return "set_numa_node";
    default:
        return "tachyon";
    }
}

/* What the caller can do about it: the part the C library cannot know,
 * because it depends on the call. "" when the sentence says it all. */
static const char *error_hint(tachyon_error_t err, tpy_op op)
{
    switch (err) {
    case TACHYON_ERR_PEER_DEAD:
    case TACHYON_ERR_PEER_CLOSED:
        return "this bus is finished: close it, and listen or connect again for a new one";
    case TACHYON_ERR_FORKED:
        return "open a bus of its own in the child (listen or connect after fork(), not before)";
    case TACHYON_ERR_FULL:
        if (op == TPY_OP_ACQUIRE_TX)
            return "acquire_tx never waits: try again once the consumer has caught up, or use "
                   "Bus.send_zero_copy(..., timeout=...), which waits for room";
        return "the consumer is not keeping up: pass a longer timeout (None waits as long as it "
               "takes), listen with a larger capacity, or send less";
    case TACHYON_ERR_INVALID_SZ:
        if (op == TPY_OP_LISTEN)
            return "capacity must be a power of two from 64 bytes to 1 GiB, e.g. 1 << 20";
        if (op == TPY_OP_NUMA)
            return "node_id must be in [0, 63]";
        if (op == TPY_OP_SEND || op == TPY_OP_ACQUIRE_TX || op == TPY_OP_COMMIT)
            return "a message carries at most bus.max_payload = capacity - 64 bytes; listen with a "
                   "larger capacity for larger messages";
        return "";
    case TACHYON_ERR_ABI_MISMATCH:
        return "the other process is not a plain Tachyon ABI v4 bus (another version, or a "
               "request/reply endpoint)";
    case TACHYON_ERR_FATAL:
        return "the shared ring is corrupt: close this bus and open a new one";
    case TACHYON_ERR_ADDR_IN_USE:
        return "pick another path, or stop the process that listens there";
    case TACHYON_ERR_NOT_SOCKET:
        return "pick another path, or remove that file yourself";
    case TACHYON_ERR_PERMISSION:
        if (op == TPY_OP_LISTEN)
            return "the process that connected runs as another user: run both as the same user";
        return "the listener runs as another user: run both as the same user";
    case TACHYON_ERR_TIMEOUT:
        if (op == TPY_OP_LISTEN)
            return "no process connected in time: pass a longer timeout (None waits forever)";
        if (op == TPY_OP_CONNECT)
            return "";
        return "pass a longer timeout (None waits forever)";
    case TACHYON_ERR_PATH_TOO_LONG:
        return "use a shorter path, e.g. under /tmp";
    case TACHYON_ERR_STATE:
        return "finish the previous zero-copy send or receive (exit its with-block) first";
    case TACHYON_ERR_SYSTEM:
        if (op == TPY_OP_NUMA)
            return "the kernel refused to bind the memory to that node (no NUMA support, or the "
                   "node is offline)";
        return "";
    case TACHYON_ERR_MEM:
        return "";
    default:
        return "";
    }
}

static PyObject *error_class(tpy_state *st, tachyon_error_t err)
{
    switch (err) {
    case TACHYON_ERR_NULL_PTR:
    case TACHYON_ERR_INVALID_SZ:
        return st->ValueError;
    case TACHYON_ERR_MEM:
        return st->MemoryError;
    case TACHYON_ERR_OPEN:
    case TACHYON_ERR_TRUNCATE:
    case TACHYON_ERR_MAP:
    case TACHYON_ERR_SYSTEM:
        return st->OSError;
    case TACHYON_ERR_CHMOD:
    case TACHYON_ERR_SEAL:
    case TACHYON_ERR_PERMISSION:
        return st->PermissionError;
    case TACHYON_ERR_NETWORK:
    case TACHYON_ERR_ABI_MISMATCH:
    case TACHYON_ERR_ADDR_IN_USE:
    case TACHYON_ERR_NOT_SOCKET:
    case TACHYON_ERR_PATH_TOO_LONG:
        return st->ConnectionError;
    case TACHYON_ERR_FULL:
        return st->RingFullError;
    case TACHYON_ERR_EMPTY:
    case TACHYON_ERR_TIMEOUT:
        return st->TimeoutError;
    case TACHYON_ERR_PEER_DEAD:
    case TACHYON_ERR_FATAL:
        return st->PeerDeadError;
    case TACHYON_ERR_PEER_CLOSED:
        return st->PeerClosedError;
    case TACHYON_ERR_STATE:
    case TACHYON_ERR_FORKED:
        return st->StateError;
    default:
        return st->TachyonError;
    }
}

void tpy_error_capture(tpy_error *e, tachyon_error_t code)
{
    e->code = code;
    const char *text = tachyon_error_message(code);
    size_t n = strlen(text);
    if (n >= sizeof(e->text))
        n = sizeof(e->text) - 1;
    memcpy(e->text, text, n);
    e->text[n] = '\0';
}

/* The exception for `code` with the message `msg` (stolen), .code and .code_name set. */
static PyObject *make_exception(tpy_state *st, tachyon_error_t code, PyObject *msg)
{
    PyObject *exc = PyObject_CallOneArg(error_class(st, code), msg);
    Py_DECREF(msg);
    if (!exc)
        return NULL;
    PyObject *num = PyLong_FromLong((long)code);
    PyObject *name = PyUnicode_FromString(error_name(code));
    if (!num || !name || PyObject_SetAttrString(exc, "code", num) < 0 ||
        PyObject_SetAttrString(exc, "code_name", name) < 0)
        Py_CLEAR(exc);
    Py_XDECREF(num);
    Py_XDECREF(name);
    return exc;
}

static int raise_with(tpy_state *st, tachyon_error_t code, PyObject *msg)
{
    PyObject *exc = make_exception(st, code, msg);
    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return -1;
}

PyObject *tpy_exception_for_code(tpy_state *st, tachyon_error_t code)
{
    if (code == TACHYON_ERR_INTERRUPTED)
        return PyObject_CallNoArgs(PyExc_KeyboardInterrupt);
    PyObject *msg = PyUnicode_FromString(tachyon_strerror(code));
    return msg ? make_exception(st, code, msg) : NULL;
}

/* "<doing>: <sentence>; <hint> (ERR_X = n)" */
static PyObject *format_message(tachyon_error_t code, tpy_op op, const char *doing, const char *sentence)
{
    const char *hint = error_hint(code, op);
    return PyUnicode_FromFormat("%s: %s%s%s (%s = %d)", doing, sentence, *hint ? "; " : "", hint,
                                error_name(code), (int)code);
}

int tpy_raise(tpy_state *st, const tpy_error *e, tpy_op op, const char *subject)
{
    if (e->code == TACHYON_ERR_INTERRUPTED) {
        /* Only when a signal handler ran and asked for nothing: as published. */
        PyErr_SetNone(PyExc_KeyboardInterrupt);
        return -1;
    }
    /* A sentence with details names the path itself; a static one does not,
     * so then the operation says what it worked on. */
    const char *text = e->text[0] ? e->text : tachyon_strerror(e->code);
    int detailed = strcmp(text, tachyon_strerror(e->code)) != 0;
    PyObject *doing = detailed || !subject ? PyUnicode_FromString(op_name(op))
                                           : PyUnicode_FromFormat("%s %s", op_name(op), subject);
    if (!doing)
        return -1;
    PyObject *msg = format_message(e->code, op, PyUnicode_AsUTF8(doing), text);
    Py_DECREF(doing);
    if (!msg)
        return -1;
    return raise_with(st, e->code, msg);
}

int tpy_raise_code(tpy_state *st, tachyon_error_t code, tpy_op op, const char *subject)
{
    tpy_error e;
    tpy_error_capture(&e, code);
    return tpy_raise(st, &e, op, subject);
}

int tpy_raise_doing(tpy_state *st, tachyon_error_t code, const char *doing)
{
    tpy_error e;
    tpy_error_capture(&e, code);
    if (code == TACHYON_ERR_INTERRUPTED)
        return tpy_raise(st, &e, TPY_OP_OTHER, NULL);
    tpy_op op = strncmp(doing, "listen", 6) == 0    ? TPY_OP_LISTEN
                : strncmp(doing, "connect", 7) == 0 ? TPY_OP_CONNECT
                                                     : TPY_OP_OTHER;
    PyObject *msg = format_message(code, op, doing, e.text);
    return msg ? raise_with(st, code, msg) : -1;
}

int tpy_raise_text(tpy_state *st, tachyon_error_t code, tpy_op op, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PyObject *sentence = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (!sentence)
        return -1;
    PyObject *msg = format_message(code, op, op_name(op), PyUnicode_AsUTF8(sentence));
    Py_DECREF(sentence);
    if (!msg)
        return -1;
    return raise_with(st, code, msg);
}

int tpy_not_open_error(TachyonBusObject *self)
{
    PyErr_SetString(self->st->ClosedError,
                    self->ever_opened
                        ? "the bus is closed (close() or destroy() was called); listen or connect "
                          "again for a new one"
                        : "the bus is not open: create one with Bus.listen(path, capacity) or "
                          "Bus.connect(path) (on a bare TachyonBus, call its listen() or connect())");
    return -1;
}

/* ---- The classes ------------------------------------------------------------- */

static int new_exception(PyObject *mod, PyObject **slot, const char *name, PyObject *bases,
                         const char *doc)
{
    *slot = PyErr_NewExceptionWithDoc(name, doc, bases, NULL);
    if (!*slot)
        return -1;
    const char *dot = strrchr(name, '.');
    return PyModule_AddObjectRef(mod, dot + 1, *slot);
}

/* A class derived from TachyonError and a builtin exception. */
static int dual_exception(PyObject *mod, PyObject **slot, const char *name, PyObject *first,
                          PyObject *builtin, const char *doc)
{
    PyObject *bases = PyTuple_Pack(2, first, builtin);
    if (!bases)
        return -1;
    int rc = new_exception(mod, slot, name, bases, doc);
    Py_DECREF(bases);
    return rc;
}

int tpy_errors_init(PyObject *mod, tpy_state *st)
{
    if (new_exception(mod, &st->TachyonError, "tachyon.TachyonError", PyExc_Exception,
                      "An error reported by the Tachyon C library. Attributes: code (the C "
                      "error number), code_name (e.g. 'ERR_FULL').") < 0)
        return -1;
    if (new_exception(mod, &st->PeerDeadError, "tachyon.PeerDeadError", st->TachyonError,
                      "The peer is gone: its process ended (or, with code ERR_FATAL, the shared "
                      "ring is corrupt). PeerClosedError when it closed the bus. On a consumer it "
                      "is raised only after every message the peer committed was delivered.") < 0)
        return -1;
    if (new_exception(mod, &st->PeerClosedError, "tachyon.PeerClosedError", st->PeerDeadError,
                      "The peer closed the bus: a clean end of the stream (iterating over a "
                      "bus simply stops).") < 0)
        return -1;
    if (dual_exception(mod, &st->TimeoutError, "tachyon.TachyonTimeoutError", st->TachyonError,
                       PyExc_TimeoutError,
                       "A blocking call's timeout expired (also a builtin TimeoutError).") < 0)
        return -1;
    if (new_exception(mod, &st->RingFullError, "tachyon.RingFullError", st->TimeoutError,
                      "The ring stayed full until the send's timeout expired (timeout=0: it "
                      "was full). Nothing was sent by the call that raised it, except for "
                      "send_batch, whose exception says how many records went (.sent).") < 0)
        return -1;
    if (dual_exception(mod, &st->ConnectionError, "tachyon.TachyonConnectionError", st->TachyonError,
                       PyExc_ConnectionError,
                       "listen or connect failed on the Unix socket (also a builtin "
                       "ConnectionError, as the published package raises).") < 0 ||
        dual_exception(mod, &st->ValueError, "tachyon.TachyonValueError", st->TachyonError,
                       PyExc_ValueError,
                       "A size or capacity out of range (also a builtin ValueError).") < 0 ||
        dual_exception(mod, &st->PermissionError, "tachyon.TachyonPermissionError", st->TachyonError,
                       PyExc_PermissionError,
                       "A permission was refused: the peer's user, or the socket file's or "
                       "shared memory's protection (also a builtin PermissionError).") < 0 ||
        dual_exception(mod, &st->OSError, "tachyon.TachyonOSError", st->TachyonError, PyExc_OSError,
                       "A system call failed (also a builtin OSError).") < 0 ||
        dual_exception(mod, &st->MemoryError, "tachyon.TachyonMemoryError", st->TachyonError,
                       PyExc_MemoryError, "Out of memory (also a builtin MemoryError).") < 0 ||
        dual_exception(mod, &st->StateError, "tachyon.TachyonStateError", st->TachyonError,
                       PyExc_RuntimeError,
                       "A call out of order, or a bus used in a fork()ed child of the process "
                       "that opened it (ERR_FORKED); also a builtin RuntimeError.") < 0)
        return -1;
    PyObject *bases = PyTuple_Pack(2, PyExc_RuntimeError, PyExc_ValueError);
    if (!bases)
        return -1;
    int rc = new_exception(mod, &st->ClosedError, "tachyon.ClosedError", bases,
                           "A bus that is not open (never opened, closed, or closed by another "
                           "thread during the call), or a guard used after its release. Both a "
                           "RuntimeError (as the published package raises) and a ValueError (as "
                           "a closed file does).");
    Py_DECREF(bases);
    if (rc < 0)
        return -1;
    /* Defaults for an exception raised by Python code; ours set them. */
    if (PyObject_SetAttrString(st->TachyonError, "code", Py_None) < 0 ||
        PyObject_SetAttrString(st->TachyonError, "code_name", Py_None) < 0 ||
        PyObject_SetAttrString(st->RingFullError, "sent", Py_None) < 0)
        return -1;
    return 0;
}
