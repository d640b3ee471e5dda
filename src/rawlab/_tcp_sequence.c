/* rawlab._tcp_sequence: Wireshark's TCP sequence analysis of one segment, compiled.
 *
 *   Flow()
 *       Wireshark's tcp_flow_t + tcp_analyze_seq_flow_info_t for one direction of a
 *       connection: the fields the exact analyser (rawlab.analysis.tcp) reads and writes
 *       as attributes, and the unacknowledged segments, kept here
 *   segment(fwd, rev, frame, ts, stream, dir, src, sport, dst, dport, seq, ack, flags,
 *           seglen, win, csum, options, first_rtt, taflags, Segment)
 *           -> (segment, taflags, rtt)
 *       one segment of fwd's sender: the base sequence numbers once known,
 *       tcp_analyze_sequence_number (epan/dissectors/packet-tcp.c, 4.0) adding its
 *       TCP_A_* bits to taflags, the segments its ACK covers (the first sent of those
 *       ending at it: its frame and RTT), the bytes in flight after it (None where
 *       Wireshark shows none), and the Segment event (rawlab.analysis.tcp.events) that
 *       carries them, built here
 *
 * Sequence numbers are raw 32-bit values compared wrap-safely (GT_SEQ). The unacked
 * segments are kept sorted by relative sequence number (Wireshark keeps a list it walks
 * on every ACK), so an ACK looks only at what it covers and the bytes in flight are read
 * from both ends; at most TCP_MAX_UNACKED_SEGMENTS a direction, as Wireshark.
 *
 * Before this module the same rules were Python (analysis/tcp/sequence.py, rtt.py and
 * expert.retransmission), ~2 µs a segment; the exact analyser's tests against tshark
 * hold them (tests/unit/test_tcp_analyzer.py, test_tcp_captures.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#include "_buffers.h"

/* the TCP_A_* bits (packet-tcp.c) */
#define A_RETRANSMISSION 0x0001
#define A_LOST_PACKET 0x0002
#define A_ACK_LOST_PACKET 0x0004
#define A_KEEP_ALIVE 0x0008
#define A_DUPLICATE_ACK 0x0010
#define A_ZERO_WINDOW 0x0020
#define A_ZERO_WINDOW_PROBE 0x0040
#define A_ZERO_WINDOW_PROBE_ACK 0x0080
#define A_KEEP_ALIVE_ACK 0x0100
#define A_OUT_OF_ORDER 0x0200
#define A_FAST_RETRANSMISSION 0x0400
#define A_WINDOW_UPDATE 0x0800
#define A_WINDOW_FULL 0x1000
#define A_REUSED_PORTS 0x2000
#define A_SPURIOUS_RETRANSMISSION 0x4000

#define FAST_RTX_NS 20000000LL   /* a fast retransmission follows the last dup ACK within */
#define OOO_DEFAULT_NS 3000000LL /* the out-of-order threshold without an iRTT */
#define TCP_MAX_UNACKED_SEGMENTS 10000 /* packet-tcp.h */
#define MAX_TCP_SACK_RANGES 4  /* packet-tcp.h; 3 of them kept for the bytes in flight */

/* TCP flags */
#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10
#define SYN_FIN (F_SYN | F_FIN)
#define SYN_FIN_RST (F_SYN | F_FIN | F_RST)

static inline int
gt_seq(uint32_t x, uint32_t y)  /* GT_SEQ(x, y): (int32)(x - y) > 0 */
{
    uint32_t d = x - y;
    return d > 0 && d < 0x80000000u;
}

typedef struct {  /* an unacknowledged segment */
    uint32_t rel, nxt;  /* its sequence number less the base; its next sequence number */
    int64_t frame, ts;
} useg_t;

typedef struct {
    PyObject_HEAD
    long long base, nextseq, nextseqframe, nextseqtime, maxseqtobeacked, lastack;
    long long lastacktime, lastnondupack, dupacknum, window, win_scale, lastsegflags;
    long long max_nrel, fin_seq;  /* fin_seq: -1 none */
    char base_set, is_first_ack, valid_bif, saw_syn, saw_synack, fin_acked;
    int nsack;
    uint32_t sack[MAX_TCP_SACK_RANGES - 1][2];
    PyObject *hist_n;  /* Zeek history letters seen, and how often (analysis/tcp/zeek.py) */
    useg_t *segs;
    Py_ssize_t nsegs, cap;
} Flow;

