"""Outputs of the columnar fast path: the one-line view from Arrow batches.

    sink = BatchLineSink(out, style)     # as present.packet.LineSink, fed whole batches
    pipeline.run_batches(source, [sink])

Every row the columns hold (``status == FAST``, :mod:`rawlab.decode.columns`, and
``CHECKSUM``: all held but a checksum that is not good, as an offloading sender's
capture has on every outgoing segment) is written by a compiled loop
(:func:`rawlab._kernels.tcpdump_lines`) straight from the columns: tcpdump's words for
ARP, UDP, ICMP/ICMPv6 echo and TCP (flags, relative seq/ack, window, urgent pointer, the
options of the row's layout, length, the notes of bad checksums), after the time column
(its text made here, once a second). Every other row goes through the per-packet path
(decode, then :meth:`LineSink.text <rawlab.present.packet.LineSink.text>`), in file
order, so the
state both paths share (tcpdump's relative sequence numbers, :class:`TcpdumpSeq`, and a
stateful clock such as ``-ttt``) sees the rows in the order tcpdump would.
``tests/unit/test_columns.py`` holds the output byte for byte equal to ``LineSink``'s.

Which styles use it: the default view, ``-t``..``-ttttt`` and ``-S``. ``-e``, ``-x``/``-X``/
``-A``/``--payload``, ``-q`` and colours print through the per-packet path
(:func:`batch_sink_for` answers None). :class:`BatchJsonSink` does the same for NDJSON.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from rawlab import _kernels
from rawlab.decode import columns as C
from rawlab.present.fmt import ip_text, mac_text, write_all
from rawlab.present.tcpdump import (
    DEFAULT_STYLE,
    LineStyle,
    TcpdumpSeq,
    tcpdump_flags,
    timestamp,
)
from rawlab.records import CsumHint, Record

if TYPE_CHECKING:  # the per-packet path is imported at the first row that needs it
    from rawlab.decode.dispatch import Packet
    from rawlab.present.packet import LineSink

_ACK = 0x10
_SLL2 = 276


Piece = tuple[bytes, list[np.ndarray], np.ndarray]


def piece(template: bytes, cols: Sequence[Any], rows: np.ndarray) -> Piece:
    """`rows` printed as ``template % row`` of `cols` (as long as `rows`), for
    :func:`rawlab._kernels.lines`, which writes a batch's text in row order without a
    bytes object a row (~10× Python's ``%`` and join): an integer column is handed over
    as int64, a float one as float64 (``%r``), bytes as an object array."""
    return template, [_kernel_column(a) for a in cols], rows.astype(np.int64, copy=False)


def _kernel_column(a: Any) -> np.ndarray:
    a = np.asarray(a)
    kind = a.dtype.kind
    if kind in "iub":
        return a.astype(np.int64, copy=False)
    if kind == "f":
        return a.astype(np.float64, copy=False)
    if kind == "O" and len(a) and not isinstance(a[0], bytes):
        return a.astype(np.float64 if isinstance(a[0], float) else np.int64)
    return a.astype(object, copy=False)


# TcpdumpSeq's key of a connection by its numbers in the columns (bounded, as ip_text's)
_SEQ_KEYS: dict[tuple[int, ...], tuple[bytes, bytes, int]] = {}


def _raw_address(version: int, hi: int, lo: int) -> bytes:
    """An address of the columns (IPv4 in ``lo``) as its bytes."""
    return struct.pack("!QQ", hi, lo) if version == 6 else struct.pack("!I", lo & 0xFFFFFFFF)


class _Texts:
    """Text of addresses, by value, remembered across batches (bounded)."""

    def __init__(self) -> None:
        self.ip: dict[tuple[int, int, int], tuple[bytes, bytes]] = {}
        self.mac: dict[int, bytes] = {}
        self.secs: dict[int, bytes] = {}

    def ips(self, ver: np.ndarray, hi: np.ndarray, lo: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
        """(text, raw bytes) object arrays of the addresses (IPv4 in ``lo``)."""
        uniq, inv = self.ip_dict(ver, hi, lo)
        texts = np.empty(len(uniq), object)
        raws = np.empty(len(uniq), object)
        for j, got in enumerate(uniq):
            texts[j], raws[j] = got
        return texts[inv], raws[inv]

    def ip_dict(self, ver: np.ndarray, hi: np.ndarray, lo: np.ndarray
                ) -> tuple[list[tuple[bytes, bytes]], np.ndarray]:
        """(text, raw bytes) of each distinct address (IPv4 in ``lo``), and each row's
        number among them."""
        one, inv = C.groups(ver, hi, lo) if (ver == 6).any() else C.groups(lo)
        uniq = np.stack([ver[one].astype(np.uint64), hi[one], lo[one]], axis=1)
        out = []
        cache = self.ip
        if len(cache) > 65536:
            cache.clear()
        for v, h, lw in uniq.tolist():
            got = cache.get((v, h, lw))
            if got is None:
                raw = _raw_address(v, h, lw)
                got = cache[(v, h, lw)] = (ip_text(raw).encode(), raw)
            out.append(got)
        return out, inv

    def macs(self, v: np.ndarray) -> np.ndarray:
        uniq, inv = self.mac_dict(v)
        out = np.empty(len(uniq), object)
        out[:] = uniq
        return out[inv]

    def mac_dict(self, v: np.ndarray) -> tuple[list[bytes], np.ndarray]:
        """The text of each distinct MAC address (48 bits of a uint64), and each row's
        number among them."""
        uniq, inv = np.unique(v, return_inverse=True)
        out = []
        cache = self.mac
        if len(cache) > 65536:
            cache.clear()
        for x in uniq.tolist():
            got = cache.get(x)
            if got is None:
                got = cache[x] = mac_text(x.to_bytes(6, "big")).encode()
            out.append(got)
        return out, inv.reshape(-1)

    def times(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """tcpdump's default time of day: ("HH:MM:SS" bytes object array, µs array)."""
        sec = ts // 1_000_000_000
        us = (ts - sec * 1_000_000_000) // 1000
        uniq, inv = np.unique(sec, return_inverse=True)
        out = np.empty(len(uniq), object)
        cache = self.secs
        if len(cache) > 65536:
            cache.clear()
        for j, s in enumerate(uniq.tolist()):
            got = cache.get(s)
            if got is None:  # timestamp()'s own text, without its microseconds
                got = cache[s] = timestamp(s * 1_000_000_000)[:-7].encode()
            out[j] = got
        return out[inv.reshape(-1)], us


def _opt_values(batch: C.Batch, rows: np.ndarray, layout: tuple[tuple[int, int, int], ...],
                sack_base: np.ndarray) -> list[np.ndarray]:
    """The option values of `rows` (all of one layout), in template order."""
    buf = np.frombuffer(batch.buf, np.uint8)
    c = batch.cols
    start = (c["data_offset"][rows] + c["l4_offset"][rows].astype(np.int64) + 20)
    out: list[np.ndarray] = []

    def u8(p: np.ndarray) -> np.ndarray:
        return buf[p].astype(np.int64)

    def u16(p: np.ndarray) -> np.ndarray:
        return u8(p) << 8 | u8(p + 1)

    def u32(p: np.ndarray) -> np.ndarray:
        return u16(p) << 16 | u16(p + 2)

    for kind, pos, total in layout:
        p = start + pos
        if kind == 2:
            out.append(u16(p + 2))
        elif kind == 3:
            out.append(u8(p + 2))
        elif kind == 8:
            out += [u32(p + 2), u32(p + 6)]
        elif kind == 5:
            for b in range((total - 2) // 8):
                out += [(u32(p + 2 + 8 * b) - sack_base) & 0xFFFFFFFF,
                        (u32(p + 6 + 8 * b) - sack_base) & 0xFFFFFFFF]
    return out


def relative_numbers(seqs: TcpdumpSeq, c: dict[str, np.ndarray], rows: np.ndarray,
                     seq: np.ndarray, ack: np.ndarray, sbase: np.ndarray) -> bool:
    """:meth:`TcpdumpSeq.numbers` for `rows` (TCP with ACK, in file order, no other row
    between them touching `seqs`), on whole columns: fills seq, ack and the SACK base of
    those rows and leaves `seqs` as the calls one by one would. False (nothing done)
    when its table could reach its bound in between (the caller then goes row by row).

    The rule: per connection key (the address and port pair in tcpdump's order), a row
    with SYN, or the first row of a key the table does not hold, sets the base and prints
    absolute numbers; every other row is relative to the latest base. The keys are
    numbered here (one table look-up a key); the rows are walked in order by a compiled
    loop (:func:`rawlab._kernels.relative`).
    """
    n = len(rows)
    if not n:
        return True
    ver = c["ip_version"][rows]
    sh, sl, dh, dl = (c[k][rows] for k in ("src_hi", "src_lo", "dst_hi", "dst_lo"))
    sp = c["sport"][rows].astype(np.int64)
    dp = c["dport"][rows].astype(np.int64)
    rev = (sp > dp) | ((sp == dp) & ((sh > dh) | ((sh == dh) & (sl > dl))))
    ah, al = np.where(rev, dh, sh), np.where(rev, dl, sl)
    bh, bl = np.where(rev, sh, dh), np.where(rev, sl, dl)
    ports = np.where(rev, dp << 16 | sp, sp << 16 | dp)
    first, key = C.groups(ver, ah, al, bh, bl, ports)  # (each key's first row)
    # each key's entry in the shared table (the loop is per key, not per row)
    cache = _SEQ_KEYS
    if len(cache) > 65536:
        cache.clear()
    keys = []
    for k in zip(*(x[first].tolist() for x in (ver, ah, al, bh, bl, ports)), strict=True):
        got_key = cache.get(k)
        if got_key is None:
            v, a_h, a_l, b_h, b_l, p = k
            got_key = cache[k] = (_raw_address(v, a_h, a_l), _raw_address(v, b_h, b_l), p)
        keys.append(got_key)
    bases = seqs._bases
    got = list(map(bases.get, keys))
    state = np.array([g is not None for g in got], np.uint8)
    init = np.array([(0, 0) if g is None else g for g in got], np.int64).reshape(-1, 2)
    base_a, base_b = init[:, 0].copy(), init[:, 1].copy()
    syn = ((c["tcp_flags"][rows] & 2) != 0).astype(np.uint8)
    if len(bases) + int((state == 0).sum()) >= 1 << 16 and (syn.any() or not state.all()):
        return False
    out_s, out_a, out_b = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    _kernels.relative(key.astype(np.int64), rev.astype(np.uint8), syn, seq[rows], ack[rows],
                      base_a, base_b, state, out_s, out_a, out_b)
    seq[rows], ack[rows], sbase[rows] = out_s, out_a, out_b
    # the table: each key's latest base
    for j in np.nonzero(state == 2)[0].tolist():
        bases[keys[j]] = (int(base_a[j]), int(base_b[j]))
    return True


class BatchLineSink:
    """One tcpdump-like line per packet, from batches (module docstring); the rows the
    columns do not hold are printed by a :class:`LineSink` (the per-packet path).
    ``rows``/``chunk``: the batches it is best fed (a batch's fixed cost is a few hundred
    numpy calls: 2 MiB batches print 500k packets ~10 % faster than 1 MiB ones, for
    ~12 MB more RSS; bench/README.md)."""

    rows = 16384
    chunk = 2 << 20

    def __init__(self, out: TextIO, style: LineStyle | None = None) -> None:
        self.out = out
        self.style = style or DEFAULT_STYLE
        self._style = style
        self._lines: LineSink | None = None
        #: TcpStreams.feed (rawlab.analysis.streams) for the rows of the per-packet path
        self.streams: Any = None
        # tcpdump's relative numbers, shared with the per-packet path's LineSink
        self.seqs: TcpdumpSeq | None = None if self.style.absolute else TcpdumpSeq()
        self.per_packet = PerPacket()  # fragments are odd rows, met in file order
        self.texts = _Texts()
        self._text = bytearray()
        self._enc = getattr(out, "encoding", None) or "utf-8"
        self._raw = getattr(out, "buffer", None)

    @property
    def lines(self) -> LineSink:
        """The per-packet path's LineSink (made at the first row it prints), sharing
        :attr:`seqs`."""
        if self._lines is None:
            from rawlab.present.packet import LineSink

            self._lines = LineSink(self.out, self._style)
            self._lines.seqs = self.seqs
        return self._lines

    # -- the output --
    def batch(self, batch: C.Batch, rows: int | None = None) -> None:
        """Print the first `rows` rows of `batch` (all when None)."""
        self._write(self.render(batch, rows, self._text))

    def _write(self, text: bytes | int) -> None:
        """Write `text`, or the first `text` bytes of :attr:`_text` (the bytearray the
        compiled writers fill: one for every batch, so its pages are not faulted in anew
        for each, ~0.3 µs a line of NDJSON)."""
        with memoryview(self._text) as whole, whole[:text] if isinstance(
                text, int) else memoryview(text) as view:
            if self._raw is not None:
                self.out.flush()
                write_all(self._raw, view)
            else:
                self.out.write(str(view, self._enc))

    def close(self) -> None:
        self.out.flush()

    # -- rendering --
    def render(self, batch: C.Batch, rows: int | None = None,
               into: bytearray | None = None) -> bytes | int:
        """The text of the first `rows` rows of `batch`; written at the start of `into`
        (its length returned) when given."""
        n = len(batch) if rows is None else min(rows, len(batch))
        if not n:
            return b"" if into is None else 0
        c = {k: v[:n] for k, v in batch.cols.items()}
        # a checksum that is not good is a note at the line's end (the kernel's word on
        # one, a live capture's, is the per-packet path's)
        st = c["status"]
        fast = ((st == C.FAST) | ((st == C.CHECKSUM) & (
            (c["csum_notes"] & C.CSUM_NOTE_HINT) == 0))) & (c["linktype"] != _SLL2)
        out = np.empty(n, object)
        tcp = fast & (c["l4"] == C.L4_TCP)
        t = self.texts
        seq, ack, sbase = self._numbers(batch, c, n, fast, tcp, out)
        # the time column: the time of day and microseconds, or the clock's text
        if self.style.clock is None:
            head, us = t.times(c["ts_ns"])
        else:
            head, us = getattr(self, "_heads", None), None
            if head is None or len(head) != n:  # (no fast row in this batch)
                head = np.empty(n, object)
        cols = dict(c, fast=fast.view(np.uint8), seq=seq, ack=ack, sbase=sbase)
        return _kernels.tcpdump_lines(out, cols, batch.buf, batch.layouts, _flag_texts(),
                                      head, us, into)

    def _numbers(self, batch: C.Batch, c: dict[str, np.ndarray], n: int, fast: np.ndarray,
                 tcp: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """In file order: tcpdump's relative seq/ack (TcpdumpSeq, shared with the
        per-packet path), the clock's text, and the lines of the rows the columns do not
        hold. Runs of fast rows between those take :func:`relative_numbers`; a stateful
        clock (-ttt, -ttttt) or many odd rows take the rows one by one."""
        seq = c["tcp_seq"].astype(np.int64)
        ack = c["tcp_ack"].astype(np.int64)
        sbase = np.zeros(n, np.int64)
        seqs = self.seqs
        clock = self.style.clock
        acked = tcp & ((c["tcp_flags"] & _ACK) != 0) if seqs is not None else np.zeros(n, bool)
        odd = np.nonzero(~fast)[0]
        stateful = clock is not None and getattr(clock, "form", "delta") in ("delta", "since")
        if stateful or len(odd) > 64:
            want = np.ones(n, bool) if clock is not None else (acked | ~fast)
            self._one_by_one(batch, c, np.nonzero(want)[0], fast, acked, seq, ack, sbase, out)
            return seq, ack, sbase
        if clock is not None:
            self._heads = heads = np.empty(n, object)
            for i, t in zip(np.nonzero(fast)[0].tolist(), c["ts_ns"][fast].tolist(),
                            strict=True):
                h = clock(t)
                heads[i] = (h + " ").encode() if h else b""
        prev = 0
        for i in [*odd.tolist(), n]:
            if seqs is not None and i > prev:
                rows = prev + np.nonzero(acked[prev:i])[0]
                if not relative_numbers(seqs, c, rows, seq, ack, sbase):
                    self._one_by_one(batch, c, rows, fast, acked, seq, ack, sbase, out)
            if i < n:
                out[i] = self._odd_line(batch, c, i)
            prev = i + 1
        return seq, ack, sbase

    def _odd_line(self, batch: C.Batch, c: dict[str, np.ndarray], i: int) -> bytes:
        """Row i through the per-packet path: decode (and the TCP application messages it
        completes: ``streams``), then LineSink's text."""
        rec = batch.record(i)
        frame = int(c["frame"][i])
        pkt = self.per_packet(frame, rec)
        if self.streams is not None:
            self.streams(frame, rec.ts_ns, pkt)
        iface = batch.interfaces[rec.interface] if 0 <= rec.interface < len(
            batch.interfaces) else None
        return (self.lines.text(frame, rec, pkt, iface) + "\n").encode(self._enc, "replace")

    def _one_by_one(self, batch: C.Batch, c: dict[str, np.ndarray], idx: np.ndarray,
                    fast: np.ndarray, acked: np.ndarray, seq: np.ndarray, ack: np.ndarray,
                    sbase: np.ndarray, out: np.ndarray) -> None:
        """Rows `idx` in order, each as the per-packet path takes it."""
        if not len(idx):
            return
        fl, al = fast.tolist(), acked.tolist()
        flags = c["tcp_flags"].tolist()
        sp, dp = c["sport"].tolist(), c["dport"].tolist()
        seql, ackl = c["tcp_seq"].tolist(), c["tcp_ack"].tolist()
        ts = c["ts_ns"].tolist()
        clock = self.style.clock
        if clock is not None:
            if not hasattr(self, "_heads") or len(self._heads) != len(fl):
                self._heads = np.empty(len(fl), object)
            heads = self._heads
        numbers = self.seqs.numbers if self.seqs is not None else None
        srcl = dstl = None  # the addresses' bytes (TcpdumpSeq's keys)
        if numbers is not None and acked.any():
            ver = c["ip_version"]
            srcl = self.texts.ips(ver, c["src_hi"], c["src_lo"])[1].tolist()
            dstl = self.texts.ips(ver, c["dst_hi"], c["dst_lo"])[1].tolist()
        for i in idx.tolist():
            if not fl[i]:
                out[i] = self._odd_line(batch, c, i)
                continue
            if clock is not None:
                h = clock(ts[i])
                heads[i] = (h + " ").encode() if h else b""
            if numbers is not None and al[i]:
                seq[i], ack[i], sbase[i] = numbers(srcl[i], dstl[i], sp[i], dp[i], seql[i],
                                                   ackl[i], flags[i])


@functools.cache
def _flag_texts() -> list[bytes]:
    """tcpdump's letters for each of the 512 values of the flags field."""
    return [tcpdump_flags(f).encode() for f in range(512)]


class RecordLineSink:
    """The one-line view of records as they come (a live capture, :func:`rawlab.pipeline.
    run`), rendered a ring block at a time through batches: :meth:`flush` (the ring's
    ``block_done``) turns the records taken since into a batch
    (:class:`rawlab.decode.columns.RecordBatcher`) for :class:`BatchLineSink`."""

    decodes = False

    def __init__(self, lines: BatchLineSink, interfaces: Any) -> None:
        self.lines = lines
        self.batcher = C.RecordBatcher(interfaces)
        self.records: list[Any] = []
        self.frames: list[int] = []

    def packet(self, frame: int, rec: Any, pkt: Any, iface: Any) -> None:
        self.records.append(rec)
        self.frames.append(frame)

    def flush(self) -> None:
        if self.records:
            self.lines.batch(self.batcher.batch(self.records, self.frames))
            self.records, self.frames = [], []

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.lines.close()


class PerPacket:
    """A row the columns do not hold, as pipeline.run decodes it (IP reassembly too); the
    decoder is made (and imported) at the first such row."""

    def __init__(self) -> None:
        self._made: tuple[Any, Any] | None = None

    @property
    def decoder(self) -> Any:
        if self._made is None:
            from rawlab.analysis.reassembly import IpReassembly
            from rawlab.decode.dispatch import Decoder

            decoder = Decoder()
            self._made = (decoder, IpReassembly(decoder))
        return self._made[0]

    def __call__(self, frame: int, rec: Record) -> Packet:
        pkt = self.decoder.decode(rec.data, rec.linktype, CsumHint(rec.csum_status),
                                  rec.wirelen)
        for lay in pkt.layers:
            if lay.fragmented:
                assert self._made is not None
                return self._made[1].packet(frame, rec.ts_ns, pkt)
        return pkt


def batch_sink_for(out: TextIO, style: LineStyle | None = None) -> BatchLineSink | None:
    """The batch form of the one-line view for `style`, or None when the style needs
    the per-packet path (-e, dumps, -q, colours)."""
    st = style or DEFAULT_STYLE
    if st.link or st.dump or st.quick or getattr(st, "colour", False):
        return None
    return BatchLineSink(out, style)


# ---- NDJSON from batches ----------------------------------------------------------------------

_SENT = "\x00{}\x00"  # a slot's sentinel while the template is made
JSON_SLICE = 16384  # NDJSON rows rendered at once (~8 MB held; 2048: 10 % more CPU)


def _slot_values(batch: C.Batch, c: dict[str, np.ndarray], rows: np.ndarray,
                 texts: _Texts, path: tuple[Any, ...]) -> tuple[bytes, Any] | None:
    """The format and the values of one JSON field for `rows`, or None when the columns
    do not give that field (the shape then takes the per-packet path)."""
    def col(name: str) -> np.ndarray:
        return c[name][rows]

    key = path[-1]
    top = path[0]
    if len(path) == 1:
        simple = {"frame": "frame", "caplen": "caplen", "len": "wirelen"}
        if key in simple:
            return b"%d", col(simple[key])
        if key == "ts":
            return b"%r", c["ts_ns"][rows] / 1e9
        if key == "ts_ns":
            return b"%d", c["ts_ns"][rows]
        return None
    if top == "eth":
        if key in ("dst", "src"):
            return b'"%s"', texts.macs(col(f"eth_{key}"))
        if len(path) == 2:
            return {"type": (b"%d", col("eth_type")),
                    "ethertype": (b"%d", col("ethertype"))}.get(key)
        tci = col(f"vlan{path[2] + 1}_tci").astype(np.int64)
        return {"tpid": (b"%d", col(f"vlan{path[2] + 1}_tpid")), "pcp": (b"%d", tci >> 13),
                "dei": (b"%d", (tci >> 12) & 1), "vid": (b"%d", tci & 0xFFF)}.get(key)
    if top in ("ipv4", "ipv6") and key in ("src", "dst"):
        ver = c["ip_version"][rows]
        return b'"%s"', texts.ips(ver, col(f"{key}_hi"), col(f"{key}_lo"))[0]
    if top == "ipv4":
        return {"ihl": (b"%d", col("ip4_ihl")), "tos": (b"%d", col("ip4_tos")),
                "total_length": (b"%d", col("ip4_total_length")), "id": (b"%d", col("ip4_id")),
                "flags": (b"%d", col("ip4_flags")), "ttl": (b"%d", col("ip4_ttl")),
                "checksum": (b"%d", col("ip4_checksum"))}.get(key)
    if top == "ipv6":
        return {"traffic_class": (b"%d", col("ip6_traffic_class")),
                "flow_label": (b"%d", col("ip6_flow_label")),
                "payload_length": (b"%d", col("ip6_payload_length")),
                "hop_limit": (b"%d", col("ip6_hop_limit"))}.get(key)
    if top == "arp":
        if key in ("sha", "tha"):
            return b'"%s"', texts.macs(col(f"arp_{key}"))
        if key in ("spa", "tpa"):
            n = len(rows)
            return b'"%s"', texts.ips(np.full(n, 4), np.zeros(n, np.uint64),
                                      col(f"arp_{key}").astype(np.uint64))[0]
        return None
    if top in ("tcp", "udp", "icmp", "icmpv6"):
        return _l4_values(batch, c, rows, path)
    return None


def _l4_values(batch: C.Batch, c: dict[str, np.ndarray], rows: np.ndarray,
               path: tuple[Any, ...]) -> tuple[bytes, Any] | None:
    key = path[-1]

    def col(name: str) -> np.ndarray:
        return c[name][rows]

    if path[0] == "tcp" and path[1] == "options":
        lay = batch.layouts[int(c["tcp_opt_layout"][rows[0]])]
        kind, pos, total = lay[path[2]]
        vals = _opt_values(batch, rows, ((kind, pos, total),), np.zeros(len(rows), np.int64))
        if key == "value":
            return b"%d", vals[0]
        if key in ("tsval", "tsecr"):
            return b"%d", vals[key == "tsecr"]
        if len(path) == 6:  # blocks[b][0 or 1]
            return b"%d", vals[2 * path[4] + path[5]]
        return None
    simple = {"sport": "sport", "dport": "dport", "seq": "tcp_seq", "ack": "tcp_ack",
              "dataofs": "tcp_dataofs", "reserved": "tcp_reserved", "window": "tcp_window",
              "checksum": "l4_checksum", "urgptr": "tcp_urgptr", "length": "udp_length",
              "code": "icmp_code", "rest": "icmp_rest"}
    if key in simple and len(path) == 2:
        return b"%d", col(simple[key])
    if key == "len" and path[0] in ("tcp", "udp"):  # from the IP (UDP) header's length
        return b"%d", col("payload_length")
    return None


# keys whose value a shape fixes (the rest are slots, or the shape is not held)
_LITERAL = frozenset({"interface", "direction", "layers", "version", "proto", "frag_offset",
                      "ext_headers", "next_header", "flags", "flags_int", "kind", "name",
                      "checksum_status", "truncated", "type", "htype", "ptype", "hlen", "plen",
                      "op", "tags", "options", "blocks", "type_name"})


class BatchJsonSink:
    """One NDJSON object per packet (docs/json.md, "packet") from batches: per row shape,
    the first row's object from the per-packet path (packet_json) becomes a template, its
    per-row values slots filled from the columns; rows and shapes the columns do not hold
    go through :class:`JsonSink <rawlab.present.packet.JsonSink>`."""

    def __init__(self, out: TextIO) -> None:
        from rawlab.present.packet import JsonSink

        self.out = out
        self.json = JsonSink(out)
        self.per_packet = PerPacket()
        #: TcpStreams.feed (rawlab.analysis.streams) for the rows of the per-packet path
        self.streams: Any = None
        self.texts = _Texts()
        self.shapes: dict[tuple[Any, ...], tuple[bytes, list[tuple[Any, ...]]] | None] = {}
        self._text = bytearray()
        self._enc = getattr(out, "encoding", None) or "utf-8"
        self._raw = getattr(out, "buffer", None)

    _write = BatchLineSink._write
    close = BatchLineSink.close

    def batch(self, batch: C.Batch, rows: int | None = None) -> None:
        """Print the first `rows` rows of `batch`, :data:`JSON_SLICE` rows at a time (an
        NDJSON line is ~10x a text line: a whole batch's lines at once cost ~20 MB)."""
        n = len(batch) if rows is None else min(rows, len(batch))
        for lo in range(0, n, JSON_SLICE):
            self._write(self.render(batch, n, lo, self._text))

    def render(self, batch: C.Batch, rows: int | None = None, lo: int = 0,
               into: bytearray | None = None) -> bytes | int:
        """The NDJSON of rows [lo, lo + JSON_SLICE) of the first `rows` rows."""
        n = len(batch) if rows is None else min(rows, len(batch))
        hi = min(n, lo + JSON_SLICE)
        if hi <= lo:
            return b"" if into is None else 0
        c = {k: v[:n] for k, v in batch.cols.items()}
        fast = (c["status"] == C.FAST) & (c["ip4_ihl"] <= 5) & (
            (c["linktype"] == 1) | (c["linktype"] == 101) | (c["linktype"] >= 228) & (
                c["linktype"] <= 229))
        inside = np.zeros(n, bool)
        inside[lo:hi] = True
        out = np.empty(n, object)
        pieces: list[Piece] = []
        lay = c["tcp_opt_layout"].astype(np.int64)
        key = np.stack([c["linktype"], c["vlan_count"], c["ethertype"], c["l4"],
                        c["tcp_flags"], c["l4_csum"], c["complete"], c["direction"],
                        c["interface"], c["arp_op"], c["icmp_type"], lay + 1,
                        c["ip_version"]], axis=1).astype(np.int64)
        held = np.nonzero(fast & inside)[0]
        first, inv = C.factorize(*key[held].T) if len(held) else (held, held)
        for j, f0 in enumerate(first.tolist()):
            rows = held[inv == j]
            r0 = int(held[f0])
            shape = (*key[r0].tolist()[:-2], batch.layouts[lay[r0]] if lay[r0] >= 0 else ())
            got = self.shapes.get(shape, 0)
            if got == 0:
                got = self.shapes[shape] = self._template(batch, r0)
            if got is None:
                fast[rows] = False
                continue
            tmpl, paths = got
            cols = []
            for p in paths:
                fmt_vals = _slot_values(batch, c, rows, self.texts, p)
                assert fmt_vals is not None
                cols.append(fmt_vals[1])
            pieces.append(piece(tmpl, cols, rows))
        for i in np.nonzero(~fast & inside)[0].tolist():
            out[i] = self._odd(batch, c, i)
        return _kernels.lines(out, pieces, lo, hi, into)

    def _odd(self, batch: C.Batch, c: dict[str, np.ndarray], i: int) -> bytes:
        from rawlab.present import app
        from rawlab.present.fmt import json_line
        from rawlab.present.packet import packet_json

        rec = batch.record(i)
        frame = int(c["frame"][i])
        pkt = self.per_packet(frame, rec)
        if self.streams is not None:
            self.streams(frame, rec.ts_ns, pkt)
        app.with_scapy(pkt, payloads=False)
        iface = batch.interfaces[rec.interface] if 0 <= rec.interface < len(
            batch.interfaces) else None
        name = iface.name if iface is not None and iface.name else rec.interface
        return json_line(packet_json(frame, rec, pkt, name)).encode(self._enc, "replace")

    def _template(self, batch: C.Batch, r0: int) -> tuple[bytes, list[tuple[Any, ...]]] | None:
        """Row r0's object with every per-row value a slot: (template, slot paths); None
        when a value is neither a slot the columns fill nor fixed by the shape."""
        from rawlab.present.fmt import json_line
        from rawlab.present.packet import packet_json

        c = batch.cols
        rec = batch.record(r0)
        pkt = self.per_packet.decoder.decode(rec.data, rec.linktype, 0)
        iface = batch.interfaces[rec.interface] if rec.interface < len(
            batch.interfaces) else None
        name = iface.name if iface is not None and iface.name else rec.interface
        obj = packet_json(int(c["frame"][r0]), rec, pkt, name)
        paths: list[tuple[Any, ...]] = []
        fmts: list[bytes] = []
        one = np.array([r0])

        def walk(v: Any, path: tuple[Any, ...]) -> Any:
            if isinstance(v, dict):
                return {k: walk(x, (*path, k)) for k, x in v.items()}
            if isinstance(v, list):
                return [walk(x, (*path, k)) for k, x in enumerate(v)]
            got = _slot_values(batch, c, one, self.texts, path)
            if got is not None and not isinstance(v, bool):
                paths.append(path)
                fmts.append(got[0])
                return _SENT.format(len(paths) - 1)
            keys = [p for p in path if isinstance(p, str)]
            if not keys or keys[-1] not in _LITERAL:
                raise LookupError(path)
            return v

        try:
            shaped = walk(obj, ())
        except LookupError:
            return None
        text = json_line(shaped).replace("%", "%%").encode()
        for k, f in enumerate(fmts):
            text = text.replace(b'"\\u0000%d\\u0000"' % k, f)
        return text, paths


def json_sink_for(out: TextIO) -> BatchJsonSink:
    """The batch form of ``--json``."""
    return BatchJsonSink(out)
