"""TCP stream reassembly for the application protocols (Wireshark's ``tcp_dissect_pdus``):
state across packets, so it lives here and not in the per-packet decoders.

    streams = TcpStreams(keylog=None)           # the default table's TCP port entries; a
                                                # KeyLog decrypts TLS (rawlab.analysis.tls_decrypt)
    views = streams.feed(frame, ts_ns, pkt)     # a decoded Packet: the application views
                                                # this segment completes (also appended to
                                                # pkt.layers); as pipeline.run's first
                                                # sink, streams.packet(frame, rec, pkt, _)
    streams.finish()                            # end of input: messages waiting for a close

Which protocol a connection speaks is the TCP port table of
:mod:`rawlab.decode.descent` (an entry whose view has ``pdu_len``: TLS, HTTP, DNS
over TCP, SSH); the connection and its direction come from the TCP analyser
(:class:`rawlab.analysis.tcp.TcpAnalyzer`, fed the packets of those ports only):
each :class:`~rawlab.analysis.tcp.Segment` it hands out is placed by its sequence
number. Per direction, the bytes in order are cut into messages by the view's
``pdu_len`` (0: need more; -1: these bytes are not the protocol, the direction is
given up; ``UNTIL_CLOSE``: the message ends with the connection), and each message
becomes a view on the frame whose segment completes it, with ``frames`` naming every
segment it came in (as tshark's "[N Reassembled TCP Segments]"). All messages a
segment completes for TLS form one view (one ``tls`` layer, several records).

Retransmitted and overlapping bytes are trimmed; segments after a gap wait (at most
:data:`MAX_OUT_OF_ORDER` per direction) for the missing bytes; a gap that is never
filled (a capture drop) abandons the message in progress and resynchronises on the
next segment that starts a message.

Memory is bounded: the connections the analyser tracks (its ``max_connections``),
per direction at most ``max_pdu`` bytes waiting to complete a message, and of a
larger message (an HTTP body) only the first ``keep`` bytes (the rest is counted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rawlab.analysis.seq import seq_gt, seq_lt
from rawlab.decode.descent import DispatchTable, build_table, port_view
from rawlab.decode.http import UNTIL_CLOSE
from rawlab.decode.tcp import FIN, RST, SYN, Tcp
from rawlab.decode.view import View

MAX_OUT_OF_ORDER = 64
MAX_PDU = 1 << 20
KEEP = 1 << 16

#: a session hook per stream protocol: (view class) -> factory of an object with
#: ``view(direction, data, frames) -> list[View]`` (TLS's handshake and decryption state)
SessionFactory = Callable[[], Any]


Pdu = tuple[bytes, int, tuple[tuple[int, int], ...]]  # (bytes kept, length, frames)


class Cutter:
    """Bytes in order -> whole messages, by a view's ``pdu_len`` (the part of the
    reassembly that knows nothing of TCP: a TLS session's decrypted bytes use it too).

    ``push(frame, data)`` returns the messages completed: ``(bytes, length, frames)``
    where ``bytes`` is the whole message, or its first ``keep`` bytes when longer.
    """

    __slots__ = ("buf", "cut_any", "dead", "frames", "keep", "max_pdu", "need", "pdu_len",
                 "resync", "skipped")

    def __init__(self, pdu_len: Callable[[bytes | bytearray], int], *, max_pdu: int = MAX_PDU,
                 keep: int = KEEP) -> None:
        self.pdu_len = pdu_len
        self.max_pdu = max_pdu
        self.keep = keep
        self.buf = bytearray()
        self.frames: list[list[int]] = []  # [frame, bytes] of buf's pieces, in order
        self.need = 0  # the message in progress is this long (0: not known yet)
        self.skipped = 0  # bytes of it counted past `keep` (not stored)
        self.dead = False  # the first bytes were not the protocol: no messages ever
        self.resync = False  # lost its place: waits for a piece that starts a message
        self.cut_any = False

    def lose(self) -> None:
        """Forget the message in progress (bytes went missing); resynchronise."""
        self.buf.clear()
        self.frames.clear()
        self.need = self.skipped = 0
        self.resync = True

    def push(self, frame: int, data: bytes) -> list[Pdu]:
        if self.dead or not data:
            return []
        if self.resync:
            if self.pdu_len(data) < 0:
                return []
            self.resync = False
        if self.need and len(self.buf) >= self.keep:  # a long message: count its bytes only
            self.skipped += len(data)
        else:
            self.buf += data
        if self.frames and self.frames[-1][0] == frame:
            self.frames[-1][1] += len(data)
        else:
            self.frames.append([frame, len(data)])
        return self._cut()

    def _cut(self) -> list[Pdu]:
        out: list[Pdu] = []
        while self.buf:
            total = len(self.buf) + self.skipped
            n = self.need or self.pdu_len(self.buf)
            if n < 0:  # not the protocol: at the start, never; later, lost its place
                if self.cut_any or out:
                    self.lose()
                else:
                    self.dead = True
                    self.buf.clear()
                    self.frames.clear()
                break
            if n == 0:
                if total > self.max_pdu:
                    self.lose()
                break
            self.need = n
            if n == UNTIL_CLOSE or total < n:
                break
            keep = n - self.skipped
            data = bytes(self.buf[:keep])
            del self.buf[:keep]
            out.append((data, n, self._take_frames(n)))
            self.need = self.skipped = 0
        self.cut_any = self.cut_any or bool(out)
        return out

    def started_in(self, frame: int) -> bool:
        """The message in progress (not complete yet) began in ``frame``'s bytes."""
        return bool(self.buf) and bool(self.frames) and self.frames[0][0] == frame

    def _take_frames(self, n: int) -> tuple[tuple[int, int], ...]:
        out = []
        while n > 0 and self.frames:
            f = self.frames[0]
            take = min(f[1], n)
            out.append((f[0], take))
            n -= take
            f[1] -= take
            if not f[1]:
                self.frames.pop(0)
        return tuple(out)

    def close(self) -> list[Pdu]:
        """The connection ended: a message that runs until the close is complete."""
        if self.need == UNTIL_CLOSE and self.buf:
            n = len(self.buf) + self.skipped
            pdu = (bytes(self.buf), n, self._take_frames(n))
            self.buf.clear()
            self.need = self.skipped = 0
            return [pdu]
        return []


