/*
 * dlpack.c - received messages as tensors and typed arrays, zero-copy.
 *
 * __dlpack__ on RxGuard and RxMsgView (and on ArrayView) hands out the
 * payload as a DLPack tensor: the versioned protocol (a "dltensor_versioned"
 * capsule holding a DLManagedTensorVersioned flagged read-only) when the
 * consumer asks for it with max_version >= (1, 0), as numpy >= 2 and recent
 * torch do, else the legacy "dltensor" capsule. `copy=True` hands out a copy
 * the caller owns; `dl_device` other than the CPU is refused (BufferError).
 *
 * A tensor counts as an export of the guard (or batch) like a memoryview:
 * the message is not released while one lives, so nobody ever reads a slot
 * the producer reuses. Its deleter may run in any thread, with or without
 * the GIL (a consumer frees its tensor when it likes): it takes the GIL to
 * give the export back, and after the interpreter has finalized it only
 * frees memory.
 *
 * ArrayView (guard.view(format, shape, offset=)) is a typed, read-only view of
 * the same memory: the buffer protocol with a struct format and a shape
 * (memoryview, numpy.asarray: no numpy needed here) and __dlpack__ with the
 * matching dtype. It holds its owner and checks, at each export, that the
 * message is still held.
 *
 * The DLPack structures below are the layouts of the DLPack specification
 * (dlpack.h, ABI version 1), written out here.
 */
#include <stdlib.h>
#include <string.h>

#include "ext.h"

/* ---- DLPack ABI -------------------------------------------------------------- */

enum { kDLCPU = 1 };
enum { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBool = 6 };

typedef struct {
    int32_t device_type; /* an enum in dlpack.h: int-sized */
    int32_t device_id;
} DLDevice;

typedef struct {
    uint8_t code;
    uint8_t bits;
    uint16_t lanes;
} DLDataType;

typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;
    int64_t *strides; /* in elements */
    uint64_t byte_offset;
} DLTensor;

typedef struct DLManagedTensor {
    DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;

typedef struct {
    uint32_t major;
    uint32_t minor;
} DLPackVersion;

typedef struct DLManagedTensorVersioned {
    DLPackVersion version;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensorVersioned *self);
    uint64_t flags;
    DLTensor dl_tensor;
} DLManagedTensorVersioned;

#define DLPACK_FLAG_BITMASK_READ_ONLY (1ULL << 0)
#define DLPACK_FLAG_BITMASK_IS_COPIED (1ULL << 1)

_Static_assert(sizeof(DLDevice) == 8, "DLDevice layout");
_Static_assert(sizeof(DLDataType) == 4, "DLDataType layout");
_Static_assert(offsetof(DLTensor, shape) == 24 && sizeof(DLTensor) == 48, "DLTensor layout");
_Static_assert(offsetof(DLManagedTensorVersioned, dl_tensor) == 32, "DLManagedTensorVersioned layout");

#define TPY_MAX_NDIM 8

/* What a tensor describes: element type and C-contiguous shape. */
typedef struct {
    char format[2];      /* a native struct format character, NUL-terminated */
    Py_ssize_t itemsize;
    uint8_t dl_code;
    int ndim;
    Py_ssize_t shape[TPY_MAX_NDIM];
} tpy_layout;

/* ---- Tensors ------------------------------------------------------------------ */

typedef struct {
    union {
        DLManagedTensor legacy;
        DLManagedTensorVersioned versioned;
    } t;
    PyObject *owner; /* the guard or batch whose exports count it; NULL for a copy */
    int64_t shape[TPY_MAX_NDIM];
    int64_t strides[TPY_MAX_NDIM];
    /* a copy's bytes follow */
} export_block;

static int interpreter_gone(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return !Py_IsInitialized() || Py_IsFinalizing();
#else
    return !Py_IsInitialized() || _Py_IsFinalizing();
#endif
}

/* The consumer is done with the tensor: give the export back, free it. */
static void release_block(export_block *b)
{
    if (b->owner && !interpreter_gone()) {
        PyGILState_STATE gil = PyGILState_Ensure();
        tpy_guard_unexport((GuardHeadObject *)b->owner);
        Py_DECREF(b->owner);
        PyGILState_Release(gil);
    }
    free(b);
}

