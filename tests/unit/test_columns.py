"""The columnar fast path prints byte for byte what the per-packet path prints.

``decode.columns`` (Arrow batches) + ``present.columns`` (templates per shape) against
``present.packet.LineSink`` over ``pipeline.run``: on every capture in ``captures/``, on
the tcpdump corpus files of the link types the columns hold (Ethernet, Linux cooked
v1/v2, raw IP), and on hypothesis-made files (TCP conversations with the usual option
layouts, UDP, ICMP echo, ARP, checksums right and wrong, odd frames from the descent
tests, several batches, pcap and pcapng with several interfaces). Errors in a damaged
file must come after the same lines, with the same message.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_decode_descent import frames

from rawlab import pipeline
from rawlab.decode import columns as C
from rawlab.decode.checksum import inet_checksum, pseudo_header_v4, pseudo_header_v6
from rawlab.pcap.reader import open_file
from rawlab.pcap.writer import PcapngWriter, PcapWriter
from rawlab.present import packet
from rawlab.present.columns import BatchJsonSink, BatchLineSink
from rawlab.present.tcpdump import Clock, LineStyle

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path("/work/shared/corpus/tcpdump-tests")
JSON = LineStyle(dump="json")  # a marker: NDJSON instead of lines
STYLES: dict[str, LineStyle | None] = {
    "default": None, "-S": LineStyle(absolute=True), "-ttt": LineStyle(clock=Clock("delta")),
    "-tt": LineStyle(clock=Clock("epoch")), "json": JSON}


def per_packet(source: Path | bytes, style: LineStyle | None) -> tuple[str, str | None]:
    out = io.StringIO()
    err = None
    sink = packet.JsonSink(out) if style is JSON else packet.LineSink(out, style)
    try:
        with open_file(io.BytesIO(source) if isinstance(source, bytes) else source) as cap:
            pipeline.run(cap, [sink],
                         interfaces=lambda i: cap.interfaces[i] if i < len(cap.interfaces)
                         else None)
    except Exception as exc:
        err = str(exc)
    return out.getvalue(), err


def batched(source: Path | bytes, style: LineStyle | None, rows: int = C.ROWS,
            chunk: int = C.CHUNK) -> tuple[str, str | None]:
    out = io.StringIO()
    err = None
    try:
        with C.open_batches(io.BytesIO(source) if isinstance(source, bytes) else source,
                            rows=rows, chunk=chunk) as src:
            sink = BatchJsonSink(out) if style is JSON else BatchLineSink(out, style)
            pipeline.run_batches(src, [sink])
    except Exception as exc:
        err = str(exc)
    return out.getvalue(), err


def fresh(style: LineStyle | None) -> LineStyle | None:
    """The same style with a new clock (a stateful clock is used once)."""
    if style is None or style.clock is None or style is JSON:
        return style
    return LineStyle(clock=Clock(style.clock.form), absolute=style.absolute)  # type: ignore


def assert_same(source: Path | bytes, style: LineStyle | None = None, **kw: int) -> None:
    want = per_packet(source, fresh(style))
    got = batched(source, fresh(style), **kw)
    if got != want:
        wl, gl = want[0].splitlines(), got[0].splitlines()
        for i, (w, g) in enumerate(zip(wl, gl, strict=False)):
            assert g == w, f"line {i + 1}"
        assert len(gl) == len(wl)
        assert got[1] == want[1]


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "captures").glob("*.pcap*")))
def test_captures(name: str, style: str) -> None:
    path = ROOT / "captures" / name
    with C.open_batches(path) as src:
        fast = sum(int(b.fast.sum()) for b in src)
    assert fast > 0  # the fast path is really taken
    assert_same(path, STYLES[style])
    assert_same(path, STYLES[style], rows=7, chunk=3000)  # many small batches


def _corpus() -> list[str]:
    if not CORPUS.is_dir():
        return []
    out = []
    for p in sorted(CORPUS.iterdir()):
        if p.suffix not in (".pcap", ".pcapng"):
            continue
        try:
            with open_file(p) as cap:
                if cap.format == "pcapng":
                    next(iter(cap), None)
                lts = {i.linktype for i in cap.interfaces}
        except Exception:
            continue
        if lts & {1, 101, 113, 276, 228, 229}:
            out.append(p.name)
    return out


CORPUS_FILES = _corpus()


def test_corpus_is_there() -> None:
    assert CORPUS_FILES, f"tcpdump's test corpus not found at {CORPUS}"
    assert len(CORPUS_FILES) > 400


@pytest.mark.parametrize("chunk", range(8))
def test_tcpdump_corpus(chunk: int) -> None:
    """The corpus files of the common link types, in 8 parts (each ~1/8 of the files):
    lines and NDJSON."""
    fast = 0
    for name in CORPUS_FILES[chunk::8]:
        assert_same(CORPUS / name)
        assert_same(CORPUS / name, JSON)
        with C.open_batches(CORPUS / name) as src:
            try:
                fast += sum(int(b.fast.sum()) for b in src)
            except Exception:
                pass
    assert fast > 20  # 3,931 fast rows in the whole corpus


# ---- hypothesis-made files ----------------------------------------------------------------

ADDR4 = [bytes((10, 0, 0, k)) for k in (1, 2, 3)]
ADDR6 = [bytes.fromhex("fd00000000000000000000000000000" + str(k)) for k in (1, 2)]
OPTIONS = [b"", b"\x01\x01\x08\x0a" + bytes(range(8)),
           b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + bytes(range(8)) + b"\x01\x03\x03\x07",
           b"\x02\x04\x05\xb4\x01\x01\x04\x02",
           b"\x01\x01\x08\x0a" + bytes(8) + b"\x01\x01\x05\x0a" + bytes(range(8)),
           b"\x01\x01\x05\x12" + bytes(range(16)),
           b"\x02\x04\x05\xb4\x00\x00\x00\x00",  # MSS, EOL
           b"\x13\x12" + bytes(16),  # MD5: not held by the columns
           b"\x03\x03",  # a cut option list
           b"\x01\x01\x05\x0b" + bytes(9)]  # SACK of a wrong length


def _tcp(draw: st.DrawFn, src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    opts = draw(st.sampled_from(OPTIONS))
    opts += b"\x01" * (-len(opts) % 4)
    flags = draw(st.sampled_from([0x10, 0x18, 0x02, 0x12, 0x11, 0x04, 0x14, 0x30, 0x00, 0xC2,
                                  0x10, 0x10, 0x18]))
    seq = draw(st.sampled_from([1000, 1000 + 1448, 2**32 - 5, 0, 77777]))
    ack = draw(st.sampled_from([1, 5000, 2**32 - 1, 0]))
    payload = bytes(draw(st.sampled_from([0, 0, 1, 100, 1448])))
    seg = struct.pack("!HHIIHHHH", sport, dport, seq, ack, (5 + len(opts) // 4) << 12 | flags,
                      draw(st.sampled_from([502, 0, 65535])), 0,
                      draw(st.sampled_from([0, 7]))) + opts + payload
    pseudo = (pseudo_header_v4 if len(src) == 4 else pseudo_header_v6)(src, dst, 6, len(seg))
    cs = inet_checksum(seg, pseudo) if draw(st.integers(0, 9)) else 0x1234
    return seg[:16] + struct.pack("!H", cs) + seg[18:]


def _ip(draw: st.DrawFn, src: bytes, dst: bytes, proto: int, body: bytes) -> bytes:
    if len(src) == 16:
        return struct.pack("!IHBB16s16s", 6 << 28 | 77, len(body), proto, 64, src, dst) + body
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 7, 0x4000, 64, proto, 0, src,
                      dst)
    cs = inet_checksum(hdr) if draw(st.integers(0, 19)) else 0
    return hdr[:10] + struct.pack("!H", cs) + hdr[12:] + body


@st.composite
def conversation_frame(draw: st.DrawFn) -> tuple[int, bytes]:
    v6 = draw(st.integers(0, 3)) == 0
    pool = ADDR6 if v6 else ADDR4
    src, dst = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
    sport, dport = draw(st.sampled_from([(40000, 5001), (5001, 40000), (40001, 5001),
                                         (80, 80)]))
    kind = draw(st.sampled_from(["tcp"] * 6 + ["udp", "icmp", "arp"]))
    if kind == "tcp":
        net = _ip(draw, src, dst, 6, _tcp(draw, src, dst, sport, dport))
    elif kind == "udp":
        body = struct.pack("!HHHH", sport, dport, 8 + 12, 0) + bytes(12)
        pseudo = (pseudo_header_v4 if len(src) == 4 else pseudo_header_v6)(src, dst, 17, 20)
        cs = inet_checksum(body, pseudo) if draw(st.integers(0, 5)) else 0x4321
        body = body[:6] + struct.pack("!H", cs) + body[8:]
        net = _ip(draw, src, dst, 17, body)
    elif kind == "icmp":
        ty = draw(st.sampled_from([8, 0, 3])) if not v6 else draw(st.sampled_from([128, 129]))
        body = struct.pack("!BBHI", ty, 0, 0, 0x00050009) + bytes(16)
        pseudo = 0 if not v6 else pseudo_header_v6(src, dst, 58, len(body))
        cs = inet_checksum(body, pseudo) if draw(st.integers(0, 5)) else 0x0BAD
        body = body[:2] + struct.pack("!H", cs) + body[4:]
        net = _ip(draw, src, dst, 58 if v6 else 1, body)
    else:
        net = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, draw(st.sampled_from([1, 2, 3])),
                          b"\x02" * 6, ADDR4[0], bytes(6), ADDR4[1])
    et = 0x0806 if kind == "arp" else 0x86DD if v6 else 0x0800
    link = draw(st.sampled_from([1, 1, 1, 113, 276, 101]))
    if link == 101 and kind == "arp":
        link = 1
    if link == 1:
        tags = b"".join(struct.pack("!HH", 0x8100, 5) for _ in range(draw(st.integers(0, 2))))
        head = b"\x02" * 12 + tags + struct.pack("!H", et)
    elif link == 113:
        head = struct.pack("!HHH8sH", draw(st.sampled_from([0, 4])), 1, 6, bytes(8), et)
    elif link == 276:
        head = struct.pack("!HHIHBB8s", et, 0, 1, 1, 0, 6, bytes(8))
    else:
        head = b""
    frame = head + net + draw(st.sampled_from([b"", b"", bytes(6)]))  # Ethernet padding
    cut = draw(st.sampled_from([None] * 8 + [96, 60, 40]))
    return link, frame[:cut] if cut else frame


FILE_FRAMES = st.lists(st.one_of(conversation_frame(), conversation_frame(), frames()),
                       min_size=1, max_size=40)


def _pcap(frames_: list[tuple[int, bytes]], linktype: int) -> bytes:
    f = io.BytesIO()
    w = PcapWriter(f, linktype)
    for i, (_lt, data) in enumerate(frames_):
        w.write(1_700_000_000 * 10**9 + i * 1_234_567, data, len(data) + (i % 3 == 0) * 10)
    w.close()
    return f.getvalue()


def _pcapng(frames_: list[tuple[int, bytes]]) -> bytes:
    f = io.BytesIO()
    w = PcapngWriter(f)
    ifaces: dict[int, int] = {}
    for i, (lt, data) in enumerate(frames_):
        if lt not in ifaces:
            ifaces[lt] = w.add_interface(lt, f"if{lt}")
        w.write(ifaces[lt], 1_700_000_000 * 10**9 + i * 999_999, data, len(data), i % 3)
    w.close()
    return f.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILE_FRAMES, st.sampled_from(list(STYLES)), st.sampled_from([3, 16384]))
def test_hypothesis_pcapng(frames_: list[tuple[int, bytes]], style: str, rows: int) -> None:
    assert_same(_pcapng(frames_), STYLES[style], rows=rows)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILE_FRAMES, st.sampled_from(list(STYLES)), st.sampled_from([1, 101, 113, 276]),
       st.integers(0, 2))
def test_hypothesis_pcap(frames_: list[tuple[int, bytes]], style: str, linktype: int,
                         damage: int) -> None:
    data = _pcap([f for f in frames_ if f[0] == linktype] or frames_, linktype)
    if damage == 1:
        data = data[:-3]  # the last record cut short
    elif damage == 2 and len(data) > 40:
        data = data[:24] + struct.pack("<IIII", 0, 0, 10**9, 10**9) + data[40:]  # absurd
    assert_same(data, STYLES[style], rows=5, chunk=700)


def test_status_says_why() -> None:
    """A row leaves the fast path with a reason, and the columns hold the fields."""
    src, dst = ADDR4[0], ADDR4[1]
    seg = struct.pack("!HHIIHHHH", 40000, 5001, 7, 9, 5 << 12 | 0x18, 502, 0, 0) + b"hello"
    seg = seg[:16] + struct.pack("!H", inet_checksum(seg, pseudo_header_v4(
        src, dst, 6, len(seg)))) + seg[18:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 1, 0x4000, 64, 6, 0, src, dst)
    ip = hdr[:10] + struct.pack("!H", inet_checksum(hdr)) + hdr[12:] + seg
    eth = b"\x02" * 12 + b"\x08\x00"
    bad = ip[:30] + b"\xff" + ip[31:]  # payload changed: the TCP checksum is wrong
    frag = ip[:6] + b"\x20\x00" + ip[8:]
    other = eth[:12] + b"\x88\xb5" + bytes(8)
    data = _pcap([(1, eth + ip), (1, eth + bad), (1, eth + frag), (1, other)], 1)
    with C.open_batches(io.BytesIO(data)) as s:
        b = next(iter(s))
    assert b.col("status").tolist() == [C.FAST, C.CHECKSUM, C.IP, C.NETWORK]
    assert b.col("tcp_seq")[0] == 7 and b.col("tcp_ack")[0] == 9
    assert b.col("sport")[0] == 40000 and b.col("dport")[0] == 5001
    assert b.col("payload_length")[0] == 5 and b.col("tcp_flags")[0] == 0x18
    assert b.col("src_lo")[0] == 0x0A000001 and b.col("l4_csum")[0] == C.CSUM_GOOD
    table = b.table
    assert table.num_rows == 4 and table.column("frame").to_pylist() == [1, 2, 3, 4]
    assert b.record(1).data == eth + bad
    assert np.array_equal(b.fast, [True, False, False, False])


def _with(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + struct.pack("!H", value) + data[at + 2:]


def test_bad_checksums_print_from_the_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row whose only oddity is a checksum (bad, or partial as checksum offload leaves
    an outgoing packet) is printed from the columns, with the per-packet path's notes
    and expected values; a good ICMPv4 echo is fast (its sum, without a pseudo-header,
    folds to 0: it once made every ICMPv4 echo a "bad" row)."""
    src, dst, s6, d6 = ADDR4[0], ADDR4[1], ADDR6[0], ADDR6[1]
    eth4, eth6 = b"\x02" * 12 + b"\x08\x00", b"\x02" * 12 + b"\x86\xdd"

    def ip4(proto: int, body: bytes, good: bool = True) -> bytes:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 3, 0, 64, proto, 0, src,
                          dst)
        return eth4 + _with(hdr, 10, inet_checksum(hdr) if good else 0xBEEF) + body

    def ip6(proto: int, body: bytes) -> bytes:
        return eth6 + struct.pack("!IHBB16s16s", 6 << 28, len(body), proto, 64, s6, d6) + body

    seg = struct.pack("!HHIIHHHH", 40000, 5001, 7, 9, 5 << 12 | 0x18, 502, 0, 0) + b"hello"
    tcp_ok = _with(seg, 16, inet_checksum(seg, pseudo_header_v4(src, dst, 6, len(seg))))
    partial = _with(seg, 16, pseudo_header_v4(src, dst, 6, len(seg)))
    udp = struct.pack("!HHHH", 40000, 5001, 12, 0) + b"abcd"
    echo = struct.pack("!BBHI", 8, 0, 0, 0x00050009) + bytes(16)
    echo6 = struct.pack("!BBHI", 128, 0, 0, 0x00050009) + bytes(16)
    rows = [
        (ip4(6, _with(seg, 16, 0x1234)), C.CHECKSUM, " [bad tcp cksum 0x1234 -> 0x"),
        (ip4(6, tcp_ok, good=False), C.CHECKSUM, " [bad ip cksum 0xbeef -> 0x"),
        (ip4(6, _with(seg, 16, 0x1234), good=False), C.CHECKSUM, "!] [bad ip cksum 0xbeef"),
        (ip4(6, partial), C.CHECKSUM, ", length 5\n"),
        (ip4(17, _with(udp, 6, 0x4321)), C.CHECKSUM, " [bad udp cksum 0x4321 -> 0x"),
        (ip6(17, _with(udp, 6, 0x4321)), C.CHECKSUM, " [bad udp cksum 0x4321 -> 0x"),
        (ip4(1, _with(echo, 2, inet_checksum(echo))), C.FAST, ", length 24\n"),
        (ip4(1, _with(echo, 2, 0x0BAD)), C.CHECKSUM, " [bad icmp cksum 0x0bad -> 0x"),
        (ip6(58, _with(echo6, 2, 0x0BAD)), C.CHECKSUM, " [bad icmp6 cksum 0x0bad -> 0x"),
    ]
    data = _pcap([(1, f) for f, _, _ in rows], 1)
    with C.open_batches(io.BytesIO(data)) as s:
        b = next(iter(s))
    assert b.col("status").tolist() == [st for _, st, _ in rows]
    want, err = per_packet(data, None)
    assert err is None

    def no_odd_rows(*a: object) -> bytes:
        raise AssertionError("a row took the per-packet path")

    monkeypatch.setattr(BatchLineSink, "_odd_line", no_odd_rows)
    got, err = batched(data, None)
    assert err is None and got == want
    for line, (_, _, note) in zip(got.splitlines(keepends=True), rows, strict=True):
        assert note in line, (note, line)
    # the expected values are the per-packet path's (rawlab.decode.checksum)
    tcp_want = inet_checksum(_with(seg, 16, 0), pseudo_header_v4(src, dst, 6, len(seg)))
    assert f"[bad tcp cksum 0x1234 -> 0x{tcp_want:04x}!]" in got
    assert f"[bad icmp cksum 0x0bad -> 0x{inet_checksum(echo):04x}!]" in got


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "captures").glob("*.pcap*")))
def test_json_rows_of_common_shapes_come_from_templates(name: str) -> None:
    """--json's fast rows really are rendered from the columns: every shape of these
    captures makes a template (a key the columns do not fill sends a whole shape to the
    per-packet path, equal but ~8x slower: it happened once, silently)."""
    out = io.StringIO()
    sink = BatchJsonSink(out)
    with C.open_batches(ROOT / "captures" / name) as src:
        pipeline.run_batches(src, [sink])
    assert sink.shapes and all(v is not None for v in sink.shapes.values()), [
        k for k, v in sink.shapes.items() if v is None]