class _Dir:
    """One direction of a connection: sequence numbers, segments after a gap, the cutter."""

    __slots__ = ("cutter", "next_seq", "ooo")

    def __init__(self, cutter: Cutter) -> None:
        self.next_seq: int | None = None
        self.ooo: dict[int, tuple[int, bytes]] = {}  # seq -> (frame, payload)
        self.cutter = cutter


class _Stream:
    __slots__ = ("ctor", "dirs", "live", "session")

    def __init__(self, ctor: Any, session: Any, max_pdu: int, keep: int) -> None:
        self.ctor = ctor
        framing = getattr(session, "pdu_len", None)  # a session may frame each direction
        pdu_len = getattr(ctor, "pdu_len", len)  # no framing: each segment's bytes
        self.dirs = tuple(_Dir(Cutter(framing(i) if framing else pdu_len,
                                      max_pdu=max_pdu, keep=keep)) for i in (0, 1))
        self.session = session
        self.live = True  # one direction may still give messages


class TcpStreams:
    """Reassembles the TCP connections on the table's application ports. Also a first
    sink of ``pipeline.run`` (``packet``/``close``): the sinks after it see the layers it
    adds."""

    decodes = True
    uses_interface = False

    def __init__(self, table: DispatchTable | None = None, *,
                 analyzer: Any = None, max_pdu: int = MAX_PDU,
                 keep: int = KEEP, sessions: dict[type, SessionFactory] | None = None,
                 keylog: Any = None) -> None:
        self.table = table if table is not None else build_table()
        self.tcp: Any = analyzer  # the TCP analyser: made (imported) on the first segment
        self.max_pdu = max_pdu
        self.keep = keep
        self.sessions = sessions if sessions is not None else default_sessions(keylog)
        self._streams: dict[int, _Stream] = {}  # by the analyser's stream number
        self._ports = self.table.tcp_port
        mask = bytearray(65536)  # by port: 1 where the table has an entry
        for port in self._ports:
            mask[port] = 1
        self._mask = bytes(mask)
        #: the direction of the last segment fed will never give a message (its first
        #: bytes were not the protocol): a caller may skip its later segments
        self.last_dead = False
        #: connections one of whose directions may still give messages
        self.live = 0
        #: the last segment fed began a message it did not complete; its protocol's view
        self.last_started = False
        self.last_ctor: Any = None

    # ---- input ----------------------------------------------------------------------------

    def stream_ctor(self, sport: int, dport: int) -> Any:
        """The application's view for a segment between these ports, or None."""
        return port_view(self._ports, sport, dport)

    def feed(self, frame: int, ts_ns: int, pkt: Any) -> Sequence[View]:
        """The application views this packet's TCP segment completes; they are appended
        to ``pkt.layers`` too. Packets of other ports (and non-TCP) cost two look-ups."""
        t = pkt.layers[-1] if pkt.layers else None
        if type(t) is not Tcp:
            return ()
        sp, dp = t.sport, t.dport
        if not (self._mask[sp] or self._mask[dp]):
            return ()  # (the common case, kept short)
        ctor = port_view(self._ports, sp, dp)
        self.last_ctor = ctor
        if self.tcp is None:
            from rawlab.analysis.tcp import TcpAnalyzer

            self.tcp = TcpAnalyzer()
        from rawlab.analysis.tcp import ConnectionClosed, Segment

        out: list[View] = []
        for ev in self.tcp.feed(frame, ts_ns, pkt):
            if type(ev) is Segment:
                out += self._segment(ev, ctor, t.payload)
            elif type(ev) is ConnectionClosed:
                out += self._closed(ev.stream, frame)
        if out:
            pkt.extend(out)
        return out

    def packet(self, frame: int, rec: Any, pkt: Any, iface: Any) -> None:
        """``pipeline.run``'s sink hook: :meth:`feed`."""
        self.feed(frame, rec.ts_ns, pkt)

    def close(self) -> None:
        pass

    def feed_segment(self, seg: Any, payload: bytes | memoryview) -> list[View]:
        """The same from the TCP analyser's own events (``rawlab tcp``): one
        :class:`~rawlab.analysis.tcp.Segment` and its payload bytes; a
        ``ConnectionClosed`` goes to :meth:`closed`."""
        ctor = port_view(self._ports, seg.src_port, seg.dst_port)
        if ctor is None:
            return []
        self.last_ctor = ctor
        return self._segment(seg, ctor, memoryview(payload))

    def closed(self, stream: int) -> list[View]:
        """A connection ended: its messages that end with it, and its state is dropped."""
        return self._closed(stream, 0)

    def finish(self) -> list[View]:
        """End of input: messages that end with the connection (HTTP bodies without a
        length) are complete now."""
        out: list[View] = []
        for sid in list(self._streams):
            out += self._closed(sid, 0)
        for ev in self.tcp.finish() if self.tcp is not None else ():
            self._streams.pop(ev.stream, None)
        return out

    # ---- one segment ------------------------------------------------------------------------

    def _segment(self, seg: Any, ctor: Any, payload: memoryview) -> list[View]:
        st = self._streams.get(seg.stream)
        if st is None:
            factory = self.sessions.get(ctor)
            st = self._streams[seg.stream] = _Stream(ctor, factory() if factory else None,
                                                     self.max_pdu, self.keep)
            self.live += 1
        d = st.dirs[seg.dir]
        self.last_dead = d.cutter.dead
        self.last_started = False
        flags = seg.flags
        if flags & SYN:
            d.next_seq = (seg.seq + 1) & 0xFFFFFFFF
            d.ooo.clear()
        data = bytes(payload[: seg.len])
        pdus: list[Pdu] = []
        if data:
            seq = (seg.seq + (1 if flags & SYN else 0)) & 0xFFFFFFFF
            if d.next_seq is None:
                d.next_seq = seq  # midstream: start where the capture starts
            pdus = self._place(d, seg.frame, seq, data)
        if flags & (FIN | RST):
            pdus += d.cutter.close()
        self.last_dead = d.cutter.dead
        self.last_started = d.cutter.started_in(seg.frame)
        if st.live and st.dirs[0].cutter.dead and st.dirs[1].cutter.dead:
            st.live = False
            self.live -= 1
        return self._views(st, seg.dir, pdus) if pdus else []

    def _place(self, d: _Dir, frame: int, seq: int, data: bytes) -> list[Pdu]:
        nxt = d.next_seq
        assert nxt is not None
        if seq != nxt:
            if seq_lt(seq, nxt):  # retransmitted or overlapping: keep only what is new
                skip = (nxt - seq) & 0xFFFFFFFF
                if skip >= len(data):
                    return []
                data = data[skip:]
            elif len(d.ooo) < MAX_OUT_OF_ORDER:  # after a gap: wait for the missing bytes
                d.ooo[seq] = (frame, data)
                return []
            else:  # the gap is never filled (a capture drop): go on after it
                d.cutter.lose()
                d.ooo[seq] = (frame, data)
                nxt = d.next_seq = min(d.ooo, key=lambda s: (s - nxt) & 0xFFFFFFFF)
                frame, data = d.ooo.pop(nxt)
        out = self._take(d, frame, data)
        while d.ooo:  # what waited for these bytes
            nxt = d.next_seq
            ready = sorted((s for s in d.ooo if not seq_gt(s, nxt)),
                           key=lambda s: (s - nxt) & 0xFFFFFFFF)
            if not ready:
                break
            for s in ready:
                f, b = d.ooo.pop(s)
                skip = (d.next_seq - s) & 0xFFFFFFFF
                if skip < len(b):
                    out += self._take(d, f, b[skip:])
        return out

    @staticmethod
    def _take(d: _Dir, frame: int, data: bytes) -> list[Pdu]:
        d.next_seq = ((d.next_seq or 0) + len(data)) & 0xFFFFFFFF
        return d.cutter.push(frame, data)

    def _views(self, st: _Stream, direction: int, pdus: list[Pdu]) -> list[View]:
        if st.session is not None:
            return st.session.views(direction, pdus)  # type: ignore[no-any-return]
        out = []
        for data, n, frames in pdus:
            v = st.ctor(data) if n == len(data) else st.ctor(data, n)
            v.frames = frames
            out.append(v)
        return out

    def _closed(self, sid: int, frame: int) -> list[View]:
        st = self._streams.pop(sid, None)
        if st is None:
            return []
        if st.live:
            self.live -= 1
        out: list[View] = []
        for i, d in enumerate(st.dirs):
            pdus = d.cutter.close()
            if pdus:
                out += self._views(st, i, pdus)
        return out


def default_sessions(keylog: Any = None) -> dict[type, SessionFactory]:
    """The protocols whose messages carry state across a connection: TLS (handshake
    messages spanning records, what is encrypted, the key log's secrets: a
    :class:`rawlab.analysis.tls_decrypt.KeyLog`), SSH (encrypted after NEWKEYS)."""
    from rawlab.analysis.ssh_session import SshSession
    from rawlab.analysis.tls_session import TlsSession
    from rawlab.decode.ssh import Ssh
    from rawlab.decode.tls import Tls

    return {Tls: lambda: TlsSession(keylog), Ssh: SshSession}
