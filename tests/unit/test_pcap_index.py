"""The frame index (rawlab.pcap.index): every record as the reader gives it, from any
offset, and a damaged file indexed up to its last whole record with the reader's words."""

from __future__ import annotations

import glob
import struct
import threading
from pathlib import Path

import pytest
from test_pcap_io import ETH, RAW_ICMP, block, epb, idb, opt, pcap_file, shb, write_mixed

from rawlab.errors import RawlabError
from rawlab.pcap.index import CHUNK, FrameIndex
from rawlab.pcap.reader import open_file
from rawlab.pcap.writer import PcapngWriter, PcapWriter
from rawlab.records import LinkType

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path("/work/shared/corpus/tcpdump-tests")


def reader_view(path: Path) -> tuple[list[tuple[object, ...]], str | None]:
    """(record fields, the reader's error). Interfaces are compared apart: the reader numbers
    them per section, the index across sections."""
    got: list[tuple[object, ...]] = []
    problem = None
    try:
        with open_file(path) as cap:
            for r in cap:
                got.append((r.ts_ns, r.data, r.wirelen, r.linktype, r.direction, r.section))
    except RawlabError as exc:
        problem = exc.message
    return got, problem


def index_view(path: Path) -> tuple[list[tuple[object, ...]], str | None, FrameIndex]:
    idx = FrameIndex(path)
    idx.build()
    out = []
    for i in range(len(idx)):
        r = idx.record(i)
        assert idx.ts_ns(i) == r.ts_ns and idx.interface_of(i) == r.interface
        if r.interface >= 0:  # (a custom block's record has no interface)
            assert idx.interfaces[r.interface].linktype == r.linktype
        out.append((r.ts_ns, r.data, r.wirelen, r.linktype, r.direction, r.section))
    return out, idx.problem, idx


def same_as_reader(path: Path) -> FrameIndex:
    want, problem = reader_view(path)
    got, idx_problem, idx = index_view(path)
    assert got == want
    assert idx_problem == problem
    assert idx.complete
    return idx


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "captures").glob("*.pcap")))
def test_reference_captures(name: str) -> None:
    idx = same_as_reader(ROOT / "captures" / name)
    assert idx.done == idx.size and len(idx) > 0


@pytest.mark.skipif(not CORPUS.is_dir(), reason="tcpdump's test corpus is not on this machine "
                    f"({CORPUS})")
def test_tcpdump_corpus_every_file() -> None:
    """Every capture of tcpdump's test corpus: the same records as the reader, pcap and
    pcapng of all kinds (several sections, interfaces, link types, byte orders)."""
    n = 0
    for p in sorted(glob.glob(str(CORPUS / "*.pcap*"))):
        try:
            FrameIndex(p)
        except RawlabError:
            continue
        same_as_reader(Path(p))
        n += 1
    assert n > 700


def test_pcapng_several_interfaces_and_directions(tmp_path: Path) -> None:
    f = tmp_path / "mixed.pcapng"
    sent = write_mixed(f)
    idx = same_as_reader(f)
    assert [i.name for i in idx.interfaces] == ["veth0", "tun0", "any", "nlmon0", "vsockmon0"]
    assert [idx.interface_of(i) for i in range(len(idx))] == [s[0] for s in sent]


@pytest.mark.parametrize("e", ["<", ">"])
def test_sections_resolutions_and_simple_blocks(tmp_path: Path, e: str) -> None:
    blob = (shb(e) + idb(1, e=e) + idb(101, opt(9, b"\x09", e) + opt(2, b"raw0", e), e)
            + block(0x0BAD, b"custom", e) + epb(0, 1_500_000, ETH, e)
            + epb(1, 2_000_000_001, RAW_ICMP, e)
            + shb(e) + idb(101, e=e, snaplen=10) + idb(1, opt(9, b"\x8a", e), e)
            + block(3, struct.pack(e + "I", 32) + RAW_ICMP, e) + epb(1, 1024 * 3, ETH, e))
    f = tmp_path / "s.pcapng"
    f.write_bytes(blob)
    idx = same_as_reader(f)
    # interfaces numbered across sections: the second section's two are 2 and 3
    assert [(i.id, i.linktype) for i in idx.interfaces] == [(0, 1), (1, 101), (2, 101), (3, 1)]
    # the custom block is a record without an interface or a time, as the reader's
    assert [idx.interface_of(i) for i in range(5)] == [-1, 0, 1, 2, 3]
    assert [idx.ts_ns(i) for i in range(5)] == [0, 1_500_000_000, 2_000_000_001, 0,
                                                3_000_000_000]
    assert idx.record(0).data == b"om\x00\x00" and idx.record(0).linktype == -1


