"""rawlab._kernels, the compiled loops of the columnar path, against what they replace:
Python's ``%`` operator, the checksum sum written out, and the pcap/pcapng record walks
(the readers of rawlab.pcap.reader give the same records: test_columns holds the paths
together on every capture; here the edges of each walk)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawlab import _kernels as K


def _fold(words: bytes) -> int:
    s = sum(struct.unpack(f"!{len(words) // 2}H", words))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _frame(csum: int | None, dport: int = 80) -> bytes:
    """Ethernet, IPv4 (good header checksum), TCP SYN with MSS and SACK-permitted (its
    checksum `csum`, None: the right one)."""
    if csum is None:
        seg = _frame(0, dport)[34:]
        csum = _fold(bytes((10, 0, 0, 1, 10, 0, 0, 2, 0, 6)) + struct.pack("!H", len(seg)) +
                     seg)
    tcp = struct.pack("!HHIIBBHHH", 40000, dport, 1000, 0, 7 << 4, 0x02, 64240, csum, 0) + \
        bytes((2, 4, 5, 0xB4, 4, 2, 1, 0))
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0,
                               bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))))
    ip[10:12] = struct.pack("!H", _fold(bytes(ip)))
    return bytes(6) + b"\x02" * 6 + b"\x08\x00" + bytes(ip) + tcp


def _extract(data: bytes, caplen: list[int],
             ports: bytes | None = bytes(2 * 65536)) -> dict[str, np.ndarray]:
    """The kernel's columns of the frames (by default no port has an application decoder)."""
    from rawlab.decode import columns as C

    n = len(caplen)
    cols = {name: np.zeros(n, dt) for name, dt in C.KERNEL_COLUMNS}
    consts, ext, optlen = C._kernel_tables()
    codes = np.zeros((n, C.MAX_OPTS), np.uint8)
    off = np.concatenate(([0], np.cumsum(caplen)[:-1])).astype(np.int64)
    k = K.extract(data, off, np.array(caplen, np.int64), np.array(caplen, np.int64),
                  np.ones(n, np.int64), consts, ext, optlen,
                  [cols[name] for name, _ in C.KERNEL_COLUMNS], codes, ports)
    cols["codes"] = codes[:k]
    return cols


def test_extract_reads_a_syn_and_judges_its_checksums() -> None:
    from rawlab.decode import columns as C

    good, bad = _frame(None), _frame(0x1234)
    c = _extract(good + bad + good[:40], [len(good), len(bad), 40])
    assert c["ip_version"].tolist() == [4, 4, 4]
    assert c["src_lo"].tolist() == [0x0A000001] * 3
    assert c["sport"].tolist()[:2] == [40000, 40000] and c["tcp_seq"][0] == 1000
    assert c["tcp_flags"].tolist()[:2] == [2, 2] and c["tcp_window"][0] == 64240
    # held options, one layout (numbered by the kernel); the cut row left
    assert c["tcp_opt_layout"].tolist() == [0, 0, -1]
    # MSS, SACK-permitted, NOP, EOL
    assert len(c["codes"]) == 1 and c["codes"][0, :5].tolist() == [2, 4, 1, 0, C.OPTS_PAD]
    assert c["l4_csum"].tolist() == [C.CSUM_GOOD, C.CSUM_BAD, 0]
    assert c["csum_notes"].tolist() == [0, C.CSUM_NOTE_L4, 0]
    assert c["l4_csum_expected"][1] == struct.unpack_from("!H", good, 50)[0]  # the right one
    assert c["ip4_csum_expected"].tolist() == [0, 0, 0]
    # (the bad checksum leaves last, all else held: CHECKSUM; the third frame ends before
    # its IP length, not cut by a snap length: IP)
    assert c["status"].tolist() == [C.FAST, C.CHECKSUM, C.IP]


