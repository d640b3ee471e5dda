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


def _ref_sum(b: bytes, s: int, e: int) -> int:
    d = b[s:e] + (b"\0" if (e - s) % 2 else b"")
    return sum(int.from_bytes(d[i:i + 2], "big") for i in range(0, len(d), 2))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.lists(st.tuples(st.integers(0, 300),
                                                               st.integers(0, 300)),
                                                     max_size=20))
def test_sums_are_the_big_endian_word_sums(data: bytes, spans: list[tuple[int, int]]) -> None:
    spans = [(min(a, b, len(data)), min(max(a, b), len(data))) for a, b in spans]
    start = np.array([a for a, _ in spans], np.int64)
    end = np.array([b for _, b in spans], np.int64)
    out = np.full(len(spans), 7, np.uint64)
    K.sums(data, start, end, out)
    assert out.tolist() == [_ref_sum(data, a, b) for a, b in spans]


def test_sums_refuses_a_range_outside_the_buffer() -> None:
    out = np.zeros(1, np.uint64)
    with pytest.raises(ValueError, match="outside 4 bytes"):
        K.sums(b"\xff" * 4, np.array([2], np.int64), np.array([5], np.int64), out)
    K.sums(b"\xff" * 4, np.array([1], np.int64), np.array([4], np.int64), out)
    assert out.tolist() == [0xFFFF + 0xFF00]


_INT = st.integers(-(1 << 63), (1 << 63) - 1)
_UINT = st.integers(0, (1 << 63) - 1)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_format_rows_is_pythons_percent(data: st.DataObject) -> None:
    convs = data.draw(st.lists(st.sampled_from(
        [b"%d", b"%i", b"%u", b"%x", b"%s", b"%04x", b"%06d", b"%5d", b"%3s", b"%r", b"%02x"]),
        max_size=8))
    lits = data.draw(st.lists(st.binary(max_size=5).map(lambda b: b.replace(b"%", b"")),
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
    want = [tmpl % r for r in zip(*[c.tolist() for c in cols], strict=True)] if cols else (
        [tmpl] * 0)
    assert K.format_rows(tmpl, cols) == want


def test_format_rows_says_what_it_cannot_take() -> None:
    one = np.array([1], np.int64)
    with pytest.raises(ValueError, match="conversion 'f'"):
        K.format_rows(b"%f", [one])
    with pytest.raises(ValueError, match="1 conversions, 2 columns"):
        K.format_rows(b"%d", [one, one])
    with pytest.raises(TypeError, match="items of 8 bytes wanted, got 4"):
        K.format_rows(b"%d", [one.astype(np.int32)])
    with pytest.raises(TypeError, match="an int64 array wanted"):
        K.format_rows(b"%d", [one.astype(np.float64)])
    with pytest.raises(TypeError, match="an object array wanted"):
        K.format_rows(b"%s", [one])
    with pytest.raises(ValueError, match="negative value"):
        K.format_rows(b"%x", [-one])
    with pytest.raises(TypeError, match="its length differs"):
        K.format_rows(b"%d %d", [one, np.array([1, 2], np.int64)])
    with pytest.raises(TypeError, match="bytes wanted"):
        K.format_rows(b"%s", [np.array(["str"], object)])


def _pcap_records(lengths: list[int]) -> bytes:
    return b"".join(struct.pack("<IIII", 1, 2, n, n) + bytes(n) for n in lengths)


def test_pcap_chain_walks_whole_records_and_stops_at_an_absurd_one() -> None:
    chunk = _pcap_records([10, 0, 3])
    at = np.zeros(8, np.int64)
    assert K.pcap_chain(chunk, 8, False, 100, at) == (3, len(chunk), None)
    assert at[:3].tolist() == [0, 26, 42]
    # a record cut by the chunk's end, and one header cut: the walk stops before each
    assert K.pcap_chain(chunk[:-1], 8, False, 100, at) == (2, 42, None)
    assert K.pcap_chain(chunk + b"\0" * 15, 8, False, 100, at) == (3, len(chunk), None)
    # rows bound the walk; a length over the limit ends it and is given back
    assert K.pcap_chain(chunk, 1, False, 100, at) == (1, 26, None)
    assert K.pcap_chain(chunk, 8, False, 5, at) == (0, 0, 10)
    big = b"".join(struct.pack(">IIII", 1, 2, n, n) + bytes(n) for n in (4, 300))
    assert K.pcap_chain(big, 8, True, 100, at) == (1, 20, 300)


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