def test_the_kernels_word_on_a_live_checksum_is_the_per_packet_paths() -> None:
    """Live records carry the kernel's checksum word: verified (TP_STATUS_CSUM_VALID) or
    not filled yet (offload). A field that does not match the sum then prints no note,
    as the per-packet path says (kernel-verified, partial): those rows go per packet."""
    from rawlab.decode.dispatch import Decoder
    from rawlab.present.columns import RecordLineSink
    from rawlab.records import CsumHint, Record

    src, dst = ADDR4[0], ADDR4[1]
    seg = struct.pack("!HHIIHHHH", 40000, 5001, 7, 9, 5 << 12 | 0x18, 502, 0x1234, 0) + b"hi"
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 1, 0, 64, 6, 0, src, dst)
    frame = b"\x02" * 12 + b"\x08\x00" + _with(hdr, 10, inet_checksum(hdr)) + seg
    recs = [Record(1_700_000_000 * 10**9, len(frame), 1, frame, csum_status=h)
            for h in (CsumHint.VALID, CsumHint.NOT_READY, CsumHint.NONE)]
    want = io.StringIO()
    lines, dec = packet.LineSink(want, None), Decoder()
    for i, r in enumerate(recs):
        lines.packet(i, r, dec.decode(r.data, r.linktype, CsumHint(r.csum_status), r.wirelen),
                     None)
    got = io.StringIO()
    sink = RecordLineSink(BatchLineSink(got, None), None)
    for i, r in enumerate(recs):
        sink.packet(i, r, None, None)
    sink.close()
    assert got.getvalue() == want.getvalue()
    out = got.getvalue().splitlines()
    assert "cksum" not in out[0] and "cksum" not in out[1]
    right = inet_checksum(_with(seg, 16, 0), pseudo_header_v4(src, dst, 6, len(seg)))
    assert out[2].endswith(f"length 2 [bad tcp cksum 0x1234 -> 0x{right:04x}!]")


