/*
 * guardmeth.c - __enter__ and __exit__ of the guard types, without an
 * allocation per with-statement.
 *
 * A with-statement looks both methods up on the type and binds them to the
 * object: for ordinary C methods that allocates two bound-method objects per
 * statement, which is a large share of the seed's per-message cost. Here the
 * type's __enter__/__exit__ are descriptors that hand out one callable per
 * guard, made on first use and kept by the guard; since guards are pooled,
 * the seed's loop allocates nothing at all.
 *
 * The callable holds a strong reference to its guard and the guard one to
 * the callable: a cycle, left to the garbage collector, which only matters
 * when the bus that pools the guard goes away.
 */
#include "ext.h"

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *guard;
    tpy_guard_fn fn;
} GuardMethodObject;

typedef struct {
    PyObject_HEAD
    PyTypeObject *owner; /* borrowed: the type's dict owns us */
    tpy_guard_fn fn;
    int index;           /* 0 __enter__, 1 __exit__ */
} GuardDescrObject;

static tpy_state *state_of_type(PyTypeObject *tp)
{
    return (tpy_state *)PyType_GetModuleState(tp);
}

/* ---- The per-guard callable ------------------------------------------------ */

static PyObject *guardmeth_vectorcall(GuardMethodObject *m, PyObject *const *args, size_t nargsf,
                                      PyObject *kwnames)
{
    if (kwnames && PyTuple_GET_SIZE(kwnames) > 0) {
        PyErr_SetString(PyExc_TypeError, "__enter__/__exit__ take no keyword arguments");
        return NULL;
    }
    return m->fn(m->guard, args, PyVectorcall_NARGS(nargsf));
}

static int guardmeth_traverse(GuardMethodObject *m, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(m));
    Py_VISIT(m->guard);
    return 0;
}

static int guardmeth_clear(GuardMethodObject *m)
{
    Py_CLEAR(m->guard);
    return 0;
}

static void guardmeth_dealloc(GuardMethodObject *m)
{
    PyTypeObject *tp = Py_TYPE(m);
    PyObject_GC_UnTrack(m);
    Py_CLEAR(m->guard);
    PyObject_GC_Del(m);
    Py_DECREF(tp);
}

static PyMemberDef guardmeth_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(GuardMethodObject, vectorcall), READONLY, NULL},
    {"__self__", T_OBJECT, offsetof(GuardMethodObject, guard), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot guardmeth_slots[] = {
    {Py_tp_doc, "A guard's __enter__ or __exit__, bound to it."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_dealloc, guardmeth_dealloc},
    {Py_tp_traverse, guardmeth_traverse},
    {Py_tp_clear, guardmeth_clear},
    {Py_tp_members, guardmeth_members},
    {0, NULL},
};

static PyType_Spec guardmeth_spec = {
    .name = "tachyon._GuardMethod",
    .basicsize = sizeof(GuardMethodObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = guardmeth_slots,
};

/* ---- The descriptor on the guard type --------------------------------------- */

static PyObject *guarddescr_get(GuardDescrObject *d, PyObject *obj, PyObject *type)
{
    if (!obj || obj == Py_None)
        return Py_NewRef(d);
    if (!PyObject_TypeCheck(obj, d->owner)) {
        PyErr_Format(PyExc_TypeError, "descriptor needs a '%.100s' object, not '%.100s'",
                     d->owner->tp_name, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    GuardHeadObject *g = (GuardHeadObject *)obj;
    PyObject *m = g->bound[d->index];
    if (m)
        return Py_NewRef(m);
    tpy_state *st = state_of_type(Py_TYPE(d));
    GuardMethodObject *nm = PyObject_GC_New(GuardMethodObject, st->GuardMethod_Type);
    if (!nm)
        return NULL;
    nm->vectorcall = (vectorcallfunc)guardmeth_vectorcall;
    nm->guard = Py_NewRef(obj);
    nm->fn = d->fn;
    PyObject_GC_Track(nm);
    g->bound[d->index] = (PyObject *)nm;
    return Py_NewRef(nm);
}

static void guarddescr_dealloc(GuardDescrObject *d)
{
    PyTypeObject *tp = Py_TYPE(d);
    PyObject_Free(d);
    Py_DECREF(tp);
}

static PyType_Slot guarddescr_slots[] = {
    {Py_tp_new, tpy_no_new},
    {Py_tp_descr_get, guarddescr_get},
    {Py_tp_dealloc, guarddescr_dealloc},
    {0, NULL},
};

static PyType_Spec guarddescr_spec = {
    .name = "tachyon._GuardDescriptor",
    .basicsize = sizeof(GuardDescrObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = guarddescr_slots,
};

int tpy_guardmeth_types_init(PyObject *module, tpy_state *st)
{
    st->GuardMethod_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &guardmeth_spec, NULL);
    if (!st->GuardMethod_Type)
        return -1;
    st->GuardDescr_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &guarddescr_spec, NULL);
    return st->GuardDescr_Type ? 0 : -1;
}

static int install_one(tpy_state *st, PyTypeObject *type, const char *name, tpy_guard_fn fn,
                       int index)
{
    GuardDescrObject *d = PyObject_New(GuardDescrObject, st->GuardDescr_Type);
    if (!d)
        return -1;
    d->owner = type;
    d->fn = fn;
    d->index = index;
    int rc = PyObject_SetAttrString((PyObject *)type, name, (PyObject *)d);
    Py_DECREF(d);
    return rc;
}

int tpy_install_guard_methods(tpy_state *st, PyTypeObject *type, tpy_guard_fn enter,
                              tpy_guard_fn exit)
{
    if (install_one(st, type, "__enter__", enter, 0) < 0 ||
        install_one(st, type, "__exit__", exit, 1) < 0)
        return -1;
    PyType_Modified(type);
    return 0;
}

/* ---- Helpers for the guard types --------------------------------------------- */

/* Nobody but its pool (and its own bound methods) references this guard. */
int tpy_guard_unreferenced(PyObject *guard)
{
    GuardHeadObject *g = (GuardHeadObject *)guard;
    Py_ssize_t expected = 1;
    for (int i = 0; i < 2; i++) {
        if (g->bound[i]) {
            if (Py_REFCNT(g->bound[i]) != 1)
                return 0;
            expected++;
        }
    }
    return Py_REFCNT(guard) == expected;
}

int tpy_guard_traverse(PyObject *guard, visitproc visit, void *arg)
{
    GuardHeadObject *g = (GuardHeadObject *)guard;
    Py_VISIT(g->bound[0]);
    Py_VISIT(g->bound[1]);
    return 0;
}

void tpy_guard_clear_bound(PyObject *guard)
{
    GuardHeadObject *g = (GuardHeadObject *)guard;
    Py_CLEAR(g->bound[0]);
    Py_CLEAR(g->bound[1]);
}
