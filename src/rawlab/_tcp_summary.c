/* rawlab._tcp_summary: the TCP connection table (tcptrace's figures), one pass a segment.
 *
 *   s = Summary(consts)
 *   s.feed(cols, buf, layouts, n, easy, odd, odd_out)   a batch's first n rows
 *   s.table() -> (bytes, [(ver, ah, al, bh, bl, ports, client_rev, flipped, history)])
 *
 * The definitions (tcptrace 6.6.7's, and where Wireshark differs) are documented in
 * rawlab.analysis.tcp.columns, which feeds this and reads its table. Each segment goes
 * through its connection's two directions in file order: the windows and the zero-window
 * probe, Wireshark's iRTT, the sequence space (unwrapped per direction, the highest end,
 * the holes below it: retransmitted and out-of-order segments, unique bytes), the
 * counters, the RTT samples (the ACK against the direction's segments not yet
 * acknowledged, Karn's rule) and Zeek's history letters. The state is a few hundred
 * bytes a connection, the holes (MAX_HOLES a direction) and the unacknowledged segments
 * (MAX_PENDING a direction, MAX_PENDING_ALL in all): it grows with the connections, not
 * with the file, and does not depend on how the rows were cut into batches.
 *
 * feed runs the easy rows without the GIL (a reader thread prepares the next batch
 * meanwhile): below it nothing touches a Python object, and -1 from a helper means out
 * of memory, raised by feed once it holds the GIL again.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_buffers.h"

#define MAX_PENDING 10000      /* unacknowledged segments kept a direction (the newest) */
#define MAX_PENDING_ALL 50000  /* ... and in all */
#define MAX_HOLES 64           /* holes kept a direction below its highest end (the highest) */
#define NEG (-(INT64_C(1) << 40))  /* "nothing yet" for maxima */
#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

/* the per-direction figures of the table, in the order of DIR_FIELDS */
enum {
    D_PACKETS, D_DATA_PKTS, D_DATA_BYTES, D_UNIQUE_BYTES, D_REXMIT_PKTS, D_REXMIT_BYTES,
    D_OOO_PKTS, D_ZWND_PROBES, D_ACK_PKTS, D_PURE_ACKS, D_SYN, D_FIN, D_RST, D_SACK_PKTS,
    D_DSACK_PKTS, D_WIN_ZERO, D_RTT_SAMPLES, D_RTT_SUM, D_BAD_CHECKSUMS, D_GAPS, D_SYN_PURE,
    D_SYNACK, D_WIN_MAX, D_WIN_MIN, D_MAX_SACK, D_FLAGS, D_RTT_MIN, D_RTT_MAX, D_RTT_3WHS,
    D_N
};
static const char *const dir_fields[D_N] = {
    "packets", "data_pkts", "data_bytes", "unique_bytes", "rexmit_pkts", "rexmit_bytes",
    "ooo_pkts", "zwnd_probes", "ack_pkts", "pure_acks", "syn", "fin", "rst", "sack_pkts",
    "dsack_pkts", "win_zero", "rtt_samples", "rtt_sum", "bad_checksums", "gaps", "syn_pure",
    "synack", "win_max", "win_min", "max_sack", "flags", "rtt_min", "rtt_max", "rtt_3whs",
};
/* the per-connection figures, before the two directions' */
enum { C_FIRST_FRAME, C_LAST_FRAME, C_FIRST_TS, C_LAST_TS, C_IRTT, C_N };
static const char *const conn_fields[C_N] = {
    "first_frame", "last_frame", "first_ts_ns", "last_ts_ns", "irtt_ns",
};

typedef struct {       /* a segment not yet acknowledged */
    int64_t first, end, t_us, frame;
    uint8_t karn, syn; /* karn: sent again (in part) since: no RTT sample */
} piece_t;

typedef struct {       /* a hole [a, b) below the highest end; nxt: where the segment after b ends */
    int64_t a, b, nxt;
} hole_t;

typedef struct {
    int64_t f[D_N];
    /* the sequence space: unwrapped from the first number seen (0) */
    int64_t last_unw, M, Mall, first, first_end;
    uint32_t last_raw, ack_raw;
    int64_t ack_unw, maxack;
    int64_t win_last, ws_val;
    int64_t logc[4];           /* c g t w so far */
    uint32_t letters;
    uint8_t has_base, ack_has, ws_seen, wscaled, synseq;
    hole_t *holes;
    int nholes, capholes;
    piece_t *pend;             /* [phead, pcount): sorted by end, then age */
    Py_ssize_t phead, pcount, pcap;
} dir_t;

typedef struct {
    uint64_t ah, al, bh, bl;
    uint32_t ports;
    uint8_t ver, flipped, client_rev;
    int64_t c[C_N];
    int64_t mru_syn;
    char *hist;
    int nhist, caphist;
    dir_t d[2];
} conn_t;

typedef struct {       /* one TCP segment's fields */
    int64_t frame, ts, win, plen;
    uint64_t shi, slo, dhi, dlo;
    uint32_t seq, ack, s0l, s0r, s1l, s1r;
    int ver, sport, dport, flags, bad, ws, sackn;
} seg_t;

typedef struct {
    PyObject_HEAD
    conn_t *conns;
    Py_ssize_t n, cap;
    uint32_t *index;           /* open addressing: connection + 1, 0 empty */
    Py_ssize_t icap;
    Py_ssize_t pending;        /* unacknowledged segments in all */
    Py_ssize_t last;           /* the connection of the row before (-1) */
    int busy;                  /* a feed runs (without the GIL): another must not */
    int64_t csum_bad, note_hint, l4_tcp;  /* the column codes (rawlab.decode.columns) */
} Summary;

