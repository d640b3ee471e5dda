"""`rawlab raw ping`: ICMP / ICMPv6 echo over a raw socket, checksums ours, RTT per reply.

    for ev in Pinger("10.0.0.2", count=3, netns="rl-a-…").run():   # Sent | Reply | Unreachable
        ...
    summarize(transmitted, [rtt_ns, …])                          # ping's last two lines

AF_INET, IPPROTO_ICMP: the kernel adds the IPv4 header and sends our ICMP
message as it is: the checksum is the one rawlab computed.
AF_INET6, IPPROTO_ICMPV6: the kernel always computes the ICMPv6 checksum
itself (RFC 3542 §3.1; IPV6_CHECKSUM cannot be changed on such a socket,
EINVAL). rawlab still computes it, over the IPv6 pseudo-header, and the
kernel writes the same value.
Every raw ICMP socket gets every ICMP message the host receives: replies are
picked out by type, identifier and source. Each reply's checksum is verified.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

from rawlab.decode.checksum import ChecksumStatus
from rawlab.decode.dispatch import Decoder, Packet
from rawlab.raw import packets
from rawlab.raw.sock import Received, open_raw, packed, resolve, route_source
from rawlab.records import LinkType

ECHO_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}
ERRORS = {socket.AF_INET: frozenset({3, 4, 5, 11, 12}), socket.AF_INET6: frozenset({1, 2, 3, 4})}


@dataclass(frozen=True)
class Sent:
    seq: int
    ts_ns: int
    checksum: int  # the ICMP checksum rawlab computed for this request
    size: int  # ICMP message bytes (8 + payload)


@dataclass(frozen=True)
class Reply:
    seq: int
    ident: int
    src: str
    size: int  # ICMP message bytes
    hop_limit: int  # TTL / hop limit of the reply
    rtt_ns: int
    checksum: ChecksumStatus  # of the reply, verified by rawlab
    duplicate: bool
    received: Received
    packet: Packet


@dataclass(frozen=True)
class Unreachable:
    """An ICMP error quoting one of our requests."""

    seq: int
    src: str
    type: int
    code: int
    received: Received
    packet: Packet


@dataclass(frozen=True)
class Summary:
    target: str
    transmitted: int
    received: int
    duplicates: int
    errors: int
    time_ns: int
    rtt_min_ns: int | None
    rtt_avg_ns: int | None
    rtt_max_ns: int | None
    rtt_mdev_ns: int | None

    @property
    def loss_pct(self) -> float:
        if not self.transmitted:
            return 0.0
        return 100.0 * (self.transmitted - self.received) / self.transmitted


def summarize(target: str, transmitted: int, rtts: list[int], *, duplicates: int = 0,
              errors: int = 0, time_ns: int = 0) -> Summary:
    """ping's statistics: mdev is the standard deviation, sqrt(mean(rtt²) − mean(rtt)²)."""
    if not rtts:
        return Summary(target, transmitted, 0, duplicates, errors, time_ns, None, None, None,
                       None)
    n = len(rtts)
    avg = sum(rtts) / n
    var = max(sum(r * r for r in rtts) / n - avg * avg, 0.0)
    return Summary(target, transmitted, n, duplicates, errors, time_ns, min(rtts),
                   round(avg), max(rtts), round(math.sqrt(var)))


