"""The TPACKET_V3 capture engine (rawlab.sockets.packet), in throwaway namespaces.

Every frame is sent inside namespaces the test created (veth pairs, lo).
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rawlab.errors import Exit, RawlabError
from rawlab.lab.netns import Lab, Netns, in_child
from rawlab.records import CaptureInfo, CsumHint, Direction, Record
from rawlab.sockets.packet import (
    Fanout,
    PacketInfo,
    RingConfig,
    open_ring,
)

SMALL = RingConfig(ring_mb=2, block_size=1 << 16, block_timeout_ms=10)
ETYPE = 0x88B5  # IEEE local experimental EtherType: nothing else sends it
IDLE = 0.3


def mac_of(ns: Netns, ifname: str) -> bytes:
    link = json.loads(ns.run(["ip", "-j", "link", "show", ifname]).stdout)[0]
    return bytes.fromhex(link["address"].replace(":", ""))


def frame(dst: bytes, payload: bytes, etype: int = ETYPE,
          src: bytes = b"\x02\0\0\0\0\x01") -> bytes:
    return dst + src + struct.pack("!H", etype) + payload


class Pair:
    def __init__(self, lab: Lab, offloads: bool = False) -> None:
        self.a = lab.netns("a")
        self.b = lab.netns("b")
        self.veth = lab.veth(self.a, self.b, "10.77.0.1/24", "10.77.0.2/24", offloads=offloads)
        self.mac0 = mac_of(self.a, "veth0")
        self.mac1 = mac_of(self.b, "veth1")

    def raw_sender(self) -> socket.socket:
        with self.a.entered():
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind(("veth0", 0))
        return s


@pytest.fixture
def pair(lab: Lab) -> Iterator[Pair]:
    yield Pair(lab)


def drain(cap: Any) -> list[Record]:
    return list(cap.records(idle=IDLE))


def write_pcap(path: Path, linktype: int, records: list[Record]) -> None:
    """A classic nanosecond pcap file (what tcpdump -r reads)."""
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
        for r in records:
            fh.write(struct.pack("<IIII", r.ts_ns // 10**9, r.ts_ns % 10**9, len(r.data),
                                 r.wirelen))
            fh.write(r.data)


def tcpdump_select(path: Path, expr: str) -> list[bytes]:
    """The packets of a file that `tcpdump -r FILE EXPR` keeps, as bytes."""
    out = path.with_suffix(".out")
    subprocess.run(["tcpdump", "-r", str(path), "-w", str(out), expr], check=True,
                   capture_output=True)
    raw = out.read_bytes()
    off, pkts = 24, []
    while off < len(raw):
        incl = struct.unpack_from("<I", raw, off + 8)[0]
        pkts.append(raw[off + 16: off + 16 + incl])
        off += 16 + incl
    return pkts


# ---- bytes and metadata --------------------------------------------------------

def test_byte_exact_capture_and_pkttypes(pair: Pair) -> None:
    dsts = {pair.mac1: 0, b"\xff" * 6: 1, b"\x01\x00\x5e\x00\x00\x07": 2,
            b"\x02\x11\x22\x33\x44\x55": 3}
    sent = [frame(d, bytes([i]) * (50 + 37 * i)) for i, d in enumerate(dsts)]
    f = f"ether proto {ETYPE:#x}"
    with open_ring("veth1", bpf=f, netns=pair.b.name, config=SMALL) as rx, \
            open_ring("veth0", bpf=f, netns=pair.a.name, config=SMALL) as tx:
        s = pair.raw_sender()
        for fr in sent:
            s.send(fr)
        got = []
        for info, view in rx.zero_copy(idle=IDLE):
            assert isinstance(info, CaptureInfo) and isinstance(info, PacketInfo)
            got.append((info, bytes(view)))
        out = drain(tx)
    assert [g[1] for g in got] == sent
    assert [g[0].pkttype for g in got] == list(dsts.values())
    for info, data in got:
        assert info.direction == Direction.INBOUND
        assert info.caplen == info.wirelen == len(data)
        assert info.protocol == ETYPE
        assert info.ifindex == rx.ifindex
        assert abs(info.ts_ns - time.time_ns()) < 10 * 10**9
    assert rx.linktype == 1
    assert [r.data for r in out] == sent
    assert all(r.direction == Direction.OUTBOUND and r.linktype == 1 for r in out)


def test_direction_on_the_sender_and_q_in(pair: Pair) -> None:
    with open_ring("veth0", bpf="icmp", netns=pair.a.name, config=SMALL) as both, \
            open_ring("veth0", bpf="icmp", netns=pair.a.name, config=SMALL,
                         direction="in") as only_in:
        pair.a.run(["ping", "-c", "1", "-W", "1", "10.77.0.2"])
        recs = drain(both)
        ins = drain(only_in)
        st = only_in.stats()
    kinds = [(r.direction, r.data[34]) for r in recs]  # ICMP type
    assert kinds == [(Direction.OUTBOUND, 8), (Direction.INBOUND, 0)]
    assert [r.data[34] for r in ins] == [0]
    assert st.received == 2 and st.captured == 1 and st.skipped == 1


def test_vlan_tag_becomes_metadata(pair: Pair) -> None:
    tci = (5 << 13) | 42
    inner = struct.pack("!H", ETYPE) + bytes(range(48))
    tagged = pair.mac1 + b"\x02\0\0\0\0\x01" + struct.pack("!HH", 0x8100, tci) + inner
    # "vlan 42" is compiled as tcpdump -i compiles it: on the tag the kernel stripped.
    with open_ring("veth1", bpf="vlan 42", netns=pair.b.name, config=SMALL) as rx, \
            open_ring("veth0", bpf="vlan 42", netns=pair.a.name, config=SMALL) as tx:
        pair.raw_sender().send(tagged)
        got = [(i, bytes(v)) for i, v in rx.zero_copy(idle=IDLE)]
        out = drain(tx)
    assert len(got) == 1
    info, data = got[0]
    assert data == tagged[:12] + inner  # received: tag stripped into tp_vlan_tci
    assert (info.vlan, info.vlan_tci, info.vlan_tpid) == (42, tci, 0x8100)
    assert [(r.data, r.vlan) for r in out] == [(tagged, None)]  # sent: tag still in line


def test_records_put_the_stripped_vlan_tag_back(pair: Pair) -> None:
    tci = (3 << 13) | 7
    inner = struct.pack("!H", ETYPE) + bytes(range(48))
    tagged = pair.mac1 + b"\x02\0\0\0\0\x01" + struct.pack("!HH", 0x8100, tci) + inner
    with open_ring("veth1", bpf="vlan 7", netns=pair.b.name, config=SMALL) as rx:
        pair.raw_sender().send(tagged)
        recs = list(rx.records(idle=IDLE))
    assert len(recs) == 1
    r = recs[0]
    assert r.data == tagged  # as libpcap: the frame as it was on the wire
    assert r.vlan == 7 and r.wirelen == len(tagged) == r.caplen


def test_checksum_hint_offloaded_vs_not(lab: Lab) -> None:
    def syn_hints(p: Pair, port: int) -> tuple[CsumHint, CsumHint]:
        f = f"tcp port {port} and tcp[tcpflags] == tcp-syn"
        with open_ring("veth0", bpf=f, netns=p.a.name, config=SMALL) as tx, \
                open_ring("veth1", bpf=f, netns=p.b.name, config=SMALL) as rx:
            with p.b.entered():
                srv = socket.socket()
            srv.bind(("10.77.0.2", port))
            srv.listen()
            with p.a.entered():
                cl = socket.create_connection(("10.77.0.2", port), timeout=2)
            cl.close()
            srv.close()
            (out,), (inc,) = drain(tx), drain(rx)
        return out.csum_status, inc.csum_status

    on = Pair(lab, offloads=True)
    assert syn_hints(on, 7001) == (CsumHint.NOT_READY, CsumHint.NOT_READY)
    off = Pair(lab, offloads=False)
    assert syn_hints(off, 7002) == (CsumHint.NONE, CsumHint.NONE)
    # The sender computes the checksum; GRO on the receiving veth (its NAPI path)
    # validates it: CHECKSUM_UNNECESSARY → TP_STATUS_CSUM_VALID. (Since 6.0 veth no
    # longer marks CHECKSUM_NONE packets "unnecessary" just because rx offload is on.)
    off.b.run(["ethtool", "-K", "veth1", "gro", "on"])
    assert syn_hints(off, 7003) == (CsumHint.NONE, CsumHint.VALID)


def test_snaplen_truncates_in_the_kernel(pair: Pair) -> None:
    sent = frame(pair.mac1, bytes(1000))
    with open_ring("veth1", bpf=f"ether proto {ETYPE:#x}", snaplen=64, netns=pair.b.name,
                      config=SMALL) as rx:
        pair.raw_sender().send(sent)
        (rec,) = drain(rx)
    assert rec.data == sent[:64] and rec.wirelen == len(sent)


def test_reading_resumes_inside_a_block(pair: Pair) -> None:
    sent = [frame(pair.mac1, bytes([i]) * 60) for i in range(10)]
    with open_ring("veth1", bpf=f"ether proto {ETYPE:#x}", netns=pair.b.name,
                      config=SMALL) as rx:
        s = pair.raw_sender()
        for fr in sent:
            s.send(fr)
        time.sleep(0.05)
        first = [bytes(v) for _, v in rx.zero_copy(count=3, idle=IDLE)]
        rest = [r.data for r in rx.records(idle=IDLE)]
        st = rx.stats()
    assert first + rest == sent
    assert (st.received, st.captured, st.dropped) == (10, 10, 0)


# ---- filters -------------------------------------------------------------------

FILTERS = ["udp port 5000", "icmp", "arp or (udp and dst port 5001)", "ether broadcast",
           "ip[8] == 64 and udp", "not ip6"]


def _mixed_traffic(p: Pair) -> None:
    with p.a.entered():
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for port in (5000, 5001, 5002, 5000):
        u.sendto(b"hello", ("10.77.0.2", port))
    u.close()
    p.a.run(["ping", "-c", "1", "-W", "1", "10.77.0.2"], check=False)
    s = p.raw_sender()
    s.send(frame(b"\xff" * 6, bytes(50)))
    s.send(frame(p.mac1, bytes(50)))


def test_filters_select_what_tcpdump_selects(pair: Pair, tmp_path: Path) -> None:
    caps = {e: open_ring("veth1", bpf=e, netns=pair.b.name, config=SMALL) for e in FILTERS}
    caps[""] = open_ring("veth1", netns=pair.b.name, config=SMALL)
    try:
        _mixed_traffic(pair)
        got = {e: [r.data for r in drain(c)] for e, c in caps.items()}
    finally:
        for c in caps.values():
            c.close()
    everything = [Record(i, len(d), 1, d) for i, d in enumerate(got[""])]
    path = tmp_path / "all.pcap"
    write_pcap(path, 1, everything)
    assert len(everything) >= 8
    for e in FILTERS:
        assert got[e] == tcpdump_select(path, e), e
        assert got[e], e


def test_any_device_sll2_and_cooked_filter(pair: Pair, tmp_path: Path) -> None:
    with open_ring("any", netns=pair.b.name, config=SMALL) as cap_all, \
            open_ring("any", bpf="udp port 5000 or icmp", netns=pair.b.name,
                         config=SMALL) as cap_f:
        assert cap_all.linktype == 276 and cap_all.cooked_hdrlen == 20
        _mixed_traffic(pair)
        pair.b.run(["ping", "-c", "1", "127.0.0.1"])
        everything = drain(cap_all)
        filtered = drain(cap_f)
        names = {i: cap_all.ifname(i) for i in {r.ifindex for r in everything}}
    assert set(names.values()) == {"veth1", "lo"}
    for r in everything:
        _proto, _, ifindex, hatype, pkttype, halen = struct.unpack_from("!HHiHBB", r.data)
        assert ifindex == r.ifindex and r.linktype == 276
        assert hatype in (1, 772) and halen == 6
        assert (pkttype == 4) == (r.direction == Direction.OUTBOUND)
    lo_icmp = [r for r in everything if names[r.ifindex] == "lo"]
    assert len(lo_icmp) == 2  # lo's outgoing copies are skipped, as tcpdump does
    path = tmp_path / "any.pcap"
    write_pcap(path, 276, everything)
    assert [r.data for r in filtered] == tcpdump_select(path, "udp port 5000 or icmp")
    assert len(filtered) >= 2 + 2 + 2  # udp/5000, request+reply on veth1 and on lo (+ unreachables)


def test_lo_shows_each_packet_once(lab: Lab) -> None:
    ns = lab.netns("lo")
    with open_ring("lo", bpf="icmp", netns=ns.name, config=SMALL) as cap:
        ns.run(["ping", "-c", "2", "-i", "0.2", "127.0.0.1"])
        recs = drain(cap)
        st = cap.stats()
    assert [r.data[34] for r in recs] == [8, 0, 8, 0]
    assert all(r.direction == Direction.INBOUND for r in recs)
    assert (st.captured, st.received, st.skipped) == (4, 8, 4)  # tcpdump: 4 captured, 8 received


def test_no_unfiltered_packet_reaches_the_ring(pair: Pair) -> None:
    flood = pair.a.popen(["ping", "-f", "-c", "3000", "10.77.0.2"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.05)
        with open_ring("veth1", bpf="udp port 5000", netns=pair.b.name, config=SMALL) as cap:
            with pair.a.entered():
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(3):
                u.sendto(b"x", ("10.77.0.2", 5000))
            recs = drain(cap)
    finally:
        flood.kill()
        flood.wait()
    assert flood.returncode is not None
    assert len(recs) == 3
    assert all(r.data[23] == 17 and r.data[36:38] == b"\x13\x88" for r in recs)


# ---- counters ------------------------------------------------------------------

def test_drops_add_up_with_a_tiny_ring(pair: Pair) -> None:
    tiny = RingConfig(ring_mb=1, block_size=1 << 16, block_timeout_ms=10)  # ~7k frames
    n = 20000
    with open_ring("veth1", bpf=f"ether proto {ETYPE:#x}", netns=pair.b.name,
                      config=tiny) as rx:
        s = pair.raw_sender()
        fr = frame(pair.mac1, bytes(46))
        for _ in range(n):
            s.send(fr)
        got = sum(1 for _ in rx.zero_copy(idle=IDLE))
        st = rx.stats()
    assert st.dropped > 0
    assert got == st.captured
    assert st.captured + st.dropped == st.received == n


def test_fanout_shares_the_traffic(pair: Pair) -> None:
    f = f"ether proto {ETYPE:#x}"
    fan = Fanout(group=4242, mode="lb")
    with open_ring("veth1", bpf=f, netns=pair.b.name, config=SMALL, fanout=fan) as c1, \
            open_ring("veth1", bpf=f, netns=pair.b.name, config=SMALL, fanout=fan) as c2:
        s = pair.raw_sender()
        for i in range(100):
            s.send(frame(pair.mac1, bytes([i]) * 50))
        n1, n2 = len(drain(c1)), len(drain(c2))
    assert n1 + n2 == 100 and n1 > 0 and n2 > 0


def test_promisc_is_released_on_close(pair: Pair) -> None:
    def promiscuity() -> int:
        out = pair.b.run(["ip", "-j", "-d", "link", "show", "veth1"]).stdout
        return int(json.loads(out)[0]["promiscuity"])

    assert promiscuity() == 0
    with open_ring("veth1", promisc=True, netns=pair.b.name, config=SMALL):
        assert promiscuity() == 1
    assert promiscuity() == 0


# ---- errors --------------------------------------------------------------------

def test_unknown_interface_lists_the_real_ones(pair: Pair) -> None:
    with pytest.raises(RawlabError) as ei:
        open_ring("nosuch0", netns=pair.b.name)
    assert ei.value.code == Exit.USAGE
    assert "'nosuch0'" in ei.value.message and "veth1" in ei.value.message
    assert "lo" in ei.value.message and "fix:" in ei.value.message


def test_bad_filter_carries_libpcaps_message(pair: Pair) -> None:
    with pytest.raises(RawlabError) as ei:
        open_ring("veth1", bpf="udp prot 53", netns=pair.b.name, config=SMALL)
    assert ei.value.code == Exit.USAGE
    assert "syntax error" in ei.value.message


def test_ring_too_big_says_the_size(pair: Pair) -> None:
    with pytest.raises(RawlabError) as ei:
        open_ring("veth1", netns=pair.b.name, config=RingConfig(ring_mb=1 << 20))
    assert ei.value.code == Exit.USAGE
    assert "1048576 MiB" in ei.value.message and "--ring-mb" in ei.value.message


def test_without_cap_net_raw_the_error_explains(pair: Pair) -> None:
    def attempt() -> list[Any]:
        try:
            open_ring("lo").close()
        except RawlabError as exc:
            return [int(exc.code), exc.message]
        return [0, ""]

    code, message = in_child(attempt, flags=0, user=65534)
    assert code == Exit.PRIVILEGE
    assert "CAP_NET_RAW" in message and "fix:" in message
