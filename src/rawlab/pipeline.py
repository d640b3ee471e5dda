"""Records in, outputs out: the two loops every command that reads packets shares.

    packets:  records ─▶ [filter] ─▶ [attribute] ─▶ [writer] ─▶ decode (once, if a sink
              wants it) ─▶ IP reassembly (analysis.reassembly) ─▶ sinks
    ring:     a capture ring's frames ─▶ [attribute] ─▶ pcapng EPBs (``capture -w`` when
              nothing else wants the packets: no Record, a ring block at a time)
    batches:  Arrow batches (decode/columns.py) ─▶ batch sinks (odd rows per packet inside)
    tcp:      records ─▶ [attribute] ─▶ TcpAnalyzer ─▶ events (one stream, or all) ─▶ sinks

``attribute`` (:class:`rawlab.analysis.processes.Attribution`) sets each record's
``owners`` (the processes at its ends) and may drop it (``--pid`` and the like).

An output is a *sink* given the stream, one hook per event (mitmproxy's
``Dumper``): line, tree, NDJSON and hierarchy sinks for packets
(:mod:`rawlab.present.packet`, :mod:`rawlab.present.hierarchy`); segment/connection
NDJSON, connection table, live lines, ladder, time-sequence plot and follow
for TCP events (:mod:`rawlab.present.tcp`, :mod:`rawlab.present.ladder`,
:mod:`rawlab.present.plot`). ``rawlab read`` and ``rawlab capture`` differ only
in their source; ``rawlab tcp FILE`` and ``rawlab tcp -i`` likewise.

Frame numbers count every record of the source (as tshark's frame.number),
so a filtered view keeps the numbers of the whole file. Whatever happens
(an error in the source, Ctrl-C), every record already taken is written, the
writer is flushed and closed (the output file stays valid), and every sink is
closed, so tables and summaries of what was read are printed before the error.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from rawlab.records import CsumHint, Interface, Record

if TYPE_CHECKING:  # the decoder and the analysers are imported only when used
    from rawlab.analysis.processes import Attribution, Entry
    from rawlab.analysis.reassembly import IpReassembly
    from rawlab.analysis.tcp import ConnectionClosed, Event, Handshake, Segment, TcpAnalyzer
    from rawlab.decode.dispatch import Decoder, Packet
    from rawlab.pcap.writer import CaptureWriter, RotatingWriter
    from rawlab.sockets.packet import PacketRing


@dataclass(slots=True)
class Counts:
    seen: int = 0  # records read from the source
    matched: int = 0  # records the filter selected (all, without a filter)
    written: int = 0


class PacketSink(Protocol):
    """An output of :func:`run`: ``packet`` once per selected record, then ``close``."""

    decodes: bool  # True: wants the decoded Packet (else ``pkt`` is None)
    # (optional) ``uses_interface = False``: ``iface`` is not looked up for it (always None)

    def packet(self, frame: int, rec: Record, pkt: Packet | None,
               iface: Interface | None) -> None: ...

    def close(self) -> None: ...


class EventSink(Protocol):
    """An output of :func:`run_tcp`: one hook per analyser event, then ``close``."""

    def segment(self, seg: Segment, rec: Record) -> None: ...

    def handshake(self, hs: Handshake) -> None: ...

    def closed(self, ev: ConnectionClosed) -> None: ...

    def close(self) -> None: ...


def _no_interface(_i: int) -> Interface | None:
    return None


def run(records: Iterable[Record], sinks: Sequence[PacketSink] = (), *,
        expression: str | None = None, count: int | None = None,
        writer: CaptureWriter | RotatingWriter | None = None,
        interfaces: Callable[[int], Interface | None] = _no_interface,
        counts: Counts | None = None,
        attribute: Callable[[Record], bool] | None = None) -> Counts:
    """Push records through filter, attribution and writer into the sinks; return the
    counts.

    `interfaces(n)` names interface n of the source. `counts` may be passed in
    so that a caller still has them when the source raises midway. `attribute(rec)`
    sets ``rec.owners`` and says whether to keep the record. Decoded packets go
    through IP reassembly (tshark's default; see rawlab.analysis.reassembly for what a
    fragment then shows). Sinks see a packet in their order, the same Packet: a first
    sink may add layers the others show (rawlab.analysis.streams.TcpStreams appends the
    application messages a TCP segment completes).
    """
    from rawlab.decode.dispatch import Decoder
    from rawlab.sockets.bpf import OfflineFilter

    c = counts or Counts()
    filt = OfflineFilter(expression) if expression else None
    decoder = Decoder() if any(s.decodes for s in sinks) else None
    decode = decoder.decode if decoder is not None else None
    defrag = _reassembly(decoder).packet if decoder is not None else None
    frag = defrag is not None
    hooks = [s.packet for s in sinks]
    one = hooks[0] if len(hooks) == 1 else None
    named = writer is not None or any(getattr(s, "uses_interface", True) for s in sinks)
    try:
        for rec in records:
            c.seen += 1
            if filt is not None and (rec.block is not None  # a pcapng custom block
                                     or not filt.match(rec.linktype, rec.data, rec.wirelen)):
                continue
            if attribute is not None and not attribute(rec):
                continue
            c.matched += 1
            iface = interfaces(rec.interface) if named else None
            if writer is not None:
                writer.write(rec, iface)
                c.written += 1
            pkt = (decode(rec.data, rec.linktype, CsumHint(rec.csum_status), rec.wirelen)
                   if decode is not None else None)
            if frag:
                for lay in pkt.layers:  # type: ignore[union-attr]
                    if lay.fragmented:  # an IP fragment: reassembly shows it
                        pkt = defrag(c.seen, rec.ts_ns, pkt)  # type: ignore[arg-type,misc]
                        break
            if one is not None:
                one(c.seen, rec, pkt, iface)
            else:
                for hook in hooks:
                    hook(c.seen, rec, pkt, iface)
            if count is not None and c.matched >= count:
                break
    finally:
        try:
            if writer is not None:
                writer.close()
        finally:
            for s in sinks:
                s.close()
    return c


def write_ring(ring: PacketRing, writer: CaptureWriter | RotatingWriter, *,
               count: int | None = None, duration: float | None = None,
               counts: Counts | None = None, attribute: Attribution | None = None,
               on_block: Callable[[], None] | None = None) -> Counts:
    """``capture -w`` to pcapng, or to pcap (``--pcap``, compiled loop only), one file or
    -G/-C/-W's rotation, when no sink wants the packets: each frame's EPB (pcap record)
    is made from the ring's memory in place (no Record, nothing decoded), and
    `attribute` (:meth:`Attribution.reader
    <rawlab.analysis.processes.Attribution.reader>`) is asked about the frame's bytes
    (the copy the EPB takes). The EPBs go to the file 512 at a time and at the end of
    every ring block, which is then flushed: a kill (SIGKILL) loses at most the ring
    block being written (the per-record path's pcapng buffers 64 KiB, its pcap wrote
    each record at once; a stop by signal loses nothing); `on_block` is called after.
    The files' bytes are those :func:`run` writes for the same frames
    (tests/unit/test_write_ring.py). A ring block's frames go through a compiled loop
    (:func:`rawlab._kernels.ring_epbs`, the look-up asked in it: ~90 ns a frame
    offline, a tenth of the interpreted loop's); the interpreted one
    (:meth:`_EpbRun.frames`) is for a big-endian host."""
    c = counts or Counts()
    run = _EpbRun(ring, writer, attribute, on_block, c)
    if run.compiled:
        walk: Any = ring.blocks(duration, run.block_done)
    else:
        walk = ring.frames(count if attribute is None else None, duration, None, run.block_done)
    try:
        (run.blocks if run.compiled else run.frames)(walk, c, count)
    finally:
        walk.close()
        try:
            run.put()
        finally:
            if run.ng is not None:
                run.ng.before_block = None
            writer.close()
    return c


_NEVER = (1 << 63) - 1  # a time stamp no frame reaches (the compiled loop's -G)
_U32 = struct.Struct("<I")  # a TPACKET_V3 frame's tp_next_offset


class _EpbRun:
    """:func:`write_ring`'s loop, the file it writes to now and the EPBs it has made but
    not yet handed over."""

    def __init__(self, ring: PacketRing, writer: CaptureWriter | RotatingWriter,
                 attribute: Attribution | None, on_block: Callable[[], None] | None,
                 counts: Counts) -> None:
        import struct

        from rawlab.pcap.reader import PCAPNG_EPB
        from rawlab.pcap.writer import EPB_FIXED, EPB_HEAD, PAD, RotatingWriter
        from rawlab.sockets.packet.header import _DIRECTION, TP_STATUS_VLAN_VALID
        from rawlab.sockets.packet.ring import vlan_tagged

        self.ring, self.top, self.attribute = ring, writer, attribute
        self.rotating = writer if isinstance(writer, RotatingWriter) else None
        self.on_block = on_block
        self.counts = counts  # ``written`` as the EPBs are handed over (a status line)
        self.parts: list[bytes] = []  # three a frame
        self.out = bytearray()  # the compiled loop's EPBs, self.st[3] of them
        #: the compiled loop's state: the entry and pkttype of the frame before, its
        #: options run, the EPBs in self.out, an entry asked of a frame not yet written,
        #: the EPBs its last call made, the entry, pkttype and run before those
        self.st: list[Any] = [None, -1, b"", 0, None, 0, None, -1, b""]
        self.compiled = self.compiles(ring, self.rotating)
        self.directions = _DIRECTION  # a frame's pkttype & 7 -> its direction
        self.writer: CaptureWriter = writer.current if self.rotating else writer  # type: ignore
        self.pcap = writer.pcap  # classic pcap records (the compiled loop's), not EPBs
        self.ng = self._bind(self.writer)
        # options without owners (pcap has none)
        self.plain = [b"" if self.ng is None else self.ng.tail(None, d) for d in _DIRECTION]
        self.tagged = vlan_tagged
        # the VLAN flag that asks for a tag back (Ethernet only), then the EPB's layout
        self.layout = (TP_STATUS_VLAN_VALID if ring.linktype == 1 else 0, EPB_HEAD.pack,
                       struct.Struct("<I").pack, PAD, EPB_FIXED, PCAPNG_EPB)

    @staticmethod
    def compiles(ring: PacketRing, rotating: RotatingWriter | None) -> bool:
        """Whether the compiled loop reads this ring: on a little-endian host (the
        ring's fields are the host's)."""
        return sys.byteorder == "little"

    def _bind(self, writer: CaptureWriter) -> Any:
        ng = writer.pcapng
        if ng is None:
            if not (self.pcap and self.compiled):
                raise ValueError("write_ring writes pcapng (pcap: on a little-endian host)")
            return None
        ng.before_block = self.put  # an IDB or process block goes after the EPBs before it
        return ng

    def put(self) -> None:
        if self.parts:
            data, n = b"".join(self.parts), len(self.parts) // 3
            self.parts.clear()  # (a failed write raises: these are not handed over again)
            self.counts.written += n
            self.ng.put_epbs(data, n)
        if self.out:
            data, n = bytes(self.out), self.st[3]
            self.out.clear()
            self.st[3] = 0
            self.counts.written += n
            if self.ng is None:
                self.writer.pcap_writer(self.ring.linktype).put_records(data, n)
            else:
                self.ng.put_epbs(data, n)

    def block_done(self) -> None:
        self.put()
        self.top.flush()
        if self.on_block is not None:
            self.on_block()

    def interface(self, n: int) -> int:
        """Interface `n`'s number in the file, its IDB written the first time (pcap:
        the file header, interface 0)."""
        if self.ng is None:
            self.writer.pcap_writer(self.ring.linktype)
            return 0
        return self.writer.interface_index((0, n), self.ring.linktype, self.ring.interface(n))

    def turn(self, ts_ns: int) -> int:
        """-G/-C: when the frame at `ts_ns` goes to a new file, open it (what was made
        before goes to the old one; RotationDone when -W's files are all written); the
        time the file after this one starts."""
        rot = self.rotating
        assert rot is not None
        if rot.size:
            self.put()  # the size a file has reached is counted in whole EPBs
        if rot.due(ts_ns):
            self.put()
            rot.turn(ts_ns)
            if self.ng is not None:
                self.ng.before_block = None
            self.writer = rot.current
            self.ng = self._bind(self.writer)
        return rot.until_ns if rot.seconds and not rot.size else -1

    def frames(self, walk: Iterable[tuple[int, int, int, tuple[Any, ...]]], c: Counts,  # noqa: PLR0915
               count: int | None) -> None:
        """The loop (one screen, inline: a call a frame would cost a tenth of it)."""
        ring, mm, lt = self.ring, self.ring.memory, self.ring.linktype
        vlan, head, u32, pad_of, fixed, epb = self.layout
        plain, put = self.plain, self.parts.append
        last_e: Any = None  # the entry and pkttype of the frame before, its options `tail`
        last_pt = -1
        tail = b""
        at = self.attribute.reader(lt) if self.attribute is not None else None
        per_if = not ring.ifindex  # `any`: each real interface its own number
        numbers: dict[int, int] = {}  # ifindex -> pcapng interface number
        idx = -1
        # -G alone: a frame at or after `until` opens the next file; -C: every frame asks
        until = -1 if self.rotating is not None else 1 << 64
        seen = matched = 0
        try:
            for start, cap, wire, f in walk:
                seen += 1
                ts = f[1] * 1_000_000_000 + f[2]
                if f[5] & vlan:  # the tag the kernel took off, put back
                    data, on_wire = self.tagged(mm[start:start + cap], wire, f)
                    n = len(data)
                else:
                    data, n, on_wire = mm[start:start + cap], cap, wire
                if at is not None:
                    e = at(data, 0, n, ts)
                    if not e[1]:  # a frame of a process not asked for
                        continue
                if ts >= until:
                    w = self.writer
                    until = self.turn(ts)
                    if self.writer is not w:  # a new file: its own IDBs and process blocks
                        numbers.clear()
                        idx, last_e = -1, None
                if per_if:
                    got = numbers.get(f[12])
                    idx = got if got is not None else self._any(numbers, f[12])
                elif idx < 0:
                    idx = self.interface(0)
                if at is None:
                    tail = plain[f[14] & 7]
                elif e is not last_e or f[14] & 7 != last_pt:  # most frames: the flow before
                    last_e, last_pt = e, f[14] & 7
                    tail = self.tail(e, last_pt)
                pad = pad_of[n & 3]
                total = fixed + n + len(pad) + len(tail)
                put(head(epb, total, idx, ts >> 32, ts & 0xFFFFFFFF, n, on_wire))
                put(data)
                put(pad + tail + u32(total))
                matched += 1
                if not matched & 511:
                    self.put()
                if count is not None and matched >= count:
                    break
        finally:
            c.seen += seen
            c.matched += matched

    def blocks(self, walk: Iterable[list[int]], c: Counts, count: int | None) -> None:
        """The compiled loop (rawlab._kernels.ring_epbs) over each block's cursor
        (PacketRing.blocks); here only what it stops for: a run of EPBs to hand over, a
        new file (-G), the interface's IDB, -c."""
        from rawlab._kernels import ring_epbs
        from rawlab.errors import Exit, RawlabError

        ring, st = self.ring, self.st
        mm, lt = ring.memory, ring.linktype
        at = self.attribute.reader(lt) if self.attribute is not None else None
        # `any` to pcapng: ifindex -> interface number
        numbers: dict[int, int] | None = None if ring.ifindex or self.pcap else {}
        fixed = (*ring.keeps, ring.snaplen, self.layout[0], ring.cooked_hdrlen, numbers)
        plain = tuple(self.plain)
        until = -1 if self.rotating is not None else _NEVER
        size = self.rotating.size if self.rotating is not None else 0
        idx = -1  # (an IDB is written with the first frame kept on its interface)
        matched = 0
        checked = False  # the frame waiting passed the new-file test (its IDB is written)
        for cur in walk:
            kept, st[5] = cur[2], 0
            limit = -1 if count is None else count - matched
            # -C: the bytes the file may take before a frame goes to the next one
            room = size - self.writer.bytes - len(self.out) if size else _NEVER
            try:
                _got, stop, ts, ifindex = ring_epbs(
                    mm, cur, (*fixed, idx, until, room, limit, 512, checked, self.pcap),
                    plain, at, self.tail, st, self.out)
            except ValueError as exc:  # (a ring the kernel did not lay out so)
                raise RawlabError(f"capture ring: {exc}", Exit.FAILED) from None
            finally:  # (what a failing call made is counted, as the other loop does)
                c.seen += cur[2] - kept
                c.matched += st[5]
                matched += st[5]
            checked = stop == 4
            if stop == 1:
                self.put()
            elif stop == 2:
                until, turned = self._turn_at(cur, ts, c)
                if turned:  # a new file: its own IDBs
                    idx = -1
                    if numbers is not None:
                        numbers.clear()
            elif stop == 4 and numbers is not None:
                self._any(numbers, ifindex)
            elif stop == 4:
                idx = self.interface(0)
            elif stop == 3:
                break

    def _turn_at(self, cur: list[int], ts: int, c: Counts) -> tuple[int, bool]:
        """-G/-C at the frame waiting at cur[0] (:meth:`turn`): (the time the file
        after the next one starts, whether a new file was opened)."""
        from rawlab.pcap.writer import RotationDone

        w = self.writer
        try:
            self.turn(ts)
        except RotationDone:  # -W's last: the frame waiting is seen, as by the other loop
            cur[0] += _U32.unpack_from(self.ring.memory, cur[0])[0]
            cur[1] -= 1
            cur[2] += 1
            c.seen += 1
            raise
        if self.writer is not w:  # (and its own process blocks)
            self.st[:3] = self.st[6:] = [None, -1, b""]
        rot = self.rotating
        assert rot is not None
        return (rot.until_ns if rot.seconds else _NEVER), self.writer is not w

    def tail(self, e: Entry, pkttype: int) -> bytes:
        """The option run of a frame attributed `e` (Attribution's entry) of `pkttype`."""
        if e[0] is None:
            return self.plain[pkttype]
        return self.ng.tail(e[0], self.directions[pkttype])

    def _any(self, numbers: dict[int, int], ifindex: int) -> int:
        got = numbers[ifindex] = self.interface(self.ring.number(ifindex))
        return got


def app_streams(sinks: Sequence[Any], keylog: Any = None) -> Any:
    """The TCP stream reassembler the application layers need (TLS, HTTP, DNS over TCP:
    rawlab.analysis.streams.TcpStreams, decrypting with ``keylog``) when a sink shows
    decoded packets, else None. The caller makes it :func:`run`'s first sink (the sinks
    after it see the layers it adds), or gives its ``feed`` to a batch sink's per-packet
    rows."""
    if not any(getattr(s, "decodes", False) for s in sinks):
        return None
    from rawlab.analysis.streams import TcpStreams

    return TcpStreams(keylog=keylog)


def lazy_streams(keylog: Any = None) -> Callable[[int, int, Any], None]:
    """:func:`app_streams`' reassembler as a batch sink's ``streams`` (fed the rows of
    the per-packet path), made and imported at the first of them: a file whose every row
    the columns hold never needs it."""
    made: list[Callable[[int, int, Any], None]] = []

    def feed(frame: int, ts_ns: int, pkt: Any) -> None:
        if not made:
            from rawlab.analysis.streams import TcpStreams

            made.append(TcpStreams(keylog=keylog).feed)
        made[0](frame, ts_ns, pkt)

    return feed


def _reassembly(decoder: Decoder) -> IpReassembly:
    from rawlab.analysis.reassembly import IpReassembly

    return IpReassembly(decoder)


class BatchSink(Protocol):
    """An output of :func:`run_batches`: ``batch`` once per batch (its first `rows` rows),
    then ``close``."""

    def batch(self, batch: Any, rows: int | None = None) -> None: ...

    def close(self) -> None: ...


def run_batches(batches: Iterable[Any], sinks: Sequence[BatchSink], *,
                count: int | None = None, counts: Counts | None = None) -> Counts:
    """The columnar path (:mod:`rawlab.decode.columns`): whole batches into the sinks,
    the first `count` rows at most; every sink is closed whatever happens."""
    c = counts or Counts()
    try:
        for batch in batches:
            n = len(batch)
            if count is not None:
                n = min(n, count - c.matched)
            c.seen += n
            c.matched += n
            for s in sinks:
                s.batch(batch, n)
            if count is not None and c.matched >= count:
                break
    finally:
        for s in sinks:
            s.close()
    return c


def run_tcp(records: Iterable[Record], sinks: Sequence[EventSink], *,
            analyzer: TcpAnalyzer | None = None, stream: int | None = None,
            count: int | None = None,
            attribute: Callable[[Record], bool] | None = None) -> TcpAnalyzer:
    """Analyse records in order and hand every event (of `stream`, or all) to the sinks.

    `attribute(rec)` sets ``rec.owners`` first; a record it refuses is counted as a
    frame but not analysed.

    At the end, also when the source raises midway (a truncated file, Ctrl-C), the
    connections still open are closed (reason "end") and every sink is closed: what
    was read is analysed and printed before the error propagates.
    """
    from rawlab.analysis.tcp import TcpAnalyzer

    tcp = analyzer if analyzer is not None else TcpAnalyzer()
    deliver = Deliver(sinks, stream)
    feed = tcp.feed_bytes
    # the common case, one segment for one sink of every stream, without the general walk
    seg_type = deliver.segment_type
    only = deliver.segment_hooks[0] if len(sinks) == 1 and stream is None else None
    try:
        for frame, rec in enumerate(records, 1):
            if attribute is not None and not attribute(rec):
                evs = None
            else:
                evs = feed(frame, rec.ts_ns, rec.data, rec.linktype, rec.csum_status)
            if evs:
                if only is not None and len(evs) == 1 and type(evs[0]) is seg_type:
                    only(evs[0], rec)
                else:
                    deliver(evs, rec)
            if count is not None and frame >= count:
                break
    finally:
        _end_tcp(tcp, deliver, sinks)
    return tcp


def run_tcp_batches(batches: Iterable[Any], sinks: Sequence[EventSink], *,
                    analyzer: TcpAnalyzer | None = None, stream: int | None = None,
                    count: int | None = None) -> TcpAnalyzer:
    """:func:`run_tcp` of a file read as batches of columns (rawlab.decode.columns): the
    same events, the segments the columns hold read from them
    (:meth:`~rawlab.analysis.tcp.TcpAnalyzer.feed_batch`), for sinks that need no record
    beside a segment's fields (its ``rec`` is then None: JSON, the table, the ladder, the
    plot; not a followed stream's payload). The first `count` frames at most; the end
    and errors as run_tcp's."""
    from rawlab.analysis.tcp import TcpAnalyzer

    tcp = analyzer if analyzer is not None else TcpAnalyzer()
    deliver = Deliver(sinks, stream)
    hand = deliver
    if len(sinks) == 1 and stream is None:  # one segment for one sink: its hook, directly
        seg_type, only = deliver.segment_type, deliver.segment_hooks[0]

        def hand(evs: list[Event], rec: Any) -> None:
            if len(evs) == 1 and type(evs[0]) is seg_type:
                only(evs[0], rec)
            else:
                deliver(evs, rec)
    frames = 0
    try:
        for batch in batches:
            n = len(batch) if count is None else min(len(batch), count - frames)
            tcp.feed_batch(batch, n, hand)
            frames += n
            if count is not None and frames >= count:
                break
    finally:
        _end_tcp(tcp, deliver, sinks)
    return tcp


def _end_tcp(tcp: TcpAnalyzer, deliver: Deliver, sinks: Sequence[EventSink]) -> None:
    """The end of input (also a truncated file, Ctrl-C): the connections still open are
    closed (reason "end") and handed on, then every sink is closed, whatever happens."""
    try:
        deliver(tcp.finish(), None)
    finally:
        for s in sinks:
            s.close()


class Deliver:
    """Hands analyser events (of one stream, or all) to every sink's hook for their kind.

    ``deliver(events, rec)``: `rec` is the record the events came from (None for the
    events of a finished list, or of the end of input).
    """

    __slots__ = ("_closed", "_hs", "_hs_type", "segment_hooks", "segment_type", "stream")

    def __init__(self, sinks: Sequence[EventSink], stream: int | None = None) -> None:
        from rawlab.analysis.tcp import Handshake, Segment

        self.segment_type, self._hs_type = Segment, Handshake
        self.segment_hooks = [s.segment for s in sinks]
        self._hs = [s.handshake for s in sinks]
        self._closed = [s.closed for s in sinks]
        self.stream = stream

    def __call__(self, events: Iterable[Any], rec: Record | None) -> None:
        stream = self.stream
        for ev in events:
            if stream is not None and ev.stream != stream:
                continue
            kind = type(ev)
            if kind is self.segment_type:
                for seg_hook in self.segment_hooks:
                    seg_hook(ev, rec)
            else:
                for hook in self._hs if kind is self._hs_type else self._closed:
                    hook(ev)


def replay(events: Iterable[Any], sinks: Sequence[EventSink], *,
           stream: int | None = None) -> None:
    """A finished list of analyser events (e.g. ``analysis.tcp.analyse``) into sinks."""
    try:
        Deliver(sinks, stream)(events, None)
    finally:
        for s in sinks:
            s.close()
