/*
 * module.c - the _tachyon module: multi-phase init, per-module state (types,
 * exceptions, interned keyword names), error translation, argument helpers
 * and the type_id functions.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "ext.h"

/* ---- Errors --------------------------------------------------------------- */

static const char *error_name(tachyon_error_t err)
{
    static const char *const names[] = {
        "SUCCESS", "ERR_NULL_PTR", "ERR_MEM", "ERR_OPEN", "ERR_TRUNCATE", "ERR_CHMOD",
        "ERR_SEAL", "ERR_MAP", "ERR_INVALID_SZ", "ERR_FULL", "ERR_EMPTY", "ERR_NETWORK",
        "ERR_SYSTEM", "ERR_INTERRUPTED", "ERR_ABI_MISMATCH", "ERR_PEER_DEAD",
        "ERR_PERMISSION", "ERR_FATAL", "ERR_STATE", "ERR_TIMEOUT", "ERR_ADDR_IN_USE",
        "ERR_NOT_SOCKET", "ERR_PATH_TOO_LONG", "ERR_PEER_CLOSED", "ERR_FORKED", "ERR_WRONG_REPLY",
    };
    size_t i = (size_t)err;
    return i < sizeof(names) / sizeof(names[0]) ? names[i] : "ERR_UNKNOWN";
}

/* What the user can do about it: the part tachyon_strerror cannot know. */
static const char *error_hint(tachyon_error_t err)
{
    switch (err) {
    case TACHYON_ERR_PEER_DEAD:
    case TACHYON_ERR_PEER_CLOSED:
        return "this bus is finished: create a new one to go on";
    case TACHYON_ERR_FORKED:
        return "create the bus in the process that uses it (after fork(), not before)";
    case TACHYON_ERR_FULL:
        return "the consumer is not keeping up: pass a longer timeout, listen with a larger "
               "capacity, or send less";
    case TACHYON_ERR_NETWORK:
        return "";
    case TACHYON_ERR_INVALID_SZ:
        return "capacity must be a power of two from 64 B to 1 GiB; a message's size at most "
               "bus.max_payload (capacity - 64)";
    case TACHYON_ERR_ABI_MISMATCH:
        return "the peer is not a Tachyon ABI v4 process";
    case TACHYON_ERR_FATAL:
        return "close this bus and create a new one";
    case TACHYON_ERR_ADDR_IN_USE:
        return "another process listens on that path: pick another path or stop it";
    case TACHYON_ERR_NOT_SOCKET:
        return "remove that file yourself or choose another path";
    case TACHYON_ERR_PERMISSION:
        return "run both processes as the same user";
    case TACHYON_ERR_TIMEOUT:
        return "pass a longer timeout (None waits forever)";
    case TACHYON_ERR_PATH_TOO_LONG:
        return "use a shorter path, e.g. under /tmp";
    case TACHYON_ERR_STATE:
        return "finish the previous zero-copy send or receive (exit its with-block) first";
    default:
        return "";
    }
}

static PyObject *error_class(tpy_state *st, tachyon_error_t err)
{
    switch (err) {
    case TACHYON_ERR_PEER_DEAD:
        return st->PeerDeadError;
    case TACHYON_ERR_PEER_CLOSED:
        return st->PeerClosedError;
    case TACHYON_ERR_FULL:
        return st->RingFullError;
    case TACHYON_ERR_TIMEOUT:
        return st->TimeoutError;
    default:
        return st->TachyonError;
    }
}

/* Raise the exception for `err` with the code, the C library's text and a
 * hint. `doing` names the operation ("connect to '/tmp/x'"). Returns -1. */
int tpy_set_error(tpy_state *st, tachyon_error_t err, const char *doing)
{
    if (err == TACHYON_ERR_MEM) {
        PyErr_NoMemory();
        return -1;
    }
    const char *hint = error_hint(err);
    PyObject *msg = PyUnicode_FromFormat("%s: %s (tachyon %s = %d)%s%s", doing,
                                         tachyon_error_message(err), error_name(err), (int)err,
                                         *hint ? "; " : "", hint);
    if (!msg)
        return -1;
    PyObject *cls = error_class(st, err);
    PyObject *exc = PyObject_CallOneArg(cls, msg);
    Py_DECREF(msg);
    if (!exc)
        return -1;
    PyObject *code = PyLong_FromLong((long)err);
    PyObject *name = PyUnicode_FromString(error_name(err));
    if (code && name && PyObject_SetAttrString(exc, "code", code) == 0 &&
        PyObject_SetAttrString(exc, "code_name", name) == 0)
        PyErr_SetObject(cls, exc);
    Py_XDECREF(code);
    Py_XDECREF(name);
    Py_DECREF(exc);
    return -1;
}

int tpy_closed_error(void)
{
    PyErr_SetString(PyExc_ValueError, "I/O operation on a closed bus");
    return -1;
}

/* ---- Argument helpers ----------------------------------------------------- */