static PyTypeObject FlowType;

static PyObject *
Flow_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    if (PyTuple_GET_SIZE(args) || (kw && PyDict_GET_SIZE(kw))) {
        PyErr_SetString(PyExc_TypeError, "Flow() takes no arguments");
        return NULL;
    }
    Flow *f = (Flow *)type->tp_alloc(type, 0);
    if (!f)
        return NULL;
    f->window = 0xFFFFFFFFLL;  /* G_MAXUINT32: nothing seen yet */
    f->win_scale = -1;
    f->valid_bif = 1;
    f->fin_seq = -1;
    f->hist_n = PyDict_New();
    if (!f->hist_n) {
        Py_DECREF(f);
        return NULL;
    }
    return (PyObject *)f;
}

static void
Flow_dealloc(Flow *f)
{
    PyObject_GC_UnTrack(f);
    Py_CLEAR(f->hist_n);
    PyMem_Free(f->segs);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

static int
Flow_traverse(Flow *f, visitproc visit, void *arg)
{
    Py_VISIT(f->hist_n);
    return 0;
}

static int
Flow_clear(Flow *f)
{
    Py_CLEAR(f->hist_n);
    return 0;
}

/* ---- the unacknowledged segments (rtt.py before) ------------------------------------ */

/* Add the segment (if it takes sequence space and there is room); its next sequence
 * number (+1 for SYN or FIN when remembered, as Wireshark). -1: out of memory. */
static int
remember(Flow *fwd, uint32_t seq, int64_t seglen, int flags, int64_t frame, int64_t ts,
         uint32_t *nxt_out)
{
    uint32_t nxt = seq + (uint32_t)seglen;
    if ((seglen || flags & SYN_FIN) && fwd->nsegs < TCP_MAX_UNACKED_SEGMENTS) {
        if (flags & SYN_FIN)
            nxt += 1;  /* SYN and FIN count as one byte */
        uint32_t base = (uint32_t)fwd->base;
        useg_t s = {seq - base, nxt, frame, ts};
        uint32_t nrel = nxt - base;
        if (fwd->nsegs == fwd->cap) {
            Py_ssize_t cap = fwd->cap ? 2 * fwd->cap : 16;
            useg_t *p = PyMem_Realloc(fwd->segs, (size_t)cap * sizeof *p);
            if (!p)
                return -1;
            fwd->segs = p;
            fwd->cap = cap;
        }
        if (!fwd->nsegs) {
            fwd->max_nrel = nrel;
            fwd->segs[fwd->nsegs++] = s;
        } else {
            if (nrel > fwd->max_nrel)
                fwd->max_nrel = nrel;
            Py_ssize_t at = fwd->nsegs;
            if (s.rel < fwd->segs[at - 1].rel) {  /* after every one it does not precede */
                Py_ssize_t lo = 0, hi = at;
                while (lo < hi) {
                    Py_ssize_t mid = (lo + hi) / 2;
                    if (s.rel < fwd->segs[mid].rel)
                        hi = mid;
                    else
                        lo = mid + 1;
                }
                at = lo;
                memmove(&fwd->segs[at + 1], &fwd->segs[at],
                        (size_t)(fwd->nsegs - at) * sizeof *fwd->segs);
            }
            fwd->segs[at] = s;
            fwd->nsegs++;
        }
    }
    *nxt_out = nxt;
    return 0;
}

/* Drop the segments `ack` covers, trim the one it cuts; the frame acked (-1 none) and its
 * RTT. Only segments starting before ack can be covered or cut; of several ending exactly
 * at ack the first sent wins (Wireshark visits its newest-first list to the end). */
static int64_t
ack_segments(Flow *rev, uint32_t ack, int64_t ts, int64_t *rtt)
{
    useg_t *segs = rev->segs;
    uint32_t base = (uint32_t)rev->base;
    Py_ssize_t i = 0, n = rev->nsegs, kept = 0;
    int64_t frame = -1, sent = 0;  /* the segment acked: its frame (-1 none) and time */
    while (i < n) {
        useg_t s = segs[i];
        if (s.nxt != ack && !gt_seq(ack, s.nxt)) {
            /* ends after ack: cut it if it starts before, then stop (the rest start later) */
            if (gt_seq(ack, s.rel + base)) {
                s.rel = ack - base;
                segs[kept++] = s;  /* (kept <= i: over a segment already read) */
                i++;
                continue;
            }
            break;
        }
        if (s.nxt == ack && (frame < 0 || s.frame < frame)) {
            frame = s.frame;
            sent = s.ts;
        }
        i++;
    }
    if (i > kept) {
        memmove(&segs[kept], &segs[i], (size_t)(n - i) * sizeof *segs);
        rev->nsegs = kept + (n - i);
    }
    if (frame >= 0)
        *rtt = ts - sent;
    return frame;
}

/* Bytes in flight after a data segment: from the first unacked byte to the highest next
 * sequence number, less what the receiver's SACK blocks hold; -1 where Wireshark shows
 * none. (Wireshark walks every unacked segment for min(seq) and max(nextseq); the list is
 * sorted by relative seq and the largest nextseq is never acked away before it empties.) */
static int64_t
bytes_in_flight(const Flow *fwd, const Flow *rev, int flags)
{
    uint32_t inflight = (uint32_t)fwd->max_nrel - fwd->segs[0].rel;
    if (rev->nsack) {
        uint32_t delivered = 0;
        for (int k = 0; k < rev->nsack; k++)
            delivered += rev->sack[k][1] - rev->sack[k][0];
        inflight -= delivered;
    }
    if (inflight > 0 && inflight < 2000000000u) {
        uint32_t v = flags & SYN_FIN ? inflight - 1 : inflight;
        return v ? (int64_t)v : -1;
    }
    return -1;
}

/* ---- tcp_analyze_sequence_number (sequence.py and expert.py before) ------------------ */

/* The checks before "finished_fwd": zero window (probe), lost segment (`gap`: seq is past
 * the next expected), keep-alive, window update, window full, duplicate ACK (and the ACKs
 * of probes and keep-alives). */
static long long
before_fwd(Flow *fwd, const Flow *rev, uint32_t seq, uint32_t ack, int flags, int64_t seglen,
           long long win, int gap)
{
    uint32_t nextseq = (uint32_t)fwd->nextseq;
    if (seglen == 1 && seq == nextseq && rev->window == 0)
        return A_ZERO_WINDOW_PROBE;  /* then straight to "finished_fwd" */
    long long taflags = 0;
    int nosfr = !(flags & SYN_FIN_RST);
    if (win == 0 && nosfr)
        taflags |= A_ZERO_WINDOW;
    if (gap && !(flags & F_RST)) {
        taflags |= A_LOST_PACKET;
        fwd->valid_bif = 0;
    }
    if (seglen <= 1 && seq == nextseq - 1 && nosfr)
        taflags |= A_KEEP_ALIVE;
    if (!nosfr)
        return taflags;
    int same = seglen == 0 && seq == nextseq && (long long)ack == fwd->lastack;
    if (same && win && win != fwd->window)
        taflags |= A_WINDOW_UPDATE;
    if (seglen > 0 && rev->win_scale != -1) {
        long long sh = rev->is_first_ack || rev->win_scale == -2 ? 0 : rev->win_scale;
        /* (the window's bits shifted past 32 vanish modulo 2^32; the analyser keeps the
         * shift at 0..14, set from Python it could be anything) */
        uint64_t shifted = sh < 0 || sh >= 32 ? 0 : (uint64_t)rev->window << sh;
        uint64_t full = (uint64_t)seq + (uint64_t)seglen - (uint64_t)rev->lastack - shifted;
        if ((uint32_t)full == 0)
            taflags |= A_WINDOW_FULL;
    }
    if (same && win == fwd->window) {
        if (win && rev->lastsegflags & A_KEEP_ALIVE) {
            taflags |= A_KEEP_ALIVE_ACK;
        } else if (win == 0 && rev->lastsegflags & A_ZERO_WINDOW_PROBE) {
            taflags |= A_ZERO_WINDOW_PROBE_ACK;
        } else if (win) {
            fwd->dupacknum = fwd->dupacknum == -1 ? 1 : fwd->dupacknum + 1;
            taflags |= A_DUPLICATE_ACK;
        }
    }
    return taflags;
}

/* The RETRANSMISSION / FAST RETRANSMISSION / OUT-OF-ORDER block: the bit of this
 * segment's kind of retransmission, or 0 (`behind`: GT_SEQ(nextseq, seq)). */
static long long
retransmission(const Flow *fwd, const Flow *rev, uint32_t seq, int64_t seglen, int flags,
               int64_t ts, int64_t first_rtt, int behind)
{
    uint32_t nextseq = (uint32_t)fwd->nextseq;
    int not_adv = behind;
    if (seglen > 1 && nextseq - 1 == seq)
        not_adv = 0;
    uint32_t rl = (uint32_t)rev->lastack;
    if (seglen > 0 && rl && !gt_seq(seq + (uint32_t)seglen, rl))
        return A_SPURIOUS_RETRANSMISSION;
    int64_t t = ts - rev->lastacktime;
    if (not_adv && rev->dupacknum >= 2 && rl == seq && t >= 0 && t < FAST_RTX_NS)
        return A_FAST_RETRANSMISSION;
    t = ts - fwd->nextseqtime;
    int64_t thres = first_rtt ? first_rtt : OOO_DEFAULT_NS;
    if (not_adv && t >= 0 && t < thres
        && nextseq != seq + (uint32_t)seglen + (flags & SYN_FIN ? 1u : 0u))
        return A_OUT_OF_ORDER;
    return not_adv ? A_RETRANSMISSION : 0;
}

/* taflags with this segment's bits added; both flows updated. -1: out of memory. */
static long long
analyze(Flow *fwd, Flow *rev, uint32_t seq, uint32_t ack, int flags, long long win,
        int64_t seglen, int64_t frame, int64_t ts, int64_t first_rtt, long long taflags)
{
    if (flags & F_ACK)
        rev->valid_bif = 1;
    uint32_t nextseq = (uint32_t)fwd->nextseq;
    uint32_t dist = seq - nextseq;
    int gap = nextseq && dist > 0 && dist < 0x80000000u;  /* GT_SEQ(seq, nextseq) */
    int behind = nextseq && dist > 0x80000000u;           /* GT_SEQ(nextseq, seq) */
    taflags |= before_fwd(fwd, rev, seq, ack, flags, seglen, win, gap);
    /* "finished_fwd": what follows applies to every segment */
    if ((long long)ack != fwd->lastack) {
        fwd->lastnondupack = frame;
        fwd->dupacknum = 0;
    }
    uint32_t rmax = (uint32_t)rev->maxseqtobeacked;
    if (rmax && flags & F_ACK && gt_seq(ack, rmax)) {
        if (gt_seq((uint32_t)rev->nextseq, rmax)) {
            rev->maxseqtobeacked = rev->nextseq;
            taflags |= A_ACK_LOST_PACKET;
        } else {
            if (rev->dupacknum == 0)
                taflags |= A_ACK_LOST_PACKET;
            rev->dupacknum = -1;
        }
    }
    if ((seglen > 0 || flags & SYN_FIN) && !(taflags & A_KEEP_ALIVE))
        taflags |= retransmission(fwd, rev, seq, seglen, flags, ts, first_rtt, behind);
    uint32_t nxt = seq;
    if ((seglen || flags & SYN_FIN) && remember(fwd, seq, seglen, flags, frame, ts, &nxt) < 0)
        return -1;
    if (!(taflags & A_ZERO_WINDOW_PROBE)) {
        if (!nextseq || gt_seq(nxt, nextseq)) {
            fwd->nextseq = nxt;
            fwd->nextseqframe = frame;
            fwd->nextseqtime = ts;
        }
        if ((long long)seq == fwd->maxseqtobeacked || !fwd->maxseqtobeacked)
            fwd->maxseqtobeacked = fwd->nextseq;
    }
    fwd->window = win;
    fwd->lastack = ack;
    fwd->lastacktime = ts;
    fwd->lastsegflags = taflags;
    return taflags;
}

/* ---- the Segment event ----------------------------------------------------------------- */

/* rawlab.analysis.tcp.events.Segment's fields, in its order; where each lies in one (its
 * slots' offsets), learnt from the type the first call names */
enum { S_FRAME, S_TS, S_STREAM, S_DIR, S_SRC, S_SPORT, S_DST, S_DPORT, S_SEQ, S_ACK, S_SEQREL,
       S_ACKREL, S_NXT, S_FLAGS, S_LEN, S_WIN, S_WINRAW, S_CSUM, S_ANALYSIS, S_DUPNUM,
       S_DUPFRAME, S_RTT, S_BIF, S_LOSS, S_OPTS, S_ACKED, S_FAMILY, S_WSCALE, S_N };
static const char *const s_names[S_N] = {
    "frame", "ts_ns", "stream", "dir", "src_addr", "src_port", "dst_addr", "dst_port", "seq",
    "ack", "seq_rel", "ack_rel", "next_seq_rel", "flags", "len", "window", "window_raw",
    "checksum_status", "analysis", "dup_ack_num", "dup_ack_frame", "ack_rtt_ns",
    "bytes_in_flight", "capture_loss", "options", "acked_frame", "family", "window_scale"};
static PyTypeObject *s_type;
static Py_ssize_t s_off[S_N];
static PyObject *empty_tuple;

static int
s_learn(PyTypeObject *t)
{
    Py_ssize_t off[S_N];  /* (kept only when every field is a slot) */
    if (slot_offsets(t, s_names, S_N, off, "segment") < 0)
        return -1;
    memcpy(s_off, off, sizeof off);
    Py_XSETREF(s_type, (PyTypeObject *)Py_NewRef(t));
    return 0;
}

/* an int field (a new reference); the borrowed `same` when it holds that value */
static inline PyObject *
num(long long v)
{
    return PyLong_FromLongLong(v);
}

PyDoc_STRVAR(segment_doc,
"segment(fwd, rev, frame, ts, stream, dir, src, sport, dst, dport, seq, ack, flags,\n"
"        seglen, win, csum, options, first_rtt, taflags, Segment) -> (segment, taflags, rtt)\n\n"
"One segment sent by fwd's side (rev: the other Flow): the base sequence numbers once\n"
"known, Wireshark's sequence analysis (taflags with its TCP_A_* bits added), the\n"
"segments its ACK covers (the frame acked and its RTT: rtt, None if none) and the bytes\n"
"in flight after a data segment; the Segment event that says so (an instance of the\n"
"slotted class given last: relative numbers, the window scaled by fwd's shift, the\n"
"duplicate ACK's number and frame; analysis () and capture_loss False, for the caller).\n"
"seq, ack: raw; flags: the TCP flag bits; win: the raw window field; seglen: payload\n"
"bytes; first_rtt: the iRTT so far (0: none); frame .. csum, options are stored as given.");

enum { A_FWD, A_REV, A_FRAME, A_TS, A_STREAM, A_DIR, A_SRC, A_SPORT, A_DST, A_DPORT, A_SEQ,
       A_ACK, A_FLAGS, A_SEGLEN, A_WIN, A_CSUM, A_OPTS, A_FIRST_RTT, A_TAFLAGS, A_TYPE,
       A_N };

static PyObject *
segment(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != A_N) {
        PyErr_Format(PyExc_TypeError, "segment: %d arguments wanted, got %zd", A_N, nargs);
        return NULL;
    }
    if (!PyObject_TypeCheck(args[A_FWD], &FlowType) || !PyObject_TypeCheck(args[A_REV], &FlowType)
        || !PyType_Check(args[A_TYPE])) {
        PyErr_SetString(PyExc_TypeError, "segment: two Flows and a Segment class wanted");
        return NULL;
    }
    Flow *fwd = (Flow *)args[A_FWD], *rev = (Flow *)args[A_REV];
    PyTypeObject *type = (PyTypeObject *)args[A_TYPE];
    if (type != s_type && s_learn(type) < 0)
        return NULL;
    long long v[A_N];
    static const int ints[] = {A_FRAME, A_TS, A_SEQ, A_ACK, A_FLAGS, A_SEGLEN, A_WIN,
                               A_FIRST_RTT, A_TAFLAGS};
    for (size_t k = 0; k < sizeof ints / sizeof *ints; k++) {
        v[ints[k]] = PyLong_AsLongLong(args[ints[k]]);
        if (v[ints[k]] == -1 && PyErr_Occurred())
            return NULL;
    }
    int64_t seglen = v[A_SEGLEN], frame = v[A_FRAME], ts = v[A_TS];
    int flags = (int)(v[A_FLAGS] & 0x1FF);
    long long win = v[A_WIN];
    if (fwd == rev || seglen < 0 || win < 0 || v[A_TAFLAGS] < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "segment: two Flows, seglen, win and taflags >= 0 wanted");
        return NULL;
    }
    uint32_t seq = (uint32_t)v[A_SEQ], ack = (uint32_t)v[A_ACK];
    if (!(fwd->base_set && rev->base_set)) {  /* relative 0 of both directions, once known */
        if (!fwd->base_set) {
            fwd->base = flags & F_SYN ? seq : (uint32_t)(seq - 1);
            fwd->base_set = 1;
        }
        if (!rev->base_set && flags & F_ACK) {
            rev->base = (uint32_t)(ack - 1);
            rev->base_set = 1;
        }
    }
    long long taflags = analyze(fwd, rev, seq, ack, flags, win, seglen, frame, ts,
                                v[A_FIRST_RTT], v[A_TAFLAGS]);
    if (taflags < 0)
        return PyErr_NoMemory();
    int64_t acked = -1, rtt = 0, bif = -1;
    if (rev->nsegs)
        acked = ack_segments(rev, ack, ts, &rtt);
    if (seglen && fwd->nsegs && fwd->valid_bif)
        bif = bytes_in_flight(fwd, rev, flags);

    uint32_t fb = (uint32_t)fwd->base, rb = (uint32_t)rev->base;
    long long ws = fwd->win_scale;
    PyObject *f[S_N] = {NULL};
    PyObject *seg = NULL, *res = NULL, *rtt_o = NULL, *taf_o = NULL;
    f[S_WSCALE] = num(ws);
    f[S_FRAME] = Py_NewRef(args[A_FRAME]);
    f[S_TS] = Py_NewRef(args[A_TS]);
    f[S_STREAM] = Py_NewRef(args[A_STREAM]);
    f[S_DIR] = Py_NewRef(args[A_DIR]);
    f[S_SRC] = Py_NewRef(args[A_SRC]);
    f[S_SPORT] = Py_NewRef(args[A_SPORT]);
    f[S_DST] = Py_NewRef(args[A_DST]);
    f[S_DPORT] = Py_NewRef(args[A_DPORT]);
    f[S_SEQ] = Py_NewRef(args[A_SEQ]);
    f[S_ACK] = Py_NewRef(args[A_ACK]);
    f[S_SEQREL] = num((uint32_t)(seq - fb));
    f[S_ACKREL] = flags & F_ACK ? num((uint32_t)(ack - rb)) : Py_NewRef(args[A_ACK]);
    f[S_NXT] = num((uint32_t)(seq - fb + (uint32_t)seglen + (flags & SYN_FIN ? 1u : 0u)));
    f[S_FLAGS] = flags == v[A_FLAGS] ? Py_NewRef(args[A_FLAGS]) : num(flags);
    f[S_LEN] = Py_NewRef(args[A_SEGLEN]);
    if (ws < 0 || flags & F_SYN)
        f[S_WIN] = Py_NewRef(args[A_WIN]);
    else if (ws < 31 && win <= 0xFFFFFFFFLL)  /* (fits: the field is 16 bits, ws <= 14) */
        f[S_WIN] = num(win << ws);
    else
        f[S_WIN] = f[S_WSCALE] ? PyNumber_Lshift(args[A_WIN], f[S_WSCALE]) : NULL;
    f[S_WINRAW] = Py_NewRef(args[A_WIN]);
    f[S_CSUM] = Py_NewRef(args[A_CSUM]);
    f[S_ANALYSIS] = Py_NewRef(empty_tuple);
    int dup = taflags & A_DUPLICATE_ACK;
    f[S_DUPNUM] = dup ? num(fwd->dupacknum) : Py_NewRef(Py_None);
    f[S_DUPFRAME] = dup ? num(fwd->lastnondupack) : Py_NewRef(Py_None);
    f[S_RTT] = acked >= 0 && rtt ? num(rtt) : Py_NewRef(Py_None);
    f[S_BIF] = bif > 0 ? num(bif) : Py_NewRef(Py_None);
    f[S_LOSS] = Py_NewRef(Py_False);
    f[S_OPTS] = Py_NewRef(args[A_OPTS]);
    f[S_ACKED] = acked >= 0 ? num(acked) : Py_NewRef(Py_None);
    Py_ssize_t alen = PyObject_Length(args[A_SRC]);
    if (alen < 0)
        goto done;
    f[S_FAMILY] = num(alen == 4 ? 4 : 6);
    for (int k = 0; k < S_N; k++)
        if (!f[k])
            goto done;
    seg = type->tp_alloc(type, 0);
    if (!seg)
        goto done;
    for (int k = 0; k < S_N; k++) {  /* (the slots of a new object are NULL) */
        *(PyObject **)((char *)seg + s_off[k]) = f[k];
        f[k] = NULL;
    }
    rtt_o = acked >= 0 ? num(rtt) : Py_NewRef(Py_None);
    taf_o = num(taflags);
    if (rtt_o && taf_o)
        res = PyTuple_Pack(3, seg, taf_o, rtt_o);
