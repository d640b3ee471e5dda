"""`rawlab raw syn`: one hand-built SYN, and what answers it.

    res = probe("10.0.0.2", 80, netns="rl-a-…")     # SynResult
    res.state                                       # "open" | "closed" | "filtered"

IPv4: an AF_INET SOCK_RAW IPPROTO_TCP socket with IP_HDRINCL; rawlab writes
the IPv4 header too (the kernel still fills total length and the header
checksum: the same values). IPv6: an AF_INET6 SOCK_RAW IPPROTO_TCP socket; the
kernel adds the IPv6 header, rawlab computes the TCP checksum over the IPv6
pseudo-header (IPV6_CHECKSUM is off by default for non-ICMPv6 raw sockets).
The same raw socket receives a copy of every incoming TCP segment: the answer
is the one from HOST:PORT to our source port. A raw ICMP socket catches an
ICMP error quoting the SYN. An AF_PACKET capture on "any" records the
exchange, including what our own kernel sends: a raw socket never sees its
host's outgoing packets.

Classification (nmap's): SYN-ACK → open; RST → closed; nothing, or an ICMP
destination-unreachable error → filtered.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rawlab.decode.dispatch import Decoder
from rawlab.errors import RawlabError
from rawlab.raw import packets
from rawlab.raw.packets import ACK, RST, SYN
from rawlab.raw.sock import RawSocket, Received, open_raw, packed, resolve, route_source, wait_any
from rawlab.records import LinkType, Record

if TYPE_CHECKING:
    from rawlab.sockets.packet import PacketRing

OPEN, CLOSED, FILTERED = "open", "closed", "filtered"
EPHEMERAL = (61000, 65535)  # above Linux's default ip_local_port_range: no local socket's port
DEFAULT_MSS = 1460


def classify(tcp_flags: int | None, icmp: tuple[int, int] | None = None) -> tuple[str, str]:
    """(state, reason) from the answer's TCP flags, or an ICMP (type, code) error, or nothing."""
    if tcp_flags is not None:
        if tcp_flags & RST:
            return CLOSED, "RST: the host is there, nothing listens on that port"
        if tcp_flags & (SYN | ACK) == SYN | ACK:
            return OPEN, "SYN-ACK: a listener accepted the first step of the handshake"
        return FILTERED, f"unexpected answer (TCP flags 0x{tcp_flags:03x}): treated as filtered"
    if icmp is not None:
        return FILTERED, (f"ICMP error type {icmp[0]} code {icmp[1]}: something on the way "
                          "(or the host) refused it")
    return FILTERED, "no answer: the SYN (or its answer) was dropped on the way"


def random_sport() -> int:
    lo, hi = EPHEMERAL
    return lo + secrets.randbelow(hi - lo + 1)


@dataclass
class SynResult:
    target: str
    port: int
    source: str
    sport: int
    family: int
    ttl: int
    isn: int
    state: str = FILTERED
    reason: str = ""
    sent: bytes = b""  # the IP packet as sent (IPv6: with the header the kernel adds)
    sent_ts_ns: int = 0
    answer: Received | None = None
    icmp: Received | None = None
    capture: list[Record] = field(default_factory=list)
    capture_error: str | None = None

    @property
    def rtt_ns(self) -> int | None:
        got = self.answer or self.icmp
        return None if got is None else got.ts_ns - self.sent_ts_ns

    @property
    def answer_flags(self) -> int | None:
        if self.answer is None:
            return None
        return _tcp_fields(self.answer.payload)[4]

    @property
    def kernel_rst(self) -> Record | None:
        """The RST our kernel sent for the SYN-ACK, if the capture has it."""
        if self.answer is None or not self.capture:
            return None
        dec = Decoder()
        src = packed(self.source)
        for rec in self.capture:
            pkt = dec.decode(rec.data, rec.linktype)
            ip = pkt.layer("ipv4") or pkt.layer("ipv6")
            t = pkt.layer("tcp")
            if (t is not None and t.flags & RST and bytes(ip.src) == src
                    and t.sport == self.sport and t.dport == self.port):
                return rec
        return None


