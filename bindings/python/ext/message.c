/*
 * message.c - Message, a received message copied out of the ring: what
 * iterating a bus and Bus.recv give. Owns its bytes; valid forever.
 */
#include "ext.h"

PyObject *tpy_message_new(tpy_state *st, uint32_t type_id, const void *data, size_t size)
{
    PyObject *bytes = PyBytes_FromStringAndSize(data, (Py_ssize_t)size);
    if (!bytes)
        return NULL;
    PyObject *type_obj = PyLong_FromUnsignedLong(type_id);
    PyObject *size_obj = type_obj ? PyLong_FromSize_t(size) : NULL;
    MessageObject *m = size_obj ? PyObject_New(MessageObject, st->Message_Type) : NULL;
    if (!m) {
        Py_DECREF(bytes);
        Py_XDECREF(type_obj);
        Py_XDECREF(size_obj);
        return NULL;
    }
    m->data = bytes;
    m->type_id_obj = type_obj;
    m->size_obj = size_obj;
    return (PyObject *)m;
}

static PyObject *message_get_route_id(MessageObject *m, void *c)
{
    return PyLong_FromLong(TACHYON_ROUTE_ID(PyLong_AsUnsignedLong(m->type_id_obj)));
}

static PyObject *message_get_msg_type(MessageObject *m, void *c)
{
    return PyLong_FromLong(TACHYON_MSG_TYPE(PyLong_AsUnsignedLong(m->type_id_obj)));
}

static Py_ssize_t message_len(MessageObject *m)
{
    return PyBytes_GET_SIZE(m->data);
}

static PyObject *message_bytes(MessageObject *m, PyObject *unused)
{
    return Py_NewRef(m->data);
}

static PyObject *message_repr(MessageObject *m)
{
    return PyUnicode_FromFormat("<tachyon.Message type_id=%R size=%zd>", m->type_id_obj,
                                PyBytes_GET_SIZE(m->data));
}

static void message_dealloc(MessageObject *m)
{
    PyTypeObject *tp = Py_TYPE(m);
    Py_DECREF(m->data);
    Py_DECREF(m->type_id_obj);
    Py_DECREF(m->size_obj);
    PyObject_Free(m);
    Py_DECREF(tp);
}

static PyMemberDef message_members[] = {
    {"type_id", T_OBJECT_EX, offsetof(MessageObject, type_id_obj), READONLY, "The message's type_id."},
    {"data", T_OBJECT_EX, offsetof(MessageObject, data), READONLY, "The payload (bytes)."},
    {"size", T_OBJECT_EX, offsetof(MessageObject, size_obj), READONLY, "The payload's size in bytes."},
    {"actual_size", T_OBJECT_EX, offsetof(MessageObject, size_obj), READONLY, "Same as size."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef message_getset[] = {
    {"route_id", (getter)message_get_route_id, NULL, "Bits 31..16 of type_id.", NULL},
    {"msg_type", (getter)message_get_msg_type, NULL, "Bits 15..0 of type_id.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef message_methods[] = {
    {"__bytes__", (PyCFunction)message_bytes, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot message_slots[] = {
    {Py_tp_doc, "A received message (a copy): type_id, size, data."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_dealloc, message_dealloc},
    {Py_tp_repr, message_repr},
    {Py_tp_members, message_members},
    {Py_tp_getset, message_getset},
    {Py_tp_methods, message_methods},
    {Py_sq_length, message_len},
    {0, NULL},
};

static PyType_Spec message_spec = {
    .name = "tachyon.Message",
    .basicsize = sizeof(MessageObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = message_slots,
};

int tpy_message_type_init(PyObject *module, tpy_state *st)
{
    st->Message_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &message_spec, NULL);
    if (!st->Message_Type)
        return -1;
    return PyModule_AddObjectRef(module, "Message", (PyObject *)st->Message_Type);
}
