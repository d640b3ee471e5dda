"""`rawlab raw handshake`: a whole TCP connection from user space, over a raw socket.

    res = run("10.0.0.2", 80, b"hello", netns="rl-a-…")      # HandshakeResult
    res.events     # TcpAnalyzer events of the AF_PACKET capture (for the ladder)
    res.tcp        # the UserTcp state machine: state, received bytes, log

While it runs, :class:`~rawlab.raw.nft.RstGuard` holds back the RSTs our own
kernel would send (no socket owns this connection); the table is gone when
this returns or raises. Our packets carry SO_MARK ``nft.MARK`` so that a RST
of our own (abort) still leaves. The exchange is captured with AF_PACKET on
"any" (a raw socket never sees its host's outgoing packets) and analysed by
:class:`rawlab.analysis.tcp.TcpAnalyzer`.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rawlab.analysis.tcp import Event, Handshake, analyse
from rawlab.decode.tcp import Tcp
from rawlab.errors import Exit, RawlabError
from rawlab.raw import nft, packets
from rawlab.raw.sock import RawSocket, open_raw, packed, resolve, route_source
from rawlab.raw.syn import random_sport
from rawlab.raw.usertcp import Seg, UserTcp
from rawlab.records import Record

if TYPE_CHECKING:
    from rawlab.sockets.packet import PacketRing

RTO = 1.0  # seconds before a retransmission
MAX_RETRIES = 4


@dataclass
class HandshakeResult:
    target: str
    port: int
    source: str
    sport: int
    family: int
    table: str = ""
    ruleset: str = ""
    rst_dropped: int | None = None  # the nft rule's counter
    table_removed: bool = False
    tcp: UserTcp | None = None
    sent_segments: int = 0
    retransmissions: int = 0
    records: list[Record] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def handshake(self) -> Handshake | None:
        return next((e for e in self.events if isinstance(e, Handshake)), None)


class _Wire:
    """Segments to bytes on the raw socket, and the peer's segments back."""

    def __init__(self, res: HandshakeResult, sock: RawSocket) -> None:
        self.res = res
        self.sock = sock
        self.src, self.dst = packed(res.source), packed(res.target)
        self.ip_id = secrets.randbits(16) or 1

    def send(self, seg: Seg) -> None:
        opts = packets.mss_option(seg.mss) if seg.mss else b""
        data = packets.tcp_segment(self.src, self.dst, self.res.sport, self.res.port, seg.seq,
                                   seg.ack, seg.flags, window=seg.window, options=opts,
                                   payload=seg.payload)
        if self.res.family == socket.AF_INET:
            self.ip_id = (self.ip_id + 1) & 0xFFFF or 1
            data = packets.ipv4_header(self.src, self.dst, packets.IPPROTO_TCP, len(data),
                                       ident=self.ip_id) + data
        self.sock.send(data, self.res.target)
        self.res.sent_segments += 1

    def recv(self, timeout: float) -> Seg | None:
        """The next segment from the peer to our port, or None after `timeout`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            got = self.sock.recv(left)
            if got is None:
                return None
            if got.src != self.res.target:
                continue
            t = Tcp(got.payload)
            if t.malformed or t.truncated or (t.sport, t.dport) != (self.res.port,
                                                                    self.res.sport):
                continue
            return Seg(t.flags, t.seq, t.ack, bytes(t.payload), t.window, t.mss)
        return None


def run(host: str, port: int, data: bytes = b"", *, sport: int | None = None,
        ipv6: bool = False, netns: str | None = None, timeout: float = 5.0,
        capture: bool = True) -> HandshakeResult:
    """Connect, send `data`, close; raise RawlabError unless the connection completed."""
    family, target = resolve(host, ipv6)
    source = route_source(target, netns)
    res = HandshakeResult(target, port, source, sport or random_sport(), family)
    tcp = res.tcp = UserTcp(secrets.randbits(32), data)
    v6 = family == socket.AF_INET6
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(open_raw(family, packets.IPPROTO_TCP, netns=netns,
                                            hdrincl=not v6, mark=nft.MARK,
                                            bind=source if v6 else None))
        ring = stack.enter_context(_open_ring(res, netns)) if capture else None
        wire = _Wire(res, sock)
        guard = nft.RstGuard(target, port, res.sport, netns=netns)
        res.table, res.ruleset = guard.table, guard.ruleset
        with guard:
            try:
                _converse(tcp, wire, res, timeout)
            finally:
                if not tcp.done:  # error, Ctrl-C, SIGTERM: reset the peer's side
                    rst = tcp.abort()
                    if rst is not None:
                        wire.send(rst)
        res.rst_dropped = guard.dropped
        res.table_removed = True
        if ring is not None:
            res.records = list(ring.records(idle=0.3, duration=2.0))
    _analyse(res)
    _check(res)
    return res


def _converse(tcp: UserTcp, wire: _Wire, res: HandshakeResult, timeout: float) -> None:
    for seg in tcp.start():
        wire.send(seg)
    deadline = time.monotonic() + timeout
    retries = 0
    while not tcp.done:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RawlabError(f"the connection did not finish within {timeout:g} s "
                              f"(state {tcp.state}); fix: raise --timeout", Exit.PEER)
        seg = wire.recv(min(RTO, left))
        if seg is None:
            out = tcp.retransmit()
            if not out:
                continue
            retries += 1
            if retries > MAX_RETRIES:
                raise RawlabError(f"no answer after {MAX_RETRIES} retransmissions "
                                  f"(state {tcp.state})", Exit.PEER)
            res.retransmissions += len(out)
        else:
            out = tcp.receive(seg)
        for s in out:
            wire.send(s)
        if tcp.reset:
            break


def _open_ring(res: HandshakeResult, netns: str | None) -> PacketRing:
    from rawlab.sockets.packet import RingConfig, open_ring

    expr = f"tcp and host {res.target} and port {res.port} and port {res.sport}"
    return open_ring("any", bpf=expr, netns=netns, config=RingConfig(ring_mb=2))


def _analyse(res: HandshakeResult) -> None:
    res.events.extend(analyse(res.records))


def _check(res: HandshakeResult) -> None:
    tcp = res.tcp
    assert tcp is not None
    if tcp.refused:
        raise RawlabError(f"{res.target}:{res.port} answered the SYN with a RST: nothing "
                          "listens there", Exit.PEER)
    if tcp.reset:
        raise RawlabError(f"the peer reset the connection in state {tcp.state}", Exit.PEER)
