"""pcapng and pcap writers that leave a valid file behind whatever happens.

    from rawlab.pcap.writer import PcapngWriter, PcapWriter
    with PcapngWriter("out.pcapng") as w:                 # a path, or a binary file object
        i = w.add_interface(LinkType.ETHERNET, name="veth0", snaplen=262144)
        w.write(i, ts_ns, data, wirelen=len(data), direction=Direction.INBOUND)
        w.write_record(rec)          # a Record: one IDB per (rec.interface, rec.linktype)

    with PcapWriter("out.pcap", LinkType.ETHERNET) as w:  # ns-resolution magic by default
        w.write(ts_ns, data, wirelen)

    w = CaptureWriter("out.pcapng")        # what -w writes: pcapng (pcap=True: pcap), one IDB
    w.write(rec, iface)                    # per interface of the source (per section of a
                                           # multi-section file), opened on first use; a
                                           # record without a timestamp as an SPB where it
                                           # can be, a copyable custom block as itself
    w = RotatingWriter("cap-%H%M%S.pcapng", seconds=60)     # tcpdump -G

A record with ``owners`` (``--processes``) gets one ``opt_comment`` per owned end and
Apple's process block and EPB option (:mod:`rawlab.pcap.owners`).

Every block (pcapng) or record (pcap) reaches the operating system whole, in
one ``write()``: a file cut short by Ctrl-C, SIGTERM, SIGKILL or a crash of the
process ends on a block boundary and stays readable. ``buffer_bytes`` (default
0: write every block at once) lets a converter batch blocks; a batch is still
written in one call. IDBs use ``if_tsresol`` = 9 (nanoseconds).
"""

from __future__ import annotations

import os
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Self

from rawlab import __version__
from rawlab.errors import Exit, RawlabError, output_error
from rawlab.pcap.owners import (
    DARWIN_PIB,
    EPB_DARWIN_PIB_ID,
    dpib_body,
    facts_comment,
    owner_comment,
)
from rawlab.pcap.reader import (
    EPB_FLAGS,
    IF_DESCRIPTION,
    IF_NAME,
    IF_TSRESOL,
    OPT_COMMENT,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    PCAPNG_BOM,
    PCAPNG_EPB,
    PCAPNG_IDB,
    PCAPNG_SHB,
    PCAPNG_SPB,
)
from rawlab.records import (
    PCAPNG_CUSTOM_COPY,
    PROCESS,
    Direction,
    Interface,
    Owners,
    Record,
    SocketOwner,
)

DEFAULT_SNAPLEN = 262144
SHB_USERAPPL = 4

# an Enhanced Packet Block: EPB_HEAD (type, length, interface, timestamp high and low
# words, captured and original length), the data padded to 4 bytes (PAD[caplen & 3]), the
# options run, the length again; the length is EPB_FIXED + caplen + padding + options
_EPB = struct.Struct("<IIIIIII")
EPB_HEAD = _EPB
EPB_FIXED = 32
_PAD = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")
PAD = _PAD
_END = b"\x00\x00\x00\x00"  # opt_endofopt
_U32 = struct.Struct("<I").pack


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + _PAD[len(value) & 3]


# an EPB's whole option run for each direction alone: epb_flags, then the end marker
_FLAGS = tuple(_option(EPB_FLAGS, struct.pack("<I", d)) + _END for d in range(4))