/* ---- connections ------------------------------------------------------------------- */

static inline uint64_t
mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    return h * 0xBF58476D1CE4E5B9ULL;
}

static inline uint64_t
key_hash(int ver, uint64_t ah, uint64_t al, uint64_t bh, uint64_t bl, uint32_t ports)
{
    uint64_t h = mix(mix(mix(mix(mix((uint64_t)ver, ah), al), bh), bl), ports);
    return h ^ (h >> 31);
}

static int
index_grow(Summary *s)
{
    Py_ssize_t cap = s->icap ? 2 * s->icap : 1024;
    uint32_t *ix = calloc((size_t)cap, sizeof *ix);
    if (!ix) {
        return -1;
    }
    for (Py_ssize_t k = 0; k < s->n; k++) {
        const conn_t *c = &s->conns[k];
        uint64_t h = key_hash(c->ver, c->ah, c->al, c->bh, c->bl, c->ports);
        Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)(cap - 1));
        while (ix[at])
            at = (at + 1) & (cap - 1);
        ix[at] = (uint32_t)(k + 1);
    }
    free(s->index);
    s->index = ix;
    s->icap = cap;
    return 0;
}

static void
dir_init(dir_t *d)
{
    memset(d, 0, sizeof *d);
    d->M = d->Mall = d->first = d->first_end = d->maxack = NEG;
}

/* The connection of a segment, made at its first segment: its client sent that, or
 * received it when it was a SYN-ACK. *dir: 0 from the client. -1 on no memory. */
static Py_ssize_t
connection(Summary *s, const seg_t *g, int *dir)
{
    int rev = g->sport > g->dport ||
        (g->sport == g->dport && (g->shi > g->dhi || (g->shi == g->dhi && g->slo > g->dlo)));
    uint64_t ah = rev ? g->dhi : g->shi, al = rev ? g->dlo : g->slo;
    uint64_t bh = rev ? g->shi : g->dhi, bl = rev ? g->slo : g->dlo;
    uint32_t sp = (uint32_t)g->sport & 0xffff, dp = (uint32_t)g->dport & 0xffff;
    uint32_t ports = rev ? dp << 16 | sp : sp << 16 | dp;
    conn_t *c;
    if (s->last >= 0) {
        c = &s->conns[s->last];
        if (c->ports == ports && c->al == al && c->bl == bl && c->ah == ah && c->bh == bh &&
            c->ver == g->ver) {
            *dir = rev ^ c->client_rev;
            return s->last;
        }
    }
    if (2 * (s->n + 1) > s->icap && index_grow(s) < 0)
        return -1;
    uint64_t h = key_hash(g->ver, ah, al, bh, bl, ports);
    Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)(s->icap - 1));
    for (; s->index[at]; at = (at + 1) & (s->icap - 1)) {
        Py_ssize_t k = s->index[at] - 1;
        c = &s->conns[k];
        if (c->ports == ports && c->al == al && c->bl == bl && c->ah == ah && c->bh == bh &&
            c->ver == g->ver) {
            *dir = rev ^ c->client_rev;
            s->last = k;
            return k;
        }
    }
    if (s->n == s->cap) {
        Py_ssize_t cap = s->cap ? 2 * s->cap : 64;
        conn_t *more = realloc(s->conns, (size_t)cap * sizeof *more);
        if (!more) {
            return -1;
        }
        s->conns = more;
        s->cap = cap;
    }
    Py_ssize_t k = s->n++;
    s->index[at] = (uint32_t)(k + 1);
    c = &s->conns[k];
    memset(c, 0, sizeof *c);
    c->ah = ah, c->al = al, c->bh = bh, c->bl = bl, c->ports = ports;
    c->ver = (uint8_t)g->ver;
    c->flipped = (g->flags & (F_SYN | F_ACK)) == (F_SYN | F_ACK);
    c->client_rev = (uint8_t)(rev ^ c->flipped);
    c->c[C_FIRST_FRAME] = g->frame;
    c->c[C_FIRST_TS] = g->ts;
    dir_init(&c->d[0]);
    dir_init(&c->d[1]);
    s->last = k;
    *dir = rev ^ c->client_rev;
    return k;
}

/* ---- the sequence space ------------------------------------------------------------- */

static int
hole_room(dir_t *d, int want)
{
    if (want <= d->capholes)
        return 0;
    int cap = d->capholes ? 2 * d->capholes : 8;
    cap = cap < want ? want : cap;
    hole_t *more = realloc(d->holes, (size_t)cap * sizeof *more);
    if (!more) {
        return -1;
    }
    d->holes = more;
    d->capholes = cap;
    return 0;
}

static int
hole_add(dir_t *d, int at, int64_t a, int64_t b, int64_t nxt)
{
    if (hole_room(d, d->nholes + 1) < 0)
        return -1;
    memmove(&d->holes[at + 1], &d->holes[at], (size_t)(d->nholes - at) * sizeof *d->holes);
    d->holes[at] = (hole_t){a, b, nxt};
    d->nholes++;
    return 0;
}

/* A segment [s, e) that is not in order, against the holes below the highest end before
 * it (mprev): the bytes of it seen before, whether it is out of order (it filled a hole
 * and ended before the segment after the hole), whether it filled a hole. Below the first
 * sequence number seen is a hole too. At most MAX_HOLES are kept (the highest). */
