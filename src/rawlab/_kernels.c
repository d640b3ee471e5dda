/* rawlab._kernels: the sequential loops of the columnar fast path, compiled.
 *
 * What is built on the columns is numpy; these are the loops numpy cannot express (a
 * record chain, a header whose fields lie where the header before says) or expresses at
 * ~0.5 µs a row in a few hundred whole-column calls (issue 15, bench/tcp/README.md):
 *
 *   groups(cols, rep, inv) -> k
 *       the distinct tuples of columns, numbered as they first appear (a hash table)
 *   buffer(n) -> bytearray
 *       n bytes not zeroed first, for a reader that overwrites them (rawlab.pcap.reader)
 *   heap(mmap_threshold, trim_threshold) -> bool
 *       glibc's malloc told to keep freed memory for reuse (rawlab.console.run)
 *   pcap_chain(chunk, rows, big, limit, at, hdr) -> (n, end, over)
 *       walk the record chain of a pcap chunk (rawlab.decode.columns._pcap_chain)
 *   pcapng_epbs(chunk, pos, big, nif, max_block, out) -> (n, end)
 *       walk a run of plain pcapng EPBs (rawlab.decode.columns.BatchSource._blocks)
 *   extract(buf, off, caplen, wirelen, linktype, consts, ext, optlen, columns, codes,
 *           ports) -> layouts
 *       the columns of the common shapes, one pass a row, checksum verdicts, TCP option
 *       layouts and the application ports included
 *       (rawlab.decode.columns._extract)
 *   relative(key, rev, syn, seq, ack, base_a, base_b, state, out_seq, out_ack, out_base)
 *       tcpdump's relative sequence numbers, row by row (rawlab.present.columns)
 *   tcpdump_lines(odd, cols, buf, layouts, flag_text, head, us) -> bytes
 *       the one-line view of a batch's rows the columns hold (rawlab.present.columns)
 *   lines(odd, pieces, lo, hi) -> bytes
 *       the text of a batch's rows in order: `template % row` of each piece's columns
 *       for its rows (the %d/%u/%x/%s/%r conversions the templates use), odd[row] for
 *       every other row (rawlab.present.columns)
 *   tcp_options(raw) -> dict
 *       the options summary of a TCP header's option bytes (rawlab.decode.tcp)
 *   tcp_fields(rows, tcp, cols, buf, verdicts, odd) -> list
 *       what the exact analyser reads of each row, from the columns where they hold the
 *       TCP segment (rawlab.analysis.tcp.frontend)
 *   segments_json(segments, flags, analysis, slow) -> str
 *       `rawlab tcp --json`'s segment records of a list of the exact analyser's Segments
 *       (rawlab.present.tcp.segments_json)
 *   FlowReader(et_at, ip_at, sweep, tcp, udp, slow)(buf, start, caplen, ts_ns)
 *       a frame's process attribution entry: the flow's raw key looked up where the
 *       frame lies, `slow` asked for the rest (rawlab.analysis.processes.Attribution)
 *   fd_sockets(fd_dir) -> [(fd, inode)] or None
 *       the sockets one process holds, read from /proc/PID/fd without the interpreter
 *       lock (rawlab.sockets.proc.socket_fds: a thread asks while the capture runs)
 *   socket_inode(path) -> int
 *       the socket inode one /proc/PID/fd/FD link names (rawlab.sockets.proc)
 *   inet_diag_socket(payload) -> (state, inode, uid, cookie, cgroup_id) or None
 *       what one inet_diag_msg says of its socket (rawlab.sockets.diag.inet_socket)
 *   diag_find(fd, seq, request) -> (state, inode, uid, cookie, cgroup_id) or None
 *       one exact sock_diag look-up, the lock held (rawlab.sockets.diag.DiagLookup)
 *   diag_destroyed(buf) -> [(family, protocol, local, lport, remote, rport, cookie)]
 *       the sock_diag destroy messages of one datagram (rawlab.sockets.diag.DestroyWatch)
 *   ring_epbs(mm, cur, cfg, plain, at, tail_of, st, out) -> (matched, stop, ts, ifindex)
 *       `capture -w`'s EPBs made from a TPACKET_V3 block where its frames lie, each
 *       frame's attribution asked of a FlowReader in the same loop
 *       (rawlab.pipeline.write_ring)
 *
 * Plain C on the buffer protocol (no numpy headers): it builds with gcc and Python's
 * headers alone (setup.sh installs both), and imports in microseconds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <poll.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/uio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "_buffers.h"
#include "_diag.h"

static inline uint32_t
rd32(const unsigned char *p, int big)
{
    if (big)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* ---- pcap_chain --------------------------------------------------------------------- */

PyDoc_STRVAR(pcap_chain_doc,
"pcap_chain(chunk, rows, big, limit, at, hdr) -> (n, end, over)\n\n"
"The pcap records `chunk` holds whole from its start, `rows` at most: their offsets\n"
"are written to `at` (int64, room for `rows`) and their headers' four fields (seconds,\n"
"fraction, captured and original length) to `hdr` (int64, rows x 4); n of them, the\n"
"next one starts at `end`; `over` is that one's captured length when it is over\n"
"`limit` (the file is broken there), else None. A record over `limit` ends the walk\n"
"before it.");

static PyObject *
pcap_chain(PyObject *self, PyObject *args)
{
    PyObject *chunk_o, *at_o, *hdr_o;
    Py_ssize_t rows;
    int big;
    unsigned long long limit;
    if (!PyArg_ParseTuple(args, "OnpKOO", &chunk_o, &rows, &big, &limit, &at_o, &hdr_o))
        return NULL;
    Py_buffer chunk, at, hdr;
    if (get_buffer(chunk_o, &chunk, 0, 0, "chunk") < 0)
        return NULL;
    if (get_buffer(at_o, &at, 1, 8, "at") < 0) {
        PyBuffer_Release(&chunk);
        return NULL;
    }
    if (get_buffer(hdr_o, &hdr, 1, 8, "hdr") < 0) {
        PyBuffer_Release(&at);
        PyBuffer_Release(&chunk);
        return NULL;
    }
    if (rows > at.len / 8)
        rows = at.len / 8;
    if (rows > hdr.len / 32)
        rows = hdr.len / 32;
    const unsigned char *p = chunk.buf;
    int64_t *out = at.buf, *h = hdr.buf;
    Py_ssize_t n = chunk.len, pos = 0, k = 0;
    PyObject *over = Py_None;
    while (k < rows && pos + 16 <= n) {
        uint32_t incl = rd32(p + pos + 8, big);
        if (incl > limit)
            break;
        if (pos + 16 + (Py_ssize_t)incl > n)
            break;
        h[4 * k] = rd32(p + pos, big);
        h[4 * k + 1] = rd32(p + pos + 4, big);
        h[4 * k + 2] = incl;
        h[4 * k + 3] = rd32(p + pos + 12, big);
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
    PyBuffer_Release(&hdr);
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

/* ---- checksums --------------------------------------------------------------------- */

/* the sum (not folded) of the big-endian 16-bit words of p[0:len] (an odd length padded
 * with a zero byte) */
static uint64_t
range_sum(const unsigned char *p, Py_ssize_t len)
{
    uint64_t hi = 0, lo = 0;  /* the bytes at even offsets (a word's high byte), at odd */
    Py_ssize_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* eight bytes a step, each byte in a 16-bit lane; lanes are emptied every 256 steps,
     * before one could overflow (2.5x the byte loop) */
    const uint64_t M = 0x00FF00FF00FF00FFULL;
    while (i + 8 <= len) {
        uint64_t even = 0, odd = 0;
        Py_ssize_t stop = i + 8 * 256 < len ? i + 8 * 256 : len;
        for (; i + 8 <= stop; i += 8) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            even += x & M;
            odd += (x >> 8) & M;
        }
        for (int sh = 0; sh < 64; sh += 16) {
            hi += (even >> sh) & 0xFFFF;
            lo += (odd >> sh) & 0xFFFF;
        }
    }
#endif
    for (; i + 1 < len; i += 2) {
        hi += p[i];
        lo += p[i + 1];
    }
    if (i < len)
        hi += p[i];
    return (hi << 8) + lo;
}

/* ---- lines ------------------------------------------------------------------------- */

enum { CONV_D, CONV_U, CONV_X, CONV_S, CONV_R, CONV_PERCENT };

typedef struct {
    Py_ssize_t lit_start, lit_len;  /* the literal text before the conversion */
    int conv, width, zero;
    Py_ssize_t col;  /* the column it takes (none for %%) */
} spec_t;

/* the text being written: a bytes object grown in place (glibc's realloc moves the pages
 * of a large one without copying them), handed over at the end without a copy */
typedef struct {
    PyObject *obj;
    char *p;
    Py_ssize_t len, cap;
    int reused;  /* obj is the caller's bytearray: written from its start, never shrunk */
} sbuf_t;

static int grow_slow(sbuf_t *b, Py_ssize_t more);

/* room for `more` bytes (the test inline, the growing not) */
static inline int
grow(sbuf_t *b, Py_ssize_t more)
{
    return b->len + more <= b->cap ? 0 : grow_slow(b, more);
}

static int
grow_slow(sbuf_t *b, Py_ssize_t more)
{
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    if (b->reused) {
        if (PyByteArray_Resize(b->obj, cap) < 0)
            return -1;
        b->p = PyByteArray_AS_STRING(b->obj);
        b->cap = cap;
        return 0;
    }
    if (!b->obj)
        b->obj = PyBytes_FromStringAndSize(NULL, cap);
    else if (_PyBytes_Resize(&b->obj, cap) < 0)
        b->obj = NULL;  /* (freed by the resize) */
    if (!b->obj)
        return -1;
    b->p = PyBytes_AS_STRING(b->obj);
    b->cap = cap;
    return 0;
}

/* write into the caller's bytearray `out` (None: a new bytes object) */
static int
sbuf_start(sbuf_t *b, PyObject *out)
{
    b->obj = NULL;
    b->p = NULL;
    b->len = b->cap = 0;
    b->reused = 0;
    if (out == NULL || out == Py_None)
        return 0;
    if (!PyByteArray_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "out must be a bytearray or None");
        return -1;
    }
    Py_INCREF(out);
    b->obj = out;
    b->reused = 1;
    b->cap = PyByteArray_GET_SIZE(out);
    b->p = PyByteArray_AS_STRING(out);
    return 0;
}

/* the text written, as a bytes object (NULL and an exception when that fails); into a
 * caller's bytearray: the number of bytes written */
static PyObject *
sbuf_finish(sbuf_t *b)
{
    if (b->reused)  /* the length written; the bytearray keeps its size for the next */
        return PyLong_FromSsize_t(b->len);
    if (!b->obj)
        return PyBytes_FromStringAndSize(NULL, 0);
    PyObject *o = b->obj;
    b->obj = NULL;
    if (_PyBytes_Resize(&o, b->len) < 0)
        return NULL;
    return o;
}

static const char two_digits[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static inline int
put_int(sbuf_t *b, int64_t v, int conv, int width, int zero)
{
    char tmp[32];
    char *e = tmp + sizeof tmp, *d = e;  /* the digits, written backwards */
    int neg = 0;
    uint64_t u;
    if (conv == CONV_D && v < 0) {
        neg = 1;
        u = (uint64_t)0 - (uint64_t)v;
    } else {
        u = (uint64_t)v;
    }
    if (conv == CONV_X) {
        do {
            *--d = "0123456789abcdef"[u & 15];
            u >>= 4;
        } while (u);
    } else {
        while (u >= 100) {
            unsigned r = (unsigned)(u % 100);
            u /= 100;
            d -= 2;
            d[0] = two_digits[2 * r];
            d[1] = two_digits[2 * r + 1];
        }
        if (u >= 10) {
            d -= 2;
            d[0] = two_digits[2 * u];
            d[1] = two_digits[2 * u + 1];
        } else {
            *--d = (char)('0' + u);
        }
    }
    int n = (int)(e - d);
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
    memcpy(o, d, n);
    b->len = o + n - b->p;
    return 0;
}

static inline int
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
               Py_ssize_t *tail_start, Py_ssize_t *ncols)
{
    Py_ssize_t k = 0, lit = 0, i = 0;
    *ncols = 0;
    while (i < len) {
        if (t[i] != '%') {
            i++;
            continue;
        }
        if (k >= most) {
            PyErr_SetString(PyExc_ValueError, "lines: a template of too many conversions");
            return -1;
        }
        specs[k].lit_start = lit;
        specs[k].lit_len = i - lit;
        if (i + 1 < len && t[i + 1] == '%') {  /* a literal % */
            specs[k].conv = CONV_PERCENT;
            specs[k].width = specs[k].zero = 0;
            specs[k].col = -1;
            k++;
            i = lit = i + 2;
            continue;
        }
        Py_ssize_t j = i + 1;
        int zero = 0, width = 0;
        if (j < len && t[j] == '0') {
            zero = 1;
            j++;
        }
        while (j < len && t[j] >= '0' && t[j] <= '9' && width < 1000)
            width = width * 10 + (t[j++] - '0');
        if (j >= len) {
            PyErr_SetString(PyExc_ValueError, "lines: a template ending inside a conversion");
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
            PyErr_Format(PyExc_ValueError, "lines: conversion '%c' not taken", t[j]);
            return -1;
        }
        specs[k].conv = conv;
        specs[k].width = width;
        specs[k].zero = zero;
        specs[k].col = (*ncols)++;
        k++;
        i = lit = j + 1;
    }
    *tail_start = lit;
    return k;
}

#define MOST_SPECS 256

/* repr(v): a time in seconds with microseconds (1 <= v < 2**32) is its digits with the
 * trailing zeros cut, when that decimal reads back as v: the test is exact (v is m * 2**-k;
 * the decimal N / 10**6 reads back as v when it lies within half a unit of v's last bit,
 * ties to an even m), and no other string of 6 decimals or fewer can read back as v (a
 * double's spacing there is under 1e-6). Anything else is Python's own shortest repr. */
static int
put_repr(sbuf_t *b, double v, int width)
{
    if (v >= 1.0 && v < 4294967296.0) {
        double whole = floor(v);
        int64_t sec = (int64_t)whole, us = llround((v - whole) * 1e6);
        if (us >= 1000000) {
            sec += 1;
            us -= 1000000;
        }
        int ex;
        double f = frexp(v, &ex);  /* v = f * 2**ex, 0.5 <= f < 1 */
        int64_t m = (int64_t)ldexp(f, 53);  /* v = m * 2**(ex - 53), exactly */
        int k = 53 - ex;  /* 21 .. 52 */
        __int128 n = (__int128)(sec * 1000000 + us);
        __int128 d = (n << (k + 1)) - (__int128)m * 2000000;  /* 2 * 10**6 * 2**k * (D - v) */
        if (d < 0)
            d = -d;
        if (d < 1000000 || (d == 1000000 && !(m & 1))) {
            char digits[8];
            int nd = 6;
            for (int j = 5; j >= 0; j--) {
                digits[j] = (char)('0' + us % 10);
                us /= 10;
            }
            while (nd > 1 && digits[nd - 1] == '0')
                nd--;
            if (put_int(b, sec, CONV_D, 0, 0) < 0 || put_bytes(b, ".", 1, 0) < 0)
                return -1;
            return put_bytes(b, digits, nd, 0);
        }
    }
    char *r = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!r)
        return -1;
    int bad = put_bytes(b, r, (Py_ssize_t)strlen(r), width);
    PyMem_Free(r);
    return bad;
}

/* one piece of lines(): a template, its columns and the rows they are of */
typedef struct {
    const char *t;
    Py_ssize_t tlen, tail, k, ncols, m;
    spec_t specs[MOST_SPECS];
    Py_buffer views[MOST_SPECS], rows;
    Py_ssize_t got;  /* views held */
    int have_rows;
} piece_t;

static void
piece_release(piece_t *pc)
{
    for (Py_ssize_t j = 0; j < pc->got; j++)
        PyBuffer_Release(&pc->views[j]);
    pc->got = 0;
    if (pc->have_rows)
        PyBuffer_Release(&pc->rows);
    pc->have_rows = 0;
}

/* (template, columns, rows): the template parsed, every column's view held and checked */
static int
piece_open(piece_t *pc, PyObject *item, Py_ssize_t idx)
{
    PyObject *tmpl_o, *cols_o, *rows_o;
    pc->got = 0;
    pc->have_rows = 0;
    if (!PyTuple_Check(item) || !PyArg_ParseTuple(item, "SOO", &tmpl_o, &cols_o, &rows_o)) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "lines: piece %zd: (template, columns, rows) wanted",
                         idx);
        return -1;
    }
    pc->t = PyBytes_AS_STRING(tmpl_o);
    pc->tlen = PyBytes_GET_SIZE(tmpl_o);
    pc->k = parse_template(pc->t, pc->tlen, pc->specs, MOST_SPECS, &pc->tail, &pc->ncols);
    if (pc->k < 0)
        return -1;
    if (get_buffer(rows_o, &pc->rows, 0, 8, "rows") < 0)
        return -1;
    pc->have_rows = 1;
    pc->m = pc->rows.len / 8;
    PyObject *seq = PySequence_Fast(cols_o, "lines: columns must be a sequence");
    if (!seq)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != pc->ncols) {
        PyErr_Format(PyExc_ValueError, "lines: piece %zd: %zd conversions, %zd columns", idx,
                     pc->ncols, PySequence_Fast_GET_SIZE(seq));
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t q = 0; q < pc->k; q++) {
        Py_ssize_t j = pc->specs[q].col;
        if (j < 0)
            continue;
        if (get_buffer(PySequence_Fast_GET_ITEM(seq, j), &pc->views[j], 0, 8, "column") < 0) {
            Py_DECREF(seq);
            return -1;
        }
        pc->got = j + 1;
        int conv = pc->specs[q].conv;
        const char *f = pc->views[j].format ? pc->views[j].format : "B";
        if (*f == '<' || *f == '=' || *f == '@')
            f++;
        int ok = conv == CONV_S ? *f == 'O' : conv == CONV_R ? *f == 'd' :
                 (*f == 'q' || *f == 'l' || *f == 'n');
        if (!ok || pc->views[j].len / 8 != pc->m) {
            PyErr_Format(PyExc_TypeError, "lines: piece %zd column %zd: %s", idx, j,
                         ok ? "its length is not the rows'" :
                         conv == CONV_S ? "an object array wanted" :
                         conv == CONV_R ? "a float64 array wanted" : "an int64 array wanted");
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}

/* row i of the piece (the i-th of its rows) appended to b */
static int
piece_row(const piece_t *pc, Py_ssize_t i, sbuf_t *b)
{
    for (Py_ssize_t j = 0; j < pc->k; j++) {
        const spec_t *s = &pc->specs[j];
        if (grow(b, s->lit_len) < 0)
            return -1;
        memcpy(b->p + b->len, pc->t + s->lit_start, s->lit_len);
        b->len += s->lit_len;
        if (s->conv == CONV_PERCENT) {
            if (put_bytes(b, "%", 1, 0) < 0)
                return -1;
        } else if (s->conv == CONV_S) {
            PyObject *v = ((PyObject **)pc->views[s->col].buf)[i];
            if (!v || !PyBytes_Check(v)) {
                PyErr_Format(PyExc_TypeError, "lines: row %zd column %zd: bytes wanted", i, j);
                return -1;
            }
            if (put_bytes(b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), s->width) < 0)
                return -1;
        } else if (s->conv == CONV_R) {
            if (put_repr(b, ((double *)pc->views[s->col].buf)[i], s->width) < 0)
                return -1;
        } else {
            int64_t v = ((int64_t *)pc->views[s->col].buf)[i];
            if (v < 0 && s->conv != CONV_D) {
                PyErr_Format(PyExc_ValueError, "lines: row %zd column %zd: negative value "
                             "for %%u/%%x", i, j);
                return -1;
            }
            if (put_int(b, v, s->conv, s->width, s->zero) < 0)
                return -1;
        }
    }
    if (grow(b, pc->tlen - pc->tail) < 0)
        return -1;
    memcpy(b->p + b->len, pc->t + pc->tail, pc->tlen - pc->tail);
    b->len += pc->tlen - pc->tail;
    return 0;
}