def test_extract_lets_rows_on_an_application_port_leave_when_it_has_something_to_see() -> None:
    """Port 80 has the HTTP decoder: its SYN leaves (the reassembler needs it), a pure ACK
    stays (a pure ACK whatever the port); with no table for the shapes every row leaves;
    an application row is not also called a checksum row."""
    from rawlab.decode import columns as C

    syn, bad = _frame(None), _frame(0x1234)
    ack = bytearray(_frame(None, 5555))
    ack[47] = 0x10  # SYN -> ACK: its checksum is now wrong, port 5555 is no one's
    frames = [syn, bad, bytes(ack)]
    c = _extract(b"".join(frames), [len(f) for f in frames], C._claimed_ports(None))
    assert c["status"].tolist() == [C.APPLICATION, C.APPLICATION, C.CHECKSUM]
    c = _extract(b"".join(frames), [len(f) for f in frames], None)
    assert c["status"].tolist() == [C.APPLICATION] * 3


def test_extract_refuses_a_row_outside_the_buffer() -> None:
    with pytest.raises(ValueError, match="row 0 lies outside the buffer"):
        _extract(_frame(0)[:30], [54])


_INT = st.integers(-(1 << 63), (1 << 63) - 1)
_UINT = st.integers(0, (1 << 63) - 1)


def _fmt(tmpl: bytes, cols: list[np.ndarray]) -> list[bytes]:
    """Each row alone through lines(): its text."""
    rows = len(cols[0]) if cols else 0
    return [K.lines(np.empty(rows, object), [(tmpl, [c[i:i + 1] for c in cols],
                                              np.array([i], np.int64))]) for i in range(rows)]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_lines_is_pythons_percent_a_row(data: st.DataObject) -> None:
    convs = data.draw(st.lists(st.sampled_from(
        [b"%d", b"%i", b"%u", b"%x", b"%s", b"%04x", b"%06d", b"%5d", b"%3s", b"%r", b"%02x"]),
        min_size=1, max_size=8))
    lits = data.draw(st.lists(st.binary(max_size=5).map(lambda b: b.replace(b"%", b"%%")),
                              min_size=len(convs) + 1, max_size=len(convs) + 1))
    tmpl = lits[0] + b"".join(c + lit for c, lit in zip(convs, lits[1:], strict=True))
    rows = data.draw(st.integers(0, 6))
    cols: list[np.ndarray] = []
    for c in convs:
        if c.endswith(b"s"):
            vals = data.draw(st.lists(st.binary(max_size=6), min_size=rows, max_size=rows))
            col = np.empty(rows, object)
            col[:] = vals
        elif c == b"%r":
            col = np.array(data.draw(st.lists(st.floats(allow_nan=False, allow_infinity=False),
                                              min_size=rows, max_size=rows)), np.float64)
        else:
            ints = _INT if c in (b"%d", b"%i", b"%06d", b"%5d") else _UINT
            col = np.array(data.draw(st.lists(ints, min_size=rows, max_size=rows)), np.int64)
        cols.append(col)
    want = [tmpl % r for r in zip(*[c.tolist() for c in cols], strict=True)]
    assert _fmt(tmpl, cols) == want
    # the rows shuffled between two pieces and the odd rows, written back in row order
    order = data.draw(st.permutations(range(rows)))
    odd = np.empty(rows + 2, object)
    odd[0], odd[-1] = b"first\n", None
    half = len(order) // 2
    pieces = [(tmpl, [c[order[:half]] for c in cols], np.array(order[:half], np.int64) + 1),
              (tmpl, [c[order[half:]] for c in cols], np.array(order[half:], np.int64) + 1)]
    assert K.lines(odd, pieces) == b"first\n" + b"".join(want)
    assert K.lines(odd, pieces[:1], 1, rows + 1) == b"".join(
        want[i] for i in sorted(order[:half]))