static Py_ssize_t keyword_index(PyObject *key, PyObject *const *names, Py_ssize_t nnames)
{
    for (Py_ssize_t i = 0; i < nnames; i++)
        if (key == names[i])
            return i; /* keywords in code objects are interned: the usual case */
    for (Py_ssize_t i = 0; i < nnames; i++) {
        int eq = PyUnicode_Compare(key, names[i]) == 0;
        if (PyErr_Occurred())
            return -2;
        if (eq)
            return i;
    }
    return -1;
}

/*
 * A small vectorcall parser: up to npos_max positional arguments, then any of
 * `names` by keyword; the first `nrequired` must be given. out[i] receives a
 * borrowed reference or NULL. Much cheaper than PyArg_ParseTupleAndKeywords
 * on the per-message paths.
 */
int tpy_parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                   PyObject *const *names, Py_ssize_t npos_max, Py_ssize_t nnames,
                   Py_ssize_t nrequired, const char *fname, PyObject **out)
{
    if (nargs > npos_max) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd positional arguments (%zd given)",
                     fname, npos_max, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nnames; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = keyword_index(key, names, nnames);
        if (i == -2)
            return -1;
        if (i < 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, key);
            return -1;
        }
        if (out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%U'", fname, key);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < nrequired; i++) {
        if (!out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%U'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}

/* Seconds (int or float, None = forever) to milliseconds (-1 = forever). */
int tpy_timeout_ms(PyObject *obj, int64_t *out_ms)
{
    if (obj == NULL || obj == Py_None) {
        *out_ms = -1;
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
    if (!(s >= 0.0) || isinf(s)) {
        if (isinf(s) && s > 0) {
            *out_ms = -1;
            return 0;
        }
        PyErr_SetString(PyExc_ValueError, "timeout must be >= 0 seconds (or None to wait forever)");
        return -1;
    }
    if (s > 1e9)
        s = 1e9;
    *out_ms = (int64_t)ceil(s * 1000.0);
    return 0;
}

/* The slow half of tpy_type_id (ext.h): anything but a small exact int. */
int tpy_type_id_slow(PyObject *obj, uint32_t *out)
{
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "type_id must be an int, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || v > 0xFFFFFFFFLL) {
        PyErr_SetString(PyExc_ValueError,
                        "type_id must be in [0, 2**32): (route_id << 16) | msg_type, see make_type_id");
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}


/* tp_new of every type: objects come from Bus methods only. */
PyObject *tpy_no_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances directly%s", type->tp_name,
                 strcmp(type->tp_name, "tachyon.Bus") == 0
                     ? ": use Bus.listen(path, capacity) or Bus.connect(path)"
                     : "");
    return NULL;
}

/* ---- type_id functions ---------------------------------------------------- */

static int u16_arg(PyObject *obj, const char *what, uint32_t *out)
{
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v > 0xFFFF) {
        PyErr_Format(PyExc_ValueError, "%s must be in [0, 65535], got %ld", what, v);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static PyObject *mod_make_type_id(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t route, type;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "make_type_id(route_id, msg_type) takes 2 arguments");
        return NULL;
    }
    if (u16_arg(args[0], "route_id", &route) < 0 || u16_arg(args[1], "msg_type", &type) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(TACHYON_TYPE_ID(route, type));
}

static PyObject *mod_route_id(PyObject *mod, PyObject *arg)
{
    uint32_t id;
    if (tpy_type_id(arg, &id) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(TACHYON_ROUTE_ID(id));
}

static PyObject *mod_msg_type(PyObject *mod, PyObject *arg)
{
    uint32_t id;
    if (tpy_type_id(arg, &id) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(TACHYON_MSG_TYPE(id));
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
    long code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(tachyon_strerror((tachyon_error_t)code));
}

static PyMethodDef module_methods[] = {
    {"make_type_id", (PyCFunction)(void (*)(void))mod_make_type_id, METH_FASTCALL,
     "make_type_id(route_id, msg_type) -> int: (route_id << 16) | msg_type, each in [0, 65535]."},
    {"route_id", mod_route_id, METH_O, "route_id(type_id) -> int: bits 31..16 of type_id."},
    {"msg_type", mod_msg_type, METH_O, "msg_type(type_id) -> int: bits 15..0 of type_id."},
    {"strerror", mod_strerror, METH_O, "strerror(code) -> str: the C library's text for an error code."},
    {NULL, NULL, 0, NULL},
};

/* ---- Module state and init ------------------------------------------------ */

static tpy_state *get_state(PyObject *mod)
{
    return (tpy_state *)PyModule_GetState(mod);
}

static int new_exception(PyObject *mod, PyObject **slot, const char *name, PyObject *bases,
                         const char *doc)
{
    *slot = PyErr_NewExceptionWithDoc(name, doc, bases, NULL);
    if (!*slot)
        return -1;
    const char *dot = strrchr(name, '.');
    return PyModule_AddObjectRef(mod, dot + 1, *slot);
}

static int add_exceptions(PyObject *mod, tpy_state *st)
{
    if (new_exception(mod, &st->TachyonError, "tachyon.TachyonError", PyExc_Exception,
                      "An error reported by the Tachyon C library. Attributes: code (the C "
                      "error number), code_name (e.g. 'ERR_FULL').") < 0)
        return -1;
    if (new_exception(mod, &st->PeerDeadError, "tachyon.PeerDeadError", st->TachyonError,
                      "The peer is gone: its process ended, or (PeerClosedError) it closed the "
                      "bus. On a consumer it is raised only after every message the peer "
                      "committed was delivered.") < 0)
        return -1;
    if (new_exception(mod, &st->PeerClosedError, "tachyon.PeerClosedError", st->PeerDeadError,
                      "The peer closed the bus: a clean end of the stream (iterating over a "
                      "bus simply stops).") < 0)
        return -1;
    PyObject *bases = PyTuple_Pack(2, st->TachyonError, PyExc_TimeoutError);
    if (!bases)
        return -1;
    int rc = new_exception(mod, &st->TimeoutError, "tachyon.TachyonTimeoutError", bases,
                           "A blocking call's timeout expired (also a builtin TimeoutError).");
    Py_DECREF(bases);
    if (rc < 0)
        return -1;
    if (new_exception(mod, &st->RingFullError, "tachyon.RingFullError", st->TimeoutError,
                      "The ring stayed full until the send's timeout expired (timeout=0: it "
                      "was full). Nothing was sent by the call that raised it, except for "
                      "send_batch, whose exception says how many records went (.sent).") < 0)
        return -1;
    /* Defaults for an exception raised by Python code; ours set them. */
    if (PyObject_SetAttrString(st->TachyonError, "code", Py_None) < 0 ||
        PyObject_SetAttrString(st->TachyonError, "code_name", Py_None) < 0 ||
        PyObject_SetAttrString(st->RingFullError, "sent", Py_None) < 0)
        return -1;
    return 0;
}

static int intern_names(tpy_state *st)
{
#define INTERN(field, text)                                  \
    if (!(st->field = PyUnicode_InternFromString(text)))    \
        return -1;
    INTERN(kw_size, "size");
    INTERN(kw_type_id, "type_id");
    INTERN(kw_timeout, "timeout");
    INTERN(kw_data, "data");
    INTERN(kw_max_msgs, "max_msgs");
    INTERN(kw_record_size, "record_size");
    INTERN(kw_path, "path");
    INTERN(kw_capacity, "capacity");
    INTERN(kw_pack_into, "pack_into");
#undef INTERN
    return 0;
}

static int module_exec(PyObject *mod)
{
    tpy_state *st = get_state(mod);
    if (intern_names(st) < 0 || add_exceptions(mod, st) < 0)
        return -1;
    PyObject *struct_mod = PyImport_ImportModule("struct");
    if (!struct_mod)
        return -1;
    st->struct_Struct = PyObject_GetAttrString(struct_mod, "Struct");
    Py_DECREF(struct_mod);
    if (!st->struct_Struct)
        return -1;
    if (tpy_guardmeth_types_init(mod, st) < 0 || tpy_message_type_init(mod, st) < 0 || tpy_txguard_type_init(mod, st) < 0 ||
        tpy_rxguard_type_init(mod, st) < 0 || tpy_batch_type_init(mod, st) < 0 ||
        tpy_bus_type_init(mod, st) < 0 || tpy_rpc_types_init(mod, st) < 0)
        return -1;
    if (PyModule_AddIntConstant(mod, "ABI_VERSION", 4) < 0 ||
        PyModule_AddIntConstant(mod, "DEFAULT_CAPACITY", 1 << 20) < 0)
        return -1;
    return 0;
}

#define STATE_OBJECTS(X)                                                                     \
    X(Bus_Type) X(TxGuard_Type) X(RxGuard_Type) X(Batch_Type) X(BatchItem_Type) X(Message_Type) \
    X(GuardDescr_Type) \
    X(TachyonError) X(PeerDeadError) X(PeerClosedError) X(RingFullError) X(TimeoutError) X(struct_Struct)        \
    X(kw_size) X(kw_type_id) X(kw_timeout) X(kw_data) X(kw_max_msgs) X(kw_record_size)        \
    X(kw_path) X(kw_capacity) X(kw_pack_into)

static int module_traverse(PyObject *mod, visitproc visit, void *arg)
{
    tpy_state *st = get_state(mod);
    if (!st)
        return 0;
#define VISIT(f) Py_VISIT(st->f);
    STATE_OBJECTS(VISIT)
#undef VISIT
    return 0;
}

static int module_clear(PyObject *mod)
{
    tpy_state *st = get_state(mod);
    if (!st)
        return 0;
#define CLEAR(f) Py_CLEAR(st->f);
    STATE_OBJECTS(CLEAR)
#undef CLEAR
    return 0;
}

static void module_free(void *mod)
{
    (void)module_clear((PyObject *)mod);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

PyModuleDef tpy_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tachyon._tachyon",
    .m_doc = "Tachyon: zero-copy shared-memory messaging between two processes (C extension).",
    .m_size = sizeof(tpy_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__tachyon(void)
{
    return PyModuleDef_Init(&tpy_module_def);
}
