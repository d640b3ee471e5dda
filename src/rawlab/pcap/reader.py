"""Streaming readers for pcap and pcapng files (constant memory, any size).

    from rawlab.pcap.reader import open_file
    with open_file("x.pcapng") as cap:        # a path, or a binary file object
        cap.format                               # "pcap" or "pcapng"
        for rec in cap:                          # rawlab.records.Record
            rec.ts_ns, rec.caplen, rec.wirelen, rec.linktype, rec.interface, rec.data
        cap.interfaces                           # list[Interface] seen so far

pcap: both magics (µs ``a1b2c3d4``, ns ``a1b23c4d``) in both byte orders; a
fraction field of 10^6 (10^9) or more is added as it is (1 s + 1,500,000 µs is
2.5 s), the instant tshark computes with (it also flags such a time invalid).
pcapng: SHB (any byte order, several sections: a later section's records say
which, ``rec.section``, and its interfaces are numbered from 0 again, as tshark's
frame.interface_id), IDB (``if_name``, ``if_description``, ``if_tsresol``,
``if_tsoffset``), EPB (``epb_flags`` direction; the owning processes from rawlab's
``opt_comment`` and Apple's process option: ``rec.owners``), Apple's Darwin process
information block, SPB (no timestamp: ``rec.ts_known`` is False and ``ts_ns`` 0),
the obsolete PB, and custom blocks (0x00000bad, 0x40000bad), which tshark numbers
as frames: each is a record of link type ``PCAPNG_CUSTOM`` holding its custom data,
so frame numbers agree with tshark's. Every other block is skipped.

Bad input raises :class:`~rawlab.errors.RawlabError` with code
``Exit.BAD_INPUT`` and a message ``"FILE: offset N: problem"`` — only after
every good record before the bad one has been yielded. No file is refused for
its link type: records of link types rawlab does not decode are read (and
written back by ``-w``) as they are, as tshark and tcpdump show them.

Memory stays bounded whatever a file claims: lengths from the file are read in
chunks, never allocated up front, and a record may not exceed MAX_RECORD.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rawlab.errors import Exit, RawlabError
from rawlab.pcap.owners import (
    DARWIN_PIB,
    DPIB_NAME,
    EPB_DARWIN_PIB_ID,
    parse_comment,
    with_facts,
)
from rawlab.records import (
    PCAPNG_CUSTOM,
    PCAPNG_CUSTOM_COPY,
    PCAPNG_CUSTOM_NOCOPY,
    PROCESS,
    Direction,
    Interface,
    Owners,
    PcapngRecord,
    Record,
    SocketOwner,
)

CHUNK = 1 << 20
MAX_SNAPLEN = 262144  # libpcap's usual largest; a record above max(this, snaplen) is absurd
MAX_RECORD = 256 << 20  # above libpcap's largest for any link type (D-Bus: 128 MiB)
MAX_BLOCK = 64 << 20  # no sane pcapng block is bigger
_READ_MAX = 8 << 20  # one read() asks for no more than this: a lying length costs nothing

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
PCAPNG_IDB = 0x00000001
PCAPNG_PB = 0x00000002
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9
IF_TSOFFSET = 14
EPB_FLAGS = 2


def _bad(name: str, offset: int, problem: str) -> RawlabError:
    return RawlabError(f"{name}: offset {offset}: {problem}", Exit.BAD_INPUT)


def _read(f: IO[bytes], n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at end of file (pipes return short reads); read in
    pieces of at most 8 MiB, so a length a file lies about allocates nothing."""
    data = f.read(min(n, _READ_MAX))
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = f.read(min(n - got, _READ_MAX))
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _more(f: IO[bytes], have: bytes, need: int) -> bytes:
    """``have`` plus what the file has now, at least ``need`` bytes in all unless at EOF
    (:func:`fill`, as bytes)."""
    return bytes(fill(f, have, need))