PyDoc_STRVAR(lines_doc,
"lines(odd, pieces, lo=0, hi=len(odd), out=None) -> bytes | int\n\n"
"The text of rows lo..hi-1, in order: a row some piece names is that piece's\n"
"`template % row` of its columns; any other row is odd[row] (bytes, or None: nothing).\n"
"pieces: (template, columns, rows) each, rows an int64 array of row numbers in\n"
"[lo, hi) and every column as long as rows: an object array of bytes for %s, float64\n"
"for %r, int64 for %d/%i/%u/%x (each with an optional '0' flag and width; %u and %x of\n"
"a negative value are refused). The same as Python's `%` a row, without a bytes object\n"
"a row. With `out` (a bytearray) the text is written at its start, the bytearray grown\n"
"when it must (never shrunk: the next batch reuses its pages), and its length returned.");

static PyObject *
lines(PyObject *self, PyObject *args)
{
    PyObject *odd_o, *pieces_o, *out_o = Py_None;
    Py_ssize_t lo = 0, hi = -1;
    if (!PyArg_ParseTuple(args, "OO|nnO", &odd_o, &pieces_o, &lo, &hi, &out_o))
        return NULL;
    Py_buffer odd;
    if (get_buffer(odd_o, &odd, 0, sizeof(PyObject *), "odd") < 0)
        return NULL;
    const char *of = odd.format ? odd.format : "B";
    if (*of != 'O') {
        PyBuffer_Release(&odd);
        PyErr_SetString(PyExc_TypeError, "lines: odd must be an object array");
        return NULL;
    }
    PyObject **oddv = odd.buf;
    Py_ssize_t total_rows = odd.len / (Py_ssize_t)sizeof(PyObject *);
    if (hi < 0)
        hi = total_rows;
    PyObject *seq = NULL, *res = NULL;
    piece_t *pcs = NULL;
    sbuf_t b = {NULL, NULL, 0, 0, 0};
    Py_ssize_t npc = 0, opened = 0, n = hi - lo;
    int64_t *idx = NULL;  /* per row: its number in its piece */
    int32_t *owner = NULL;  /* per row: its piece, or -1 */
    if (lo < 0 || lo > hi || hi > total_rows) {
        PyErr_SetString(PyExc_ValueError, "lines: lo and hi must lie within odd");
        goto done;
    }
    if (sbuf_start(&b, out_o) < 0)
        goto done;
    seq = PySequence_Fast(pieces_o, "lines: pieces must be a sequence");
    if (!seq)
        goto done;
    npc = PySequence_Fast_GET_SIZE(seq);
    pcs = PyMem_Calloc(npc ? npc : 1, sizeof(piece_t));
    idx = PyMem_Malloc((n ? n : 1) * sizeof(int64_t));
    owner = PyMem_Malloc((n ? n : 1) * sizeof(int32_t));
    if (!pcs || !idx || !owner) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t r = 0; r < n; r++)
        owner[r] = -1;
    for (; opened < npc; opened++) {
        piece_t *pc = &pcs[opened];
        if (piece_open(pc, PySequence_Fast_GET_ITEM(seq, opened), opened) < 0) {
            opened++;
            goto done;
        }
        const int64_t *rows = pc->rows.buf;
        for (Py_ssize_t i = 0; i < pc->m; i++) {
            int64_t r = rows[i] - lo;
            if (r < 0 || r >= n) {
                PyErr_Format(PyExc_ValueError, "lines: row %lld outside %zd..%zd",
                             (long long)rows[i], lo, hi - 1);
                opened++;
                goto done;
            }
            if (owner[r] >= 0) {
                PyErr_Format(PyExc_ValueError, "lines: row %lld in two pieces", (long long)rows[i]);
                opened++;
                goto done;
            }
            owner[r] = (int32_t)opened;
            idx[r] = i;
        }
    }
    if (grow(&b, n * 128) < 0)  /* (a line is ~60-120 bytes: one allocation, no copy) */
        goto done;
    for (Py_ssize_t r = 0; r < n; r++) {
        if (owner[r] >= 0) {
            Py_ssize_t at = b.len;
            if (piece_row(&pcs[owner[r]], idx[r], &b) < 0)
                goto done;
            /* the first line says how long the rest will be (NDJSON: ~600 bytes) */
            if (at == 0 && grow(&b, (b.len + b.len / 8) * (n - r)) < 0)
                goto done;
            continue;
        }
        PyObject *v = oddv[lo + r];
        if (v == Py_None || v == NULL)
            continue;
        if (!PyBytes_Check(v)) {
            PyErr_Format(PyExc_TypeError, "lines: odd[%zd]: bytes or None wanted", lo + r);
            goto done;
        }
        if (put_bytes(&b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), 0) < 0)
            goto done;
    }
    res = sbuf_finish(&b);
done:
    for (Py_ssize_t j = 0; j < opened; j++)
        piece_release(&pcs[j]);
    Py_XDECREF(b.obj);
    PyMem_Free(pcs);
    PyMem_Free(idx);
    PyMem_Free(owner);
    Py_XDECREF(seq);
    PyBuffer_Release(&odd);
    return res;
}


/* ---- extract ------------------------------------------------------------------------ */

/* the output columns, in the order rawlab.decode.columns.KERNEL_COLUMNS names them, with
 * the item size each must have */
enum {
    ETH_TYPE, ETH_SRC, ETH_DST, VLAN_COUNT, VLAN1_TPID, VLAN1_TCI, VLAN2_TPID, VLAN2_TCI,
    SLL_PKTTYPE, SLL_HATYPE, SLL_HALEN, SLL_ADDR, SLL_IFINDEX, SLL2_RESERVED, ETHERTYPE,
    NET_OFFSET, IP4_IHL, IP4_TOS, IP4_TOTAL_LENGTH, IP4_ID, IP4_FLAGS, IP4_TTL, IP4_CHECKSUM,
    IP6_TRAFFIC_CLASS, IP6_FLOW_LABEL, IP6_HOP_LIMIT, IP6_PAYLOAD_LENGTH, IP_PROTO,
    IP_VERSION, SRC_HI, SRC_LO, DST_HI, DST_LO, COMPLETE, L4_OFFSET, L4_LENGTH, L4, SPORT,
    DPORT, TCP_SEQ, TCP_ACK, TCP_DATAOFS, TCP_RESERVED, TCP_FLAGS, TCP_WINDOW, L4_CHECKSUM,
    TCP_URGPTR, PAYLOAD_LENGTH, UDP_LENGTH, ICMP_TYPE_C, ICMP_CODE, ICMP_REST, ARP_OP, ARP_SHA,
    ARP_SPA, ARP_THA, ARP_TPA, ARP_LENGTH, L4_CSUM, CSUM_NOTES, IP4_CSUM_EXPECTED,
    L4_CSUM_EXPECTED, STATUS, TCP_OPT_LAYOUT, NCOLS
};
static const int col_size[NCOLS] = {
    2, 8, 8, 1, 2, 2, 2, 2,
    2, 2, 2, 8, 4, 2, 4,
    2, 1, 1, 2, 2, 1, 1, 2,
    1, 4, 1, 2, 2,
    1, 8, 8, 8, 8, 1, 2, 4, 1, 2,
    2, 4, 4, 1, 1, 2, 2, 2,
    2, 4, 2, 1, 1, 4, 2, 8,
    4, 8, 4, 4, 1, 1, 2,
    2, 1, 4,
};

/* the constants, as rawlab.decode.columns hands them over (KERNEL_CONSTANTS) */
enum {
    K_ETH, K_SLL, K_SLL2, K_RAW, K_IPV4, K_IPV6, K_TPID1, K_TPID2, K_TPID3, K_TPID4,
    K_ARPHRD_NETLINK, K_LINKTYPE, K_LINK, K_NETWORK, K_IP, K_TRUNCATED, K_TRANSPORT,
    K_OPTIONS, K_ICMP_TYPE, K_ARP_SHAPE, K_MAX_OPTS, K_OPTS_PAD, K_CSUM_GOOD,
    K_CSUM_UNVERIFIED, K_CSUM_BAD, K_CSUM_PARTIAL, K_NOTE_IP, K_NOTE_L4, K_CHECKSUM,
    K_APPLICATION, NCONSTS
};

typedef struct {
    const unsigned char *b;
    Py_ssize_t len;
} bytes_t;

/* reads past the buffer's end read zeros (as the numpy gathers over its zero padding) */
static inline uint64_t
B(const bytes_t *m, int64_t at)
{
    return at >= 0 && at < m->len ? m->b[at] : 0;
}
static inline uint64_t
U16(const bytes_t *m, int64_t at)
{
    if (at >= 0 && at + 2 <= m->len)
        return (uint64_t)m->b[at] << 8 | m->b[at + 1];
    return B(m, at) << 8 | B(m, at + 1);
}
static inline uint64_t
U32(const bytes_t *m, int64_t at)
{
    return U16(m, at) << 16 | U16(m, at + 2);
}
static inline uint64_t
UN(const bytes_t *m, int64_t at, int width)
{
    uint64_t v = 0;
    for (int i = 0; i < width; i++)
        v = v << 8 | B(m, at + i);
    return v;
}

static inline int64_t
pymod(int64_t a, int64_t m)
{
    int64_t r = a % m;
    return r < 0 ? r + m : r;
}

#define SET(c, v) do { \
        switch (col_size[c]) { \
        case 1: ((uint8_t *)cols[c])[i] = (uint8_t)(v); break; \
        case 2: ((uint16_t *)cols[c])[i] = (uint16_t)(v); break; \
        case 4: ((uint32_t *)cols[c])[i] = (uint32_t)(v); break; \
        default: ((uint64_t *)cols[c])[i] = (uint64_t)(v); break; \
        } \
    } while (0)

typedef struct {
    const bytes_t *m;
    const int64_t *k;
    const unsigned char *ext, *optlen;
    void **cols;
    unsigned char *codes;      /* the distinct option layouts' codes, MAX_OPTS each */
    int32_t *lay_index;        /* open addressing over them: layout + 1, 0 empty */
    int64_t lay_mask, nlay, last_lay;
    const unsigned char *ports; /* 65536 UDP then 65536 TCP: a port with an application
                                 * decoder (NULL: every port has one) */
} frames_t;

static inline int
codes_equal(const unsigned char *a, const unsigned char *b, int64_t most)
{
    for (int64_t j = 0; j < most; j += 8) {  /* (rows of codes are padded to 8 bytes) */
        uint64_t u, v;
        memcpy(&u, a + j, 8);
        memcpy(&v, b + j, 8);
        if (u != v)
            return 0;
    }
    return 1;
}

/* the number of a held option list's layout (its codes): new ones are added; most rows
 * have the row before's */
static int32_t
layout_of(frames_t *x, const unsigned char *codes)
{
    int64_t most = x->k[K_MAX_OPTS];
    if (x->last_lay >= 0 && codes_equal(x->codes + x->last_lay * most, codes, most))
        return (int32_t)x->last_lay;
    uint64_t h = 1469598103934665603ULL;
    for (int64_t j = 0; j < most && codes[j] != x->k[K_OPTS_PAD]; j++)
        h = (h ^ codes[j]) * 1099511628211ULL;
    for (int64_t at = (int64_t)(h & (uint64_t)x->lay_mask);; at = (at + 1) & x->lay_mask) {
        int32_t got = x->lay_index[at];
        if (!got) {
            memcpy(x->codes + x->nlay * most, codes, (size_t)most);
            x->lay_index[at] = (int32_t)(++x->nlay);
            return (int32_t)(x->last_lay = x->nlay - 1);
        }
        if (codes_equal(x->codes + (int64_t)(got - 1) * most, codes, most))
            return (int32_t)(x->last_lay = got - 1);
    }
}

/* the TCP option list at `start` (`ln` bytes): its codes (kind; SACK: 5 + 16 * blocks),
 * 1 when the columns do not hold it (decode/columns.py, _walk_options, row by row) */
static int
walk_options(const frames_t *x, int64_t start, int64_t ln, unsigned char *codes)
{
    const int64_t *k = x->k;
    int64_t p = 0;
    int done = 0, bad = 0;
    for (int step = 0; step < k[K_MAX_OPTS]; step++) {
        if (done || p >= ln)
            break;
        int kind = (int)B(x->m, start + p), klen = (int)B(x->m, start + p + 1);
        int eol = kind == 0, nop = kind == 1, other = !eol && !nop;
        int want = x->optlen[kind];
        int sack = other && kind == 5 && (klen == 10 || klen == 18 || klen == 26 || klen == 34);
        int okk = other && ((want > 0 && klen == want) || sack) && p + klen <= ln;
        if (other && !okk)
            bad = 1;
        codes[step] = (unsigned char)(sack ? 5 + 16 * ((klen - 2) / 8) : kind);
        p = nop ? p + 1 : okk ? p + klen : p;
        if (eol || bad)
            done = 1;
    }
    if (!done && p < ln)
        bad = 1;
    return bad;
}

/* one row while its columns are filled: what each layer leaves for the next */
typedef struct {
    Py_ssize_t i;
    int64_t o, cap, wire, lt;  /* the frame: where, captured, on the wire, link type */
    uint8_t st;  /* the first reason the row left the fast path (0: still fast) */
    int64_t net_at, net, ip, left;  /* the network header: offset, EtherType, where */
    int v4, v6, arp;
    int64_t hl4, tl4, pl6, nh6, proto;
    uint64_t src_hi, src_lo, dst_hi, dst_lo;
    int64_t l4_len, l4_cap, t;  /* the transport: IP's length, captured, where */
    int complete, tcp, udp, icmp4, icmp6, l4;
    uint64_t l4sum;
} row_t;

#define ROW_LEAVE(cond, why) do { if (!r->st && (cond)) r->st = (uint8_t)k[why]; } while (0)

/* Ethernet and up to two VLAN tags (more leave); Linux cooked v1/v2; raw IP */
static void
row_link(const frames_t *x, row_t *r)
{
    const bytes_t *m = x->m;
    const int64_t *k = x->k;
    void **cols = x->cols;
    Py_ssize_t i = r->i;
    int64_t o = r->o, cap = r->cap, lt = r->lt;
    int eth = lt == k[K_ETH];
    int64_t etype = (int64_t)U16(m, o + 12);
    SET(ETH_TYPE, eth ? etype : 0);
    int64_t tags = 0, off = 14;
    uint64_t tpid[2] = {0, 0}, tci[2] = {0, 0};
    ROW_LEAVE(eth && cap <= 14, K_LINK);
    for (int t = 0; eth && t < 3; t++) {
        int is_tag = etype == k[K_TPID1] || etype == k[K_TPID2] || etype == k[K_TPID3] ||
                     etype == k[K_TPID4];
        if (!is_tag)
            break;
        ROW_LEAVE(off + 4 > cap || t >= 2, K_LINK);
        if (t >= 2)
            break;
        tpid[t] = (uint64_t)etype;
        tci[t] = U16(m, o + off);
        etype = (int64_t)U16(m, o + off + 2);
        off += 4;
        tags++;
    }
    ROW_LEAVE(eth && cap <= off, K_LINK);
    if (eth) {
        r->net_at = off;
        r->net = etype;
    }
    SET(ETH_SRC, UN(m, o + 6, 6));
    SET(ETH_DST, UN(m, o, 6));
    SET(VLAN_COUNT, tags);
    SET(VLAN1_TPID, tpid[0]);
    SET(VLAN1_TCI, tci[0]);
    SET(VLAN2_TPID, tpid[1]);
    SET(VLAN2_TCI, tci[1]);
    int sll = lt == k[K_SLL], sll2 = lt == k[K_SLL2];
    uint64_t hatype = sll ? U16(m, o + 2) : sll2 ? U16(m, o + 8) : 0;
    uint64_t halen = sll ? U16(m, o + 4) : sll2 ? B(m, o + 11) : 0;
    uint64_t proto = sll ? U16(m, o + 14) : sll2 ? U16(m, o) : 0;
    ROW_LEAVE(sll && cap <= 16, K_LINK);
    ROW_LEAVE(sll2 && cap <= 20, K_LINK);
    ROW_LEAVE((sll || sll2) && (halen > 8 || hatype == (uint64_t)k[K_ARPHRD_NETLINK]), K_LINK);
    if (sll || sll2) {
        r->net_at = sll ? 16 : 20;
        r->net = (int64_t)proto;
    }
    SET(SLL_PKTTYPE, sll ? U16(m, o) : sll2 ? B(m, o + 10) : 0);
    SET(SLL_HATYPE, hatype);
    SET(SLL_HALEN, halen);
    SET(SLL_ADDR, sll ? UN(m, o + 6, 8) : sll2 ? UN(m, o + 12, 8) : 0);
    SET(SLL_IFINDEX, sll2 ? U32(m, o + 4) : 0);
    SET(SLL2_RESERVED, sll2 ? U16(m, o + 2) : 0);
    int raw = lt == k[K_RAW] || lt == k[K_IPV4] || lt == k[K_IPV6];
    if (raw) {
        int64_t ver0 = (int64_t)B(m, o) >> 4;
        r->net = (lt == k[K_IPV4] || (lt == k[K_RAW] && ver0 == 4)) ? 0x0800 :
                 (lt == k[K_IPV6] || ver0 == 6) ? 0x86DD : -1;
        ROW_LEAVE(r->net == -1 || cap == 0, K_LINK);
    }
    ROW_LEAVE(!(eth || sll || sll2 || raw), K_LINKTYPE);
    SET(ETHERTYPE, r->net);
    SET(NET_OFFSET, r->net_at);
    /* (locals: gcc tests v4 || v6 as one 8-byte load of the two fields just stored, a
     * store-forwarding stall that cost 12 % of this function) */
    int v4 = r->net == 0x0800, v6 = r->net == 0x86DD, arp = r->net == 0x0806;
    r->v4 = v4;
    r->v6 = v6;
    r->arp = arp;
    ROW_LEAVE(!(v4 || v6 || arp), K_NETWORK);
    r->ip = o + r->net_at;
    r->left = cap - r->net_at;
}

/* IPv4 (options allowed), IPv6 without extension headers; both: protocol, addresses,
 * where the transport header starts and ends */