done:
    for (int k = 0; k < S_N; k++)
        Py_XDECREF(f[k]);
    Py_XDECREF(seg);
    Py_XDECREF(rtt_o);
    Py_XDECREF(taf_o);
    return res;
}

/* ---- Flow's attributes ---------------------------------------------------------------- */

#define M(name, type, doc) {#name, type, offsetof(Flow, name), 0, doc}
static PyMemberDef Flow_members[] = {
    M(base, T_LONGLONG, "the raw sequence number that is relative 0"),
    M(base_set, T_BOOL, "base is known"),
    M(nextseq, T_LONGLONG, "the next sequence number expected (0: none yet)"),
    M(nextseqframe, T_LONGLONG, "the frame that set nextseq"),
    M(nextseqtime, T_LONGLONG, "its time (ns)"),
    M(maxseqtobeacked, T_LONGLONG, "the highest sequence number to be acknowledged"),
    M(lastack, T_LONGLONG, "the last ACK number sent"),
    M(lastacktime, T_LONGLONG, "its time (ns)"),
    M(lastnondupack, T_LONGLONG, "the frame of the last ACK that was no duplicate"),
    M(dupacknum, T_LONGLONG, "duplicate ACKs of it so far (-1: after an ACK of unseen data)"),
    M(window, T_LONGLONG, "the last raw window (0xFFFFFFFF: none yet)"),
    M(win_scale, T_LONGLONG, "the window scale shift (-1 unknown, -2 none)"),
    M(is_first_ack, T_BOOL, "the next ACK is the first after a SYN"),
    M(lastsegflags, T_LONGLONG, "the TCP_A_* bits of the last segment"),
    M(valid_bif, T_BOOL, "bytes in flight can be told (no gap since the last ACK)"),
    M(max_nrel, T_LONGLONG, "the largest relative next sequence number unacknowledged"),
    M(saw_syn, T_BOOL, "sent a SYN"),
    M(saw_synack, T_BOOL, "sent a SYN-ACK"),
    M(fin_acked, T_BOOL, "its FIN was acknowledged"),
    {"hist_n", T_OBJECT, offsetof(Flow, hist_n), READONLY,
     "Zeek history letters seen, and how often (a dict)"},
    {NULL, 0, 0, 0, NULL},
};
#undef M