def fill(f: IO[bytes], have: bytes | bytearray, need: int) -> bytearray:
    """``have`` plus what the file has now, at least ``need`` bytes in all unless at EOF,
    read in place into one bytearray: the columnar path's chunks (rawlab.decode.columns)
    cost one copy of the file's bytes, where reading then joining cost two and a fresh
    allocation each (0.13 s against 0.04 s for 200 MB).

    Uses ``readinto1`` (``read1``) where it exists so that a pipe (``tcpdump -w - | ...``)
    yields records as they arrive instead of waiting for a whole chunk; asks for at most
    8 MiB at a time, so a length a file lies about allocates no more than it holds.
    """
    from rawlab._kernels import buffer

    into = getattr(f, "readinto1", None) or getattr(f, "readinto", None)
    got = len(have)
    buf = buffer(got + min(max(CHUNK, need - got), _READ_MAX))  # (not zeroed: overwritten)
    buf[:got] = have
    while True:
        if got == len(buf):
            buf.extend(bytes(min(max(CHUNK, need - got), _READ_MAX)))
        if into is not None:
            with memoryview(buf) as view, view[got:] as free:
                k = into(free) or 0
        else:  # (a file object without readinto)
            more = (getattr(f, "read1", None) or f.read)(len(buf) - got)
            k = len(more)
            buf[got:got + k] = more
        if not k:
            break
        got += k
        if got >= need:
            break
    del buf[got:]
    return buf


def ts_factor(tsresol: int) -> tuple[int, int]:
    """(multiply, divide) turning ticks of ``if_tsresol`` into nanoseconds."""
    if tsresol & 0x80:
        return 1_000_000_000, 1 << (tsresol & 0x7F)
    n = tsresol
    if n <= 9:
        return 10 ** (9 - n), 1
    return 1, 10 ** (n - 9)


class CaptureReader:
    """Base: a file opened for reading records; iterate it once."""

    format = ""

    def __init__(self, f: IO[bytes], name: str, head: bytes, *, close: bool) -> None:
        self._f = f
        self.name = name
        self._head = head
        self._close = close
        self.interfaces: list[Interface] = []

    def __iter__(self) -> Iterator[Record]:
        raise NotImplementedError

    def close(self) -> None:
        if self._close:
            self._f.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PcapReader(CaptureReader):
    """Classic libpcap files."""

    format = "pcap"

    def __init__(self, f: IO[bytes], name: str, head: bytes, **kw: Any) -> None:
        super().__init__(f, name, head, **kw)
        hdr = head + _read(f, 24 - len(head))
        if len(hdr) < 24:
            raise _bad(name, len(hdr), f"truncated pcap file header ({len(hdr)} of 24 bytes)")
        magic = struct.unpack_from("<I", hdr)[0]
        if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            self.endian = "<"
        else:
            self.endian = ">"
            magic = struct.unpack_from(">I", hdr)[0]
        self.nanosecond = magic == PCAP_MAGIC_NS
        (_m, self.version_major, self.version_minor, _zone, _sigfigs, self.snaplen,
         network) = struct.unpack_from(self.endian + "IHHiIII", hdr)
        self.linktype = network & 0x0FFFFFFF
        self.fcs_len = (network >> 29) * 2 if network & 0x10000000 else 0
        self.interfaces = [Interface(0, self.linktype, self.snaplen)]

    def __iter__(self) -> Iterator[Record]:
        f, name, lt = self._f, self.name, self.linktype
        rh = struct.Struct(self.endian + "IIII")
        unpack = rh.unpack_from
        mul = 1 if self.nanosecond else 1000
        limit = min(max(self.snaplen, MAX_SNAPLEN), MAX_RECORD)
        buf = b""
        pos = 0
        base = 24  # file offset of buf[0]
        while True:
            if len(buf) - pos < 16:
                base += pos
                buf = _more(f, buf[pos:], 16)
                pos = 0
                if not buf:
                    return
                if len(buf) < 16:
                    raise _bad(name, base, f"truncated record header ({len(buf)} of 16 bytes)")
            sec, frac, incl, orig = unpack(buf, pos)
            if incl > limit:
                raise _bad(name, base + pos,
                           f"absurd record length {incl} (snaplen {self.snaplen})")
            end = pos + 16 + incl
            if end > len(buf):
                base += pos
                buf = _more(f, buf[pos:], 16 + incl)
                pos, end = 0, 16 + incl
                if end > len(buf):
                    raise _bad(name, base, f"truncated record: {incl} bytes captured, "
                               f"{len(buf) - 16} left in the file")
            yield Record((sec * 1_000_000_000 + frac * mul), orig, lt, buf[pos + 16 : end])
            pos = end


