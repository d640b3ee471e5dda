"""The columnar fast path: capture files (and a live ring's blocks) as Apache Arrow batches.

    from rawlab.decode.columns import open_batches
    with open_batches("x.pcap") as src:            # a path or a binary file object
        for batch in src:                          # Batch: at most ROWS rows, CHUNK bytes
            batch.table                            # pyarrow.RecordBatch, one row per frame
            batch.col("tcp_seq")                   # the same column as a numpy array
            batch.fast                             # bool array: True = the columns hold it all
            batch.record(i)                        # row i as a Record (the per-packet path)

One row per frame: frame number, timestamp, lengths, interface, link type, direction,
and the fields of the common shapes, extracted in one compiled pass a row
(:func:`rawlab._kernels.extract`, ``src/rawlab/_kernels.c``): Ethernet with
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
whatever the file's size. Walking the record chain of a file is sequential, and so is
reading a header's fields where the header before says they are: both are compiled
loops (``_kernels.c``, ~60 ns a row together; the numpy gathers they replaced took
~0.5 µs a row, bench/tcp/README.md); what is built on the columns is numpy.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from rawlab import _kernels
from rawlab.decode.ethernet import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, VLAN_TPIDS
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

    def __init__(self, cols: dict[str, np.ndarray], buf: bytes | bytearray,
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
        return bytes(memoryview(self.buf)[o: o + int(self.cols["caplen"][i])])

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

def _pcap_chain(chunk: bytes | bytearray, rows: int, big: bool,
                limit: int) -> tuple[np.ndarray, np.ndarray, int, int | None]:
    """The records a pcap `chunk` holds whole from its start, `rows` at most: (their
    offsets, their headers' fields (seconds, fraction, captured and original length: a
    row each), where the next one starts, and that one's length when it is over `limit`:
    the file is broken there). The walk is sequential: a compiled loop
    (:func:`rawlab._kernels.pcap_chain`, ~10 ns a record against ~400 in Python)."""
    at = np.empty(rows, np.int64)
    hdr = np.empty((rows, 4), np.int64)
    n, pos, over = _kernels.pcap_chain(chunk, rows, big, limit, at, hdr)
    return at[:n], hdr[:n], pos, over


class BatchSource:
    """A capture file read as batches (:func:`open_batches`); ``interfaces`` as the
    reader's (pcapng: renewed per section)."""

    def __init__(self, cap: CaptureReader, *, rows: int = ROWS, chunk: int = CHUNK,
                 table: DispatchTable | None = None, ahead: int = 0) -> None:
        self.cap = cap
        self.rows = rows
        self.chunk = chunk
        self.claimed = _claimed_ports(table)
        # a pipe or FIFO: no thread reads ahead, and a batch is what one read brought (a
        # record that arrived is printed before the next, and Ctrl-C keeps it)
        self.stream = not _regular(cap)
        self.ahead = 0 if self.stream else ahead
        self.frames = 0  # records read so far

    @property
    def interfaces(self) -> list[Any]:
        return self.cap.interfaces

    def __iter__(self) -> Iterator[Batch]:
        batches = self._pcap() if self.cap.format == "pcap" else self._pcapng()
        if not self.ahead:
            return batches
        from rawlab.prefetch import prefetch

        return prefetch(batches, self.ahead, name="rawlab-read-ahead")

    def _want(self, carry: bytes | bytearray) -> int:
        """The bytes a chunk waits for: a whole chunk from a regular file, from a stream
        one byte more than the carry (what one read brings)."""
        return len(carry) + 1 if self.stream else self.chunk

    def close(self) -> None:
        self.cap.close()

    def __enter__(self) -> BatchSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pcap: the record chain is walked in Python, the rest is numpy --
    def _pcap(self) -> Iterator[Batch]:
        from rawlab.pcap.reader import MAX_RECORD, MAX_SNAPLEN, _bad, fill

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
            chunk = carry if len(carry) >= self.chunk else fill(f, carry, self._want(carry))
            n = len(chunk)
            if not n:
                return
            at, hdr, pos, absurd = _pcap_chain(chunk, rows, e == ">", limit)
            problem = None if absurd is None else _bad(
                name, base + pos, f"absurd record length {absurd} (snaplen {cap.snaplen})")
            if len(at):
                yield self._pcap_batch(chunk, at, hdr, mul)
            if problem is not None:
                raise problem
            if not len(at):  # one record longer than the chunk, or the end of the file
                got = fill(f, chunk, n + 1)
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

    def _pcap_batch(self, chunk: bytearray, at: np.ndarray, hdr: np.ndarray,
                    mul: int) -> Batch:
        buf = np.frombuffer(chunk, np.uint8)
        cols = _frame_cols(self, len(at))  # hdr: (n, 4): sec, frac, incl, orig
        cols["ts_ns"] = hdr[:, 0] * 1_000_000_000 + hdr[:, 1] * mul
        cols["caplen"] = hdr[:, 2].astype(np.uint32)
        cols["wirelen"] = hdr[:, 3].astype(np.uint32)
        cols["interface"] = np.zeros(len(at), np.uint32)
        cols["linktype"] = np.full(len(at), self.cap.interfaces[0].linktype, np.uint32)
        cols["direction"] = np.zeros(len(at), np.uint8)
        cols["data_offset"] = at + 16
        return _finish(cols, chunk, buf, {}, self.claimed, list(self.cap.interfaces))

    # -- pcapng: plain EPBs (no options but epb_flags) as columns, other blocks as Records --
    def _pcapng(self) -> Iterator[Batch]:
        from rawlab.pcap.reader import fill

        cap: Any = self.cap
        f = cap._f
        carry = cap._head
        offset = 0  # file offset of chunk[0]
        while True:
            # (a batch full before its chunk ends leaves a carry: read only what is missing)
            chunk = carry if len(carry) >= self.chunk else fill(f, carry, self._want(carry))
            n = len(chunk)
            if not n:
                return
            plain, recs, pos, problem = self._blocks(chunk, offset)
            if len(plain):
                yield self._pcapng_batch(chunk, plain, recs)
            if problem is not None:
                raise problem
            if not len(plain) and pos == 0:
                got_more = fill(f, chunk, n + 1)
                if len(got_more) == n:  # the end of the file inside a block
                    self._pcapng_tail(chunk, offset)
                    return
                carry = got_more
                continue
            carry = chunk[pos:]
            offset += pos

    def _blocks(self, chunk: bytearray, offset: int) -> tuple[
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
                got = cap.block(btype, blen, bytes(memoryview(chunk)[pos + 8: end - 4]),
                                offset + pos)
            except Exception as exc:  # a RawlabError: after the rows before it
                return rows[:k], recs, pos, exc
            if got is not None:
                recs[k] = got
                rows[k] = (0, got.interface, -1, 0, 0, got.wirelen, got.direction)
                k += 1
            nif = len(cap.interfaces)
            pos = end
        return rows[:k], recs, pos, None

    def _pcapng_tail(self, chunk: bytearray, offset: int) -> None:
        """The file ends inside a block: the reader's own words for it."""
        import io

        cap: Any = self.cap
        f, cap._f = cap._f, io.BytesIO(chunk)
        try:
            cap._next_block(b"", offset)
        finally:
            cap._f = f

    def _pcapng_batch(self, chunk: bytearray, a: np.ndarray, recs: dict[int, Record]) -> Batch:
        cap: Any = self.cap
        buf = np.frombuffer(chunk, np.uint8)
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
        cols["data_offset"] = np.ascontiguousarray(a[:, 0])
        return _finish(cols, chunk, buf, recs, self.claimed, list(self.cap.interfaces))


def _ng_structs(e: str) -> tuple[Any, Any]:
    """pcapng's unpackers in byte order `e`: block head, u32."""
    return struct.Struct(e + "II").unpack_from, struct.Struct(e + "I").unpack_from


def _regular(cap: CaptureReader) -> bool:
    """Whether `cap` is read from a regular file, whose reads always return. A pipe's, a
    FIFO's or a terminal's may block for ever: a read-ahead thread stuck there would hold
    the file (and Ctrl-C's exit) for as long, so these are read in the consumer's thread."""
    try:
        return stat.S_ISREG(os.fstat(cap._f.fileno()).st_mode)  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):  # no descriptor (BytesIO), closed
        return False


