"""TCP connection tracking and Wireshark's sequence analysis, sans I/O.

    from rawlab.analysis.tcp import TcpAnalyzer, Segment, Handshake, ConnectionClosed
    tcp = TcpAnalyzer(idle_timeout_ns=300 * 10**9, max_connections=100_000)
    for frame, rec in enumerate(records, 1):
        for ev in tcp.feed(frame, rec.ts_ns, decoder.decode(rec.data, rec.linktype)):
            ...                      # Segment, Handshake, ConnectionClosed
        # or, faster (parses only the headers it needs; same events):
        events = tcp.feed_bytes(frame, rec.ts_ns, rec.data, rec.linktype, rec.csum_status)
    tcp.note_capture_drops(n)        # live capture: the kernel dropped n packets since last call
    for ev in tcp.finish(): ...      # ConnectionClosed for every connection still open

Rules are those of Wireshark 4.0's ``tcp_analyze_sequence_number`` (epan/
dissectors/packet-tcp.c, 4.0.17) with its default preferences (relative
sequence numbers, bytes in flight from segments, fast retransmission checked
before out-of-order), including the conversation rules of ``dissect_tcp``
(a SYN with a new ISN on a known 4-tuple starts a new stream: ``reused_ports``;
a retransmitted SYN restores the next expected sequence number). Sequence
numbers in the rules are raw 32-bit values compared wrap-safely (``GT_SEQ``).
Where rawlab differs from tshark on purpose it says so in
``tests/privileged/test_tcp_tshark.py`` and ``captures/README.md``:

* ``analysis`` names a fast or spurious retransmission together with
  ``retransmission``, as tshark's ``tcp.analysis.retransmission`` field does.
* IP fragments are not reassembled: a TCP segment in fragments is skipped.
* Connections idle longer than ``idle_timeout_ns`` (and closed ones, after
  ``close_linger_ns``) are forgotten; a later packet of the same 4-tuple starts
  a new stream where tshark (which keeps everything) would continue the old.

Memory is bounded by the connections alive (plus at most
``TCP_MAX_UNACKED_SEGMENTS`` unacknowledged segments per direction, as in
Wireshark); per packet the work is constant except when acknowledging out of
order segments.
"""

from __future__ import annotations

import bisect
import struct
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rawlab.analysis.seq import HALF, MASK, Seq32, seq_diff, seq_ge, seq_gt, seq_le, seq_lt
from rawlab.decode.checksum import CsumHint, verify_l4_v4, verify_l4_v6

__all__ = [
    "COMPLETENESS",
    "ConnState",
    "Connection",
    "ConnectionClosed",
    "DirStats",
    "Handshake",
    "Segment",
    "Seq32",
    "SideOptions",
    "TcpAnalyzer",
    "analyse",
    "seq_diff",
    "seq_ge",
    "seq_gt",
    "seq_le",
    "seq_lt",
]

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, AE = (1 << i for i in range(9))

# Wireshark's TCP_A_* bits (packet-tcp.c) — kept as ints on the hot path.
A_RETRANSMISSION = 0x0001
A_LOST_PACKET = 0x0002
A_ACK_LOST_PACKET = 0x0004
A_KEEP_ALIVE = 0x0008
A_DUPLICATE_ACK = 0x0010
A_ZERO_WINDOW = 0x0020
A_ZERO_WINDOW_PROBE = 0x0040
A_ZERO_WINDOW_PROBE_ACK = 0x0080
A_KEEP_ALIVE_ACK = 0x0100
A_OUT_OF_ORDER = 0x0200
A_FAST_RETRANSMISSION = 0x0400
A_WINDOW_UPDATE = 0x0800
A_WINDOW_FULL = 0x1000
A_REUSED_PORTS = 0x2000
A_SPURIOUS_RETRANSMISSION = 0x4000

# Order of the names in Segment.analysis (Wireshark's print order).
_NAMES: tuple[tuple[int, str], ...] = (
    (A_REUSED_PORTS, "reused_ports"),
    (A_RETRANSMISSION | A_FAST_RETRANSMISSION | A_SPURIOUS_RETRANSMISSION, "retransmission"),
    (A_FAST_RETRANSMISSION, "fast_retransmission"),
    (A_SPURIOUS_RETRANSMISSION, "spurious_retransmission"),
    (A_OUT_OF_ORDER, "out_of_order"),
    (A_LOST_PACKET, "lost_segment"),
    (A_ACK_LOST_PACKET, "ack_lost_segment"),
    (A_WINDOW_UPDATE, "window_update"),
    (A_WINDOW_FULL, "window_full"),
    (A_KEEP_ALIVE, "keep_alive"),
    (A_KEEP_ALIVE_ACK, "keep_alive_ack"),
    (A_DUPLICATE_ACK, "duplicate_ack"),
    (A_ZERO_WINDOW_PROBE, "zero_window_probe"),
    (A_ZERO_WINDOW, "zero_window"),
    (A_ZERO_WINDOW_PROBE_ACK, "zero_window_probe_ack"),
)
ANALYSIS_NAMES: tuple[str, ...] = tuple(n for _, n in _NAMES)
_NAME_CACHE: dict[int, tuple[str, ...]] = {0: ()}


