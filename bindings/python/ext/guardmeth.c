/*
 * guardmeth.c - __enter__ and __exit__ of the guard types, without an
 * allocation per with-statement.
 *
 * A with-statement looks both methods up on the type and binds them to the
 * object: for ordinary C methods that allocates two bound-method objects per
 * statement, a large share of the seed's per-message cost. Here the type's
 * __enter__/__exit__ are descriptors that hand out one bound method per
 * guard, made on first use and kept by the guard; since guards are pooled,
 * the seed's loop allocates nothing. The bound methods are ordinary builtin
 * methods (PyCFunction), so the interpreter's specialized call paths apply.
 *
 * A bound method holds a strong reference to its guard and the guard one to
 * the method: a cycle, left to the garbage collector, which only matters
 * when the bus that pools the guard goes away.
 *
 * Also here: the export count every guard keeps (memoryviews, typed views
 * and DLPack tensors of its memory alike), and what the last export's
 * release does to a guard whose with-block already ended.
 */
#include "ext.h"

typedef struct {
    PyObject_HEAD
    PyTypeObject *owner; /* borrowed: the type's dict owns us */
    PyMethodDef *def;
    int index;           /* 0 __enter__, 1 __exit__ */
} GuardDescrObject;

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
    if (!m) {
        m = PyCFunction_NewEx(d->def, obj, NULL);
        if (!m)
            return NULL;
        g->bound[d->index] = m;
    }
    return Py_NewRef(m);
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
    st->GuardDescr_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &guarddescr_spec, NULL);
    return st->GuardDescr_Type ? 0 : -1;
}

static int install_one(tpy_state *st, PyTypeObject *type, PyMethodDef *def, int index)
{
    GuardDescrObject *d = PyObject_New(GuardDescrObject, st->GuardDescr_Type);
    if (!d)
        return -1;
    d->owner = type;
    d->def = def;
    d->index = index;
    int rc = PyObject_SetAttrString((PyObject *)type, def->ml_name, (PyObject *)d);
    Py_DECREF(d);
    return rc;
}

/* `defs` holds __enter__ then __exit__; it must outlive the type (static). */
int tpy_install_guard_methods(tpy_state *st, PyTypeObject *type, PyMethodDef *defs)
{
    if (install_one(st, type, &defs[0], 0) < 0 || install_one(st, type, &defs[1], 1) < 0)
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

/* ---- Exports (memoryviews and tensors) of a guard's memory -------------------- */

void tpy_guard_unexport(GuardHeadObject *g)
{
    g->exports--;
    if (g->bus)
        g->bus->exports--;
    if (g->exports > 0 || g->hold != TPY_ORPHANED)
        return;
    /* The last view of a guard whose with-block already ended: now the slot
     * can be finished (a send rolled back, a receive released). */
    tpy_state *st = g->bus->st;
    if (Py_IS_TYPE(g, st->TxGuard_Type))
        tpy_txguard_finish_orphan((TxGuardObject *)g);
    else if (Py_IS_TYPE(g, st->RxGuard_Type))
        tpy_rxguard_finish_orphan((RxGuardObject *)g);
    else
        tpy_batch_finish_orphan((BatchObject *)g);
}

int tpy_guard_check_export(GuardHeadObject *g, const char *what)
{
    if (g->hold != TPY_ACTIVE) {
        PyErr_Format(PyExc_BufferError,
                     "this %s was released (its with-block ended or its bus closed); take views "
                     "of it inside the block",
                     what);
        return -1;
    }
    if (g->bus->fork_gen != tpy_fork_generation)
        return tpy_raise_code(g->bus->st, TACHYON_ERR_FORKED, TPY_OP_OTHER, NULL);
    return 0;
}