static int
hole_row(dir_t *d, int64_t s, int64_t e, int64_t mprev, int64_t *seen, int *ooo, int *fill)
{
    *ooo = *fill = 0;
    *seen = 0;
    if (s > mprev) {  /* a gap: a hole from the highest end to here */
        if (hole_add(d, d->nholes, mprev, s, e) < 0)
            return -1;
    } else {
        if (s < d->first) {  /* before the first segment seen: the space starts here now */
            if (hole_add(d, 0, s, d->first, d->first_end) < 0)
                return -1;
            d->first = s;
            d->first_end = e;
        }
        int64_t top = e < mprev ? e : mprev;
        hole_t rest[MAX_HOLES + 4];
        if (hole_room(d, d->nholes + 1) < 0)
            return -1;
        int keep = 0;
        *seen = top - s;
        for (int k = 0; k < d->nholes; k++) {
            hole_t h = d->holes[k];
            if (h.b <= s || h.a >= top) {
                rest[keep++] = h;
                continue;
            }
            int64_t lo = h.a > s ? h.a : s, hi = h.b < top ? h.b : top;
            *seen -= hi - lo;
            *fill = 1;
            if (e < h.nxt)
                *ooo = 1;
            if (h.a < lo)
                rest[keep++] = (hole_t){h.a, lo, e < h.b ? e : h.b};
            if (hi < h.b)
                rest[keep++] = (hole_t){hi, h.b, h.nxt};
        }
        if (keep)  /* (one split at most: fits) */
            memcpy(d->holes, rest, (size_t)keep * sizeof *rest);
        d->nholes = keep;
    }
    if (d->nholes > MAX_HOLES) {  /* the lowest counts as seen from now on */
        int over = d->nholes - MAX_HOLES;
        memmove(&d->holes[0], &d->holes[over], (size_t)MAX_HOLES * sizeof *d->holes);
        d->nholes = MAX_HOLES;
    }
    return 0;
}

/* ---- RTT: the segments not yet acknowledged ---------------------------------------- */

static void
pend_drop_head(Summary *s, dir_t *d, Py_ssize_t k)
{
    d->phead += k;
    s->pending -= k;
}