static void
row_ip(const frames_t *x, row_t *r)
{
    const bytes_t *m = x->m;
    const int64_t *k = x->k;
    void **cols = x->cols;
    Py_ssize_t i = r->i;
    int64_t ip = r->ip, left = r->left;
    int v4 = r->v4, v6 = r->v6;
    int64_t vihl = (int64_t)B(m, ip), ihl = vihl & 15, frag = (int64_t)U16(m, ip + 6);
    r->hl4 = ihl * 4;
    r->tl4 = (int64_t)U16(m, ip + 2);
    if (v4) {
        ROW_LEAVE(vihl >> 4 != 4 || ihl < 5, K_IP);
        ROW_LEAVE(left < (r->hl4 > 20 ? r->hl4 : 20), K_TRUNCATED);
        ROW_LEAVE(r->tl4 == 0, K_IP);
        ROW_LEAVE(r->tl4 < r->hl4, K_IP);
        ROW_LEAVE((frag & 0x3FFF) != 0, K_IP);
    }
    SET(IP4_IHL, v4 ? ihl : 0);
    SET(IP4_TOS, v4 ? B(m, ip + 1) : 0);
    SET(IP4_TOTAL_LENGTH, v4 ? r->tl4 : 0);
    SET(IP4_ID, v4 ? U16(m, ip + 4) : 0);
    SET(IP4_FLAGS, v4 ? frag >> 13 : 0);
    SET(IP4_TTL, v4 ? B(m, ip + 8) : 0);
    SET(IP4_CHECKSUM, v4 ? U16(m, ip + 10) : 0);
    int64_t vtf = (int64_t)U32(m, ip);
    r->pl6 = (int64_t)U16(m, ip + 4);
    r->nh6 = (int64_t)B(m, ip + 6);
    if (v6) {
        ROW_LEAVE(vtf >> 28 != 6, K_IP);
        ROW_LEAVE(left < 40, K_TRUNCATED);
        ROW_LEAVE(r->pl6 == 0, K_IP);
        ROW_LEAVE(x->ext[r->nh6], K_IP);
    }
    SET(IP6_TRAFFIC_CLASS, v6 ? (vtf >> 20) & 0xFF : 0);
    SET(IP6_FLOW_LABEL, v6 ? vtf & 0xFFFFF : 0);
    SET(IP6_HOP_LIMIT, v6 ? B(m, ip + 7) : 0);
    SET(IP6_PAYLOAD_LENGTH, v6 ? r->pl6 : 0);
    r->proto = v4 ? (int64_t)B(m, ip + 9) : v6 ? r->nh6 : -1;
    SET(IP_PROTO, r->proto);
    SET(IP_VERSION, v4 ? 4 : v6 ? 6 : 0);
    r->src_hi = v6 ? UN(m, ip + 8, 8) : 0;
    r->src_lo = v6 ? UN(m, ip + 16, 8) : v4 ? U32(m, ip + 12) : 0;
    r->dst_hi = v6 ? UN(m, ip + 24, 8) : 0;
    r->dst_lo = v6 ? UN(m, ip + 32, 8) : v4 ? U32(m, ip + 16) : 0;
    SET(SRC_HI, r->src_hi);
    SET(SRC_LO, r->src_lo);
    SET(DST_HI, r->dst_hi);
    SET(DST_LO, r->dst_lo);
    int64_t net_at = r->net_at, cap = r->cap;
    int64_t l4_at = v4 ? net_at + r->hl4 : v6 ? net_at + 40 : 0;
    int64_t l4_end = v4 ? net_at + r->tl4 : v6 ? net_at + 40 + r->pl6 : 0;
    r->l4_len = l4_end - l4_at > 0 ? l4_end - l4_at : 0;
    int ipx = v4 || v6;
    ROW_LEAVE(ipx && r->l4_len == 0, K_IP);
    r->complete = cap >= l4_end;
    SET(COMPLETE, r->complete);
    ROW_LEAVE(ipx && cap < l4_end && r->wire <= cap, K_IP);
    r->l4_cap = (l4_end < cap ? l4_end : cap) - l4_at;
    SET(L4_OFFSET, l4_at);
    SET(L4_LENGTH, r->l4_len);
    r->tcp = ipx && r->proto == 6;
    r->udp = ipx && r->proto == 17;
    r->icmp4 = v4 && r->proto == 1;
    r->icmp6 = v6 && r->proto == 58;
    r->l4 = r->tcp || r->udp || r->icmp4 || r->icmp6;
    ROW_LEAVE(ipx && !r->l4, K_TRANSPORT);
    r->t = r->o + l4_at;
    SET(L4, r->tcp ? 6 : r->udp ? 17 : r->icmp4 ? 1 : r->icmp6 ? 58 : 0);
}

/* TCP (its option layout), UDP, ICMP/ICMPv6 echo */
static void
row_transport(frames_t *x, row_t *r)
{
    const bytes_t *m = x->m;
    const int64_t *k = x->k;
    void **cols = x->cols;
    Py_ssize_t i = r->i;
    int64_t t = r->t, l4_len = r->l4_len, l4_cap = r->l4_cap;
    int tcp = r->tcp, udp = r->udp, icmp = r->icmp4 || r->icmp6;
    int64_t offflags = (int64_t)U16(m, t + 12), doff = offflags >> 12, thl = doff * 4;
    if (tcp) {
        ROW_LEAVE(l4_cap < 20, K_TRUNCATED);
        ROW_LEAVE(doff < 5 || thl > l4_len, K_TRANSPORT);
        ROW_LEAVE(thl > l4_cap, K_TRUNCATED);
    }
    SET(SPORT, tcp || udp ? U16(m, t) : 0);
    SET(DPORT, tcp || udp ? U16(m, t + 2) : 0);
    SET(TCP_SEQ, tcp ? U32(m, t + 4) : 0);
    SET(TCP_ACK, tcp ? U32(m, t + 8) : 0);
    SET(TCP_DATAOFS, tcp ? doff : 0);
    SET(TCP_RESERVED, tcp ? (offflags >> 9) & 7 : 0);
    SET(TCP_FLAGS, tcp ? offflags & 0x1FF : 0);
    SET(TCP_WINDOW, tcp ? U16(m, t + 14) : 0);
    r->l4sum = tcp ? U16(m, t + 16) : udp ? U16(m, t + 6) : icmp ? U16(m, t + 2) : 0;
    SET(L4_CHECKSUM, r->l4sum);
    SET(TCP_URGPTR, tcp ? U16(m, t + 18) : 0);
    int64_t pay = tcp ? l4_len - thl : (udp || icmp) ? l4_len - 8 : 0;
    SET(PAYLOAD_LENGTH, pay > 0 ? pay : 0);
    int32_t layout = -1;
    if (tcp && !r->st && thl - 20 > 0) {
        unsigned char codes[256];
        memset(codes, (int)k[K_OPTS_PAD], (size_t)k[K_MAX_OPTS]);
        if (walk_options(x, t + 20, thl - 20, codes))
            r->st = (uint8_t)k[K_OPTIONS];
        else
            layout = layout_of(x, codes);
    }
    ((int32_t *)cols[TCP_OPT_LAYOUT])[i] = layout;
    int64_t ulen = (int64_t)U16(m, t + 4);
    ROW_LEAVE(udp && l4_cap < 8, K_TRUNCATED);
    ROW_LEAVE(udp && ulen != l4_len, K_TRANSPORT);
    SET(UDP_LENGTH, udp ? ulen : 0);
    int64_t ity = (int64_t)B(m, t);
    ROW_LEAVE(r->icmp4 && !(ity == 0 || ity == 8), K_ICMP_TYPE);
    ROW_LEAVE(r->icmp6 && !(ity == 128 || ity == 129), K_ICMP_TYPE);
    ROW_LEAVE(icmp && l4_cap < 8, K_TRUNCATED);
    SET(ICMP_TYPE_C, icmp ? ity : 0);
    SET(ICMP_CODE, icmp ? B(m, t + 1) : 0);
    SET(ICMP_REST, icmp ? U32(m, t + 4) : 0);
}

/* ARP for Ethernet and IPv4 (other hardware or protocol types leave) */
static void
row_arp(const frames_t *x, row_t *r)
{
    const bytes_t *m = x->m;
    const int64_t *k = x->k;
    void **cols = x->cols;
    Py_ssize_t i = r->i;
    int64_t a = r->ip;
    int arp = r->arp;
    int ok = arp && U16(m, a) == 1 && U16(m, a + 2) == 0x0800 && B(m, a + 4) == 6 &&
             B(m, a + 5) == 4;
    ROW_LEAVE(arp && !ok, K_ARP_SHAPE);
    ROW_LEAVE(arp && r->left < 28, K_TRUNCATED);
    SET(ARP_OP, arp ? U16(m, a + 6) : 0);
    SET(ARP_SHA, arp ? UN(m, a + 8, 6) : 0);
    SET(ARP_SPA, arp ? U32(m, a + 14) : 0);
    SET(ARP_THA, arp ? UN(m, a + 18, 6) : 0);
    SET(ARP_TPA, arp ? U32(m, a + 24) : 0);
    SET(ARP_LENGTH, arp ? r->left : 0);
}

/* the IPv4 header's checksum and the transport's (with its pseudo-header), of a row
 * still fast: their verdicts, and what a bad one should hold (rawlab.decode.checksum) */
static void
row_checksums(const frames_t *x, row_t *r)
{
    const bytes_t *m = x->m;
    const int64_t *k = x->k;
    void **cols = x->cols;
    Py_ssize_t i = r->i;
    uint64_t verdict = 0, notes = 0, ip_exp = 0, l4_exp = 0;
    if (!r->st && r->v4) {
        int64_t s = (int64_t)range_sum(m->b + r->ip, r->hl4);
        if ((uint64_t)s % 0xFFFFu != 0 || s == 0) {  /* (unsigned: no idiv) */
            notes |= (uint64_t)k[K_NOTE_IP];
            int64_t rest = pymod(s - (int64_t)U16(m, r->ip + 10), 0xFFFF);
            ip_exp = rest == 0 ? 0 : 0xFFFF - rest;
        }
    }
    int64_t value = (int64_t)r->l4sum, proto = r->proto;
    int none4 = !r->v6 && proto == 17 && value == 0;  /* UDP over IPv4 without a sum */
    if (!r->st && r->l4 && (!r->complete || none4)) {
        verdict = (uint64_t)k[K_CSUM_UNVERIFIED];
    } else if (!r->st && r->l4) {
        int64_t words = 0, ln = r->l4_len;
        uint64_t a[4] = {r->src_hi, r->src_lo, r->dst_hi, r->dst_lo};
        for (int j = 0; j < 4; j++)
            for (int sh = 48; sh >= 0; sh -= 16)
                words += (int64_t)((a[j] >> sh) & 0xFFFF);
        int64_t pseudo = r->icmp4 ? 0 : words + proto + (r->v6 ? (ln >> 16) + (ln & 0xFFFF) : ln);
        int64_t raw_sum = (int64_t)range_sum(m->b + r->t, ln);
        int64_t total = raw_sum + pseudo;
        int good = (uint64_t)total % 0xFFFFu == 0 && total != 0;
        int64_t folded = (int64_t)((uint64_t)pseudo % 0xFFFFu);
        if (folded == 0 && pseudo != 0)
            folded = 0xFFFF;
        int partial = value == folded || value == (~folded & 0xFFFF);
        verdict = (uint64_t)(good ? k[K_CSUM_GOOD] : partial ? k[K_CSUM_PARTIAL]
                             : k[K_CSUM_BAD]);
        if (verdict == (uint64_t)k[K_CSUM_BAD]) {
            notes |= (uint64_t)k[K_NOTE_L4];
            int64_t excl = raw_sum - value;
            int64_t fold = (pymod(excl, 0xFFFF) + pseudo % 0xFFFF) % 0xFFFF;
            if (fold == 0 && (excl != 0 || pseudo != 0))
                fold = 0xFFFF;
            int64_t e = 0xFFFF - fold;
            l4_exp = (e == 0 && proto == 17) ? 0xFFFF : (uint64_t)e;
        }
    }
    SET(L4_CSUM, verdict);
    SET(CSUM_NOTES, notes);
    SET(IP4_CSUM_EXPECTED, ip_exp);
    SET(L4_CSUM_EXPECTED, l4_exp);
}

/* what a row still fast leaves for, last: a port an application decoder has when it has
 * something to see (a payload, or for TCP a SYN, FIN or RST: a pure ACK is a pure ACK
 * whatever the port), else an IPv4 header or transport checksum that is bad or partial
 * (the columns hold everything else) */
static uint8_t
row_leaves_last(const frames_t *x, const row_t *r)
{
    const int64_t *k = x->k;
    void *const *cols = x->cols;
    Py_ssize_t i = r->i;
    if (!x->ports)
        return (uint8_t)k[K_APPLICATION];
    int64_t pay = (int64_t)((const uint32_t *)cols[PAYLOAD_LENGTH])[i];
    if (r->tcp || r->udp) {
        uint64_t sp = ((const uint16_t *)cols[SPORT])[i], dp = ((const uint16_t *)cols[DPORT])[i];
        const unsigned char *p = x->ports + (r->tcp ? 65536 : 0);
        int ctl = r->tcp && (((const uint16_t *)cols[TCP_FLAGS])[i] & 0x07);
        if ((p[sp] || p[dp]) && (pay > 0 || ctl))
            return (uint8_t)k[K_APPLICATION];
    }
    uint8_t notes = ((const uint8_t *)cols[CSUM_NOTES])[i];
    uint8_t verdict = ((const uint8_t *)cols[L4_CSUM])[i];
    if ((notes & k[K_NOTE_IP]) || verdict >= k[K_CSUM_BAD])
        return (uint8_t)k[K_CHECKSUM];
    return 0;
}

/* every column of row i, layer by layer, as decode/columns.py's numpy rules did */
static void
extract_row(frames_t *x, Py_ssize_t i, int64_t o, int64_t cap, int64_t wire, int64_t lt)
{
    row_t r;  /* (no memset: the layers set every field they read but these) */
    r.st = 0;
    r.net_at = r.net = 0;
    r.i = i;
    r.o = o;
    r.cap = cap;
    r.wire = wire;
    r.lt = lt;
    row_link(x, &r);
    row_ip(x, &r);
    row_transport(x, &r);
    row_arp(x, &r);
    row_checksums(x, &r);
    void **cols = x->cols;
    if (!r.st)
        r.st = row_leaves_last(x, &r);
    SET(STATUS, r.st);
}

PyDoc_STRVAR(extract_doc,
"extract(buf, off, caplen, wirelen, linktype, consts, ext, optlen, columns, codes,\n"
"        ports) -> layouts\n\n"
"Fill the columns of the common shapes (rawlab.decode.columns.KERNEL_COLUMNS, in that\n"
"order, each of its item size) from the frames at buf[off[i]:off[i] + caplen[i]]\n"
"(off, caplen, wirelen, linktype: int64 arrays), one pass a row: the numpy rules of\n"
"decode/columns.py row by row. consts: KERNEL_CONSTANTS; ext: 256 bytes, 1 for an\n"
"IPv6 extension header; optlen: 256 bytes, the exact length of each TCP option kind\n"
"held (0: none). A TCP row whose option list is held gets the number of its layout in\n"
"tcp_opt_layout, numbered as they first appear; the first `layouts` rows of `codes`\n"
"(uint8, rows x MAX_OPTS) are their codes (kind; SACK 5 + 16 * blocks; OPTS_PAD after).\n"
"ports: 131072 bytes (UDP's 65536 ports, then TCP's), 1 where an application decoder\n"
"takes the port, or None (every port): a fast row there with something to see gets\n"
"status APPLICATION; then a fast row with a bad or partial checksum CHECKSUM.\n"
"A row that does not lie inside buf is a ValueError; reads past a row's captured\n"
"bytes (of a row that leaves the fast path) read the buffer's next bytes, or zeros.");

static PyObject *
extract(PyObject *self, PyObject *args)
{
    PyObject *buf_o, *in_o[4], *consts_o, *ext_o, *optlen_o, *cols_o, *codes_o, *ports_o;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOO", &buf_o, &in_o[0], &in_o[1], &in_o[2], &in_o[3],
                          &consts_o, &ext_o, &optlen_o, &cols_o, &codes_o, &ports_o))
        return NULL;
    int64_t k[NCONSTS];
    PyObject *cs = PySequence_Fast(consts_o, "extract: consts must be a sequence");
    if (!cs)
        return NULL;
    if (PySequence_Fast_GET_SIZE(cs) != NCONSTS) {
        Py_DECREF(cs);
        PyErr_Format(PyExc_ValueError, "extract: %d constants wanted", NCONSTS);
        return NULL;
    }
    for (int j = 0; j < NCONSTS; j++)
        k[j] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(cs, j));
    Py_DECREF(cs);
    if (PyErr_Occurred())
        return NULL;
    PyObject *cl = PySequence_Fast(cols_o, "extract: columns must be a sequence");
    if (!cl)
        return NULL;
    if (PySequence_Fast_GET_SIZE(cl) != NCOLS) {
        Py_DECREF(cl);
        PyErr_Format(PyExc_ValueError, "extract: %d columns wanted", NCOLS);
        return NULL;
    }
    Py_buffer buf, ins[4], ext, optlen, codes, ports, views[NCOLS];
    int nin = 0, ncol = 0, have_buf = 0, have_ext = 0, have_opt = 0, have_codes = 0;
    int have_ports = 0;
    int32_t *lay_index = NULL;
    PyObject *res = NULL;
    Py_ssize_t n = -1;
    if (get_buffer(buf_o, &buf, 0, 0, "buf") < 0)
        goto done;
    have_buf = 1;
    for (; nin < 4; nin++) {
        if (get_buffer(in_o[nin], &ins[nin], 0, 8, "off/caplen/wirelen/linktype") < 0)
            goto done;
        if (n >= 0 && ins[nin].len / 8 != n) {
            nin++;
            PyErr_SetString(PyExc_ValueError, "extract: inputs differ in length");
            goto done;
        }
        n = ins[nin].len / 8;
    }
    if (get_buffer(ext_o, &ext, 0, 1, "ext") < 0)
        goto done;
    have_ext = 1;
    if (get_buffer(optlen_o, &optlen, 0, 1, "optlen") < 0)
        goto done;
    have_opt = 1;
    if (ext.len < 256 || optlen.len < 256) {
        PyErr_SetString(PyExc_ValueError, "extract: ext and optlen hold 256 bytes");
        goto done;
    }
    if (get_buffer(codes_o, &codes, 1, 1, "codes") < 0)
        goto done;
    have_codes = 1;
    if (k[K_MAX_OPTS] <= 0 || k[K_MAX_OPTS] > 256 || k[K_MAX_OPTS] % 8 ||
        codes.len < n * k[K_MAX_OPTS]) {
        PyErr_SetString(PyExc_ValueError, "extract: codes must hold rows x MAX_OPTS bytes "
                        "(MAX_OPTS: a multiple of 8 up to 256)");
        goto done;
    }
    if (ports_o != Py_None) {
        if (get_buffer(ports_o, &ports, 0, 1, "ports") < 0)
            goto done;
        have_ports = 1;
        if (ports.len != 2 * 65536) {
            PyErr_SetString(PyExc_ValueError, "extract: ports holds 131072 bytes (or None)");
            goto done;
        }
    }
    int64_t slots = 16;
    while (slots < 2 * n)
        slots *= 2;
    lay_index = PyMem_Calloc((size_t)slots, sizeof *lay_index);
    if (!lay_index) {
        PyErr_NoMemory();
        goto done;
    }
    for (; ncol < NCOLS; ncol++) {
        if (get_buffer(PySequence_Fast_GET_ITEM(cl, ncol), &views[ncol], 1, col_size[ncol],
                       "column") < 0)
            goto done;
        if (views[ncol].len / col_size[ncol] != n) {
            ncol++;
            PyErr_Format(PyExc_ValueError, "extract: column %d holds not %zd rows", ncol - 1, n);
            goto done;
        }
    }
    {
        void *cols[NCOLS];
        for (int j = 0; j < NCOLS; j++)
            cols[j] = views[j].buf;
        const int64_t *off = ins[0].buf, *cap = ins[1].buf, *wire = ins[2].buf, *lt = ins[3].buf;
        bytes_t m = {buf.buf, buf.len};
        frames_t x = {&m, k, ext.buf, optlen.buf, cols, codes.buf, lay_index, slots - 1, 0, -1,
                      have_ports ? ports.buf : NULL};
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t o = off[i];
            if (o < 0 || o + cap[i] > buf.len) {
                PyErr_Format(PyExc_ValueError, "extract: row %zd lies outside the buffer", i);
                goto done;
            }
        }
        /* no Python object is touched: another thread (the next batch's reader) runs */
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++)
            extract_row(&x, i, off[i], cap[i], wire[i], lt[i]);
        Py_END_ALLOW_THREADS
        res = PyLong_FromLongLong(x.nlay);
    }