def analysis_names(bits: int) -> tuple[str, ...]:
    """The Wireshark names for a set of TCP_A_* bits (cached)."""
    got = _NAME_CACHE.get(bits)
    if got is None:
        got = _NAME_CACHE[bits] = tuple(n for b, n in _NAMES if bits & b)
    return got


TCP_MAX_UNACKED_SEGMENTS = 10000  # packet-tcp.h
MAX_TCP_SACK_RANGES = 4  # packet-tcp.h; Wireshark keeps at most 3 of them for bytes in flight
FAST_RTX_NS = 20_000_000  # a fast retransmission follows the last dup ACK within 20 ms
OOO_DEFAULT_NS = 3_000_000  # out-of-order threshold without an iRTT

#: ``tcp.completeness`` bits
COMPLETENESS = {"syn": 1, "syn-ack": 2, "ack": 4, "data": 8, "fin": 16, "rst": 32}


class ConnState:
    """Zeek ``conn_state`` values."""

    S0 = "S0"  # attempt seen, no reply
    S1 = "S1"  # established, not terminated
    SF = "SF"  # established and terminated normally
    REJ = "REJ"  # attempt rejected
    S2 = "S2"  # established, originator's close seen, no reply
    S3 = "S3"  # established, responder's close seen, no reply
    RSTO = "RSTO"  # established, originator aborted (RST)
    RSTR = "RSTR"  # responder sent a RST
    RSTOS0 = "RSTOS0"  # originator sent a SYN then a RST, no SYN-ACK
    RSTRH = "RSTRH"  # responder sent a SYN-ACK then a RST, no SYN seen
    SH = "SH"  # originator sent a SYN then a FIN, no SYN-ACK
    SHR = "SHR"  # responder sent a SYN-ACK then a FIN, no SYN seen
    OTH = "OTH"  # no SYN: midstream


# ---- events ---------------------------------------------------------------------------------

@dataclass(slots=True)
class Segment:
    """One TCP segment as the analyser saw it (tshark's ``tcp.*`` and ``tcp.analysis.*``)."""

    frame: int
    ts_ns: int
    stream: int
    dir: int  # 0 from the client (first SYN's sender, or first sender midstream), 1 server
    src_addr: bytes
    src_port: int
    dst_addr: bytes
    dst_port: int
    seq: int  # raw
    ack: int  # raw
    seq_rel: int
    ack_rel: int  # relative when the ACK flag is set, else the raw field (as tshark)
    next_seq_rel: int  # tcp.nxtseq
    flags: int  # TCP flag bits, scapy order (F S R P A U E C N)
    len: int  # payload bytes (from the IP length, as tshark)
    window: int  # scaled when the scale is known (tcp.window_size)
    window_raw: int  # tcp.window_size_value
    checksum_status: str  # rawlab.decode.checksum.Verdict value
    analysis: tuple[str, ...]
    dup_ack_num: int | None = None
    dup_ack_frame: int | None = None
    ack_rtt_ns: int | None = None
    bytes_in_flight: int | None = None
    capture_loss: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    acked_frame: int | None = None  # tcp.analysis.acks_frame
    family: int = 4
    window_scale: int = -1  # shift used for `window`; -1 unknown, -2 none (Wireshark's codes)


@dataclass(slots=True)
class Handshake:
    """A three-way handshake completed (or a simultaneous open's second SYN-ACK)."""

    stream: int
    irtt_ns: int | None  # first SYN (most recent one) -> handshake's ACK, as tshark's initial_rtt
    frames: tuple[int, ...]  # SYN, SYN-ACK, ACK


@dataclass(slots=True)
class DirStats:
    """What one side sent."""

    segments: int = 0
    bytes: int = 0  # payload, retransmissions included
    retransmissions: int = 0
    rtt_min_ns: int | None = None  # ACK RTT of this side's data (tcp.analysis.ack_rtt)
    rtt_max_ns: int | None = None
    rtt_sum_ns: int = 0
    rtt_samples: int = 0
    flags_seen: int = 0  # OR of the TCP flags this side sent

    @property
    def rtt_avg_ns(self) -> int | None:
        return self.rtt_sum_ns // self.rtt_samples if self.rtt_samples else None

    def add_rtt(self, rtt: int) -> None:
        self.rtt_samples += 1
        self.rtt_sum_ns += rtt
        if self.rtt_min_ns is None or rtt < self.rtt_min_ns:
            self.rtt_min_ns = rtt
        if self.rtt_max_ns is None or rtt > self.rtt_max_ns:
            self.rtt_max_ns = rtt


@dataclass(slots=True)
class SideOptions:
    """What one side offered in its SYN (or SYN-ACK)."""

    mss: int | None = None
    wscale: int | None = None
    sack_perm: bool = False
    timestamps: bool = False
    ecn: bool = False  # SYN with ECE+CWR, or SYN-ACK with ECE


