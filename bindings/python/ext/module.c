/*
 * module.c - the _tachyon module: multi-phase init, per-module state (types,
 * exceptions, interned keyword names), argument helpers, the type_id
 * functions, and the fork counter.
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "ext.h"

/* ---- fork() ------------------------------------------------------------------ */

volatile unsigned tpy_fork_generation;
static pthread_once_t fork_hook_once = PTHREAD_ONCE_INIT;

/* Runs in the child of every fork(), os.fork() and multiprocessing's alike. */
static void count_fork_in_child(void)
{
    tpy_fork_generation++;
}

static void install_fork_hook(void)
{
    (void)pthread_atfork(NULL, NULL, count_fork_in_child);
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
 * `names` by keyword (names past npos_max are keyword-only); the first
 * `nrequired` must be given. out[i] receives a borrowed reference or NULL.
 * Much cheaper than PyArg_ParseTupleAndKeywords on the per-message paths.
 */
int tpy_parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                   PyObject *const *names, Py_ssize_t npos_max, Py_ssize_t nnames,
                   Py_ssize_t nrequired, const char *fname, PyObject **out)
{
    if (nargs > npos_max) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd positional argument%s (%zd given)",
                     fname, npos_max, npos_max == 1 ? "" : "s", nargs);
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

/*
 * Seconds (int or float; None or inf = forever) to nanoseconds (-1 =
 * forever). Anything above TPY_TIMEOUT_MAX_NS (about 31 years) is that: no
 * value can overflow into "at once" further down.
 */
int tpy_timeout_ns(PyObject *obj, int64_t *out_ns)
{
    if (obj == NULL || obj == Py_None) {
        *out_ns = -1;
        return 0;
    }
    if (PyBool_Check(obj) || !(PyFloat_Check(obj) || PyLong_Check(obj))) {
        PyErr_Format(PyExc_TypeError, "timeout must be a number of seconds or None, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    double s;
    if (PyLong_Check(obj)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        s = overflow > 0 ? INFINITY : overflow < 0 ? -1.0 : (double)v;
    } else {
        s = PyFloat_AS_DOUBLE(obj);
    }
    if (!(s >= 0.0)) { /* negative, or NaN */
        PyErr_SetString(PyExc_ValueError, "timeout must be >= 0 seconds (or None to wait forever)");
        return -1;
    }
    if (isinf(s)) {
        *out_ns = -1;
        return 0;
    }
    double ns = ceil(s * 1e9);
    *out_ns = ns >= (double)TPY_TIMEOUT_MAX_NS ? TPY_TIMEOUT_MAX_NS : (int64_t)ns;
    return 0;
}

/* The slow half of tpy_type_id (ext.h): anything but a small exact int. As
 * a C uint32_t field would, an int out of range raises OverflowError. */
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
        PyErr_SetString(PyExc_OverflowError,
                        "type_id must be in [0, 2**32): (route << 16) | msg_type, see make_type_id");
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* A spin count: an int taken modulo 2**32, like the published C unsigned. */
int tpy_spin_arg(PyObject *obj, uint32_t *out)
{
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "spin_threshold must be an int, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    unsigned long v = PyLong_AsUnsignedLongMask(obj);
    if (v == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int64_t tpy_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The module state of one of our types or of a Python subclass of one. */
tpy_state *tpy_state_of_type(PyTypeObject *type)
{
    PyObject *mro = type->tp_mro;
    Py_ssize_t n = mro ? PyTuple_GET_SIZE(mro) : 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE))
            continue;
        PyObject *mod = PyType_GetModule(t);
        if (!mod) {
            PyErr_Clear();
            continue;
        }
        if (PyModule_GetDef(mod) == &tpy_module_def)
            return (tpy_state *)PyModule_GetState(mod);
    }
    PyErr_Format(PyExc_TypeError, "%.100s is not a tachyon type", type->tp_name);
    return NULL;
}

/* tp_new of the types whose objects only the bus hands out. */
PyObject *tpy_no_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances: they come from a bus",
                 type->tp_name);
    return NULL;
}

/* ---- type_id functions ---------------------------------------------------- */

static tpy_state *get_state(PyObject *mod)
{
    return (tpy_state *)PyModule_GetState(mod);
}

