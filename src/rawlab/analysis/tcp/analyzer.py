"""The TCP analyser: packets in, :mod:`events <rawlab.analysis.tcp.events>` out (sans I/O).

Per segment: find or start the connection (:mod:`~rawlab.analysis.tcp.table`),
Wireshark's sequence analysis (:mod:`~rawlab.analysis.tcp.sequence`,
:mod:`~rawlab.analysis.tcp.expert`), the ACK it carries (:mod:`~rawlab.analysis.tcp.rtt`),
the rest of ``dissect_tcp``'s first pass (relative numbers, window scaling,
completeness, the options each side offered), Zeek's history
(:mod:`~rawlab.analysis.tcp.zeek`), then the handshake and close events.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

from rawlab.analysis.reassembly import IpReassembly
from rawlab.analysis.seq import seq_ge
from rawlab.analysis.tcp.events import (
    Connection,
    ConnectionClosed,
    Event,
    Handshake,
    Segment,
)
from rawlab.analysis.tcp.expert import (
    _NAME_CACHE,
    A_ACK_LOST_PACKET,
    A_LOST_PACKET,
    A_RETRANSMITTED,
    A_REUSED_PORTS,
    analysis_names,
)
from rawlab.analysis.tcp.sequence import MAX_TCP_SACK_RANGES, Flow, segment
from rawlab.analysis.tcp.table import Conn, ConnTable, canonical
from rawlab.analysis.tcp.zeek import history, refresh
from rawlab.decode import descent
from rawlab.decode.checksum import Verdict, known_verdict, verify_l4
from rawlab.decode.descent import FRAG_LATER, FRAG_MORE, TSO, encapsulates, walk
from rawlab.decode.tcp import ACK, CWR, ECE, FIN, RST, SYN, SYN_ACK, options_summary

_TCP = struct.Struct("!HHIIHH")  # sport, dport, seq, ack, offset+flags, window
_FRAGMENT = FRAG_LATER | FRAG_MORE
_BAD = Verdict.BAD
_GAP = A_LOST_PACKET | A_ACK_LOST_PACKET  # what a capture drop explains


Fields = tuple[bytes, bytes, tuple[int, ...], int, dict[str, Any], Verdict]


def packet_fields(pkt: Any) -> Fields | None:
    """What the analyser reads of one decoded packet (rawlab.decode.dispatch.Packet):
    ``(src, dst, hdr, l4, opts, csum)`` — addresses, the header's ``(sport, dport, seq,
    ack, offset and flags, window)``, TCP header and payload bytes by the IP length, the
    options summary and the checksum verdict; None when it is no TCP segment the analyser
    takes (not TCP, a segment an ICMP error quotes, IP fragments, a broken header)."""
    layers = pkt.layers[: pkt.quoted]  # not a segment an ICMP error quotes
    i = next((j for j, lay in enumerate(layers) if lay.name == "tcp"), -1)
    if i < 1:
        return None
    ip, tcp = layers[i - 1], layers[i]
    whole = pkt.reassembled is not None and pkt.reassembled.at == i - 1
    if ip.name == "ipv4":
        if (ip.more_fragments or ip.frag_offset) and not whole:
            return None
        l4 = ip.total_length - ip.hlen if ip.total_length and not whole else len(tcp.buf)
    elif ip.name == "ipv6":
        if ip.fragment is not None and not whole:
            return None
        l4 = (ip.payload_length - (ip.hlen - 40) if ip.payload_length and not whole
              else len(tcp.buf))
    else:
        return None
    if tcp.dataofs < 5 or len(tcp.buf) < 20:
        return None
    cs = pkt.checksum("tcp")
    hdr = (tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.dataofs << 12 | tcp.flags, tcp.window)
    return (bytes(ip.src), bytes(ip.dst), hdr, l4, tcp.summary,
            cs.verdict if cs is not None else Verdict.UNVERIFIED)


def segment_fields(data: bytes, linktype: int, hint: int = 0,
                   reassembly: IpReassembly | None = None, frame: int = 0,
                   ts_ns: int = 0) -> Fields | None:
    """:func:`packet_fields` from the captured bytes: the headers are found by
    :func:`rawlab.decode.descent.walk`; shapes it does not know, tunnels and (given a
    ``reassembly``) IP fragments are decoded, a fragmented segment taken on the frame that
    completes it."""
    w = walk(data, linktype)
    if w is not None:
        _net, _o, proto, t, stop, marks = w
        n = len(data)
        if proto == 6 and not marks & _FRAGMENT and (stop if stop < n else n) - t >= 20:
            return _walked(data, w, hint)
        if not ((marks & _FRAGMENT and reassembly is not None)
                or (proto != 6 and encapsulates(w, data))):  # a fragment, or a tunnel
            return None
    pkt = descent.decode(data, linktype, hint)
    if reassembly is not None:
        pkt = reassembly.packet(frame, ts_ns, pkt)
    return packet_fields(pkt)


def _walked(data: bytes, w: tuple[int, ...], hint: int) -> Fields | None:
    """:func:`segment_fields` of a plain TCP segment the walk found."""
    net, o, _proto, t, stop, marks = w
    hdr = _TCP.unpack_from(data, t)
    hl = (hdr[4] >> 12) * 4
    if hl < 20:
        return None
    if net == 0x0800:  # ETH_P_IP
        src, dst = data[o + 12:o + 16], data[o + 16:o + 20]
    else:
        src, dst = data[o + 8:o + 24], data[o + 24:o + 40]
    csum = known_verdict(hint, marks & TSO, stop <= len(data))
    if csum is None:
        csum = verify_l4(6, src, dst, data[t:stop], 16).verdict
    opts = options_summary(data[t + 20:t + hl]) if hl > 20 else {}
    return src, dst, hdr, stop - t, opts, csum


class TcpAnalyzer:
    """Sans-I/O TCP analyser: ``feed`` packets in capture order, get events back."""

    def __init__(self, idle_timeout_ns: int | None = 300 * 10**9,
                 max_connections: int = 1_000_000, close_linger_ns: int = 120 * 10**9,
                 reassemble: bool = True) -> None:
        self.idle_timeout_ns = idle_timeout_ns
        #: IP reassembly for the bytes path (tshark's default): a segment sent in fragments
        #: is analysed on the packet that completes it
        self.reassembly = IpReassembly() if reassemble else None
        self.close_linger_ns = close_linger_ns
        self._table = ConnTable(max_connections)
        self._streams = 0
        self._pending_drops = 0
        self._sweep = 0

    # ---- public API ---------------------------------------------------------------------

    @property
    def max_connections(self) -> int:
        return self._table.max_connections

    def note_capture_drops(self, n: int) -> None:
        """The capture engine lost ``n`` packets since the last call (live capture)."""
        if n > 0:
            self._pending_drops += n

    @property
    def live_connections(self) -> int:
        return len(self._table)

    def connections(self) -> list[Connection]:
        """Connections still tracked (open, or closed and lingering), with state refreshed."""
        out = []
        for c in self._table.conns():
            refresh(c)
            out.append(c.conn)
        return out

    def finish(self) -> list[ConnectionClosed]:
        """End of input: a ConnectionClosed for every connection not yet reported."""
        out = [c.close(c.conn.last_ts_ns, "end")
               for c in sorted(self._table.conns(), key=lambda c: c.conn.stream)
               if c.closed_at is None]
        self._table.clear()
        return out

    @property
    def streams(self) -> int:
        """How many streams (tcp.stream numbers 0 .. streams - 1) were seen so far."""
        return self._streams

    def feed(self, frame: int, ts_ns: int, pkt: Any) -> list[Event]:
        """Events for one decoded packet (rawlab.decode.dispatch.Packet); [] if not TCP."""
        got = packet_fields(pkt)
        return self._feed(frame, ts_ns, *got) if got is not None else []

    def feed_bytes(self, frame: int, ts_ns: int, data: bytes, linktype: int,
                   hint: int = 0) -> list[Event]:
        """Like :meth:`feed` from the captured bytes (:func:`segment_fields`, with this
        analyser's IP reassembly)."""
        got = segment_fields(data, linktype, hint, self.reassembly, frame, ts_ns)
        return self._feed(frame, ts_ns, *got) if got is not None else []

    def feed_batch(self, batch: Any, n: int,
                   deliver: Callable[[list[Event], Any], None]) -> None:
        """The first `n` rows of a batch of columns (rawlab.decode.columns.Batch), in
        order, as :meth:`feed_bytes` of each would: each row's events handed to
        ``deliver(events, record)`` before the next row is fed (a Connection they carry
        changes), the record None where the columns held the segment
        (:func:`rawlab.analysis.tcp.frontend.batch_fields`)."""
        from rawlab.analysis.tcp.frontend import batch_fields

        feed = self._feed
        for piece in batch_fields(batch, n, self.reassembly):
            for frame, ts, src, dst, hdr, l4, opts, csum, rec in piece:
                evs = feed(frame, ts, src, dst, hdr, l4, opts, csum)
                if evs:
                    deliver(evs, rec)

    def feed_record(self, frame: int, rec: Any) -> list[Event]:
        """:meth:`feed_bytes` of a :class:`rawlab.records.Record`."""
        return self.feed_bytes(frame, rec.ts_ns, rec.data, rec.linktype, rec.csum_status)

    # ---- one segment --------------------------------------------------------------------

    def _feed(self, frame: int, ts: int, src: bytes, dst: bytes, hdr: tuple[int, ...],
              l4: int, opts: dict[str, Any], csum: Verdict) -> list[Event]:
        """``hdr``: (sport, dport, seq, ack, offset and flags, window); ``l4``: TCP header
        and payload bytes by the IP length; ``opts``: the options summary."""
        out: list[Event] = []
        self._sweep += 1
        if self._sweep >= 256:
            self._sweep = 0
            self._table.expire(ts, self.idle_timeout_ns, self.close_linger_ns, out)
        sport, dport, seq, ack, off, win = hdr
        flags = off & 0x1FF
        got = self._table.find(src, sport, dst, dport)
        if got is None or flags & SYN:  # new, or a SYN on a known 4-tuple
            c, d, taflags, is_new = self._connection(frame, ts, src, dst, hdr, flags, got, out)
        else:
            c, d = got
            taflags, is_new = 0, False
        seglen = l4 - (off >> 12) * 4
        if seglen < 0:  # header longer than the IP packet: tshark skips the analysis too
            return out
        fwd, rev = c.flows[d], c.flows[1 - d]
        seg, taflags, rtt = segment(fwd, rev, frame, ts, c.conn.stream, d, src, sport, dst,
                                    dport, seq, ack, flags, seglen, win, csum, opts,
                                    c.first_rtt, taflags, Segment)
        c.conn.completeness |= _COMPLETENESS[
            flags & _COMPLETENESS_FLAGS | (0x20 if seglen else 0) | (0x40 if is_new else 0)]
        if flags & SYN or fwd.is_first_ack or not c.first_rtt:
            _handshake_marks(c, d, flags, seq, frame, ts)
        if opts:  # window scale and SACK blocks
            w = opts.get("wscale")
            if w is not None:
                fwd.win_scale = min(w, 14)
            fwd.sack = opts.get("sack", ())[:MAX_TCP_SACK_RANGES - 1]
        else:
            fwd.sack = ()
        if flags & SYN:
            _offered(c, d, flags, opts)
        self._count(c, seg, taflags, rtt)
        out.append(seg)
        if not c.hs_done and flags & ACK:
            _handshake(c, d, flags, ack, frame, out)
        if flags & (FIN | RST) or rev.fin_seq is not None:
            _close(c, d, hdr, seglen, ts, out)
        return out

    def _connection(self, frame: int, ts: int, src: bytes, dst: bytes, hdr: tuple[int, ...],
                    flags: int, got: tuple[Conn, int] | None,
                    out: list[Event]) -> tuple[Conn, int, int, bool]:
        """The segment's connection and direction (``got``: what the table found), the
        TCP_A_REUSED_PORTS bit if it starts a new stream on a known 4-tuple, and whether
        it is the connection's first segment (Wireshark's rules in dissect_tcp: a SYN
        with a new ISN is a new stream; a retransmitted SYN restores the next expected
        sequence number)."""
        if got is None:
            c, d = self._new(frame, ts, src, dst, hdr, flags, out)
            return c, d, 0, True
        c, d = got
        fwd = c.flows[d]
        seq = hdr[2]
        synack = flags & SYN_ACK
        if synack == SYN and fwd.base_set:
            if seq == fwd.base:  # SYN retransmission: restore nextseq (issue 17616)
                fwd.nextseq = fwd.maxseqtobeacked
                return c, d, 0, False
            # a new connection on the same ports (tshark: reused ports)
            if c.closed_at is None:
                out.append(c.close(ts, "reused"))
            self._table.drop(c)
            c, d = self._new(frame, ts, src, dst, hdr, flags, out)
            c.conn.completeness = 1
            return c, d, A_REUSED_PORTS, False
        if synack == SYN_ACK and fwd.base_set and seq != fwd.base:
            fwd.base = seq
            return c, d, A_REUSED_PORTS, False
        return c, d, 0, False

    def _new(self, frame: int, ts: int, src: bytes, dst: bytes, hdr: tuple[int, ...],
             flags: int, out: list[Event]) -> tuple[Conn, int]:
        """Start tracking a connection at this segment; the segment's direction."""
        sport, dport = hdr[0], hdr[1]
        flipped = (flags & SYN_ACK) == SYN_ACK  # first seen a SYN-ACK: sender = server
        client, server = ((dst, dport), (src, sport)) if flipped else ((src, sport), (dst, dport))
        conn = Connection(self._streams, client, server, 4 if len(src) == 4 else 6, ts, ts,
                          frame)
        self._streams += 1
        if flipped:
            conn.history = "^"
        d = 1 if flipped else 0
        key, bit = canonical(src, sport, dst, dport)
        c = Conn(conn, key, d ^ bit)
        evicted = self._table.add(c)
        if evicted is not None:
            out.append(evicted)
        return c, d

    def _count(self, c: Conn, seg: Segment, taflags: int, rtt: int | None) -> None:
        """Capture loss, expert names, per-side statistics and Zeek history of a segment."""
        loss = False
        conn = c.conn
        d = seg.dir
        flags = seg.flags
        seglen = seg.len
        st = conn.stats[d]
        st.segments += 1
        st.bytes += seglen
        st.flags_seen |= flags
        if rtt is not None:
            conn.stats[1 - d].add_rtt(rtt)
        if taflags:
            if taflags & _GAP and self._pending_drops:
                self._pending_drops -= 1
                seg.capture_loss = loss = True
            if taflags & A_RETRANSMITTED:
                st.retransmissions += 1
            names = _NAME_CACHE.get(taflags) or analysis_names(taflags)
            seg.analysis = names
            counts = conn.analysis_counts
            for nm in names:
                counts[nm] = counts.get(nm, 0) + 1
        conn.last_ts_ns = seg.ts_ns
        conn.last_frame = seg.frame
        history(c, d, flags, seglen, seg.window_raw, taflags, seg.checksum_status is _BAD, loss)


def _completeness(is_new: bool, flags: int, seglen: int) -> int:
    """Wireshark's ``tcp.completeness`` bits a segment adds."""
    synack = flags & SYN_ACK
    comp = 0
    if is_new:
        if synack == SYN:
            comp |= 1
            if seglen > 0:
                comp |= 8
    else:
        if synack == SYN_ACK:
            comp |= 2
        elif synack == ACK:
            comp |= 8 if seglen > 0 else 4
        if flags & (FIN | ACK) == FIN | ACK:
            comp |= 16
        if flags & RST:
            comp |= 32
    return comp


# _completeness() of every case, by FIN SYN RST ACK | 0x20 data | 0x40 new
_COMPLETENESS_FLAGS = FIN | SYN | RST | ACK
_COMPLETENESS = [_completeness(bool(i & 0x40), i & _COMPLETENESS_FLAGS, i & 0x20)
                 for i in range(0x80)]


def _handshake_marks(c: Conn, d: int, flags: int, seq: int, frame: int, ts: int) -> None:
    """The SYN and SYN-ACK of each side, and the initial RTT at the first ACK after a SYN."""
    fwd = c.flows[d]
    if flags & SYN:
        if not flags & ACK:
            c.mru_syn = ts
            fwd.saw_syn = True
            if not c.hs_frames[0]:
                c.hs_frames[0] = frame
        else:
            fwd.saw_synack = True
            c.synack_seq[d] = seq
            if not c.hs_frames[1]:
                c.hs_frames[1] = frame
        fwd.is_first_ack = True
    elif flags & ACK:
        if c.mru_syn and not c.first_rtt:
            c.first_rtt = ts - c.mru_syn
            c.conn.irtt_ns = c.first_rtt or None
        fwd.is_first_ack = False


def _offered(c: Conn, d: int, flags: int, opts: dict[str, Any]) -> None:
    """What a SYN or SYN-ACK offers (SideOptions), and whether windows are scaled."""
    fwd: Flow = c.flows[d]
    rev = c.flows[1 - d]
    if fwd.win_scale == -1:
        fwd.win_scale = rev.win_scale = -2
    elif flags & ACK and rev.win_scale == -2:
        fwd.win_scale = -2
    so = c.conn.options[d]
    so.mss = opts.get("mss", so.mss)
    if "wscale" in opts:
        so.wscale = opts["wscale"]
    so.sack_perm = so.sack_perm or "sack_perm" in opts
    so.timestamps = so.timestamps or "ts" in opts
    so.ecn = so.ecn or (flags & (ECE | CWR) == ECE | CWR if not flags & ACK
                        else bool(flags & ECE))


def _handshake(c: Conn, d: int, flags: int, ack: int, frame: int, out: list[Event]) -> None:
    """A Handshake event when this segment completes one (or a simultaneous open)."""
    if c.hs_done or not flags & ACK:
        return
    ss = c.synack_seq
    if flags & SYN:
        done = ss[0] is not None and ss[1] is not None  # simultaneous open: both sent SYN-ACK
    else:
        other = ss[1 - d]
        done = (c.flows[1 - d].saw_synack and c.flows[d].saw_syn and other is not None
                and ack == (other + 1) & 0xFFFFFFFF)
    if done:
        c.hs_done = True
        out.append(Handshake(c.conn.stream, c.first_rtt or None,
                             (c.hs_frames[0], c.hs_frames[1], frame)))


def _close(c: Conn, d: int, hdr: tuple[int, ...], seglen: int, ts: int,
           out: list[Event]) -> None:
    """A ConnectionClosed event at a RST, or when both FINs are acknowledged."""
    fwd, rev = c.flows[d], c.flows[1 - d]
    flags = hdr[4] & 0x1FF
    if flags & FIN:
        fwd.fin_seq = (hdr[2] + seglen) & 0xFFFFFFFF
    if flags & ACK and rev.fin_seq is not None and seq_ge(hdr[3], (rev.fin_seq + 1) & 0xFFFFFFFF):
        rev.fin_acked = True
    if c.closed_at is not None:
        return
    if flags & RST:
        out.append(c.close(ts, "rst"))
    elif fwd.fin_acked and rev.fin_acked:
        out.append(c.close(ts, "fin"))


def analyse(records: Iterable[Any]) -> list[Event]:
    """Every event of a finite run of records (rawlab.records.Record), numbered
    from 1, with the connections still open closed at the end."""
    analyzer = TcpAnalyzer()
    out: list[Event] = []
    for frame, rec in enumerate(records, 1):
        out.extend(analyzer.feed_record(frame, rec))
    out.extend(analyzer.finish())
    return out
