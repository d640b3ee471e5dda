"""The columnar fast path: capture files (and a live ring's blocks) as Apache Arrow batches.

    from rawlab.decode.columns import open_batches
    with open_batches("x.pcap") as src:            # a path or a binary file object
        for batch in src:                          # Batch: at most ROWS rows, CHUNK bytes
            batch.table                            # pyarrow.RecordBatch, one row per frame
            batch.col("tcp_seq")                   # the same column as a numpy array
            batch.fast                             # bool array: True = the columns hold it all
            batch.record(i)                        # row i as a Record (the per-packet path)

One row per frame: frame number, timestamp, lengths, interface, link type, direction,
and the fields of the common shapes, extracted column-wise with numpy: Ethernet with
802.1Q/802.1ad tags, Linux cooked v1/v2 and raw IP link headers; IPv4 (options allowed)
and IPv6 without extension headers; TCP (with the options Linux and the usual stacks
send: MSS, window scale, SACK-permitted, SACK, timestamps, NOP, EOL), UDP, ICMP and
ICMPv6 echo, Ethernet/IPv4 ARP; the IPv4 header and TCP/UDP/ICMP checksum verdicts.

``status`` says, per row, whether the row *left the fast path* (:data:`FAST` = 0, else
the first reason met, :data:`REASONS`): a link type or EtherType or IP protocol
outside those shapes, a header cut by the snaplen, anything malformed, fragments,
IPv6 extension headers, TCP options of other kinds or odd lengths, an ICMP message
other than an echo (errors quote a packet: tunnels of a sort), a port the dispatch
table gives an application decoder
(:class:`~rawlab.decode.descent.DispatchTable` ``udp_port``/``tcp_port``, when it has
them), a pcapng block with options other than ``epb_flags``; last, a checksum that is
not good (:data:`CHECKSUM`: every field is held, so the one-line view still prints such
a row from the columns, with its notes: ``csum_notes``). The rule is that the fast
path handles exactly the shapes it knows, and only when the table it is given holds
the default views for them; anything else takes the per-packet decoder
(:mod:`rawlab.decode.dispatch`), so a protocol added to the table works without
touching this module. Outputs built on batches (``rawlab.present.columns``) must
print byte for byte what the per-packet path prints: ``tests/unit/test_columns.py``
holds them together on every capture in ``captures/``, tcpdump's corpus and
hypothesis-made files.

Memory is bounded by a batch (:data:`ROWS` rows, about :data:`CHUNK` bytes of file),
whatever the file's size. Walking the record chain of a file is sequential: it is a
Python loop over record headers (one ``struct`` call a record); everything after it is
numpy over whole columns.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from rawlab import _kernels
from rawlab.decode.ethernet import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, MAX_TAGS, VLAN_TPIDS
from rawlab.records import ARPHRD_NETLINK, CsumHint, LinkType, Record

if TYPE_CHECKING:
    import pyarrow as pa

    from rawlab.decode.descent import DispatchTable
    from rawlab.pcap.reader import CaptureReader

ROWS = 8192  # rows a batch holds at most
CHUNK = 1 << 20  # bytes of file read at once (a batch holds at most about this much)

# ---- why a row left the fast path (the first reason met) -------------------------------------
FAST = 0
LINKTYPE = 1  # a link type the columns do not hold (netlink, vsock, unknown)
LINK = 2  # the link header: cut short, malformed, too many tags, netlink in SLL
NETWORK = 3  # an EtherType other than IPv4, IPv6, ARP
IP = 4  # IPv4/IPv6 odd: version, lengths, fragments, extension headers, TSO
TRUNCATED = 5  # the capture cut a header (or the datagram) short
TRANSPORT = 6  # an IP protocol other than TCP, UDP, ICMP, ICMPv6
OPTIONS = 7  # TCP options of other kinds or lengths, or a broken option list
CHECKSUM = 8  # all held but a checksum that is not good (bad, partial), or the kernel's word
APPLICATION = 9  # a port the dispatch table gives an application decoder
ICMP_TYPE = 10  # ICMP other than echo request/reply
ARP_SHAPE = 11  # ARP other than Ethernet/IPv4
RECORD = 12  # a pcapng block with more than the columns hold (options, SPB, PB ...)
REASONS = ("fast", "linktype", "link", "network", "ip", "truncated", "transport", "options",
           "checksum", "application", "icmp-type", "arp", "record")

# ---- what the ``l4`` column holds ------------------------------------------------------------
L4_NONE, L4_TCP, L4_UDP, L4_ICMP, L4_ICMP6 = 0, 6, 17, 1, 58

# TCP option kinds the columns hold, with their exact total lengths (SACK: 10, 18, 26, 34)
OPT_LEN = {2: 4, 3: 3, 4: 2, 8: 10}
OPTS_PAD = 0xFF  # the layout code of "no option here"
MAX_OPTS = 40

_ETH, _SLL, _SLL2 = 1, int(LinkType.LINUX_SLL), int(LinkType.LINUX_SLL2)
_RAW, _IPV4, _IPV6 = int(LinkType.RAW), int(LinkType.IPV4), int(LinkType.IPV6)
_PAD = 256  # zero bytes after a chunk: gathers past a row's end read zeros, never fail


class Batch:
    """One batch of frames: the Arrow record batch, and the bytes its rows point into.

    ``table``: the :class:`pyarrow.RecordBatch` (:data:`SCHEMA`'s columns). ``cols``:
    the same columns as numpy arrays (zero-copy). ``buf``: the file bytes the rows'
    ``data_offset`` point into. ``records``: rows that came from the file as Records
    (pcapng blocks with more than the columns hold), by row. ``layouts``: the TCP
    option layouts ``tcp_opt_layout`` numbers, each a tuple of (kind, offset from the
    start of the options, total length).
    """

    __slots__ = ("_table", "buf", "cols", "interfaces", "layouts", "originals", "records")

    def __init__(self, cols: dict[str, np.ndarray], buf: bytes,
                 records: dict[int, Record], layouts: list[tuple[tuple[int, int, int], ...]],
                 interfaces: list[Any]) -> None:
        self.cols = cols
        self.buf = buf
        self.records = records
        self.layouts = layouts
        self.interfaces = interfaces
        self.originals: list[Record] | None = None  # rows made from Records (RecordBatcher)
        self._table: pa.RecordBatch | None = None

    def __len__(self) -> int:
        return len(self.cols["frame"])

    def col(self, name: str) -> np.ndarray:
        return self.cols[name]

    @property
    def fast(self) -> np.ndarray:
        return self.cols["status"] == FAST

    @property
    def table(self) -> pa.RecordBatch:
        """The columns as an Arrow record batch (built on first use; numbers zero-copy)."""
        if self._table is None:
            import pyarrow as pa

            self._table = pa.RecordBatch.from_arrays(
                [pa.array(v) for v in self.cols.values()], names=list(self.cols))
        return self._table

    def data(self, i: int) -> bytes:
        if self.originals is not None:
            return self.originals[i].data
        rec = self.records.get(i)
        if rec is not None:
            return rec.data
        o = int(self.cols["data_offset"][i])
        return self.buf[o: o + int(self.cols["caplen"][i])]

    def record(self, i: int) -> Record:
        """Row ``i`` as the per-packet path's Record (the file's own for record rows)."""
        if self.originals is not None:
            return self.originals[i]
        rec = self.records.get(i)
        if rec is not None:
            return rec
        c = self.cols
        return Record(int(c["ts_ns"][i]), int(c["wirelen"][i]), int(c["linktype"][i]),
                      self.data(i), int(c["interface"][i]), int(c["direction"][i]))


# ---- reading files into batches ----------------------------------------------------------------

def _pcap_chain(chunk: bytes, rows: int, big: bool,
                limit: int) -> tuple[np.ndarray, int, int | None]:
    """The records a pcap `chunk` holds whole from its start, `rows` at most: (their
    offsets, where the next one starts, and that one's length when it is over `limit`:
    the file is broken there). The walk is sequential: a compiled loop
    (:func:`rawlab._kernels.pcap_chain`, ~10 ns a record against ~400 in Python)."""
    at = np.empty(rows, np.int64)
    n, pos, over = _kernels.pcap_chain(chunk, rows, big, limit, at)
    return at[:n], pos, over


class BatchSource:
    """A capture file read as batches (:func:`open_batches`); ``interfaces`` as the
    reader's (pcapng: renewed per section)."""

    def __init__(self, cap: CaptureReader, *, rows: int = ROWS, chunk: int = CHUNK,
                 table: DispatchTable | None = None) -> None:
        self.cap = cap
        self.rows = rows
        self.chunk = chunk
        self.claimed = _claimed_ports(table)
        self.frames = 0  # records read so far

    @property
    def interfaces(self) -> list[Any]:
        return self.cap.interfaces

    def __iter__(self) -> Iterator[Batch]:
        if self.cap.format == "pcap":
            return self._pcap()
        return self._pcapng()

    def close(self) -> None:
        self.cap.close()

    def __enter__(self) -> BatchSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pcap: the record chain is walked in Python, the rest is numpy --
    def _pcap(self) -> Iterator[Batch]:
        from rawlab.pcap.reader import MAX_RECORD, MAX_SNAPLEN, _bad, _more

        cap: Any = self.cap
        f, name = cap._f, cap.name
        e = cap.endian
        u32 = struct.Struct(e + "I").unpack_from
        mul = 1 if cap.nanosecond else 1000
        limit = min(max(cap.snaplen, MAX_SNAPLEN), MAX_RECORD)
        rows = self.rows
        carry = b""
        base = 24  # file offset of chunk[0]
        while True:
            # (a batch full before its chunk ends leaves a carry: read only what is missing)
            chunk = carry if len(carry) >= self.chunk else _more(f, carry, self.chunk)
            n = len(chunk)
            if not n:
                return
            at, pos, absurd = _pcap_chain(chunk, rows, e == ">", limit)
            problem = None if absurd is None else _bad(
                name, base + pos, f"absurd record length {absurd} (snaplen {cap.snaplen})")
            if len(at):
                yield self._pcap_batch(chunk, at, e, mul)
            if problem is not None:
                raise problem
            if not len(at):  # one record longer than the chunk, or the end of the file
                got = _more(f, chunk, n + 1)
                if len(got) == n:
                    base += pos
                    if n - pos < 16:
                        raise _bad(name, base, f"truncated record header ({n - pos} of 16 bytes)")
                    incl = u32(chunk, pos + 8)[0]
                    raise _bad(name, base, f"truncated record: {incl} bytes captured, "
                               f"{n - pos - 16} left in the file")
                carry = got[pos:]
                base += pos
                continue
            carry = chunk[pos:]
            base += pos

    def _pcap_batch(self, chunk: bytes, at: np.ndarray, e: str, mul: int) -> Batch:
        buf = np.frombuffer(chunk + bytes(_PAD), np.uint8)
        hdr = buf[at[:, None] + np.arange(16)].view(e + "u4")  # (n, 4): sec, frac, incl, orig
        cols = _frame_cols(self, len(at))
        cols["ts_ns"] = hdr[:, 0].astype(np.int64) * 1_000_000_000 + hdr[:, 1].astype(
            np.int64) * mul
        cols["caplen"] = hdr[:, 2].astype(np.uint32)
        cols["wirelen"] = hdr[:, 3].astype(np.uint32)
        cols["interface"] = np.zeros(len(at), np.uint32)
        cols["linktype"] = np.full(len(at), self.cap.interfaces[0].linktype, np.uint32)
        cols["direction"] = np.zeros(len(at), np.uint8)
        cols["data_offset"] = at + 16
        return _finish(cols, chunk, buf, {}, self.claimed, list(self.cap.interfaces))

    # -- pcapng: plain EPBs (no options but epb_flags) as columns, other blocks as Records --
    def _pcapng(self) -> Iterator[Batch]:
        from rawlab.pcap.reader import _more

        cap: Any = self.cap
        f = cap._f
        carry = cap._head
        offset = 0  # file offset of chunk[0]
        while True:
            # (a batch full before its chunk ends leaves a carry: read only what is missing)
            chunk = carry if len(carry) >= self.chunk else _more(f, carry, self.chunk)
            n = len(chunk)
            if not n:
                return
            plain, recs, pos, problem = self._blocks(chunk, offset)
            if len(plain):
                yield self._pcapng_batch(chunk, plain, recs)
            if problem is not None:
                raise problem
            if not len(plain) and pos == 0:
                got_more = _more(f, chunk, n + 1)
                if len(got_more) == n:  # the end of the file inside a block
                    self._pcapng_tail(chunk, offset)
                    return
                carry = got_more
                continue
            carry = chunk[pos:]
            offset += pos

    def _blocks(self, chunk: bytes, offset: int) -> tuple[
            np.ndarray, dict[int, Record], int, Exception | None]:
        """The blocks that `chunk` holds whole, up to a batch: (the rows: data offset,
        interface, timestamp high and low, caplen, wirelen, direction; the rows that are
        Records; where the next block starts; the problem that stopped the walk). Runs of
        plain EPBs take a compiled walk (:func:`rawlab._kernels.pcapng_epbs`); every other
        block, and each one that walk stops at, is taken here."""
        from rawlab.pcap.reader import (
            MAX_BLOCK,
            PCAPNG_BOM,
            PCAPNG_IDB,
            PCAPNG_SHB,
            _bad,
        )

        cap: Any = self.cap
        name, n, pos = cap.name, len(chunk), 0
        rows = np.empty((self.rows, 7), np.int64)
        k = 0
        recs: dict[int, Record] = {}
        head, u32 = _ng_structs(cap._e)
        nif = len(cap.interfaces)
        while pos + 12 <= n and k < self.rows:
            if cap._section < 1 and offset + pos:  # (a later section's packets are records)
                got, pos = _kernels.pcapng_epbs(chunk, pos, cap._e == ">", nif, MAX_BLOCK,
                                                rows[k:])
                k += got
                if pos + 12 > n or k == self.rows:
                    break
            btype, blen = head(chunk, pos)
            if btype == PCAPNG_SHB:
                if k:
                    break  # a new section: its interfaces start a new batch
                bom = struct.unpack_from("<I", chunk, pos + 8)[0]
                if bom not in (PCAPNG_BOM, 0x4D3C2B1A):
                    return rows[:k], recs, pos, _bad(name, offset + pos + 8,
                                                     f"bad byte-order magic 0x{bom:08x}")
                cap._order("<" if bom == PCAPNG_BOM else ">")
                head, u32 = _ng_structs(cap._e)
                btype, blen = head(chunk, pos)
            elif offset + pos == 0:
                return rows[:k], recs, pos, _bad(
                    name, 0, "pcapng file does not start with a section header")
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                return rows[:k], recs, pos, _bad(
                    name, offset + pos, f"absurd block length {blen} (block type 0x{btype:x})")
            end = pos + blen
            if end > n:
                break
            if u32(chunk, end - 4)[0] != blen:
                return rows[:k], recs, pos, _bad(name, offset + end - 4, f"block length "
                                                 f"{blen} and trailing length "
                                                 f"{u32(chunk, end - 4)[0]} differ")
            if btype == PCAPNG_IDB and k:
                break  # interfaces change: the rows so far make a batch of their own
            try:
                got = cap.block(btype, blen, chunk[pos + 8: end - 4], offset + pos)
            except Exception as exc:  # a RawlabError: after the rows before it
                return rows[:k], recs, pos, exc
            if got is not None:
                recs[k] = got
                rows[k] = (0, got.interface, -1, 0, 0, got.wirelen, got.direction)
                k += 1
            nif = len(cap.interfaces)
            pos = end
        return rows[:k], recs, pos, None

    def _pcapng_tail(self, chunk: bytes, offset: int) -> None:
        """The file ends inside a block: the reader's own words for it."""
        import io

        cap: Any = self.cap
        f, cap._f = cap._f, io.BytesIO(chunk)
        try:
            cap._next_block(b"", offset)
        finally:
            cap._f = f

    def _pcapng_batch(self, chunk: bytes, a: np.ndarray, recs: dict[int, Record]) -> Batch:
        cap: Any = self.cap
        buf = np.frombuffer(chunk + bytes(_PAD), np.uint8)
        # a: data offset, iface, tsh, tsl, caplen, orig, direction
        n = len(a)
        iface = a[:, 1]
        cols = _frame_cols(self, n)
        ticks = (a[:, 2] << 32) | a[:, 3]
        ts = np.zeros(n, np.int64)
        for i, (mul, div, off_ns) in enumerate(cap._factors):
            sel = iface == i
            if not sel.any():
                continue
            t = ticks[sel]
            if t.size and int(t.max()) * mul < 1 << 62:
                ts[sel] = (t * mul) // div + off_ns
            else:  # huge resolutions or offsets: exact Python integers
                ts[sel] = [(int(x) * mul) // div + off_ns for x in t]
        for i, rec in recs.items():
            ts[i] = rec.ts_ns
        cols["ts_ns"] = ts
        cols["caplen"] = a[:, 4].astype(np.uint32)
        cols["wirelen"] = a[:, 5].astype(np.uint32)
        cols["interface"] = iface.astype(np.uint32)
        lts = np.array([i.linktype for i in cap.interfaces] or [0], np.uint32)
        cols["linktype"] = lts[np.minimum(iface, len(lts) - 1)]
        for i, rec in recs.items():  # (a custom block's PCAPNG_CUSTOM, -1: all ones here)
            cols["linktype"][i] = rec.linktype & 0xFFFFFFFF
        cols["direction"] = a[:, 6].astype(np.uint8)
        cols["data_offset"] = a[:, 0]
        return _finish(cols, chunk, buf, recs, self.claimed, list(self.cap.interfaces))


def _ng_structs(e: str) -> tuple[Any, Any]:
    """pcapng's unpackers in byte order `e`: block head, u32."""
    return struct.Struct(e + "II").unpack_from, struct.Struct(e + "I").unpack_from


def _frame_cols(src: BatchSource, n: int) -> dict[str, np.ndarray]:
    cols = {"frame": np.arange(src.frames + 1, src.frames + n + 1, dtype=np.uint64)}
    src.frames += n
    return cols


def open_batches(source: str | Path | IO[bytes], *, rows: int = ROWS, chunk: int = CHUNK,
                 table: DispatchTable | None = None) -> BatchSource:
    """A pcap or pcapng file (path or binary file object) as batches; errors as
    :func:`rawlab.pcap.reader.open_file` (RawlabError, exit 5), raised after every
    batch before the bad record."""
    from rawlab.pcap.reader import open_file

    return BatchSource(open_file(source), rows=rows, chunk=chunk, table=table)


def _claimed_ports(table: DispatchTable | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Ports the table gives application decoders (UDP, TCP) as lookup arrays; None when
    the table holds views other than the default ones for the shapes the columns know
    (then no row is fast)."""
    from rawlab.decode.descent import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP
    from rawlab.decode.descent import build_table as default

    d = default()
    t = table if table is not None else d
    for kind, keys in (("link", (_ETH, _SLL, _SLL2, _RAW, _IPV4, _IPV6)),
                       ("ethertype", (ETH_P_IP, ETH_P_IPV6, ETH_P_ARP)),
                       ("ip_proto", (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6))):
        mine, ref = getattr(t, kind), getattr(d, kind)
        if any(mine.get(k) is not ref.get(k) for k in keys):
            return None
    out = []
    for kind in ("udp_port", "tcp_port"):
        ports = np.zeros(65536, bool)
        ports[list(getattr(t, kind, {}) or ())] = True
        out.append(ports)
    return out[0], out[1]


# ---- the columns ------------------------------------------------------------------------------

def factorize(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of the columns' tuples: (the row where each first appears, and
    for every row the number of its tuple). One column: a plain ``np.unique``; several:
    ``np.unique`` over their bytes (a void view), far cheaper than ``axis=0``."""
    if len(cols) == 1:
        _, first, inv = np.unique(cols[0], return_index=True, return_inverse=True)
    else:
        key = np.ascontiguousarray(np.stack([c.astype(np.uint64) for c in cols], axis=1))
        _, first, inv = np.unique(key.view(f"V{8 * len(cols)}").ravel(), return_index=True,
                                  return_inverse=True)
    return first, inv.reshape(-1)


_MIX = np.uint64(0x9E3779B97F4A7C15)


def groups(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of the columns' tuples, numbered in no particular order: (one row
    of each, and for every row the number of its tuple). Several columns are mixed into
    one 64-bit word, sorted once and then checked exact (a collision falls back to
    :func:`factorize`): 16,384 rows of six columns take ~0.5 ms, factorize's sort of their
    bytes ~4.5 ms. For callers that need neither the first row nor factorize's order."""
    n = len(cols[0])
    if len(cols) == 1:
        key = cols[0]
    else:
        key = np.zeros(n, np.uint64)
        for col in cols:
            key ^= col.astype(np.uint64, copy=False)
            key *= _MIX
            key ^= key >> np.uint64(29)
    srt = np.sort(key)  # (not np.unique: its hash path imports numpy.ma, ~17 ms a run)
    keep = np.ones(n, bool)
    np.not_equal(srt[1:], srt[:-1], out=keep[1:])
    uniq = srt[keep]
    inv = np.searchsorted(uniq, key)
    rep = np.empty(len(uniq), np.intp)
    rep[inv] = np.arange(n)
    if len(cols) > 1 and not all(np.array_equal(col[rep][inv], col) for col in cols):
        return factorize(*cols)
    return rep, inv


def _at(buf: np.ndarray, dtype: str, width: int) -> np.ndarray:
    """`buf` read as `dtype` (big-endian, `width` bytes) at every byte offset: one gather
    reads a field (the buffer ends in _PAD zero bytes, so a wide read past a row's end
    stays inside it)."""
    return np.ndarray((len(buf) - width + 1,), dtype, buf, 0, (1,))


def _u16(buf: np.ndarray, p: np.ndarray) -> np.ndarray:
    # two byte gathers: ~40 % cheaper than one gather of an unaligned big-endian view
    return buf[p].astype(np.uint32) << 8 | buf[p + 1]


def _u32(buf: np.ndarray, p: np.ndarray) -> np.ndarray:
    return _at(buf, ">u4", 4)[p].astype(np.uint32)


def _u64(buf: np.ndarray, p: np.ndarray, width: int) -> np.ndarray:
    """`width` (<= 8) bytes big-endian as uint64."""
    got = _at(buf, ">u8", 8)[p].astype(np.uint64)
    return got >> np.uint64(8 * (8 - width)) if width < 8 else got


def _zeros(c: dict[str, np.ndarray], n: int, cols: tuple[tuple[str, Any], ...]) -> None:
    """Columns of a shape no row of the batch has: zeros."""
    for name, dtype in cols:
        c[name] = np.zeros(n, dtype)


def _finish(cols: dict[str, np.ndarray], chunk: bytes, buf: np.ndarray,
            recs: dict[int, Record], claimed: tuple[np.ndarray, np.ndarray] | None,
            interfaces: list[Any], originals: list[Record] | None = None) -> Batch:
    n = len(cols["frame"])
    # the record rows and the rows of a buffer cut short read nothing
    cols["caplen"] = np.minimum(cols["caplen"], np.maximum(
        len(chunk) - cols["data_offset"], 0)).astype(np.uint32)
    layouts: list[tuple[tuple[int, int, int], ...]] = []
    _extract(cols, buf, layouts, claimed)
    if recs:
        cols["status"][list(recs)] = RECORD
    for k in ("frame",):
        assert len(cols[k]) == n
    batch = Batch(cols, chunk, recs, layouts, interfaces)
    batch.originals = originals
    return batch


class RecordBatcher:
    """Records already in memory (a live ring's, a block at a time) as batches: the
    same columns as a file's. ``batch(records, frames)``; a row's :meth:`Batch.record` is
    the Record itself (with the kernel's checksum hints, which the columns do not hold:
    a row with one has status CHECKSUM and the CSUM_NOTE_HINT note, and is printed by the
    per-packet path).
    `interfaces(n)` names interface n (the ring's)."""

    def __init__(self, interfaces: Any = None, table: DispatchTable | None = None) -> None:
        self.interfaces = interfaces
        self.claimed = _claimed_ports(table)

    def batch(self, records: Sequence[Record], frames: Sequence[int],
              interfaces: Sequence[Any] | None = None) -> Batch:
        """The records as one batch; `interfaces` (else the batcher's function) name the
        interface numbers the records use."""
        n = len(records)
        lens = np.fromiter((len(r.data) for r in records), np.int64, n)
        chunk = b"".join(r.data for r in records)
        buf = np.frombuffer(chunk + bytes(_PAD), np.uint8)
        top = max(r.interface for r in records)
        cols = {"frame": np.array(frames, np.uint64),
                "ts_ns": np.fromiter((r.ts_ns for r in records), np.int64, n),
                "caplen": lens.astype(np.uint32),
                "wirelen": np.fromiter((r.wirelen for r in records), np.uint32, n),
                "interface": np.fromiter((r.interface for r in records), np.uint32, n),
                "linktype": np.fromiter((r.linktype & 0xFFFFFFFF for r in records), np.uint32, n),
                "direction": np.fromiter((r.direction for r in records), np.uint8, n),
                "data_offset": np.cumsum(lens) - lens}
        if interfaces is None:
            interfaces = ([self.interfaces(k) for k in range(top + 1)]
                          if self.interfaces is not None else [])
        batch = _finish(cols, chunk, buf, {}, self.claimed, list(interfaces), list(records))
        # the kernel's word on a transport checksum, which the per-packet path takes:
        # not filled yet (offload), or verified by the kernel or NIC (whatever the sum
        # here says: a row the columns find not good goes per packet with it)
        hints = np.fromiter((int(r.csum_status) for r in records), np.uint8, n)
        hint = ((hints & CsumHint.NOT_READY) != 0) | (
            ((hints & CsumHint.VALID) != 0) & (batch.cols["l4_csum"] >= CSUM_BAD))
        st = batch.cols["status"]
        st[hint & (st == FAST)] = CHECKSUM
        batch.cols["csum_notes"][hint] |= CSUM_NOTE_HINT
        return batch


class _Frames:
    """The frames of one batch while their columns are filled: the buffer, where each
    frame starts, what was captured, and the masks and offsets each layer leaves for the
    next (one method per layer, in order)."""

    def __init__(self, c: dict[str, np.ndarray], buf: np.ndarray) -> None:
        self.c = c
        self.buf = buf
        self.n = n = len(c["frame"])
        self.off = c["data_offset"]
        self.cap = c["caplen"].astype(np.int64)
        self.lt = c["linktype"].astype(np.int64)
        self.status = np.zeros(n, np.uint8)
        self.net_at = np.zeros(n, np.int64)
        self.net = np.zeros(n, np.int64)

    def leave(self, mask: np.ndarray, why: int) -> None:
        """The rows of `mask` still fast leave the fast path, for reason `why`."""
        st = self.status
        st[(st == FAST) & mask] = why

    def ethernet(self) -> None:
        """Ethernet and up to two VLAN tags (more leave): where the network header starts."""
        c, buf, off, cap, leave = self.c, self.buf, self.off, self.cap, self.leave
        n = self.n
        eth = self.lt == _ETH
        etype = _u16(buf, off + 12).astype(np.int64)
        c["eth_type"] = np.where(eth, etype, 0).astype(np.uint16)
        tags = np.zeros(n, np.int64)
        tag_tci = [np.zeros(n, np.uint16), np.zeros(n, np.uint16)]
        tag_tpid = [np.zeros(n, np.uint16), np.zeros(n, np.uint16)]
        o = np.full(n, 14, np.int64)
        leave(eth & (cap <= 14), LINK)
        for k in range(MAX_TAGS + 1):
            is_tag = eth & _any_of(etype, VLAN_TPIDS)
            if not is_tag.any():
                break
            leave(is_tag & ((o + 4 > cap) | (k >= 2)), LINK)  # the columns hold two tags
            if k >= 2:
                break
            tag_tpid[k][is_tag] = etype[is_tag]
            tag_tci[k][is_tag] = _u16(buf, off + o)[is_tag]
            etype = np.where(is_tag, _u16(buf, off + o + 2), etype)
            o = np.where(is_tag, o + 4, o)
            tags += is_tag
        leave(eth & (cap <= o), LINK)
        self.net_at[eth] = o[eth]
        self.net[eth] = etype[eth]
        c["eth_src"] = _u64(buf, off + 6, 6)
        c["eth_dst"] = _u64(buf, off, 6)
        c["vlan_count"] = tags.astype(np.uint8)
        for k in range(2):
            c[f"vlan{k + 1}_tpid"] = tag_tpid[k]
            c[f"vlan{k + 1}_tci"] = tag_tci[k]

    def cooked(self) -> None:
        """Linux cooked v1 (pkttype, hatype, halen, addr[8], protocol) and v2; raw IP."""
        c, buf, off, cap, leave, lt = self.c, self.buf, self.off, self.cap, self.leave, self.lt
        sll, sll2 = lt == _SLL, lt == _SLL2
        if sll.any() or sll2.any():
            self._sll(sll, sll2)
        else:  # (the common case: no cooked row in the batch)
            _zeros(c, self.n, (("sll_pkttype", np.uint16), ("sll_hatype", np.uint16),
                               ("sll_halen", np.uint16), ("sll_addr", np.uint64),
                               ("sll_ifindex", np.uint32), ("sll2_reserved", np.uint16)))
        raw = (lt == _RAW) | (lt == _IPV4) | (lt == _IPV6)
        ver0 = buf[off] >> 4
        self.net[raw] = np.where((lt[raw] == _IPV4) | ((lt[raw] == _RAW) & (ver0[raw] == 4)),
                                 ETH_P_IP, np.where((lt[raw] == _IPV6) | (ver0[raw] == 6),
                                                    ETH_P_IPV6, -1))
        leave(raw & ((self.net == -1) | (cap == 0)), LINK)
        leave(~((lt == _ETH) | sll | sll2 | raw), LINKTYPE)
        net = self.net
        c["ethertype"] = net.astype(np.int32)
        c["net_offset"] = self.net_at.astype(np.uint16)
        self.v4, self.v6, self.arp = net == ETH_P_IP, net == ETH_P_IPV6, net == ETH_P_ARP
        leave(~(self.v4 | self.v6 | self.arp), NETWORK)
        self.ip = off + self.net_at  # absolute
        self.left = cap - self.net_at  # bytes captured from the network header on

    def _sll(self, sll: np.ndarray, sll2: np.ndarray) -> None:
        """Linux cooked v1/v2 rows: their fields, where their network header starts."""
        c, buf, off, cap, leave = self.c, self.buf, self.off, self.cap, self.leave
        hatype = np.where(sll, _u16(buf, off + 2), np.where(sll2, _u16(buf, off + 8), 0))
        halen = np.where(sll, _u16(buf, off + 4), np.where(sll2, buf[off + 11], 0))
        proto = np.where(sll, _u16(buf, off + 14), np.where(sll2, _u16(buf, off), 0))
        leave(sll & (cap <= 16), LINK)
        leave(sll2 & (cap <= 20), LINK)
        leave((sll | sll2) & ((halen > 8) | (hatype == ARPHRD_NETLINK)), LINK)
        self.net_at[sll] = 16
        self.net_at[sll2] = 20
        self.net[sll | sll2] = proto[sll | sll2]
        c["sll_pkttype"] = np.where(sll, _u16(buf, off), np.where(sll2, buf[off + 10], 0)
                                    ).astype(np.uint16)
        c["sll_hatype"] = hatype.astype(np.uint16)
        c["sll_halen"] = halen.astype(np.uint16)
        c["sll_addr"] = np.where(sll, _u64(buf, off + 6, 8), np.where(
            sll2, _u64(buf, off + 12, 8), 0)).astype(np.uint64)
        c["sll_ifindex"] = np.where(sll2, _u32(buf, off + 4), 0).astype(np.uint32)
        c["sll2_reserved"] = np.where(sll2, _u16(buf, off + 2), 0).astype(np.uint16)

    def ipv4(self) -> None:
        c, buf, ip, v4, leave = self.c, self.buf, self.ip, self.v4, self.leave
        vihl = buf[ip].astype(np.int64)
        ihl = vihl & 15
        self.tl4 = tl4 = _u16(buf, ip + 2).astype(np.int64)
        frag = _u16(buf, ip + 6).astype(np.int64)
        self.hl4 = hl4 = ihl * 4
        leave(v4 & ((vihl >> 4 != 4) | (ihl < 5)), IP)
        leave(v4 & (self.left < np.maximum(hl4, 20)), TRUNCATED)
        leave(v4 & (tl4 == 0), IP)  # TSO: partial checksums, odd lengths
        leave(v4 & (tl4 < hl4), IP)
        leave(v4 & ((frag & 0x3FFF) != 0), IP)  # fragments
        c["ip4_ihl"] = np.where(v4, ihl, 0).astype(np.uint8)
        c["ip4_tos"] = np.where(v4, buf[ip + 1], 0).astype(np.uint8)
        c["ip4_total_length"] = np.where(v4, tl4, 0).astype(np.uint16)
        c["ip4_id"] = np.where(v4, _u16(buf, ip + 4), 0).astype(np.uint16)
        c["ip4_flags"] = np.where(v4, frag >> 13, 0).astype(np.uint8)
        c["ip4_ttl"] = np.where(v4, buf[ip + 8], 0).astype(np.uint8)
        c["ip4_checksum"] = np.where(v4, _u16(buf, ip + 10), 0).astype(np.uint16)

    def ipv6(self) -> None:
        """IPv6 without extension headers (those leave)."""
        from rawlab.decode.ipv6 import EXT_HEADERS

        c, buf, ip, v6, leave = self.c, self.buf, self.ip, self.v6, self.leave
        vtf = _u32(buf, ip).astype(np.int64)
        self.pl6 = pl6 = _u16(buf, ip + 4).astype(np.int64)
        self.nh6 = nh6 = buf[ip + 6].astype(np.int64)
        leave(v6 & (vtf >> 28 != 6), IP)
        leave(v6 & (self.left < 40), TRUNCATED)
        leave(v6 & (pl6 == 0), IP)
        leave(v6 & _any_of(nh6, EXT_HEADERS), IP)
        c["ip6_traffic_class"] = np.where(v6, (vtf >> 20) & 0xFF, 0).astype(np.uint8)
        c["ip6_flow_label"] = np.where(v6, vtf & 0xFFFFF, 0).astype(np.uint32)
        c["ip6_hop_limit"] = np.where(v6, buf[ip + 7], 0).astype(np.uint8)
        c["ip6_payload_length"] = np.where(v6, pl6, 0).astype(np.uint16)

    def ip_common(self) -> None:
        """Both families: protocol, addresses, where the transport header starts and ends."""
        c, buf, ip, v4, v6, leave = self.c, self.buf, self.ip, self.v4, self.v6, self.leave
        self.proto = proto = np.where(v4, buf[ip + 9], np.where(v6, self.nh6, -1)).astype(
            np.int64)
        c["ip_proto"] = proto.astype(np.int16)
        c["ip_version"] = np.where(v4, 4, np.where(v6, 6, 0)).astype(np.uint8)
        c["src_hi"] = np.where(v6, _u64(buf, ip + 8, 8), 0).astype(np.uint64)
        c["src_lo"] = np.where(v6, _u64(buf, ip + 16, 8), np.where(
            v4, _u32(buf, ip + 12), 0)).astype(np.uint64)
        c["dst_hi"] = np.where(v6, _u64(buf, ip + 24, 8), 0).astype(np.uint64)
        c["dst_lo"] = np.where(v6, _u64(buf, ip + 32, 8), np.where(
            v4, _u32(buf, ip + 16), 0)).astype(np.uint64)
        net_at = self.net_at
        l4_at = np.where(v4, net_at + self.hl4, np.where(v6, net_at + 40, 0))  # in the frame
        l4_end = np.where(v4, net_at + self.tl4, np.where(v6, net_at + 40 + self.pl6, 0))
        self.l4_len = l4_len = np.maximum(l4_end - l4_at, 0)  # the IP header's (tcpdump's)
        leave((v4 | v6) & (l4_len == 0), IP)
        # a snaplen cut the payload (not a header): fast, its transport checksum unverified;
        # an IP length past a frame the snaplen did not cut is judged over the bytes there
        # are (dispatch: Decoder.decode's wirelen): per packet
        c["complete"] = self.cap >= l4_end
        leave((v4 | v6) & (self.cap < l4_end) & (c["wirelen"].astype(np.int64) <= self.cap), IP)
        self.l4_cap = np.minimum(l4_end, self.cap) - l4_at  # the segment's captured bytes
        c["l4_offset"] = l4_at.astype(np.uint16)
        c["l4_length"] = l4_len.astype(np.uint32)
        ipx = v4 | v6
        self.tcp, self.udp = ipx & (proto == 6), ipx & (proto == 17)
        self.icmp, self.icmp6 = v4 & (proto == 1), v6 & (proto == 58)
        self.l4 = self.tcp | self.udp | self.icmp | self.icmp6
        leave(ipx & ~self.l4, TRANSPORT)
        self.t = self.off + l4_at  # absolute
        c["l4"] = np.where(self.tcp, L4_TCP, np.where(self.udp, L4_UDP, np.where(
            self.icmp, L4_ICMP, np.where(self.icmp6, L4_ICMP6, L4_NONE)))).astype(np.uint8)

    def transport(self, layouts: list[tuple[tuple[int, int, int], ...]]) -> None:
        """TCP (and its option layouts), UDP, ICMP/ICMPv6 echo."""
        c, buf, t, leave, l4_cap = self.c, self.buf, self.t, self.leave, self.l4_cap
        tcp, udp, icmp = self.tcp, self.udp, self.icmp | self.icmp6
        l4_len = self.l4_len
        offflags = _u16(buf, t + 12).astype(np.int64)
        doff = offflags >> 12
        thl = doff * 4
        leave(tcp & (l4_cap < 20), TRUNCATED)
        leave(tcp & ((doff < 5) | (thl > l4_len)), TRANSPORT)
        leave(tcp & (thl > l4_cap), TRUNCATED)
        self.sport, self.dport = _u16(buf, t), _u16(buf, t + 2)
        c["sport"] = np.where(tcp | udp, self.sport, 0).astype(np.uint16)
        c["dport"] = np.where(tcp | udp, self.dport, 0).astype(np.uint16)
        c["tcp_seq"] = np.where(tcp, _u32(buf, t + 4), 0).astype(np.uint32)
        c["tcp_ack"] = np.where(tcp, _u32(buf, t + 8), 0).astype(np.uint32)
        c["tcp_dataofs"] = np.where(tcp, doff, 0).astype(np.uint8)
        c["tcp_reserved"] = np.where(tcp, (offflags >> 9) & 7, 0).astype(np.uint8)
        c["tcp_flags"] = np.where(tcp, offflags & 0x1FF, 0).astype(np.uint16)
        c["tcp_window"] = np.where(tcp, _u16(buf, t + 14), 0).astype(np.uint16)
        c["l4_checksum"] = np.where(tcp, _u16(buf, t + 16), np.where(
            udp, _u16(buf, t + 6), np.where(icmp, _u16(buf, t + 2), 0))).astype(np.uint16)
        c["tcp_urgptr"] = np.where(tcp, _u16(buf, t + 18), 0).astype(np.uint16)
        c["payload_length"] = np.where(tcp, l4_len - thl, np.where(
            udp | icmp, l4_len - 8, 0)).clip(0).astype(np.uint32)
        _tcp_options(c, buf, t, np.where(tcp & (self.status == FAST), thl - 20, 0),
                     self.status, layouts)
        ulen = _u16(buf, t + 4).astype(np.int64)
        leave(udp & (l4_cap < 8), TRUNCATED)
        leave(udp & (ulen != l4_len), TRANSPORT)  # a UDP length the IP length disagrees with
        c["udp_length"] = np.where(udp, ulen, 0).astype(np.uint16)
        ity = buf[t].astype(np.int64)
        leave(self.icmp & ~_any_of(ity, (0, 8)), ICMP_TYPE)
        leave(self.icmp6 & ~_any_of(ity, (128, 129)), ICMP_TYPE)
        leave(icmp & (l4_cap < 8), TRUNCATED)
        c["icmp_type"] = np.where(icmp, ity, 0).astype(np.uint8)
        c["icmp_code"] = np.where(icmp, buf[t + 1], 0).astype(np.uint8)
        c["icmp_rest"] = np.where(icmp, _u32(buf, t + 4), 0).astype(np.uint32)

    def arp_rows(self) -> None:
        """ARP for Ethernet and IPv4 (other hardware or protocol types leave)."""
        c, buf, a, arp, leave = self.c, self.buf, self.ip, self.arp, self.leave
        if not arp.any():
            _zeros(c, self.n, (("arp_op", np.uint16), ("arp_sha", np.uint64),
                               ("arp_spa", np.uint32), ("arp_tha", np.uint64),
                               ("arp_tpa", np.uint32), ("arp_length", np.uint32)))
            return
        ok = arp & (_u16(buf, a) == 1) & (_u16(buf, a + 2) == ETH_P_IP) & (
            buf[a + 4] == 6) & (buf[a + 5] == 4)
        leave(arp & ~ok, ARP_SHAPE)
        leave(arp & (self.left < 28), TRUNCATED)
        c["arp_op"] = np.where(arp, _u16(buf, a + 6), 0).astype(np.uint16)
        c["arp_sha"] = np.where(arp, _u64(buf, a + 8, 6), 0).astype(np.uint64)
        c["arp_spa"] = np.where(arp, _u32(buf, a + 14), 0).astype(np.uint32)
        c["arp_tha"] = np.where(arp, _u64(buf, a + 18, 6), 0).astype(np.uint64)
        c["arp_tpa"] = np.where(arp, _u32(buf, a + 24), 0).astype(np.uint32)
        c["arp_length"] = np.where(arp, self.left, 0).astype(np.uint32)

    def ports(self, claimed: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Rows on a port the table gives an application decoder leave when the decoder has
        something to see: a payload, or for TCP a SYN, FIN or RST (the stream reassembler
        needs those; a pure ACK is a pure ACK whatever the port). All rows leave when the
        table is not the default one for the shapes the columns know."""
        if claimed is None:
            self.leave(np.ones(self.n, bool), APPLICATION)
            return
        udp_ports, tcp_ports = claimed
        sp, dp = self.sport, self.dport
        pay = self.c["payload_length"] > 0
        ctl = (self.c["tcp_flags"] & 0x07) != 0  # FIN, SYN, RST
        self.leave(self.udp & (udp_ports[sp] | udp_ports[dp]) & pay, APPLICATION)
        self.leave(self.tcp & (tcp_ports[sp] | tcp_ports[dp]) & (pay | ctl), APPLICATION)


def _extract(c: dict[str, np.ndarray], buf: np.ndarray,
             layouts: list[tuple[tuple[int, int, int], ...]],
             claimed: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Fill every column of the common shapes from the frames' bytes (vectorised)."""
    x = _Frames(c, buf)
    x.ethernet()
    x.cooked()
    x.ipv4()
    x.ipv6()
    x.ip_common()
    x.transport(layouts)
    x.arp_rows()
    _checksums(x)  # (before the ports: a row on an application port has its verdicts too)
    x.ports(claimed)
    _checksum_status(c, x.status)
    c["status"] = x.status


def _tcp_options(c: dict[str, np.ndarray], buf: np.ndarray, t: np.ndarray, olen: np.ndarray,
                 status: np.ndarray, layouts: list[tuple[tuple[int, int, int], ...]]) -> None:
    """Classify each TCP header's option list into a layout (the kinds and where each
    starts); lists the columns do not hold leave the fast path (:data:`OPTIONS`)."""
    n = len(t)
    layout = np.full(n, -1, np.int32)
    c["tcp_opt_layout"] = layout
    has = olen > 0
    if not has.any():
        return
    rows = np.nonzero(has)[0]
    start = t[rows] + 20
    ln = olen[rows]
    codes = np.full((len(rows), MAX_OPTS), OPTS_PAD, np.uint8)
    bad = np.zeros(len(rows), bool)
    # the commonest lists, whole: NOP NOP TS, and NOP NOP TS NOP NOP SACK of 1-3 blocks
    ts = _u32(buf, start) == 0x0101080A
    plain = ts & (ln == 12)
    codes[plain, :3] = (1, 1, 8)
    sack = ts & _any_of(ln, (24, 32, 40)) & (_u32(buf, start + 12) == 0x01010500 | (ln - 14))
    codes[sack, :5] = (1, 1, 8, 1, 1)
    codes[sack, 5] = 5 + 16 * ((ln[sack] - 16) // 8)
    rest = np.nonzero(~plain & ~sack)[0]
    if len(rest):
        sub_codes, sub_bad = _walk_options(buf, start[rest], ln[rest])
        codes[rest], bad[rest] = sub_codes, sub_bad
    st = status[rows]
    st[bad & (st == FAST)] = OPTIONS
    status[rows] = st
    keep = ~bad
    if not keep.any():
        return
    kept = np.ascontiguousarray(codes[keep])
    first, inv = factorize(*kept.view(np.uint64).T)
    base = len(layouts)
    layouts.extend(_layout(u) for u in kept[first].tolist())
    layout[rows[keep]] = base + inv


def _walk_options(buf: np.ndarray, start: np.ndarray, ln: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The option lists at `start` (`ln` bytes each) walked option by option, all rows
    at once: their codes (kind; SACK: 5 + 16 * blocks) and which are not held."""
    m = len(start)
    codes = np.full((m, MAX_OPTS), OPTS_PAD, np.uint8)
    bad = np.zeros(m, bool)
    p = np.zeros(m, np.int64)
    done = np.zeros(m, bool)
    for step in range(MAX_OPTS):
        act = ~done & (p < ln)
        if not act.any():
            break
        kind = buf[start + p].astype(np.int64)
        klen = buf[start + p + 1].astype(np.int64)
        eol = act & (kind == 0)
        nop = act & (kind == 1)
        other = act & ~eol & ~nop
        want = np.zeros(m, np.int64)
        for k, w in OPT_LEN.items():
            want[kind == k] = w
        sack = other & (kind == 5) & _any_of(klen, (10, 18, 26, 34))
        okk = other & (((want > 0) & (klen == want)) | sack) & (p + klen <= ln)
        bad |= other & ~okk
        code = np.where(sack, 5 + 16 * ((klen - 2) // 8), kind)  # SACK: 5 + 16 * blocks
        codes[act, step] = code[act]
        p = np.where(nop, p + 1, np.where(okk, p + klen, p))
        done |= eol | bad
    bad |= ~done & (p < ln)  # more than MAX_OPTS options: not a real header
    return codes, bad


def _layout(codes: list[int]) -> tuple[tuple[int, int, int], ...]:
    """A layout from its codes (kind; SACK: 5 + 16 * blocks): (kind, offset, length)s."""
    items = []
    pos = 0
    for code in codes:
        if code == OPTS_PAD:
            break
        kind = code if code < 16 else 5
        total = 1 if kind in (0, 1) else OPT_LEN.get(kind) or 2 + 8 * (code >> 4)
        items.append((kind, pos, total))
        pos += total
        if kind == 0:
            break
    return tuple(items)


def _any_of(a: np.ndarray, values: Iterable[int]) -> np.ndarray:
    """``np.isin(a, values)`` for a handful of values, without its ``np.unique`` (whose
    first call imports numpy.ma: 19 ms of every command's start)."""
    out = np.zeros(a.shape, bool)
    for v in values:
        out |= a == v
    return out


def _sums(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The sums (not folded) of the big-endian 16-bit words of buf[start:end) for each row
    (an odd length padded with zero), as uint64: a compiled loop over the rows
    (:func:`rawlab._kernels.sums`; numpy's ``add.reduceat`` over the words took 4× as
    long and twice the memory)."""
    out = np.empty(len(start), np.uint64)
    _kernels.sums(buf, np.ascontiguousarray(start, np.int64),
                  np.ascontiguousarray(end, np.int64), out)
    return out


# the ``l4_csum`` column (bad: the sum is wrong; partial: the field holds the
# pseudo-header's sum, an offload artefact, as rawlab.decode.checksum says); ``csum_notes``
# says which checksums the one-line view marks bad (CSUM_NOTE_*), and ``ip4_csum_expected``
# / ``l4_csum_expected`` what a bad one should be, so those rows print from the columns
CSUM_NONE, CSUM_GOOD, CSUM_UNVERIFIED, CSUM_BAD, CSUM_PARTIAL = 0, 1, 2, 3, 4
CSUM_NOTE_IP, CSUM_NOTE_L4, CSUM_NOTE_HINT = 1, 2, 4  # HINT: the kernel's word decides


def _checksums(x: _Frames) -> None:
    """Verdicts of the IPv4 header checksum and the transport checksum (``l4_csum``:
    good, or unverified when the capture holds less than the datagram or a UDP/IPv4
    checksum is 0), and the value a bad one should hold (what the per-packet path's
    :mod:`rawlab.decode.checksum` computes).  A row with one that is bad or partial
    leaves the fast path (:func:`_checksum_status`, after every other reason: status
    CHECKSUM means "the columns hold it all but a checksum that is not good")."""
    c, buf, ip, t, status = x.c, x.buf, x.ip, x.t, x.status
    hl4, l4_len, v4, v6, l4 = x.hl4, x.l4_len, x.v4, x.v6, x.l4
    n = len(status)
    verdict = np.zeros(n, np.uint8)
    notes = np.zeros(n, np.uint8)
    ip_exp = np.zeros(n, np.uint16)
    l4_exp = np.zeros(n, np.uint16)
    c["l4_csum"], c["csum_notes"] = verdict, notes
    c["ip4_csum_expected"], c["l4_csum_expected"] = ip_exp, l4_exp
    rows = np.nonzero((status == FAST) & (v4 | l4))[0]
    if not len(rows):
        return
    r4 = rows[v4[rows]]
    if len(r4):
        s = _sums(buf, ip[r4], ip[r4] + hl4[r4]).astype(np.int64)
        bad = (s % 0xFFFF != 0) | (s == 0)
        notes[r4[bad]] |= CSUM_NOTE_IP
        # the header's sum without its checksum field, folded, inverted
        rest = (s[bad] - c["ip4_checksum"][r4[bad]].astype(np.int64)) % 0xFFFF
        ip_exp[r4[bad]] = np.where(rest == 0, 0, 0xFFFF - rest)
    r = rows[l4[rows]]
    if not len(r):
        return
    proto = c["ip_proto"][r].astype(np.int64)
    ln = l4_len[r]
    is6 = v6[r]
    words = np.zeros(len(r), np.int64)
    for col in ("src_hi", "src_lo", "dst_hi", "dst_lo"):
        x = c[col][r]
        for sh in (48, 32, 16, 0):
            words += ((x >> np.uint64(sh)) & np.uint64(0xFFFF)).astype(np.int64)
    icmp4 = ~is6 & (proto == 1)  # ICMP over IPv4 has no pseudo-header
    pseudo = np.where(icmp4, 0, words + proto + np.where(is6, (ln >> 16) + (ln & 0xFFFF), ln))
    whole = c["complete"][r]
    raw = _sums(buf, t[r], t[r] + np.where(whole, ln, 0)).astype(np.int64)
    total = raw + pseudo  # (not folded first: ICMPv4's pseudo is 0, and a good sum folds to 0)
    good = (total % 0xFFFF == 0) & (total != 0)
    value = c["l4_checksum"][r]
    none4 = ~is6 & (proto == 17) & (value == 0)  # UDP over IPv4: "no checksum"
    unverified = ~whole | none4
    folded = pseudo % 0xFFFF
    folded = np.where((folded == 0) & (pseudo != 0), 0xFFFF, folded)
    partial = (value == folded) | (value == (~folded & 0xFFFF))
    got = np.where(unverified, CSUM_UNVERIFIED, np.where(good, CSUM_GOOD, np.where(
        partial, CSUM_PARTIAL, CSUM_BAD)))
    verdict[r] = got
    b = got == CSUM_BAD
    if b.any():
        rb = r[b]
        notes[rb] |= CSUM_NOTE_L4
        # the segment's sum without its checksum field, plus the pseudo-header's, folded
        # (0 only when both are 0), inverted; UDP sends a computed 0 as 0xFFFF
        excl = raw[b] - value[b].astype(np.int64)
        fold = (excl % 0xFFFF + pseudo[b] % 0xFFFF) % 0xFFFF
        fold = np.where((fold == 0) & ((excl != 0) | (pseudo[b] != 0)), 0xFFFF, fold)
        exp = 0xFFFF - fold
        l4_exp[rb] = np.where((exp == 0) & (proto[b] == 17), 0xFFFF, exp)


def _checksum_status(c: dict[str, np.ndarray], status: np.ndarray) -> None:
    """Rows still fast whose IPv4 header or transport checksum is bad or partial leave,
    last (status CHECKSUM: the columns hold everything else)."""
    bad = ((c["csum_notes"] & CSUM_NOTE_IP) != 0) | (c["l4_csum"] >= CSUM_BAD)
    status[(status == FAST) & bad] = CHECKSUM
