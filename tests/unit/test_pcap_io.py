"""pcap/pcapng reading and writing: round trips, tshark agreement, bad input."""

from __future__ import annotations

import io
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from rawlab.errors import Exit, RawlabError
from rawlab.pcap.reader import open_file, read_records
from rawlab.pcap.writer import PcapngWriter, PcapWriter
from rawlab.records import PCAPNG_CUSTOM, Direction, LinkType, Record

pytestmark = pytest.mark.unit

ETH = bytes.fromhex(
    "00112233445566778899aabb08004500003c1234400040063c51c0000201c63364029c4001bb01020304"
    "00000000a002faf0dc940000020405b40402080a0001e2400000000001030307"
)
RAW_ICMP = bytes.fromhex("45000020000100004001f6d8c0000201c00002020800f0f34242000361626364")
SLL2 = bytes.fromhex("0800000000000003000100060200000000010000") + RAW_ICMP
NETLINK = struct.pack("!HHH8sH", 4, 824, 0, bytes(8), 0) + struct.pack("=IHHII", 16, 3, 2, 1, 0)
VSOCK = struct.pack("<QQIIHHH2s", 3, 2, 1024, 5000, 1, 0, 0, b"\0\0")
TS0 = 1_700_000_000_123_456_789
tshark = shutil.which("tshark")


def tshark_lengths(path: Path) -> list[tuple[int, int]]:
    out = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "frame.len",
         "-e", "frame.cap_len"],
        capture_output=True, text=True, check=True, timeout=60).stdout
    return [(int(a), int(b), int(c)) for a, b, c in (ln.split("\t") for ln in out.splitlines())]


def write_mixed(path: Path) -> list[tuple[int, int, bytes, int, int]]:
    """Several interfaces with different link types; returns (iface, ts, data, wirelen, dir)."""
    sent = []
    with PcapngWriter(path) as w:
        ifs = [w.add_interface(LinkType.ETHERNET, "veth0"),
               w.add_interface(LinkType.RAW, "tun0", snaplen=65535, description="a tunnel"),
               w.add_interface(LinkType.LINUX_SLL2, "any"),
               w.add_interface(LinkType.NETLINK, "nlmon0"),
               w.add_interface(LinkType.VSOCK, "vsockmon0")]
        for i, (iface, data) in enumerate([(ifs[0], ETH), (ifs[1], RAW_ICMP), (ifs[2], SLL2),
                                           (ifs[3], NETLINK), (ifs[4], VSOCK), (ifs[0], ETH[:3]),
                                           (ifs[1], b"")]):
            wirelen = len(data) + (100 if i == 5 else 0)
            d = (Direction.INBOUND, Direction.OUTBOUND, Direction.UNKNOWN)[i % 3]
            w.write(iface, TS0 + i * 1001, data, wirelen, d)
            sent.append((iface, TS0 + i * 1001, data, wirelen, d))
    return sent


def test_pcapng_round_trip_several_interfaces(tmp_path: Path) -> None:
    f = tmp_path / "mixed.pcapng"
    sent = write_mixed(f)
    with open_file(f) as cap:
        recs = list(cap)
        assert cap.format == "pcapng"
        assert [(i.name, i.linktype) for i in cap.interfaces] == [
            ("veth0", 1), ("tun0", 101), ("any", 276), ("nlmon0", 253), ("vsockmon0", 271)]
        assert cap.interfaces[1].description == "a tunnel" and cap.interfaces[1].snaplen == 65535
        assert all(i.tsresol == 9 for i in cap.interfaces)
    got = [(r.interface, r.ts_ns, r.data, r.wirelen, r.direction) for r in recs]
    assert got == sent
    assert [r.linktype for r in recs] == [1, 101, 276, 253, 271, 1, 101]
    assert recs[5].caplen == 3 and recs[5].wirelen == 103
    assert recs[0].info.ts_ns == TS0 and recs[0].ts == pytest.approx(TS0 / 1e9)


