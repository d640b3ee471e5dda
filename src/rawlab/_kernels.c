/* rawlab._kernels: the sequential loops of the columnar fast path, compiled.
 *
 * Everything else of that path is numpy over whole columns; these are the loops numpy
 * cannot express and Python walks at ~0.3 µs a step (issue 15, bench/read/README.md):
 *
 *   pcap_chain(chunk, rows, big, limit, at) -> (n, end, over)
 *       walk the record chain of a pcap chunk (rawlab.decode.columns._pcap_chain)
 *   pcapng_epbs(chunk, pos, big, nif, max_block, out) -> (n, end)
 *       walk a run of plain pcapng EPBs (rawlab.decode.columns.BatchSource._blocks)
 *   sums(buf, start, end, out)
 *       the unfolded sums of big-endian 16-bit words of byte ranges (checksums)
 *   format_rows(template, columns) -> list[bytes]
 *       `template % row` for every row of equal-length columns (int64 or object arrays),
 *       for the %d/%u/%x/%s conversions with '0' flag and width the line templates use
 *
 * Plain C on the buffer protocol (no numpy headers): it builds with gcc and Python's
 * headers alone (setup.sh installs both), and imports in microseconds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static int
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

static inline uint32_t
rd32(const unsigned char *p, int big)
{
    if (big)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* ---- pcap_chain --------------------------------------------------------------------- */

PyDoc_STRVAR(pcap_chain_doc,
"pcap_chain(chunk, rows, big, limit, at) -> (n, end, over)\n\n"
"The pcap records `chunk` holds whole from its start, `rows` at most: their offsets\n"
"are written to `at` (int64, room for `rows`); n of them, the next one starts at\n"
"`end`; `over` is that one's captured length when it is over `limit` (the file is\n"
"broken there), else None. A record over `limit` ends the walk before it.");

static PyObject *
pcap_chain(PyObject *self, PyObject *args)
{
    PyObject *chunk_o, *at_o;
    Py_ssize_t rows;
    int big;
    unsigned long long limit;
    if (!PyArg_ParseTuple(args, "OnpKO", &chunk_o, &rows, &big, &limit, &at_o))
        return NULL;
    Py_buffer chunk, at;
    if (get_buffer(chunk_o, &chunk, 0, 0, "chunk") < 0)
        return NULL;
    if (get_buffer(at_o, &at, 1, 8, "at") < 0) {
        PyBuffer_Release(&chunk);
        return NULL;
    }
    if (rows > at.len / 8)
        rows = at.len / 8;
    const unsigned char *p = chunk.buf;
    int64_t *out = at.buf;
    Py_ssize_t n = chunk.len, pos = 0, k = 0;
    PyObject *over = Py_None;
    while (k < rows && pos + 16 <= n) {
        uint32_t incl = rd32(p + pos + 8, big);
        if (incl > limit)
            break;
        if (pos + 16 + (Py_ssize_t)incl > n)
            break;
        out[k++] = pos;
        pos += 16 + (Py_ssize_t)incl;
    }
    PyObject *over_o = NULL;
    if (pos + 16 <= n) {
        uint32_t incl = rd32(p + pos + 8, big);
        if (incl > limit)
            over = over_o = PyLong_FromUnsignedLong(incl);
    }
    PyBuffer_Release(&chunk);
    PyBuffer_Release(&at);
    if (over == NULL)
        return NULL;
    PyObject *res = Py_BuildValue("nnO", k, pos, over);
    Py_XDECREF(over_o);
    return res;
}

/* ---- pcapng_epbs -------------------------------------------------------------------- */