def _frame_cols(src: BatchSource, n: int) -> dict[str, np.ndarray]:
    cols = {"frame": np.arange(src.frames + 1, src.frames + n + 1, dtype=np.uint64)}
    src.frames += n
    return cols


def open_batches(source: str | Path | IO[bytes], *, rows: int = ROWS, chunk: int = CHUNK,
                 table: DispatchTable | None = None, ahead: int = 0) -> BatchSource:
    """A pcap or pcapng file (path or binary file object) as batches; errors as
    :func:`rawlab.pcap.reader.open_file` (RawlabError, exit 5), raised after every
    batch before the bad record. ``ahead``: batches a thread reads (and extracts)
    ahead of the consumer (:func:`rawlab.prefetch.prefetch`: reading, walking the
    records and :func:`rawlab._kernels.extract` release the GIL), for a consumer that
    spends its time in compiled code without it; only from a regular file (a pipe's
    read may never return: see :func:`_regular`), else 0."""
    from rawlab.pcap.reader import open_file

    # freed blocks of up to 32 MiB stay in the heap for the next batch (glibc maps each
    # one over 128 KiB afresh: 90k page faults, ~0.15 s, for 5M packets); for the
    # process, so only where batches are read (a live capture keeps glibc's defaults)
    _kernels.heap(32 << 20, 128 << 20)
    return BatchSource(open_file(source), rows=rows, chunk=chunk, table=table, ahead=ahead)