def test_lines_says_what_it_cannot_take() -> None:
    one = np.array([1], np.int64)
    row = np.array([0], np.int64)

    def lines(tmpl: bytes, cols: list[np.ndarray], rows: np.ndarray = row) -> bytes:
        return K.lines(np.empty(2, object), [(tmpl, cols, rows)])

    assert lines(b"100%% of %d%%", [one]) == b"100% of 1%"  # (JSON text may hold a %)
    with pytest.raises(ValueError, match="conversion 'f'"):
        lines(b"%f", [one])
    with pytest.raises(ValueError, match="ending inside a conversion"):
        lines(b"%0", [one])
    with pytest.raises(ValueError, match="1 conversions, 2 columns"):
        lines(b"%d", [one, one])
    with pytest.raises(TypeError, match="items of 8 bytes wanted, got 4"):
        lines(b"%d", [one.astype(np.int32)])
    with pytest.raises(TypeError, match="an int64 array wanted"):
        lines(b"%d", [one.astype(np.float64)])
    with pytest.raises(TypeError, match="an object array wanted"):
        lines(b"%s", [one])
    with pytest.raises(ValueError, match="negative value"):
        lines(b"%x", [-one])
    with pytest.raises(TypeError, match="its length is not the rows'"):
        lines(b"%d", [np.array([1, 2], np.int64)])
    with pytest.raises(TypeError, match="bytes wanted"):
        lines(b"%s", [np.array(["str"], object)])
    with pytest.raises(ValueError, match=r"row 2 outside 0\.\.1"):
        lines(b"%d", [one], np.array([2], np.int64))
    with pytest.raises(ValueError, match="row 0 in two pieces"):
        K.lines(np.empty(2, object), [(b"%d", [one], row), (b"%d", [one], row)])
    odd = np.empty(2, object)
    odd[1] = "text"
    with pytest.raises(TypeError, match=r"odd\[1\]: bytes or None wanted"):
        K.lines(odd, [])


def _pcap_records(lengths: list[int]) -> bytes:
    return b"".join(struct.pack("<IIII", 1, 2, n, n) + bytes(n) for n in lengths)


def test_pcap_chain_walks_whole_records_and_stops_at_an_absurd_one() -> None:
    chunk = _pcap_records([10, 0, 3])
    at = np.zeros(8, np.int64)
    hdr = np.zeros((8, 4), np.int64)
    assert K.pcap_chain(chunk, 8, False, 100, at, hdr) == (3, len(chunk), None)
    assert at[:3].tolist() == [0, 26, 42]
    assert hdr[:3].tolist() == [[1, 2, 10, 10], [1, 2, 0, 0], [1, 2, 3, 3]]
    # a record cut by the chunk's end, and one header cut: the walk stops before each
    assert K.pcap_chain(chunk[:-1], 8, False, 100, at, hdr) == (2, 42, None)
    assert K.pcap_chain(chunk + b"\0" * 15, 8, False, 100, at, hdr) == (3, len(chunk), None)
    # rows (and the room in at and hdr) bound the walk; a length over the limit ends it
    assert K.pcap_chain(chunk, 1, False, 100, at, hdr) == (1, 26, None)
    assert K.pcap_chain(chunk, 8, False, 100, at, hdr[:2]) == (2, 42, None)
    assert K.pcap_chain(chunk, 8, False, 5, at, hdr) == (0, 0, 10)
    big = b"".join(struct.pack(">IIII", 7, 9, n, n + 1) + bytes(n) for n in (4, 300))
    assert K.pcap_chain(big, 8, True, 100, at, hdr) == (1, 20, 300)
    assert hdr[0].tolist() == [7, 9, 4, 5]


def _epb(iface: int, data: bytes, opts: bytes = b"", e: str = "<") -> bytes:
    body = struct.pack(e + "IIIII", iface, 0x11, 0x22, len(data), len(data) + 5) + data + \
        bytes(-len(data) % 4) + opts
    return struct.pack(e + "II", 6, len(body) + 12) + body + struct.pack(e + "I", len(body) + 12)