@dataclass(slots=True)
class Connection:
    """One TCP connection (a Wireshark ``tcp.stream``)."""

    stream: int
    client: tuple[bytes, int]
    server: tuple[bytes, int]
    family: int
    first_ts_ns: int
    last_ts_ns: int
    first_frame: int
    last_frame: int = 0
    state: str = ConnState.OTH
    history: str = ""
    irtt_ns: int | None = None
    completeness: int = 0
    stats: tuple[DirStats, DirStats] = field(default_factory=lambda: (DirStats(), DirStats()))
    options: tuple[SideOptions, SideOptions] = field(
        default_factory=lambda: (SideOptions(), SideOptions()))
    analysis_counts: dict[str, int] = field(default_factory=dict)
    closed: str | None = None  # why it ended: "fin", "rst", "idle", "reused", "evicted", "end"

    @property
    def duration_ns(self) -> int:
        return self.last_ts_ns - self.first_ts_ns


@dataclass(slots=True)
class ConnectionClosed:
    """A connection ended (FIN both ways and ACKed, RST), was evicted, or the input ended."""

    connection: Connection

    @property
    def stream(self) -> int:
        return self.connection.stream

    @property
    def reason(self) -> str | None:
        return self.connection.closed


Event = Segment | Handshake | ConnectionClosed


# ---- per-direction and per-connection state -------------------------------------------------

class _Flow:
    """Wireshark's ``tcp_flow_t`` + ``tcp_analyze_seq_flow_info_t`` for one direction."""

    __slots__ = (
        "base",
        "base_set",
        "dupacknum",
        "fin_acked",
        "fin_seq",
        "hist_n",
        "is_first_ack",
        "lastack",
        "lastacktime",
        "lastnondupack",
        "lastsegflags",
        "max_nrel",
        "maxseqtobeacked",
        "nextseq",
        "nextseqframe",
        "nextseqtime",
        "sack",
        "saw_syn",
        "saw_synack",
        "segs",
        "valid_bif",
        "win_scale",
        "window",
    )

    def __init__(self) -> None:
        self.base = 0
        self.base_set = False
        self.nextseq = 0
        self.nextseqframe = 0
        self.nextseqtime = 0
        self.maxseqtobeacked = 0
        self.lastack = 0
        self.lastacktime = 0
        self.lastnondupack = 0
        self.dupacknum = 0
        self.window = 0xFFFFFFFF  # G_MAXUINT32: nothing seen yet
        self.win_scale = -1
        self.is_first_ack = False
        self.lastsegflags = 0
        self.valid_bif = True
        self.segs: list[list[int]] = []  # unacked: [seq - base, nextseq, frame, ts], by seq
        self.max_nrel = 0  # largest nextseq - base among segs
        self.sack: tuple[tuple[int, int], ...] = ()
        self.saw_syn = False
        self.saw_synack = False
        self.fin_seq: int | None = None
        self.fin_acked = False
        self.hist_n: dict[str, int] = {}


class _Conn:
    __slots__ = (
        "closed_at",
        "conn",
        "first_rtt",
        "flows",
        "hs_done",
        "hs_frames",
        "keys",
        "mru_syn",
        "synack_seq",
    )

    def __init__(self, conn: Connection, keys: tuple[Any, Any]) -> None:
        self.conn = conn
        self.keys = keys
        self.flows = (_Flow(), _Flow())
        self.mru_syn = 0  # ts of the most recent pure SYN (0 = none, as Wireshark's nstime)
        self.first_rtt = 0
        self.hs_frames: list[int] = [0, 0]  # SYN, SYN-ACK frames
        self.hs_done = False
        self.synack_seq: list[int | None] = [None, None]  # per dir: raw seq of its SYN-ACK
        self.closed_at: int | None = None


_U16 = struct.Struct("!H")
_TCP = struct.Struct("!HHIIHH")
_II = struct.Struct("!II")
_LOG_LETTERS = frozenset("cgtw")


def _REL(s: list[int]) -> int:
    return s[0]