def _partition(rep: np.ndarray, inv: np.ndarray, cols: list[np.ndarray]) -> list[tuple]:
    """The groups as sets of rows, each with its tuple (order-free)."""
    out = []
    for j in range(len(rep)):
        rows = tuple(np.flatnonzero(inv == j).tolist())
        assert rows, "a group without rows"
        assert all(int(c[rep[j]]) == int(c[rows[0]]) for c in cols)
        out.append((rows, tuple(int(c[rows[0]]) for c in cols)))
    return sorted(out)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**64 - 1), st.integers(-3, 3)),
                min_size=1, max_size=200))
def test_groups_partition_rows_as_factorize_does(rows: list[tuple[int, int, int]]) -> None:
    a = np.array([r[0] for r in rows], np.int64)
    b = np.array([r[1] for r in rows], np.uint64)
    c = np.array([r[2] for r in rows], np.int64)
    for cols in ([a, b, c], [b], [c, a]):
        want = _partition(*C.factorize(*cols), cols)
        assert _partition(*C.groups(*cols), cols) == want
        # every distinct tuple once, every row in one group
        assert sum(len(g[0]) for g in want) == len(rows)
        assert len({g[1] for g in want}) == len(want)


def test_groups_number_tuples_as_they_first_appear() -> None:
    """Equal tuples share a number however their columns are typed (a negative int64, a
    uint64 above 2**63, a uint8 column), numbered in the order they first appear."""
    a = np.array([1, -2, 1, 3, -2, 3], np.int64)
    b = np.array([2**64 - 1, 7, 2**64 - 1, 7, 7, 8], np.uint64)
    v = np.array([4, 4, 4, 6, 4, 6], np.uint8)
    rep, inv = C.groups(a, b, v)
    assert rep.tolist() == [0, 1, 3, 5] and inv.tolist() == [0, 1, 0, 2, 1, 3]
    rep, inv = C.groups(v)
    assert rep.tolist() == [0, 3] and inv.tolist() == [0, 0, 0, 1, 0, 1]
    rep, inv = C.groups(np.zeros(0, np.int64))
    assert len(rep) == 0 and len(inv) == 0