def _tcp_fields(seg: bytes) -> tuple[int, int, int, int, int]:
    """sport, dport, seq, ack, flags of a TCP header (zeros when short)."""
    if len(seg) < 14:
        return 0, 0, 0, 0, 0
    return (int.from_bytes(seg[0:2], "big"), int.from_bytes(seg[2:4], "big"),
            int.from_bytes(seg[4:8], "big"), int.from_bytes(seg[8:12], "big"),
            int.from_bytes(seg[12:14], "big") & 0x1FF)


def build_syn(res: SynResult, mss: int = DEFAULT_MSS) -> tuple[bytes, bytes]:
    """(bytes to send, the whole IP packet): IPv4 sends the header, IPv6 only the segment."""
    src, dst = packed(res.source), packed(res.target)
    seg = packets.tcp_segment(src, dst, res.sport, res.port, res.isn, 0, SYN,
                              options=packets.mss_option(mss))
    if res.family == socket.AF_INET6:
        return seg, packets.ipv6_header(src, dst, packets.IPPROTO_TCP, len(seg),
                                        hop_limit=res.ttl) + seg
    ip = packets.ipv4_header(src, dst, packets.IPPROTO_TCP, len(seg), ttl=res.ttl,
                             ident=1 + secrets.randbelow(0xFFFF)) + seg
    return ip, ip


def _quotes_our_syn(res: SynResult, got: Received) -> tuple[int, int] | None:
    """(type, code) if `got` is an ICMP error quoting our SYN."""
    pkt = Decoder().decode(got.data, LinkType.RAW)
    ic = pkt.layer("icmpv6" if res.family == socket.AF_INET6 else "icmp")
    if ic is None or ic.type not in ((1, 2, 3, 4) if res.family == socket.AF_INET6
                                     else (3, 11, 12)):
        return None
    quote = Decoder().decode(bytes(ic.payload), LinkType.RAW)
    ip, t = quote.layer("ipv4") or quote.layer("ipv6"), quote.layer("tcp")
    if ip is None or bytes(ip.dst) != packed(res.target):
        return None
    if t is not None and (t.sport, t.dport) != (res.sport, res.port):
        return None
    return ic.type, ic.code


def probe(host: str, port: int, *, ttl: int = 64, sport: int | None = None, ipv6: bool = False,
          timeout: float = 2.0, netns: str | None = None, capture: bool = True) -> SynResult:
    """Send one SYN to host:port and classify what answers within `timeout` seconds."""
    family, target = resolve(host, ipv6)
    source = route_source(target, netns)
    res = SynResult(target, port, source, sport or random_sport(), family, ttl,
                    secrets.randbits(32))
    v6 = family == socket.AF_INET6
    with contextlib.ExitStack() as stack:
        tcp = stack.enter_context(open_raw(family, packets.IPPROTO_TCP, netns=netns,
                                           hdrincl=not v6, bind=source if v6 else None,
                                           hop_limit=ttl if v6 else None))
        icmp = stack.enter_context(open_raw(
            family, packets.IPPROTO_ICMPV6 if v6 else packets.IPPROTO_ICMP, netns=netns))
        ring = _open_ring(res, netns) if capture else None
        if ring is not None:
            stack.enter_context(ring)
        wire, res.sent = build_syn(res)
        res.sent_ts_ns = time.time_ns()
        tcp.send(wire, target)
        _wait_answer(res, tcp, icmp, timeout)
        res.state, res.reason = classify(
            res.answer_flags, None if res.icmp is None else _quotes_our_syn(res, res.icmp))
        if ring is not None:
            res.capture = list(ring.records(idle=0.3, duration=1.5))
    return res


def _open_ring(res: SynResult, netns: str | None) -> PacketRing | None:
    from rawlab.sockets.packet import RingConfig, open_ring

    expr = f"tcp and host {res.target} and port {res.port} and port {res.sport}"
    try:
        return open_ring("any", bpf=expr, netns=netns, config=RingConfig(ring_mb=2))
    except RawlabError as exc:
        res.capture_error = exc.message
        return None


def _wait_answer(res: SynResult, tcp: RawSocket, icmp: RawSocket, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready = wait_any([tcp, icmp], left)
        if ready is None:
            return
        got = ready.recv(0)
        if got is None:
            continue
        if ready is icmp:
            if _quotes_our_syn(res, got) is not None:
                res.icmp = got
                return
            continue
        sp, dp, _seq, _ack, _flags = _tcp_fields(got.payload)
        if got.src == res.target and sp == res.port and dp == res.sport:
            res.answer = got
            return