static int u16_arg(PyObject *obj, const char *what, uint32_t *out)
{
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || v > 0xFFFF) {
        PyErr_Format(PyExc_ValueError, "%s must be in [0, 65535], got %R", what, obj);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static PyObject *mod_make_type_id(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    tpy_state *st = get_state(mod);
    PyObject *names[] = {st->kw_route, st->kw_msg_type};
    PyObject *a[2];
    uint32_t route, type;
    if (tpy_parse_args(args, nargs, kwnames, names, 2, 2, 2, "make_type_id", a) < 0 ||
        u16_arg(a[0], "route", &route) < 0 || u16_arg(a[1], "msg_type", &type) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(TACHYON_TYPE_ID(route, type));
}

/* The low 32 bits of any int, two's complement for a negative one: what
 * (type_id >> 16) & 0xFFFF and type_id & 0xFFFF look at. No range check,
 * as published (route_id(-1) == 65535). */
static int type_id_bits(tpy_state *st, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                        const char *fname, uint32_t *out)
{
    PyObject *names[] = {st->kw_type_id};
    PyObject *a[1];
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 1, 1, fname, a) < 0)
        return -1;
    if (!PyLong_Check(a[0])) {
        PyErr_Format(PyExc_TypeError, "type_id must be an int, not %.100s", Py_TYPE(a[0])->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLongMask(a[0]);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static PyObject *mod_route_id(PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint32_t id;
    if (type_id_bits(get_state(mod), args, nargs, kwnames, "route_id", &id) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(TACHYON_ROUTE_ID(id));
}

static PyObject *mod_msg_type(PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint32_t id;
    if (type_id_bits(get_state(mod), args, nargs, kwnames, "msg_type", &id) < 0)
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

/* _error_from_code(code): the exception a C error code becomes (not raised);
 * what this package raises for that code, with the library's static text. */
static PyObject *mod_error_from_code(PyObject *mod, PyObject *arg)
{
    long code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred())
        return NULL;
    return tpy_exception_for_code(get_state(mod), (tachyon_error_t)code);
}

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
#define CAST_FN(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef module_methods[] = {
    {"make_type_id", CAST_FN(mod_make_type_id), FASTKW,
     "make_type_id(route, msg_type) -> int\n\n(route << 16) | msg_type; ValueError unless both "
     "are in [0, 65535]."},
    {"route_id", CAST_FN(mod_route_id), FASTKW,
     "route_id(type_id) -> int\n\n(type_id >> 16) & 0xFFFF, the route bits."},
    {"msg_type", CAST_FN(mod_msg_type), FASTKW,
     "msg_type(type_id) -> int\n\ntype_id & 0xFFFF, the message type bits."},
    {"strerror", mod_strerror, METH_O, "strerror(code) -> str: the C library's text for an error code."},
    {"_error_from_code", mod_error_from_code, METH_O,
     "_error_from_code(code) -> BaseException: the exception this package raises for a C error "
     "code (not raised)."},
    {NULL, NULL, 0, NULL},
};

/* ---- Module state and init ------------------------------------------------ */

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
    INTERN(kw_socket_path, "socket_path");
    INTERN(kw_capacity, "capacity");
    INTERN(kw_pack_into, "pack_into");
    INTERN(kw_spin_threshold, "spin_threshold");
    INTERN(kw_max_payload_size, "max_payload_size");
    INTERN(kw_pure_spin, "pure_spin");
    INTERN(kw_node_id, "node_id");
    INTERN(kw_stream, "stream");
    INTERN(kw_max_version, "max_version");
    INTERN(kw_dl_device, "dl_device");
    INTERN(kw_copy, "copy");
    INTERN(kw_format, "format");
    INTERN(kw_shape, "shape");
    INTERN(kw_offset, "offset");
    INTERN(kw_route, "route");
    INTERN(kw_msg_type, "msg_type");
#undef INTERN
    return 0;
}

static int module_exec(PyObject *mod)
{
    tpy_state *st = get_state(mod);
    (void)pthread_once(&fork_hook_once, install_fork_hook);
    if (intern_names(st) < 0 || tpy_errors_init(mod, st) < 0)
        return -1;
    PyObject *struct_mod = PyImport_ImportModule("struct");
    if (!struct_mod)
        return -1;
    st->struct_Struct = PyObject_GetAttrString(struct_mod, "Struct");
    Py_DECREF(struct_mod);
    if (!st->struct_Struct)
        return -1;
    if (tpy_guardmeth_types_init(mod, st) < 0 || tpy_message_type_init(mod, st) < 0 ||
        tpy_txguard_type_init(mod, st) < 0 || tpy_rxguard_type_init(mod, st) < 0 ||
        tpy_batch_type_init(mod, st) < 0 || tpy_dlpack_type_init(mod, st) < 0 ||
        tpy_core_type_init(mod, st) < 0 || tpy_bus_type_init(mod, st) < 0 ||
        tpy_rpc_types_init(mod, st) < 0 || tpy_fan_init(mod, st) < 0)
        return -1;
    if (PyModule_AddIntConstant(mod, "ABI_VERSION", 4) < 0 ||
        PyModule_AddIntConstant(mod, "DEFAULT_CAPACITY", 1 << 20) < 0)
        return -1;
    return 0;
}

#define STATE_OBJECTS(X)                                                                           \
    X(TachyonBus_Type) X(Bus_Type) X(TxGuard_Type) X(RxGuard_Type) X(Batch_Type)                    \
    X(BatchItem_Type) X(ArrayView_Type) X(Message_Type) X(GuardDescr_Type)                          \
    X(TachyonError) X(PeerDeadError) X(PeerClosedError) X(RingFullError) X(TimeoutError)            \
    X(ConnectionError) X(ValueError) X(PermissionError) X(OSError) X(MemoryError) X(StateError)    \
    X(ClosedError) X(struct_Struct)                                                                 \
    X(kw_size) X(kw_type_id) X(kw_timeout) X(kw_data) X(kw_max_msgs) X(kw_record_size)              \
    X(kw_path) X(kw_socket_path) X(kw_capacity) X(kw_pack_into) X(kw_spin_threshold)                \
    X(kw_max_payload_size) X(kw_pure_spin) X(kw_node_id) X(kw_stream) X(kw_max_version)             \
    X(kw_dl_device) X(kw_copy) X(kw_format) X(kw_shape) X(kw_offset) X(kw_route) X(kw_msg_type)

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
    tpy_message_freelist_clear(st);
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
    .m_doc = "Tachyon IPC Bindings: zero-copy shared-memory messaging between two processes.",
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
