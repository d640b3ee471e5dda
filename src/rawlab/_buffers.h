/* The helpers rawlab's compiled modules share (_kernels.c, _tcp_summary.c,
 * _tcp_sequence.c): buffers by the buffer protocol, columns by name, a slotted class's
 * field offsets. */
#ifndef RAWLAB_BUFFERS_H
#define RAWLAB_BUFFERS_H

#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* a C-contiguous buffer of `itemsize`-byte items (0: any) */
static inline int
get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    if (itemsize && view->itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s: items of %zd bytes wanted, got %zd", what,
                     itemsize, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* get_buffer's, of integers (a float or object array of the same item size would be read
 * as garbage) */
static inline int
get_ints(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize, const char *what)
{
    if (get_buffer(obj, view, writable, itemsize, what) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
#if PY_LITTLE_ENDIAN
    if (*f == '<' || *f == '=' || *f == '@')  /* (native order only: '>' would be garbage) */
#else
    if (*f == '>' || *f == '!' || *f == '=' || *f == '@')
#endif
        f++;
    if (!f[0] || f[1] || !strchr("bBhHiIlLqQ", f[0])) {
        PyErr_Format(PyExc_TypeError, "%s: integers wanted, got format '%s'", what,
                     view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* a column wanted by name, with its item size */
typedef struct {
    const char *name;
    Py_ssize_t size;
} want_t;

static inline uint64_t
col_at(const Py_buffer *v, Py_ssize_t i, Py_ssize_t size)
{
    switch (size) {  /* (a constant where the column is named: the switch folds away) */
    case 1: return ((const uint8_t *)v->buf)[i];
    case 2: return ((const uint16_t *)v->buf)[i];
    case 4: return ((const uint32_t *)v->buf)[i];
    default: return ((const uint64_t *)v->buf)[i];
    }
}

/* The offsets of a slotted class's fields `names` (its member descriptors, of its own
 * layout: a class that only shows another's descriptors is refused), into `off`; -1 and
 * a TypeError naming `who` when one is not an object slot of t's. */
static inline int
slot_offsets(PyTypeObject *t, const char *const *names, int n, Py_ssize_t *off,
             const char *who)
{
    for (int k = 0; k < n; k++) {
        PyObject *d = PyObject_GetAttrString((PyObject *)t, names[k]);
        PyMemberDef *m = d && Py_IS_TYPE(d, &PyMemberDescr_Type)
                         ? ((PyMemberDescrObject *)d)->d_member : NULL;
        int ok = m && m->type == T_OBJECT_EX && PyType_IsSubtype(t, PyDescr_TYPE(d))
                 && m->offset >= (Py_ssize_t)sizeof(PyObject)
                 && m->offset + (Py_ssize_t)sizeof(PyObject *) <= t->tp_basicsize
                 && !t->tp_itemsize;
        if (ok)
            off[k] = m->offset;
        Py_XDECREF(d);
        if (!ok) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: %s.%s is not a slot", who, t->tp_name,
                         names[k]);
            return -1;
        }
    }
    return 0;
}

#endif