static void legacy_deleter(DLManagedTensor *t)
{
    release_block((export_block *)t->manager_ctx);
}

static void versioned_deleter(DLManagedTensorVersioned *t)
{
    release_block((export_block *)t->manager_ctx);
}

/* A capsule nobody consumed (its name unchanged) owns its tensor. */
static void capsule_destructor(PyObject *capsule)
{
    if (PyCapsule_IsValid(capsule, "dltensor_versioned")) {
        DLManagedTensorVersioned *t = PyCapsule_GetPointer(capsule, "dltensor_versioned");
        t->deleter(t);
    } else if (PyCapsule_IsValid(capsule, "dltensor")) {
        DLManagedTensor *t = PyCapsule_GetPointer(capsule, "dltensor");
        t->deleter(t);
    }
}

/* Is the owner's memory still held by this process? -1 with ClosedError
 * (a RuntimeError, as the published package raises) or ERR_FORKED. */
static int owner_usable(GuardHeadObject *owner)
{
    if (owner->hold != TPY_ACTIVE) {
        tpy_state *st = PyType_GetModuleState(Py_TYPE(owner));
        PyErr_SetString(st->ClosedError,
                        "this message was released (its with-block ended or its bus closed): "
                        "export tensors inside the block");
        return -1;
    }
    if (owner->bus->fork_gen != tpy_fork_generation)
        return tpy_raise_code(owner->bus->st, TACHYON_ERR_FORKED, TPY_OP_OTHER, NULL);
    return 0;
}

/* __dlpack__(stream=None, *, max_version=None, dl_device=None, copy=None). */
static PyObject *export_tensor(GuardHeadObject *owner, const void *data, const tpy_layout *lay,
                               PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    tpy_state *st = PyType_GetModuleState(Py_TYPE(owner));
    PyObject *names[] = {st->kw_stream, st->kw_max_version, st->kw_dl_device, st->kw_copy};
    PyObject *a[4];
    if (tpy_parse_args(args, nargs, kwnames, names, 1, 4, 0, "__dlpack__", a) < 0)
        return NULL;
    /* a[0], the stream: the CPU has none; ignored, as published. */
    int versioned = 0;
    if (a[1] && a[1] != Py_None) {
        if (!PyTuple_Check(a[1]) || PyTuple_GET_SIZE(a[1]) != 2) {
            PyErr_SetString(PyExc_TypeError, "max_version must be a (major, minor) tuple or None");
            return NULL;
        }
        long major = PyLong_AsLong(PyTuple_GET_ITEM(a[1], 0));
        if (major == -1 && PyErr_Occurred())
            return NULL;
        versioned = major >= 1;
    }
    if (a[2] && a[2] != Py_None) {
        PyObject *cpu = Py_BuildValue("(ii)", kDLCPU, 0);
        int same = cpu ? PyObject_RichCompareBool(a[2], cpu, Py_EQ) : -1;
        Py_XDECREF(cpu);
        if (same < 0)
            return NULL;
        if (!same) {
            PyErr_Format(PyExc_BufferError, "a message lives in host memory: dl_device must be "
                                            "(1, 0) (the CPU), not %R", a[2]);
            return NULL;
        }
    }
    int copy = 0;
    if (a[3] && a[3] != Py_None && (copy = PyObject_IsTrue(a[3])) < 0)
        return NULL;
    if (owner_usable(owner) < 0)
        return NULL;

    Py_ssize_t nbytes = lay->itemsize;
    for (int i = 0; i < lay->ndim; i++)
        nbytes *= lay->shape[i];
    export_block *b = malloc(sizeof(export_block) + (copy ? (size_t)nbytes : 0));
    if (!b)
        return PyErr_NoMemory();
    memset(b, 0, sizeof(*b));
    int64_t stride = 1;
    for (int i = lay->ndim - 1; i >= 0; i--) {
        b->shape[i] = (int64_t)lay->shape[i];
        b->strides[i] = stride;
        stride *= (int64_t)lay->shape[i];
    }
    DLTensor *dl = versioned ? &b->t.versioned.dl_tensor : &b->t.legacy.dl_tensor;
    if (copy) {
        memcpy(b + 1, data, (size_t)nbytes);
        dl->data = b + 1;
    } else {
        dl->data = (void *)data;
    }
    dl->device.device_type = kDLCPU;
    dl->device.device_id = 0;
    dl->ndim = lay->ndim;
    dl->dtype.code = lay->dl_code;
    dl->dtype.bits = (uint8_t)(lay->itemsize * 8);
    dl->dtype.lanes = 1;
    dl->shape = b->shape;
    dl->strides = b->strides;
    dl->byte_offset = 0;
    if (versioned) {
        b->t.versioned.version.major = 1;
        b->t.versioned.version.minor = 0;
        b->t.versioned.manager_ctx = b;
        b->t.versioned.deleter = versioned_deleter;
        b->t.versioned.flags = copy ? DLPACK_FLAG_BITMASK_IS_COPIED : DLPACK_FLAG_BITMASK_READ_ONLY;
    } else {
        b->t.legacy.manager_ctx = b;
        b->t.legacy.deleter = legacy_deleter;
    }
    if (!copy) {
        b->owner = Py_NewRef(owner);
        tpy_guard_export(owner);
    }
    PyObject *capsule = PyCapsule_New(versioned ? (void *)&b->t.versioned : (void *)&b->t.legacy,
                                      versioned ? "dltensor_versioned" : "dltensor", capsule_destructor);
    if (!capsule)
        release_block(b);
    return capsule;
}