def test_pcap_byte_orders_and_nanoseconds(tmp_path: Path) -> None:
    for e, magic in (("<", 0xA1B23C4D), (">", 0xA1B2C3D4)):
        blob = struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
        for i in range(5):
            blob += struct.pack(e + "IIII", 1000 + i, 7 + i, len(ETH), 99) + ETH
        f = tmp_path / f"o{e == '<'}.pcap"
        f.write_bytes(blob)
        idx = same_as_reader(f)
        mult = 1 if magic == 0xA1B23C4D else 1000
        assert [idx.ts_ns(i) for i in range(5)] == [(1000 + i) * 10**9 + (7 + i) * mult
                                                     for i in range(5)]
        assert idx.offset(2) == 24 + 2 * (16 + len(ETH))


def test_many_pages_and_a_record_bigger_than_a_chunk(tmp_path: Path) -> None:
    """Records across several read chunks, timestamps going backwards and far apart (their
    pages keep 64-bit times), and one record larger than a chunk."""
    f = tmp_path / "big.pcap"
    n = 0
    with PcapWriter(f, LinkType.ETHERNET, snaplen=CHUNK * 2, buffer_bytes=1 << 20) as w:
        for k in range(60_000):
            w.write(10**18 + (k % 7) * 10**9 * 3600 - k, ETH + bytes(k % 200), len(ETH) + 500)
            n += 1
        w.write(5, ETH + bytes(CHUNK + 1000))
        w.write(6, ETH)
    idx = same_as_reader(f)
    assert len(idx) == n + 2 and len(idx._pages) > 1
    assert idx.record(n).caplen == len(ETH) + CHUNK + 1000


# ---- damaged files: every whole record, then the reader's message ----------------------------

def write(tmp_path: Path, blob: bytes, name: str = "bad.cap") -> Path:
    f = tmp_path / name
    f.write_bytes(blob)
    return f


@pytest.mark.parametrize("cut", [3, 20, 50])
def test_truncated_pcap(tmp_path: Path, cut: int) -> None:
    blob = pcap_file(3)
    idx = same_as_reader(write(tmp_path, blob + pcap_file(1)[24:][:cut]))
    assert len(idx) == 3 and "truncated record" in str(idx.problem)
    assert str(idx.problem).startswith(f"{tmp_path / 'bad.cap'}: offset {len(blob)}: ")


def test_pcap_absurd_length(tmp_path: Path) -> None:
    blob = pcap_file(2)
    idx = same_as_reader(write(tmp_path, blob + struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 10)))
    assert len(idx) == 2 and "absurd record length" in str(idx.problem)


def test_pcapng_structural_errors(tmp_path: Path) -> None:
    good = shb() + idb(1) + epb(0, 1, ETH)
    bad_trailer = bytearray(epb(0, 2, ETH))
    bad_trailer[-4:] = struct.pack("<I", 4)
    lying = block(6, struct.pack("<IIIII", 0, 0, 0, 5000, 5000) + ETH)
    bad_idb = bytearray(idb(1))
    bad_idb[-4:] = struct.pack("<I", 8)
    for tail, says in ((bytes(bad_trailer), "trailing length 4 differ"),
                       (struct.pack("<II", 6, 0x7FFFFFF0) + bytes(8), "absurd block length"),
                       (epb(0, 2, ETH)[:-9], "truncated block"),
                       (b"\x06\x00", "truncated block header"),
                       (epb(3, 2, ETH), "interface 3, but only 1 defined"),
                       (lying, "absurd captured length 5000"),
                       (bytes(bad_idb), "trailing length 8 differ")):
        idx = same_as_reader(write(tmp_path, good + tail))
        assert len(idx) == 1 and says in str(idx.problem), (says, idx.problem)
    idx = same_as_reader(write(tmp_path, good + struct.pack("<II", 0x0A0D0D0A, 28) + bytes(20)))
    assert len(idx) == 1 and "bad byte-order magic" in str(idx.problem)