@pytest.mark.skipif(tshark is None, reason="needs Debian tshark")
def test_tshark_reads_what_we_write(tmp_path: Path) -> None:
    f = tmp_path / "mixed.pcapng"
    sent = write_mixed(f)
    assert tshark_lengths(f) == [(i + 1, s[3], len(s[2])) for i, s in enumerate(sent)]
    p = tmp_path / "eth.pcap"
    with PcapWriter(p, LinkType.ETHERNET) as w:
        for i in range(5):
            w.write(TS0 + i, ETH[: 20 + i * 10], 60 + i * 10)
    assert tshark_lengths(p) == [(i + 1, 60 + i * 10, 20 + i * 10) for i in range(5)]
    epoch = subprocess.run([tshark, "-r", str(p), "-T", "fields", "-e", "frame.time_epoch"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert epoch[0].startswith("1700000000.123456789")


@pytest.mark.skipif(tshark is None, reason="needs Debian tshark")
def test_we_read_what_tshark_writes(tmp_path: Path) -> None:
    src = tmp_path / "src.pcap"
    with PcapWriter(src, LinkType.ETHERNET, nanosecond=False) as w:
        for i in range(4):
            w.write(TS0 + i * 1000, ETH)
    out = tmp_path / "ts.pcapng"
    subprocess.run([tshark, "-r", str(src), "-F", "pcapng", "-w", str(out)], check=True,
                   capture_output=True, timeout=60)
    recs = list(read_records(out))
    assert [r.data for r in recs] == [ETH] * 4
    assert recs[1].ts_ns - recs[0].ts_ns == 1000
    assert recs[0].ts_ns == TS0 // 1000 * 1000  # the µs file kept µs precision


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_magics_and_byte_orders(tmp_path: Path, endian: str, nano: bool) -> None:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    blob = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    for i in range(3):
        blob += struct.pack(endian + "IIII", 1000 + i, 250 + i, len(ETH), len(ETH) + 4) + ETH
    recs = list(read_records(io.BytesIO(blob)))
    mult = 1 if nano else 1000
    assert [r.ts_ns for r in recs] == [(1000 + i) * 10**9 + (250 + i) * mult for i in range(3)]
    assert all(r.data == ETH and r.wirelen == len(ETH) + 4 and r.linktype == 1 for r in recs)


def shb(e: str = "<", options: bytes = b"") -> bytes:
    body = struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options
    return struct.pack(e + "II", 0x0A0D0D0A, 12 + len(body)) + body + struct.pack(
        e + "I", 12 + len(body))


def block(btype: int, body: bytes, e: str = "<") -> bytes:
    body += bytes(-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def opt(code: int, value: bytes, e: str = "<") -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def idb(linktype: int, options: bytes = b"", e: str = "<", snaplen: int = 0) -> bytes:
    return block(1, struct.pack(e + "HHI", linktype, 0, snaplen) + options, e)


def epb(iface: int, ticks: int, data: bytes, e: str = "<", wirelen: int | None = None) -> bytes:
    return block(6, struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                                len(data) if wirelen is None else wirelen) + data, e)


@pytest.mark.parametrize("e", ["<", ">"])
def test_pcapng_resolutions_offsets_spb_and_unknown_blocks(e: str) -> None:
    blob = (shb(e)
            + idb(1, e=e)  # default µs
            + idb(101, opt(9, b"\x09", e) + opt(2, b"raw0", e), e)  # ns
            + idb(1, opt(9, b"\x8a", e) + opt(14, struct.pack(e + "q", 5), e), e)  # 2^-10, +5 s
            + block(0x0BAD, b"custom stuff", e)  # a custom block: a record, as tshark's frames
            + block(4, b"\x00\x00\x00\x00", e)  # name resolution: skipped
            + epb(0, 1_500_000, ETH, e)
            + epb(1, 2_000_000_001, RAW_ICMP, e)
            + epb(2, 1024 * 3, ETH, e)
            + block(5, struct.pack(e + "III", 0, 0, 0), e))  # ISB: skipped
    everything = list(read_records(io.BytesIO(blob)))
    custom = everything[0]
    assert (custom.linktype, custom.data, custom.block, custom.ts_known) == (
        PCAPNG_CUSTOM, b"om stuff", (0x0BAD, struct.unpack(e + "I", b"cust")[0]), False)
    recs = [r for r in everything if r.block is None]
    assert [r.ts_ns for r in recs] == [1_500_000_000, 2_000_000_001, 8_000_000_000]
    assert [r.linktype for r in recs] == [1, 101, 1]
    # a new section starts over: its SPB uses the new section's interface 0
    blob2 = blob + shb(e) + idb(101, e=e, snaplen=10) + block(3, struct.pack(e + "I", 32)
                                                            + RAW_ICMP, e)
    recs = list(read_records(io.BytesIO(blob2)))
    assert recs[-1].linktype == 101 and recs[-1].data == RAW_ICMP[:10] and recs[-1].wirelen == 32


def test_pcap_writer_rejects_other_link_type(tmp_path: Path) -> None:
    with PcapWriter(tmp_path / "x.pcap", LinkType.ETHERNET) as w, pytest.raises(RawlabError):
        w.write_record(Record(0, 4, 101, b"abcd"))


def test_write_record_maps_interfaces(tmp_path: Path) -> None:
    f = tmp_path / "conv.pcapng"
    recs = [Record(1, 70, 1, ETH), Record(2, 32, 101, RAW_ICMP, interface=1),
            Record(3, 70, 1, ETH, direction=Direction.OUTBOUND)]
    with PcapngWriter(f) as w:
        for r in recs:
            w.write_record(r)
        assert w.interface_count == 2 and w.count == 3
    back = list(read_records(f))
    assert [(r.ts_ns, r.linktype, r.interface, r.direction) for r in back] == [
        (1, 1, 0, 0), (2, 101, 1, 0), (3, 1, 0, 2)]


def test_buffered_writer_writes_everything_on_close(tmp_path: Path) -> None:
    f = tmp_path / "b.pcapng"
    with PcapngWriter(f, buffer_bytes=1 << 16) as w:
        i = w.add_interface(LinkType.ETHERNET)
        for k in range(1000):
            w.write(i, k, ETH)
    assert len(list(read_records(f))) == 1000


def test_file_is_valid_after_sigkill(tmp_path: Path) -> None:
    f = tmp_path / "killed.pcapng"
    code = textwrap.dedent(f"""
        import os, signal
        from rawlab.pcap.writer import PcapngWriter
        w = PcapngWriter({str(f)!r})
        i = w.add_interface(1, "eth0")
        for k in range(250):
            w.write(i, k, bytes(60 + k % 7))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    recs = list(read_records(f))
    assert len(recs) == 250 and recs[-1].caplen == 60 + 249 % 7


def test_reading_is_streaming(tmp_path: Path) -> None:
    f = tmp_path / "big.pcap"
    with PcapWriter(f, LinkType.ETHERNET, buffer_bytes=1 << 20) as w:
        payload = ETH + bytes(1400)
        for k in range(6000):  # ~8.8 MB
            w.write(k, payload)
    assert os.path.getsize(f) > 8_000_000
    tracemalloc.start()
    n = sum(1 for _ in read_records(f))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 6000 and peak < 4_000_000


# ---- bad input: a clear message naming file and offset, after every good record ----------


def collect(blob: bytes, name: str = "bad.cap") -> tuple[list[Record], RawlabError]:
    src = io.BytesIO(blob)
    src.name = name  # type: ignore[attr-defined]
    got: list[Record] = []
    with pytest.raises(RawlabError) as ei:
        for r in read_records(src):
            got.append(r)
    assert ei.value.code is Exit.BAD_INPUT
    assert ei.value.message.startswith(f"{name}: offset ")
    return got, ei.value


def pcap_file(n: int, linktype: int = 1) -> bytes:
    blob = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i in range(n):
        blob += struct.pack("<IIII", i, 0, len(ETH), len(ETH)) + ETH
    return blob


def test_not_a_capture_file() -> None:
    got, err = collect(b"hello world, not a capture")
    assert got == [] and "offset 0: not a pcap or pcapng file" in err.message
    _, err = collect(b"")
    assert "empty file" in err.message


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(RawlabError) as ei:
        open_file(tmp_path / "nope.pcap")
    assert ei.value.code is Exit.BAD_INPUT and "nope.pcap" in ei.value.message


def test_pcap_truncated_file_header() -> None:
    _, err = collect(pcap_file(0)[:10])
    assert "truncated pcap file header (10 of 24 bytes)" in err.message


def test_pcap_truncated_record_header_after_good_records() -> None:
    blob = pcap_file(3)
    got, err = collect(blob + b"\x01\x02\x03")
    assert len(got) == 3
    assert err.message == f"bad.cap: offset {len(blob)}: truncated record header (3 of 16 bytes)"


def test_pcap_truncated_record_after_good_records() -> None:
    blob = pcap_file(2)
    got, err = collect(blob[:-5])
    assert len(got) == 1
    assert err.message.startswith(f"bad.cap: offset {24 + 16 + len(ETH)}: truncated record")


def test_pcap_absurd_length() -> None:
    blob = pcap_file(2)
    got, err = collect(blob + struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 10))
    assert len(got) == 2 and f"offset {len(blob)}: absurd record length" in err.message


def test_pcap_unknown_link_type_is_read_not_refused() -> None:
    """No file is refused for its link type (issue 13): tshark and tcpdump show the frames."""
    got = list(read_records(io.BytesIO(pcap_file(2, 147))))
    assert [(r.linktype, r.data) for r in got] == [(147, ETH), (147, ETH)]


def test_pcapng_mixes_known_and_unknown_link_types() -> None:
    blob = shb() + idb(1) + epb(0, 1, ETH) + idb(147) + epb(1, 3, b"\x01\x02") + epb(0, 2, ETH)
    got = list(read_records(io.BytesIO(blob)))
    assert [(r.interface, r.linktype, r.data) for r in got] == [
        (0, 1, ETH), (1, 147, b"\x01\x02"), (0, 1, ETH)]


def test_pcapng_legal_12_byte_block() -> None:
    """A block with an empty body (12 bytes: type, length, length) is legal and skipped."""
    blob = shb() + idb(1) + struct.pack("<III", 0x0BAD, 12, 12) + epb(0, 1, ETH)
    assert [r.data for r in read_records(io.BytesIO(blob))] == [ETH]


@pytest.mark.parametrize("tsresol, offset", [(0xFF, 0), (127, 0), (0, -(1 << 62)),
                                             (9, (1 << 63) - 1)])
def test_pcapng_extreme_timestamps_are_read_and_shown(tsresol: int, offset: int) -> None:
    from rawlab.decode.dispatch import Decoder
    from rawlab.present.packet import line

    opts = opt(9, bytes([tsresol])) + opt(14, struct.pack("<q", offset)) + opt(0, b"")
    blob = shb() + idb(1, opts) + epb(0, (1 << 64) - 1, ETH)
    (rec,) = list(read_records(io.BytesIO(blob)))
    text = line(1, rec, Decoder().decode(rec.data, rec.linktype))
    assert "IP 10.0.0.1" in text or "length" in text
    buf = io.BytesIO()
    from rawlab.pcap.writer import PcapngWriter

    with PcapngWriter(buf) as w:  # a time outside 64 bits of ns is written clamped, not lost
        w.write_record(rec)
    assert len(list(read_records(io.BytesIO(buf.getvalue())))) == 1


@pytest.mark.parametrize("incl, says", [(0xFFFFFF00, b"absurd record length 4294967040"),
                                        (200 << 20, b"truncated record: 209715200 bytes")])
def test_a_lying_length_allocates_nothing(incl: int, says: bytes) -> None:
    """An 86-byte pcap whose header says snaplen 4 GiB and whose record claims 4 GiB (or
    200 MiB): read under a 600 MB address-space cap (three such allocations would not
    fit), it ends in one error, never a MemoryError."""
    import subprocess
    import sys

    blob = (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0xFFFFFFFF, 1)
            + struct.pack("<IIII", 0, 0, incl, incl) + bytes(46))
    code = ("import io, resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (600 << 20, 600 << 20))\n"
            "from rawlab.pcap.reader import read_records\n"
            "from rawlab.errors import RawlabError\n"
            "try:\n"
            "    list(read_records(io.BytesIO(sys.stdin.buffer.read())))\n"
            "except RawlabError as e:\n"
            "    print(e.message)\n")
    p = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True,
                       timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    assert says in p.stdout


def test_pcapng_structural_errors() -> None:
    good = shb() + idb(1) + epb(0, 1, ETH)
    bad_trailer = bytearray(epb(0, 2, ETH))
    bad_trailer[-4:] = struct.pack("<I", 4)
    got, err = collect(good + bytes(bad_trailer))
    assert len(got) == 1 and "trailing length 4 differ" in err.message
    got, err = collect(good + struct.pack("<II", 6, 0x7FFFFFF0) + bytes(8))
    assert len(got) == 1 and f"offset {len(good)}: absurd block length" in err.message
    got, err = collect(good + epb(0, 2, ETH)[:-9])
    assert len(got) == 1 and f"offset {len(good)}: truncated block" in err.message
    got, err = collect(good + b"\x06\x00")
    assert len(got) == 1 and "truncated block header" in err.message
    got, err = collect(good + epb(3, 2, ETH))
    assert len(got) == 1 and "interface 3, but only 1 defined" in err.message
    lying = block(6, struct.pack("<IIIII", 0, 0, 0, 5000, 5000) + ETH)
    got, err = collect(good + lying)
    assert len(got) == 1 and "absurd captured length 5000" in err.message
    _, err = collect(idb(1) + epb(0, 1, ETH))
    assert "offset 0" in err.message