static void bytes_layout(tpy_layout *lay, Py_ssize_t nbytes)
{
    lay->format[0] = 'B';
    lay->format[1] = '\0';
    lay->itemsize = 1;
    lay->dl_code = kDLUInt;
    lay->ndim = 1;
    lay->shape[0] = nbytes;
}

PyObject *tpy_dlpack_export(GuardHeadObject *owner, const void *data, Py_ssize_t nbytes,
                            PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    tpy_layout lay;
    bytes_layout(&lay, nbytes);
    return export_tensor(owner, data, &lay, args, nargs, kwnames);
}

PyObject *tpy_dlpack_device(PyObject *self, PyObject *unused)
{
    return Py_BuildValue("(ii)", kDLCPU, 0);
}

/* ---- Element types ------------------------------------------------------------ */

static int native_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* A native struct format character: its size and DLPack type code. */
static int native_type(char c, Py_ssize_t *size, uint8_t *code)
{
    switch (c) {
    case 'b': *size = 1; *code = kDLInt; return 0;
    case 'B': *size = 1; *code = kDLUInt; return 0;
    case 'h': *size = 2; *code = kDLInt; return 0;
    case 'H': *size = 2; *code = kDLUInt; return 0;
    case 'i': *size = 4; *code = kDLInt; return 0;
    case 'I': *size = 4; *code = kDLUInt; return 0;
    case 'l': *size = sizeof(long); *code = kDLInt; return 0;
    case 'L': *size = sizeof(long); *code = kDLUInt; return 0;
    case 'q': *size = 8; *code = kDLInt; return 0;
    case 'Q': *size = 8; *code = kDLUInt; return 0;
    case 'n': *size = sizeof(Py_ssize_t); *code = kDLInt; return 0;
    case 'N': *size = sizeof(size_t); *code = kDLUInt; return 0;
    case 'e': *size = 2; *code = kDLFloat; return 0;
    case 'f': *size = 4; *code = kDLFloat; return 0;
    case 'd': *size = 8; *code = kDLFloat; return 0;
    case '?': *size = 1; *code = kDLBool; return 0;
    default: return -1;
    }
}

/* The native character for a kind ('i' signed, 'u' unsigned, 'f' float, 'b'
 * bool) and size, or 0. */
static char char_for(char kind, Py_ssize_t size)
{
    static const char ints[] = {0, 'b', 'h', 0, 'i', 0, 0, 0, 'q'};
    static const char uints[] = {0, 'B', 'H', 0, 'I', 0, 0, 0, 'Q'};
    static const char floats[] = {0, 0, 'e', 0, 'f', 0, 0, 0, 'd'};
    if (size < 1 || size > 8)
        return 0;
    switch (kind) {
    case 'i': return ints[size];
    case 'u': return uints[size];
    case 'f': return floats[size];
    case 'b': return size == 1 ? '?' : 0;
    default: return 0;
    }
}

