"""TCP connections summarised on columns: tcptrace's per-connection figures, column-wise.

    from rawlab.analysis.tcp.columns import ConnSummary, summarise
    table = summarise(open_batches("x.pcap"))       # dict of numpy columns, a row a connection
    s = ConnSummary(); s.add(batch); ...; s.columns()  # the same, batch by batch
    s.connections()                                  # as analysis.tcp.Connection (the table)
    to_arrow(table)                                  # a pyarrow.Table

The batches are :mod:`rawlab.decode.columns`' (a row a frame). Rows the columns hold are
read from the columns (also those whose only oddity is a checksum, status CHECKSUM: a
bad one is counted unless the kernel's word decides); every other row (odd link types,
tunnels, options the columns do not hold) is read by the exact analyser's own front end
(:func:`~rawlab.analysis.tcp.analyzer.segment_fields`), so both see the same segments.

A connection is a canonical 4-tuple (:mod:`~rawlab.analysis.tcp.table`), numbered in
order of first appearance; its client sent the first packet, or received it when that
was a SYN-ACK (Wireshark's and Zeek's rule, as the exact analyser). Unlike the exact
analyser, a SYN with a new ISN on a known 4-tuple, or a long idle time, does not start a
new connection here (tcptrace's own heuristics are not those either).

Per batch: rows sorted by (connection, direction) then file order; sequence numbers
unwrapped per direction (cumulative 32-bit differences); per-direction cumulative maxima
of sequence ends with the state carried from the batch before; ACKs matched to the
segments they acknowledge by ``searchsorted`` on (direction, end). The only per-row
Python is for rows that are not in order (retransmissions, gaps: a few per cent).

Definitions (tcptrace 6.6.7's, ``trace.c``/``rexmit.c``; where Wireshark differs it
says so, and the exact analyser keeps Wireshark's):

* ``packets``: TCP segments sent that way. ``data_pkts``/``data_bytes``: segments with
  payload and their payload bytes (by the IP length), retransmissions included
  (tcptrace's "actual data"; the exact analyser's ``segments`` and ``bytes``).
* ``rexmit_pkts``/``rexmit_bytes``: segments carrying sequence space (SYN and FIN
  count one) any of which was seen before in that direction, and those bytes.
  Wireshark's ``retransmission`` differs: a segment behind the next expected
  sequence number sent within the iRTT of the highest one is ``out_of_order`` for
  Wireshark, a retransmission here; one filling a gap in the capture is a
  retransmission for Wireshark, ``out_of_order`` here.
* ``unique_bytes``: payload bytes never seen before in that direction.
* ``ooo_pkts``: segments that fill a hole below the highest sequence number seen and
  end before the segment after that hole ends (tcptrace's out-of-order).
* ``zwnd_probes``: segments with sequence space sent while the other side's last
  advertised window was 0; they are not counted as data seen (tcptrace).
* RTT: a sample when an ACK acknowledges exactly the end of a segment that no earlier
  ACK covered, that was not retransmitted, and after which no earlier sequence
  number was sent again before the ACK (Karn's rule, tcptrace's "intervening
  transmissions"); ``rtt_*_us`` in microseconds as tcptrace (pcap times). Wireshark's
  ``ack_rtt`` (the exact analyser's) takes every ACK that ends exactly at an unacked
  segment, retransmitted or not. ``rtt_3whs_us``: the sample of the SYN (SYN-ACK).
* ``irtt_ns``: Wireshark's initial RTT (first pure SYN to the first ACK without SYN
  after it), as the exact analyser.
* SACK: ``sack_pkts`` ACKs with SACK blocks, ``max_sack_blocks``, ``dsack_pkts``
  (first block below the ACK, inside or overlapping the second: tcptrace's three cases).
* Windows: ``win_max``, ``win_min`` (non-zero), ``win_zero`` (ACKs advertising 0),
  scaled once both SYNs asked for scaling (never in a SYN).
* Zeek ``history`` and ``state`` as the exact analyser, with ``t`` from
  ``rexmit_pkts``' rule and ``g`` a segment starting past the highest sequence end
  seen that way (Wireshark's lost segment without its zero-window-probe exception).

Memory: the state carried between batches is per direction (a few numbers, the holes
below the highest sequence number: at most :data:`MAX_HOLES`, and the segments not
yet acknowledged: at most :data:`MAX_PENDING` per direction, as Wireshark's unacked
list, and :data:`MAX_PENDING_ALL` in all — an ACK of an older one gives no RTT sample,
where tcptrace, which keeps everything, would take one). It grows with the number of
connections (a few hundred bytes each, as tcptrace's and Wireshark's tables), not
with the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rawlab.decode import columns as C

if TYPE_CHECKING:
    import pyarrow as pa

    from rawlab.analysis.tcp.events import Connection

MAX_PENDING = 10_000  # unacknowledged segments kept per direction (TCP_MAX_UNACKED_SEGMENTS)
MAX_PENDING_ALL = 50_000  # ... and in all (the newest): ~2 MB, whatever the connections
MAX_HOLES = 64  # holes kept per direction below its highest sequence number (the highest)
_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_NEG = -(1 << 40)  # "nothing yet" for maxima (unwrapped sequence numbers stay above)
_W = 1 << 32
_HALF = 1 << 31
_LETTERS = "shqfradcgtw"  # Zeek's order (s/h share a slot: h is SYN-ACK)
_LOG = frozenset("cgtw")

#: per-direction counters (``c2s_<name>`` and ``s2c_<name>`` in :meth:`ConnSummary.columns`)
DIR_FIELDS = ("packets", "data_pkts", "data_bytes", "unique_bytes", "rexmit_pkts",
              "rexmit_bytes", "ooo_pkts", "zwnd_probes", "ack_pkts", "pure_acks", "syn", "fin",
              "rst", "sack_pkts", "dsack_pkts", "max_sack_blocks", "win_max", "win_min",
              "win_zero", "rtt_samples", "rtt_min_us", "rtt_avg_us", "rtt_max_us",
              "rtt_3whs_us", "flags_seen", "bad_checksums", "gaps")
_SUMS = ("packets", "data_pkts", "data_bytes", "unique_bytes", "rexmit_pkts", "rexmit_bytes",
         "ooo_pkts", "zwnd_probes", "ack_pkts", "pure_acks", "syn", "fin", "rst", "sack_pkts",
         "dsack_pkts", "win_zero", "rtt_samples", "rtt_sum", "bad_checksums", "gaps",
         "syn_pure", "synack")


def _grow(a: np.ndarray, n: int, fill: Any) -> np.ndarray:
    if len(a) >= n:
        return a
    out = np.full(max(n, 2 * len(a), 64), fill, a.dtype)
    out[:len(a)] = a
    return out


def _starts(keys: np.ndarray) -> np.ndarray:
    """True where a run of equal (sorted) keys starts."""
    s = np.ones(len(keys), bool)
    s[1:] = keys[1:] != keys[:-1]
    return s


def _seg_cumsum(x: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sums of x restarting where `start` is True."""
    cs = np.cumsum(x)
    first = np.maximum.accumulate(np.where(start, np.arange(len(x)), 0))
    return cs - (cs[first] - x[first])


