"""Issue 13 item 9, checked against tshark: multi-section pcapng through -w, Simple Packet
Blocks and custom blocks numbered as tshark numbers frames, exact nanosecond
timestamps, fraction fields past a second, checksums judged over the bytes tshark
judges (UDP length against the IP payload, an IP length past the frame, an SRH's final
segment, the Home Address option), values never invented for bytes not captured,
and headers whose version nibble is wrong not read as IP.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tcp_tshark import have_tshark

from rawlab import pipeline
from rawlab.cli import main
from rawlab.decode.checksum import inet_checksum, pseudo_header_v4, pseudo_header_v6
from rawlab.decode.dispatch import Decoder
from rawlab.pcap.reader import open_file
from rawlab.pcap.writer import PcapngWriter, PcapWriter
from rawlab.present.packet import JsonSink, tree
from rawlab.records import LinkType, Record

pytestmark = pytest.mark.unit
needs_tshark = pytest.mark.skipif(not have_tshark(),
                                  reason="tshark is not installed (Debian package tshark)")
ETH = bytes.fromhex("020000000002020000000001")
SRC, DST = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))


def _json(path: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    with open_file(path) as cap:
        pipeline.run(cap, [JsonSink(out)],
                     interfaces=lambda i: cap.interfaces[i] if 0 <= i < len(cap.interfaces)
                     else None)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _tshark(path: Path, *fields: str, opts: tuple[str, ...] = ()) -> list[list[str]]:
    cmd = ["tshark", "-n", "-r", str(path), *opts, "-T", "fields", "-E", "separator=;"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split(";") for line in out.splitlines()]


def _udp4(payload: bytes, ulen: int | None = None) -> bytes:
    ulen = 8 + len(payload) if ulen is None else ulen
    h = struct.pack("!HHHH", 1000, 2000, ulen, 0) + payload
    cs = inet_checksum(h[:ulen], pseudo_header_v4(SRC, DST, 17, min(ulen, len(h))))
    return h[:6] + struct.pack("!H", cs) + h[8:]


def _ipv4(body: bytes, proto: int = 17, total: int | None = None) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total or 20 + len(body), 1, 0, 64, proto, 0,
                     SRC, DST)
    return ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:] + body


# ---- pcapng sections, SPB, custom blocks ------------------------------------------------

def _two_sections(tmp_path: Path) -> Path:
    a, b = tmp_path / "a.pcapng", tmp_path / "b.pcapng"
    with PcapngWriter(a) as w:
        w.write(w.add_interface(1, "eth0"), 10**18, ETH + b"\x08\x00" + _ipv4(_udp4(b"x")))
    with PcapngWriter(b) as w:
        sll = struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800)
        w.write(w.add_interface(113, "any"), 10**18 + 1, sll + _ipv4(_udp4(b"y")))
    cat = tmp_path / "cat.pcapng"
    cat.write_bytes(a.read_bytes() + b.read_bytes())
    return cat


def test_write_keeps_each_sections_interfaces(tmp_path: Path) -> None:
    cat = _two_sections(tmp_path)
    pkts = _json(cat)
    assert [p["layers"][0] for p in pkts] == ["eth", "sll"] and pkts[1]["section"] == 1
    out = tmp_path / "out.pcapng"
    r = CliRunner().invoke(main, ["read", str(cat), "-w", str(out), "-q"],
                           catch_exceptions=False)
    assert r.exit_code == 0
    with open_file(out) as cap:
        back = list(cap)
        assert [(i.linktype, i.name) for i in cap.interfaces] == [(1, "eth0"), (113, "any")]
    assert [(rec.interface, rec.linktype) for rec in back] == [(0, 1), (1, 113)]
    assert [p["layers"] for p in _json(out)] == [p["layers"] for p in pkts]


def _odd_blocks(path: Path) -> Path:
    """SHB, IDB, EPB, SPB, custom block, EPB, no-copy custom block, ISB, EPB."""
    def blk(t: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", t, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    frame = ETH + b"\x08\x00" + _ipv4(_udp4(b"hi"))

    def epb(ts: int) -> bytes:
        return blk(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame),
                                  len(frame)) + frame)

    path.write_bytes(
        blk(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
        + blk(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 9, 1) + b"\x09\0\0\0")
        + epb(1_700_000_000_123_456_789) + blk(3, struct.pack("<I", len(frame)) + frame)
        + blk(0x0BAD, struct.pack("<I", 32473) + b"hello custom") + epb(1_700_000_001 * 10**9)
        + blk(0x40000BAD, struct.pack("<I", 32473) + b"no copy")
        + blk(5, struct.pack("<III", 0, 0, 0)) + epb(1_700_000_002 * 10**9))
    return path


@needs_tshark
def test_frames_are_numbered_as_tshark_numbers_them(tmp_path: Path) -> None:
    path = _odd_blocks(tmp_path / "odd.pcapng")
    want = _tshark(path, "frame.number", "frame.len", "frame.time_epoch")
    got = _json(path)
    assert [(p["frame"], p["len"]) for p in got] == [(int(n), int(ln)) for n, ln, _t in want]
    # no timestamp where tshark shows none (SPB, custom blocks); the others exact, in ns
    for p, (_n, _ln, t) in zip(got, want, strict=True):
        if not t:
            assert p["ts"] is None and p["ts_ns"] is None
        else:
            sec, frac = t.split(".")
            assert p["ts_ns"] == int(sec) * 10**9 + int(frac.ljust(9, "0"))
    assert got[2]["layers"] == ["data"] and got[2]["block"] == {"type": 0x0BAD, "pen": 32473}


def test_write_keeps_spb_and_copyable_custom_blocks_only(tmp_path: Path) -> None:
    path = _odd_blocks(tmp_path / "odd.pcapng")
    out = tmp_path / "out.pcapng"
    CliRunner().invoke(main, ["read", str(path), "-w", str(out), "-q"], catch_exceptions=False)
    back = _json(out)
    assert [p["len"] for p in back] == [44, 44, 12, 44, 44]  # the no-copy block is gone
    assert back[1]["ts_ns"] is None and back[2]["block"]["pen"] == 32473


@needs_tshark
def test_a_fraction_past_a_second_is_the_instant_tshark_computes(tmp_path: Path) -> None:
    frame = ETH + b"\x08\x00" + _ipv4(_udp4(b"x"))
    path = tmp_path / "usec.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
                     + struct.pack("<IIII", 1000, 1_500_000, len(frame), len(frame)) + frame
                     + struct.pack("<IIII", 1001, 999_999, len(frame), len(frame)) + frame)
    got = [p["ts_ns"] for p in _json(path)]
    assert got == [1_001_500_000_000, 1_001_999_999_000]
    (_, rel), = _tshark(path, "frame.number", "frame.time_relative")[1:]
    assert round(float(rel) * 10**9) == got[1] - got[0]  # tshark: 1000 s + 1.5 s, too


# ---- checksums over the bytes tshark judges ---------------------------------------------

def _lengths_capture(path: Path) -> Path:
    h = struct.pack("!HHHH", 1000, 2000, 13, 0) + b"helloXXXX"
    whole = inet_checksum(h, pseudo_header_v4(SRC, DST, 17, len(h)))
    frames = [
        _ipv4(_udp4(b"hello") + b"XXXX"),  # UDP length 13 < IP payload 17: covers 13: good
        _ipv4(h[:6] + struct.pack("!H", whole) + h[8:]),  # over all 17 bytes: bad
        _ipv4(_udp4(b"hello", ulen=30)),  # UDP length past the IP payload: unverified
        _ipv4(_udp4(b"hello"), total=200),  # IP length past the (whole) frame: good
    ]
    with PcapWriter(path, LinkType.ETHERNET) as w:
        for i, ip in enumerate(frames):
            f = ETH + b"\x08\x00" + ip
            w.write(10**18 + i, f, len(f))
    return path


def test_udp_and_ip_lengths_judged_as_tshark(tmp_path: Path) -> None:
    got = [p["udp"]["checksum_status"] for p in _json(_lengths_capture(tmp_path / "l.pcap"))]
    assert got == ["good", "bad", "unverified", "good"]


@needs_tshark
def test_tshark_judges_those_lengths_alike(tmp_path: Path) -> None:
    path = _lengths_capture(tmp_path / "l.pcap")
    status = {"0": "bad", "1": "good", "2": "unverified"}
    want = [status[s] for (s,) in _tshark(path, "udp.checksum.status",
                                          opts=("-o", "udp.check_checksum:TRUE"))]
    assert [p["udp"]["checksum_status"] for p in _json(path)] == want


def _v6_udp(src: bytes, dst_in_header: bytes, final: bytes, exts: bytes, nh: int,
            pseudo_src: bytes | None = None) -> bytes:
    body = struct.pack("!HHHH", 7, 9, 12, 0) + b"data"
    cs = inet_checksum(body, pseudo_header_v6(pseudo_src or src, final, 17, len(body)))
    body = body[:6] + struct.pack("!H", cs) + body[8:]
    return struct.pack("!IHBB16s16s", 6 << 28, len(exts) + len(body), nh, 64, src,
                       dst_in_header) + exts + body


@needs_tshark
def test_ipv6_pseudo_header_final_destination_and_home_address(tmp_path: Path) -> None:
    a, b, c, home = (bytes(15) + bytes((i,)) for i in (1, 2, 3, 9))
    srh = struct.pack("!BBBBBBH", 17, 4, 4, 1, 1, 0, 0) + c + b  # segments left 1: c is final
    hao = struct.pack("!BB", 17, 2) + b"\x01\x02\x00\x00" + struct.pack("!BB", 0xC9, 16) + home
    frames = [_v6_udp(a, b, c, srh, 43), _v6_udp(a, b, b, hao, 60, pseudo_src=home)]
    path = tmp_path / "v6.pcap"
    with PcapWriter(path, LinkType.RAW) as w:
        for i, f in enumerate(frames):
            w.write(10**18 + i, f, len(f))
    got = [p["udp"]["checksum_status"] for p in _json(path)]
    assert got == ["good", "good"]
    status = {"0": "bad", "1": "good", "2": "unverified"}
    want = [status[s] for (s,) in _tshark(path, "udp.checksum.status",
                                          opts=("-o", "udp.check_checksum:TRUE"))]
    assert got == want


# ---- absent means absent; versions ------------------------------------------------------

def test_values_not_captured_are_absent() -> None:
    v6 = _v6_udp(bytes(15) + b"\x01", bytes.fromhex("26000000000000000000000000000001"),
                 bytes.fromhex("26000000000000000000000000000001"), b"", 17)
    pkt = Decoder().decode(v6[:39], LinkType.RAW)
    d = pkt.layers[0].fields()
    assert d["src"] is not None and d["dst"] is None  # 39 bytes: dst has 15 of its 16
    tcp = Decoder().decode(_ipv4(bytes.fromhex("0050c0000000000100000000"), proto=6),
                           LinkType.RAW)
    t = tcp.layers[1].fields()
    assert t["sport"] == 80 and t["ack"] == 0 and t["flags"] is None and t["window"] is None
    rec = Record(0, 32, LinkType.RAW, bytes(tcp.data))
    text = "\n".join(tree(1, rec, tcp, None))
    assert "flags          (not captured)" in text and "window         (not captured)" in text
    js = io.StringIO()
    JsonSink(js).packet(1, rec, tcp, None)
    obj = json.loads(js.getvalue())
    assert obj["tcp"]["window"] is None and obj["tcp"]["sport"] == 80


@pytest.mark.parametrize("linktype, first", [
    (LinkType.IPV4, 0x35), (LinkType.IPV6, 0x45), (LinkType.ETHERNET, 0x55)])
def test_wrong_version_nibbles_are_not_ip(linktype: int, first: int) -> None:
    ip = bytearray(_ipv4(_udp4(b"x")))
    ip[0] = first
    head = ETH + (b"\x86\xdd" if first == 0x55 else b"") if linktype == LinkType.ETHERNET else b""
    data = head + bytes(ip)
    p = Decoder().decode(data, linktype)
    assert p.names[-1] == "data" and "ipv4" not in p.names and "ipv6" not in p.names
    assert Decoder().path(data, linktype) == p.names


def test_version_6_in_an_ipv4_place_is_ipv6() -> None:
    v6 = _v6_udp(bytes(15) + b"\x01", bytes(15) + b"\x02", bytes(15) + b"\x02", b"", 17)
    eth = ETH + b"\x08\x00" + v6
    p = Decoder().decode(eth, LinkType.ETHERNET)
    assert p.names == ("eth", "ipv6", "udp")
    assert Decoder().path(eth, LinkType.ETHERNET) == p.names