static inline uint32_t
rd16(const unsigned char *p, int big)
{
    return big ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

PyDoc_STRVAR(pcapng_epbs_doc,
"pcapng_epbs(chunk, pos, big, nif, max_block, out) -> (n, end)\n\n"
"The run of plain Enhanced Packet Blocks at chunk[pos:] (whole, well-formed, interface\n"
"below nif, no option but epb_flags): one row of out (int64, shape (m, 7)) each, as\n"
"(data offset, interface, timestamp high, low, caplen, wirelen, direction), m at most.\n"
"The walk stops before the first block that is anything else, for the caller to take:\n"
"n rows were written, the next block starts at end.");

#define PCAPNG_EPB 6

static PyObject *
pcapng_epbs(PyObject *self, PyObject *args)
{
    PyObject *chunk_o, *out_o;
    Py_ssize_t pos;
    int big;
    unsigned long nif, max_block;
    if (!PyArg_ParseTuple(args, "OnpkkO", &chunk_o, &pos, &big, &nif, &max_block, &out_o))
        return NULL;
    Py_buffer chunk, out;
    if (get_buffer(chunk_o, &chunk, 0, 0, "chunk") < 0)
        return NULL;
    if (get_buffer(out_o, &out, 1, 8, "out") < 0) {
        PyBuffer_Release(&chunk);
        return NULL;
    }
    const unsigned char *p = chunk.buf;
    int64_t *o = out.buf;
    Py_ssize_t n = chunk.len, m = out.len / (7 * 8), k = 0;
    if (pos < 0)
        pos = n;
    while (k < m && pos + 12 <= n) {
        const unsigned char *b = p + pos;
        uint32_t btype = rd32(b, big), blen = rd32(b + 4, big);
        if (btype != PCAPNG_EPB || blen < 32 || blen % 4 || blen > max_block)
            break;
        Py_ssize_t end = pos + (Py_ssize_t)blen;
        if (end > n || rd32(p + end - 4, big) != blen)
            break;
        uint32_t iface = rd32(b + 8, big), caplen = rd32(b + 20, big);
        if (iface >= nif || caplen > blen - 32)
            break;
        Py_ssize_t opt_at = pos + 28 + (((Py_ssize_t)caplen + 3) & ~(Py_ssize_t)3);
        Py_ssize_t rest = end - 4 - opt_at;
        uint32_t flags = 0;
        if (rest) {
            if (rest != 8 && rest != 12)
                break;
            if (rd16(p + opt_at, big) != 2 || rd16(p + opt_at + 2, big) != 4)
                break;
            if (rest == 12 && rd32(p + opt_at + 8, big) != 0)
                break;
            flags = rd32(p + opt_at + 4, big);
        }
        int64_t *row = o + 7 * k++;
        row[0] = pos + 28;
        row[1] = iface;
        row[2] = rd32(b + 12, big);
        row[3] = rd32(b + 16, big);
        row[4] = caplen;
        row[5] = rd32(b + 24, big);
        row[6] = flags & 3;
        pos = end;
    }
    PyBuffer_Release(&chunk);
    PyBuffer_Release(&out);
    return Py_BuildValue("nn", k, pos);
}

/* ---- sums --------------------------------------------------------------------------- */

PyDoc_STRVAR(sums_doc,
"sums(buf, start, end, out)\n\n"
"For each row i, the sum (not folded) of the big-endian 16-bit words of\n"
"buf[start[i]:end[i]] (an odd length padded with a zero byte) into out[i] (uint64).\n"
"start and end are int64 arrays of one length; every range must lie inside buf.");

static uint64_t
range_sum(const unsigned char *p, Py_ssize_t len)
{
    uint64_t hi = 0, lo = 0;
    Py_ssize_t i = 0;
    for (; i + 1 < len; i += 2) {
        hi += p[i];
        lo += p[i + 1];
    }
    if (i < len)
        hi += p[i];
    return (hi << 8) + lo;
}

static PyObject *
sums(PyObject *self, PyObject *args)
{
    PyObject *buf_o, *start_o, *end_o, *out_o;
    if (!PyArg_ParseTuple(args, "OOOO", &buf_o, &start_o, &end_o, &out_o))
        return NULL;
    Py_buffer buf, st, en, out;
    if (get_buffer(buf_o, &buf, 0, 0, "buf") < 0)
        return NULL;
    if (get_buffer(start_o, &st, 0, 8, "start") < 0)
        goto f1;
    if (get_buffer(end_o, &en, 0, 8, "end") < 0)
        goto f2;
    if (get_buffer(out_o, &out, 1, 8, "out") < 0)
        goto f3;
    Py_ssize_t rows = st.len / 8;
    if (en.len / 8 != rows || out.len / 8 != rows) {
        PyErr_SetString(PyExc_ValueError, "sums: start, end and out differ in length");
        goto f4;
    }
    const int64_t *s = st.buf, *e = en.buf;
    uint64_t *o = out.buf;
    for (Py_ssize_t i = 0; i < rows; i++) {
        if (s[i] < 0 || e[i] < s[i] || e[i] > buf.len) {
            PyErr_Format(PyExc_ValueError, "sums: row %zd: range %lld:%lld outside %zd bytes",
                         i, (long long)s[i], (long long)e[i], buf.len);
            goto f4;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *b = buf.buf;
    for (Py_ssize_t i = 0; i < rows; i++)
        o[i] = range_sum(b + s[i], (Py_ssize_t)(e[i] - s[i]));
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    PyBuffer_Release(&en);
    PyBuffer_Release(&st);
    PyBuffer_Release(&buf);
    Py_RETURN_NONE;
f4:
    PyBuffer_Release(&out);
f3:
    PyBuffer_Release(&en);
f2:
    PyBuffer_Release(&st);
f1:
    PyBuffer_Release(&buf);
    return NULL;
}

/* ---- format_rows -------------------------------------------------------------------- */

enum { CONV_D, CONV_U, CONV_X, CONV_S, CONV_R };

typedef struct {
    Py_ssize_t lit_start, lit_len;  /* the literal text before the conversion */
    int conv, width, zero;
} spec_t;

typedef struct {
    char *p;
    Py_ssize_t len, cap;
} sbuf_t;

static int
grow(sbuf_t *b, Py_ssize_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    char *p = PyMem_Realloc(b->p, cap);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static int
put_int(sbuf_t *b, int64_t v, int conv, int width, int zero)
{
    char tmp[32];
    int n = 0, neg = 0;
    uint64_t u;
    if (conv == CONV_D && v < 0) {
        neg = 1;
        u = (uint64_t)0 - (uint64_t)v;
    } else {
        u = (uint64_t)v;
    }
    if (conv == CONV_X) {
        do {
            tmp[n++] = "0123456789abcdef"[u & 15];
            u >>= 4;
        } while (u);
    } else {
        do {
            tmp[n++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
    }
    int len = n + neg;
    int pad = width > len ? width - len : 0;
    if (grow(b, len + pad) < 0)
        return -1;
    char *o = b->p + b->len;
    if (!zero)
        for (int i = 0; i < pad; i++)
            *o++ = ' ';
    if (neg)
        *o++ = '-';
    if (zero)
        for (int i = 0; i < pad; i++)
            *o++ = '0';
    while (n)
        *o++ = tmp[--n];
    b->len = o - b->p;
    return 0;
}

static int
put_bytes(sbuf_t *b, const char *s, Py_ssize_t n, int width)
{
    Py_ssize_t pad = width > n ? width - n : 0;
    if (grow(b, n + pad) < 0)
        return -1;
    memset(b->p + b->len, ' ', pad);
    memcpy(b->p + b->len + pad, s, n);
    b->len += n + pad;
    return 0;
}

/* the conversions of `t`; -1 (and an exception) when it holds one this module lacks */
static Py_ssize_t
parse_template(const char *t, Py_ssize_t len, spec_t *specs, Py_ssize_t most,
               Py_ssize_t *tail_start)
{
    Py_ssize_t k = 0, lit = 0, i = 0;
    while (i < len) {
        if (t[i] != '%') {
            i++;
            continue;
        }
        if (i + 1 < len && t[i + 1] == '%') {
            PyErr_SetString(PyExc_ValueError, "format_rows: '%%' in a template");
            return -1;
        }
        Py_ssize_t j = i + 1;
        int zero = 0, width = 0;
        if (j < len && t[j] == '0') {
            zero = 1;
            j++;
        }
        while (j < len && t[j] >= '0' && t[j] <= '9' && width < 1000)
            width = width * 10 + (t[j++] - '0');
        if (j >= len || k >= most) {
            PyErr_SetString(PyExc_ValueError, "format_rows: a template this module cannot take");
            return -1;
        }
        int conv;
        switch (t[j]) {
        case 'd': case 'i': conv = CONV_D; break;
        case 'u': conv = CONV_U; break;
        case 'x': conv = CONV_X; break;
        case 's': conv = CONV_S; break;
        case 'r': conv = CONV_R; break;
        default:
            PyErr_Format(PyExc_ValueError, "format_rows: conversion '%c' not taken", t[j]);
            return -1;
        }
        specs[k].lit_start = lit;
        specs[k].lit_len = i - lit;
        specs[k].conv = conv;
        specs[k].width = width;
        specs[k].zero = zero;
        k++;
        i = lit = j + 1;
    }
    *tail_start = lit;
    return k;
}

#define MOST_SPECS 256

PyDoc_STRVAR(format_rows_doc,
"format_rows(template, columns) -> list[bytes]\n\n"
"[template % row for row in zip(*columns)] for a bytes template of %d/%i/%u/%x/%s/%r\n"
"conversions (with an optional '0' flag and width): a %s column is an object array\n"
"of bytes, a %r column a float64 array (repr of each float), every other an int64\n"
"array (%u and %x of a negative value are not taken: ValueError).");

static PyObject *
format_rows(PyObject *self, PyObject *args)
{
    PyObject *tmpl_o, *cols_o;
    if (!PyArg_ParseTuple(args, "SO", &tmpl_o, &cols_o))
        return NULL;
    const char *t = PyBytes_AS_STRING(tmpl_o);
    Py_ssize_t tlen = PyBytes_GET_SIZE(tmpl_o), tail;
    spec_t specs[MOST_SPECS];
    Py_ssize_t k = parse_template(t, tlen, specs, MOST_SPECS, &tail);
    if (k < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(cols_o, "format_rows: columns must be a sequence");
    if (!seq)
        return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != k) {
        PyErr_Format(PyExc_ValueError, "format_rows: %zd conversions, %zd columns", k,
                     PySequence_Fast_GET_SIZE(seq));
        Py_DECREF(seq);
        return NULL;
    }
    Py_buffer views[MOST_SPECS];
    Py_ssize_t got = 0, rows = -1;
    PyObject *res = NULL;
    sbuf_t b = {NULL, 0, 0};
    for (; got < k; got++) {
        PyObject *col = PySequence_Fast_GET_ITEM(seq, got);
        int is_s = specs[got].conv == CONV_S;
        if (get_buffer(col, &views[got], 0, 8, "column") < 0)
            goto done;
        const char *f = views[got].format ? views[got].format : "B";
        if (*f == '<' || *f == '=' || *f == '@')
            f++;
        int is_r = specs[got].conv == CONV_R;
        int fmt_ok = is_s ? (*f == 'O') : is_r ? (*f == 'd') :
                     (*f == 'q' || *f == 'l' || *f == 'n');
        Py_ssize_t r = views[got].len / 8;
        if (!fmt_ok || (rows >= 0 && r != rows)) {
            PyErr_Format(PyExc_TypeError, "format_rows: column %zd: %s", got,
                         fmt_ok ? "its length differs" :
                         is_s ? "an object array wanted" : is_r ? "a float64 array wanted" :
                         "an int64 array wanted");
            got++;
            goto done;
        }
        rows = r;
    }
    if (rows < 0)
        rows = 0;
    res = PyList_New(rows);
    if (!res)
        goto done;
    for (Py_ssize_t i = 0; i < rows; i++) {
        b.len = 0;
        for (Py_ssize_t j = 0; j < k; j++) {
            spec_t *s = &specs[j];
            if (grow(&b, s->lit_len) < 0)
                goto fail;
            memcpy(b.p + b.len, t + s->lit_start, s->lit_len);
            b.len += s->lit_len;
            if (s->conv == CONV_S) {
                PyObject *v = ((PyObject **)views[j].buf)[i];
                if (!v || !PyBytes_Check(v)) {
                    PyErr_Format(PyExc_TypeError, "format_rows: row %zd column %zd: bytes "
                                 "wanted", i, j);
                    goto fail;
                }
                if (put_bytes(&b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), s->width) < 0)
                    goto fail;
            } else if (s->conv == CONV_R) {
                char *r = PyOS_double_to_string(((double *)views[j].buf)[i], 'r', 0,
                                                Py_DTSF_ADD_DOT_0, NULL);
                if (!r)
                    goto fail;
                int bad = put_bytes(&b, r, (Py_ssize_t)strlen(r), s->width);
                PyMem_Free(r);
                if (bad < 0)
                    goto fail;
            } else {
                int64_t v = ((int64_t *)views[j].buf)[i];
                if (v < 0 && s->conv != CONV_D) {
                    PyErr_Format(PyExc_ValueError, "format_rows: row %zd column %zd: "
                                 "negative value for %%u/%%x", i, j);
                    goto fail;
                }
                if (put_int(&b, v, s->conv, s->width, s->zero) < 0)
                    goto fail;
            }
        }
        if (grow(&b, tlen - tail) < 0)
            goto fail;
        memcpy(b.p + b.len, t + tail, tlen - tail);
        b.len += tlen - tail;
        PyObject *line = PyBytes_FromStringAndSize(b.p, b.len);
        if (!line)
            goto fail;
        PyList_SET_ITEM(res, i, line);
    }
    goto done;
fail:
    Py_CLEAR(res);
done:
    for (Py_ssize_t j = 0; j < got; j++)
        if (views[j].obj)
            PyBuffer_Release(&views[j]);
    PyMem_Free(b.p);
    Py_DECREF(seq);
    return res;
}

static PyMethodDef methods[] = {
    {"pcap_chain", pcap_chain, METH_VARARGS, pcap_chain_doc},
    {"pcapng_epbs", pcapng_epbs, METH_VARARGS, pcapng_epbs_doc},
    {"sums", sums, METH_VARARGS, sums_doc},
    {"format_rows", format_rows, METH_VARARGS, format_rows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "rawlab._kernels",
    "The sequential loops of the columnar fast path, compiled (see _kernels.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    return PyModule_Create(&module);
}