def test_a_percent_in_the_json_text_is_a_percent() -> None:
    """A template holds the JSON text of the shape's fixed values: an interface named
    with a % (a literal %% in the template) prints as the per-packet path prints it."""
    from test_kernels import _frame

    f = io.BytesIO()
    w = PcapngWriter(f)
    ifc = w.add_interface(1, "eth%d0%")
    for i in range(3):
        data = _frame(None, 5555)
        w.write(ifc, 1_700_000_000 * 10**9 + i * 1000, data, len(data), 0)
    w.close()
    out = io.StringIO()
    sink = BatchJsonSink(out)
    with C.open_batches(io.BytesIO(f.getvalue())) as src:
        pipeline.run_batches(src, [sink])
    assert next(t for t, _ in sink.shapes.values()).count(b"%%") == 2  # from the columns
    assert (out.getvalue(), None) == per_packet(f.getvalue(), JSON)
    assert out.getvalue().count('"eth%d0%"') == 3


def _frames_and_error(path: Path, ahead: int, rows: int, stop: int | None = None
                      ) -> tuple[list[int], str | None]:
    got: list[int] = []
    try:
        with C.open_batches(path, rows=rows, chunk=4096, ahead=ahead) as src:
            for b in src:
                got += [int(f) for f in b.cols["frame"]]
                assert b.buf is not None and len(b.cols["status"]) == len(b)
                if stop is not None and len(got) >= stop:
                    break
    except Exception as exc:
        return got, str(exc)
    return got, None