def _claimed_ports(table: DispatchTable | None) -> bytes | None:
    """Ports the table gives application decoders as :func:`rawlab._kernels.extract`
    takes them (65536 bytes for UDP's, then TCP's, 1 where a decoder takes it); None when
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
    return b"".join(p.astype(np.uint8).tobytes() for p in out)


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


def groups(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of the columns' tuples, numbered in the order they first appear:
    (the row where each first appears, and for every row the number of its tuple). A
    compiled hash table with exact comparison (:func:`rawlab._kernels.groups`): 16,384
    rows of six columns in ~0.1 ms, where factorize's sort of their bytes takes ~4.5 ms
    (and numbers the tuples in their sorted order)."""
    n = len(cols[0])
    rep = np.empty(n, np.int64)
    inv = np.empty(n, np.int64)
    words = [c if c.dtype == np.uint64 else c.astype(np.int64).view(np.uint64) for c in cols]
    k = _kernels.groups([np.ascontiguousarray(w) for w in words], rep, inv)
    return rep[:k], inv


def _finish(cols: dict[str, np.ndarray], chunk: bytes | bytearray, buf: np.ndarray,
            recs: dict[int, Record], claimed: bytes | None,
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
        buf = np.frombuffer(chunk, np.uint8)
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


# The columns the compiled extraction fills (rawlab._kernels.extract), in its order.
KERNEL_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("eth_type", np.uint16), ("eth_src", np.uint64), ("eth_dst", np.uint64),
    ("vlan_count", np.uint8), ("vlan1_tpid", np.uint16), ("vlan1_tci", np.uint16),
    ("vlan2_tpid", np.uint16), ("vlan2_tci", np.uint16),
    ("sll_pkttype", np.uint16), ("sll_hatype", np.uint16), ("sll_halen", np.uint16),
    ("sll_addr", np.uint64), ("sll_ifindex", np.uint32), ("sll2_reserved", np.uint16),
    ("ethertype", np.int32), ("net_offset", np.uint16),
    ("ip4_ihl", np.uint8), ("ip4_tos", np.uint8), ("ip4_total_length", np.uint16),
    ("ip4_id", np.uint16), ("ip4_flags", np.uint8), ("ip4_ttl", np.uint8),
    ("ip4_checksum", np.uint16),
    ("ip6_traffic_class", np.uint8), ("ip6_flow_label", np.uint32), ("ip6_hop_limit", np.uint8),
    ("ip6_payload_length", np.uint16),
    ("ip_proto", np.int16), ("ip_version", np.uint8), ("src_hi", np.uint64),
    ("src_lo", np.uint64), ("dst_hi", np.uint64), ("dst_lo", np.uint64), ("complete", bool),
    ("l4_offset", np.uint16), ("l4_length", np.uint32), ("l4", np.uint8),
    ("sport", np.uint16), ("dport", np.uint16), ("tcp_seq", np.uint32), ("tcp_ack", np.uint32),
    ("tcp_dataofs", np.uint8), ("tcp_reserved", np.uint8), ("tcp_flags", np.uint16),
    ("tcp_window", np.uint16), ("l4_checksum", np.uint16), ("tcp_urgptr", np.uint16),
    ("payload_length", np.uint32), ("udp_length", np.uint16),
    ("icmp_type", np.uint8), ("icmp_code", np.uint8), ("icmp_rest", np.uint32),
    ("arp_op", np.uint16), ("arp_sha", np.uint64), ("arp_spa", np.uint32),
    ("arp_tha", np.uint64), ("arp_tpa", np.uint32), ("arp_length", np.uint32),
    ("l4_csum", np.uint8), ("csum_notes", np.uint8), ("ip4_csum_expected", np.uint16),
    ("l4_csum_expected", np.uint16), ("status", np.uint8), ("tcp_opt_layout", np.int32),
)