class PcapngReader(CaptureReader):
    """pcapng: several sections, interfaces and link types in one file.

    :meth:`__iter__` walks the blocks (:meth:`_next_block` checks the framing) and hands
    each to the method for its type: :meth:`_shb`, :meth:`_idb`, :meth:`_epb`,
    :meth:`_spb`, :meth:`_pb`; blocks of other types are stepped over.
    """

    format = "pcapng"

    def __init__(self, f: IO[bytes], name: str, head: bytes, **kw: Any) -> None:
        super().__init__(f, name, head, **kw)
        self._factors: list[tuple[int, int, int]] = []  # per interface: mul, div, offset_ns
        self._section = -1  # index of the current section (the first SHB makes it 0)
        self._pibs: list[tuple[int, str | None]] = []  # Darwin process blocks: pid, name
        self._facts: dict[tuple[int | None, str | None], SocketOwner] = {}  # from their comments
        self._owners: dict[tuple[Any, ...], Owners | None] = {}
        self._order("<")

    def _order(self, e: str) -> None:
        """The current section's byte order, and its structs (compiled once per section)."""
        self._e = e
        self._u32 = struct.Struct(e + "I").unpack_from
        self._len = struct.Struct(e + "II").unpack_from  # type, length
        self._epb_head = struct.Struct(e + "IIIII").unpack_from

    def __iter__(self) -> Iterator[Record]:
        pending = self._head
        offset = 0
        while True:
            got = self._next_block(pending, offset)
            pending = b""
            if got is None:
                return
            btype, blen, body = got
            rec = self.block(btype, blen, body, offset)
            if rec is not None:
                yield rec
            offset += blen

    def block(self, btype: int, blen: int, body: bytes, offset: int) -> Record | None:
        """One block whose framing is checked (`body`: without the type, the length and
        the trailing length): its Record, or None for a block that only changes the
        reader's state (IDB, SHB: its byte order already set) or that is skipped."""
        if btype == PCAPNG_EPB:
            return self._epb(body, offset, blen)
        if btype == PCAPNG_SPB:
            return self._spb(body, offset)
        if btype == PCAPNG_PB:
            return self._pb(body, offset, blen)
        if btype == PCAPNG_IDB:
            self._idb(body, offset)
        elif btype == PCAPNG_SHB:
            self._shb(body, offset)
        elif btype == DARWIN_PIB:
            self._dpib(body)
        elif btype in (PCAPNG_CUSTOM_COPY, PCAPNG_CUSTOM_NOCOPY) and len(body) >= 4:
            return self._custom(btype, body)  # (one without an enterprise number: skipped)
        return None

    def _next_block(self, pending: bytes, offset: int) -> tuple[int, int, bytes] | None:
        """(type, length, body without the trailing length) of the block at `offset`,
        None at the end of the file; the framing is checked (RawlabError, exit 5)."""
        f, name = self._f, self.name
        hdr = pending + _read(f, 12 - len(pending))
        if not hdr:
            return None
        if len(hdr) < 12:
            raise _bad(name, offset, f"truncated block header ({len(hdr)} of 12 bytes)")
        btype = self._u32(hdr)[0]
        if btype == PCAPNG_SHB:
            bom = struct.unpack_from("<I", hdr, 8)[0]
            if bom == PCAPNG_BOM:
                self._order("<")
            elif bom == 0x4D3C2B1A:
                self._order(">")
            else:
                raise _bad(name, offset + 8, f"bad byte-order magic 0x{bom:08x}")
        elif offset == 0:
            raise _bad(name, 0, "pcapng file does not start with a section header")
        btype, blen = self._len(hdr)
        if blen < 12 or blen % 4 or blen > MAX_BLOCK:
            raise _bad(name, offset, f"absurd block length {blen} (block type 0x{btype:x})")
        rest = _read(f, blen - 12)
        if len(rest) < blen - 12:
            raise _bad(name, offset, f"truncated block: {blen} bytes long, "
                       f"{len(rest) + 12} left in the file")
        if blen == 12:  # a legal empty block: its trailing length is bytes 8..11
            return btype, blen, b""
        body = hdr[8:] + rest[:-4]
        trailer = self._u32(rest, len(rest) - 4)[0]
        if trailer != blen:
            raise _bad(name, offset + blen - 4,
                       f"block length {blen} and trailing length {trailer} differ")
        return btype, blen, body

    def _interface(self, iface: int, offset: int) -> Interface:
        if iface >= len(self.interfaces):
            raise _bad(self.name, offset, f"packet for interface {iface}, "
                       f"but only {len(self.interfaces)} defined")
        return self.interfaces[iface]

    def _ts(self, iface: int, tsh: int, tsl: int) -> int:
        mul, div, off_ns = self._factors[iface]
        return ((tsh << 32 | tsl) * mul) // div + off_ns

    def _epb(self, body: bytes, offset: int, blen: int) -> Record:
        """Enhanced Packet Block: interface, timestamp, lengths, data, options (flags)."""
        if len(body) < 20:
            raise _bad(self.name, offset, "enhanced packet block too short")
        iface, tsh, tsl, caplen, origlen = self._epb_head(body)
        if iface >= len(self.interfaces):
            self._interface(iface, offset)  # raises
        if caplen > len(body) - 20:
            raise _bad(self.name, offset, f"absurd captured length {caplen} "
                       f"in a {blen}-byte block")
        direction = Direction.UNKNOWN
        opt_at = 20 + ((caplen + 3) & ~3)
        notes: list[bytes | int] | None = None
        if opt_at + 4 <= len(body):
            for code, val in _options(body, opt_at, self._e):
                if code == EPB_FLAGS and len(val) >= 4:
                    direction = self._u32(val)[0] & 3
                elif code == OPT_COMMENT or (code == EPB_DARWIN_PIB_ID and len(val) >= 4):
                    notes = notes or []
                    notes.append(val if code == OPT_COMMENT else self._u32(val)[0])
        mul, div, off_ns = self._factors[iface]
        if self._section:  # a later section: the record says which
            rec: Record = PcapngRecord(((tsh << 32 | tsl) * mul) // div + off_ns, origlen,
                                       self.interfaces[iface].linktype, body[20 : 20 + caplen],
                                       iface, direction, section=self._section)
        else:
            rec = Record(((tsh << 32 | tsl) * mul) // div + off_ns, origlen,
                         self.interfaces[iface].linktype, body[20 : 20 + caplen], iface,
                         direction)
        if notes is not None:
            rec.owners = self._owners_of(tuple(notes), direction)
        return rec

    def _owners_of(self, notes: tuple[bytes | int, ...], direction: int) -> Owners | None:
        """The owners a packet's comments (rawlab's) or Darwin process option say; one
        tuple per distinct set of notes, so packets of a flow share it."""
        key = (*notes, direction)
        if key in self._owners:
            return self._owners[key]
        ends: list[SocketOwner | None] = [None, None]
        for n in notes:
            got = parse_comment(n.decode("utf-8", "replace")) if isinstance(n, bytes) else None
            if got is not None:
                o = got[1]
                ends[got[0] == "dst"] = with_facts(o, self._facts.get((o.pid, o.comm)))
        pib = next((n for n in notes if isinstance(n, int)), None)
        if ends == [None, None] and pib is not None and pib < len(self._pibs):
            pid, name = self._pibs[pib]  # Apple: the packet's process, on this host's side
            ends[direction == Direction.INBOUND] = SocketOwner(PROCESS, pid, comm=name)
        owners: Owners | None = None if ends == [None, None] else (ends[0], ends[1])
        if len(self._owners) > 4096:
            self._owners.clear()
        self._owners[key] = owners
        return owners

    def _dpib(self, body: bytes) -> None:
        """Darwin Process Information Block (Apple): a process id and its name."""
        if len(body) < 4:
            return
        opts = dict(_options(body, 4, self._e))
        pid, name = self._u32(body)[0], _text(opts.get(DPIB_NAME))
        self._pibs.append((pid, name))
        got = parse_comment("src " + (_text(opts.get(OPT_COMMENT)) or ""))
        if got is not None and (got[1].pid, got[1].comm) == (pid, name):
            self._facts[(pid, name)] = got[1]

    def _spb(self, body: bytes, offset: int) -> Record:
        """Simple Packet Block: interface 0, no timestamp (``ts_known`` False, ``ts_ns`` 0),
        length cut to its snaplen."""
        if not self.interfaces:
            raise _bad(self.name, offset, "simple packet block before any interface")
        if len(body) < 4:
            raise _bad(self.name, offset, "simple packet block too short")
        origlen = struct.unpack_from(self._e + "I", body)[0]
        caplen = min(origlen, len(body) - 4)
        snap = self.interfaces[0].snaplen
        if snap:
            caplen = min(caplen, snap)
        return PcapngRecord(0, origlen, self.interfaces[0].linktype, body[4 : 4 + caplen], 0,
                            section=self._section, ts_known=False)

    def _custom(self, btype: int, body: bytes) -> Record:
        """A custom block: its custom data (after the enterprise number) as a record of
        link type PCAPNG_CUSTOM, as tshark numbers it (no interface, no timestamp)."""
        pen = self._u32(body)[0]
        data = body[4:]
        return PcapngRecord(0, len(data), PCAPNG_CUSTOM, data, -1, section=self._section,
                            ts_known=False, block=(btype, pen))

    def _pb(self, body: bytes, offset: int, blen: int) -> Record:
        """The obsolete Packet Block (16-bit interface id, drops count)."""
        if len(body) < 20:
            raise _bad(self.name, offset, "packet block too short")
        iface, _drops, tsh, tsl, caplen, origlen = struct.unpack_from(self._e + "HHIIII", body)
        ifc = self._interface(iface, offset)
        if caplen > len(body) - 20:
            raise _bad(self.name, offset, f"absurd captured length {caplen} "
                       f"in a {blen}-byte block")
        return PcapngRecord(self._ts(iface, tsh, tsl), origlen, ifc.linktype,
                            body[20 : 20 + caplen], iface, section=self._section)

    def _idb(self, body: bytes, offset: int) -> None:
        """Interface Description Block: link type, snaplen, name, timestamp resolution."""
        e = self._e
        if len(body) < 8:
            raise _bad(self.name, offset, "interface description block too short")
        lt, _res, snap = struct.unpack_from(e + "HHI", body)
        opts = tuple(_options(body, 8, e))
        d = dict(opts)
        tsresol = d[IF_TSRESOL][0] if d.get(IF_TSRESOL) else 6
        tsoff = struct.unpack(e + "q", d[IF_TSOFFSET][:8])[0] if len(
            d.get(IF_TSOFFSET, b"")) >= 8 else 0
        self.interfaces.append(Interface(len(self.interfaces), lt, snap, _text(d.get(IF_NAME)),
                                         _text(d.get(IF_DESCRIPTION)), tsresol, tsoff, opts))
        mul, div = ts_factor(tsresol)
        self._factors.append((mul, div, tsoff * 1_000_000_000))

    def _shb(self, body: bytes, offset: int) -> None:
        """Section Header Block: a new section forgets the interfaces of the one before."""
        if len(body) < 4:
            raise _bad(self.name, offset, "section header block too short")
        major = struct.unpack_from(self._e + "H", body, 4)[0]
        if major != 1:
            raise _bad(self.name, offset, f"unsupported pcapng version {major}")
        self.interfaces = []
        self._factors = []
        self._section += 1
        self._pibs = []
        self._facts = {}