class Pinger:
    """Sends `count` echo requests `interval` s apart and reports what comes back."""

    def __init__(self, host: str, *, count: int = 4, size: int = 56, interval: float = 1.0,
                 timeout: float = 2.0, netns: str | None = None, ipv6: bool = False,
                 ident: int | None = None) -> None:
        self.family, self.target = resolve(host, ipv6)
        self.count = count
        self.size = size
        self.interval = interval
        self.timeout = timeout
        self.netns = netns
        self.ident = ident if ident is not None else (os.getpid() ^ secrets.randbits(16)) & 0xFFFF
        self.proto = packets.IPPROTO_ICMPV6 if self.family == socket.AF_INET6 else \
            packets.IPPROTO_ICMP
        self.source = route_source(self.target, netns)
        self.sent: dict[int, Sent] = {}
        self.rtts: list[int] = []
        self.duplicates = 0
        self.errors = 0
        self._seen: set[int] = set()
        self.kernel_timed = 0  # requests whose send time is the kernel's transmit timestamp
        self._t0 = 0
        self._dec = Decoder()

    def request(self, seq: int, ts_ns: int) -> bytes:
        payload = packets.echo_payload(self.size, ts_ns)
        if self.family == socket.AF_INET6:
            return packets.icmpv6_echo(self.ident, seq, payload, packed(self.source),
                                       packed(self.target))
        return packets.icmp_echo(self.ident, seq, payload)

    def run(self) -> Iterator[Sent | Reply | Unreachable]:
        with open_raw(self.family, self.proto, netns=self.netns) as s:
            self._t0 = time.monotonic_ns()
            start = time.monotonic()
            for i in range(self.count):
                seq = i + 1
                msg = self.request(seq, time.time_ns())
                sent = Sent(seq, s.send_timed(msg, self.target), int.from_bytes(msg[2:4], "big"),
                            len(msg))
                self.kernel_timed = s.tx_stamps
                self.sent[seq] = sent
                yield sent
                last = i == self.count - 1
                until = start + (i + 1) * self.interval if not last else \
                    time.monotonic() + self.timeout
                while (left := until - time.monotonic()) > 0:
                    got = s.recv(left)
                    if got is None:
                        break
                    ev = self.match(got)
                    if ev is not None:
                        yield ev
                    if last and len(self._seen) == self.count:
                        break

    def match(self, got: Received) -> Reply | Unreachable | None:
        """Our echo reply, an error quoting our request, or None (someone else's ICMP)."""
        pkt = self._dec.decode(got.data, LinkType.RAW)
        ic = pkt.layer("icmpv6" if self.family == socket.AF_INET6 else "icmp")
        if ic is None:
            return None
        if ic.type == ECHO_REPLY[self.family]:
            if got.src != self.target or ic.id != self.ident or ic.seq not in self.sent:
                return None
            dup = ic.seq in self._seen
            self._seen.add(ic.seq)
            rtt = max(got.ts_ns - self.sent[ic.seq].ts_ns, 1)
            if dup:
                self.duplicates += 1
            else:
                self.rtts.append(rtt)
            ip = pkt.layer("ipv6") or pkt.layer("ipv4")
            hops = ip.hop_limit if self.family == socket.AF_INET6 else ip.ttl
            return Reply(ic.seq, ic.id, got.src, len(ic.buf), hops, rtt,
                         pkt.checksum(ic.name), dup, got, pkt)
        if ic.type in ERRORS[self.family]:
            seq = self._quoted_seq(bytes(ic.payload))
            if seq is not None:
                self.errors += 1
                return Unreachable(seq, got.src, ic.type, ic.code, got, pkt)
        return None

    def _quoted_seq(self, quoted: bytes) -> int | None:
        """The seq of our request inside an ICMP error's quote, if it is ours."""
        if self.family == socket.AF_INET6:
            inner = quoted[40:48] if len(quoted) >= 48 and quoted[6] == 58 else b""
            want = 128
        else:
            hl = (quoted[0] & 0x0F) * 4 if quoted else 0
            inner = quoted[hl:hl + 8] if len(quoted) >= hl + 8 and quoted[9] == 1 else b""
            want = 8
        if len(inner) < 8 or inner[0] != want:
            return None
        if int.from_bytes(inner[4:6], "big") != self.ident:
            return None
        return int.from_bytes(inner[6:8], "big")

    def summary(self) -> Summary:
        return summarize(self.target, len(self.sent), self.rtts, duplicates=self.duplicates,
                         errors=self.errors, time_ns=time.monotonic_ns() - self._t0)