done:
    for (int j = 0; j < ncol; j++)
        PyBuffer_Release(&views[j]);
    PyMem_Free(lay_index);
    if (have_ports)
        PyBuffer_Release(&ports);
    if (have_codes)
        PyBuffer_Release(&codes);
    if (have_opt)
        PyBuffer_Release(&optlen);
    if (have_ext)
        PyBuffer_Release(&ext);
    for (int j = 0; j < nin; j++)
        PyBuffer_Release(&ins[j]);
    if (have_buf)
        PyBuffer_Release(&buf);
    Py_DECREF(cl);
    return res;
}

/* ---- relative ------------------------------------------------------------------------ */

PyDoc_STRVAR(relative_doc,
"relative(key, rev, syn, seq, ack, base_a, base_b, state, out_seq, out_ack, out_base)\n\n"
"tcpdump's relative sequence numbers for rows in file order (TCP with ACK), as\n"
"rawlab.present.packet.TcpdumpSeq.numbers a row at a time: key (int64) numbers each\n"
"row's connection; rev, syn (uint8) its direction and SYN flag; seq, ack (int64) its\n"
"numbers. Per connection base_a, base_b (int64) and state (uint8: 0 unknown, 1 known,\n"
"2 set by a row here) are read and updated. A SYN row, or the first row of an unknown\n"
"connection, sets the base and prints absolute numbers.");

static PyObject *
relative(PyObject *self, PyObject *args)
{
    PyObject *o[11];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5],
                          &o[6], &o[7], &o[8], &o[9], &o[10]))
        return NULL;
    static const Py_ssize_t size[11] = {8, 1, 1, 8, 8, 8, 8, 1, 8, 8, 8};
    static const int writable[11] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1};
    Py_buffer v[11];
    int got = 0;
    PyObject *res = NULL;
    for (; got < 11; got++)
        if (get_buffer(o[got], &v[got], writable[got], size[got], "relative") < 0)
            goto done;
    Py_ssize_t n = v[0].len / 8, keys = v[5].len / 8;
    for (int j = 1; j < 11; j++) {
        Py_ssize_t len = v[j].len / size[j];
        if ((j >= 5 && j <= 7) ? len != keys : len != n) {
            PyErr_SetString(PyExc_ValueError, "relative: arrays of the wrong length");
            goto done;
        }
    }
    const int64_t *key = v[0].buf, *seq = v[3].buf, *ack = v[4].buf;
    const uint8_t *rev = v[1].buf, *syn = v[2].buf;
    int64_t *ba = v[5].buf, *bb = v[6].buf, *os = v[8].buf, *oa = v[9].buf, *ob = v[10].buf;
    uint8_t *state = v[7].buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (key[i] < 0 || key[i] >= keys) {
            PyErr_Format(PyExc_ValueError, "relative: row %zd: key %lld out of range", i,
                         (long long)key[i]);
            goto done;
        }
    }
    const int64_t M = 0xFFFFFFFF;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t k = key[i], s = seq[i], a = ack[i];
        if (syn[i] || !state[k]) {
            ba[k] = rev[i] ? (a - 1) & M : s;
            bb[k] = rev[i] ? s : (a - 1) & M;
            state[k] = 2;
            os[i] = s;
            oa[i] = a;
            ob[i] = (a - 1) & M;
        } else if (rev[i]) {
            os[i] = (s - bb[k]) & M;
            oa[i] = (a - ba[k]) & M;
            ob[i] = ba[k];
        } else {
            os[i] = (s - ba[k]) & M;
            oa[i] = (a - bb[k]) & M;
            ob[i] = bb[k];
        }
    }
    res = Py_None;
    Py_INCREF(res);
done:
    for (int j = 0; j < got; j++)
        PyBuffer_Release(&v[j]);
    return res;
}

/* ---- tcpdump_lines ------------------------------------------------------------------ */


/* the columns tcpdump_lines reads, by name, with their item sizes */
enum {
    T_FAST, T_VER, T_L4, T_FLAGS, T_PLEN, T_SPORT, T_DPORT, T_ITYPE, T_IREST, T_L4LEN, T_WIN,
    T_URG, T_AOP, T_ALEN, T_SPA, T_TPA, T_SHA, T_LAYOUT, T_NOTES, T_L4SUM, T_L4EXP, T_IPSUM,
    T_IPEXP, T_SHI, T_SLO, T_DHI, T_DLO, T_SEQ, T_ACK, T_SBASE, T_DOFF, T_L4OFF, T_NT
};
static const want_t tcols[T_NT] = {
    {"fast", 1}, {"ip_version", 1}, {"l4", 1}, {"tcp_flags", 2}, {"payload_length", 4},
    {"sport", 2}, {"dport", 2}, {"icmp_type", 1}, {"icmp_rest", 4}, {"l4_length", 4},
    {"tcp_window", 2}, {"tcp_urgptr", 2}, {"arp_op", 2}, {"arp_length", 4}, {"arp_spa", 4},
    {"arp_tpa", 4}, {"arp_sha", 8}, {"tcp_opt_layout", 4}, {"csum_notes", 1},
    {"l4_checksum", 2}, {"l4_csum_expected", 2}, {"ip4_checksum", 2},
    {"ip4_csum_expected", 2}, {"src_hi", 8}, {"src_lo", 8}, {"dst_hi", 8}, {"dst_lo", 8},
    {"seq", 8}, {"ack", 8}, {"sbase", 8}, {"data_offset", 8}, {"l4_offset", 2},
};


static int
put_str(sbuf_t *b, const char *s)
{
    return put_bytes(b, s, (Py_ssize_t)strlen(s), 0);
}

/* a string literal: its length known when compiled */
#define put_lit(b, s) put_bytes((b), (s), (Py_ssize_t)sizeof(s) - 1, 0)

static int
put_dec(sbuf_t *b, int64_t v)
{
    return put_int(b, v, CONV_D, 0, 0);
}

static int
put_ip(sbuf_t *b, int ver, uint64_t hi, uint64_t lo)
{
    if (ver != 6) {  /* dotted quad: inet_ntop's text, without its sprintf (~10x) */
        if (grow(b, 15) < 0)
            return -1;
        char *o = b->p + b->len;
        for (int j = 3; j >= 0; j--) {
            unsigned v = (unsigned)(lo >> (8 * j)) & 255;
            if (v >= 100)
                *o++ = (char)('0' + v / 100);
            if (v >= 10)
                *o++ = (char)('0' + v / 10 % 10);
            *o++ = (char)('0' + v % 10);
            if (j)
                *o++ = '.';
        }
        b->len = o - b->p;
        return 0;
    }
    char text[INET6_ADDRSTRLEN];
    unsigned char raw[16];
    if (ver == 6) {
        for (int j = 0; j < 8; j++) {
            raw[j] = (unsigned char)(hi >> (56 - 8 * j));
            raw[8 + j] = (unsigned char)(lo >> (56 - 8 * j));
        }
    } else {
        for (int j = 0; j < 4; j++)
            raw[j] = (unsigned char)(lo >> (24 - 8 * j));
    }
    if (!inet_ntop(ver == 6 ? AF_INET6 : AF_INET, raw, text, sizeof text)) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return put_str(b, text);
}

static int
put_mac(sbuf_t *b, uint64_t v)
{
    char text[18];
    snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", (unsigned)(v >> 40) & 255,
             (unsigned)(v >> 32) & 255, (unsigned)(v >> 24) & 255, (unsigned)(v >> 16) & 255,
             (unsigned)(v >> 8) & 255, (unsigned)v & 255);
    return put_str(b, text);
}

static int
put_hex4(sbuf_t *b, uint64_t v)
{
    return put_int(b, (int64_t)v, CONV_X, 4, 1);
}

typedef struct {
    Py_buffer v[T_NT];
    const unsigned char *buf;
    Py_ssize_t buflen;
    PyObject *layouts;  /* list of tuples of (kind, pos, total) */
    PyObject *flag_text;  /* list of 512 bytes */
} tframe_t;

#define TV(c) col_at(&x->v[c], i, tcols[c].size)

static inline uint64_t
buf_be(const tframe_t *x, int64_t at, int width)
{
    uint64_t v = 0;
    for (int j = 0; j < width; j++)
        v = v << 8 | (at + j >= 0 && at + j < x->buflen ? x->buf[at + j] : 0);
    return v;
}

static int
tcp_options(const tframe_t *x, Py_ssize_t i, sbuf_t *b, int64_t layout)
{
    PyObject *lay = PyList_GetItem(x->layouts, (Py_ssize_t)layout);
    if (!lay || !PyTuple_Check(lay)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "tcpdump_lines: a layout must be a tuple");
        return -1;
    }
    int64_t start = (int64_t)TV(T_DOFF) + (int64_t)TV(T_L4OFF) + 20;
    int64_t sbase = (int64_t)TV(T_SBASE);
    const int64_t M = 0xFFFFFFFF;
    if (put_lit(b, ", options [") < 0)
        return -1;
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(lay); j++) {
        long kind, pos, total;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(lay, j), "lll", &kind, &pos, &total))
            return -1;
        int64_t p = start + pos;
        if (j && put_lit(b, ",") < 0)
            return -1;
        int bad = 0;
        switch (kind) {
        case 0: bad = put_lit(b, "eol"); break;
        case 1: bad = put_lit(b, "nop"); break;
        case 2: bad = put_lit(b, "mss ") || put_dec(b, (int64_t)buf_be(x, p + 2, 2)); break;
        case 3: bad = put_lit(b, "wscale ") || put_dec(b, (int64_t)buf_be(x, p + 2, 1)); break;
        case 4: bad = put_lit(b, "sackOK"); break;
        case 8:
            bad = put_lit(b, "TS val ") || put_dec(b, (int64_t)buf_be(x, p + 2, 4)) ||
                  put_lit(b, " ecr ") || put_dec(b, (int64_t)buf_be(x, p + 6, 4));
            break;
        case 5: {
            long k = (total - 2) / 8;
            bad = put_lit(b, "sack ") || put_dec(b, k) || put_lit(b, " ");
            for (long q = 0; q < k && !bad; q++)
                bad = put_lit(b, "{") ||
                      put_dec(b, ((int64_t)buf_be(x, p + 2 + 8 * q, 4) - sbase) & M) ||
                      put_lit(b, ":") ||
                      put_dec(b, ((int64_t)buf_be(x, p + 6 + 8 * q, 4) - sbase) & M) ||
                      put_lit(b, "}");
            break;
        }
        default:
            PyErr_Format(PyExc_ValueError, "tcpdump_lines: option kind %ld in a layout", kind);
            return -1;
        }
        if (bad)
            return -1;
    }
    return put_lit(b, "]");
}

/* row i's line, as present/columns.py's templates wrote it (tcpdump's words) */
static int
tcpdump_row(const tframe_t *x, Py_ssize_t i, sbuf_t *b)
{
    int ver = (int)TV(T_VER);
    const int64_t M = 0xFFFFFFFF;
    if (ver == 0) {  /* ARP */
        uint64_t op = TV(T_AOP);
        if (op == 1)
            return put_lit(b, "ARP, Request who-has ") || put_ip(b, 4, 0, TV(T_TPA)) ||
                   put_lit(b, " tell ") || put_ip(b, 4, 0, TV(T_SPA)) ||
                   put_lit(b, ", length ") || put_dec(b, (int64_t)TV(T_ALEN)) ||
                   put_lit(b, "\n") ? -1 : 0;
        if (op == 2)
            return put_lit(b, "ARP, Reply ") || put_ip(b, 4, 0, TV(T_SPA)) ||
                   put_lit(b, " is-at ") || put_mac(b, TV(T_SHA)) ||
                   put_lit(b, ", length ") || put_dec(b, (int64_t)TV(T_ALEN)) ||
                   put_lit(b, "\n") ? -1 : 0;
        return put_lit(b, "ARP, op ") || put_dec(b, (int64_t)op) || put_lit(b, ", length ") ||
               put_dec(b, (int64_t)TV(T_ALEN)) || put_lit(b, "\n") ? -1 : 0;
    }
    int l4 = (int)TV(T_L4);
    int64_t ln = (int64_t)TV(T_L4LEN);
    if (put_str(b, ver == 6 ? "IP6 " : "IP ") || put_ip(b, ver, TV(T_SHI), TV(T_SLO)))
        return -1;
    if (l4 == 1 || l4 == 58) {  /* ICMP echo */
        int ty = (int)TV(T_ITYPE);
        int64_t rest = (int64_t)TV(T_IREST);
        if (put_lit(b, " > ") || put_ip(b, ver, TV(T_DHI), TV(T_DLO)) ||
            put_str(b, l4 == 58 ? ": ICMP6, echo " : ": ICMP echo ") ||
            put_str(b, ty == 8 || ty == 128 ? "request" : "reply") || put_lit(b, ", id ") ||
            put_dec(b, rest >> 16) || put_lit(b, ", seq ") || put_dec(b, rest & 0xFFFF) ||
            put_lit(b, ", length ") || put_dec(b, ln))
            return -1;
    } else {
        if (put_lit(b, ".") || put_dec(b, (int64_t)TV(T_SPORT)) || put_lit(b, " > ") ||
            put_ip(b, ver, TV(T_DHI), TV(T_DLO)) || put_lit(b, ".") ||
            put_dec(b, (int64_t)TV(T_DPORT)))
            return -1;
        if (l4 == 17) {
            if (put_lit(b, ": UDP, length ") || put_dec(b, ln - 8))
                return -1;
        } else {  /* TCP */
            int flags = (int)TV(T_FLAGS);
            int64_t plen = (int64_t)TV(T_PLEN), s = (int64_t)TV(T_SEQ);
            PyObject *ft = PyList_GetItem(x->flag_text, flags & 0x1FF);
            if (!ft || !PyBytes_Check(ft)) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "tcpdump_lines: flag texts are bytes");
                return -1;
            }
            if (put_lit(b, ": Flags [") ||
                put_bytes(b, PyBytes_AS_STRING(ft), PyBytes_GET_SIZE(ft), 0) || put_lit(b, "]"))
                return -1;
            if (plen > 0) {
                if (put_lit(b, ", seq ") || put_dec(b, s) || put_lit(b, ":") ||
                    put_dec(b, (s + plen) & M))
                    return -1;
            } else if (flags & 7) {
                if (put_lit(b, ", seq ") || put_dec(b, s))
                    return -1;
            }
            if ((flags & 0x10) && (put_lit(b, ", ack ") || put_dec(b, (int64_t)TV(T_ACK))))
                return -1;
            if (put_lit(b, ", win ") || put_dec(b, (int64_t)TV(T_WIN)))
                return -1;
            if ((flags & 0x20) && (put_lit(b, ", urg ") || put_dec(b, (int64_t)TV(T_URG))))
                return -1;
            int64_t layout = (int32_t)TV(T_LAYOUT);
            if (layout >= 0 && tcp_options(x, i, b, layout) < 0)
                return -1;
            if (put_lit(b, ", length ") || put_dec(b, plen))
                return -1;
        }
    }
    uint64_t notes = TV(T_NOTES);
    if (notes & 2) {
        const char *name = l4 == 6 ? "tcp" : l4 == 17 ? "udp" : l4 == 1 ? "icmp" : "icmp6";
        if (put_lit(b, " [bad ") || put_str(b, name) || put_lit(b, " cksum 0x") ||
            put_hex4(b, TV(T_L4SUM)) || put_lit(b, " -> 0x") || put_hex4(b, TV(T_L4EXP)) ||
            put_lit(b, "!]"))
            return -1;
    }
    if (notes & 1) {
        if (put_lit(b, " [bad ip cksum 0x") || put_hex4(b, TV(T_IPSUM)) ||
            put_lit(b, " -> 0x") || put_hex4(b, TV(T_IPEXP)) || put_lit(b, "!]"))
            return -1;
    }
    return put_lit(b, "\n");
}

PyDoc_STRVAR(tcpdump_lines_doc,
"tcpdump_lines(odd, cols, buf, layouts, flag_text, head, us, out=None) -> bytes | int\n\n"
"A batch's one-line text in row order: a row whose cols['fast'] is set is written here\n"
"as tcpdump writes it (ARP, IPv4/IPv6 with UDP, ICMP/ICMPv6 echo, TCP with its flags,\n"
"relative seq/ack (cols['seq'], ['ack'], ['sbase']), window, urgent pointer, the\n"
"options of its layout, length, and the notes of bad checksums); any other row is\n"
"odd[row] (bytes, or None). Every line starts with head[row] (bytes) and, when `us` is\n"
"an int64 array, '.' and its microseconds in six digits and a space. cols: a dict of\n"
"the arrays tcpdump_lines names (each of its item size); buf: the bytes data_offset\n"
"points into; layouts: the batch's option layouts; flag_text: 512 bytes, tcpdump's\n"
"letters for each flags value. `out`: as lines().");

