"""IPv4 and IPv6 fragments put back together, across packets, as Wireshark does by
default (``ip.defragment``, ``ipv6.defragment``): the protocols above IP and the TCP
analyser see whole datagrams.

    r = IpReassembly()
    pkt = r.packet(frame, ts_ns, decoder.decode(data, linktype))   # every decoded packet
    pkt.reassembled            # None, or Reassembled(at, frames, length) on the packet
                               # that completed a datagram
    names = r.names(data, linktype)      # Decoder(fragments=r.names): --stats' path

**The rule** (tshark's single pass): every fragment is shown as itself, its IP header
followed by ``data`` (the first fragment too: its transport header is only part of a
datagram). The packet whose fragment completes a datagram (the last one to arrive,
not necessarily the one at the highest offset) shows, after its own IP header, the
layers of the whole reassembled payload, and ``reassembled`` names the IP layer, the
frames of every fragment (by offset, as tshark's ``ip.fragment``) and the payload's
length. A
datagram is keyed by source, destination, identification (and protocol, for IPv4);
the first copy of overlapping bytes is kept. Only the first fragmented IP layer of a
packet is reassembled (a fragmented tunnel's inner fragments are not).

**Memory is bounded**: at most ``max_datagrams`` datagrams and ``max_bytes`` bytes
wait at once (the oldest is dropped first), a datagram untouched for ``timeout_ns`` of
capture time is dropped, and none grows past 65,535 payload bytes (IPv4's limit; an
IPv6 datagram claiming more is given up).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from rawlab.decode.descent import above_ip
from rawlab.decode.dispatch import Decoder, Packet, Reassembled
from rawlab.decode.ipv4 import Ipv4
from rawlab.decode.ipv6 import NH_FRAGMENT
from rawlab.decode.view import Raw, View

MAX_DATAGRAM = 65535


class _Datagram:
    __slots__ = ("bytes", "frames", "have", "last_ns", "next_header", "parts", "total")

    def __init__(self) -> None:
        self.parts: list[tuple[int, bytes]] = []  # (offset, bytes) in arrival order
        self.frames: list[int] = []
        self.total: int | None = None  # payload length, once the last fragment is in
        self.bytes = 0
        self.last_ns: int | None = None
        self.next_header = 0

    def complete(self) -> bytes | None:
        """The whole payload when every byte up to ``total`` is here, else None."""
        if self.total is None:
            return None
        buf = bytearray(self.total)
        covered = [(o, o + len(b)) for o, b in self.parts]
        covered.sort()
        reach = 0
        for start, end in covered:
            if start > reach:
                return None
            reach = max(reach, end)
        if reach < self.total:
            return None
        for o, b in reversed(self.parts):  # the first copy of overlapping bytes wins
            buf[o : o + len(b)] = b[: max(self.total - o, 0)]
        return bytes(buf)


class IpReassembly:
    """Fragments in, whole datagrams out (see the module's docstring)."""

    def __init__(self, decoder: Decoder | None = None, *, timeout_ns: int = 60 * 10**9,
                 max_datagrams: int = 4096, max_bytes: int = 32 << 20) -> None:
        self.decoder = decoder if decoder is not None else Decoder()
        self.timeout_ns = timeout_ns
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self._pending: OrderedDict[tuple[Any, ...], _Datagram] = OrderedDict()
        self._bytes = 0
        self._count = 0  # packets seen without a frame number (the --stats path)
        self.completed = 0
        self.dropped = 0  # datagrams given up (timeout, limits, absurd lengths)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # ---- entry points ----

    def names(self, data: bytes, linktype: int) -> tuple[str, ...]:
        """The layer names of a fragment's packet after reassembly (``Decoder.fragments``)."""
        self._count += 1
        return self.packet(-self._count, None, self.decoder.decode(data, linktype)).names

    def packet(self, frame: int, ts_ns: int | None, pkt: Packet) -> Packet:
        """``pkt`` itself, or (for a fragment) the packet as reassembly shows it."""
        for lay in pkt.layers:
            if lay.fragmented:  # the first fragmented IP layer (a view attribute: cheap)
                return self._fragment(frame, ts_ns, pkt, pkt.layers.index(lay), lay)
        return pkt

    # ---- one fragment ----

    def _fragment(self, frame: int, ts_ns: int | None, pkt: Packet, i: int, ip: Any) -> Packet:
        got = _piece(ip)
        if ts_ns is not None:
            self._expire(ts_ns)
        if got is None:  # a header cut short: nothing to keep
            return _as_data(pkt, i, ip)
        key, offset, more, data, next_header = got
        d = self._pending.get(key)
        if d is None:
            d = self._pending[key] = _Datagram()
            d.next_header = next_header
        else:
            self._pending.move_to_end(key)
        if offset == 0:
            d.next_header = next_header
        d.parts.append((offset, data))
        d.frames.append(frame)
        d.bytes += len(data)
        d.last_ns = ts_ns
        self._bytes += len(data)
        if not more:
            d.total = offset + len(data)
        if offset + len(data) > MAX_DATAGRAM or (d.total is not None and d.total > MAX_DATAGRAM):
            self._drop(key)
            return _as_data(pkt, i, ip)
        whole = d.complete()
        if whole is None:
            self._limit()
            return _as_data(pkt, i, ip)
        self._forget(key)
        self.completed += 1
        upper = above_ip(d.next_header, whole, self.decoder.table, pkt.linktype)
        frames = tuple(f for _o, f in sorted(zip((o for o, _b in d.parts), d.frames,
                                                 strict=True)) if f >= 0)
        return Packet(pkt.linktype, pkt.data, [*pkt.layers[: i + 1], *upper], pkt.hint,
                      Reassembled(i, frames, len(whole)))

    # ---- memory ----

    def _forget(self, key: tuple[Any, ...]) -> None:
        d = self._pending.pop(key)
        self._bytes -= d.bytes

    def _drop(self, key: tuple[Any, ...]) -> None:
        self._forget(key)
        self.dropped += 1

    def _limit(self) -> None:
        while self._pending and (len(self._pending) > self.max_datagrams
                                 or self._bytes > self.max_bytes):
            self._drop(next(iter(self._pending)))

    def _expire(self, now: int) -> None:
        limit = now - self.timeout_ns
        while self._pending:
            key, d = next(iter(self._pending.items()))
            if d.last_ns is None or d.last_ns >= limit:
                break
            self._drop(key)


def _piece(ip: Any) -> tuple[tuple[Any, ...], int, bool, bytes, int] | None:
    """(key, offset in bytes, more fragments, the fragment's bytes, next header)."""
    if isinstance(ip, Ipv4):
        if len(ip.buf) < ip.hlen or ip.malformed:
            return None
        key = (4, bytes(ip.src), bytes(ip.dst), ip.proto, ip.id)
        return key, ip.frag_offset * 8, ip.more_fragments, bytes(ip.payload), ip.proto
    for e in ip.ext_headers:
        if e.type == NH_FRAGMENT:
            frag = ip.fragment
            if frag is None:
                return None
            start = e.offset + 8
            end = ip.end if ip.payload_length else len(ip.buf)
            key = (6, bytes(ip.src), bytes(ip.dst), frag.id)
            return key, frag.offset * 8, frag.more, bytes(ip.buf[start:end]), e.next_header
    return None


def _as_data(pkt: Packet, i: int, ip: Any) -> Packet:
    """A fragment as itself: its IP header, then its bytes as data of its protocol."""
    layers = pkt.layers
    nxt = layers[i + 1] if len(layers) > i + 1 else None
    if type(nxt) is Raw and len(layers) == i + 2:
        return pkt  # a later fragment: already data
    payload = _fragment_bytes(ip)
    tail: list[View] = [Raw(payload, ip.proto)] if len(payload) else []
    return Packet(pkt.linktype, pkt.data, [*layers[: i + 1], *tail], pkt.hint)


def _fragment_bytes(ip: Any) -> memoryview:
    if isinstance(ip, Ipv4):
        return ip.payload  # type: ignore[no-any-return]
    for e in ip.ext_headers:
        if e.type == NH_FRAGMENT:
            end = ip.end if ip.payload_length else len(ip.buf)
            return ip.buf[min(e.offset + 8, end) : end]  # type: ignore[no-any-return]
    return ip.payload  # type: ignore[no-any-return]