def test_pcapng_epbs_takes_plain_blocks_and_stops_before_any_other() -> None:
    flags = struct.pack("<HHI", 2, 4, 0x201) + bytes(4)  # epb_flags, opt_endofopt
    comment = struct.pack("<HH", 1, 4) + b"abcd" + bytes(4)
    blocks = [_epb(0, b"abcde"), _epb(1, b"", flags), _epb(0, b"xy", flags[:8]),
              _epb(0, b"z", comment), _epb(2, b"q")]
    chunk = b"".join(blocks)
    out = np.zeros((8, 7), np.int64)
    n, end = K.pcapng_epbs(chunk, 0, False, 2, 1 << 20, out)
    assert (n, end) == (3, sum(map(len, blocks[:3])))
    assert out[:3].tolist() == [[28, 0, 0x11, 0x22, 5, 10, 0],
                                [len(blocks[0]) + 28, 1, 0x11, 0x22, 0, 5, 1],
                                [len(blocks[0]) + len(blocks[1]) + 28, 0, 0x11, 0x22, 2, 7, 1]]
    # the comment block, an interface beyond nif: left for the caller
    assert K.pcapng_epbs(chunk, end, False, 2, 1 << 20, out)[0] == 0
    last = end + len(blocks[3])
    assert K.pcapng_epbs(chunk, last, False, 2, 1 << 20, out) == (0, last)
    assert K.pcapng_epbs(chunk, last, False, 3, 1 << 20, out) == (1, len(chunk))
    # a cut block, a trailing length that differs, a room of one row, big-endian
    assert K.pcapng_epbs(chunk[:-1], last, False, 3, 1 << 20, out) == (0, last)
    bad = blocks[0][:-4] + struct.pack("<I", 99)
    assert K.pcapng_epbs(bad, 0, False, 1, 1 << 20, out) == (0, 0)
    assert K.pcapng_epbs(chunk, 0, False, 2, 1 << 20, out[:1]) == (1, len(blocks[0]))
    be = _epb(0, b"abc", e=">")
    assert K.pcapng_epbs(be, 0, True, 1, 1 << 20, out) == (1, len(be))
    assert out[0].tolist() == [28, 0, 0x11, 0x22, 3, 8, 0]
    assert K.pcapng_epbs(be, 0, True, 1, 16, out) == (0, 0)  # over max_block


@pytest.mark.parametrize("name", ["_kernels", "_tcp_summary", "_tcp_sequence", "_syn_watch"])
def test_the_compiled_module_is_built_from_the_source_there_is(name: str) -> None:
    """An editable install keeps a module beside its source: one older than its source
    or than the headers they include answers with the old code (rebuild: ./setup.sh or
    .venv/bin/pip install -e .)."""
    import importlib
    from pathlib import Path

    here = Path(__file__).resolve().parents[2] / "src" / "rawlab"
    built = Path(importlib.import_module(f"rawlab.{name}").__file__ or "")
    if built.parent != here:  # (an installed rawlab, not this checkout's)
        pytest.skip(f"rawlab.{name} is {built}, not built beside {here}")
    for source in (here / f"{name}.c", here / "_buffers.h", here / "_diag.h"):
        assert built.stat().st_mtime >= source.stat().st_mtime, (
            f"{built.name} is older than {source.name}: run ./setup.sh or "
            ".venv/bin/pip install -e .")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.booleans(),
                          st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1)),
                max_size=30),
       st.lists(st.booleans(), min_size=4, max_size=4))