static PyObject *
tcpdump_lines(PyObject *self, PyObject *args)
{
    PyObject *odd_o, *cols_o, *buf_o, *layouts, *flag_text, *head_o, *us_o, *out_o = Py_None;
    if (!PyArg_ParseTuple(args, "OO!OO!O!OO|O", &odd_o, &PyDict_Type, &cols_o, &buf_o,
                          &PyList_Type, &layouts, &PyList_Type, &flag_text, &head_o, &us_o,
                          &out_o))
        return NULL;
    if (PyList_GET_SIZE(flag_text) != 512) {
        PyErr_SetString(PyExc_ValueError, "tcpdump_lines: 512 flag texts wanted");
        return NULL;
    }
    tframe_t x;
    Py_buffer odd, buf, head, us;
    int got = 0, have_odd = 0, have_buf = 0, have_head = 0, have_us = 0;
    PyObject *res = NULL;
    sbuf_t b = {NULL, NULL, 0, 0, 0};
    Py_ssize_t n = -1;
    x.layouts = layouts;
    x.flag_text = flag_text;
    if (sbuf_start(&b, out_o) < 0)
        return NULL;
    if (get_buffer(odd_o, &odd, 0, sizeof(PyObject *), "odd") < 0)
        goto done;
    have_odd = 1;
    n = odd.len / (Py_ssize_t)sizeof(PyObject *);
    if (get_buffer(buf_o, &buf, 0, 0, "buf") < 0)
        goto done;
    have_buf = 1;
    x.buf = buf.buf;
    x.buflen = buf.len;
    if (get_buffer(head_o, &head, 0, sizeof(PyObject *), "head") < 0)
        goto done;
    have_head = 1;
    if (us_o != Py_None) {
        if (get_buffer(us_o, &us, 0, 8, "us") < 0)
            goto done;
        have_us = 1;
    }
    if (head.len != odd.len || (have_us && us.len / 8 != n) || *(odd.format) != 'O' ||
        *(head.format) != 'O') {
        PyErr_SetString(PyExc_ValueError, "tcpdump_lines: odd, head (object arrays) and us "
                        "must be as long as the batch");
        goto done;
    }
    for (; got < T_NT; got++) {
        PyObject *c = PyDict_GetItemString(cols_o, tcols[got].name);
        if (!c) {
            PyErr_Format(PyExc_KeyError, "tcpdump_lines: no column %s", tcols[got].name);
            goto done;
        }
        if (get_buffer(c, &x.v[got], 0, tcols[got].size, tcols[got].name) < 0)
            goto done;
        if (x.v[got].len / tcols[got].size < n) {
            got++;
            PyErr_Format(PyExc_ValueError, "tcpdump_lines: column %s is short", tcols[got - 1].name);
            goto done;
        }
    }
    if (grow(&b, n * 128) < 0)  /* (a line is ~60-120 bytes: one allocation, no copy) */
        goto done;
    PyObject **oddv = odd.buf, **headv = head.buf;
    const int64_t *usv = have_us ? us.buf : NULL;
    const tframe_t *xp = &x;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!col_at(&xp->v[T_FAST], i, 1)) {
            PyObject *v = oddv[i];
            if (v == Py_None || v == NULL)
                continue;
            if (!PyBytes_Check(v)) {
                PyErr_Format(PyExc_TypeError, "tcpdump_lines: odd[%zd]: bytes or None wanted", i);
                goto done;
            }
            if (put_bytes(&b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), 0) < 0)
                goto done;
            continue;
        }
        PyObject *h = headv[i];
        if (!h || !PyBytes_Check(h)) {
            PyErr_Format(PyExc_TypeError, "tcpdump_lines: head[%zd]: bytes wanted", i);
            goto done;
        }
        if (put_bytes(&b, PyBytes_AS_STRING(h), PyBytes_GET_SIZE(h), 0) < 0)
            goto done;
        if (usv && (put_lit(&b, ".") || put_int(&b, usv[i], CONV_D, 6, 1) || put_lit(&b, " ")))
            goto done;
        if (tcpdump_row(xp, i, &b) < 0)
            goto done;
    }
    res = sbuf_finish(&b);
done:
    for (int j = 0; j < got; j++)
        PyBuffer_Release(&x.v[j]);
    Py_XDECREF(b.obj);
    if (have_us)
        PyBuffer_Release(&us);
    if (have_head)
        PyBuffer_Release(&head);
    if (have_buf)
        PyBuffer_Release(&buf);
    if (have_odd)
        PyBuffer_Release(&odd);
    return res;
}

/* ---- groups ------------------------------------------------------------------------ */

PyDoc_STRVAR(groups_doc,
"groups(cols, rep, inv) -> k\n\n"
"The distinct tuples of the columns (each an array of 8-byte items, n rows), numbered\n"
"in the order they first appear: inv[i] (int64) the number of row i's tuple, rep[:k]\n"
"(int64) the row where each first appears. A hash table with exact comparison.");

static PyObject *
groups(PyObject *self, PyObject *args)
{
    PyObject *cols_o, *rep_o, *inv_o;
    if (!PyArg_ParseTuple(args, "OOO", &cols_o, &rep_o, &inv_o))
        return NULL;
    PyObject *seq = PySequence_Fast(cols_o, "groups: cols must be a sequence");
    if (!seq)
        return NULL;
    Py_ssize_t nc = PySequence_Fast_GET_SIZE(seq), got = 0, n = -1;
    Py_buffer views[16], rep, inv;
    int have_rep = 0, have_inv = 0;
    int64_t *table = NULL, *gid = NULL;
    PyObject *res = NULL;
    if (nc < 1 || nc > 16) {
        PyErr_SetString(PyExc_ValueError, "groups: 1 to 16 columns");
        goto done;
    }
    for (; got < nc; got++) {
        if (get_buffer(PySequence_Fast_GET_ITEM(seq, got), &views[got], 0, 8, "groups") < 0)
            goto done;
        if (n >= 0 && views[got].len / 8 != n) {
            got++;
            PyErr_SetString(PyExc_ValueError, "groups: columns differ in length");
            goto done;
        }
        n = views[got].len / 8;
    }
    if (get_buffer(rep_o, &rep, 1, 8, "rep") < 0)
        goto done;
    have_rep = 1;
    if (get_buffer(inv_o, &inv, 1, 8, "inv") < 0)
        goto done;
    have_inv = 1;
    if (rep.len / 8 < n || inv.len / 8 < n) {
        PyErr_SetString(PyExc_ValueError, "groups: rep and inv need a place a row");
        goto done;
    }
    Py_ssize_t size = 16;
    while (size < 2 * n)
        size <<= 1;
    table = PyMem_Malloc(size * sizeof(int64_t));
    gid = PyMem_Malloc(size * sizeof(int64_t));
    if (!table || !gid) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < size; j++)
        table[j] = -1;
    const uint64_t *c[16];
    for (Py_ssize_t j = 0; j < nc; j++)
        c[j] = views[j].buf;
    int64_t *rp = rep.buf, *iv = inv.buf, k = 0;
    uint64_t mask = (uint64_t)size - 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t h = 0;
        for (Py_ssize_t j = 0; j < nc; j++) {
            h ^= c[j][i];
            h *= 0x9E3779B97F4A7C15ULL;
            h ^= h >> 29;
        }
        uint64_t at = h & mask;
        for (;;) {
            int64_t r = table[at];
            if (r < 0) {
                table[at] = i;
                gid[at] = k;
                rp[k++] = i;
                break;
            }
            Py_ssize_t j = 0;
            while (j < nc && c[j][r] == c[j][i])
                j++;
            if (j == nc)
                break;
            at = (at + 1) & mask;
        }
        iv[i] = gid[at];
    }
    res = PyLong_FromLongLong(k);
done:
    PyMem_Free(table);
    PyMem_Free(gid);
    if (have_inv)
        PyBuffer_Release(&inv);
    if (have_rep)
        PyBuffer_Release(&rep);
    for (Py_ssize_t j = 0; j < got; j++)
        PyBuffer_Release(&views[j]);
    Py_DECREF(seq);
    return res;
}

PyDoc_STRVAR(buffer_doc,
"buffer(n) -> bytearray\n\n"
"A bytearray of n bytes that are not zeroed first (bytearray(n) writes n zeros), for a\n"
"reader that overwrites them and cuts off what it did not fill.");

static PyObject *
buffer(PyObject *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "buffer: a size of 0 or more wanted");
        return NULL;
    }
    return PyByteArray_FromStringAndSize(NULL, n);
}

/* ---- `rawlab tcp --json`: the segment records -------------------------------------- */

/* the Segment fields a record shows, in its order (rawlab.analysis.tcp.events.Segment) */
enum { SG_FRAME, SG_TS, SG_STREAM, SG_DIR, SG_SRC, SG_SPORT, SG_DST, SG_DPORT, SG_SEQ, SG_ACK,
       SG_SEQREL, SG_ACKREL, SG_NXT, SG_FLAGS, SG_LEN, SG_WIN, SG_WINRAW, SG_CSUM,
       SG_ANALYSIS, SG_DUPNUM, SG_DUPFRAME, SG_ACKED, SG_RTT, SG_BIF, SG_LOSS, SG_OPTS, SG_N };
static const char *const sg_names[SG_N] = {
    "frame", "ts_ns", "stream", "dir", "src_addr", "src_port", "dst_addr", "dst_port", "seq",
    "ack", "seq_rel", "ack_rel", "next_seq_rel", "flags", "len", "window", "window_raw",
    "checksum_status", "analysis", "dup_ack_num", "dup_ack_frame", "acked_frame", "ack_rtt_ns",
    "bytes_in_flight", "capture_loss", "options"};
/* the text before each field's value (a string's opening quote included) */
static const char *const sg_lit[SG_N] = {
    "{\"type\": \"segment\", \"frame\": ", ", \"ts_ns\": ", ", \"stream\": ", ", \"dir\": ",
    ", \"src\": \"", "\", \"sport\": ", ", \"dst\": \"", "\", \"dport\": ", ", \"seq\": ",
    ", \"ack\": ", ", \"seq_rel\": ", ", \"ack_rel\": ", ", \"next_seq_rel\": ",
    ", \"flags\": \"", "\", \"len\": ", ", \"window\": ", ", \"window_raw\": ",
    ", \"checksum_status\": \"", "\", \"analysis\": ", ", \"dup_ack_num\": ",
    ", \"dup_ack_frame\": ", ", \"acked_frame\": ", ", \"ack_rtt_ns\": ",
    ", \"bytes_in_flight\": ", ", \"capture_loss\": ", ""};

/* where each field lies in a Segment (its slots' offsets), learnt from the first one */
static PyTypeObject *sg_type;
static Py_ssize_t sg_off[SG_N];

static int
sg_learn(PyTypeObject *t)
{
    Py_ssize_t off[SG_N];
    if (slot_offsets(t, sg_names, SG_N, off, "segments_json") < 0)
        return -1;
    memcpy(sg_off, off, sizeof off);
    Py_XSETREF(sg_type, (PyTypeObject *)Py_NewRef(t));
    return 0;
}

/* a str's UTF-8 text */
static int
put_pystr(sbuf_t *b, PyObject *s)
{
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    return u ? put_bytes(b, u, n, 0) : -1;
}

/* an int as f"{v}" writes it (nullable: "null" for None, str() otherwise) */
static int
put_pyint(sbuf_t *b, PyObject *v, int nullable)
{
    if (PyLong_CheckExact(v)) {
        int ovf;
        long long x = PyLong_AsLongLongAndOverflow(v, &ovf);
        if (!ovf && !(x == -1 && PyErr_Occurred()))
            return put_int(b, x, CONV_D, 0, 0);
        PyErr_Clear();
    } else if (nullable && v == Py_None) {
        return put_bytes(b, "null", 4, 0);
    }
    PyObject *s = nullable ? PyObject_Str(v) : PyObject_Format(v, NULL);
    if (!s)
        return -1;
    int rc = put_pystr(b, s);
    Py_DECREF(s);
    return rc;
}

/* ip_text(): IPv4 and IPv6 as inet_ntop writes them, other lengths as hex; 1 when not
 * bytes */
static int
put_addr(sbuf_t *b, PyObject *a)
{
    if (!PyBytes_CheckExact(a))
        return 1;
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(a);
    Py_ssize_t n = PyBytes_GET_SIZE(a);
    if (n == 4 || n == 16) {
        uint64_t hi = 0, lo = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (n == 16 && i < 8)
                hi = hi << 8 | p[i];
            else
                lo = lo << 8 | p[i];
        }
        return put_ip(b, n == 4 ? 4 : 6, hi, lo);
    }
    if (grow(b, 2 * n) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        b->p[b->len++] = "0123456789abcdef"[p[i] >> 4];
        b->p[b->len++] = "0123456789abcdef"[p[i] & 15];
    }
    return 0;
}

/* a str json.dumps writes as it is (printable ASCII, no quote or backslash), quoted;
 * 1 otherwise */
static int
put_json_str(sbuf_t *b, PyObject *s)
{
    if (!PyUnicode_IS_ASCII(s))
        return 1;
    const char *u = (const char *)PyUnicode_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    for (Py_ssize_t i = 0; i < n; i++)
        if (u[i] < 0x20 || u[i] == '"' || u[i] == '\\' || u[i] == 0x7f)
            return 1;
    if (grow(b, n + 2) < 0)
        return -1;
    b->p[b->len++] = '"';
    memcpy(b->p + b->len, u, (size_t)n);
    b->len += n;
    b->p[b->len++] = '"';
    return 0;
}

/* json.dumps of the options' values after present.tcp._opt (bytes as hex, tuples as
 * lists): None, bools, ints, plain str, bytes, tuples and dicts of str keys; 1 for
 * anything else (a list, a float ...: the Python renderer writes it) */
static int
put_json(sbuf_t *b, PyObject *v, int depth)
{
    if (depth > 8)
        return 1;
    if (v == Py_None)
        return put_lit(b, "null");
    if (v == Py_True)
        return put_lit(b, "true");
    if (v == Py_False)
        return put_lit(b, "false");
    if (PyLong_CheckExact(v))
        return put_pyint(b, v, 0);
    if (PyUnicode_CheckExact(v))
        return put_json_str(b, v);
    if (PyBytes_CheckExact(v)) {
        Py_ssize_t n = PyBytes_GET_SIZE(v);
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(v);
        if (grow(b, 2 * n + 2) < 0)
            return -1;
        b->p[b->len++] = '"';
        for (Py_ssize_t i = 0; i < n; i++) {
            b->p[b->len++] = "0123456789abcdef"[p[i] >> 4];
            b->p[b->len++] = "0123456789abcdef"[p[i] & 15];
        }
        b->p[b->len++] = '"';
        return 0;
    }
    if (PyTuple_CheckExact(v)) {
        if (put_lit(b, "[") < 0)
            return -1;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(v); i++) {
            int rc = i ? put_lit(b, ", ") : 0;
            if (rc == 0)
                rc = put_json(b, PyTuple_GET_ITEM(v, i), depth + 1);
            if (rc)
                return rc;
        }
        return put_lit(b, "]");
    }
    if (PyDict_CheckExact(v)) {
        Py_ssize_t pos = 0, i = 0;
        PyObject *k, *x;
        if (put_lit(b, "{") < 0)
            return -1;
        while (PyDict_Next(v, &pos, &k, &x)) {
            if (!PyUnicode_CheckExact(k))
                return 1;
            int rc = i++ ? put_lit(b, ", ") : 0;
            if (rc == 0)
                rc = put_json_str(b, k);
            if (rc == 0)
                rc = put_lit(b, ": ");
            if (rc == 0)
                rc = put_json(b, x, depth + 1);
            if (rc)
                return rc;
        }
        return put_lit(b, "}");
    }
    return 1;
}

/* the checksum verdicts' text (a few str-enum members): format() of each, once */
#define SG_VERDICTS 16
static PyObject *sg_verdict[SG_VERDICTS];
static PyObject *sg_verdict_text[SG_VERDICTS];

static int
put_verdict(sbuf_t *b, PyObject *v)
{
    int k = 0;
    for (; k < SG_VERDICTS && sg_verdict[k]; k++)
        if (sg_verdict[k] == v)
            return put_pystr(b, sg_verdict_text[k]);
    PyObject *s = PyObject_Format(v, NULL);
    if (!s)
        return -1;
    int rc = put_pystr(b, s);
    if (k < SG_VERDICTS && rc == 0) {  /* (held: the object stays while it is cached) */
        Py_INCREF(v);
        sg_verdict[k] = v;
        sg_verdict_text[k] = s;
    } else {
        Py_DECREF(s);
    }
    return rc;
}

/* the options' tail (none when there are none); 1: a value put_json leaves to Python */
static int
put_options(sbuf_t *b, PyObject *o)
{
    if (PyDict_CheckExact(o) && PyDict_GET_SIZE(o) == 0)
        return 0;
    int truth = PyObject_IsTrue(o);
    if (truth <= 0)
        return truth;
    if (!PyDict_CheckExact(o))
        return 1;
    if (put_lit(b, ", \"options\": ") < 0)
        return -1;
    return put_json(b, o, 0);
}

/* one record; 1 when a field is of a shape only the Python renderer takes (nothing kept) */
static int
put_segment(sbuf_t *b, PyObject *seg, PyObject *flags, PyObject *analysis)
{
    PyObject *f[SG_N + 1];  /* (held: a callback below could change the Segment) */
    for (int k = 0; k < SG_N; k++) {
        f[k] = *(PyObject **)((char *)seg + sg_off[k]);
        if (!f[k]) {
            while (k--)
                Py_DECREF(f[k]);
            return 1;  /* (unset: the Python renderer raises AttributeError) */
        }
        Py_INCREF(f[k]);
    }
    PyObject *fl = f[SG_FLAGS];
    Py_ssize_t fi = PyLong_CheckExact(fl) ? PyLong_AsSsize_t(fl) : -1;
    Py_ssize_t start = b->len;
    int rc = 0;
    if (fi < 0 || fi >= PyList_GET_SIZE(flags)) {
        PyErr_Clear();
        f[SG_N] = NULL;
        rc = 1;
    } else {
        f[SG_N] = Py_NewRef(PyList_GET_ITEM(flags, fi));  /* the flags' letters */
    }
    for (int k = 0; k < SG_N && rc == 0; k++) {
        rc = put_str(b, sg_lit[k]);
        if (rc < 0)
            break;
        switch (k) {
        case SG_SRC:
        case SG_DST:
            rc = put_addr(b, f[k]);
            break;
        case SG_FLAGS:
            rc = put_pystr(b, f[SG_N]);
            break;
        case SG_CSUM:
            rc = put_verdict(b, f[k]);
            break;
        case SG_ANALYSIS:
            if (PyTuple_CheckExact(f[k]) && PyTuple_GET_SIZE(f[k]) == 0) {
                rc = put_bytes(b, "[]", 2, 0);
            } else {
                PyObject *s = PyObject_CallOneArg(analysis, f[k]);
                rc = s ? put_pystr(b, s) : -1;
                Py_XDECREF(s);
            }
            break;
        case SG_DUPNUM:
        case SG_DUPFRAME:
        case SG_ACKED:
        case SG_RTT:
        case SG_BIF:
            rc = put_pyint(b, f[k], 1);
            break;
        case SG_LOSS: {
            int t = PyObject_IsTrue(f[k]);
            rc = t < 0 ? -1 : put_bytes(b, t ? "true" : "false", t ? 4 : 5, 0);
            break;
        }
        case SG_OPTS:
            rc = put_options(b, f[k]);
            break;
        default:
            rc = put_pyint(b, f[k], 0);
        }
    }
    if (rc == 0)
        rc = put_bytes(b, "}\n", 2, 0);
    if (rc == 1)
        b->len = start;
    for (int k = 0; k <= SG_N; k++)
        Py_XDECREF(f[k]);
    return rc;
}

PyDoc_STRVAR(segments_json_doc,
"segments_json(segments, flags, analysis, slow) -> str\n\n"
"The `segment` NDJSON records of a list of rawlab.analysis.tcp.Segment, in order, as\n"
"rawlab.present.tcp.segment_json writes each: flags is its list of flag letters by\n"
"value, analysis its function for a non-empty analysis tuple, and slow(segment) writes\n"
"a record this loop does not (options other than none or only timestamps, an address\n"
"that is not bytes, a field that is not an int).");