def _seg_cummax(x: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Inclusive cumulative maxima of x (int64, >= _NEG, < 2**41) restarting where `start`
    is True (each run lifted above the ones before it)."""
    rank = (np.cumsum(start) - 1).astype(np.int64)
    m = np.maximum.accumulate((x - _NEG) + (rank << 42))
    return m - (rank << 42) + _NEG


def _seg_ffill(valid: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Index of the latest row at or before each row (same run) where `valid`, else -1."""
    n = len(valid)
    idx = np.where(valid, np.arange(n), -1)
    run0 = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    last = np.maximum.accumulate(idx)
    return np.where(last >= run0, last, -1)


def _exclusive(v: np.ndarray, start: np.ndarray, first: np.ndarray) -> np.ndarray:
    """v shifted one row down within each run; `first` (per row) at a run's start."""
    out = np.empty_like(v)
    out[1:] = v[:-1]
    out[start] = first[start]
    return out


class ConnSummary:
    """Connections of a stream of batches; :meth:`add` each batch, then :meth:`columns`."""

    def __init__(self) -> None:
        from rawlab.analysis.reassembly import IpReassembly
        from rawlab.analysis.tcp.analyzer import segment_fields
        from rawlab.decode.descent import tunnel_udp_ports

        self._fields = segment_fields
        self.reassembly = IpReassembly()  # as the exact analyser's: fragmented segments
        self._tunnel_ports = np.zeros(65536, bool)
        self._tunnel_ports[list(tunnel_udp_ports())] = True
        self.keys: dict[tuple[int, ...], int] = {}
        self.conn: dict[str, list[Any]] = {k: [] for k in (
            "family", "client", "client_port", "server", "server_port", "flipped",
            "client_rev", "first_frame", "first_ts_ns")}
        self.n = 0  # connections
        z = np.zeros(0, np.int64)
        self.last_frame, self.last_ts = z.copy(), z.copy()
        self.irtt, self.mru_syn = z.copy(), z.copy()
        self.g: dict[str, np.ndarray] = {k: z.copy() for k in _SUMS}
        for k, fill in (("base_raw", 0), ("last_raw", 0), ("last_unw", 0), ("has_base", 0),
                        ("M", _NEG), ("Mall", _NEG), ("first", _NEG), ("first_end", _NEG),
                        ("ack_raw", 0), ("ack_unw", 0), ("ack_has", 0), ("maxack", _NEG),
                        ("win_last", 0), ("ws_seen", 0), ("ws_val", 0), ("win_max", 0),
                        ("win_min", 0), ("max_sack", 0), ("flags", 0), ("rtt_min", 0),
                        ("rtt_max", 0), ("rtt_3whs", 0), ("synseq", -1), ("letters", 0),
                        ("wscaled", 0)):
            self.g[k] = np.full(0, fill, np.int64)
        self._fill = {k: (_NEG if k in ("M", "Mall", "first", "first_end", "maxack") else
                          -1 if k == "synseq" else 0) for k in self.g}
        self.holes: dict[int, list[list[int]]] = {}
        # (stream, direction, owners) of records that name the processes at their ends
        # (pcapng written with ``capture --processes``), for the table's process columns
        self.owners: list[tuple[int, int, Any]] = []
        self._owned: list[tuple[int, Any]] = []  # (frame, owners) of this batch
        self.counts: dict[tuple[int, int], int] = {}  # (group, letter) -> occurrences
        self.events: list[np.ndarray] = []  # history letters: (conn, frame, slot, char)
        # not yet acknowledged pieces (g, first, end, t_us, frame) and recent transmissions
        self.pending = np.zeros((0, 5), np.int64)
        self.xmits = np.zeros((0, 4), np.int64)  # (g, s, t_us, frame)

    # ---- rows -------------------------------------------------------------------------

    def _rows(self, batch: C.Batch, n: int) -> dict[str, np.ndarray] | None:
        """The TCP rows of a batch's first n rows as arrays, in file order."""
        c = batch.cols
        st = c["status"][:n]
        csum = c["l4_csum"][:n]
        # a checksum that is not good keeps the row's fields good (status CHECKSUM: all
        # held); a bad one counts, unless the kernel said it is not filled yet (partial)
        easy = (st == C.FAST) | (st == C.APPLICATION) | (st == C.CHECKSUM)
        bad = (csum == C.CSUM_BAD) & ((c["csum_notes"][:n] & C.CSUM_NOTE_HINT) == 0)
        # a UDP datagram on a tunnel's port (VXLAN, Geneve ...) may carry TCP: read per packet
        udp = easy & (c["l4"][:n] == C.L4_UDP)
        if udp.any():
            tun = self._tunnel_ports
            easy &= ~(udp & (tun[c["sport"][:n]] | tun[c["dport"][:n]]))
        take = np.nonzero(easy & (c["l4"][:n] == C.L4_TCP))[0]
        odd = np.nonzero(~easy)[0]
        r: dict[str, np.ndarray] = {
            "frame": c["frame"][take].astype(np.int64), "ts": c["ts_ns"][take].astype(np.int64),
            "ver": c["ip_version"][take].astype(np.int64),
            "shi": c["src_hi"][take], "slo": c["src_lo"][take],
            "dhi": c["dst_hi"][take], "dlo": c["dst_lo"][take],
            "sport": c["sport"][take].astype(np.int64), "dport": c["dport"][take].astype(np.int64),
            "seq": c["tcp_seq"][take].astype(np.int64), "ack": c["tcp_ack"][take].astype(np.int64),
            "flags": c["tcp_flags"][take].astype(np.int64),
            "win": c["tcp_window"][take].astype(np.int64),
            "plen": c["payload_length"][take].astype(np.int64),
            "bad": bad[take].astype(np.int64)}
        r.update(_options(batch, take))
        if len(odd):
            extra = self._odd(batch, odd)
            if extra is not None:
                r = {k: np.concatenate([r[k], extra[k].astype(r[k].dtype)]) for k in r}
                order = np.argsort(r["frame"], kind="stable")
                r = {k: v[order] for k, v in r.items()}
        return r if len(r["frame"]) else None

    def _odd(self, batch: C.Batch, rows: np.ndarray) -> dict[str, np.ndarray] | None:
        """Rows the columns do not hold, read as the exact analyser reads them."""
        from rawlab.decode.checksum import Verdict

        out: list[tuple[int, ...]] = []
        frames = batch.cols["frame"]
        for i in rows.tolist():
            rec = batch.record(i)
            got = self._fields(rec.data, rec.linktype, rec.csum_status, self.reassembly,
                               int(frames[i]), rec.ts_ns)
            if got is None:
                continue
            if getattr(rec, "owners", None) is not None:
                self._owned.append((int(frames[i]), rec.owners))
            src, dst, hdr, l4, opts, csum = got
            sport, dport, seq, ack, off, win = hdr
            v6 = len(src) == 16
            sh, sl = (int.from_bytes(src[:8], "big"), int.from_bytes(src[8:], "big")) if v6 \
                else (0, int.from_bytes(src, "big"))
            dh, dl = (int.from_bytes(dst[:8], "big"), int.from_bytes(dst[8:], "big")) if v6 \
                else (0, int.from_bytes(dst, "big"))
            sack = list(opts.get("sack", ()))[:4]
            blocks = [x for b in sack[:2] for x in b] + [0] * (4 - 2 * min(len(sack), 2))
            out.append((int(frames[i]), rec.ts_ns, 6 if v6 else 4, sh, sl, dh, dl, sport, dport,
                        seq, ack, off & 0x1FF, win, max(l4 - (off >> 12) * 4, 0),
                        int(csum == Verdict.BAD), opts.get("wscale", -1), len(sack), *blocks))
        if not out:
            return None
        names = ("frame", "ts", "ver", "shi", "slo", "dhi", "dlo", "sport", "dport", "seq", "ack",
                 "flags", "win", "plen", "bad", "ws", "sackn", "s0l", "s0r", "s1l", "s1r")
        cols = list(zip(*out, strict=True))
        return {k: np.array(v, np.uint64 if k in ("shi", "slo", "dhi", "dlo") else np.int64)
                for k, v in zip(names, cols, strict=True)}

    def _connections(self, r: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Each row's connection number and direction (0: from the client)."""
        sh, sl, dh, dl = r["shi"], r["slo"], r["dhi"], r["dlo"]
        sp, dp = r["sport"], r["dport"]
        rev = (sp > dp) | ((sp == dp) & ((sh > dh) | ((sh == dh) & (sl > dl))))
        ah, al = np.where(rev, dh, sh), np.where(rev, dl, sl)
        bh, bl = np.where(rev, sh, dh), np.where(rev, sl, dl)
        ports = np.where(rev, dp << 16 | sp, sp << 16 | dp)
        first, inv = C.groups(r["ver"], ah, al, bh, bl, ports)  # (in order of appearance)
        cid_of = np.empty(len(first), np.int64)
        keys = np.stack([r["ver"][first].astype(np.uint64), ah[first], al[first], bh[first],
                         bl[first], ports[first].astype(np.uint64)], axis=1).tolist()
        for j in np.argsort(first, kind="stable").tolist():
            key = tuple(keys[j])
            got = self.keys.get(key)
            if got is None:
                got = self.keys[key] = self._new(r, int(first[j]), bool(rev[first[j]]))
            cid_of[j] = got
        cid = cid_of[inv]
        client_rev = np.array(self.conn["client_rev"], np.int64)
        return cid, rev.astype(np.int64) ^ client_rev[cid]

    def _new(self, r: dict[str, np.ndarray], i: int, rev: bool) -> int:
        """A connection first seen at row i."""
        k = self.n
        self.n += 1
        flipped = (int(r["flags"][i]) & (_SYN | _ACK)) == _SYN | _ACK
        v6 = int(r["ver"][i]) == 6

        def addr(hi: Any, lo: Any) -> bytes:
            return int(hi).to_bytes(8, "big") + int(lo).to_bytes(8, "big") if v6 else \
                int(lo).to_bytes(4, "big")

        src = (addr(r["shi"][i], r["slo"][i]), int(r["sport"][i]))
        dst = (addr(r["dhi"][i], r["dlo"][i]), int(r["dport"][i]))
        client, server = (dst, src) if flipped else (src, dst)
        c = self.conn
        c["family"].append(6 if v6 else 4)
        c["client"].append(client[0])
        c["client_port"].append(client[1])
        c["server"].append(server[0])
        c["server_port"].append(server[1])
        c["flipped"].append(flipped)
        c["client_rev"].append(int(rev) ^ int(flipped))
        c["first_frame"].append(int(r["frame"][i]))
        c["first_ts_ns"].append(int(r["ts"][i]))
        return k

    def _size(self) -> None:
        n, g = self.n, 2 * self.n
        self.last_frame = _grow(self.last_frame, n, 0)
        self.last_ts = _grow(self.last_ts, n, 0)
        self.irtt = _grow(self.irtt, n, 0)
        self.mru_syn = _grow(self.mru_syn, n, 0)
        for k, v in self.g.items():
            self.g[k] = _grow(v, g, self._fill[k])

    # ---- one batch ----------------------------------------------------------------------

    def add(self, batch: C.Batch, rows: int | None = None) -> None:
        """Take the first `rows` rows (all) of a batch."""
        n = len(batch) if rows is None else min(rows, len(batch))
        r = self._rows(batch, n) if n else None
        if r is None:
            return
        cid, d = self._connections(r)
        self._size()
        if self._owned:
            at = {f: k for k, f in enumerate(r["frame"].tolist())}
            self.owners += [(int(cid[at[f]]), int(d[at[f]]), o) for f, o in self._owned]
            self._owned = []
        flags = r["flags"]
        r.update(cid=cid, d=d, g=cid * 2 + d, ts_us=r["ts"] // 1000)
        for name, bit in (("syn", _SYN), ("fin", _FIN), ("rst", _RST), ("is_ack", _ACK)):
            r[name] = (flags & bit) != 0
        # connection order: windows, probes and Wireshark's iRTT need the other direction
        r["pc"] = np.lexsort((r["frame"], cid))
        r["eff"], r["probe"] = self._windows(r)
        self._irtt(r)
        # direction order: sequence space
        self._sequence(r)
        self._count(r)
        self._rtt(r)
        self._history(r)

    def _sequence(self, r: dict[str, np.ndarray]) -> None:
        """Sequence numbers unwrapped; per row its range, whether it is recorded (takes
        sequence space, not a probe), what of it was seen before."""
        g = r["g"]
        r["pg"] = pg = np.lexsort((r["frame"], g))
        gs = g[pg]
        r["start"] = start = _starts(gs)
        s = np.empty(len(g), np.int64)
        s[pg] = self._unwrap(r["seq"][pg], gs, start)
        length = r["plen"] + r["syn"] + r["fin"]
        r["s"], r["e"] = s, s + length
        r["rec"] = (length > 0) & ~r["probe"]
        r["ovl"], r["ooo"], r["gap"], r["mprev"], r["fill"] = self._overlaps(r)

    def _count(self, r: dict[str, np.ndarray]) -> None:
        """The per-direction counters of the batch's rows."""
        G = self.g
        g, pg, start = r["g"], r["pg"], r["start"]
        gs = g[pg]
        syn, fin, rst, ack, eff = r["syn"], r["fin"], r["rst"], r["is_ack"], r["eff"]
        syn_asof = np.empty(len(g), np.int64)
        syn_asof[pg] = _seg_cumsum(syn[pg].astype(np.int64), start) + G["syn"][gs]
        fin_asof = np.empty(len(g), np.int64)
        fin_asof[pg] = _seg_cumsum(fin[pg].astype(np.int64), start) + G["fin"][gs]
        ovl = r["ovl"]
        rcnt = ovl - (syn & (syn_asof > 1)) - (fin & (fin_asof > 1))
        data = r["plen"]
        uniq = np.where(r["rec"] & (rcnt < data), data - rcnt, 0)
        sackn = r["sackn"]
        ackrow = ack & ~rst
        dsack = ackrow & (sackn > 0) & _dsack(r)
        sums = (("packets", np.ones(len(g), bool)), ("data_pkts", data > 0),
                ("data_bytes", data), ("unique_bytes", uniq), ("rexmit_pkts", ovl > 0),
                ("rexmit_bytes", ovl), ("ooo_pkts", r["ooo"]), ("zwnd_probes", r["probe"]),
                ("ack_pkts", ack), ("pure_acks", ackrow & (data == 0) & ~syn & ~fin),
                ("syn", syn), ("fin", fin), ("rst", rst), ("sack_pkts", ackrow & (sackn > 0)),
                ("dsack_pkts", dsack), ("win_zero", ackrow & (eff == 0)),
                ("bad_checksums", r["bad"]), ("gaps", r["gap"]), ("syn_pure", syn & ~ack),
                ("synack", syn & ack))
        w = np.empty((len(g), len(sums)), np.int64)
        for k, (_name, v) in enumerate(sums):
            w[:, k] = v
        first = np.nonzero(start)[0]
        got = np.add.reduceat(w[pg], first, axis=0)  # one row per direction of the batch
        ug = gs[first]
        for k, (name, _v) in enumerate(sums):
            G[name][ug] += got[:, k]
        winrow = (ack | syn) & ~rst
        # tcptrace forgets the windows before the first scaled one (the SYNs')
        scaled = (winrow & (eff > 0) & r["both_ws"] & ~syn)[pg]
        after = _seg_cumsum(scaled.astype(np.int64), start) > 0
        starts_here = np.unique(gs[scaled & (G["wscaled"][gs] == 0)])
        G["win_max"][starts_here] = 0
        G["win_min"][starts_here] = 0
        G["wscaled"][starts_here] = 1
        keep = np.empty(len(g), bool)
        keep[pg] = after | ~np.isin(gs, starts_here)
        winrow &= keep
        np.maximum.at(G["win_max"], g[winrow], eff[winrow])
        nz = winrow & (eff > 0)
        cur = np.where(G["win_min"] > 0, G["win_min"], 1 << 62)
        np.minimum.at(cur, g[nz], eff[nz])
        G["win_min"] = np.where(cur == 1 << 62, 0, cur)
        np.maximum.at(G["max_sack"], g[ackrow], sackn[ackrow])
        np.bitwise_or.at(G["flags"], g, r["flags"])
        np.maximum.at(self.last_frame, r["cid"], r["frame"])
        np.maximum.at(self.last_ts, r["cid"], r["ts"])

    def _windows(self, r: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Each row's effective window (scaled once both sides asked, never in a SYN) and
        whether it is a zero-window probe (the other side's last window was 0)."""
        G = self.g
        pc = r["pc"]
        syn, ack, rst = r["syn"], r["is_ack"], r["rst"]
        cs, ds, gs = r["cid"][pc], r["d"][pc], r["g"][pc]
        start = _starts(cs)
        n = len(cs)
        ws = r["ws"][pc]
        has_ws = ws >= 0
        seen = []
        for k in (0, 1):
            own = (has_ws & (ds == k)).astype(np.int64)
            inc = _seg_cumsum(own, start)
            seen.append(inc - own + G["ws_seen"][cs * 2 + k])
        both = (seen[0] > 0) & (seen[1] > 0)
        # this direction's requested scale before this row
        val = np.empty(n, np.int64)
        for k in (0, 1):
            sel = ds == k
            last = _seg_ffill(has_ws & sel, start)
            prev = _exclusive(last, start, np.full(n, -1))
            # the latest of this direction strictly before the row
            ok = (prev >= 0) & sel
            val[sel] = G["ws_val"][cs[sel] * 2 + k]
            val[ok] = ws[prev[ok]]
        sy, ak, rs = syn[pc], ack[pc], rst[pc]
        win = r["win"][pc]
        eff = np.where(ak | sy, np.where(both & ~sy, win << np.minimum(val, 14), win), 0)
        # the other side's last window (not of a RST) and whether it sent anything yet
        other_win = np.empty(n, np.int64)
        other_pk = np.empty(n, np.int64)
        for k in (0, 1):
            mine = ds == k
            theirs = ~mine
            last = _seg_ffill(theirs & ~rs, start)
            has = last >= 0
            other_win[mine & has] = eff[last[mine & has]]
            carry = G["win_last"][cs * 2 + (1 - k)]
            other_win[mine & ~has] = carry[mine & ~has]
            cnt = _seg_cumsum(theirs.astype(np.int64), start)
            other_pk[mine] = (cnt + G["packets"][cs * 2 + (1 - k)])[mine]
        length = r["plen"][pc] + sy + (r["flags"][pc] & _FIN != 0)
        probe = (length > 0) & (other_win == 0) & (other_pk > 0)
        # carry: last window (not RST) and scale requests per direction
        for k in (0, 1):
            sel = (ds == k) & ~rs
            if sel.any():
                idx = np.nonzero(sel)[0]
                G["win_last"][gs[idx]] = eff[idx]  # the last row of each group wins
            sel = (ds == k) & has_ws
            if sel.any():
                idx = np.nonzero(sel)[0]
                G["ws_seen"][gs[idx]] = 1
                G["ws_val"][gs[idx]] = ws[idx]
        out = [np.empty(n, np.int64), np.empty(n, bool), np.empty(n, bool)]
        for o, v in zip(out, (eff, probe, both), strict=True):
            o[pc] = v
        r["both_ws"] = out[2]
        return out[0], out[1]

    def _irtt(self, r: dict[str, np.ndarray]) -> None:
        """Wireshark's initial RTT: the most recent pure SYN to the first ACK without SYN."""
        pc, syn, ack = r["pc"], r["syn"], r["is_ack"]
        cs = r["cid"][pc]
        start = _starts(cs)
        ts = r["ts"][pc]
        pure = (syn & ~ack)[pc]
        last = _seg_ffill(pure, start)
        mru = np.where(last >= 0, ts[np.maximum(last, 0)], self.mru_syn[cs])
        cand = (ack & ~syn)[pc] & (mru > 0) & (ts - mru > 0) & (self.irtt[cs] == 0)
        idx = np.nonzero(cand)[0]
        if len(idx):
            first = idx[_starts(cs[idx])]
            self.irtt[cs[first]] = ts[first] - mru[first]
        sel = np.nonzero(pure)[0]
        self.mru_syn[cs[sel]] = ts[sel]

    def _unwrap(self, x: np.ndarray, gs: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Sequence numbers unwrapped per direction (0 = the first one seen)."""
        G = self.g
        prev = np.empty_like(x)
        prev[1:] = x[:-1]
        first = np.nonzero(start)[0]
        fg = gs[first]
        known = G["has_base"][fg] == 1
        prev[first] = np.where(known, G["last_raw"][fg], x[first])
        d = ((x - prev + _HALF) & (_W - 1)) - _HALF
        base = np.where(known, G["last_unw"][fg], 0)
        cs = np.cumsum(d)
        at = cs[first] - d[first]
        counts = np.diff(np.r_[first, len(x)])
        unw = cs - np.repeat(at, counts) + np.repeat(base, counts)
        last = np.r_[first[1:], len(x)] - 1
        new = ~known
        G["base_raw"][fg[new]] = x[first[new]]
        G["has_base"][fg] = 1
        G["last_raw"][fg] = x[last]
        G["last_unw"][fg] = unw[last]
        return unw

    def _overlaps(self, r: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """Per row: bytes seen before (tcptrace's retransmitted bytes), out of order, a
        gap before it (past everything seen), the highest end before it, and whether it
        filled a hole."""
        G = self.g
        g, pg, start, rst = r["g"], r["pg"], r["start"], r["rst"]
        n = len(g)
        gs = g[pg]
        ss, es, rs = r["s"][pg], r["e"][pg], r["rec"][pg]
        ends = np.where(rs, es, _NEG)
        mx = np.maximum(_seg_cummax(ends, start), G["M"][gs])
        mprev = _exclusive(mx, start, G["M"][gs])
        allm = np.maximum(_seg_cummax(es, start), G["Mall"][gs])
        allprev = _exclusive(allm, start, G["Mall"][gs])
        gap = (allprev > _NEG) & (ss > allprev) & ~rst[pg]
        first = G["first"][gs]
        ovl = np.zeros(n, np.int64)
        ooo = np.zeros(n, bool)
        fill = np.zeros(n, bool)
        behind = rs & (mprev > _NEG) & (ss < mprev)
        ahead = rs & (mprev > _NEG) & (ss > mprev)
        simple = behind & (first > _NEG) & (ss >= first)
        holes = self.holes
        # directions with holes (known, or made in this batch) go row by row
        odd_g = set(holes) | set(gs[ahead].tolist()) | set(gs[behind & ~simple].tolist())
        if odd_g:
            oddrow = np.isin(gs, np.fromiter(odd_g, np.int64)) & (behind | ahead)
            simple &= ~oddrow
            new_first = G["first"].copy()
            for i in np.nonzero(oddrow)[0].tolist():
                gi = int(gs[i])
                fst = int(new_first[gi]) if new_first[gi] > _NEG else int(ss[i])
                o, q, f = _hole_row(holes, gi, int(ss[i]), int(es[i]), int(mprev[i]), fst,
                                    int(G["first_end"][gi]))
                ovl[i], ooo[i], fill[i] = o, q, f
        ovl[simple] = np.minimum(es[simple], mprev[simple]) - ss[simple]
        # carry
        fi = np.nonzero(start)[0]
        la = np.r_[fi[1:], len(gs)] - 1
        G["M"][gs[la]] = mx[la]
        G["Mall"][gs[la]] = allm[la]
        # the first recorded row of each direction (ever) sets where its sequence starts
        r0 = np.nonzero(rs & (mprev == _NEG))[0]
        for i in r0.tolist():
            gi = int(gs[i])
            if G["first"][gi] == _NEG:
                G["first"][gi] = ss[i]
                G["first_end"][gi] = es[i]
        out = [np.empty(n, np.int64), np.empty(n, bool), np.empty(n, bool),
               np.empty(n, np.int64), np.empty(n, bool)]
        for o, v in zip(out, (ovl, ooo, gap, mprev, fill), strict=True):
            o[pg] = v
        return tuple(out)

    def _rtt(self, r: dict[str, np.ndarray]) -> None:
        """tcptrace's RTT samples: ACKs matched to the segment ending where they point."""
        frame, g, s, e, mprev = r["frame"], r["g"], r["s"], r["e"], r["mprev"]
        rec, fill, ack, ts_us = r["rec"], r["fill"], r["is_ack"], r["ts_us"]
        new = rec & ((e > mprev) | fill)
        pfirst = np.where(fill | (mprev == _NEG), s, np.maximum(s, mprev))
        pieces = np.concatenate([self.pending, np.stack(
            [g[new], pfirst[new], e[new], ts_us[new], frame[new]], axis=1)])
        irr = rec & (mprev > _NEG) & (s != mprev)
        xm = np.concatenate([self.xmits, np.stack(
            [g[irr], s[irr], ts_us[irr], frame[irr]], axis=1)])
        # ACKs, in the acknowledged direction's sequence space
        ai = np.nonzero(ack)[0]
        tg = g[ai] ^ 1
        po = np.lexsort((frame[ai], tg))
        ai, tg = ai[po], tg[po]
        aunw, aprev = self._acks(r["ack"][ai], tg) if len(ai) else (ai, ai)
        if len(ai) and len(pieces):
            pieces = pieces[np.lexsort((pieces[:, 2], pieces[:, 0]))]
            xm = xm[np.lexsort((xm[:, 3], xm[:, 0]))]
            hit, pc = _match(pieces, xm, tg, aunw, aprev, frame[ai])
            samp = np.nonzero(hit)[0]
            if len(samp):
                self._samples(tg[samp], ts_us[ai[samp]] - pc[samp, 3], pc[samp, 1] == 0)
        self._keep(pieces, xm)

    def _samples(self, tgt: np.ndarray, rtt: np.ndarray, of_syn: np.ndarray) -> None:
        """Add RTT samples (µs) of the directions `tgt`; `of_syn`: the sample is the SYN's."""
        G = self.g
        m = 2 * self.n
        G["rtt_samples"][:m] += np.bincount(tgt, minlength=m)
        G["rtt_sum"][:m] += np.bincount(tgt, weights=rtt.astype(np.float64),
                                        minlength=m).astype(np.int64)
        np.maximum.at(G["rtt_max"], tgt, rtt)
        cur = np.where(G["rtt_min"] > 0, G["rtt_min"], 1 << 62)
        pos = rtt > 0  # tcptrace replaces a minimum of 0 by the next sample
        np.minimum.at(cur, tgt[pos], rtt[pos])
        G["rtt_min"] = np.where(cur == 1 << 62, 0, cur)
        # the SYN's (SYN-ACK's) sample, when it was sent once
        for k in np.nonzero(of_syn)[0].tolist():
            gi = int(tgt[k])
            if G["syn"][gi] == 1 and G["synseq"][gi] == -1:
                G["rtt_3whs"][gi] = rtt[k]
                G["synseq"][gi] = 1

    def _keep(self, pieces: np.ndarray, xm: np.ndarray) -> None:
        """What stays for the next batch: the pieces no ACK has reached yet (the newest
        MAX_PENDING of a direction), and the transmissions after the oldest of them."""
        G = self.g
        if len(pieces):
            pieces = pieces[pieces[:, 1] >= G["maxack"][pieces[:, 0]]]
        if len(pieces):
            pieces = pieces[np.lexsort((pieces[:, 4], pieces[:, 0]))]
            gs = pieces[:, 0]
            rank = np.arange(len(gs)) - np.maximum.accumulate(
                np.where(_starts(gs), np.arange(len(gs)), 0))
            pieces = pieces[np.bincount(gs)[gs] - rank <= MAX_PENDING]
            if len(pieces) > MAX_PENDING_ALL:
                newest = np.argsort(pieces[:, 4], kind="stable")[-MAX_PENDING_ALL:]
                pieces = pieces[np.sort(newest)]
        self.pending = pieces
        if len(xm) and len(pieces):
            oldest = np.full(2 * self.n, np.iinfo(np.int64).max, np.int64)
            np.minimum.at(oldest, pieces[:, 0], pieces[:, 4])
            xm = xm[xm[:, 3] > oldest[xm[:, 0]]]
        else:
            xm = xm[:0]
        self.xmits = xm

    def _acks(self, araw: np.ndarray, tg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ACK numbers (sorted by the direction they acknowledge, then file order)
        unwrapped in that direction's sequence space, and the highest one before each."""
        G = self.g
        astart = _starts(tg)
        prev = np.empty_like(araw)
        prev[1:] = araw[:-1]
        fst = np.nonzero(astart)[0]
        fg = tg[fst]
        has = G["ack_has"][fg] == 1
        hb = G["has_base"][fg] == 1
        prev[fst] = np.where(has, G["ack_raw"][fg], araw[fst])
        base0 = np.where(has, G["ack_unw"][fg], np.where(
            hb, ((araw[fst] - G["base_raw"][fg] + _HALF) & (_W - 1)) - _HALF, 0))
        nob = ~has & ~hb
        if nob.any():  # ACKs of a direction never seen: its numbers start here
            G["base_raw"][fg[nob]] = araw[fst[nob]]
            G["last_raw"][fg[nob]] = araw[fst[nob]]
            G["last_unw"][fg[nob]] = 0
            G["has_base"][fg[nob]] = 1
        dd = ((araw - prev + _HALF) & (_W - 1)) - _HALF
        cs = np.cumsum(dd)
        counts = np.diff(np.r_[fst, len(araw)])
        aunw = cs - np.repeat(cs[fst] - dd[fst], counts) + np.repeat(base0, counts)
        amax = np.maximum(_seg_cummax(aunw, astart), G["maxack"][tg])
        aprev = _exclusive(amax, astart, G["maxack"][tg])
        la = np.r_[fst[1:], len(araw)] - 1
        G["ack_raw"][fg] = araw[la]
        G["ack_unw"][fg] = aunw[la]
        G["ack_has"][fg] = 1
        G["maxack"][fg] = amax[la]
        return aunw, aprev

    def _history(self, r: dict[str, np.ndarray]) -> None:
        """Zeek's history letters: each the first time a direction shows it (c g t w also
        at the 10th, 100th ... time)."""
        cid, d, g, pg, start = r["cid"], r["d"], r["g"], r["pg"], r["start"]
        syn, fin, rst, ack = r["syn"], r["fin"], r["rst"], r["is_ack"]
        data = r["plen"] > 0
        sfr = syn | fin | rst
        masks = {"s": syn & ~ack, "h": syn & ack, "q": syn & (fin | rst), "f": fin, "r": rst,
                 "a": ack & ~data & ~sfr, "d": data, "c": r["bad"] > 0, "g": r["gap"],
                 "t": data & (r["ovl"] > 0), "w": (r["win"] == 0) & ~sfr}
        gs = g[pg]
        out = []
        for slot, ch in enumerate(_LETTERS):
            m = masks[ch][pg]
            if not m.any():
                continue
            bit = 1 << slot
            if ch in _LOG:
                cnt = _seg_cumsum(m.astype(np.int64), start)
                before = np.array([self.counts.get((int(x), slot), 0) for x in gs[start]])
                total = cnt + np.repeat(before, np.diff(np.r_[np.nonzero(start)[0], len(gs)]))
                lg = np.log10(np.maximum(total, 1))
                hit = m & (np.abs(lg - np.round(lg)) < 1e-9)
                la = np.r_[np.nonzero(start)[0][1:], len(gs)] - 1
                for x, t in zip(gs[la].tolist(), total[la].tolist(), strict=True):
                    self.counts[(x, slot)] = t
                idx = np.nonzero(hit)[0]
            else:  # the first row of each direction showing it, unless seen before
                rows = np.nonzero(m)[0]
                idx = rows[_starts(gs[rows])]
                idx = idx[(self.g["letters"][gs[idx]] & bit) == 0]
                self.g["letters"][gs[idx]] |= bit
            if len(idx):
                code = ord(ch) - np.where(d[pg][idx] == 0, 32, 0)
                out.append(np.stack([cid[pg][idx], r["frame"][pg][idx],
                                     np.full(len(idx), slot), code], axis=1))
        if out:
            self.events.append(np.concatenate(out))

    # ---- results ------------------------------------------------------------------------

    def columns(self) -> dict[str, np.ndarray]:
        """One row per connection, by stream number: the module docstring's columns."""
        from rawlab.analysis.tcp.zeek import state_of

        n = self.n
        c = self.conn
        G = self.g
        out: dict[str, Any] = {"stream": np.arange(n, dtype=np.int64),
                               "family": np.array(c["family"], np.int64)}
        for k in ("client", "server"):
            out[k] = np.array(c[k], object)
            out[f"{k}_port"] = np.array(c[f"{k}_port"], np.int64)
        out["first_frame"] = np.array(c["first_frame"], np.int64)
        out["last_frame"] = self.last_frame[:n].copy()
        out["first_ts_ns"] = np.array(c["first_ts_ns"], np.int64)
        out["last_ts_ns"] = self.last_ts[:n].copy()
        out["duration_ns"] = out["last_ts_ns"] - out["first_ts_ns"]
        out["irtt_ns"] = self.irtt[:n].copy()
        hist = self._histories()
        out["history"] = np.array(hist, object)
        states = []
        for k in range(n):
            o, q = 2 * k, 2 * k + 1
            states.append(state_of(bool(G["syn_pure"][o]), bool(G["synack"][q]),
                                   bool(G["rst"][o]), bool(G["rst"][q]), bool(G["fin"][o]),
                                   bool(G["fin"][q])))
        out["state"] = np.array(states, object)
        rename = {"max_sack_blocks": "max_sack", "rtt_min_us": "rtt_min",
                  "rtt_max_us": "rtt_max", "rtt_3whs_us": "rtt_3whs", "flags_seen": "flags"}
        for side, k in (("c2s", 0), ("s2c", 1)):
            for f in DIR_FIELDS:
                if f == "rtt_avg_us":
                    ns = G["rtt_samples"][k:2 * n:2]
                    v = np.where(ns > 0, G["rtt_sum"][k:2 * n:2] // np.maximum(ns, 1), 0)
                else:
                    v = G[rename.get(f, f)][k:2 * n:2].copy()
                out[f"{side}_{f}"] = v
        return out

    def _histories(self) -> list[str]:
        hist = ["^" if f else "" for f in self.conn["flipped"]]
        if not self.events:
            return hist
        ev = np.concatenate(self.events)
        ev = ev[np.lexsort((ev[:, 2], ev[:, 1], ev[:, 0]))]
        parts: dict[int, list[str]] = {}
        for cid, _f, _s, code in ev.tolist():
            parts.setdefault(cid, []).append(chr(code))
        for cid, ls in parts.items():
            hist[cid] += "".join(ls)
        return hist

    def connections(self) -> list[Connection]:
        """The connections as :class:`~rawlab.analysis.tcp.events.Connection` (for
        :func:`rawlab.present.tcp.render_table`): ``stats`` hold packets, payload bytes,
        tcptrace's retransmitted packets and RTT; ``analysis_counts`` tcptrace's
        out-of-order packets, zero-window probes, ACKs advertising a zero window, SACK
        and D-SACK packets (both directions added), named as in the module docstring."""
        from rawlab.analysis.tcp.events import Connection, DirStats

        t = self.columns()
        out = []
        for k in range(self.n):
            stats = []
            for side in ("c2s", "s2c"):
                ns = int(t[f"{side}_rtt_samples"][k])
                stats.append(DirStats(
                    segments=int(t[f"{side}_packets"][k]), bytes=int(t[f"{side}_data_bytes"][k]),
                    retransmissions=int(t[f"{side}_rexmit_pkts"][k]),
                    rtt_min_ns=int(t[f"{side}_rtt_min_us"][k]) * 1000 if ns else None,
                    rtt_max_ns=int(t[f"{side}_rtt_max_us"][k]) * 1000 if ns else None,
                    rtt_sum_ns=int(self.g["rtt_sum"][2 * k + (side == "s2c")]) * 1000,
                    rtt_samples=ns, flags_seen=int(t[f"{side}_flags_seen"][k])))
            counts = {}
            for name, f in (("out_of_order", "ooo_pkts"), ("zero_window_probe", "zwnd_probes"),
                            ("zero_window", "win_zero"), ("sack", "sack_pkts"),
                            ("dsack", "dsack_pkts")):
                v = int(t[f"c2s_{f}"][k] + t[f"s2c_{f}"][k])
                if v:
                    counts[name] = v
            irtt = int(t["irtt_ns"][k])
            out.append(Connection(
                k, (t["client"][k], int(t["client_port"][k])),
                (t["server"][k], int(t["server_port"][k])), int(t["family"][k]),
                int(t["first_ts_ns"][k]), int(t["last_ts_ns"][k]), int(t["first_frame"][k]),
                int(t["last_frame"][k]), str(t["state"][k]), str(t["history"][k]),
                irtt or None, 0, (stats[0], stats[1]), analysis_counts=counts, closed="end"))
        return out


def _match(pieces: np.ndarray, xm: np.ndarray, tg: np.ndarray, aunw: np.ndarray,
           aprev: np.ndarray, af: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which ACKs give an RTT sample, and the piece each points at. `pieces` (direction,
    first, end, t_us, frame) sorted by direction and end; `xm` transmissions out of order
    (direction, start, t_us, frame) sorted by direction and frame; the ACKs' direction
    acknowledged, number, the highest number before, frame. A sample: a piece ends where
    the ACK points, was sent before it, no earlier ACK reached its start, and nothing
    below its end was sent (again) between the two (tcptrace's ``ack_in``)."""
    sh = np.int64(1) << 41
    pk = pieces[:, 0] * (sh << 1) + pieces[:, 2] + sh
    want = tg * (sh << 1) + aunw + sh
    j = np.minimum(np.searchsorted(pk, want), len(pk) - 1)
    hit = pk[j] == want
    pc = pieces[j]
    hit &= (pc[:, 4] < af) & (aprev <= pc[:, 1])
    if len(xm) and hit.any():
        xk = xm[:, 0] * (sh << 1) + xm[:, 3]
        xt = xm[:, 0] * (sh << 1) + xm[:, 2]
        lo = np.maximum(np.searchsorted(xk, pc[:, 0] * (sh << 1) + pc[:, 4], "right"),
                        np.searchsorted(xt, pc[:, 0] * (sh << 1) + pc[:, 3], "right"))
        hi = np.searchsorted(xk, tg * (sh << 1) + af, "left")
        ii = np.nonzero(hit & (lo < hi))[0]
        if len(ii):
            idx = np.empty(2 * len(ii), np.int64)
            idx[0::2] = lo[ii]
            idx[1::2] = np.minimum(hi[ii], len(xm) - 1)
            mins = np.minimum.reduceat(xm[:, 1], idx)[0::2]
            # reduceat of [lo, len-1) misses the last row when hi == len: add it
            tail = hi[ii] == len(xm)
            mins[tail] = np.minimum(mins[tail], xm[-1, 1])
            hit[ii[mins < pc[ii, 2]]] = False
    return hit, pc


def _options(batch: C.Batch, take: np.ndarray) -> dict[str, np.ndarray]:
    """Window scale and SACK blocks (count, first two) of the rows `take`, from their
    option layouts."""
    n = len(take)
    out = {k: np.zeros(n, np.int64) for k in ("sackn", "s0l", "s0r", "s1l", "s1r")}
    out["ws"] = np.full(n, -1, np.int64)
    lay = batch.cols["tcp_opt_layout"][take].astype(np.int64)
    if not n or (lay < 0).all():
        return out
    c = batch.cols
    buf = np.frombuffer(batch.buf, np.uint8)
    for li in np.unique(lay[lay >= 0]).tolist():
        items = [it for it in batch.layouts[li] if it[0] in (3, 5)]
        if not items:
            continue
        sel = np.nonzero(lay == li)[0]
        rows = take[sel]
        base = c["data_offset"][rows].astype(np.int64) + c["l4_offset"][rows] + 20
        for kind, pos, total in items:
            p = base + pos
            if kind == 3:
                out["ws"][sel] = buf[p + 2]
            else:
                out["sackn"][sel] = (total - 2) // 8
                for b in range(min((total - 2) // 8, 2)):
                    for half, name in ((0, f"s{b}l"), (4, f"s{b}r")):
                        q = p + 2 + 8 * b + half
                        out[name][sel] = (buf[q].astype(np.int64) << 24 | buf[q + 1].astype(
                            np.int64) << 16 | buf[q + 2].astype(np.int64) << 8 | buf[q + 3])
    return out


def _dsack(r: dict[str, np.ndarray]) -> np.ndarray:
    """tcptrace's D-SACK cases (raw 32-bit comparisons, as it makes them): the first block
    at or below the ACK, inside the second, or overlapping it."""
    a = r["ack"]
    l0, r0, l1, r1 = r["s0l"], r["s0r"], r["s1l"], r["s1r"]
    two = r["sackn"] > 1
    case1 = r0 <= a
    case2 = two & (r0 <= r1) & (l0 >= l1)
    case3 = two & (((l0 <= l1) & (r0 > l1)) | ((r0 >= r1) & (l0 < r1)))
    return case1 | case2 | case3


def _hole_row(holes: dict[int, list[list[int]]], g: int, s: int, e: int, mprev: int,
              first: int, first_end: int) -> tuple[int, bool, bool]:
    """One segment [s, e) of direction g that is not in order, against the holes below the
    highest end seen (`mprev`): (bytes seen before, out of order, filled a hole). Holes
    are [a, b, end of the segment after b]; below the first sequence number is a hole."""
    hs = holes.setdefault(g, [])
    if s > mprev:  # a gap: a hole from the highest end to here
        hs.append([mprev, s, e])
        if len(hs) > MAX_HOLES:  # the lowest counts as seen from now on
            del hs[0]
        return 0, False, False
    if s < first:  # before the first segment seen
        hs.insert(0, [s, first, first_end])
        first_hole = hs[0]
        first_hole[0] = min(first_hole[0], s)
    top = min(e, mprev)
    seen = top - s
    ooo = False
    filled = False
    rest: list[list[int]] = []
    for a, b, nxt in hs:
        if b <= s or a >= top:
            rest.append([a, b, nxt])
            continue
        lo, hi = max(a, s), min(b, top)
        seen -= hi - lo
        filled = True
        if e < nxt:
            ooo = True
        if a < lo:
            rest.append([a, lo, min(e, b)])
        if hi < b:
            rest.append([hi, b, nxt])
    if rest:
        holes[g] = rest
    else:
        holes.pop(g, None)
    return seen, ooo, filled


def summarise(batches: Any, count: int | None = None) -> dict[str, np.ndarray]:
    """:meth:`ConnSummary.columns` of a stream of batches (the first `count` rows)."""
    s = ConnSummary()
    seen = 0
    for b in batches:
        n = len(b) if count is None else min(len(b), count - seen)
        s.add(b, n)
        seen += n
        if count is not None and seen >= count:
            break
    return s.columns()


def to_arrow(cols: dict[str, np.ndarray]) -> pa.Table:
    """The summary as a :class:`pyarrow.Table` (addresses as binary)."""
    import pyarrow as pa

    return pa.table({k: pa.array(v.tolist() if v.dtype == object else v)
                     for k, v in cols.items()})