/* drop a direction's pieces older than frame `from` (the caps) */
static void
pend_drop_before(Summary *s, dir_t *d, int64_t from)
{
    Py_ssize_t w = d->phead;
    for (Py_ssize_t r = d->phead; r < d->pcount; r++)
        if (d->pend[r].frame >= from)
            d->pend[w++] = d->pend[r];
    s->pending -= d->pcount - w;
    d->pcount = w;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* the frame from which `keep` of these pieces are the newest */
static int
newest_from(const piece_t *p, Py_ssize_t n, Py_ssize_t keep, int64_t *from)
{
    int64_t *fr = malloc((size_t)n * sizeof *fr);
    if (!fr) {
        return -1;
    }
    for (Py_ssize_t k = 0; k < n; k++)
        fr[k] = p[k].frame;
    qsort(fr, (size_t)n, sizeof *fr, cmp_i64);
    *from = fr[n - keep];
    free(fr);
    return 0;
}

/* MAX_PENDING_ALL: keep the newest in all (checked with a quarter's slack) */
static int
pend_cap_all(Summary *s)
{
    piece_t *all = malloc((size_t)(s->pending > 0 ? s->pending : 1) * sizeof *all);
    if (!all) {
        return -1;
    }
    Py_ssize_t n = 0;
    for (Py_ssize_t k = 0; k < s->n; k++)
        for (int j = 0; j < 2; j++) {
            dir_t *d = &s->conns[k].d[j];
            Py_ssize_t c = d->pcount - d->phead;
            if (c > 0)  /* (pend is NULL while it holds none) */
                memcpy(&all[n], &d->pend[d->phead], (size_t)c * sizeof *all);
            n += c;
        }
    int64_t from;
    int rc = newest_from(all, n, MAX_PENDING_ALL, &from);
    free(all);
    if (rc < 0)
        return -1;
    for (Py_ssize_t k = 0; k < s->n; k++)
        for (int j = 0; j < 2; j++)
            pend_drop_before(s, &s->conns[k].d[j], from);
    return 0;
}

static int
pend_add(Summary *s, dir_t *d, piece_t p)
{
    if (d->pcount == d->pcap) {
        if (d->phead > d->pcap / 2) {
            memmove(d->pend, &d->pend[d->phead], (size_t)(d->pcount - d->phead) * sizeof *d->pend);
            d->pcount -= d->phead;
            d->phead = 0;
        } else {
            Py_ssize_t cap = d->pcap ? 2 * d->pcap : 16;
            piece_t *more = realloc(d->pend, (size_t)cap * sizeof *more);
            if (!more) {
                return -1;
            }
            d->pend = more;
            d->pcap = cap;
        }
    }
    /* after every piece ending at or before it (most are new data: at the end) */
    Py_ssize_t lo = d->phead, hi = d->pcount;
    if (hi > lo && d->pend[hi - 1].end > p.end) {
        while (lo < hi) {
            Py_ssize_t mid = lo + (hi - lo) / 2;
            if (d->pend[mid].end <= p.end)
                lo = mid + 1;
            else
                hi = mid;
        }
        memmove(&d->pend[lo + 1], &d->pend[lo], (size_t)(d->pcount - lo) * sizeof *d->pend);
    } else {
        lo = d->pcount;
    }
    d->pend[lo] = p;
    d->pcount++;
    s->pending++;
    if (d->pcount - d->phead > MAX_PENDING + MAX_PENDING / 4) {
        int64_t from;
        if (newest_from(&d->pend[d->phead], d->pcount - d->phead, MAX_PENDING, &from) < 0)
            return -1;
        pend_drop_before(s, d, from);
    }
    if (s->pending > MAX_PENDING_ALL + MAX_PENDING_ALL / 4)
        return pend_cap_all(s);
    return 0;
}

/* the first piece ending after s */
static Py_ssize_t
pend_after(const dir_t *d, int64_t s)
{
    Py_ssize_t lo = d->phead, hi = d->pcount;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (d->pend[mid].end <= s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Karn's rule: a transmission starting at s, not in order, at t_us spoils the samples of
 * the pieces sent before it that end after s (tcptrace's intervening transmissions) */
static void
karn(dir_t *d, int64_t s, int64_t t_us)
{
    for (Py_ssize_t k = pend_after(d, s); k < d->pcount; k++)
        if (d->pend[k].t_us < t_us)
            d->pend[k].karn = 1;
}

static void
sample(dir_t *t, int64_t rtt, int of_syn)
{
    t->f[D_RTT_SAMPLES]++;
    t->f[D_RTT_SUM] += rtt;
    if (rtt > t->f[D_RTT_MAX])
        t->f[D_RTT_MAX] = rtt;
    if (rtt > 0 && (t->f[D_RTT_MIN] == 0 || rtt < t->f[D_RTT_MIN]))
        t->f[D_RTT_MIN] = rtt;  /* (tcptrace replaces a minimum of 0 by the next sample) */
    if (of_syn && t->f[D_SYN] == 1 && !t->synseq) {
        t->f[D_RTT_3WHS] = rtt;
        t->synseq = 1;
    }
}

/* An ACK of direction t's sequence space: a sample when it points exactly at the end of a
 * piece that no earlier ACK reached the start of and that was not spoilt (Karn). */
static void
ack_in(Summary *s, dir_t *t, uint32_t raw, int64_t t_us)
{
    int64_t a;
    if (t->ack_has)
        a = t->ack_unw + (int32_t)(raw - t->ack_raw);
    else if (t->has_base)
        a = t->last_unw + (int32_t)(raw - t->last_raw);
    else {  /* ACKs of a direction never seen: its numbers start here */
        t->has_base = 1;
        t->last_raw = raw;
        t->last_unw = 0;
        a = 0;
    }
    t->ack_has = 1;
    t->ack_raw = raw;
    t->ack_unw = a;
    int64_t aprev = t->maxack;
    for (Py_ssize_t k = pend_after(t, a - 1); k < t->pcount && t->pend[k].end == a; k++) {
        piece_t *p = &t->pend[k];
        if (p->first < aprev)  /* reached before: no longer pending */
            continue;
        if (!p->karn)
            sample(t, t_us - p->t_us, p->syn);
        break;
    }
    if (a > t->maxack) {
        t->maxack = a;
        Py_ssize_t k = t->phead;
        while (k < t->pcount && t->pend[k].first < a)
            k++;
        pend_drop_head(s, t, k - t->phead);
    }
}

/* ---- one segment -------------------------------------------------------------------- */

static inline int
is_pow10(int64_t v)
{
    for (int64_t p = 1; p <= v; p *= 10)
        if (p == v)
            return 1;
    return 0;
}

static int
letter(conn_t *c, int dir, char ch)
{
    if (c->nhist + 1 >= c->caphist) {
        int cap = c->caphist ? 2 * c->caphist : 16;
        char *more = realloc(c->hist, (size_t)cap);
        if (!more) {
            return -1;
        }
        c->hist = more;
        c->caphist = cap;
    }
    c->hist[c->nhist++] = dir == 0 ? (char)(ch - 32) : ch;  /* the originator's in capitals */
    return 0;
}

/* Zeek's history letters, in its order (bit k of `shown`: letters[k] shows): each the
 * first time a direction shows it, c g t w also the 10th, 100th ... time */
static int
history(conn_t *c, int dir, unsigned shown)
{
    static const char letters[] = "shqfradcgtw";
    dir_t *d = &c->d[dir];
    if (!(shown & ~d->letters))  /* (most segments: nothing new, no c g t w) */
        return 0;
    for (int k = 0; k < 11; k++) {
        if (!(shown & (1u << k)))
            continue;
        if (k >= 7) {
            if (!is_pow10(++d->logc[k - 7]))
                continue;
        } else if (d->letters & (1u << k)) {
            continue;
        } else {
            d->letters |= 1u << k;
        }
        if (letter(c, dir, letters[k]) < 0)
            return -1;
    }
    return 0;
}

/* tcptrace's D-SACK cases (raw 32-bit numbers, compared as it does) */
static inline int
dsack(const seg_t *g)
{
    int64_t a = g->ack, l0 = g->s0l, r0 = g->s0r, l1 = g->s1l, r1 = g->s1r;
    int two = g->sackn > 1;
    return r0 <= a || (two && r0 <= r1 && l0 >= l1) ||
        (two && ((l0 <= l1 && r0 > l1) || (r0 >= r1 && l0 < r1)));
}

static int
segment(Summary *s, const seg_t *g, int64_t *out_conn, int *out_dir)
{
    int dir;
    Py_ssize_t k = connection(s, g, &dir);
    if (k < 0)
        return -1;
    if (out_conn) {
        *out_conn = k;
        *out_dir = dir;
    }
    conn_t *c = &s->conns[k];
    dir_t *me = &c->d[dir], *other = &c->d[dir ^ 1];
    int syn = (g->flags & F_SYN) != 0, fin = (g->flags & F_FIN) != 0;
    int rst = (g->flags & F_RST) != 0, ack = (g->flags & F_ACK) != 0;
    int64_t t_us = g->ts >= 0 ? g->ts / 1000 : -((-g->ts + 999) / 1000);

    /* windows: scaled once both sides asked (never in a SYN); a probe: sequence space
     * sent while the other side's last window was 0 */
    int both = c->d[0].ws_seen && c->d[1].ws_seen;
    int64_t eff = 0;
    if (ack || syn)
        eff = both && !syn ? g->win << (me->ws_val < 14 ? me->ws_val : 14) : g->win;
    int64_t length = g->plen + syn + fin;
    int probe = length > 0 && other->win_last == 0 && other->f[D_PACKETS] > 0;
    if (!rst)
        me->win_last = eff;
    if (g->ws >= 0) {
        me->ws_seen = 1;
        me->ws_val = g->ws;
    }

    /* Wireshark's iRTT: the most recent pure SYN to the first ACK without SYN */
    if (ack && !syn && c->mru_syn > 0 && g->ts - c->mru_syn > 0 && c->c[C_IRTT] == 0)
        c->c[C_IRTT] = g->ts - c->mru_syn;
    if (syn && !ack)
        c->mru_syn = g->ts;

    /* the sequence space */
    if (!me->has_base) {
        me->has_base = 1;
        me->last_raw = g->seq;
        me->last_unw = 0;
    }
    int64_t sq = me->last_unw + (int32_t)(g->seq - me->last_raw);
    me->last_raw = g->seq;
    me->last_unw = sq;
    int64_t e = sq + length, mprev = me->M;
    int rec = length > 0 && !probe;
    int gap = me->Mall > NEG && sq > me->Mall && !rst;
    int64_t ovl = 0;
    int ooo = 0, fill = 0;
    if (rec && mprev > NEG && sq != mprev) {
        if (!me->nholes && sq < mprev && sq >= me->first)
            ovl = (e < mprev ? e : mprev) - sq;
        else if (hole_row(me, sq, e, mprev, &ovl, &ooo, &fill) < 0)
            return -1;
        karn(me, sq, t_us);
    }
    if (rec && e > me->M)
        me->M = e;
    if (e > me->Mall)
        me->Mall = e;
    if (rec && mprev == NEG && me->first == NEG) {
        me->first = sq;
        me->first_end = e;
    }

    /* the counters */
    int64_t *f = me->f;
    f[D_SYN] += syn;
    f[D_FIN] += fin;
    int64_t rcnt = ovl - (syn && f[D_SYN] > 1) - (fin && f[D_FIN] > 1);
    int ackrow = ack && !rst;
    f[D_PACKETS]++;
    f[D_DATA_PKTS] += g->plen > 0;
    f[D_DATA_BYTES] += g->plen;
    f[D_UNIQUE_BYTES] += rec && rcnt < g->plen ? g->plen - rcnt : 0;
    f[D_REXMIT_PKTS] += ovl > 0;
    f[D_REXMIT_BYTES] += ovl;
    f[D_OOO_PKTS] += ooo;
    f[D_ZWND_PROBES] += probe;
    f[D_ACK_PKTS] += ack;
    f[D_PURE_ACKS] += ackrow && g->plen == 0 && !syn && !fin;
    f[D_RST] += rst;
    f[D_SACK_PKTS] += ackrow && g->sackn > 0;
    f[D_DSACK_PKTS] += ackrow && g->sackn > 0 && dsack(g);
    f[D_WIN_ZERO] += ackrow && eff == 0;
    f[D_BAD_CHECKSUMS] += g->bad;
    f[D_GAPS] += gap;
    f[D_SYN_PURE] += syn && !ack;
    f[D_SYNACK] += syn && ack;
    if ((ack || syn) && !rst) {
        if (eff > 0 && both && !syn && !me->wscaled) {
            /* tcptrace forgets the windows before the first scaled one (the SYNs') */
            f[D_WIN_MAX] = f[D_WIN_MIN] = 0;
            me->wscaled = 1;
        }
        if (eff > f[D_WIN_MAX])
            f[D_WIN_MAX] = eff;
        if (eff > 0 && (f[D_WIN_MIN] == 0 || eff < f[D_WIN_MIN]))
            f[D_WIN_MIN] = eff;
    }
    if (ackrow && g->sackn > f[D_MAX_SACK])
        f[D_MAX_SACK] = g->sackn;
    f[D_FLAGS] |= g->flags;
    if (g->frame > c->c[C_LAST_FRAME])
        c->c[C_LAST_FRAME] = g->frame;
    if (g->ts > c->c[C_LAST_TS])
        c->c[C_LAST_TS] = g->ts;

    /* RTT: this segment's new sequence space waits for its ACK; this ACK, the other's */
    if (rec && (e > mprev || fill)) {
        int64_t from = fill || mprev == NEG ? sq : (sq > mprev ? sq : mprev);
        if (pend_add(s, me, (piece_t){from, e, t_us, g->frame, 0, (uint8_t)syn}) < 0)
            return -1;
    }
    if (ack)
        ack_in(s, other, g->ack, t_us);

    unsigned data = g->plen > 0, sfr = syn || fin || rst;
    unsigned shown = (unsigned)(syn && !ack) | (unsigned)(syn && ack) << 1 |
        (unsigned)(syn && (fin || rst)) << 2 | (unsigned)fin << 3 | (unsigned)rst << 4 |
        (unsigned)(ack && !data && !sfr) << 5 | data << 6 | (unsigned)(g->bad != 0) << 7 |
        (unsigned)gap << 8 | (unsigned)(data && ovl > 0) << 9 |
        (unsigned)(g->win == 0 && !sfr) << 10;
    return history(c, dir, shown);
}

/* ---- the type ----------------------------------------------------------------------- */

enum {
    X_L4, X_FRAME, X_TS, X_VER, X_SHI, X_SLO, X_DHI, X_DLO, X_SPORT, X_DPORT, X_SEQ, X_ACK,
    X_FLAGS, X_WIN, X_PLEN, X_CSUM, X_NOTES, X_LAYOUT, X_DOFF, X_L4OFF, X_N
};
static const want_t xcols[X_N] = {
    {"l4", 1}, {"frame", 8}, {"ts_ns", 8}, {"ip_version", 1}, {"src_hi", 8}, {"src_lo", 8},
    {"dst_hi", 8}, {"dst_lo", 8}, {"sport", 2}, {"dport", 2}, {"tcp_seq", 4}, {"tcp_ack", 4},
    {"tcp_flags", 2}, {"tcp_window", 2}, {"payload_length", 4}, {"l4_csum", 1},
    {"csum_notes", 1}, {"tcp_opt_layout", 4}, {"data_offset", 8}, {"l4_offset", 2},
};

typedef struct {
    Py_buffer v[X_N];
    const unsigned char *buf;
    Py_ssize_t buflen;
    const int64_t *lay;        /* a layout's (window scale at, SACK at, SACK length) */
    Py_ssize_t nlay;
} xframe_t;

#define XV(c) col_at(&x->v[c], i, xcols[c].size)

static inline uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* the segment of a row the columns hold, its options from its layout */
static void
seg_of_row(const Summary *s, const xframe_t *x, Py_ssize_t i, seg_t *g)
{
    memset(g, 0, sizeof *g);
    g->frame = (int64_t)XV(X_FRAME);
    g->ts = (int64_t)XV(X_TS);
    g->ver = (int)XV(X_VER);
    g->shi = XV(X_SHI), g->slo = XV(X_SLO), g->dhi = XV(X_DHI), g->dlo = XV(X_DLO);
    g->sport = (int)XV(X_SPORT);
    g->dport = (int)XV(X_DPORT);
    g->seq = (uint32_t)XV(X_SEQ);
    g->ack = (uint32_t)XV(X_ACK);
    g->flags = (int)XV(X_FLAGS);
    g->win = (int64_t)XV(X_WIN);
    g->plen = (int64_t)XV(X_PLEN);
    g->bad = (int64_t)XV(X_CSUM) == s->csum_bad && !((int64_t)XV(X_NOTES) & s->note_hint);
    g->ws = -1;
    int32_t li = (int32_t)XV(X_LAYOUT);
    if (li < 0 || li >= x->nlay)
        return;
    const int64_t *l = &x->lay[3 * li];
    int64_t base = (int64_t)XV(X_DOFF) + (int64_t)XV(X_L4OFF) + 20;
    if (base < 0)
        return;
    if (l[0] >= 0 && base + l[0] + 2 < x->buflen)
        g->ws = x->buf[base + l[0] + 2];
    if (l[1] >= 0 && l[2] >= 2) {
        g->sackn = (int)((l[2] - 2) / 8);
        uint32_t *blk[4] = {&g->s0l, &g->s0r, &g->s1l, &g->s1r};
        for (int b = 0; b < 4 && b < 2 * g->sackn; b++) {
            int64_t at = base + l[1] + 2 + 4 * b;
            if (at + 4 <= x->buflen)
                *blk[b] = be32(&x->buf[at]);
        }
    }
}

/* a row read per packet: (row, frame, ts, ver, shi, slo, dhi, dlo, sport, dport, seq, ack,
 * flags, win, plen, bad, ws, sackn, s0l, s0r, s1l, s1r) */
#define ODD_N 22
static int
seg_of_tuple(PyObject *t, Py_ssize_t *row, seg_t *g)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != ODD_N) {
        PyErr_SetString(PyExc_TypeError, "feed: odd rows are tuples of 22 ints");
        return -1;
    }
    uint64_t v[ODD_N];
    for (int k = 0; k < ODD_N; k++) {
        v[k] = PyLong_AsUnsignedLongLongMask(PyTuple_GET_ITEM(t, k));
        if (v[k] == (uint64_t)-1 && PyErr_Occurred())
            return -1;
    }
    *row = (Py_ssize_t)v[0];
    *g = (seg_t){.frame = (int64_t)v[1], .ts = (int64_t)v[2], .ver = (int)v[3],
                 .shi = v[4], .slo = v[5], .dhi = v[6], .dlo = v[7], .sport = (int)v[8],
                 .dport = (int)v[9], .seq = (uint32_t)v[10], .ack = (uint32_t)v[11],
                 .flags = (int)v[12], .win = (int64_t)v[13], .plen = (int64_t)v[14],
                 .bad = (int)v[15], .ws = (int)(int64_t)v[16], .sackn = (int)v[17],
                 .s0l = (uint32_t)v[18], .s0r = (uint32_t)v[19], .s1l = (uint32_t)v[20],
                 .s1r = (uint32_t)v[21]};
    return 0;
}

/* rows [i, stop) that are easy and TCP, without a Python object: -1 out of memory */
static int
easy_rows(Summary *s, const xframe_t *x, const unsigned char *ez, Py_ssize_t i,
          Py_ssize_t stop)
{
    for (; i < stop; i++) {
        seg_t g;
        if (!ez[i] || col_at(&x->v[X_L4], i, 1) != (uint64_t)s->l4_tcp)
            continue;
        seg_of_row(s, x, i, &g);
        if (segment(s, &g, NULL, NULL) < 0)
            return -1;
    }
    return 0;
}

PyDoc_STRVAR(feed_doc,
"feed(cols, buf, layouts, n, easy, odd) -> [(stream, direction) of each odd row]\n\n"
"Take a batch's first n rows in file order: those where easy (a bool array) is true and\n"
"l4 is TCP from the columns (dict of numpy arrays; buf the batch's bytes, layouts an\n"
"int64 array of (window scale at, SACK at, SACK length) per option layout, -1: none),\n"
"the others from odd (tuples of ints, by row: see seg_of_tuple), which name the rows the\n"
"exact analyser's front end read.");

static PyObject *
Summary_feed(Summary *s, PyObject *args)
{
    PyObject *cols, *buf_o, *lay_o, *easy_o, *odd_o, *odd = NULL;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!OOnOO", &PyDict_Type, &cols, &buf_o, &lay_o, &n, &easy_o,
                          &odd_o))
        return NULL;
    if (s->busy) {
        PyErr_SetString(PyExc_RuntimeError, "feed: another thread feeds this Summary");
        return NULL;
    }
    xframe_t x;
    Py_buffer buf, lay, easy;
    int got = 0, have_buf = 0, have_lay = 0, have_easy = 0;
    PyObject *res = NULL, *owners = NULL;
    s->busy = 1;
    /* a tuple of its own: the list could change while the GIL is let go */
    odd = PySequence_Tuple(odd_o);
    if (!odd)
        goto done;
    if (get_buffer(buf_o, &buf, 0, 0, "buf") < 0)
        goto done;
    have_buf = 1;
    if (get_ints(lay_o, &lay, 0, 8, "layouts") < 0)
        goto done;
    have_lay = 1;
    if (get_buffer(easy_o, &easy, 0, 1, "easy") < 0)
        goto done;
    have_easy = 1;
    if (easy.len < n) {
        PyErr_SetString(PyExc_ValueError, "feed: easy is shorter than n");
        goto done;
    }
    x.buf = buf.buf;
    x.buflen = buf.len;
    x.lay = lay.buf;
    x.nlay = lay.len / 24;
    for (; got < X_N; got++) {
        PyObject *c = PyDict_GetItemString(cols, xcols[got].name);
        if (!c) {
            PyErr_Format(PyExc_KeyError, "feed: no column %s", xcols[got].name);
            goto done;
        }
        if (get_ints(c, &x.v[got], 0, xcols[got].size, xcols[got].name) < 0)
            goto done;
        if (x.v[got].len / xcols[got].size < n) {
            got++;
            PyErr_Format(PyExc_ValueError, "feed: column %s is short", xcols[got - 1].name);
            goto done;
        }
    }
    owners = PyList_New(0);
    if (!owners)
        goto done;
    const unsigned char *ez = easy.buf;
    Py_ssize_t nodd = PyTuple_GET_SIZE(odd), j = 0, orow = -1;
    seg_t og;
    if (nodd && seg_of_tuple(PyTuple_GET_ITEM(odd, 0), &orow, &og) < 0)
        goto done;
    const xframe_t *xp = &x;
    for (Py_ssize_t i = 0; i < n;) {
        if (j < nodd && orow == i) {
            int64_t conn;
            int dir;
            if (segment(s, &og, &conn, &dir) < 0) {
                PyErr_NoMemory();
                goto done;
            }
            PyObject *t = Py_BuildValue("(Li)", (long long)conn, dir);
            if (!t || PyList_Append(owners, t) < 0) {
                Py_XDECREF(t);
                goto done;
            }
            Py_DECREF(t);
            if (++j < nodd && seg_of_tuple(PyTuple_GET_ITEM(odd, j), &orow, &og) < 0)
                goto done;
            i++;
            continue;
        }
        /* the easy rows up to the next odd one touch no Python object: a long run goes
           without the GIL (the next batch's reader runs meanwhile) */
        Py_ssize_t stop = j < nodd && orow > i && orow < n ? orow : n;
        int rc;
        if (stop - i >= 256) {
            Py_BEGIN_ALLOW_THREADS
            rc = easy_rows(s, xp, ez, i, stop);
            Py_END_ALLOW_THREADS
        } else {
            rc = easy_rows(s, xp, ez, i, stop);
        }
        if (rc < 0) {
            PyErr_NoMemory();
            goto done;
        }
        i = stop;
    }
    if (j < nodd) {
        PyErr_SetString(PyExc_ValueError, "feed: odd rows must name rows below n, in order");
        goto done;
    }
    res = owners;
    owners = NULL;
done:
    s->busy = 0;
    Py_XDECREF(odd);
    Py_XDECREF(owners);
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&x.v[k]);
    if (have_easy)
        PyBuffer_Release(&easy);
    if (have_lay)
        PyBuffer_Release(&lay);
    if (have_buf)
        PyBuffer_Release(&buf);
    return res;
}