static PyObject *
segments_json(PyObject *self, PyObject *args)
{
    PyObject *segs, *flags, *analysis, *slow;
    if (!PyArg_ParseTuple(args, "O!O!OO", &PyList_Type, &segs, &PyList_Type, &flags,
                          &analysis, &slow))
        return NULL;
    sbuf_t b;
    if (sbuf_start(&b, NULL) < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(segs);
    if (grow(&b, n * 480 + 1) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(segs); i++) {
        PyObject *seg = PyList_GET_ITEM(segs, i);
        Py_INCREF(seg);  /* (held: a callback could change the list) */
        int rc = 1;
        if (Py_TYPE(seg) == sg_type || (!sg_type && sg_learn(Py_TYPE(seg)) == 0))
            rc = put_segment(&b, seg, flags, analysis);
        else if (PyErr_Occurred())
            PyErr_Clear();  /* (not a Segment: the Python renderer says what is wrong) */
        if (rc == 1) {
            PyObject *s = PyObject_CallOneArg(slow, seg);
            rc = s ? put_pystr(&b, s) : -1;
            Py_XDECREF(s);
        }
        Py_DECREF(seg);
        if (rc < 0)
            goto fail;
    }
    PyObject *out = PyUnicode_DecodeUTF8(b.p ? b.p : "", b.len, NULL);
    Py_XDECREF(b.obj);
    return out;
fail:
    Py_XDECREF(b.obj);
    return NULL;
}

/* ---- the exact analyser's fields of a batch's TCP rows ------------------------------- */

static const want_t fcols[] = {
    {"frame", 8}, {"ts_ns", 8}, {"ip_version", 1}, {"src_hi", 8}, {"src_lo", 8},
    {"dst_hi", 8}, {"dst_lo", 8}, {"sport", 2}, {"dport", 2}, {"tcp_seq", 4}, {"tcp_ack", 4},
    {"tcp_dataofs", 1}, {"tcp_reserved", 1}, {"tcp_flags", 2}, {"tcp_window", 2},
    {"l4_length", 4}, {"l4_csum", 1}, {"data_offset", 8}, {"l4_offset", 2},
};
enum { F_FRAME, F_TS, F_VER, F_SHI, F_SLO, F_DHI, F_DLO, F_SPORT, F_DPORT, F_SEQ, F_ACK,
       F_DOFF, F_RES, F_FLAGS, F_WIN, F_L4LEN, F_CSUM, F_DATA, F_L4OFF, F_N };

/* addresses as bytes, made once each: a direct-mapped cache (a capture repeats its few) */
#define ADDR_SLOTS 4096
static struct { uint64_t hi, lo; int ver; PyObject *b; } addr_cache[ADDR_SLOTS];

static PyObject *
addr_bytes(int ver, uint64_t hi, uint64_t lo)
{
    uint64_t h = (hi * 0x9E3779B97F4A7C15ULL) ^ (lo * 0xC2B2AE3D27D4EB4FULL) ^ (uint64_t)ver;
    size_t k = (size_t)(h >> 52) & (ADDR_SLOTS - 1);
    if (addr_cache[k].b && addr_cache[k].ver == ver && addr_cache[k].hi == hi
        && addr_cache[k].lo == lo)
        return Py_NewRef(addr_cache[k].b);
    unsigned char raw[16];
    int n = ver == 6 ? 16 : 4;
    for (int j = 0; j < 8; j++) {
        raw[j] = (unsigned char)(hi >> (56 - 8 * j));
        raw[8 + j] = (unsigned char)(lo >> (56 - 8 * j));
    }
    PyObject *b = PyBytes_FromStringAndSize(n == 16 ? (char *)raw : (char *)raw + 12, n);
    if (!b)
        return NULL;
    Py_XSETREF(addr_cache[k].b, Py_NewRef(b));
    addr_cache[k].ver = ver;
    addr_cache[k].hi = hi;
    addr_cache[k].lo = lo;
    return b;
}

static inline uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* the options summary's keys, interned (rawlab.decode.tcp.SUMMARY_KEYS) */
static PyObject *k_mss, *k_wscale, *k_sack_perm, *k_sack, *k_ts, *k_malformed;

static int
opt_keys(void)
{
    if (k_ts)
        return 0;
    k_mss = PyUnicode_InternFromString("mss");
    k_wscale = PyUnicode_InternFromString("wscale");
    k_sack_perm = PyUnicode_InternFromString("sack_perm");
    k_sack = PyUnicode_InternFromString("sack");
    k_malformed = PyUnicode_InternFromString("malformed");
    k_ts = PyUnicode_InternFromString("ts");
    return k_mss && k_wscale && k_sack_perm && k_sack && k_malformed && k_ts ? 0 : -1;
}

/* a known kind's value (option_value), NULL and no exception when it has none: MSS and
 * window scale as ints, SACK-permitted True, SACK ((left, right), ...), timestamps
 * (tsval, tsecr) */
static PyObject *
opt_value(int kind, const unsigned char *d, Py_ssize_t n, PyObject **key)
{
    switch (kind) {
    case 8:
        *key = k_ts;
        return n == 8 ? Py_BuildValue("(kk)", (unsigned long)be32(d), (unsigned long)be32(d + 4))
                      : NULL;
    case 2:
        *key = k_mss;
        return n == 2 ? PyLong_FromLong(d[0] << 8 | d[1]) : NULL;
    case 3:
        *key = k_wscale;
        return n == 1 ? PyLong_FromLong(d[0]) : NULL;
    case 4:
        *key = k_sack_perm;
        return n == 0 ? Py_NewRef(Py_True) : NULL;
    case 5: {
        *key = k_sack;
        if (n % 8)
            return NULL;
        PyObject *t = PyTuple_New(n / 8);
        for (Py_ssize_t b = 0; t && b < n / 8; b++) {
            PyObject *pair = Py_BuildValue("(kk)", (unsigned long)be32(d + 8 * b),
                                           (unsigned long)be32(d + 8 * b + 4));
            if (!pair)
                Py_CLEAR(t);
            else
                PyTuple_SET_ITEM(t, b, pair);
        }
        return t;
    }
    default:
        *key = NULL;
        return NULL;
    }
}

/* decode.tcp.options_summary: summarize(*walk(raw)) of a TCP header's option bytes, in
 * wire order (EOL ends the list; NOP skipped; a known kind of a valid length under its
 * key, any other kind's bytes under str(kind); a broken option left out and
 * "malformed": True). The same rules as the Python walk and summarize
 * (decode/options.py, decode/tcp.py): tests/unit/test_kernels.py holds them together. */
static PyObject *
tcp_options_of(const unsigned char *p, Py_ssize_t n)
{
    if (opt_keys() < 0)
        return NULL;
    PyObject *out = PyDict_New();
    Py_ssize_t i = 0;
    while (out && i < n) {
        int k = p[i];
        if (k == 0)
            break;
        if (k == 1) {
            i++;
            continue;
        }
        if (i + 1 >= n || p[i + 1] < 2 || i + p[i + 1] > n) {
            if (PyDict_SetItem(out, k_malformed, Py_True) < 0)
                Py_CLEAR(out);
            break;
        }
        Py_ssize_t ln = p[i + 1];
        PyObject *key = NULL;
        PyObject *v = opt_value(k, p + i + 2, ln - 2, &key);
        if (!v && PyErr_Occurred()) {
            Py_CLEAR(out);
            break;
        }
        int rc;
        if (v) {
            rc = PyDict_SetItem(out, key, v);
        } else {
            PyObject *name = PyUnicode_FromFormat("%d", k);
            PyObject *raw = PyBytes_FromStringAndSize((const char *)p + i + 2, ln - 2);
            rc = name && raw ? PyDict_SetItem(out, name, raw) : -1;
            Py_XDECREF(name);
            Py_XDECREF(raw);
        }
        Py_XDECREF(v);
        if (rc < 0)
            Py_CLEAR(out);
        i += ln;
    }
    return out;
}

PyDoc_STRVAR(tcp_options_doc,
"tcp_options(raw) -> dict\n\n"
"The options summary of a TCP header's option bytes (rawlab.decode.tcp.options_summary).");

static PyObject *
tcp_options_py(PyObject *self, PyObject *arg)
{
    Py_buffer raw;
    if (get_buffer(arg, &raw, 0, 0, "raw") < 0)
        return NULL;
    PyObject *out = tcp_options_of(raw.buf, raw.len);
    PyBuffer_Release(&raw);
    return out;
}

/* one row's (frame, ts, src, dst, hdr, l4, options, verdict, None) */
static PyObject *
row_fields(const Py_buffer *v, Py_ssize_t i, const unsigned char *buf, Py_ssize_t buflen,
           PyObject *verdicts)
{
#define FV(c) col_at(&v[c], i, fcols[c].size)
    int ver = (int)FV(F_VER);
    int64_t hl = (int64_t)FV(F_DOFF) * 4;  /* (a 4-bit field in a byte: at most 1,020) */
    uint64_t data = FV(F_DATA);
    int64_t at = data <= (uint64_t)buflen ? (int64_t)data + (int64_t)FV(F_L4OFF) + 20 : -1;
    Py_ssize_t code = (Py_ssize_t)FV(F_CSUM);
    if (hl < 20 || at < 0 || at + hl - 20 > buflen || code >= PyTuple_GET_SIZE(verdicts)) {
        PyErr_SetString(PyExc_ValueError, "tcp_fields: a row's columns do not fit its batch");
        return NULL;
    }
    PyObject *hdr = Py_BuildValue(
        "(kkkkkk)", (unsigned long)FV(F_SPORT), (unsigned long)FV(F_DPORT),
        (unsigned long)FV(F_SEQ), (unsigned long)FV(F_ACK),
        (unsigned long)(FV(F_DOFF) << 12 | FV(F_RES) << 9 | FV(F_FLAGS)),
        (unsigned long)FV(F_WIN));
    PyObject *src = addr_bytes(ver, FV(F_SHI), FV(F_SLO));
    PyObject *dst = addr_bytes(ver, FV(F_DHI), FV(F_DLO));
    PyObject *opts = tcp_options_of(buf + at, (Py_ssize_t)(hl - 20));
    PyObject *res = NULL;
    if (hdr && src && dst && opts)
        res = Py_BuildValue("(KLOOOkOOO)", (unsigned long long)FV(F_FRAME), (long long)FV(F_TS),
                            src, dst, hdr, (unsigned long)FV(F_L4LEN), opts,
                            PyTuple_GET_ITEM(verdicts, code), Py_None);
    Py_XDECREF(hdr);
    Py_XDECREF(src);
    Py_XDECREF(dst);
    Py_XDECREF(opts);
    return res;
#undef FV
}

PyDoc_STRVAR(tcp_fields_doc,
"tcp_fields(rows, tcp, cols, buf, verdicts, odd) -> list\n\n"
"What the exact analyser reads of each of a batch's rows (an int64 array, in order): a\n"
"row where tcp (a bool array by row) is true from the columns, as the tuple\n"
"(frame, ts_ns, src, dst, hdr, l4, options, verdict, None) (hdr: sport, dport, seq,\n"
"ack, offset and flags, window; l4: the TCP bytes by the IP length; options: the\n"
"summary of its option bytes (tcp_options); verdict: verdicts[l4_csum]); any other row is\n"
"odd(row), a tuple of the same shape (its record last) or None (left out).");

static PyObject *
tcp_fields(PyObject *self, PyObject *args)
{
    PyObject *rows_o, *tcp_o, *cols, *buf_o, *verdicts, *odd;
    if (!PyArg_ParseTuple(args, "OOO!OO!O", &rows_o, &tcp_o, &PyDict_Type, &cols, &buf_o,
                          &PyTuple_Type, &verdicts, &odd))
        return NULL;
    Py_buffer rows, tcp, buf, v[F_N];
    int got = 0, have = 0;
    PyObject *out = NULL;
    if (get_buffer(rows_o, &rows, 0, 8, "rows") < 0)
        return NULL;
    if (get_buffer(tcp_o, &tcp, 0, 1, "tcp") < 0)
        goto rel_rows;
    if (get_buffer(buf_o, &buf, 0, 0, "buf") < 0)
        goto rel_tcp;
    have = 1;
    for (; got < F_N; got++) {
        PyObject *c = PyDict_GetItemString(cols, fcols[got].name);
        if (!c) {
            PyErr_Format(PyExc_KeyError, "tcp_fields: no column %s", fcols[got].name);
            goto done;
        }
        if (get_buffer(c, &v[got], 0, fcols[got].size, fcols[got].name) < 0)
            goto done;
    }
    Py_ssize_t n = rows.len / 8, nt = tcp.len, ncol = PY_SSIZE_T_MAX;
    for (int k = 0; k < F_N; k++)
        if (v[k].len / fcols[k].size < ncol)
            ncol = v[k].len / fcols[k].size;
    out = PyList_New(0);
    if (!out)
        goto done;
    const int64_t *r = rows.buf;
    const unsigned char *is_tcp = tcp.buf;
    for (Py_ssize_t j = 0; j < n; j++) {
        int64_t i = r[j];
        if (i < 0 || i >= ncol || i >= nt) {
            PyErr_SetString(PyExc_IndexError, "tcp_fields: a row outside the columns");
            Py_CLEAR(out);
            goto done;
        }
        PyObject *t = is_tcp[i] ? row_fields(v, i, buf.buf, buf.len, verdicts)
                                : PyObject_CallFunction(odd, "L", (long long)i);
        if (!t || (t != Py_None && PyList_Append(out, t) < 0)) {
            Py_XDECREF(t);
            Py_CLEAR(out);
            goto done;
        }
        Py_DECREF(t);
    }
done:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&v[k]);
    if (have)
        PyBuffer_Release(&buf);
rel_tcp:
    PyBuffer_Release(&tcp);
rel_rows:
    PyBuffer_Release(&rows);
    return out;
}

PyDoc_STRVAR(heap_doc,
"heap(mmap_threshold, trim_threshold) -> bool\n\n"
"Tell glibc's malloc to serve blocks below mmap_threshold bytes from its heap and to give\n"
"memory back to the system only when trim_threshold bytes at its top are free. Its\n"
"default maps each block of more than 128 KiB afresh and unmaps it when freed, so the\n"
"columnar path's megabyte chunks and column arrays, a batch's worth each, were new pages\n"
"each batch: ~90k page faults for 5M packets. False where the C library is not glibc.");

static PyObject *
heap(PyObject *self, PyObject *args)
{
    int mmap_threshold, trim_threshold;
    if (!PyArg_ParseTuple(args, "ii", &mmap_threshold, &trim_threshold))
        return NULL;
#ifdef __GLIBC__
    int ok = mallopt(M_MMAP_THRESHOLD, mmap_threshold) && mallopt(M_TRIM_THRESHOLD, trim_threshold);
    return PyBool_FromLong(ok);
#else
    Py_RETURN_FALSE;
#endif
}

PyDoc_STRVAR(fd_sockets_doc,
"fd_sockets(fd_dir) -> list of (fd, inode), or None\n\n"
"The socket inodes behind the descriptors of one process's fd directory\n"
"(/proc/PID/fd), read with the interpreter lock released: one opendir and a readlink\n"
"a descriptor. None when the directory cannot be opened (the process is gone, or\n"
"may not be read).");

static PyObject *
fd_sockets(PyObject *self, PyObject *arg)
{
    PyObject *path_b;
    if (!PyUnicode_FSConverter(arg, &path_b))
        return NULL;
    const char *path = PyBytes_AS_STRING(path_b);
    size_t cap = 64, n = 0;
    long long *pairs = malloc(cap * 2 * sizeof *pairs);
    int failed = 0, nomem = 0;
    if (pairs == NULL) {
        Py_DECREF(path_b);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    DIR *d = opendir(path);
    if (d == NULL) {
        failed = 1;
    } else {
        int dfd = dirfd(d);
        struct dirent *e;
        char link[64];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            long long inode = link_socket_inode(
                link, readlinkat(dfd, e->d_name, link, sizeof link - 1));
            if (inode < 0)
                continue;
            if (n == cap) {
                long long *more = realloc(pairs, cap * 4 * sizeof *pairs);
                if (more == NULL) {
                    nomem = 1;
                    break;
                }
                pairs = more;
                cap *= 2;
            }
            pairs[2 * n] = strtoll(e->d_name, NULL, 10);
            pairs[2 * n + 1] = inode;
            n++;
        }
        closedir(d);
    }
    Py_END_ALLOW_THREADS
    Py_DECREF(path_b);
    if (nomem) {
        free(pairs);
        return PyErr_NoMemory();
    }
    if (failed) {
        free(pairs);
        Py_RETURN_NONE;
    }
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out != NULL && i < n; i++) {
        PyObject *t = Py_BuildValue("(LL)", pairs[2 * i], pairs[2 * i + 1]);
        if (t == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, t);
    }
    free(pairs);
    return out;
}

PyDoc_STRVAR(socket_inode_doc,
"socket_inode(path) -> int\n\n"
"The inode of the socket a /proc/PID/fd/FD link names, -1 when it names none (or is\n"
"gone). One readlink, the interpreter lock held: it takes microseconds, and a thread\n"
"that let it go would wait for it back behind the capture's loop.");

static PyObject *
socket_inode(PyObject *self, PyObject *arg)
{
    PyObject *path_b;
    if (!PyUnicode_FSConverter(arg, &path_b))
        return NULL;
    char link[64];
    long long inode = link_socket_inode(
        link, readlink(PyBytes_AS_STRING(path_b), link, sizeof link - 1));
    Py_DECREF(path_b);
    return PyLong_FromLongLong(inode);
}

PyDoc_STRVAR(diag_find_doc,
"diag_find(fd, seq, request) -> (state, inode, uid, cookie, cgroup_id) or None\n\n"
"One exact sock_diag look-up on the NETLINK_SOCK_DIAG socket `fd`: `request` (an\n"
"inet_diag_req_v2) sent as SOCK_DIAG_BY_FAMILY with sequence number `seq`, and the\n"
"reply of that number read back (others are skipped). None when the kernel has no such\n"
"socket (ENOENT); OSError for any other error; cgroup_id None without\n"
"INET_DIAG_CGROUP_ID. The kernel answers before the request's send returns, so the\n"
"interpreter lock is held (a thread that let it go twice would wait twice behind the\n"
"capture's loop); only if no reply is there yet does it wait without it (1 s in all,\n"
"then ETIMEDOUT). Replies to earlier requests on the socket are read and skipped.");

static PyObject *
diag_reply(const unsigned char *p, size_t len)
{
    diag_found_t f;
    diag_parse(p, len, &f);
    if (f.has_cgroup)
        return Py_BuildValue("(IIIKK)", (unsigned)f.state, (unsigned)f.inode,
                             (unsigned)f.uid, (unsigned long long)f.cookie,
                             (unsigned long long)f.cgroup_id);
    return Py_BuildValue("(IIIKO)", (unsigned)f.state, (unsigned)f.inode, (unsigned)f.uid,
                         (unsigned long long)f.cookie, Py_None);
}

PyDoc_STRVAR(inet_diag_socket_doc,
"inet_diag_socket(payload) -> (state, inode, uid, cookie, cgroup_id) or None\n\n"
"What one inet_diag_msg reply (its payload: the 72-byte message and its attributes) says\n"
"of its socket, as diag_find returns it; None when it is too short.");