def test_relative_is_tcpdumps_numbers_row_by_row(
        rows: list[tuple[int, bool, bool, int, int]], known: list[bool]) -> None:
    """The compiled walk against TcpdumpSeq.numbers, the per-packet path's rule."""
    from rawlab.present.packet import TcpdumpSeq

    seqs = TcpdumpSeq()
    addrs = [(bytes((10, 0, 0, k)), bytes((10, 0, 1, k))) for k in range(4)]
    for k, yes in enumerate(known):  # connections the table holds before the batch
        if yes:
            seqs.numbers(*addrs[k], 1000, 2000, 7 * k, 11 * k, 0x10)
    base = np.array([seqs._bases.get((a, b, 1000 << 16 | 2000), (0, 0)) for a, b in addrs],
                    np.int64)
    base_a, base_b = base[:, 0].copy(), base[:, 1].copy()
    state = np.array(known, np.uint8)
    want = []
    for k, rev, syn, s, a in rows:
        src, dst = addrs[k][::-1] if rev else addrs[k]
        sp, dp = (2000, 1000) if rev else (1000, 2000)
        want.append(seqs.numbers(src, dst, sp, dp, s, a, 0x10 | (2 if syn else 0)))
    n = len(rows)
    out = [np.zeros(n, np.int64) for _ in range(3)]
    K.relative(np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.uint8),
               np.array([r[2] for r in rows], np.uint8), np.array([r[3] for r in rows], np.int64),
               np.array([r[4] for r in rows], np.int64), base_a, base_b, state, *out)
    assert list(zip(*[o.tolist() for o in out], strict=True)) == want
    for k, (a, b) in enumerate(addrs):  # the table as the calls one by one leave it
        if state[k]:
            assert seqs._bases[(a, b, 1000 << 16 | 2000)] == (base_a[k], base_b[k])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 113, 276, 101, 228, 229, 0]),
                          st.binary(min_size=0, max_size=120), st.integers(0, 200)),
                min_size=1, max_size=8))
def test_extract_reads_any_bytes_without_reading_outside(
        frames: list[tuple[int, bytes, int]]) -> None:
    """Whatever the frames hold (and whatever their wire lengths say), the compiled pass
    fills every column and keeps inside the buffer; a row it calls fast really holds a
    whole IP header and a transport header of the kind it names."""
    from rawlab.decode import columns as C

    data = b"".join(f for _, f, _ in frames)
    n = len(frames)
    cols = {name: np.zeros(n, dt) for name, dt in C.KERNEL_COLUMNS}
    consts, ext, optlen = C._kernel_tables()
    caps = np.array([len(f) for _, f, _ in frames], np.int64)
    off = np.concatenate(([0], np.cumsum(caps)[:-1])).astype(np.int64)
    K.extract(data, off, caps, caps + np.array([w for _, _, w in frames], np.int64),
              np.array([lt for lt, _, _ in frames], np.int64), consts, ext, optlen,
              [cols[name] for name, _ in C.KERNEL_COLUMNS], np.zeros((n, C.MAX_OPTS), np.uint8),
              C._claimed_ports(None))
    for i in range(n):
        if cols["status"][i] != C.FAST:
            continue
        need = int(cols["l4_offset"][i]) + {C.L4_TCP: 20, C.L4_UDP: 8, C.L4_ICMP: 8,
                                             C.L4_ICMP6: 8, C.L4_NONE: 0}[int(cols["l4"][i])]
        if cols["ip_version"][i]:
            assert need <= caps[i]


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=9000), st.integers(0, 0xFFFF))
def test_extract_sums_any_payload_as_the_checksum_rule_says(payload: bytes, wrong: int) -> None:
    """UDP over IPv4 of any length (odd, over the 2 KiB a sum's lanes hold): a right
    checksum is good, any other is bad and the one it should be is named."""
    src, dst = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))
    udp = struct.pack("!HHHH", 5000, 6000, 8 + len(payload), 0) + payload
    right = _fold(src + dst + struct.pack("!BBH", 0, 17, len(udp)) + udp
                  + (b"\0" if len(udp) % 2 else b"")) or 0xFFFF
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src,
                               dst))
    ip[10:12] = struct.pack("!H", _fold(bytes(ip)))
    frames = [bytes(12) + b"\x08\x00" + bytes(ip) + udp[:6] + struct.pack("!H", c) + udp[8:]
              for c in (right, wrong)]
    c = _extract(b"".join(frames), [len(f) for f in frames])
    from rawlab.decode import columns as C

    assert c["l4_csum"][0] == C.CSUM_GOOD
    if wrong not in (right, 0):
        assert c["l4_csum"][1] in (C.CSUM_BAD, C.CSUM_PARTIAL)
        if c["l4_csum"][1] == C.CSUM_BAD:
            assert c["l4_csum_expected"][1] == right