@pytest.mark.parametrize("cut", [0, 9])
def test_reading_ahead_gives_the_same_batches_then_the_same_error(tmp_path: Path,
                                                                  cut: int) -> None:
    """prefetch: the batches of a second thread come in order, an error in the file
    comes after every batch before it, and a consumer that stops early stops the thread."""
    import threading

    whole = (ROOT / "captures" / "tcp-loss.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(whole[:len(whole) - cut])
    before = threading.active_count()
    plain = _frames_and_error(path, 0, 7)
    ahead = _frames_and_error(path, 2, 7)
    assert ahead == plain and len(plain[0]) > 50
    assert (plain[1] is None) == (cut == 0)
    assert plain[1] is None or "truncated record" in plain[1]
    assert _frames_and_error(path, 1, 5, stop=12)[0] == plain[0][:15]
    assert threading.active_count() == before


def test_only_a_regular_file_is_read_ahead(tmp_path: Path) -> None:
    """A pipe's read may never return, and a thread blocked there would hold up Ctrl-C:
    open_batches reads ahead only from a regular file, whatever the caller asks."""
    import os
    import threading

    cap = ROOT / "captures" / "tcp-loss.pcap"
    with C.open_batches(cap, ahead=2) as src:
        assert src.ahead == 2
    with C.open_batches(io.BytesIO(cap.read_bytes()), ahead=2) as src:
        assert src.ahead == 0
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(cap.read_bytes(),))
    writer.start()
    with C.open_batches(fifo, ahead=2) as src:
        assert src.ahead == 0
        assert sum(len(b) for b in src) == 421
    writer.join()