def _text(v: bytes | None) -> str | None:
    return None if v is None else v.decode("utf-8", "replace").rstrip("\x00")


def _options(body: bytes, pos: int, e: str) -> Iterator[tuple[int, bytes]]:
    """(code, value) pairs from ``body[pos:]``; stops quietly at anything odd."""
    n = len(body)
    h = struct.Struct(e + "HH")
    while pos + 4 <= n:
        code, ln = h.unpack_from(body, pos)
        if code == OPT_ENDOFOPT:
            return
        if pos + 4 + ln > n:
            return
        yield code, body[pos + 4 : pos + 4 + ln]
        pos += 4 + ((ln + 3) & ~3)


def open_file(source: str | Path | IO[bytes]) -> CaptureReader:
    """Open a pcap or pcapng file (chosen by its magic); raises RawlabError if it is neither."""
    if isinstance(source, str | Path):
        name = str(source)
        try:
            f: IO[bytes] = open(source, "rb")  # noqa: SIM115 - the reader owns and closes it
        except OSError as exc:
            raise RawlabError(f"{name}: cannot open: {exc.strerror}", Exit.BAD_INPUT,
                              errno_=exc.errno) from exc
        close = True
    else:
        f = source
        name = str(getattr(source, "name", "<stream>"))
        close = False
    try:
        head = _read(f, 4)
        if len(head) < 4:
            what = "empty file" if not head else f"only {len(head)} bytes"
            raise _bad(name, 0, f"not a capture file ({what})")
        le, be = struct.unpack("<I", head)[0], struct.unpack(">I", head)[0]
        if le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) or be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            return PcapReader(f, name, head, close=close)
        if le == PCAPNG_SHB:
            return PcapngReader(f, name, head, close=close)
        raise _bad(name, 0, f"not a pcap or pcapng file (magic 0x{be:08x})")
    except BaseException:
        if close:
            f.close()
        raise


def read_records(source: str | Path | IO[bytes]) -> Iterator[Record]:
    """Every record of a capture file, then close it."""
    with open_file(source) as cap:
        yield from cap
