"""Where each record of a capture file is: one pass, then any record read at once.

    idx = FrameIndex("big.pcapng")       # reads the file header (RawlabError if not a capture)
    threading.Thread(target=idx.build).start()   # the one pass (stop with idx.stop())
    len(idx)                             # records indexed so far (grows while build runs)
    idx.record(i)                        # the i-th record (0-based): one pread, a Record
    idx.records(start, stop)             # a range, in order, read a few MiB at a time
    idx.ts_ns(i), idx.offset(i)          # from the index alone
    idx.complete, idx.problem            # the pass ended; why it ended early (or None)
    idx.done, idx.size                   # bytes walked so far, of the file (progress)

pcap and pcapng (any byte order, several sections, interfaces of any link type;
``interfaces`` numbers them across sections, and a record's ``interface`` is
that number). The pass walks the record chain in Python (it is sequential: each
length says where the next record starts) and takes the timestamps of each
chunk of records with numpy (imported by the pass itself, so that opening a file
costs no import), so a 1 GB file of 10M records is indexed in a few seconds.
Memory is constant per record: the index keeps, per page of records (one read
chunk), the page's file offset and first timestamp, and per record a
32-bit offset into the page and a 32-bit timestamp delta (µs or ns, whichever
fits; a page whose times do not fit keeps 64-bit timestamps): 8 bytes a record.

A damaged or truncated file is indexed up to its last whole record; ``problem``
then says where and what (the same words as :mod:`rawlab.pcap.reader`). Blocks
are parsed when read, by the reader's own block methods, so :meth:`record`
gives exactly what iterating the file gives.
"""

from __future__ import annotations

import array
import bisect
import dataclasses
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rawlab.errors import Exit, RawlabError
from rawlab.pcap.reader import (
    MAX_BLOCK,
    MAX_RECORD,
    MAX_SNAPLEN,
    PCAPNG_BOM,
    PCAPNG_EPB,
    PCAPNG_IDB,
    PCAPNG_PB,
    PCAPNG_SHB,
    PCAPNG_SPB,
    CaptureReader,
    PcapngReader,
    PcapReader,
    open_file,
)
from rawlab.records import PCAPNG_CUSTOM_COPY, PCAPNG_CUSTOM_NOCOPY, Interface, Record

CHUNK = 8 << 20  # bytes read at a time; one page of the index per chunk
FIRST = 64 << 10  # the first read: its page is made without numpy (not imported yet)
_SPAN = 4 << 20  # bytes read at a time by records()
_U32_MAX = (1 << 32) - 1
_CUSTOM_BLOCKS = frozenset({PCAPNG_CUSTOM_COPY, PCAPNG_CUSTOM_NOCOPY})
# blocks that are records (a custom block's data as tshark numbers it: the reader's rule)
_PACKET_BLOCKS = frozenset({PCAPNG_EPB, PCAPNG_SPB, PCAPNG_PB}) | _CUSTOM_BLOCKS


@dataclasses.dataclass(slots=True)
class _Page:
    """The records that started in one read chunk."""

    first: int  # number of its first record
    base: int  # file offset the record offsets count from
    off: Any  # np.uint32: offset of each record from ``base``
    end: int  # file offset just after its last record
    ts_base: int
    ts: Any  # np.uint32 delta in ``ts_unit`` ns, or np.int64 absolute (ts_unit 0)
    ts_unit: int
    iface: Any  # one global interface number, or np.uint16 per record
    section: Any = None  # pcapng: the reader that knows this section's interfaces


def _words(buf: bytearray, have: int, e: str) -> Any:
    """``buf[:have]`` as 32-bit words of byte order ``e`` starting at every byte (a strided
    view, no copy): ``words[o]`` is the word at byte offset ``o``."""
    import numpy as np

    return np.ndarray((max(have - 3, 0),), dtype=e + "u4", buffer=buf, strides=(1,))