@pytest.mark.parametrize("command", ["tcp", "tcp --json", "read", "read --json"])
def test_ctrl_c_while_a_fifo_writer_idles_ends_at_once(tmp_path: Path, command: str) -> None:
    """`rawlab tcp|read FIFO`: the writer has sent a whole capture and keeps the FIFO
    open; what arrived is printed without waiting for more (a batch is what one read
    brought; the exact analyser and the lines read a stream record by record), and
    Ctrl-C ends rawlab at once with 130 and one line, no traceback, the output whole."""
    import os
    import signal
    import subprocess
    import sys
    import time

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    verb, *opts = command.split()
    sink = (tmp_path / "out").open("w+")  # (not a pipe nobody reads until the end)
    p = subprocess.Popen([str(Path(sys.executable).with_name("rawlab")), verb, str(fifo),
                          *opts], stdout=sink, stderr=subprocess.PIPE, text=True)
    fd = os.open(fifo, os.O_WRONLY)  # returns once rawlab has opened it
    try:
        os.write(fd, (ROOT / "captures" / "tcp-loss.pcap").read_bytes())
        time.sleep(1.5)  # rawlab has read it all and waits for more
        p.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        try:
            _, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError(f"rawlab {command} FIFO did not end on Ctrl-C") from None
        took = time.monotonic() - t0
    finally:
        os.close(fd)
    assert p.returncode == 130, err
    assert took < 3, took
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    sink.seek(0)
    lines = sink.read().splitlines()
    sink.close()
    if verb == "read":  # every frame that arrived
        assert len(lines) == 421
        assert lines[-1].startswith('{"frame":421,') if opts else " IP 10.77." in lines[-1]
    elif opts:  # every segment, and the connection record the end (Ctrl-C) closes
        assert sum('"type": "segment"' in x for x in lines) == 421
        assert '"type": "connection"' in lines[-1]
    else:  # the table of what arrived
        assert "10.77.0.1:" in lines[1] and len(lines) == 2


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILE_FRAMES, st.sampled_from([3, 16384]))
def test_hypothesis_exact_analyser_from_batches(frames_: list[tuple[int, bytes]],
                                                rows: int) -> None:
    """`tcp FILE --json` reads the segments the columns hold from them
    (pipeline.run_tcp_batches, analysis/tcp/frontend.py): the same NDJSON as the
    per-packet front end on hypothesis-made pcapng files (conversations with every
    checksum, option list, link type and cut; malformed frames)."""
    from rawlab.present.tcp import JsonSink

    data = _pcapng(frames_)
    want, got = io.StringIO(), io.StringIO()
    with open_file(io.BytesIO(data)) as cap:
        pipeline.run_tcp(cap, [JsonSink(want)])
    with C.open_batches(io.BytesIO(data), rows=rows) as src:
        pipeline.run_tcp_batches(src, [JsonSink(got, hold=5)])
    assert got.getvalue() == want.getvalue()