static int set_type(tpy_layout *lay, char c)
{
    lay->format[0] = c;
    lay->format[1] = '\0';
    return native_type(c, &lay->itemsize, &lay->dl_code);
}

static int foreign_byte_order(char order)
{
    int big = order == '>' || order == '!';
    int little = order == '<';
    return (big && native_little_endian()) || (little && !native_little_endian());
}

/* A struct format: an optional byte order ('@', '=', '<', '>', '!') and one
 * type character. Standard sizes ('=', '<', ...) map to the native
 * character of that size ('<l' is 4 bytes: 'i'). */
static int parse_struct_format(const char *f, tpy_layout *lay)
{
    char order = '@';
    if (*f && strchr("@=<>!", *f))
        order = *f++;
    if (!f[0] || f[1])
        return -1;
    if (foreign_byte_order(order)) {
        PyErr_SetString(PyExc_ValueError,
                        "the message is in this machine's byte order: a view in the other byte "
                        "order would need a copy (convert after viewing)");
        return -2;
    }
    char c = f[0];
    if (order != '@') {
        Py_ssize_t size;
        uint8_t code;
        if (c == 'n' || c == 'N' || native_type(c, &size, &code) < 0)
            return -1;
        if (c == 'l' || c == 'L')
            c = c == 'l' ? 'i' : 'I'; /* standard size: 4 bytes */
    }
    return set_type(lay, c);
}

/* A numpy dtype (anything with a typestr in .str, e.g. '<f4', '|u1'). */
static int parse_typestr(PyObject *typestr, tpy_layout *lay)
{
    const char *s = PyUnicode_AsUTF8(typestr);
    if (!s)
        return -2;
    if (strlen(s) < 3)
        return -1;
    if (foreign_byte_order(s[0])) {
        PyErr_SetString(PyExc_ValueError,
                        "the message is in this machine's byte order: a view in the other byte "
                        "order would need a copy (convert after viewing)");
        return -2;
    }
    char *end;
    long size = strtol(s + 2, &end, 10);
    if (*end)
        return -1;
    char c = char_for(s[1], size);
    return c ? set_type(lay, c) : -1;
}

static int parse_dtype(PyObject *obj, tpy_layout *lay)
{
    int rc;
    if (PyUnicode_Check(obj)) {
        const char *f = PyUnicode_AsUTF8(obj);
        rc = f ? parse_struct_format(f, lay) : -2;
    } else {
        PyObject *typestr = PyObject_GetAttrString(obj, "str");
        if (!typestr || !PyUnicode_Check(typestr)) {
            Py_XDECREF(typestr);
            PyErr_Clear();
            rc = -1;
        } else {
            rc = parse_typestr(typestr, lay);
            Py_DECREF(typestr);
        }
    }
    if (rc == -1)
        PyErr_Format(PyExc_ValueError,
                     "unsupported element type %R: give a struct format character (b B h H i I l "
                     "L q Q n N e f d ?, optionally after @ = <) or a numpy dtype of those",
                     obj);
    return rc < 0 ? -1 : 0;
}

/* shape (None: as many elements as the bytes hold; one dimension may be -1)
 * for `avail` bytes. */