class FrameIndex:
    """The offset, timestamp and interface of every record of a pcap or pcapng file."""

    def __init__(self, path: str | Path) -> None:
        self.name = str(path)
        with open_file(path) as cap:  # checks the magic, reads the pcap header
            self._reader: CaptureReader = cap
        try:
            self._fd = os.open(self.name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:  # pragma: no cover - open_file opened it a moment ago
            raise RawlabError(f"{self.name}: cannot open: {exc.strerror}", Exit.BAD_INPUT) from None
        self.size = os.fstat(self._fd).st_size
        self.format = self._reader.format
        self.interfaces: list[Interface] = []
        self._pages: list[_Page] = []
        self._firsts: list[int] = []
        self._count = 0
        self.done = 0
        self.complete = False
        self.problem: str | None = None
        self._stop = threading.Event()
        self._first = False
        self._hold: threading.Event | None = None
        if isinstance(self._reader, PcapReader):
            self.interfaces = [self._reader.interfaces[0]]

    # -- reading ---------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def _page(self, i: int) -> tuple[_Page, int]:
        if not 0 <= i < self._count:
            raise IndexError(i)
        p = self._pages[bisect.bisect_right(self._firsts, i) - 1]
        return p, i - p.first

    def offset(self, i: int) -> int:
        """File offset of record ``i`` (its pcap record header, or its pcapng block)."""
        p, j = self._page(i)
        return p.base + int(p.off[j])

    def ts_ns(self, i: int) -> int:
        p, j = self._page(i)
        if p.ts_unit:
            return p.ts_base + int(p.ts[j]) * p.ts_unit
        return int(p.ts[j])

    def interface_of(self, i: int) -> int:
        p, j = self._page(i)
        return p.iface if isinstance(p.iface, int) else int(p.iface[j])

    def record(self, i: int) -> Record:
        """Record ``i``, read from the file (one ``pread``), parsed as the reader parses it."""
        p, j = self._page(i)
        at = p.base + int(p.off[j])
        end = p.base + int(p.off[j + 1]) if j + 1 < len(p.off) else p.end
        want = end - at
        if want > (1 << 20):  # a big record, or blocks between two records: its own length
            head = os.pread(self._fd, 16, at)
            want = self._length(head, p)
        data = os.pread(self._fd, want, at)
        if self.format == "pcap":
            return self._pcap_record(data)
        return self._block(p.section, data, at)

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[Record]:
        """Records ``start`` to ``stop`` (exclusive; None: every one indexed now), in order,
        read in spans of a few MiB (one ``pread`` each)."""
        import numpy as np

        stop = self._count if stop is None else min(stop, self._count)
        i = start
        while i < stop:
            p, j = self._page(i)
            last = min(stop - p.first, len(p.off))  # this page's part of the range
            while j < last:
                k = int(np.searchsorted(p.off, p.off[j] + _SPAN, side="right"))
                k = min(max(k, j + 1), last)
                lo = p.base + int(p.off[j])
                hi = p.base + int(p.off[k]) if k < len(p.off) else p.end
                data = os.pread(self._fd, hi - lo, lo)
                for m in range(j, k):
                    a = int(p.off[m]) - (lo - p.base)
                    b = int(p.off[m + 1]) - (lo - p.base) if m + 1 < len(p.off) else hi - lo
                    rec = data[a:b]
                    yield (self._pcap_record(rec) if p.section is None
                           else self._block(p.section, rec, lo + a))
                j = k
            i = p.first + last

    def _length(self, head: bytes, p: _Page) -> int:
        if self.format == "pcap":
            r: Any = self._reader
            return 16 + struct.unpack_from(r.endian + "I", head, 8)[0]
        return int(struct.unpack_from(p.section._e + "I", head, 4)[0])

    def _pcap_record(self, data: bytes) -> Record:
        r: Any = self._reader
        sec, frac, incl, orig = struct.unpack_from(r.endian + "IIII", data)
        mul = 1 if r.nanosecond else 1000
        return Record(sec * 1_000_000_000 + frac * mul, orig, r.linktype, data[16:16 + incl])

    @staticmethod
    def _block(sec: Any, data: bytes, at: int) -> Record:
        """The record in the packet block ``data`` (at file offset ``at``) of section ``sec``,
        its interface numbered across sections."""
        btype, blen = sec._len(data)
        body = data[8:blen - 4]
        trailer = sec._u32(data, blen - 4)[0]
        if trailer != blen:
            raise RawlabError(f"{sec.name}: offset {at + blen - 4}: block length {blen} and "
                              f"trailing length {trailer} differ", Exit.BAD_INPUT)
        rec = sec.block(btype, blen, body, at)
        if rec.interface >= 0:  # (a custom block's record has none: -1)
            rec.interface = sec.global_ids[rec.interface]
        return rec

    def close(self) -> None:
        self.stop()
        try:
            os.close(self._fd)
        except OSError:
            pass

    def __enter__(self) -> FrameIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the pass --------------------------------------------------------------

    def stop(self) -> None:
        """End a running :meth:`build` at its next chunk."""
        self._stop.set()

    def build(self, hold: threading.Event | None = None) -> None:
        """Walk the file once and index every whole record (run it in a thread). With
        ``hold``, the first page is made at once and the rest only once ``hold`` is set
        (or 3 s passed): a viewer draws its first screen without sharing the interpreter
        with the pass."""
        self._hold = hold
        try:
            with open(self.name, "rb", buffering=0) as f:
                if self.format == "pcap":
                    f.seek(24)
                    self._walk(f, 24, self._pcap_chunk)
                else:
                    self._walk(f, 0, self._pcapng_chunk)
        finally:
            self.complete = True

    def _walk(self, f: Any, start: int, scan: Any) -> None:
        """Read the file chunk by chunk into one buffer; ``scan`` indexes each chunk's whole
        records and says how far it got (the rest moves to the front for the next read)."""
        buf = bytearray(CHUNK)
        have = 0
        base = start  # file offset of buf[0]
        want = FIRST  # a small first read: the first page is there at once
        while not self._stop.is_set():
            view = memoryview(buf)
            n = f.readinto(view[have:have + want] if want else view[have:])
            view.release()
            self._first = bool(want)
            if not want and self._hold is not None:
                self._hold.wait(3)
            want = 0
            eof = not n
            have += n or 0
            used, need = scan(buf, have, base)
            if self.problem is not None:
                return
            base += used
            self.done = base
            rest = have - used
            if eof:
                if rest:
                    self.problem = self._cut_short(base, rest, need)
                return
            buf[:rest] = buf[used:have]
            have = rest
            if need > len(buf):  # one record bigger than the buffer
                buf.extend(bytes(need - len(buf)))

    def _cut_short(self, at: int, rest: int, need: int) -> str:
        if self.format == "pcap" and rest < 16:
            what = f"truncated record header ({rest} of 16 bytes)"
        elif self.format == "pcap":
            what = f"truncated record: {need - 16} bytes captured, {rest - 16} left in the file"
        elif rest < 12:
            what = f"truncated block header ({rest} of 12 bytes)"
        else:
            what = f"truncated block: {need} bytes long, {rest} left in the file"
        return f"{self.name}: offset {at}: {what}"

    def _add(self, offs: Any, base: int, end: int, ts: Any, iface: Any,
             section: Any = None) -> None:
        """One page: offsets (array of uint32 from ``base``) and int64 timestamps."""
        import numpy as np

        n = len(offs)
        if not n:
            return
        lo = int(ts.min())
        span = int(ts.max()) - lo
        if span <= _U32_MAX * 1000 and not (ts % 1000).any():
            unit, packed = 1000, ((ts - lo) // 1000).astype(np.uint32)
        elif span <= _U32_MAX:
            unit, packed = 1, (ts - lo).astype(np.uint32)
        else:
            unit, packed = 0, ts.astype(np.int64)
        if not isinstance(iface, int) and len(iface) and (iface == iface[0]).all():
            iface = int(iface[0])
        page = _Page(self._count, base, np.array(offs, dtype=np.uint32), end, lo, packed, unit,
                     iface, section)
        self._pages.append(page)
        self._firsts.append(page.first)
        self._count += n  # last: readers see the page only once it is whole

    # -- pcap --------------------------------------------------------------------

    def _pcap_chunk(self, buf: bytearray, have: int, base: int) -> tuple[int, int]:
        r: Any = self._reader
        e = r.endian
        u32 = struct.Struct(e + "I").unpack_from
        limit = min(max(r.snaplen, MAX_SNAPLEN), MAX_RECORD)
        offs = array.array("I")
        add = offs.append
        pos = 0
        need = 16
        last = have - 16
        while pos <= last:
            incl = u32(buf, pos + 8)[0]
            if incl > limit:
                self.problem = (f"{self.name}: offset {base + pos}: absurd record length "
                                f"{incl} (snaplen {r.snaplen})")
                break
            end = pos + 16 + incl
            if end > have:
                need = 16 + incl
                break
            add(pos)
            pos = end
        if offs and self._first:
            mul = 1 if r.nanosecond else 1000
            ts = [sec * 1_000_000_000 + frac * mul for sec, frac in
                  (struct.unpack_from(e + "II", buf, x) for x in offs)]
            self._add_small(offs, base, base + pos, ts, 0)
        elif offs:
            import numpy as np

            o = np.frombuffer(offs, dtype=np.uint32)
            words = _words(buf, have, e)
            ts = words[o].astype(np.int64) * 1_000_000_000 + words[o + 4].astype(np.int64) * (
                1 if r.nanosecond else 1000)
            del words
            self._add(o, base, base + pos, ts, 0)
        return pos, need

    # -- pcapng ------------------------------------------------------------------

    def _pcapng_chunk(self, buf: bytearray, have: int, base: int) -> tuple[int, int]:
        sec: Any = getattr(self, "_section", None)
        e = sec._e if sec is not None else "<"
        head = struct.Struct(e + "II").unpack_from
        offs: list[int] = []
        pos = 0
        need = 12
        while pos + 12 <= have:
            btype, blen = head(buf, pos)
            if btype == PCAPNG_SHB:
                self._flush(buf, have, base, offs, pos)
                offs = []
                bom = struct.unpack_from("<I", buf, pos + 8)[0]
                if self.problem is not None or bom not in (PCAPNG_BOM, 0x4D3C2B1A):
                    self.problem = self.problem or (f"{self.name}: offset {base + pos + 8}: "
                                                    f"bad byte-order magic 0x{bom:08x}")
                    break
                e = "<" if bom == PCAPNG_BOM else ">"
                head = struct.Struct(e + "II").unpack_from
                btype, blen = head(buf, pos)
            elif sec is None:
                self.problem = f"{self.name}: offset 0: pcapng file does not start with a " \
                               "section header"
                break
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                self.problem = (f"{self.name}: offset {base + pos}: absurd block length {blen} "
                                f"(block type 0x{btype:x})")
                break
            end = pos + blen
            if end > have:
                need = blen
                break
            if btype in _PACKET_BLOCKS and (blen >= 16 or btype not in _CUSTOM_BLOCKS):
                offs.append(pos)
            else:
                try:
                    sec = self._other_block(sec, bytes(buf[pos:end]), base + pos, e)
                except RawlabError as exc:
                    self.problem = exc.message
                    break
            pos = end
        self._flush(buf, have, base, offs, pos)
        return pos, need

    def _other_block(self, sec: Any, block: bytes, at: int, e: str) -> Any:
        """A block that is not a packet: its framing checked as the reader checks it, a
        section header or an interface description read; returns the current section."""
        btype, blen = struct.unpack_from(e + "II", block)
        trailer = struct.unpack_from(e + "I", block, blen - 4)[0]
        if blen > 12 and trailer != blen:
            raise RawlabError(f"{self.name}: offset {at + blen - 4}: block length {blen} and "
                              f"trailing length {trailer} differ", Exit.BAD_INPUT)
        if btype == PCAPNG_IDB:
            self._idb(sec, block[8:-4], at)
        elif btype == PCAPNG_SHB:
            sec = self._new_section(block[8:-4], at, e)
        return sec

    def _new_section(self, body: bytes, at: int, e: str) -> Any:
        sec: Any = PcapngReader.__new__(PcapngReader)
        CaptureReader.__init__(sec, None, self.name, b"", close=False)  # type: ignore[arg-type]
        sec._factors = []
        # the reader's count of sections (its SHB adds one): records say their section
        prev = getattr(self, "_section", None)
        sec._section = prev._section if prev is not None else -1
        sec._order(e)
        sec._shb(body, at)
        sec.global_ids = []
        self._section = sec
        return sec

    def _idb(self, sec: Any, body: bytes, at: int) -> None:
        sec._idb(body, at)
        local = sec.interfaces[-1]
        sec.global_ids.append(len(self.interfaces))
        self.interfaces.append(dataclasses.replace(local, id=len(self.interfaces)))

    def _flush(self, buf: bytearray, have: int, base: int, offs: list[int], end: int) -> None:
        """The records of one section seen in this chunk, as one page."""
        if not offs:
            return
        sec: Any = self._section
        if self._first:
            self._python_page(sec, buf, base, offs, end)
            return
        import numpy as np

        o = np.array(offs, dtype=np.int64)
        words = _words(buf, have, sec._e)
        if (words[o] == PCAPNG_EPB).all():  # block type, length, interface, ts high, ts low
            local = words[o + 8].astype(np.int64)
            lens = words[o + 4].astype(np.int64)
            bad = self._bad_epb(offs, base, local, lens, words[o + lens - 4], words[o + 20],
                                len(sec.interfaces))
            if bad is not None:
                offs, o, local, end = offs[:bad], o[:bad], local[:bad], offs[bad]
                if not offs:
                    return
            ticks = words[o + 12].astype(np.uint64) << np.uint64(32) | words[o + 16]
            del words
            ts = self._ticks_ns(sec, local, ticks)
        else:  # simple or obsolete packet blocks among them: the reader's own methods
            del words
            self._python_page(sec, buf, base, offs, end)
            return
        glob = np.array(sec.global_ids, dtype=np.uint16)[local]
        self._add(o, base, base + end, ts, glob, sec)

    def _python_page(self, sec: Any, buf: bytearray, base: int, offs: list[int],
                     end: int) -> None:
        """A page made record by record with the reader's block methods (the first chunk,
        before numpy is imported; simple and obsolete packet blocks)."""
        recs = []
        for x in offs:
            n = struct.unpack_from(sec._e + "I", buf, x + 4)[0]
            try:
                recs.append(self._block(sec, bytes(buf[x:x + n]), base + x))
            except RawlabError as exc:
                self.problem = exc.message
                break
        if recs:
            stop = [*offs, end][len(recs)]
            self._add_small(offs[:len(recs)], base, base + stop, [r.ts_ns for r in recs],
                            [r.interface for r in recs], sec)

    def _add_small(self, offs: Any, base: int, end: int, ts: list[int], iface: Any,
                   section: Any = None) -> None:
        """A page of plain arrays (made without numpy): 64-bit timestamps."""
        if not isinstance(iface, int):
            iface = iface[0] if len(set(iface)) == 1 else array.array(
                "H" if min(iface) >= 0 else "i", iface)
        page = _Page(self._count, base, array.array("I", offs), end, 0,
                     array.array("q", ts), 0, iface, section)
        self._pages.append(page)
        self._firsts.append(page.first)
        self._count += len(offs)

    def _bad_epb(self, offs: list[int], base: int, local: Any, lens: Any, trailers: Any,
                 caplens: Any, interfaces: int) -> int | None:
        """The first of these enhanced packet blocks the reader would refuse (its ``problem``
        set, in the reader's words), or None."""
        import numpy as np

        wrong = (local >= interfaces) | (trailers != lens) | (caplens > lens - 32)
        if not wrong.any():
            return None
        k = int(np.argmax(wrong))
        at = base + offs[k]
        if trailers[k] != lens[k]:
            what = (f"offset {at + int(lens[k]) - 4}: block length {int(lens[k])} and trailing "
                    f"length {int(trailers[k])} differ")
        elif local[k] >= interfaces:
            what = f"offset {at}: packet for interface {int(local[k])}, but only {interfaces} " \
                   "defined"
        else:
            what = f"offset {at}: absurd captured length {int(caplens[k])} in a " \
                   f"{int(lens[k])}-byte block"
        self.problem = f"{self.name}: {what}"
        return k

    @staticmethod
    def _ticks_ns(sec: Any, local: Any, ticks: Any) -> Any:
        """Nanoseconds from each interface's ticks (if_tsresol, if_tsoffset)."""
        import numpy as np

        ts = np.empty(len(ticks), dtype=np.int64)
        for n in np.unique(local):
            mul, div, off_ns = sec._factors[int(n)]
            sel = local == n
            t = ticks[sel]
            if int(t.max()) <= (2**63 - 1 - abs(off_ns)) // mul:
                ts[sel] = (t.astype(np.int64) * mul) // div + off_ns
            else:  # absurd resolutions: exact integers, kept within int64
                vals = [min(max((int(x) * mul) // div + off_ns, -(2**63)), 2**63 - 1)
                        for x in t.tolist()]
                ts[sel] = np.array(vals, dtype=np.int64)
        return ts