static PyObject *
Flow_get_fin_seq(Flow *f, void *unused)
{
    if (f->fin_seq < 0)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(f->fin_seq);
}

static int
Flow_set_fin_seq(Flow *f, PyObject *v, void *unused)
{
    if (!v || v == Py_None) {
        f->fin_seq = -1;
        return 0;
    }
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    f->fin_seq = (long long)(x & 0xFFFFFFFFu);
    return 0;
}

static PyObject *
Flow_get_sack(Flow *f, void *unused)
{
    PyObject *t = PyTuple_New(f->nsack);
    for (int k = 0; t && k < f->nsack; k++) {
        PyObject *p = Py_BuildValue("(kk)", (unsigned long)f->sack[k][0],
                                    (unsigned long)f->sack[k][1]);
        if (!p) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, k, p);
    }
    return t;
}

/* the receiver's SACK blocks ((left, right) each) its last segment carried: the first
 * MAX_TCP_SACK_RANGES - 1 are kept, as Wireshark */
static int
Flow_set_sack(Flow *f, PyObject *v, void *unused)
{
    if (!v || (PyTuple_Check(v) && PyTuple_GET_SIZE(v) == 0)) {
        f->nsack = 0;
        return 0;
    }
    PyObject *seq = PySequence_Fast(v, "sack: a sequence of (left, right) pairs");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uint32_t got[MAX_TCP_SACK_RANGES - 1][2];
    int k = 0;
    for (; k < n && k < MAX_TCP_SACK_RANGES - 1; k++) {
        unsigned long le, re;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "kk", &le, &re)) {
            Py_DECREF(seq);
            return -1;
        }
        got[k][0] = (uint32_t)le;
        got[k][1] = (uint32_t)re;
    }
    Py_DECREF(seq);
    memcpy(f->sack, got, sizeof got);
    f->nsack = k;
    return 0;
}

