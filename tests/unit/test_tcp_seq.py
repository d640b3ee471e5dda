"""Seq32: wrap-safe sequence arithmetic (Wireshark's GT_SEQ & co.)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rawlab.analysis.seq import Seq32, seq_diff, seq_ge, seq_gt, seq_le, seq_lt

u32 = st.integers(0, 2**32 - 1)
near = st.integers(-(2**31) + 1, 2**31 - 1)


def test_wraps() -> None:
    a = Seq32(0xFFFFFFF0)
    b = a + 0x20
    assert int(b) == 0x10 and b > a and a < b and b - a == 0x20 and a - b == -0x20
    assert a + 0x10 == 0 and (b - 0x20) == a
    assert Seq32(5) == 5 and hash(Seq32(5)) == hash(5)


@given(u32, near)
def test_order_matches_distance(x: int, d: int) -> None:
    y = (x + d) & 0xFFFFFFFF
    assert seq_diff(y, x) == d
    assert seq_gt(y, x) == (d > 0) and seq_lt(y, x) == (d < 0)
    assert seq_ge(y, x) == (d >= 0) and seq_le(y, x) == (d <= 0)
    assert (Seq32(y) > Seq32(x)) == (d > 0) and (Seq32(y) <= x) == (d <= 0)


def test_half_way_is_neither_before_nor_after() -> None:
    assert not seq_gt(2**31, 0) and not seq_lt(2**31, 0)


def test_tcpdumps_flag_letters_are_the_tcp_headers_bits() -> None:
    """present.tcpdump writes its letter table by bit position (it imports no decoder):
    each letter is the flag decode.tcp names at that bit, in tcpdump's order."""
    from rawlab.decode.tcp import TcpFlag
    from rawlab.present.tcpdump import _ACK, _TCPDUMP_FLAGS, tcpdump_flags

    names = {"F": TcpFlag.FIN, "S": TcpFlag.SYN, "R": TcpFlag.RST, "P": TcpFlag.PSH,
             ".": TcpFlag.ACK, "U": TcpFlag.URG, "E": TcpFlag.ECE, "W": TcpFlag.CWR}
    assert [(bit, ch) for bit, ch in _TCPDUMP_FLAGS] == [(int(names[ch]), ch) for ch in
                                                          "FSRP.UEW"]
    assert int(TcpFlag.ACK) == _ACK
    assert tcpdump_flags(0x12) == "S." and tcpdump_flags(0x19) == "FP." and \
        tcpdump_flags(0) == "none" and tcpdump_flags(0x100) == "none"