PyDoc_STRVAR(table_doc,
"table() -> (figures, connections)\n\n"
"figures: int64 bytes, a row a connection of CONN_FIELDS then DIR_FIELDS from the client\n"
"then from the server; connections: (ip version, a hi, a lo, b hi, b lo, ports, client is\n"
"b, the first segment was a SYN-ACK, history) each, a and b in canonical order, ports\n"
"a's << 16 | b's.");

static PyObject *
Summary_table(Summary *s, PyObject *unused)
{
    if (s->busy) {
        PyErr_SetString(PyExc_RuntimeError, "table: another thread feeds this Summary");
        return NULL;
    }
    const Py_ssize_t w = C_N + 2 * D_N, n = s->n;
    PyObject *fig = PyBytes_FromStringAndSize(NULL, n * w * 8);
    PyObject *conns = PyList_New(n);
    if (!fig || !conns)
        goto fail;
    int64_t *o = (int64_t *)PyBytes_AS_STRING(fig);
    for (Py_ssize_t k = 0; k < n; k++) {
        const conn_t *c = &s->conns[k];
        memcpy(o, c->c, sizeof c->c);
        memcpy(o + C_N, c->d[0].f, sizeof c->d[0].f);
        memcpy(o + C_N + D_N, c->d[1].f, sizeof c->d[1].f);
        o += w;
        PyObject *t = Py_BuildValue("(iKKKKkiiy#)", c->ver, (unsigned long long)c->ah,
                                    (unsigned long long)c->al, (unsigned long long)c->bh,
                                    (unsigned long long)c->bl, (unsigned long)c->ports,
                                    c->client_rev, c->flipped, c->hist ? c->hist : "",
                                    (Py_ssize_t)c->nhist);
        if (!t)
            goto fail;
        PyList_SET_ITEM(conns, k, t);
    }
    return Py_BuildValue("(NN)", fig, conns);
fail:
    Py_XDECREF(fig);
    Py_XDECREF(conns);
    return NULL;
}

