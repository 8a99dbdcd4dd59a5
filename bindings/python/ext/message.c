/*
 * message.c - Message, a received message copied out of the ring: what
 * iterating a bus and Bus.recv give. Owns its bytes; valid forever.
 *
 * It behaves as the published package's Message, a dataclass with the fields
 * type_id, size and data: Message(type_id, size, data) by position or
 * keyword, writable fields, a dataclass repr, == by fields of the same
 * class, unhashable, __slots__ and __match_args__, and (set up in
 * tachyon/__init__.py) the dataclass metadata, so dataclasses.fields,
 * asdict, replace and is_dataclass work. It is a C type so that receiving
 * stays cheap: a message is made without a call into Python, and is not
 * tracked by the garbage collector until a field is set to something that
 * could form a cycle, and a few freed messages are kept for reuse.
 */
#include "ext.h"

PyObject *tpy_message_new(tpy_state *st, uint32_t type_id, const void *data, size_t size)
{
    PyObject *bytes = PyBytes_FromStringAndSize(data, (Py_ssize_t)size);
    if (!bytes)
        return NULL;
    PyObject *type_obj = PyLong_FromUnsignedLong(type_id);
    PyObject *size_obj = type_obj ? PyLong_FromSize_t(size) : NULL;
    MessageObject *m = NULL;
    if (size_obj && st->n_free_messages > 0) {
        m = st->free_messages[--st->n_free_messages];
        PyObject_Init((PyObject *)m, st->Message_Type); /* untracked, as new */
    } else if (size_obj) {
        m = PyObject_GC_New(MessageObject, st->Message_Type);
    }
    if (!m) {
        Py_DECREF(bytes);
        Py_XDECREF(type_obj);
        Py_XDECREF(size_obj);
        return NULL;
    }
    /* bytes and ints cannot form a cycle: left untracked (see message_setattro). */
    m->data = bytes;
    m->type_id_obj = type_obj;
    m->size_obj = size_obj;
    return (PyObject *)m;
}

/* Message(type_id, size, data): the dataclass's generated __init__. */
static PyObject *message_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"type_id", "size", "data", NULL};
    PyObject *type_id, *size, *data;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO:Message", kwlist, &type_id, &size, &data))
        return NULL;
    MessageObject *m = (MessageObject *)type->tp_alloc(type, 0);
    if (!m)
        return NULL;
    m->type_id_obj = Py_NewRef(type_id);
    m->size_obj = Py_NewRef(size);
    m->data = Py_NewRef(data);
    return (PyObject *)m;
}

/* Any field set from Python might close a cycle: from then on, let the
 * collector see the object. */
static int message_setattro(PyObject *self, PyObject *name, PyObject *value)
{
    int rc = PyObject_GenericSetAttr(self, name, value);
    if (rc == 0 && !PyObject_GC_IsTracked(self))
        PyObject_GC_Track(self);
    return rc;
}

/* (type_id >> 16) & 0xFFFF and type_id & 0xFFFF, on whatever int is stored. */
static PyObject *type_id_bits(MessageObject *m, int shift)
{
    PyObject *by = PyLong_FromLong(shift);
    PyObject *mask = PyLong_FromLong(0xFFFF);
    PyObject *shifted = by && mask ? PyNumber_Rshift(m->type_id_obj, by) : NULL;
    PyObject *r = shifted ? PyNumber_And(shifted, mask) : NULL;
    Py_XDECREF(by);
    Py_XDECREF(mask);
    Py_XDECREF(shifted);
    return r;
}

static PyObject *message_get_route_id(MessageObject *m, void *c)
{
    return type_id_bits(m, 16);
}

static PyObject *message_get_msg_type(MessageObject *m, void *c)
{
    return type_id_bits(m, 0);
}

static PyObject *message_get_actual_size(MessageObject *m, void *c)
{
    return Py_NewRef(m->size_obj);
}

static Py_ssize_t message_len(MessageObject *m)
{
    return PyObject_Size(m->data);
}

static PyObject *message_bytes(MessageObject *m, PyObject *unused)
{
    if (PyBytes_CheckExact(m->data))
        return Py_NewRef(m->data);
    return PyBytes_FromObject(m->data);
}

/* Message(type_id=1, size=10, data=b'...'), as a dataclass prints it. */
static PyObject *message_repr(MessageObject *m)
{
    PyObject *name = PyObject_GetAttrString((PyObject *)Py_TYPE(m), "__qualname__");
    if (!name)
        return NULL;
    PyObject *r = PyUnicode_FromFormat("%U(type_id=%R, size=%R, data=%R)", name, m->type_id_obj,
                                       m->size_obj, m->data);
    Py_DECREF(name);
    return r;
}