def _kernel_tables() -> tuple[tuple[int, ...], bytes, bytes]:
    """What the compiled extraction is told: link types, VLAN TPIDs, reasons, the option
    bounds and checksum verdicts (the order of _kernels.c's K_*), the IPv6 extension
    headers and the held TCP options' lengths (256 bytes each)."""
    from rawlab.decode.ipv6 import EXT_HEADERS

    tpids = sorted(VLAN_TPIDS)
    consts = (_ETH, _SLL, _SLL2, _RAW, _IPV4, _IPV6, *tpids, ARPHRD_NETLINK, LINKTYPE, LINK,
              NETWORK, IP, TRUNCATED, TRANSPORT, OPTIONS, ICMP_TYPE, ARP_SHAPE, MAX_OPTS,
              OPTS_PAD, CSUM_GOOD, CSUM_UNVERIFIED, CSUM_BAD, CSUM_PARTIAL, CSUM_NOTE_IP,
              CSUM_NOTE_L4, CHECKSUM, APPLICATION)
    ext = bytes(1 if i in EXT_HEADERS else 0 for i in range(256))
    optlen = bytes(OPT_LEN.get(i, 0) for i in range(256))
    return consts, ext, optlen


_TABLES: list[tuple[tuple[int, ...], bytes, bytes]] = []


def _extract(c: dict[str, np.ndarray], buf: np.ndarray,
             layouts: list[tuple[tuple[int, int, int], ...]], claimed: bytes | None) -> None:
    """Fill every column of the common shapes from the frames' bytes: one compiled pass a
    row (:func:`rawlab._kernels.extract`), which also numbers the TCP option layouts and
    lets the last rows leave (the application ports, then the checksum verdicts)."""
    if not _TABLES:
        _TABLES.append(_kernel_tables())
    consts, ext, optlen = _TABLES[0]
    n = len(c["frame"])
    for name, dtype in KERNEL_COLUMNS:
        c[name] = np.empty(n, dtype)
    codes = np.empty((n, MAX_OPTS), np.uint8)  # (only the distinct layouts' rows are used)
    i64 = np.int64
    k = _kernels.extract(buf, c["data_offset"].astype(i64), c["caplen"].astype(i64),
                         c["wirelen"].astype(i64), c["linktype"].astype(i64), consts, ext,
                         optlen, [c[name] for name, _ in KERNEL_COLUMNS], codes, claimed)
    layouts.extend(_layout(u) for u in codes[:k].tolist())


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


# the ``l4_csum`` column (bad: the sum is wrong; partial: the field holds the
# pseudo-header's sum, an offload artefact, as rawlab.decode.checksum says); ``csum_notes``
# says which checksums the one-line view marks bad (CSUM_NOTE_*), and ``ip4_csum_expected``
# / ``l4_csum_expected`` what a bad one should be, so those rows print from the columns
CSUM_NONE, CSUM_GOOD, CSUM_UNVERIFIED, CSUM_BAD, CSUM_PARTIAL = 0, 1, 2, 3, 4
CSUM_NOTE_IP, CSUM_NOTE_L4, CSUM_NOTE_HINT = 1, 2, 4  # HINT: the kernel's word decides