def _block(btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


class _Sink:
    """A destination that only ever receives whole blocks.

    The file is created when the writer is made (an unwritable path fails at once).
    ``buffer_bytes`` > 0 gathers blocks and writes them in one call. When a write
    fails (disk full, I/O error), a regular file is cut back to its last whole block,
    so every record before it reads, and the error says so (exit code OUTPUT);
    nothing more is written after that.
    """

    def __init__(self, dest: str | Path | IO[bytes], buffer_bytes: int, *,
                 blocks: bool = False, records: bool = False) -> None:
        self._blocks = blocks  # pcapng: a piece may hold several blocks (each says its length)
        self._records = records  # pcap: a piece may hold several records (each its caplen)
        if isinstance(dest, str | Path):
            self.name = str(dest)
            try:
                self._f: IO[bytes] = open(dest, "wb", buffering=0)  # noqa: SIM115
            except OSError as exc:
                raise output_error(exc, f"open {self.name} for writing") from None
            self._own = True
        else:
            self._f = dest
            self.name = str(getattr(dest, "name", "<stream>"))
            self._own = False
        self._buf = bytearray()
        self._ends: list[int] = []  # where each block in _buf ends
        self._limit = buffer_bytes
        self._pos = 0  # bytes of whole blocks known to be written
        self.closed = False
        self.failed = False
        self.bytes = 0  # everything put so far (written or buffered)

    def put(self, block: bytes) -> None:
        if self.failed:
            return
        self.bytes += len(block)
        self._buf += block
        self._ends.append(len(self._buf))
        if len(self._buf) >= self._limit:
            self.flush()

    def _write(self, data: bytearray, ends: list[int]) -> None:
        mv = memoryview(data)
        done = 0
        try:
            while done < len(data):
                n = self._f.write(mv[done:])
                if n is None:  # non-blocking raw stream with nothing written
                    continue
                done += n
            if not self._own:
                self._f.flush()
        except OSError as exc:
            self.failed = True
            whole = self._whole(data, ends, done)
            raise output_error(exc, f"write {self.name}", self._cut(self._pos + whole)) from None
        self._pos += done

    def _whole(self, data: bytearray, ends: list[int], done: int) -> int:
        """How much of `data` (pieces ending at `ends`) the first `done` bytes hold whole:
        pieces, and in pcapng the blocks inside a piece (a run of EPBs put at once)."""
        whole = max((e for e in ends if e <= done), default=0)
        while self._blocks and whole + 8 <= done:
            n = int.from_bytes(data[whole + 4:whole + 8], "little")
            if n < 12 or whole + n > done:
                break
            whole += n
        while self._records and self._pos + whole >= 24 and whole + 16 <= done:
            n = 16 + int.from_bytes(data[whole + 8:whole + 12], "little")  # (the file
            if whole + n > done:                                          # header: a piece)
                break
            whole += n
        return whole

    def _cut(self, size: int) -> str:
        """Truncate a regular file to `size` bytes; say what the file now holds."""
        try:
            if not size or not self._own or not os.path.isfile(self.name):
                return ""
            os.ftruncate(self._f.fileno(), size)
        except OSError:
            return ""
        return f"{self.name} keeps its first {size} bytes, every whole block before the fault"

    def flush(self) -> None:
        if self._buf and not self.failed:
            data, ends = self._buf, self._ends
            self._buf, self._ends = bytearray(), []
            self._write(data, ends)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.flush()
        finally:
            self.closed = True
            if self._own:
                try:
                    self._f.close()
                except OSError:
                    pass


class _FileWriter:
    """What both formats' writers share: the sink, its name and size, flush and close."""

    _sink: _Sink

    @property
    def name(self) -> str:
        return self._sink.name

    @property
    def bytes(self) -> int:
        """The file's size so far (written or buffered)."""
        return self._sink.bytes

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        self._sink.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PcapngWriter(_FileWriter):
    """Writes one section: SHB, then IDBs as sources appear, then EPBs."""

    def __init__(self, dest: str | Path | IO[bytes], *, buffer_bytes: int = 0,
                 application: str | None = None) -> None:
        self._sink = _Sink(dest, buffer_bytes, blocks=True)
        self._snaplens: list[int] = []
        self._auto: dict[tuple[int, int, int], int] = {}
        # (pid, comm) -> its Darwin block's index, and the namespace that block says
        self._pibs: dict[tuple[int, str], tuple[int, tuple[int | None, str | None]]] = {}
        # id(owners) -> (owners, the whole option run per epb_flags direction)
        self._owner_opts: dict[int, tuple[Owners, list[bytes | None]]] = {}
        # an end's comment option by what it says (a new connection of the same process
        # is a new owner object with the same words)
        self._comment_opts: dict[tuple[Any, ...], bytes] = {}
        self._last: tuple[Owners | None, int, bytes] = (None, 0, b"")  # the last hit
        # called before a block of the writer's own (an interface or process block) is
        # put: a caller holding EPBs it made (put_epbs) hands them over first, in order
        self.before_block: Callable[[], None] | None = None
        app = application or f"rawlab {__version__}"
        body = (struct.pack("<IHHq", PCAPNG_BOM, 1, 0, -1)
                + _option(SHB_USERAPPL, app.encode()) + _option(0, b""))
        self._sink.put(_block(PCAPNG_SHB, body))
        self.count = 0

    def _put_own(self, block: bytes) -> None:
        if self.before_block is not None:
            self.before_block()
        self._sink.put(block)

    @property
    def interface_count(self) -> int:
        return len(self._snaplens)

    def add_interface(self, linktype: int, name: str | None = None, *,
                      snaplen: int = DEFAULT_SNAPLEN, description: str | None = None) -> int:
        """Write an IDB (nanosecond timestamps) and return its interface number."""
        if not 0 <= linktype <= 0xFFFF:
            raise RawlabError(f"link type {linktype} does not fit a pcapng interface block "
                              "(16 bits); fix: write pcap (--pcap)", Exit.BAD_INPUT)
        opts = b""
        if name:
            opts += _option(IF_NAME, name.encode())
        if description:
            opts += _option(IF_DESCRIPTION, description.encode())
        opts += _option(IF_TSRESOL, b"\x09") + _option(0, b"")
        self._put_own(_block(PCAPNG_IDB, struct.pack("<HHI", linktype, 0, snaplen) + opts))
        self._snaplens.append(snaplen)
        return len(self._snaplens) - 1

    def write(self, interface: int, ts_ns: int, data: bytes | bytearray | memoryview,
              wirelen: int | None = None, direction: int = Direction.UNKNOWN,
              options: bytes = b"") -> None:
        """One EPB. ``wirelen`` defaults to ``len(data)``; ``options``: more encoded
        options (without the end marker)."""
        if not 0 <= interface < len(self._snaplens):
            raise ValueError(f"interface {interface} was never added")
        if options:
            tail = (_FLAGS[direction & 3][:-4] if direction else b"") + options + _END
        else:
            tail = _FLAGS[direction & 3] if direction else b""
        self._epb(interface, ts_ns, data, wirelen, tail)

    def _epb(self, interface: int, ts_ns: int, data: bytes | bytearray | memoryview,
             wirelen: int | None, tail: bytes) -> None:
        """One EPB whose options, end marker included, are ``tail`` (made once, reused)."""
        caplen = len(data)
        ts = min(max(ts_ns, 0), (1 << 64) - 1)  # what 64 bits of nanoseconds can say
        pad = _PAD[caplen & 3]
        total = EPB_FIXED + caplen + len(pad) + len(tail)
        self._sink.put(
            _EPB.pack(PCAPNG_EPB, total, interface, ts >> 32, ts & 0xFFFFFFFF, caplen,
                      caplen if wirelen is None else max(wirelen, caplen))
            + bytes(data) + pad + tail + _U32(total)
        )
        self.count += 1

    def write_simple(self, data: bytes | bytearray | memoryview, wirelen: int) -> None:
        """One Simple Packet Block (interface 0, no timestamp)."""
        if not self._snaplens:
            raise ValueError("a simple packet block needs interface 0")
        pad = _PAD[len(data) & 3]
        body = struct.pack("<I", max(wirelen, len(data))) + bytes(data) + pad
        self._sink.put(_block(PCAPNG_SPB, body))
        self.count += 1

    def write_custom(self, btype: int, pen: int, data: bytes | bytearray | memoryview) -> None:
        """One custom block (its custom data after the enterprise number, padded)."""
        self._sink.put(_block(btype, struct.pack("<I", pen) + bytes(data)
                              + _PAD[len(data) & 3]))

    def write_record(self, rec: Record, interface: int | None = None) -> None:
        """Write a Record; without ``interface``, one IDB per (rec.section, rec.interface,
        rec.linktype)."""
        if interface is None:
            key = (rec.section, rec.interface, rec.linktype)
            interface = self._auto.get(key)
            if interface is None:
                interface = self._auto[key] = self.add_interface(rec.linktype)
        elif not 0 <= interface < len(self._snaplens):
            raise ValueError(f"interface {interface} was never added")
        if not rec.ts_known and interface == 0:
            self.write_simple(rec.data, rec.wirelen)
            return
        self._epb(interface, rec.ts_ns, rec.data, rec.wirelen, self.tail(rec.owners, rec.direction))

    def tail(self, owners: Owners | None, direction: int) -> bytes:
        """An EPB's whole option run (epb_flags for `direction` 1 or 2, who owns its ends,
        the end marker; b"" when there is none), made once per owners and reused."""
        d = direction & 3
        if owners is None:
            return _FLAGS[d] if d else b""
        last = self._last  # most packets are of the same flow as the one before
        if owners is last[0] and d == last[1]:
            return last[2]
        hit = self._owner_opts.get(id(owners))
        if hit is None or hit[0] is not owners:
            hit = self._owner_opts[id(owners)] = (owners, [None, None, None, None])
            if len(self._owner_opts) > 4096:
                self._owner_opts.clear()
        tail = hit[1][d]
        if tail is None:  # the options (flags first, end marker last), made once per owners
            tail = hit[1][d] = (_FLAGS[d][:-4] if d else b"") + self.owner_options(owners) + _END
        self._last = (owners, d, tail)
        return tail

    def put_epbs(self, blocks: bytes, n: int) -> None:
        """`n` EPBs made by the caller (:data:`EPB_HEAD`, the data, :data:`PAD`, a
        :meth:`tail`, the length again), in one piece."""
        self._sink.put(blocks)
        self.count += n

    def owner_options(self, owners: Owners) -> bytes:
        """The EPB options saying who owns the packet's ends (a Darwin process block, with
        the process's facts in its comment, is written the first time a process
        appears)."""
        opts = b""
        said = self._comment_opts
        sender = None
        for end, o in zip(("src", "dst"), owners, strict=True):
            if o is None:
                continue
            where = None
            if o.state == PROCESS and o.pid is not None:
                idx, where = self._process_block(o)
                if sender is None:
                    sender = idx
            # (what owner_comment says of an end: who, the uid when no process, where
            # unless its process block says so)
            k = (end, o.state, o.comm, o.pid, o.uid if o.state != PROCESS else None,
                 o.netns, o.netns_name)
            opt = said.get(k)
            if opt is None:
                if len(said) > 4096:
                    said.clear()
                opt = said[k] = _option(OPT_COMMENT, owner_comment(end, o, where=where).encode())
            opts += opt
        if sender is not None:
            opts += _option(EPB_DARWIN_PIB_ID, struct.pack("<I", sender))
        return opts

    def _process_block(self, o: SocketOwner) -> tuple[int, tuple[int | None, str | None]]:
        """The index of the Darwin process block of `o`'s process (written the first
        time it appears, its facts and the namespace of `o`'s socket in its comment),
        and the namespace that block says."""
        key = (o.pid or 0, o.comm or "")
        got = self._pibs.get(key)
        if got is None:
            got = self._pibs[key] = (len(self._pibs), (o.netns, o.netns_name))
            self._put_own(_block(DARWIN_PIB, dpib_body(*key, facts_comment(o))))
        return got



class PcapWriter(_FileWriter):
    """Classic pcap: one link type per file (nanosecond magic unless ``nanosecond=False``)."""

    def __init__(self, dest: str | Path | IO[bytes], linktype: int, *,
                 snaplen: int = DEFAULT_SNAPLEN, nanosecond: bool = True,
                 buffer_bytes: int = 0) -> None:
        self._sink = _Sink(dest, buffer_bytes, records=True)
        self.linktype = linktype
        self.snaplen = snaplen
        self.nanosecond = nanosecond
        magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
        self._sink.put(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self._rec = struct.Struct("<IIII")
        self.count = 0

    def write(self, ts_ns: int, data: bytes | bytearray | memoryview,
              wirelen: int | None = None) -> None:
        ts = min(max(ts_ns, 0), 0xFFFFFFFF * 1_000_000_000)  # 32 bits of seconds
        sec, frac = divmod(ts, 1_000_000_000)
        if not self.nanosecond:
            frac //= 1000
        caplen = len(data)
        self._sink.put(self._rec.pack(sec & 0xFFFFFFFF, frac, caplen,
                                      caplen if wirelen is None else max(wirelen, caplen))
                       + bytes(data))
        self.count += 1

    def put_records(self, records: bytes, n: int) -> None:
        """`n` records made by the caller (the 16-byte header of :meth:`write`, the
        data), in one piece."""
        self._sink.put(records)
        self.count += n

    def write_record(self, rec: Record) -> None:
        if rec.linktype != self.linktype:
            raise RawlabError(
                f"{self.name}: a pcap file holds one link type ({self.linktype}), "
                f"this packet is link type {rec.linktype}; write pcapng instead",
                Exit.BAD_INPUT)
        self.write(rec.ts_ns, rec.data, rec.wirelen)



class CaptureWriter:
    """What ``-w`` writes: pcapng (interface names and link types kept) or plain pcap.

    ``path`` "-" writes to standard output. The file is created at once, so an
    unwritable path fails before anything is captured; a pcap file's header is written
    with the first packet's link type (or ``linktype``, when known ahead).
    """

    def __init__(self, path: str, *, pcap: bool = False, linktype: int | None = None):
        self.path = path
        self.pcap = pcap
        self._ng: PcapngWriter | None = None
        self._pc: PcapWriter | None = None
        self._ifmap: dict[tuple[int, int], int] = {}
        dest: str | IO[bytes] = sys.stdout.buffer if path == "-" else path
        self._dest = dest
        if not pcap:
            self._ng = PcapngWriter(dest, buffer_bytes=1 << 16)
        elif linktype is not None:
            self._pc = PcapWriter(dest, linktype)
        elif isinstance(dest, str):
            _Sink(dest, 0).close()  # create it now: a bad path fails before the capture

    def write(self, rec: Record, iface: Interface | None) -> None:
        block = rec.block
        if block is not None:  # a custom block: pcapng copies it when it may be copied
            if not self.pcap and block[0] == PCAPNG_CUSTOM_COPY:
                assert self._ng is not None
                self._ng.write_custom(block[0], block[1], rec.data)
            return
        if self.pcap:
            self.pcap_writer(rec.linktype).write_record(rec)
            return
        assert self._ng is not None
        key = (rec.section, rec.interface)  # a later section numbers its interfaces anew
        idx = self._ifmap.get(key)
        if idx is None:
            idx = self.interface_index(key, rec.linktype, iface)
        self._ng.write_record(rec, interface=idx)

    def interface_index(self, key: tuple[int, int], linktype: int,
                        iface: Interface | None) -> int:
        """The pcapng interface number of the source's interface `key` (section,
        interface), its IDB written the first time it is asked for."""
        idx = self._ifmap.get(key)
        if idx is None:
            assert self._ng is not None
            idx = self._ng.add_interface(
                linktype, iface.name if iface else None,
                snaplen=iface.snaplen if iface and iface.snaplen else DEFAULT_SNAPLEN)
            self._ifmap[key] = idx
        return idx

    @property
    def pcapng(self) -> PcapngWriter | None:
        """The pcapng writer (None when writing pcap)."""
        return self._ng

    @property
    def in_place(self) -> bool:
        """Whether frames can be written without Records (rawlab.pipeline.write_ring):
        pcapng, or pcap on a little-endian host (its compiled loop)."""
        return self._ng is not None or sys.byteorder == "little"

    def pcap_writer(self, linktype: int) -> PcapWriter:
        """The pcap writer, its file header written with `linktype` the first time it is
        asked for (what the first packet does on the per-record path)."""
        if self._pc is None:
            self._pc = PcapWriter(self._dest, linktype)
        return self._pc

    @property
    def bytes(self) -> int:
        """The file's size so far (written or buffered)."""
        w = self._ng or self._pc
        return w.bytes if w is not None else 0

    def flush(self) -> None:
        for w in (self._ng, self._pc):
            if w is not None:
                w.flush()

    def close(self) -> None:
        for w in (self._ng, self._pc):
            if w is not None:
                w.close()


def refuse_overwrite(out: str, inputs: list[str]) -> None:
    """Refuse to write `out` when it is one of the files being read (``-w`` would
    truncate the input before a byte of it was read)."""
    if out == "-" or not os.path.exists(out):
        return
    for path in inputs:
        try:
            same = path != "-" and os.path.samefile(out, path)
        except OSError:
            continue
        if same:
            raise RawlabError(f"-w {out} is the file being read: writing it would destroy it; "
                              "fix: write to another name", Exit.USAGE)


class RotationDone(Exception):
    """-G with -W: the last file is complete (tcpdump exits then): stop capturing."""


class RotatingWriter:
    """tcpdump's -G (time), -C (size) and -W (file count) over one -w name.

    * ``seconds`` (-G): a new file every `seconds` of capture time, named by
      ``strftime(pattern)``. Unlike tcpdump, a pattern without a ``%`` conversion gets
      ``-%Y%m%d-%H%M%S`` before its extension, so a rotation never overwrites the file
      before it. With ``files`` (-W) and no ``size``, capturing stops once that many
      files are full (:class:`RotationDone`), as tcpdump exits.
    * ``size`` (-C, bytes): once a file has passed `size` (by less than one packet), a
      new file: the first is the name itself, then name1, name2 ... (tcpdump's names).
      With ``files`` (-W) the names are name0 .. name<W-1>, reused in a ring (the
      oldest is overwritten), numbers zero-padded to W's width, as tcpdump does.
    * Both: size rotation inside each time slot (numbers after the strftime name).

    Each file is a complete, valid capture (pcapng, or pcap with ``pcap=True``).
    ``opener(name)``: another kind of file (write, flush, close, bytes), named the same way
    (``capture --parquet -G``).
    """

    def __init__(self, pattern: str, seconds: int | None = None, *, size: int | None = None,
                 files: int | None = None, pcap: bool = False,
                 opener: Callable[[str], Any] | None = None):
        if seconds and "%" not in pattern:
            stem, dot, ext = pattern.rpartition(".")
            pattern = f"{stem}-%Y%m%d-%H%M%S.{ext}" if dot and stem else f"{pattern}-%Y%m%d-%H%M%S"
        self.pattern = pattern
        self.seconds = seconds
        self.size = size
        self.limit = files
        self.pcap = pcap
        self.opener = opener
        self.current: Any = None
        self.until_ns = 0
        self.files: list[str] = []  # every name opened, in order (a ring repeats names)
        self._slot_ns = 0  # when the current time slot began
        self._n = 0  # size rotations within the slot
        self._slot_start(time.time_ns())  # the first file now: a bad path fails at once

    def _slot_start(self, ts_ns: int) -> None:
        start = ts_ns // 1_000_000_000
        self.until_ns = (start + self.seconds) * 1_000_000_000 if self.seconds else 0
        self._slot_ns = ts_ns
        self._n = 0
        self._open(self._name(ts_ns, 0))

    def _name(self, slot_ns: int, n: int) -> str:
        base = (time.strftime(self.pattern, time.localtime(slot_ns // 1_000_000_000))
                if self.seconds else self.pattern)
        if not self.size:
            return base
        if self.limit:  # a ring of W names, padded to W's width
            return f"{base}{n % self.limit:0{len(str(self.limit - 1))}d}"
        return base if n == 0 else f"{base}{n}"

    def _open(self, name: str) -> None:
        if self.current is not None:
            self.current.close()
        self.current = (CaptureWriter(name, pcap=self.pcap) if self.opener is None
                        else self.opener(name))
        self.files.append(name)

    def write(self, rec: Record, iface: Interface | None) -> None:
        if self.due(rec.ts_ns):
            self.turn(rec.ts_ns)
        assert self.current is not None
        self.current.write(rec, iface)

    @property
    def in_place(self) -> bool:
        """Whether frames can be written without Records (rawlab.pipeline.write_ring):
        files of the writer's own, pcapng or (on a little-endian host) pcap."""
        return self.opener is None and (not self.pcap or sys.byteorder == "little")

    def due(self, ts_ns: int) -> bool:
        """Whether a packet of `ts_ns` goes to a new file (:meth:`turn` opens it)."""
        return bool((self.seconds and ts_ns >= self.until_ns) or (
            self.size and self.current is not None and self.current.bytes > self.size))

    def turn(self, ts_ns: int) -> None:
        """Open the file a packet of `ts_ns` goes to (it is :meth:`due`): the next time
        slot's, or the next by size; RotationDone when -W's time slots are all written."""
        if self.seconds and ts_ns >= self.until_ns:
            if self.limit and not self.size and len(self.files) >= self.limit:
                raise RotationDone(f"{self.limit} files of {self.seconds} s written")
            self._slot_start(ts_ns)
        else:
            self._n += 1  # as tcpdump: a file already past the size gets no more packets
            self._open(self._name(self._slot_ns, self._n))

    def flush(self) -> None:
        if self.current is not None:
            self.current.flush()

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