/* ==: same class and equal fields, as a dataclass compares. */
static PyObject *message_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b))
        Py_RETURN_NOTIMPLEMENTED;
    MessageObject *x = (MessageObject *)a, *y = (MessageObject *)b;
    PyObject *fx[3] = {x->type_id_obj, x->size_obj, x->data};
    PyObject *fy[3] = {y->type_id_obj, y->size_obj, y->data};
    for (int i = 0; i < 3; i++) {
        int eq = PyObject_RichCompareBool(fx[i], fy[i], Py_EQ);
        if (eq < 0)
            return NULL;
        if (!eq)
            return PyBool_FromLong(op == Py_NE);
    }
    return PyBool_FromLong(op == Py_EQ);
}

static PyObject *message_reduce(MessageObject *m, PyObject *unused)
{
    return Py_BuildValue("O(OOO)", Py_TYPE(m), m->type_id_obj, m->size_obj, m->data);
}

static int message_traverse(MessageObject *m, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(m));
    Py_VISIT(m->data);
    Py_VISIT(m->type_id_obj);
    Py_VISIT(m->size_obj);
    return 0;
}

static int message_clear(MessageObject *m)
{
    Py_CLEAR(m->data);
    Py_CLEAR(m->type_id_obj);
    Py_CLEAR(m->size_obj);
    return 0;
}

static void message_dealloc(MessageObject *m)
{
    PyTypeObject *tp = Py_TYPE(m);
    PyObject_GC_UnTrack(m);
    message_clear(m);
    /* Only Message itself (a subclass deallocates through its own
     * tp_dealloc first, and has no module state to ask). */
    tpy_state *st = tp->tp_dealloc == (destructor)message_dealloc ? PyType_GetModuleState(tp) : NULL;
    if (st && st->n_free_messages < TPY_MESSAGE_FREELIST) {
        st->free_messages[st->n_free_messages++] = m; /* reused by tpy_message_new */
    } else {
        tp->tp_free((PyObject *)m);
    }
    Py_DECREF(tp);
}

void tpy_message_freelist_clear(tpy_state *st)
{
    while (st->n_free_messages > 0)
        PyObject_GC_Del(st->free_messages[--st->n_free_messages]);
}

static PyMemberDef message_members[] = {
    {"type_id", T_OBJECT_EX, offsetof(MessageObject, type_id_obj), 0,
     "The message's type_id (all 32 bits, route included)."},
    {"size", T_OBJECT_EX, offsetof(MessageObject, size_obj), 0, "The payload's size in bytes."},
    {"data", T_OBJECT_EX, offsetof(MessageObject, data), 0, "The payload (bytes)."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef message_getset[] = {
    {"actual_size", (getter)message_get_actual_size, NULL, "Same as size.", NULL},
    {"route_id", (getter)message_get_route_id, NULL, "Bits 31..16 of type_id.", NULL},
    {"msg_type", (getter)message_get_msg_type, NULL, "Bits 15..0 of type_id.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef message_methods[] = {
    {"__bytes__", (PyCFunction)message_bytes, METH_NOARGS, NULL},
    {"__reduce__", (PyCFunction)message_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot message_slots[] = {
    {Py_tp_doc, "Message(type_id, size, data): a received message, copied out of the ring."},
    {Py_tp_new, message_tp_new},
    {Py_tp_dealloc, message_dealloc},
    {Py_tp_traverse, message_traverse},
    {Py_tp_clear, message_clear},
    {Py_tp_repr, message_repr},
    {Py_tp_richcompare, message_richcompare},
    {Py_tp_hash, PyObject_HashNotImplemented},
    {Py_tp_setattro, message_setattro},
    {Py_tp_members, message_members},
    {Py_tp_getset, message_getset},
    {Py_tp_methods, message_methods},
    {Py_sq_length, message_len},
    {0, NULL},
};

static PyType_Spec message_spec = {
    .name = "tachyon.Message",
    .basicsize = sizeof(MessageObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = message_slots,
};

int tpy_message_type_init(PyObject *module, tpy_state *st)
{
    st->Message_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &message_spec, NULL);
    if (!st->Message_Type)
        return -1;
    return PyModule_AddObjectRef(module, "Message", (PyObject *)st->Message_Type);
}