def test_buffer_is_a_bytearray_of_the_size_asked() -> None:
    got = K.buffer(5)
    assert type(got) is bytearray and len(got) == 5
    got[:] = b"abcde"
    assert got == b"abcde" and len(K.buffer(0)) == 0
    with pytest.raises(ValueError, match="a size of 0 or more"):
        K.buffer(-1)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 2**32 * 10**6).map(lambda us: us * 1000),
                          st.integers(0, 2**62)), min_size=1, max_size=20))
def test_repr_of_a_time_in_seconds_is_pythons(ns: list[int]) -> None:
    """%r of ts_ns / 1e9 (the NDJSON "ts"): microsecond times take a short way (their
    digits, read back to check), every other float Python's own repr: both as repr()."""
    col = np.array(ns, np.int64) / 1e9
    got = K.lines(np.empty(len(ns), object), [(b"%r\n", [col], np.arange(len(ns)))])
    assert got == b"".join(b"%r\n" % v for v in col.tolist())


def test_lines_into_a_bytearray_write_from_its_start_and_keep_its_size() -> None:
    col = np.array([1, 22, 333], np.int64)
    pieces = [(b"n=%d\n", [col], np.arange(3))]
    odd = np.empty(3, object)
    want = K.lines(odd, pieces)
    out = bytearray(b"x" * 100)
    assert K.lines(odd, pieces, 0, 3, out) == len(want) == 15
    assert out[:15] == want and len(out) >= 100  # (grown when it must, never shrunk)
    small = bytearray()
    assert K.lines(odd, pieces, 0, 3, small) == 15 and small[:15] == want
    with pytest.raises(TypeError, match="out must be a bytearray"):
        K.lines(odd, pieces, 0, 3, b"")
    with memoryview(small), pytest.raises(BufferError):  # (the caller lets go of it first)
        K.lines(odd, [(b"%d" + b"x" * 5000 + b"\n", [col], np.arange(3))], 0, 3, small)


_OPTION = st.one_of(
    st.sampled_from([b"\x01", b"\x00", b"\x02\x04\x05\xb4", b"\x03\x03\x07", b"\x04\x02",
                     b"\x08\x0a" + bytes(range(8)), b"\x1c\x04\x81\x2c", b"\x13\x12" + bytes(16),
                     b"\x1e\x04\x81\x01", b"\x02\x03\x05", b"\x05\x02", b"\x04\x03\x00"]),
    st.builds(lambda k: b"\x05" + bytes([2 + 8 * k]) + bytes(range(8 * k)), st.integers(1, 4)),
    st.binary(max_size=6))


@settings(max_examples=600, deadline=None)
@given(st.lists(_OPTION, max_size=8).map(b"".join))
def test_the_compiled_options_summary_is_the_python_one(raw: bytes) -> None:
    """_kernels.tcp_options (decode.tcp.options_summary, the analyser's and tcp_fields')
    is summarize(*walk(raw)): the same dict, keys in the same order, on option lists of
    every known kind, wrong lengths, EOL, a repeated kind and random bytes."""
    from rawlab.decode.options import walk
    from rawlab.decode.tcp import TCP_HLEN, summarize

    want = summarize(*walk(raw, TCP_HLEN))
    got = K.tcp_options(raw)
    assert got == want and list(got) == list(want)
    assert K.tcp_options(memoryview(raw)) == want