def test_not_a_capture_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(RawlabError) as ei:
        FrameIndex(write(tmp_path, b"hello world, not a capture"))
    assert "not a pcap or pcapng file" in ei.value.message


def test_readers_see_only_whole_pages_while_it_builds(tmp_path: Path) -> None:
    """Records can be read while the pass runs (another thread); stop() ends it early."""
    f = tmp_path / "many.pcapng"
    with PcapngWriter(f, buffer_bytes=1 << 20) as w:
        i = w.add_interface(LinkType.ETHERNET, "eth0")
        for k in range(200_000):
            w.write(i, k * 1000, ETH)
    idx = FrameIndex(f)
    t = threading.Thread(target=idx.build)
    t.start()
    seen = 0
    while t.is_alive() or seen < len(idx):
        n = len(idx)
        if n:
            assert idx.record(n - 1).data == ETH and idx.ts_ns(n - 1) == (n - 1) * 1000
        seen = n
    t.join()
    assert len(idx) == 200_000 and idx.problem is None and idx.done == idx.size
    stopped = FrameIndex(f)
    stopped.stop()
    stopped.build()
    assert stopped.complete and len(stopped) == 0


def test_records_of_a_range_are_the_records(tmp_path: Path) -> None:
    f = tmp_path / "mixed.pcapng"
    write_mixed(f)
    for name in (f, ROOT / "captures" / "tcp-loss.pcap"):
        idx = FrameIndex(name)
        idx.build()
        every = [idx.record(i) for i in range(len(idx))]
        for start, stop in ((0, None), (1, 3), (2, 2), (len(idx) - 1, len(idx) + 5)):
            got = list(idx.records(start, stop))
            want = every[start:stop]
            assert [(r.ts_ns, r.data, r.interface, r.direction) for r in got] == [
                (r.ts_ns, r.data, r.interface, r.direction) for r in want]


def test_a_custom_block_through_the_columnar_paths(tmp_path: Path) -> None:
    """read, read --json, tcp and --parquet take a pcapng with a custom block (its record's
    link type is -1): the columns hold it as all ones and leave it to the per-packet path."""
    import json
    import subprocess
    import sys

    rawlab = str(Path(sys.executable).with_name("rawlab"))
    e = "<"
    f = tmp_path / "c.pcapng"
    f.write_bytes(shb(e) + idb(1, e=e) + epb(0, 1_500_000, ETH, e)
                  + block(0x0BAD, struct.pack(e + "I", 32473) + b"custom data!", e)
                  + epb(0, 2_000_000, ETH, e))
    run = [rawlab, "read", str(f)]
    lines = subprocess.run(run, capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(lines) == 3 and lines[1] == "pcapng custom block, length 12"
    js = subprocess.run([*run, "--json"], capture_output=True, text=True,
                        check=True).stdout.splitlines()
    got = json.loads(js[1])
    assert (got["frame"], got["ts_ns"], got["interface"], got["layers"]) == (2, None, None,
                                                                            ["data"])
    assert got["block"] == {"type": 0x0BAD, "pen": 32473}
    tcp = subprocess.run([rawlab, "tcp", str(f)], capture_output=True, text=True, check=False)
    assert tcp.returncode == 0, tcp.stderr
    pq = tmp_path / "c.parquet"
    subprocess.run([*run, "--parquet", str(pq)], capture_output=True, check=True)
    import pyarrow.parquet as papq

    t = papq.read_table(pq).to_pydict()
    assert t["linktype_name"] == ["ETHERNET", "PCAPNG_CUSTOM_BLOCK", "ETHERNET"]