class TcpAnalyzer:
    """Sans-I/O TCP analyser: ``feed`` packets in capture order, get events back."""

    def __init__(self, idle_timeout_ns: int | None = 300 * 10**9,
                 max_connections: int = 1_000_000, close_linger_ns: int = 120 * 10**9) -> None:
        self.idle_timeout_ns = idle_timeout_ns
        self.max_connections = max_connections
        self.close_linger_ns = close_linger_ns
        self._table: dict[Any, tuple[_Conn, int]] = {}
        self._lru: OrderedDict[int, _Conn] = OrderedDict()  # stream -> conn, least recent first
        self._streams = 0
        self._pending_drops = 0
        self._sweep = 0
        self._decoder: Any = None

    # ---- public API ---------------------------------------------------------------------

    def note_capture_drops(self, n: int) -> None:
        """The capture engine lost ``n`` packets since the last call (live capture)."""
        if n > 0:
            self._pending_drops += n

    @property
    def live_connections(self) -> int:
        return len(self._lru)

    def connections(self) -> list[Connection]:
        """Connections still tracked (open, or closed and lingering), with state refreshed."""
        out = []
        for c in self._lru.values():
            _refresh(c)
            out.append(c.conn)
        return out

    def finish(self) -> list[ConnectionClosed]:
        """End of input: a ConnectionClosed for every connection not yet reported."""
        out = []
        for c in sorted(self._lru.values(), key=lambda c: c.conn.stream):
            if c.closed_at is None:
                c.conn.closed = "end"
                _refresh(c)
                out.append(ConnectionClosed(c.conn))
        self._lru.clear()
        self._table.clear()
        return out

    def feed(self, frame: int, ts_ns: int, pkt: Any) -> list[Event]:
        """Events for one decoded packet (rawlab.decode.dispatch.Packet); [] if not TCP."""
        layers = pkt.layers
        i = next((j for j, lay in enumerate(layers) if lay.name == "tcp"), -1)
        if i < 0:
            return []
        if i == 0:
            return []
        ip = layers[i - 1]
        tcp = layers[i]
        if ip.name == "ipv4":
            if ip.more_fragments or ip.frag_offset:
                return []
            l4 = ip.total_length - ip.hlen if ip.total_length else len(tcp.buf)
            family = 4
        elif ip.name == "ipv6":
            frag = ip.fragment
            if frag is not None:
                return []
            l4 = ip.payload_length - (ip.hlen - 40) if ip.payload_length else len(tcp.buf)
            family = 6
        else:
            return []
        if tcp.dataofs < 5 or len(tcp.buf) < 20:
            return []
        cs = pkt.checksum("tcp")
        csum = cs.verdict.value if cs is not None else "unverified"
        hl = tcp.dataofs * 4
        opts = bytes(tcp.buf[20:hl]) if hl > 20 else b""
        return self._feed(frame, ts_ns, family, bytes(ip.src), bytes(ip.dst), tcp.sport,
                          tcp.dport, tcp.seq, tcp.ack, tcp.flags, tcp.window, l4 - hl, opts,
                          csum)

    def feed_bytes(self, frame: int, ts_ns: int, data: bytes, linktype: int,
                   hint: int = 0) -> list[Event]:
        """Like :meth:`feed` from the captured bytes, parsing only the headers it needs."""
        o = -1
        v = 0
        if linktype == 1:
            if len(data) >= 34:
                et = data[12] << 8 | data[13]
                if et == 0x0800:
                    o, v = 14, 4
                elif et == 0x86DD:
                    o, v = 14, 6
                elif et == 0x8100 and len(data) >= 38:
                    et = data[16] << 8 | data[17]
                    o, v = 18, (4 if et == 0x0800 else 6 if et == 0x86DD else 0)
        elif linktype in (101, 228, 229):
            if data:
                o, v = 0, data[0] >> 4
        elif linktype == 113:
            if len(data) >= 36:
                et = data[14] << 8 | data[15]
                o, v = 16, (4 if et == 0x0800 else 6 if et == 0x86DD else 0)
        elif linktype == 276 and len(data) >= 40:
            et = data[0] << 8 | data[1]
            o, v = 20, (4 if et == 0x0800 else 6 if et == 0x86DD else 0)
        n = len(data)
        if v == 4 and n >= o + 40:
            vihl = data[o]
            ihl = (vihl & 15) * 4
            if vihl >> 4 != 4 or ihl < 20 or data[o + 9] != 6 or (data[o + 6] & 0x3F) | data[o + 7]:
                return []
            tl = data[o + 2] << 8 | data[o + 3]
            t = o + ihl
            l4 = tl - ihl if tl else n - t
            src = data[o + 12:o + 16]
            dst = data[o + 16:o + 20]
            family = 4
        elif v == 6 and n >= o + 60 and data[o + 6] == 6:
            pl = data[o + 4] << 8 | data[o + 5]
            t = o + 40
            l4 = pl if pl else n - t
            src = data[o + 8:o + 24]
            dst = data[o + 24:o + 40]
            family = 6
        elif v in (4, 6):
            return self._slow(frame, ts_ns, data, linktype, hint)
        else:
            return []
        if n < t + 20:
            return []
        sport, dport, seq, ack, off, win = _TCP.unpack_from(data, t)
        hl = (off >> 12) * 4
        if hl < 20:
            return []
        # checksum status (offload-aware), as rawlab.decode.dispatch computes it
        if hint and hint & 8:  # CsumHint.NOT_READY (ints: enum arithmetic is slow)
            csum = "partial"
        elif hint and hint & 128:  # CsumHint.VALID
            csum = "kernel-verified"
        elif n < t + l4 or l4 < 20:
            csum = "unverified"
        elif family == 4:
            csum = ("partial" if not tl else
                    verify_l4_v4(6, src, dst, data[t:t + l4], 16).verdict.value)
        else:
            csum = ("partial" if not pl else
                    verify_l4_v6(6, src, dst, data[t:t + l4], 16).verdict.value)
        opts = data[t + 20:t + hl] if hl > 20 else b""
        return self._feed(frame, ts_ns, family, src, dst, sport, dport, seq, ack, off & 0x1FF,
                          win, l4 - hl, opts, csum)

    def _slow(self, frame: int, ts_ns: int, data: bytes, linktype: int,
              hint: int) -> list[Event]:
        if self._decoder is None:
            from rawlab.decode.dispatch import Decoder

            self._decoder = Decoder()
        return self.feed(frame, ts_ns, self._decoder.decode(data, linktype, CsumHint(hint)))

    # ---- the analyser -------------------------------------------------------------------

    def _new_conn(self, family: int, src: bytes, sport: int, dst: bytes, dport: int,
                  flags: int, ts: int, frame: int) -> tuple[_Conn, int]:
        k_fwd = (src, sport, dst, dport)
        k_rev = (dst, dport, src, sport)
        flipped = (flags & (SYN | ACK)) == (SYN | ACK)  # first seen is a SYN-ACK: sender = server
        if flipped:
            client, server = (dst, dport), (src, sport)
        else:
            client, server = (src, sport), (dst, dport)
        conn = Connection(self._streams, client, server, family, ts, ts, frame)
        self._streams += 1
        c = _Conn(conn, (k_fwd, k_rev))
        if flipped:
            conn.history = "^"
        d = 1 if flipped else 0
        tbl = self._table
        tbl[k_fwd] = (c, d)
        tbl[k_rev] = (c, 1 - d)
        self._lru[conn.stream] = c
        if len(self._lru) > self.max_connections:
            self._evict_oldest()
        return c, d

    def _drop(self, c: _Conn) -> None:
        tbl = self._table
        for k in c.keys:
            got = tbl.get(k)
            if got is not None and got[0] is c:
                del tbl[k]
        self._lru.pop(c.conn.stream, None)

    def _evict_oldest(self) -> ConnectionClosed | None:
        _, c = next(iter(self._lru.items()))
        self._drop(c)
        if c.closed_at is None:
            c.conn.closed = "evicted"
            _refresh(c)
            return ConnectionClosed(c.conn)
        return None

    def _expire(self, ts: int, out: list[Event]) -> None:
        idle = self.idle_timeout_ns
        linger = self.close_linger_ns
        lru = self._lru
        while lru:
            c = next(iter(lru.values()))
            quiet = ts - c.conn.last_ts_ns
            if c.closed_at is not None and quiet > linger:
                self._drop(c)
            elif idle is not None and quiet > idle:
                self._drop(c)
                if c.closed_at is None:
                    c.closed_at = ts
                    c.conn.closed = "idle"
                    _refresh(c)
                    out.append(ConnectionClosed(c.conn))
            else:
                break

    def _feed(self, frame: int, ts: int, family: int, src: bytes, dst: bytes, sport: int,
              dport: int, seq: int, ack: int, flags: int, win: int, seglen: int, opts: bytes,
              csum: str) -> list[Event]:
        out: list[Event] = []
        self._sweep += 1
        if self._sweep >= 256:
            self._sweep = 0
            self._expire(ts, out)
        got = self._table.get((src, sport, dst, dport))
        is_new = got is None
        if got is None:
            c, d = self._new_conn(family, src, sport, dst, dport, flags, ts, frame)
        else:
            c, d = got
            self._lru.move_to_end(c.conn.stream)
        fwd = c.flows[d]
        rev = c.flows[1 - d]
        taflags = 0
        synack = flags & (SYN | ACK)
        if synack == SYN and fwd.base_set:
            if seq != fwd.base:  # a new connection on the same ports (tshark: reused ports)
                if c.closed_at is None:
                    c.closed_at = ts
                    c.conn.closed = "reused"
                    _refresh(c)
                    out.append(ConnectionClosed(c.conn))
                self._drop(c)
                c, d = self._new_conn(family, src, sport, dst, dport, flags, ts, frame)
                c.conn.completeness = 1
                fwd, rev = c.flows[d], c.flows[1 - d]
                taflags |= A_REUSED_PORTS
            else:  # SYN retransmission: restore nextseq (issue 17616)
                fwd.nextseq = fwd.maxseqtobeacked
        elif synack == SYN | ACK and fwd.base_set and seq != fwd.base:
            fwd.base = seq
            taflags |= A_REUSED_PORTS
        conn = c.conn
        if seglen < 0:  # header longer than the IP packet: tshark skips the analysis too
            return out
        # base sequence numbers
        if not fwd.base_set:
            fwd.base = seq if flags & SYN else (seq - 1) & MASK
            fwd.base_set = True
        if not rev.base_set and flags & ACK:
            rev.base = (ack - 1) & MASK
            rev.base_set = True

        # ---- tcp_analyze_sequence_number -------------------------------------------------
        dupnum = dupframe = None
        if flags & ACK:
            rev.valid_bif = True
        nextseq = fwd.nextseq
        lastack = fwd.lastack
        if seglen == 1 and seq == nextseq and rev.window == 0:
            taflags |= A_ZERO_WINDOW_PROBE  # then straight to "finished_fwd"
        else:
            nosfr = not flags & (SYN | FIN | RST)
            if win == 0 and nosfr:
                taflags |= A_ZERO_WINDOW
            if nextseq and 0 < ((seq - nextseq) & MASK) < HALF and not flags & RST:
                taflags |= A_LOST_PACKET
                fwd.valid_bif = False
            if seglen <= 1 and seq == ((nextseq - 1) & MASK) and nosfr:
                taflags |= A_KEEP_ALIVE
            if nosfr and seglen == 0 and seq == nextseq and ack == lastack and win \
                    and win != fwd.window:
                taflags |= A_WINDOW_UPDATE
            if seglen > 0 and rev.win_scale != -1 and nosfr:
                sh = 0 if rev.is_first_ack or rev.win_scale == -2 else rev.win_scale
                if (seq + seglen) & MASK == (rev.lastack + ((rev.window << sh) & MASK)) & MASK:
                    taflags |= A_WINDOW_FULL
            if nosfr and seglen == 0 and seq == nextseq and ack == lastack \
                    and win == fwd.window:
                if win and rev.lastsegflags & A_KEEP_ALIVE:
                    taflags |= A_KEEP_ALIVE_ACK
                elif win == 0 and rev.lastsegflags & A_ZERO_WINDOW_PROBE:
                    taflags |= A_ZERO_WINDOW_PROBE_ACK
                elif win:
                    fwd.dupacknum = 1 if fwd.dupacknum == -1 else fwd.dupacknum + 1
                    taflags |= A_DUPLICATE_ACK
                    dupnum = fwd.dupacknum
                    dupframe = fwd.lastnondupack
        # finished_fwd: what follows applies to every segment
        if ack != lastack:
            fwd.lastnondupack = frame
            fwd.dupacknum = 0
        rmax = rev.maxseqtobeacked
        if rmax and flags & ACK and 0 < ((ack - rmax) & MASK) < HALF:
            if 0 < ((rev.nextseq - rmax) & MASK) < HALF:
                rev.maxseqtobeacked = rev.nextseq
                taflags |= A_ACK_LOST_PACKET
            else:
                if rev.dupacknum == 0:
                    taflags |= A_ACK_LOST_PACKET
                rev.dupacknum = -1
        if (seglen > 0 or flags & (SYN | FIN)) and not taflags & A_KEEP_ALIVE:
            taflags = self._rtx(taflags, fwd, rev, seq, seglen, flags, ts, c)
        nxt = (seq + seglen) & MASK
        segs = fwd.segs
        if (seglen or flags & (SYN | FIN)) and len(segs) < TCP_MAX_UNACKED_SEGMENTS:
            if flags & (SYN | FIN):
                nxt = (nxt + 1) & MASK  # SYN and FIN count as one byte
            rel = (seq - fwd.base) & MASK
            nrel = (nxt - fwd.base) & MASK
            if not segs:
                fwd.max_nrel = nrel
                segs.append([rel, nxt, frame, ts])
            else:
                fwd.max_nrel = max(fwd.max_nrel, nrel)
                if rel >= segs[-1][0]:
                    segs.append([rel, nxt, frame, ts])
                else:
                    bisect.insort(segs, [rel, nxt, frame, ts], key=_REL)
        nextseq = fwd.nextseq
        if (not nextseq or 0 < ((nxt - nextseq) & MASK) < HALF) \
                and not taflags & A_ZERO_WINDOW_PROBE:
            fwd.nextseq = nxt
            fwd.nextseqframe = frame
            fwd.nextseqtime = ts
        if (seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked) \
                and not taflags & A_ZERO_WINDOW_PROBE:
            fwd.maxseqtobeacked = fwd.nextseq
        fwd.window = win
        fwd.lastack = ack
        fwd.lastacktime = ts
        fwd.lastsegflags = taflags
        # remove what this ACK covers from the other direction's unacked list
        acked = rtt = None
        if rev.segs:
            acked, rtt = _ack_segments(rev, ack, ts)
        bif = None
        segs = fwd.segs
        if seglen and segs and fwd.valid_bif:
            # Wireshark walks every unacked segment for min(seq) and max(nextseq); the list
            # is kept sorted by relative seq and the largest nextseq is never acked away
            # before the list empties, so both ends are at hand.
            first = segs[0][0]
            last = fwd.max_nrel
            inflight = (last - first) & MASK
            if rev.sack:
                delivered = 0
                for le, re_ in rev.sack:
                    delivered += (re_ - le) & MASK
                inflight = (inflight - delivered) & MASK
            if 0 < inflight < 2_000_000_000:
                bif = inflight - 1 if flags & (SYN | FIN) else inflight
                if not bif:
                    bif = None

        # ---- the rest of dissect_tcp's first pass ---------------------------------------
        seq_rel = (seq - fwd.base) & MASK
        ack_rel = (ack - rev.base) & MASK if flags & ACK else ack
        ws = fwd.win_scale
        window = win << ws if ws >= 0 and not flags & SYN else win
        comp = conn.completeness
        if is_new:
            if synack == SYN:
                comp |= 1
                if seglen > 0:
                    comp |= 8
        else:
            if synack == SYN | ACK:
                comp |= 2
            elif synack == ACK:
                comp |= 8 if seglen > 0 else 4
            if flags & (FIN | ACK) == FIN | ACK:
                comp |= 16
            if flags & RST:
                comp |= 32
        conn.completeness = comp
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
                conn.irtt_ns = c.first_rtt or None
            fwd.is_first_ack = False
        opt_map: dict[str, Any] = {}
        if opts:
            opt_map = _options(opts)
            w = opt_map.get("wscale")
            if w is not None:
                fwd.win_scale = min(w, 14)
            fwd.sack = opt_map.get("sack", ())[:MAX_TCP_SACK_RANGES - 1]
        else:
            fwd.sack = ()
        if flags & SYN:
            if fwd.win_scale == -1:
                fwd.win_scale = rev.win_scale = -2
            elif flags & ACK and rev.win_scale == -2:
                fwd.win_scale = -2
            so = conn.options[d]
            so.mss = opt_map.get("mss", so.mss)
            if "wscale" in opt_map:
                so.wscale = opt_map["wscale"]
            so.sack_perm = so.sack_perm or "sack_perm" in opt_map
            so.timestamps = so.timestamps or "ts" in opt_map
            so.ecn = so.ecn or (flags & (ECE | CWR) == ECE | CWR if not flags & ACK
                                else bool(flags & ECE))

        # ---- capture loss, stats, history ----------------------------------------------
        loss = False
        if taflags & (A_LOST_PACKET | A_ACK_LOST_PACKET) and self._pending_drops:
            self._pending_drops -= 1
            loss = True
        st = conn.stats[d]
        st.segments += 1
        st.bytes += seglen
        st.flags_seen |= flags
        if taflags & (A_RETRANSMISSION | A_FAST_RETRANSMISSION | A_SPURIOUS_RETRANSMISSION):
            st.retransmissions += 1
        if rtt is not None:
            conn.stats[1 - d].add_rtt(rtt)
        names = _NAME_CACHE.get(taflags) or analysis_names(taflags)
        if taflags:
            counts = conn.analysis_counts
            for nm in names:
                counts[nm] = counts.get(nm, 0) + 1
        conn.last_ts_ns = ts
        conn.last_frame = frame
        _history(conn, fwd, d, flags, seglen, win, taflags, csum, loss)
        nsr = (seq_rel + seglen + (1 if flags & (SYN | FIN) else 0)) & MASK
        out.append(Segment(frame, ts, conn.stream, d, src, sport, dst, dport, seq, ack, seq_rel,
                           ack_rel, nsr, flags, seglen, window, win, csum, names, dupnum,
                           dupframe, rtt or None, bif, loss, opt_map, acked, family, ws))
        self._events_after(c, d, fwd, rev, frame, ts, seq, ack, flags, seglen, out)
        return out

    def _rtx(self, taflags: int, fwd: _Flow, rev: _Flow, seq: int, seglen: int, flags: int,
             ts: int, c: _Conn) -> int:
        """Wireshark's RETRANSMISSION / FAST RETRANSMISSION / OUT-OF-ORDER block."""
        nextseq = fwd.nextseq
        not_adv = bool(nextseq) and 0 < ((nextseq - seq) & MASK) < HALF
        if seglen > 1 and (nextseq - 1) & MASK == seq:
            not_adv = False
        rl = rev.lastack
        if seglen > 0 and rl and not 0 < ((seq + seglen - rl) & MASK) < HALF:
            return taflags | A_SPURIOUS_RETRANSMISSION
        t = ts - rev.lastacktime
        if not_adv and rev.dupacknum >= 2 and rl == seq and 0 <= t < FAST_RTX_NS:
            return taflags | A_FAST_RETRANSMISSION
        t = ts - fwd.nextseqtime
        thres = c.first_rtt or OOO_DEFAULT_NS
        if not_adv and 0 <= t < thres and \
                nextseq != (seq + seglen + (1 if flags & (SYN | FIN) else 0)) & MASK:
            return taflags | A_OUT_OF_ORDER
        if not_adv:
            return taflags | A_RETRANSMISSION
        return taflags

    def _events_after(self, c: _Conn, d: int, fwd: _Flow, rev: _Flow, frame: int, ts: int,
                      seq: int, ack: int, flags: int, seglen: int, out: list[Event]) -> None:
        """Handshake and close events that this segment completes."""
        if not c.hs_done:
            ss = c.synack_seq
            if flags & SYN and flags & ACK and ss[0] is not None and ss[1] is not None:
                c.hs_done = True  # simultaneous open: both sides sent SYN-ACK
                out.append(Handshake(c.conn.stream, c.first_rtt or None,
                                     (c.hs_frames[0], c.hs_frames[1], frame)))
            elif not flags & SYN and flags & ACK and rev.saw_synack and fwd.saw_syn \
                    and ss[1 - d] is not None and ack == (ss[1 - d] + 1) & MASK:
                c.hs_done = True
                out.append(Handshake(c.conn.stream, c.first_rtt or None,
                                     (c.hs_frames[0], c.hs_frames[1], frame)))
        if flags & FIN:
            fwd.fin_seq = (seq + seglen) & MASK
        if flags & ACK and rev.fin_seq is not None and seq_ge(ack, (rev.fin_seq + 1) & MASK):
            rev.fin_acked = True
        if c.closed_at is not None:
            return
        if flags & RST:
            c.closed_at = ts
            c.conn.closed = "rst"
        elif fwd.fin_acked and rev.fin_acked:
            c.closed_at = ts
            c.conn.closed = "fin"
        else:
            return
        _refresh(c)
        out.append(ConnectionClosed(c.conn))