static int parse_shape(PyObject *obj, Py_ssize_t avail, tpy_layout *lay)
{
    Py_ssize_t dims[TPY_MAX_NDIM];
    int ndim;
    if (!obj || obj == Py_None) {
        ndim = 1;
        dims[0] = -1;
    } else if (PyLong_Check(obj)) {
        ndim = 1;
        dims[0] = PyLong_AsSsize_t(obj);
        if (dims[0] == -1 && PyErr_Occurred())
            return -1;
    } else {
        PyObject *seq = PySequence_Fast(obj, "shape must be an int, a sequence of ints or None");
        if (!seq)
            return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        if (n < 1 || n > TPY_MAX_NDIM) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "shape must have 1 to %d dimensions", TPY_MAX_NDIM);
            return -1;
        }
        ndim = (int)n;
        for (int i = 0; i < ndim; i++) {
            dims[i] = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i));
            if (dims[i] == -1 && PyErr_Occurred()) {
                Py_DECREF(seq);
                return -1;
            }
        }
        Py_DECREF(seq);
    }
    int infer = -1;
    Py_ssize_t known = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] == -1 && infer < 0) {
            infer = i;
        } else if (dims[i] < 0) {
            PyErr_SetString(PyExc_ValueError, "shape: dimensions must be >= 0, and at most one -1");
            return -1;
        } else if (dims[i] > 0 && known > PY_SSIZE_T_MAX / dims[i]) {
            PyErr_SetString(PyExc_ValueError, "shape is too large");
            return -1;
        } else {
            known *= dims[i];
        }
    }
    Py_ssize_t elements = avail / lay->itemsize;
    if (infer >= 0) {
        if (known == 0 || avail % lay->itemsize != 0 || elements % known != 0) {
            PyErr_Format(PyExc_ValueError,
                         "%zd bytes do not divide into whole rows of %zd element(s) of %zd bytes",
                         avail, known, lay->itemsize);
            return -1;
        }
        dims[infer] = elements / known;
        known = elements;
    }
    if (known > elements) {
        PyErr_Format(PyExc_ValueError,
                     "shape needs %zd bytes, the message has %zd (after the offset)",
                     known * lay->itemsize, avail);
        return -1;
    }
    lay->ndim = ndim;
    memcpy(lay->shape, dims, sizeof(Py_ssize_t) * (size_t)ndim);
    return 0;
}

/* ---- ArrayView ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    GuardHeadObject *owner; /* the RxGuard or RxBatchGuard holding the message */
    const char *data;
    tpy_layout lay;
    Py_ssize_t strides[TPY_MAX_NDIM]; /* in bytes, for the buffer protocol */
    Py_ssize_t nbytes;
} ArrayViewObject;

PyObject *tpy_array_view_new(GuardHeadObject *owner, const void *data, Py_ssize_t nbytes,
                             PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    tpy_state *st = PyType_GetModuleState(Py_TYPE(owner));
    PyObject *names[] = {st->kw_format, st->kw_shape, st->kw_offset};
    PyObject *a[3];
    if (tpy_parse_args(args, nargs, kwnames, names, 2, 3, 0, "view", a) < 0)
        return NULL;
    tpy_layout lay;
    if (a[0]) {
        if (parse_dtype(a[0], &lay) < 0)
            return NULL;
    } else {
        set_type(&lay, 'B');
    }
    Py_ssize_t offset = 0;
    if (a[2]) {
        offset = PyLong_AsSsize_t(a[2]);
        if (offset == -1 && PyErr_Occurred())
            return NULL;
        if (offset < 0 || offset > nbytes || offset % lay.itemsize != 0) {
            PyErr_Format(PyExc_ValueError,
                         "offset must be in [0, %zd] and a multiple of the element size (%zd), "
                         "so that elements stay aligned",
                         nbytes, lay.itemsize);
            return NULL;
        }
    }
    if (parse_shape(a[1], nbytes - offset, &lay) < 0 || owner_usable(owner) < 0)
        return NULL;
    ArrayViewObject *v = PyObject_New(ArrayViewObject, st->ArrayView_Type);
    if (!v)
        return NULL;
    v->owner = (GuardHeadObject *)Py_NewRef(owner);
    v->data = (const char *)data + offset;
    v->lay = lay;
    Py_ssize_t stride = lay.itemsize;
    for (int i = lay.ndim - 1; i >= 0; i--) {
        v->strides[i] = stride;
        stride *= lay.shape[i];
    }
    v->nbytes = stride;
    return (PyObject *)v;
}

static int view_getbuffer(ArrayViewObject *v, Py_buffer *view, int flags)
{
    view->obj = NULL;
    if (tpy_guard_check_export(v->owner, "message") < 0)
        return -1;
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "a received message is read-only");
        return -1;
    }
    view->obj = Py_NewRef(v);
    view->buf = (void *)v->data;
    view->len = v->nbytes;
    view->readonly = 1;
    view->itemsize = v->lay.itemsize;
    view->format = (flags & PyBUF_FORMAT) ? v->lay.format : NULL;
    view->ndim = v->lay.ndim;
    view->shape = (flags & PyBUF_ND) ? v->lay.shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? v->strides : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    tpy_guard_export(v->owner);
    return 0;
}