static PyObject *
Flow_get_pending(Flow *f, void *unused)
{
    return PyLong_FromSsize_t(f->nsegs);
}

static PyGetSetDef Flow_getset[] = {
    {"fin_seq", (getter)Flow_get_fin_seq, (setter)Flow_set_fin_seq,
     "the sequence number after its FIN (None: no FIN yet)", NULL},
    {"sack", (getter)Flow_get_sack, (setter)Flow_set_sack,
     "the SACK blocks of its last segment, at most 3 ((left, right) each)", NULL},
    {"pending", (getter)Flow_get_pending, NULL,
     "its segments not yet acknowledged (at most TCP_MAX_UNACKED_SEGMENTS)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FlowType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rawlab._tcp_sequence.Flow",
    .tp_doc = PyDoc_STR("Flow(): one direction of a TCP connection as Wireshark's "
                        "sequence analysis keeps it"),
    .tp_basicsize = sizeof(Flow),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Flow_new,
    .tp_dealloc = (destructor)Flow_dealloc,
    .tp_traverse = (traverseproc)Flow_traverse,
    .tp_clear = (inquiry)Flow_clear,
    .tp_members = Flow_members,
    .tp_getset = Flow_getset,
};

static PyMethodDef methods[] = {
    {"segment", (PyCFunction)(void (*)(void))segment, METH_FASTCALL, segment_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rawlab._tcp_sequence",
    .m_doc = "Wireshark's TCP sequence analysis of one segment, compiled (_tcp_sequence.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__tcp_sequence(void)
{
    if (PyType_Ready(&FlowType) < 0)
        return NULL;
    empty_tuple = PyTuple_New(0);
    if (!empty_tuple)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    static const struct { const char *name; long long v; } consts[] = {
        {"A_RETRANSMISSION", A_RETRANSMISSION}, {"A_LOST_PACKET", A_LOST_PACKET},
        {"A_ACK_LOST_PACKET", A_ACK_LOST_PACKET}, {"A_KEEP_ALIVE", A_KEEP_ALIVE},
        {"A_DUPLICATE_ACK", A_DUPLICATE_ACK}, {"A_ZERO_WINDOW", A_ZERO_WINDOW},
        {"A_ZERO_WINDOW_PROBE", A_ZERO_WINDOW_PROBE},
        {"A_ZERO_WINDOW_PROBE_ACK", A_ZERO_WINDOW_PROBE_ACK},
        {"A_KEEP_ALIVE_ACK", A_KEEP_ALIVE_ACK}, {"A_OUT_OF_ORDER", A_OUT_OF_ORDER},
        {"A_FAST_RETRANSMISSION", A_FAST_RETRANSMISSION}, {"A_WINDOW_UPDATE", A_WINDOW_UPDATE},
        {"A_WINDOW_FULL", A_WINDOW_FULL}, {"A_REUSED_PORTS", A_REUSED_PORTS},
        {"A_SPURIOUS_RETRANSMISSION", A_SPURIOUS_RETRANSMISSION},
        {"FAST_RTX_NS", FAST_RTX_NS}, {"OOO_DEFAULT_NS", OOO_DEFAULT_NS},
        {"TCP_MAX_UNACKED_SEGMENTS", TCP_MAX_UNACKED_SEGMENTS},
        {"MAX_TCP_SACK_RANGES", MAX_TCP_SACK_RANGES},
    };
    for (size_t k = 0; k < sizeof consts / sizeof *consts; k++)
        if (PyModule_AddObject(m, consts[k].name, PyLong_FromLongLong(consts[k].v)) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    Py_INCREF(&FlowType);
    if (PyModule_AddObject(m, "Flow", (PyObject *)&FlowType) < 0) {
        Py_DECREF(&FlowType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
