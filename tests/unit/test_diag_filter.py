"""ss's filter expressions compiled to inet_diag bytecode (sockets/diag_filter.py): the bytes
ss would send, and a small interpreter of the kernel's rules (inet_diag_bc_run) as referee."""

from __future__ import annotations

import socket
import struct

import pytest

from rawlab.errors import RawlabError
from rawlab.sockets import diag_filter as df

pytestmark = pytest.mark.unit


def run(code: bytes, sport: int, dport: int, src: str = "10.0.0.1",
        dst: str = "10.0.0.2") -> bool:
    """The kernel's walk (net/ipv4/inet_diag.c, inet_diag_bc_run) over one IPv4 socket."""
    pos, left = 0, len(code)
    while left > 0:
        op, yes, no = df.OP.unpack_from(code, pos)
        ok = True
        if op == df.BC_JMP:
            ok = False
        elif op in (df.BC_S_GE, df.BC_S_LE, df.BC_D_GE, df.BC_D_LE):
            port = df.OP.unpack_from(code, pos + 4)[2]
            mine = sport if op in (df.BC_S_GE, df.BC_S_LE) else dport
            ok = mine >= port if op in (df.BC_S_GE, df.BC_D_GE) else mine <= port
        elif op in (df.BC_S_COND, df.BC_D_COND):
            _fam, plen, port = df.HOSTCOND.unpack_from(code, pos + 4)
            mine_port = sport if op == df.BC_S_COND else dport
            addr = socket.inet_aton(src if op == df.BC_S_COND else dst)
            if port not in (-1, mine_port):
                ok = False
            elif plen:
                want = code[pos + 12:pos + 16]
                mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
                ok = (int.from_bytes(addr, "big") & mask) == (int.from_bytes(want, "big") & mask)
        step = yes if ok else no
        pos += step
        left -= step
    return left == 0


def compile_(text: str) -> bytes:
    return df.parse(text.split()).bytecode


def test_a_port_condition_is_ss_s_bytes() -> None:
    # ss: { D_COND, yes 16, no 20 } + hostcond { AF_UNSPEC, 0, port 22 } + 4 address bytes
    assert compile_("dport = :22") == struct.pack("=BBH", 8, 16, 20) + struct.pack(
        "=BBxxi", 0, 0, 22) + bytes(4)
    assert compile_("sport >= :1024") == struct.pack("=BBHBBH", 2, 8, 12, 0, 0, 1024)


@pytest.mark.parametrize("expr,sport,dport,want", [
    ("dport = :22", 5000, 22, True), ("dport = :22", 5000, 23, False),
    ("dport != :22", 5000, 22, False), ("dport != :22", 5000, 23, True),
    ("sport >= :1024", 1024, 1, True), ("sport >= :1024", 1023, 1, False),
    ("sport < :1024", 1023, 1, True), ("sport < :1024", 1024, 1, False),
    ("dport > :80", 1, 81, True), ("dport > :80", 1, 80, False),
    ("( dport = :22 or dport = :80 )", 1, 80, True),
    ("( dport = :22 or dport = :80 )", 1, 443, False),
    ("dport = :22 or dport = :80 or dport = :443", 1, 443, True),
    ("sport = :5 dport = :6", 5, 6, True), ("sport = :5 and dport = :6", 5, 7, False),
    ("not ( sport = :5 or dport = :6 )", 5, 1, False),
    ("not ( sport = :5 or dport = :6 )", 4, 1, True),
    ("! dport = :22 and sport = :1", 1, 23, True),
    ("dst 10.0.0.0/8", 1, 1, True), ("dst 11.0.0.0/8", 1, 1, False),
    ("src 10.0.0.1:7 or dst 10.0.0.2:9", 7, 1, True), ("dst 10.0.0.2:9", 7, 8, False),
    ("( src 10.0.0.0/24 or src 192.168.0.0/16 ) and dport >= :1000", 1, 1000, True),
])
def test_the_kernel_walk_keeps_what_the_expression_says(expr: str, sport: int, dport: int,
                                                        want: bool) -> None:
    assert run(compile_(expr), sport, dport) is want


def test_state_words_make_the_mask_not_bytecode() -> None:
    f = df.parse(["state", "established", "state", "syn-sent"])
    assert f.states == (1 << 1) | (1 << 2) and f.bytecode == b""
    g = df.parse(["exclude", "listening", "dport", "=", ":22"])
    assert g.states is not None and not g.states & (1 << 10) and g.states & (1 << 1)
    assert g.bytecode == compile_("dport = :22")
    assert df.parse(["(dport", "=", ":22)"]).bytecode == compile_("( dport = :22 )")


@pytest.mark.parametrize("bad", ["dport = :ssh", "( dport = :22", "bogus", "dport =",
                                 "src = nowhere", "dport = :22 )", "src > 10.0.0.1"])
def test_what_ss_would_not_read_is_a_usage_error(bad: str) -> None:
    with pytest.raises(RawlabError) as got:
        df.parse(bad.split())
    assert got.value.code == 2 and "ss filter" in str(got.value)