def _ack_segments(rev: _Flow, ack: int, ts: int) -> tuple[int | None, int | None]:
    """Drop the segments ``ack`` covers, trim the one it cuts; (frame acked, its RTT).

    Wireshark's loop, on a list sorted by relative seq: only segments starting before
    ``ack`` can be covered or cut. Of several segments ending exactly at ``ack`` the
    first sent wins (Wireshark visits its newest-first list to the end).
    """
    segs = rev.segs
    acked = None
    kept: list[list[int]] = []
    i = 0
    n = len(segs)
    while i < n:
        s = segs[i]
        if s[1] != ack and not 0 < ((ack - s[1]) & MASK) < HALF:
            # ends after ack: cut it if it starts before, then stop (the rest start later)
            if 0 < ((ack - ((s[0] + rev.base) & MASK)) & MASK) < HALF:
                s[0] = (ack - rev.base) & MASK
                kept.append(s)
                i += 1
                continue
            break
        if s[1] == ack and (acked is None or s[2] < acked[2]):
            acked = s
        i += 1
    if i:
        segs[:i] = kept
    if acked is None:
        return None, None
    return acked[2], ts - acked[3]


def _options(raw: bytes) -> dict[str, Any]:
    """TCP options as a small dict: mss, wscale, sack_perm, ts=(val, ecr), sack=((l, r), ...),
    other kinds under their number (raw bytes); "malformed" when the list is broken."""
    if len(raw) == 12 and raw[:4] == b"\x01\x01\x08\x0a":  # the usual NOP NOP TS
        return {"ts": _II.unpack_from(raw, 4)}
    out: dict[str, Any] = {}
    i, n = 0, len(raw)
    while i < n:
        k = raw[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        if i + 1 >= n or raw[i + 1] < 2 or i + raw[i + 1] > n:
            out["malformed"] = True
            break
        ln = raw[i + 1]
        v = raw[i + 2:i + ln]
        if k == 2 and ln == 4:
            out["mss"] = v[0] << 8 | v[1]
        elif k == 3 and ln == 3:
            out["wscale"] = v[0]
        elif k == 4 and ln == 2:
            out["sack_perm"] = True
        elif k == 5 and (ln - 2) % 8 == 0:
            out["sack"] = tuple(_II.unpack_from(v, j) for j in range(0, ln - 2, 8))
        elif k == 8 and ln == 10:
            out["ts"] = _II.unpack_from(v)
        else:
            out[str(k)] = bytes(v)
        i += ln
    return out


def _history(conn: Connection, fwd: _Flow, d: int, flags: int, seglen: int, win: int,
             taflags: int, csum: str, loss: bool) -> None:
    """Zeek-style history letters for what this segment shows (upper case: the originator),
    in the order they first happened; c g t w again at 10, 100, ... occurrences."""
    letters = []
    if flags & SYN:
        letters.append("h" if flags & ACK else "s")
        if flags & (FIN | RST):
            letters.append("q")
    if flags & FIN:
        letters.append("f")
    if flags & RST:
        letters.append("r")
    if flags & ACK and not seglen and not flags & (SYN | FIN | RST):
        letters.append("a")
    if seglen:
        letters.append("d")
    if csum == "bad":
        letters.append("c")
    if taflags & A_LOST_PACKET or loss:
        letters.append("g")
    if seglen and taflags & (A_RETRANSMISSION | A_FAST_RETRANSMISSION
                             | A_SPURIOUS_RETRANSMISSION):
        letters.append("t")
    if win == 0 and not flags & (SYN | FIN | RST):
        letters.append("w")
    seen = fwd.hist_n
    for ch in letters:
        n = seen.get(ch, 0) + 1
        seen[ch] = n
        if ch in _LOG_LETTERS:
            while n % 10 == 0:
                n //= 10
            if n != 1:
                continue
        elif n > 1:
            continue
        conn.history += ch.upper() if d == 0 else ch


def _refresh(c: _Conn) -> None:
    """Recompute the connection's Zeek conn_state from what both directions sent."""
    c.conn.state = _conn_state(c)


def _conn_state(c: _Conn) -> str:
    o, r = c.flows
    o_syn, r_synack = o.saw_syn, r.saw_synack
    o_rst, r_rst = "r" in o.hist_n, "r" in r.hist_n
    o_fin, r_fin = "f" in o.hist_n, "f" in r.hist_n
    if o_syn and not r_synack:
        if r_rst:
            return ConnState.REJ
        if o_rst:
            return ConnState.RSTOS0
        if o_fin:
            return ConnState.SH
        return ConnState.S0
    if r_synack and not o_syn:
        if r_rst:
            return ConnState.RSTRH
        if r_fin:
            return ConnState.SHR
        return ConnState.OTH
    if not o_syn:
        return ConnState.OTH
    if o_rst:
        return ConnState.RSTO
    if r_rst:
        return ConnState.RSTR
    if o_fin and r_fin:
        return ConnState.SF
    if o_fin:
        return ConnState.S2
    if r_fin:
        return ConnState.S3
    return ConnState.S1


def analyse(records: Iterable[Any]) -> list[Event]:
    """Every event of a finite run of records (rawlab.records.Record), numbered
    from 1, with the connections still open closed at the end."""
    analyzer = TcpAnalyzer()
    out: list[Event] = []
    for frame, rec in enumerate(records, 1):
        out.extend(analyzer.feed_bytes(frame, rec.ts_ns, rec.data, rec.linktype,
                                       rec.csum_status))
    out.extend(analyzer.finish())
    return out
