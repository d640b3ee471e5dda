"""decode.descent: the walk on bytes and the walk over views agree.

Frames are built from parts chosen to hit every rule of the descent (VLAN tags of
each TPID, too many tags, cooked headers with odd hatype/halen, IPv4 with options,
bad IHL, short or zero total length, fragments; IPv6 with and without extension
headers, zero payload length; ARP, unknown EtherTypes) and then cut anywhere.
For each: the protocol hierarchy's fast path gives the names a full decode gives,
and the TCP analyser's fast path gives the events it gives from the decoded packet.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawlab.analysis.tcp import TcpAnalyzer
from rawlab.decode.checksum import inet_checksum, pseudo_header_v4, pseudo_header_v6
from rawlab.decode.descent import FRAG_LATER, FRAG_MORE, NO_L4, NO_NET, TSO, walk
from rawlab.decode.dispatch import Decoder
from rawlab.records import CsumHint, LinkType

pytestmark = pytest.mark.unit

DEC = Decoder()
T0 = 1_700_000_000 * 10**9
SETTINGS = settings(max_examples=600, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1)
ETHERTYPES = st.sampled_from([0x0800, 0x0800, 0x86DD, 0x0806, 0x88B5, 0x0200, 0x8100])
TPIDS = st.sampled_from([0x8100, 0x88A8, 0x9100, 0x9200])


@st.composite
def tcp(draw: st.DrawFn) -> bytes:
    opts = draw(st.sampled_from([b"", b"\x01\x01\x08\x0a" + bytes(range(8)),  # NOP NOP TS
                                 b"\x02\x04\x05\xb4\x04\x02\x01\x03\x03\x07",  # SYN's
                                 b"\x01\x01\x05\x0a\x00\x00\x00\x01\x00\x00\x00\x09",  # SACK
                                 b"\x02\x08\x05\x00",  # broken
                                 b"\xfd\x03\x00\x00"]))  # unknown kind
    opts += b"\0" * (-len(opts) % 4)
    off = draw(st.sampled_from([5 + len(opts) // 4, 5 + len(opts) // 4, 4, 15]))
    hdr = struct.pack("!HHIIHHHH", draw(u16), draw(u16), draw(u32), draw(u32),
                      off << 12 | draw(st.integers(0, 0x1FF)), draw(u16), 0, draw(u16))
    return hdr + opts + draw(st.binary(max_size=40))


@st.composite
def transport(draw: st.DrawFn, proto: int) -> bytes:
    if proto == 6:
        return draw(tcp())
    return draw(st.binary(max_size=48))


def fix_tcp_checksum(seg: bytes, pseudo: int) -> bytes:
    if len(seg) < 20:
        return seg
    cs = inet_checksum(seg[:16] + b"\0\0" + seg[18:], pseudo)
    return seg[:16] + struct.pack("!H", cs) + seg[18:]


@st.composite
def ipv4(draw: st.DrawFn) -> bytes:
    ihl = draw(st.sampled_from([5] * 8 + [6, 8, 15, 4, 0]))
    version = draw(st.sampled_from([4] * 8 + [6, 0]))
    proto = draw(st.sampled_from([6, 6, 6, 17, 1, 58, 4, 41, 253]))
    opts = draw(st.binary(min_size=max(ihl - 5, 0) * 4, max_size=max(ihl - 5, 0) * 4))
    body = draw(transport(proto))
    src, dst = draw(st.binary(min_size=4, max_size=4)), draw(st.binary(min_size=4, max_size=4))
    if proto == 6 and draw(st.booleans()):
        body = fix_tcp_checksum(body, pseudo_header_v4(src, dst, 6, len(body)))
    exact = 4 * max(ihl, 5) + len(body)
    tl = draw(st.sampled_from([exact] * 6 + [0, exact - 7, exact + 9, 20, 3]))
    frag = draw(st.sampled_from([0, 0, 0x4000, 0x4000, 0x2000, 0x2000 | 3, 5, 0x8000]))
    hdr = struct.pack("!BBHHHBBH4s4s", version << 4 | ihl, 0, max(tl, 0) & 0xFFFF, 1, frag,
                      64, proto, 0, src, dst)
    return hdr + opts + body


@st.composite
def ipv6(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from([6] * 6 + [4]))
    nh = draw(st.sampled_from([6, 6, 6, 17, 58, 59, 0, 43, 44, 60, 4, 41]))
    ext = b""
    if nh in (0, 43, 60):
        ext = bytes((6, 0)) + bytes(6)
    elif nh == 44:
        ext = bytes((6, 0)) + struct.pack("!HI", draw(st.sampled_from([0, 1, 8])), 7)
    body = draw(transport(6 if ext else nh))
    src, dst = draw(st.binary(min_size=16, max_size=16)), draw(st.binary(min_size=16,
                                                                          max_size=16))
    if nh == 6 and draw(st.booleans()):
        body = fix_tcp_checksum(body, pseudo_header_v6(src, dst, 6, len(body)))
    exact = len(ext) + len(body)
    pl = draw(st.sampled_from([exact, exact, 0, exact + 5, 3]))
    hdr = struct.pack("!IHBB16s16s", version << 28, pl, nh, 64, src, dst)
    return hdr + ext + body


@st.composite
def network(draw: st.DrawFn, ethertype: int) -> bytes:
    if ethertype == 0x0800:
        return draw(ipv4())
    if ethertype == 0x86DD:
        return draw(ipv6())
    return draw(st.binary(max_size=40))


@st.composite
def frames(draw: st.DrawFn) -> tuple[int, bytes]:
    linktype = draw(st.sampled_from([LinkType.ETHERNET, LinkType.ETHERNET, LinkType.LINUX_SLL,
                                     LinkType.LINUX_SLL2, LinkType.RAW, LinkType.IPV4,
                                     LinkType.IPV6]))
    et = draw(ETHERTYPES)
    if linktype == LinkType.ETHERNET:
        # dst, src, then per tag its TPID (in the type field before it) and TCI
        tags = b"".join(struct.pack("!HH", draw(TPIDS), draw(u16))
                        for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3, 9]))))
        head = b"\x02" * 12 + tags + struct.pack("!H", et)
    elif linktype == LinkType.LINUX_SLL:
        head = struct.pack("!HHH8sH", 0, draw(st.sampled_from([1, 772, 824, 9])),
                           draw(st.sampled_from([6, 0, 8, 9])), bytes(8), et)
    elif linktype == LinkType.LINUX_SLL2:
        head = struct.pack("!HHIHBB8s", et, 0, 2, draw(st.sampled_from([1, 772, 824])), 0,
                           draw(st.sampled_from([6, 0, 8, 9])), bytes(8))
    else:
        head = b""
        et = {LinkType.IPV4: 0x0800, LinkType.IPV6: 0x86DD}.get(
            linktype, draw(st.sampled_from([0x0800, 0x86DD, 0x0200])))
    frame = head + draw(network(et))
    cut = draw(st.sampled_from([len(frame)] * 4 + [None]))
    if cut is None:
        cut = draw(st.integers(0, len(frame)))
    return int(linktype), frame[:cut]


@SETTINGS
@given(frames())
def test_hierarchy_fast_path_names_what_decode_names(lt_frame: tuple[int, bytes]) -> None:
    linktype, frame = lt_frame
    assert DEC.path(frame, linktype) == DEC.decode(frame, linktype).names


@SETTINGS
@given(frames(), st.sampled_from([0, int(CsumHint.VALID), int(CsumHint.NOT_READY)]))
def test_tcp_fast_path_gives_the_events_of_the_decoded_packet(lt_frame: tuple[int, bytes],
                                                              hint: int) -> None:
    linktype, frame = lt_frame
    fast, slow = TcpAnalyzer(), TcpAnalyzer()
    got: list[Any] = fast.feed_bytes(1, T0, frame, linktype, hint) + fast.finish()
    want: list[Any] = slow.feed(1, T0, DEC.decode(frame, linktype, CsumHint(hint))) \
        + slow.finish()
    assert got == want


def test_walk_answers() -> None:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, bytes(4), bytes(4))
    seg = bytes(20)
    eth = bytes(12) + b"\x08\x00"
    assert walk(eth + ip + seg, LinkType.ETHERNET) == (0x0800, 14, 6, 34, 54, 0)
    qinq = bytes(12) + b"\x88\xa8\x00\x01\x81\x00\x00\x02\x08\x00"
    assert walk(qinq + ip + seg, LinkType.ETHERNET) == (0x0800, 22, 6, 42, 62, 0)
    assert walk(qinq + ip + seg[:4], LinkType.ETHERNET) == (0x0800, 22, 6, 42, 62, 0)
    tso = ip[:2] + b"\0\0" + ip[4:]
    assert walk(tso + seg, LinkType.RAW) == (0x0800, 0, 6, 20, 40, TSO)
    later = ip[:6] + b"\x00\x10" + ip[8:]
    assert walk(later + seg, LinkType.RAW)[5] == FRAG_LATER
    first = ip[:6] + b"\x20\x00" + ip[8:]
    assert walk(first + seg, LinkType.RAW)[5] == FRAG_MORE
    assert walk(eth, LinkType.ETHERNET)[0] == NO_NET
    assert walk(eth + ip[:19], LinkType.ETHERNET)[2] == NO_L4
    assert walk(bytes(12) + b"\x88\xb5" + b"xy", LinkType.ETHERNET) == (0x88B5, 14, NO_L4, 0,
                                                                          0, 0)
    v6 = struct.pack("!IHBB16s16s", 6 << 28, 20, 44, 64, bytes(16), bytes(16)) + bytes(28)
    assert walk(v6, LinkType.RAW) is None  # an extension header: decode it
    assert walk(b"\0" * 40, LinkType.NETLINK) is None