static int
Summary_init(Summary *s, PyObject *args, PyObject *kw)
{
    long long bad, hint, tcp;
    if (!PyArg_ParseTuple(args, "LLL", &bad, &hint, &tcp))
        return -1;
    if (s->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Summary: another thread feeds it");
        return -1;
    }
    s->csum_bad = bad;
    s->note_hint = hint;
    s->l4_tcp = tcp;
    s->last = -1;
    return 0;
}

/* last = -1 before any __init__: a subclass's __init__ that does not call ours, or
 * Summary.__new__ alone, must not leave a connection index no connection has */
static PyObject *
Summary_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    Summary *s = (Summary *)PyType_GenericNew(type, args, kw);
    if (s)
        s->last = -1;
    return (PyObject *)s;
}

static void
Summary_dealloc(Summary *s)
{
    for (Py_ssize_t k = 0; k < s->n; k++) {
        conn_t *c = &s->conns[k];
        free(c->hist);
        for (int j = 0; j < 2; j++) {
            free(c->d[j].holes);
            free(c->d[j].pend);
        }
    }
    free(s->conns);
    free(s->index);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *
Summary_connections(Summary *s, void *unused)
{
    return PyLong_FromSsize_t(s->n);
}

static PyObject *
Summary_pending(Summary *s, void *unused)
{
    return PyLong_FromSsize_t(s->pending);
}

static PyMethodDef Summary_methods[] = {
    {"feed", (PyCFunction)Summary_feed, METH_VARARGS, feed_doc},
    {"table", (PyCFunction)Summary_table, METH_NOARGS, table_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Summary_getset[] = {
    {"connections", (getter)Summary_connections, NULL, "connections so far", NULL},
    {"pending", (getter)Summary_pending, NULL, "segments not yet acknowledged, in all", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SummaryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rawlab._tcp_summary.Summary",
    .tp_doc = PyDoc_STR("Summary(csum_bad, note_hint, l4_tcp): TCP connections of a stream "
                        "of batches (feed each, then table)"),
    .tp_basicsize = sizeof(Summary),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Summary_new,
    .tp_init = (initproc)Summary_init,
    .tp_dealloc = (destructor)Summary_dealloc,
    .tp_methods = Summary_methods,
    .tp_getset = Summary_getset,
};

static PyObject *
names(const char *const *v, int n)
{
    PyObject *t = PyTuple_New(n);
    for (int k = 0; t && k < n; k++) {
        PyObject *u = PyUnicode_FromString(v[k]);
        if (!u) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, k, u);
    }
    return t;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "rawlab._tcp_summary",
    "The TCP connection table (tcptrace's figures), one pass a segment, compiled.", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__tcp_summary(void)
{
    if (PyType_Ready(&SummaryType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&SummaryType);
    if (PyModule_AddObject(m, "Summary", (PyObject *)&SummaryType) < 0 ||
        PyModule_AddObject(m, "DIR_FIELDS", names(dir_fields, D_N)) < 0 ||
        PyModule_AddObject(m, "CONN_FIELDS", names(conn_fields, C_N)) < 0 ||
        PyModule_AddIntConstant(m, "MAX_PENDING", MAX_PENDING) < 0 ||
        PyModule_AddIntConstant(m, "MAX_PENDING_ALL", MAX_PENDING_ALL) < 0 ||
        PyModule_AddIntConstant(m, "MAX_HOLES", MAX_HOLES) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