static void view_releasebuffer(ArrayViewObject *v, Py_buffer *view)
{
    tpy_guard_unexport(v->owner);
}

static PyObject *view_dlpack(ArrayViewObject *v, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    return export_tensor(v->owner, v->data, &v->lay, args, nargs, kwnames);
}

static PyObject *view_get_format(ArrayViewObject *v, void *c)
{
    return PyUnicode_FromString(v->lay.format);
}

static PyObject *view_get_shape(ArrayViewObject *v, void *c)
{
    PyObject *t = PyTuple_New(v->lay.ndim);
    for (int i = 0; t && i < v->lay.ndim; i++) {
        PyObject *n = PyLong_FromSsize_t(v->lay.shape[i]);
        if (!n) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, n);
    }
    return t;
}

static PyObject *view_get_ndim(ArrayViewObject *v, void *c)
{
    return PyLong_FromLong(v->lay.ndim);
}

static PyObject *view_get_itemsize(ArrayViewObject *v, void *c)
{
    return PyLong_FromSsize_t(v->lay.itemsize);
}

static PyObject *view_get_nbytes(ArrayViewObject *v, void *c)
{
    return PyLong_FromSsize_t(v->nbytes);
}

static Py_ssize_t view_len(ArrayViewObject *v)
{
    return v->lay.shape[0];
}

static PyObject *view_repr(ArrayViewObject *v)
{
    PyObject *shape = view_get_shape(v, NULL);
    if (!shape)
        return NULL;
    PyObject *r = PyUnicode_FromFormat("<tachyon.ArrayView format='%s' shape=%R%s>", v->lay.format,
                                       shape, v->owner->hold == TPY_ACTIVE ? "" : " released");
    Py_DECREF(shape);
    return r;
}

static void view_dealloc(ArrayViewObject *v)
{
    PyTypeObject *tp = Py_TYPE(v);
    Py_DECREF(v->owner);
    PyObject_Free(v);
    Py_DECREF(tp);
}

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
#define CAST_FN(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef view_methods[] = {
    {"__dlpack__", CAST_FN(view_dlpack), FASTKW,
     "__dlpack__(stream=None, *, max_version=None, dl_device=None, copy=None)\n\nThis view as a "
     "read-only DLPack tensor of its dtype and shape, zero-copy."},
    {"__dlpack_device__", tpy_dlpack_device, METH_NOARGS, "(1, 0): the CPU."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef view_getset[] = {
    {"format", (getter)view_get_format, NULL, "The element type, a struct format character.", NULL},
    {"shape", (getter)view_get_shape, NULL, "The shape (C order).", NULL},
    {"ndim", (getter)view_get_ndim, NULL, "The number of dimensions.", NULL},
    {"itemsize", (getter)view_get_itemsize, NULL, "Bytes per element.", NULL},
    {"nbytes", (getter)view_get_nbytes, NULL, "Bytes covered by the view.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot view_slots[] = {
    {Py_tp_doc, "A typed, read-only, zero-copy view of a received message (rx.view(...)): the "
                "buffer protocol with a format and shape (memoryview, numpy.asarray) and "
                "__dlpack__ (numpy.from_dlpack, torch.from_dlpack). Valid while the message "
                "is held; the message is held while an export of it lives."},
    {Py_tp_new, tpy_no_new},
    {Py_tp_dealloc, view_dealloc},
    {Py_tp_repr, view_repr},
    {Py_tp_methods, view_methods},
    {Py_tp_getset, view_getset},
    {Py_sq_length, view_len},
    {Py_bf_getbuffer, view_getbuffer},
    {Py_bf_releasebuffer, view_releasebuffer},
    {0, NULL},
};

static PyType_Spec view_spec = {
    .name = "tachyon.ArrayView",
    .basicsize = sizeof(ArrayViewObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = view_slots,
};

int tpy_dlpack_type_init(PyObject *module, tpy_state *st)
{
    st->ArrayView_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &view_spec, NULL);
    if (!st->ArrayView_Type)
        return -1;
    return PyModule_AddObjectRef(module, "ArrayView", (PyObject *)st->ArrayView_Type);
}