static PyObject *
inet_diag_socket(PyObject *self, PyObject *arg)
{
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *out = v.len < DIAG_MSG_LEN ? Py_NewRef(Py_None)
                                         : diag_reply(v.buf, (size_t)v.len);
    PyBuffer_Release(&v);
    return out;
}

static PyObject *
diag_find(PyObject *self, PyObject *args)
{
    int fd;
    unsigned int seq;
    Py_buffer req;
    if (!PyArg_ParseTuple(args, "iIy*:diag_find", &fd, &seq, &req))
        return NULL;
    int rc = diag_send(fd, seq, req.buf, (size_t)req.len);
    PyBuffer_Release(&req);
    if (rc < 0) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    unsigned char buf[8192] __attribute__((aligned(8)));
    diag_found_t f = {0};
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long deadline_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 + 1000;
    for (;;) {  /* (1 s in all from the send, then ETIMEDOUT) */
        rc = diag_take(fd, seq, buf, sizeof buf, &f);
        if (rc == 1)
            return Py_BuildValue("(IIIKN)", (unsigned)f.state, (unsigned)f.inode,
                                 (unsigned)f.uid, (unsigned long long)f.cookie,
                                 f.has_cgroup ? PyLong_FromUnsignedLongLong(f.cgroup_id)
                                              : Py_NewRef(Py_None));
        if (rc == 0)
            Py_RETURN_NONE;
        if (rc == -EINTR) {
            if (PyErr_CheckSignals() < 0)
                return NULL;
            continue;
        }
        if (rc != -EAGAIN) {
            errno = -rc;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long left = deadline_ms - ((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (left <= 0) {
            errno = ETIMEDOUT;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int ready, err;
        Py_BEGIN_ALLOW_THREADS
        ready = poll(&pfd, 1, (int)left);
        err = errno;
        Py_END_ALLOW_THREADS
        if (ready < 0 && err != EINTR) {
            errno = err;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

PyDoc_STRVAR(diag_destroyed_doc,
"diag_destroyed(buf) -> list of (family, protocol, local, lport, remote, rport, cookie)\n\n"
"The sock_diag destroy messages (SOCK_DIAG_BY_FAMILY, an inet_diag_msg and its\n"
"INET_DIAG_PROTOCOL attribute) in one datagram read from a socket that joined the\n"
"destroy groups; addresses 4 or 16 bytes by family, ports in host order, protocol 0\n"
"when the attribute is missing. Other messages, and a cut one, are skipped.");

static PyObject *
diag_destroyed(PyObject *self, PyObject *arg)
{
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *b = v.buf;
    size_t len = (size_t)v.len, off = 0;
    PyObject *out = PyList_New(0);
    while (out != NULL && off + 16 <= len) {
        uint32_t mlen;
        uint16_t mtype;
        memcpy(&mlen, b + off, 4);
        memcpy(&mtype, b + off + 4, 2);
        if (mlen < 16 || off + mlen > len)
            break;
        const unsigned char *p = b + off + 16;
        size_t plen = mlen - 16;
        off += (mlen + 3u) & ~3u;
        if (mtype != 20 || plen < DIAG_MSG_LEN)
            continue;
        int n = p[0] == AF_INET ? 4 : 16;
        unsigned proto = 0;
        for (size_t a = DIAG_MSG_LEN; a + 4 <= plen;) {
            uint16_t alen, atype;
            memcpy(&alen, p + a, 2);
            memcpy(&atype, p + a + 2, 2);
            if (alen < 4 || a + alen > plen)
                break;
            if ((atype & 0x3FFF) == 10 && alen >= 5) {  /* INET_DIAG_PROTOCOL */
                proto = p[a + 4];
                break;
            }
            a += (alen + 3u) & ~3u;
        }
        uint64_t cookie;
        memcpy(&cookie, p + 44, 8);
        PyObject *t = Py_BuildValue("(IIy#Iy#IK)", (unsigned)p[0], proto,
                                    (const char *)p + 8, (Py_ssize_t)n,
                                    (unsigned)(p[4] << 8 | p[5]),
                                    (const char *)p + 24, (Py_ssize_t)n,
                                    (unsigned)(p[6] << 8 | p[7]), (unsigned long long)cookie);
        if (t == NULL || PyList_Append(out, t) < 0)
            Py_CLEAR(out);
        Py_XDECREF(t);
    }
    PyBuffer_Release(&v);
    return out;
}

/* ---- FlowReader ---------------------------------------------------------------------- */

PyDoc_STRVAR(FlowReader_doc,
"FlowReader(et_at, ip_at, sweep, tcp, udp, slow)\n\n"
"reader(buf, start, caplen, ts_ns) -> entry: the attribution entry of the frame at\n"
"buf[start:start + caplen]. A frame whose EtherType (big-endian, at et_at) is IPv4 and\n"
"whose IPv4 header (at ip_at: 20 bytes, not a later fragment) carries TCP that is not\n"
"a SYN without ACK (the slow path asks again for a new connection on a known 4-tuple)\n"
"or UDP, with 34 bytes from ip_at captured, while ts_ns < sweep[0], is looked up by the\n"
"12 bytes of its addresses and ports in `tcp` or `udp` (dicts); a found entry\n"
"(owners, keep, category) counts one in the reader's `counts` (six ints, by category)\n"
"and is returned. Any other frame (ip_at < 0: every frame) is\n"
"`slow(buf, start, caplen, ts_ns)`'s. `sweep` is [sweep_at, generation]: whatever\n"
"changes the dicts puts a new generation there; until then the entry found last is\n"
"kept with its key (most frames are of the flow before) and given again.");

#define FR_CATS 6

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Py_ssize_t et_at, ip_at;
    PyObject *sweep, *tcp, *udp, *slow;
    PyObject *seen_at, *seen_gen;  /* sweep's items when last read (strong references) */
    long long sweep_at;
    PyObject *last;             /* the entry found last (a strong reference) or NULL */
    PyObject *last_table;       /* the dict it was found in (borrowed: r->tcp or r->udp) */
    Py_ssize_t last_cat;
    unsigned char last_key[12];
    unsigned long long counts[FR_CATS];
} FlowReader;

static int
FlowReader_traverse(FlowReader *r, visitproc visit, void *arg)
{
    Py_VISIT(r->sweep);
    Py_VISIT(r->tcp);
    Py_VISIT(r->udp);
    Py_VISIT(r->slow);
    Py_VISIT(r->last);
    Py_VISIT(r->seen_at);
    Py_VISIT(r->seen_gen);
    return 0;
}

static int
FlowReader_clear(FlowReader *r)
{
    Py_CLEAR(r->sweep);
    Py_CLEAR(r->tcp);
    Py_CLEAR(r->udp);
    Py_CLEAR(r->slow);
    Py_CLEAR(r->last);
    Py_CLEAR(r->seen_at);
    Py_CLEAR(r->seen_gen);
    return 0;
}

static void
FlowReader_dealloc(FlowReader *r)
{
    PyObject_GC_UnTrack(r);
    FlowReader_clear(r);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

/* a nanosecond time stamp as a C integer: on CPython 3.11 read from its 30-bit digits
   (PyLong_AsLongLong takes its general path for any int of more than one digit: a
   tenth of the reader's time a frame), else, and for anything unusual, the usual way */
static inline long long
ns_of(PyObject *o)
{
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000 && PyLong_SHIFT == 30
    if (PyLong_CheckExact(o)) {
        const digit *d = ((PyLongObject *)o)->ob_digit;
        switch (Py_SIZE(o)) {
        case 0: return 0;
        case 1: return (long long)d[0];
        case 2: return (long long)d[0] | (long long)d[1] << 30;
        case 3:
            if (d[2] < 8)  /* below 2**63 */
                return (long long)d[0] | (long long)d[1] << 30 | (long long)d[2] << 60;
            break;
        default: break;
        }
    }
#endif
    return PyLong_AsLongLong(o);
}

/* sweep's items read again when they changed (the dicts may have too: the entry kept
   is forgotten) */
static int
flow_sync(FlowReader *r)
{
    if (PyList_GET_SIZE(r->sweep) < 2) {
        PyErr_SetString(PyExc_ValueError, "FlowReader: sweep is [sweep_at, generation]");
        return -1;
    }
    PyObject *at = PyList_GET_ITEM(r->sweep, 0), *gen = PyList_GET_ITEM(r->sweep, 1);
    if (at == r->seen_at && gen == r->seen_gen)
        return 0;
    long long v = PyLong_AsLongLong(at);
    if (v == -1 && PyErr_Occurred())
        return -1;
    r->sweep_at = v;
    Py_XSETREF(r->seen_at, Py_NewRef(at));
    Py_XSETREF(r->seen_gen, Py_NewRef(gen));
    Py_CLEAR(r->last);
    return 0;
}

/* the category of a found entry (owners, keep, category), -1 with an error set */
static Py_ssize_t
flow_category(PyObject *e)
{
    Py_ssize_t cat;
    if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) < 3 ||
        (cat = PyLong_AsSsize_t(PyTuple_GET_ITEM(e, 2))) < 0 || cat >= FR_CATS) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "an attribution entry is (owners, keep, category)");
        return -1;
    }
    return cat;
}

/* the entry of the frame at p (`avail` bytes there, `caplen` captured) when the tables
   hold it: a new reference, NULL with no error set when they do not, NULL with an error
   set on failure */
static PyObject *
flow_fast_at(FlowReader *r, const unsigned char *p, Py_ssize_t avail, Py_ssize_t caplen,
             long long ts)
{
    if (r->ip_at < 0 || caplen < r->ip_at + 34 || r->ip_at + 34 > avail || flow_sync(r) < 0 ||
        ts >= r->sweep_at)
        return NULL;
    PyObject *e = NULL, *table = NULL;
    Py_ssize_t cat = -1;
    const unsigned char *ip = p + r->ip_at;
    unsigned et = (unsigned)p[r->et_at] << 8 | p[r->et_at + 1];
    unsigned frag = ((unsigned)ip[6] << 8 | ip[7]) & 0x1FFF;
    if (et == 0x0800 && ip[0] == 0x45 && frag == 0) {
        if (ip[9] == 6 && (ip[33] & 0x12) != 0x02)  /* (a SYN alone: slow) */
            table = r->tcp;
        else if (ip[9] == 17)
            table = r->udp;
    }
    if (table != NULL && r->last != NULL && table == r->last_table &&
        memcmp(ip + 12, r->last_key, 12) == 0) {
        e = Py_NewRef(r->last);
        cat = r->last_cat;
    } else if (table != NULL) {
        PyObject *key = PyBytes_FromStringAndSize((const char *)ip + 12, 12);
        if (key != NULL) {
            e = PyDict_GetItemWithError(table, key);  /* borrowed */
            Py_DECREF(key);
            Py_XINCREF(e);
        }
        if (e != NULL) {
            cat = flow_category(e);
            if (cat < 0) {
                Py_CLEAR(e);
            } else {
                Py_XSETREF(r->last, Py_NewRef(e));
                r->last_table = table;
                r->last_cat = cat;
                memcpy(r->last_key, ip + 12, 12);
            }
        }
    }
    if (e != NULL)
        r->counts[cat] += 1;
    return e;
}

static PyObject *
flow_fast(FlowReader *r, PyObject *buf, Py_ssize_t start, Py_ssize_t caplen,
          long long ts)
{
    if (r->ip_at < 0 || caplen < r->ip_at + 34 || start < 0)
        return NULL;
    Py_buffer v;
    if (PyObject_GetBuffer(buf, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *e = start <= v.len ? flow_fast_at(r, (const unsigned char *)v.buf + start,
                                                v.len - start, caplen, ts) : NULL;
    PyBuffer_Release(&v);
    return e;
}

static PyObject *
FlowReader_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    FlowReader *r = (FlowReader *)self;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (n != 4 || (kw != NULL && PyTuple_GET_SIZE(kw))) {
        PyErr_SetString(PyExc_TypeError, "reader(buf, start, caplen, ts_ns)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Py_ssize_t caplen = start == -1 && PyErr_Occurred() ? -1 : PyLong_AsSsize_t(args[2]);
    long long ts = caplen == -1 && PyErr_Occurred() ? -1 : ns_of(args[3]);
    if (ts == -1 && PyErr_Occurred())
        return NULL;
    PyObject *e = flow_fast(r, args[0], start, caplen, ts);
    if (e != NULL || PyErr_Occurred())
        return e;
    return PyObject_Vectorcall(r->slow, args, 4, NULL);
}

static PyObject *
FlowReader_get_counts(FlowReader *r, void *closure)
{
    PyObject *t = PyTuple_New(FR_CATS);
    for (Py_ssize_t i = 0; t != NULL && i < FR_CATS; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(r->counts[i]);
        if (v == NULL)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

static PyGetSetDef FlowReader_getset[] = {
    {"counts", (getter)FlowReader_get_counts, NULL,
     "frames the tables answered, by category (a tuple of six ints)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyObject *
FlowReader_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    Py_ssize_t et_at, ip_at;
    PyObject *sweep, *tcp, *udp, *slow;
    if (!PyArg_ParseTuple(args, "nnO!O!O!O:FlowReader", &et_at, &ip_at, &PyList_Type, &sweep,
                          &PyDict_Type, &tcp, &PyDict_Type, &udp, &slow))
        return NULL;
    if (PyList_GET_SIZE(sweep) < 2 || !PyCallable_Check(slow) ||
        (ip_at >= 0 && (et_at < 0 || et_at + 2 > ip_at))) {
        PyErr_SetString(PyExc_ValueError, "FlowReader: sweep is [sweep_at, generation], slow is callable, "
                        "the EtherType lies before the IP header");
        return NULL;
    }
    FlowReader *r = (FlowReader *)type->tp_alloc(type, 0);
    if (r == NULL)
        return NULL;
    r->vectorcall = FlowReader_vectorcall;
    r->et_at = et_at;
    r->ip_at = ip_at;
    r->sweep = Py_NewRef(sweep);
    r->tcp = Py_NewRef(tcp);
    r->udp = Py_NewRef(udp);
    r->slow = Py_NewRef(slow);
    r->last = r->seen_at = r->seen_gen = NULL;
    memset(r->counts, 0, sizeof r->counts);
    if (flow_sync(r) < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return (PyObject *)r;
}

static PyTypeObject FlowReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rawlab._kernels.FlowReader",
    .tp_basicsize = sizeof(FlowReader),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = FlowReader_doc,
    .tp_new = FlowReader_new,
    .tp_dealloc = (destructor)FlowReader_dealloc,
    .tp_traverse = (traverseproc)FlowReader_traverse,
    .tp_clear = (inquiry)FlowReader_clear,
    .tp_vectorcall_offset = offsetof(FlowReader, vectorcall),
    .tp_getset = FlowReader_getset,
    .tp_call = PyVectorcall_Call,
};

/* ---- ring_epbs ------------------------------------------------------------------------ */

PyDoc_STRVAR(ring_epbs_doc,
"ring_epbs(mm, cur, cfg, plain, at, tail_of, st, out) -> (matched, stop, ts, ifindex)\n\n"
"`capture -w`'s loop over one TPACKET_V3 block (rawlab.pipeline.write_ring): from the\n"
"frame at cur[0] (cur: [offset, frames left in the block, frames kept, frames skipped],\n"
"advanced in place), each frame the direction keeps (cfg: lo ifindex, want_in, want_out)\n"
"becomes a pcapng EPB appended to the bytearray `out`: a cooked header of cfg[5] bytes\n"
"(0, 16: SLL, 20: SLL2) written in front of it in the ring, snap length cfg[3], a VLAN\n"
"tag the kernel took off put back when its status has cfg[4] (TP_STATUS_VLAN_VALID; 0:\n"
"never), interface cfg[7], or on `any` cfg[6][ifindex] (cfg[6] a dict, else None).\n"
"Without `at` (None) its option run is plain[pkttype & 7]; with `at` (a FlowReader) the\n"
"frame's entry (owners, keep, category) is asked, a frame not kept is dropped, and the\n"
"run is tail_of(entry, pkttype & 7), asked again only when the entry and pkttype are\n"
"neither the frame before's nor those before them (st: [entry, pkttype, run, EPBs in\n"
"out, entry asked of a frame not yet written, EPBs made by this call (set also when it\n"
"fails), the entry, pkttype and run before]). Stops (`stop`) at\n"
"the block's end (0), after cfg[11] EPBs (1; and with -C after a frame tail_of was asked\n"
"for), before a kept frame whose time stamp is >= cfg[8] or when the EPB bytes made\n"
"exceed cfg[9] (-C: the file's room; 2: `ts` is its; its entry waits in st[4]) or whose\n"
"interface has no number yet (4: cfg[7] is -1, or `ifindex` is not in cfg[6]; the\n"
"caller numbers it, and calls again with cfg[12] true: that frame passed the new-file\n"
"test), after cfg[10] EPBs made by this call (3; -1: no limit; 0: at\n"
"once). With cfg[13] true each frame is a classic pcap record (nanosecond time stamps,\n"
"no options; `at` only chooses the frames) instead of an EPB. Little-endian hosts (the\n"
"ring's fields are the host's). The frames' bytes are\n"
"rawlab.sockets.packet.ring.PacketRing.frames' and the EPBs pipeline.write_ring's\n"
"interpreted loop's (tests/unit/test_write_ring.py).");

#define TP_VLAN_TPID_VALID 64
#define PKT_OUTGOING 4

/* append one classic pcap record (nanosecond magic: PcapWriter.write's) to out; st[3]
   counts it */
static int
pcap_put(PyObject *out, PyObject *st, const unsigned char *data, Py_ssize_t n,
         Py_ssize_t wire, unsigned long long ts)
{
    Py_ssize_t len = PyByteArray_GET_SIZE(out);
    if (ts > 0xFFFFFFFFULL * 1000000000ULL)  /* (32 bits of seconds) */
        ts = 0xFFFFFFFFULL * 1000000000ULL;
    if (PyByteArray_Resize(out, len + 16 + n) < 0)
        return -1;
    unsigned char *p = (unsigned char *)PyByteArray_AS_STRING(out) + len;
    uint32_t h[4] = {(uint32_t)(ts / 1000000000ULL), (uint32_t)(ts % 1000000000ULL),
                     (uint32_t)n, (uint32_t)(wire > n ? wire : n)};
    memcpy(p, h, sizeof h);
    memcpy(p + 16, data, n);
    Py_ssize_t had = PyLong_AsSsize_t(PyList_GET_ITEM(st, 3));
    PyObject *k = had < 0 ? NULL : PyLong_FromSsize_t(had + 1);
    if (k == NULL) {
        PyByteArray_Resize(out, len);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "st[3] counts the records in out");
        return -1;
    }
    return PyList_SetItem(st, 3, k);
}

/* whether st[at], st[at + 1] are entry e and pkttype pt */
static inline int
epb_slot_is(PyObject *st, Py_ssize_t at, PyObject *e, int pt)
{
    PyObject *p = PyList_GET_ITEM(st, at + 1);
    return PyList_GET_ITEM(st, at) == e && PyLong_CheckExact(p) && PyLong_AsLong(p) == pt;
}

/* one frame's option run for entry e, borrowed from st: the frame before's (st[0..2]),
   the one before that other entry (st[6..8]: most captures interleave one busy flow
   with others: the two are swapped), else tail_of's, which goes in front */
static PyObject *
epb_tail(PyObject *st, PyObject *tail_of, PyObject *e, int pt, int *asked)
{
    if (epb_slot_is(st, 0, e, pt))
        return PyList_GET_ITEM(st, 2);
    PyObject *t;
    if (epb_slot_is(st, 6, e, pt)) {
        t = Py_NewRef(PyList_GET_ITEM(st, 8));
    } else {
        *asked = 1;
        t = PyObject_CallFunction(tail_of, "Oi", e, pt);
        if (t == NULL)
            return NULL;
        if (!PyBytes_Check(t)) {
            Py_DECREF(t);
            PyErr_SetString(PyExc_TypeError, "tail_of must give bytes");
            return NULL;
        }
    }
    PyObject *ptv = PyLong_FromLong(pt);
    if (ptv == NULL) {
        Py_DECREF(t);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < 3; i++)  /* the frame before's, second now */
        PyList_SetItem(st, 6 + i, Py_NewRef(PyList_GET_ITEM(st, i)));
    PyList_SetItem(st, 0, Py_NewRef(e));
    PyList_SetItem(st, 1, ptv);
    PyList_SetItem(st, 2, t);
    return t;  /* (borrowed from st) */
}

/* append one EPB to out; st[3] counts it */
static int
epb_put(PyObject *out, PyObject *st, const unsigned char *data, Py_ssize_t n,
        Py_ssize_t wire, unsigned idx, unsigned long long ts, PyObject *tail)
{
    static const unsigned char zeros[4];
    Py_ssize_t pad = (4 - (n & 3)) & 3, tl = PyBytes_GET_SIZE(tail);
    Py_ssize_t total = 32 + n + pad + tl, len = PyByteArray_GET_SIZE(out);
    if (total > 0xFFFFFFFFLL || PyByteArray_Resize(out, len + total) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "an EPB over 4 GiB");
        return -1;
    }
    unsigned char *p = (unsigned char *)PyByteArray_AS_STRING(out) + len;
    uint32_t h[7] = {6, (uint32_t)total, idx, (uint32_t)(ts >> 32), (uint32_t)ts,
                     (uint32_t)n, (uint32_t)wire};
    memcpy(p, h, sizeof h);
    memcpy(p + 28, data, n);
    memcpy(p + 28 + n, zeros, pad);
    memcpy(p + 28 + n + pad, PyBytes_AS_STRING(tail), tl);
    uint32_t t32 = (uint32_t)total;
    memcpy(p + 28 + n + pad + tl, &t32, 4);
    Py_ssize_t had = PyLong_AsSsize_t(PyList_GET_ITEM(st, 3));
    PyObject *k = had < 0 ? NULL : PyLong_FromSsize_t(had + 1);
    if (k == NULL) {  /* (out of memory, or st[3] is not a count: the EPB taken back) */
        PyByteArray_Resize(out, len);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "st[3] counts the EPBs in out");
        return -1;
    }
    return PyList_SetItem(st, 3, k);
}

/* the frame's entry: st[4]'s when a stop left it there, else the reader's (fast, or its
   `slow` on a copy of the bytes); a new reference, NULL on failure */
static PyObject *
epb_entry(FlowReader *r, PyObject *st, const unsigned char *data, Py_ssize_t n,
          unsigned long long ts)
{
    PyObject *e = PyList_GET_ITEM(st, 4);
    if (e != Py_None) {
        Py_INCREF(e);
        PyList_SetItem(st, 4, Py_NewRef(Py_None));
        return e;
    }
    e = flow_fast_at(r, data, n, n, (long long)ts);
    if (e != NULL || PyErr_Occurred())
        return e;
    PyObject *b = PyBytes_FromStringAndSize((const char *)data, n);
    PyObject *zero = PyLong_FromLong(0), *nv = PyLong_FromSsize_t(n);
    PyObject *tv = PyLong_FromUnsignedLongLong(ts);
    if (b != NULL && zero != NULL && nv != NULL && tv != NULL) {
        PyObject *args[4] = {b, zero, nv, tv};
        e = PyObject_Vectorcall(r->slow, args, 4, NULL);
    }
    Py_XDECREF(b);
    Py_XDECREF(zero);
    Py_XDECREF(nv);
    Py_XDECREF(tv);
    return e;
}

typedef struct {
    long lo;
    int want_in, want_out;
    Py_ssize_t snaplen;
    unsigned vlan;
    Py_ssize_t hl;                       /* the cooked header's length: 0, 16 or 20 */
    long long idx, until, limit, batch;
    long long room, made;                /* -C: the file's room left, the EPB bytes made */
    int asked;                           /* tail_of was called (it may write a block) */
    int checked;                         /* the first kept frame passed the new-file test
                                            (before a stop 4: its IDB goes where it goes) */
    int pcap;                            /* classic pcap records, not EPBs */
    PyObject *numbers;                   /* `any`: ifindex -> interface number; or NULL */
    FlowReader *r;                       /* NULL: no attribution */
    PyObject *plain, *tail_of, *st, *out;
    unsigned char small[2048], *big;     /* a frame with its VLAN tag put back */
} epb_run_t;

/* the tpacket3_hdr and sockaddr_ll fields the loop reads (<linux/if_packet.h>) */
typedef struct {
    uint32_t next, sec, nsec, cap, wire, status, tci;
    uint16_t mac, tpid;
    int32_t ifindex;
    int pkttype;
} tp3_t;

static inline void
tp3_read(const unsigned char *f, tp3_t *h)
{
    memcpy(&h->next, f, 4);
    memcpy(&h->sec, f + 4, 4);
    memcpy(&h->nsec, f + 8, 4);
    memcpy(&h->cap, f + 12, 4);
    memcpy(&h->wire, f + 16, 4);
    memcpy(&h->status, f + 20, 4);
    memcpy(&h->mac, f + 24, 2);
    memcpy(&h->tci, f + 32, 4);
    memcpy(&h->tpid, f + 36, 2);
    memcpy(&h->ifindex, f + 52, 4);
    h->pkttype = f[58];
}

/* the frame with the VLAN tag the kernel took off put back after the MAC addresses (as
   libpcap does; rawlab.sockets.packet.ring.vlan_tagged); NULL when out of memory */
static const unsigned char *
vlan_put_back(epb_run_t *c, const tp3_t *h, const unsigned char *data, Py_ssize_t n)
{
    unsigned char *t = c->small;
    if (n + 4 > (Py_ssize_t)sizeof c->small) {
        t = PyMem_Realloc(c->big, n + 4);
        if (t == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        c->big = t;
    }
    uint16_t tp = h->status & TP_VLAN_TPID_VALID ? h->tpid : 0x8100;
    memcpy(t, data, 12);
    t[12] = tp >> 8;
    t[13] = tp & 0xFF;
    t[14] = (h->tci >> 8) & 0xFF;
    t[15] = h->tci & 0xFF;
    memcpy(t + 16, data + 12, n - 12);
    return t;
}

enum { EPB_WRITTEN, EPB_DROPPED, EPB_NEW_FILE, EPB_NO_IDB, EPB_FAILED };

/* the cooked header (SLL2 or SLL, as the kernel's sockaddr_ll says) written in front of
   the frame's bytes at p (PacketRing.frames does the same) */
static void
cooked_put(unsigned char *p, const unsigned char *f, const tp3_t *h, Py_ssize_t hl)
{
    uint16_t hatype;
    memcpy(&hatype, f + 56, 2);
    if (hl == 20) {  /* SLL2: protocol, reserved, ifindex, hatype, pkttype, halen, addr */
        uint32_t ifi = htonl((uint32_t)h->ifindex);
        memcpy(p, f + 50, 2);  /* (sll_protocol: network order already) */
        p[2] = p[3] = 0;
        memcpy(p + 4, &ifi, 4);
        p[8] = hatype >> 8;
        p[9] = hatype & 0xFF;
        p[10] = (unsigned char)h->pkttype;
        p[11] = f[59];
        memcpy(p + 12, f + 60, 8);
    } else {  /* SLL: pkttype, hatype, halen, addr, protocol */
        p[0] = 0;
        p[1] = (unsigned char)h->pkttype;
        p[2] = hatype >> 8;
        p[3] = hatype & 0xFF;
        p[4] = 0;
        p[5] = f[59];
        memcpy(p + 6, f + 60, 8);
        memcpy(p + 14, f + 50, 2);
    }
}

/* the frame's interface number: cfg's, or on `any` its ifindex's; -1 when unknown yet
   (-2 with an error set) */
static long long
epb_interface(epb_run_t *c, const tp3_t *h)
{
    if (c->numbers == NULL)
        return c->idx;
    PyObject *k = PyLong_FromLong(h->ifindex);
    if (k == NULL)
        return -2;
    PyObject *got = PyDict_GetItemWithError(c->numbers, k);  /* borrowed */
    Py_DECREF(k);
    if (got == NULL)
        return PyErr_Occurred() ? -2 : -1;
    long long n = PyLong_AsLongLong(got);
    return n == -1 && PyErr_Occurred() ? -2 : n;
}

/* one frame the direction keeps (n bytes at data, on_wire long): its EPB appended to
   c->out, or why not */
static int
epb_frame(epb_run_t *c, const tp3_t *h, const unsigned char *data, Py_ssize_t n,
          Py_ssize_t on_wire, unsigned long long ts)
{
    if ((h->status & c->vlan) && n >= 12) {
        if ((data = vlan_put_back(c, h, data, n)) == NULL)
            return EPB_FAILED;
        n += 4;
        on_wire += 4;
    }
    PyObject *e = NULL, *tail;
    if (c->r != NULL) {
        if ((e = epb_entry(c->r, c->st, data, n, ts)) == NULL)
            return EPB_FAILED;
        int k = PyTuple_Check(e) && PyTuple_GET_SIZE(e) >= 2
            ? PyObject_IsTrue(PyTuple_GET_ITEM(e, 1)) : -1;
        if (k <= 0) {  /* (0: a frame of a process not asked for) */
            if (k < 0 && !PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "an attribution entry is (owners, keep, category)");
            Py_DECREF(e);
            return k < 0 ? EPB_FAILED : EPB_DROPPED;
        }
    }
    int due = !c->checked && ((long long)ts >= c->until || c->made > c->room);  /* (-C: `>`) */
    c->checked = 0;
    long long idx = due ? -1 : epb_interface(c, h);
    if (idx < 0) {  /* a new file, or an IDB, first */
        if (idx == -2) {
            Py_XDECREF(e);
            return EPB_FAILED;
        }
        if (e != NULL)
            PyList_SetItem(c->st, 4, e);  /* (asked once: the frame's next turn takes it) */
        return due ? EPB_NEW_FILE : EPB_NO_IDB;
    }
    if (c->pcap) {  /* (no options: the entry only chose the frame) */
        int rc = pcap_put(c->out, c->st, data, n, on_wire, ts) < 0 ? EPB_FAILED : EPB_WRITTEN;
        if (rc == EPB_WRITTEN)
            c->made += 16 + n;
        Py_XDECREF(e);
        return rc;
    }
    int pt = h->pkttype & 7;
    tail = c->r == NULL ? PyTuple_GET_ITEM(c->plain, pt)
                        : epb_tail(c->st, c->tail_of, e, pt, &c->asked);
    int rc = tail == NULL || epb_put(c->out, c->st, data, n, on_wire, (unsigned)idx, ts,
                                     tail) < 0 ? EPB_FAILED : EPB_WRITTEN;
    if (rc == EPB_WRITTEN)  /* (epb_put's total: header and trailing length 32 bytes) */
        c->made += 32 + n + ((4 - (n & 3)) & 3) + PyBytes_GET_SIZE(tail);
    Py_XDECREF(e);
    return rc;
}

/* ring_epbs' arguments, checked; 0 or -1 with an error set */
static int
epb_args(PyObject *args, epb_run_t *c, PyObject **mm, PyObject **cur)
{
    PyObject *cfg, *at;
    memset(c, 0, offsetof(epb_run_t, small));
    c->big = NULL;
    if (!PyArg_ParseTuple(args, "OO!O!O!OOO!O!:ring_epbs", mm, &PyList_Type, cur,
                          &PyTuple_Type, &cfg, &PyTuple_Type, &c->plain, &at, &c->tail_of,
                          &PyList_Type, &c->st, &PyByteArray_Type, &c->out) ||
        !PyArg_ParseTuple(cfg, "lppnInOLLLLLpp:ring_epbs cfg", &c->lo, &c->want_in,
                          &c->want_out, &c->snaplen, &c->vlan, &c->hl, &c->numbers, &c->idx,
                          &c->until, &c->room, &c->limit, &c->batch, &c->checked, &c->pcap))
        return -1;
    if (c->numbers == Py_None) {
        c->numbers = NULL;
    } else if (!PyDict_Check(c->numbers)) {
        PyErr_SetString(PyExc_TypeError, "numbers is a dict or None");
        return -1;
    }
    if (c->hl != 0 && c->hl != 16 && c->hl != 20) {
        PyErr_SetString(PyExc_ValueError, "a cooked header is 16 or 20 bytes");
        return -1;
    }
    if (at != Py_None && !PyObject_TypeCheck(at, &FlowReaderType)) {
        PyErr_SetString(PyExc_TypeError, "at must be a FlowReader or None");
        return -1;
    }
    c->r = at == Py_None ? NULL : (FlowReader *)at;
    if (PyList_GET_SIZE(*cur) != 4 || PyList_GET_SIZE(c->st) != 9 ||
        PyTuple_GET_SIZE(c->plain) != 8) {
        PyErr_SetString(PyExc_ValueError, "cur has 4 items, st 9, plain 8");
        return -1;
    }
    for (int i = 0; i < 8; i++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(c->plain, i))) {
            PyErr_SetString(PyExc_TypeError, "plain holds bytes");
            return -1;
        }
    return 0;
}

static PyObject *
ring_epbs(PyObject *self, PyObject *args)
{
    PyObject *mm, *cur;
    epb_run_t c;
    if (epb_args(args, &c, &mm, &cur) < 0)
        return NULL;
    Py_ssize_t at[4];  /* the cursor: offset, left, kept, skipped */
    for (int i = 0; i < 4; i++)
        at[i] = PyLong_AsSsize_t(PyList_GET_ITEM(cur, i));
    Py_buffer v;  /* (writable for a cooked header) */
    if (PyErr_Occurred() || PyObject_GetBuffer(mm, &v, c.hl ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0)
        return NULL;
    int waiting_if = 0;  /* the ifindex of a frame waiting for its interface's number */
    long long matched = 0, stop = c.limit == 0 ? 3 : 0;  /* (-c 0: nothing) */
    unsigned long long ts = 0;
    int err = 0;
    while (at[1] > 0 && !stop) {
        tp3_t h;
        if (at[0] < 0 || at[0] + 68 > v.len) {
            PyErr_Format(PyExc_ValueError, "a frame header at %zd lies outside the ring", at[0]);
            err = 1;
            break;
        }
        tp3_read((const unsigned char *)v.buf + at[0], &h);
        int keep = h.pkttype == PKT_OUTGOING ? (c.want_out && h.ifindex != c.lo) : c.want_in;
        int rc = EPB_DROPPED;
        if (keep) {
            Py_ssize_t start = at[0] + h.mac, cap = h.cap, wire = h.wire;
            if (c.hl && h.mac < 68 + c.hl) {  /* never with SOCK_DGRAM; be safe */
                PyErr_Format(PyExc_ValueError, "cooked frame has no room for its header "
                             "(tp_mac %u)", (unsigned)h.mac);
                err = 1;
                break;
            }
            start -= c.hl;
            cap += c.hl;
            wire += c.hl;
            Py_ssize_t n = cap < c.snaplen ? cap : c.snaplen;
            if (at[0] + h.mac > v.len || start + n > v.len) {
                PyErr_Format(PyExc_ValueError, "a frame at %zd runs past the ring", at[0]);
                err = 1;
                break;
            }
            if (c.hl)
                cooked_put((unsigned char *)v.buf + start, (const unsigned char *)v.buf + at[0],
                           &h, c.hl);
            ts = (unsigned long long)h.sec * 1000000000ULL + h.nsec;
            rc = epb_frame(&c, &h, (const unsigned char *)v.buf + start, n, wire, ts);
            waiting_if = h.ifindex;
            if (rc == EPB_FAILED) {  /* (seen and passed, as the interpreted loop does) */
                at[2] += 1;
                at[0] += h.next;
                at[1] -= 1;
                err = 1;
                break;
            }
            if (rc == EPB_NEW_FILE || rc == EPB_NO_IDB) {  /* the frame waits */
                stop = rc == EPB_NEW_FILE ? 2 : 4;
                break;
            }
        }
        at[2 + !keep] += 1;
        at[0] += h.next;
        at[1] -= 1;
        if (rc == EPB_WRITTEN) {
            matched++;
            if (c.limit >= 0 && matched >= c.limit) {
                stop = 3;
                break;
            }
            if (matched >= c.batch || (c.asked && c.room != LLONG_MAX)) {
                /* (-C: a block tail_of wrote counts: the caller gives the room again) */
                stop = 1;
                break;
            }
        }
    }
    PyBuffer_Release(&v);
    PyMem_Free(c.big);
    for (int i = 0; i < 5; i++) {  /* (also when failing: what was done is counted) */
        PyObject *x = i < 4 ? PyLong_FromSsize_t(at[i]) : PyLong_FromLongLong(matched);
        if (x == NULL || PyList_SetItem(i < 4 ? cur : c.st, i < 4 ? i : 5, x) < 0)
            err = 1;  /* (SetItem took it either way) */
    }
    if (err)
        return NULL;
    return Py_BuildValue("LLKi", matched, stop, ts, waiting_if);
}

static PyMethodDef methods[] = {
    {"buffer", buffer, METH_O, buffer_doc},
    {"heap", heap, METH_VARARGS, heap_doc},
    {"groups", groups, METH_VARARGS, groups_doc},
    {"pcap_chain", pcap_chain, METH_VARARGS, pcap_chain_doc},
    {"pcapng_epbs", pcapng_epbs, METH_VARARGS, pcapng_epbs_doc},
    {"extract", extract, METH_VARARGS, extract_doc},
    {"lines", lines, METH_VARARGS, lines_doc},
    {"relative", relative, METH_VARARGS, relative_doc},
    {"tcpdump_lines", tcpdump_lines, METH_VARARGS, tcpdump_lines_doc},
    {"segments_json", segments_json, METH_VARARGS, segments_json_doc},
    {"tcp_fields", tcp_fields, METH_VARARGS, tcp_fields_doc},
    {"tcp_options", tcp_options_py, METH_O, tcp_options_doc},
    {"fd_sockets", fd_sockets, METH_O, fd_sockets_doc},
    {"socket_inode", socket_inode, METH_O, socket_inode_doc},
    {"diag_find", diag_find, METH_VARARGS, diag_find_doc},
    {"inet_diag_socket", inet_diag_socket, METH_O, inet_diag_socket_doc},
    {"diag_destroyed", diag_destroyed, METH_O, diag_destroyed_doc},
    {"ring_epbs", ring_epbs, METH_VARARGS, ring_epbs_doc},
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
    if (PyType_Ready(&FlowReaderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddObjectRef(m, "FlowReader", (PyObject *)&FlowReaderType) < 0)
        Py_CLEAR(m);
    return m;
}
