"""ss's filter expressions, compiled to the kernel's inet_diag bytecode as `ss` compiles them.

    f = parse(["state", "established", "(", "dport", "=", ":22", "or", "sport", "=",
               ":22", ")"])
    f.states        # 1 << TCP_ESTABLISHED (None: no state words)
    f.bytecode      # INET_DIAG_REQ_BYTECODE's payload, or b"" for no expression

The grammar is ss's (``man ss``, FILTER): ``sport``/``dport`` OP ``:PORT``,
``src``/``dst`` ``ADDR[/LEN][:PORT]`` (``[ADDR]:PORT`` for IPv6), joined by ``and`` (or
nothing), ``or``, ``not``/``!``, parentheses; OP is ``=`` ``==`` ``eq`` ``!=`` ``ne``
``<`` ``lt`` ``>`` ``gt`` ``<=`` ``le`` ``>=`` ``ge``; ``state NAME`` and ``exclude NAME``
choose the states asked for (the request's mask, not bytecode). Names are never
resolved: ports and addresses are numbers.

The bytecode is a list of ``inet_diag_bc_op {u8 code; u8 yes; u16 no}`` the kernel
runs on each socket: a condition that holds falls through ``yes`` bytes, one that
fails jumps ``no`` bytes; reaching the end exactly keeps the socket, jumping past
it drops it. Each compiled piece of length L succeeds at L and fails at L + 4, so
pieces join as ss joins them: ``a and b`` is a then b (a's failures moved past b),
``a or b`` is a, a JMP over b, b; ``not a`` is a, then a JMP to failure.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from rawlab.errors import Exit, RawlabError

# enum inet_diag_bc_op codes
BC_NOP, BC_JMP, BC_S_GE, BC_S_LE, BC_D_GE, BC_D_LE, BC_AUTO, BC_S_COND, BC_D_COND = range(9)
INET_DIAG_REQ_BYTECODE = 1
OP = struct.Struct("=BBH")
HOSTCOND = struct.Struct("=BBxxi")  # family, prefix_len, (pad), port (-1: any)

OPS = {"=": "eq", "==": "eq", "eq": "eq", "!=": "ne", "ne": "ne", "<": "lt", "lt": "lt",
       ">": "gt", "gt": "gt", "<=": "le", "le": "le", ">=": "ge", "ge": "ge"}


@dataclass
class Filter:
    states: int | None
    bytecode: bytes
    text: str  # the expression as given (for messages)


def _error(text: str) -> RawlabError:
    return RawlabError(f"ss filter: {text}; fix: e.g. `sport = :22`, `dst 10.0.0.0/8`, "
                       "`state established '( dport = :443 or dport = :80 )'` (see man ss)",
                       Exit.USAGE)


# ---- the pieces -------------------------------------------------------------------------

def _cond(code: int, family: int, plen: int, port: int, addr: bytes) -> bytes:
    oplen = OP.size + HOSTCOND.size + len(addr)
    return OP.pack(code, oplen, oplen + 4) + HOSTCOND.pack(family, plen, port) + addr


def _port_cmp(code: int, port: int) -> bytes:
    return OP.pack(code, 8, 12) + OP.pack(0, 0, port)


def _and(a: bytes, b: bytes) -> bytes:
    return _patch(a, len(b)) + b


def _or(a: bytes, b: bytes) -> bytes:
    return a + OP.pack(BC_JMP, 4, len(b) + 4) + b


def _not(a: bytes) -> bytes:
    return a + OP.pack(BC_JMP, 4, 8)


def _patch(a: bytes, reloc: int) -> bytes:
    """Move the failure jumps of piece ``a`` (those to its end + 4) by ``reloc`` bytes."""
    out = bytearray(a)
    pos, left = 0, len(a)
    while left > 0:
        code, yes, no = OP.unpack_from(out, pos)
        if no == left + 4:
            OP.pack_into(out, pos, code, yes, no + reloc)
        left -= yes
        pos += yes
    return bytes(out)


# ---- conditions -------------------------------------------------------------------------

def _port(text: str) -> int:
    t = text[1:] if text.startswith(":") else text
    if not t.isdigit() or not 0 <= int(t) <= 65535:
        raise _error(f"'{text}' is not a port (:NUMBER; rawlab does not resolve names)")
    return int(t)


def _host(text: str) -> tuple[int, int, int, bytes]:
    """(family, prefix length, port or -1, address bytes) of ss's HOSTCOND."""
    port = -1
    host = text
    if text.startswith("["):  # [ADDR]:PORT or [ADDR/LEN]:PORT
        host, _, rest = text[1:].partition("]")
        if rest:
            port = _port(rest)
    elif text.count(":") == 1:  # ADDR:PORT (IPv4) or :PORT
        host, _, p = text.partition(":")
        port = _port(p)
    if host in ("", "*"):
        return socket.AF_UNSPEC, 0, port, bytes(4)
    try:
        net = ipaddress.ip_network(host, strict=False)
    except ValueError:
        raise _error(f"'{text}' is not an address (ADDR[/LEN][:PORT])") from None
    fam = socket.AF_INET if net.version == 4 else socket.AF_INET6
    plen = net.prefixlen if "/" in host else net.max_prefixlen
    return fam, plen, port, ipaddress.ip_address(host.split("/")[0]).packed


def _condition(words: list[str], i: int) -> tuple[bytes, int]:
    """One condition at ``words[i]``; returns its bytecode and the next index."""
    key = words[i]
    if i + 1 >= len(words):
        raise _error(f"'{key}' needs a value")
    op = OPS.get(words[i + 1])
    value_at = i + 2 if op else i + 1
    if value_at >= len(words):
        raise _error(f"'{key} {words[i + 1]}' needs a value")
    value = words[value_at]
    op = op or "eq"
    src = key in ("sport", "src")
    if key in ("sport", "dport"):
        port = _port(value)
        if op in ("eq", "ne"):
            code = _cond(BC_S_COND if src else BC_D_COND, socket.AF_UNSPEC, 0, port, bytes(4))
            return (_not(code) if op == "ne" else code), value_at + 1
        ge, le = (BC_S_GE, BC_S_LE) if src else (BC_D_GE, BC_D_LE)
        code = {"ge": _port_cmp(ge, port), "le": _port_cmp(le, port),
                "gt": _not(_port_cmp(le, port)), "lt": _not(_port_cmp(ge, port))}[op]
        return code, value_at + 1
    if op not in ("eq", "ne"):
        raise _error(f"'{key}' compares with = or != only")
    fam, plen, port, addr = _host(value)
    code = _cond(BC_S_COND if src else BC_D_COND, fam, plen, port, addr)
    return (_not(code) if op == "ne" else code), value_at + 1


# ---- the expression ---------------------------------------------------------------------

KEYS = ("sport", "dport", "src", "dst")


def _expr(words: list[str], i: int) -> tuple[bytes, int]:
    code, i = _term(words, i)
    while i < len(words) and words[i] in ("or", "||", "|"):
        more, i = _term(words, i + 1)
        code = _or(code, more)
    return code, i


def _term(words: list[str], i: int) -> tuple[bytes, int]:
    code, i = _factor(words, i)
    while i < len(words) and words[i] not in ("or", "||", "|", ")"):
        if words[i] in ("and", "&&", "&"):
            i += 1
        more, i = _factor(words, i)
        code = _and(code, more)
    return code, i


def _factor(words: list[str], i: int) -> tuple[bytes, int]:
    if i >= len(words):
        raise _error("the expression ends too early")
    w = words[i]
    if w in ("not", "!"):
        code, i = _factor(words, i + 1)
        return _not(code), i
    if w == "(":
        code, i = _expr(words, i + 1)
        if i >= len(words) or words[i] != ")":
            raise _error("a '(' is never closed")
        return code, i + 1
    if w in KEYS:
        return _condition(words, i)
    raise _error(f"'{w}' is not something ss filters on (sport, dport, src, dst, state)")


def _split(args: list[str]) -> list[str]:
    """The words of the expression: parentheses and '!' apart even when written together."""
    out: list[str] = []
    for arg in args:
        for w in arg.replace("(", " ( ").replace(")", " ) ").split():
            if w.startswith("!") and w not in ("!", "!="):
                out += ["!", w[1:]]
            else:
                out.append(w)
    return out


def parse(args: list[str]) -> Filter:
    """ss's FILTER arguments: state words, then an expression (either may be absent)."""
    from rawlab.sockets.diag import parse_states

    words = _split(args)
    include: list[str] = []
    exclude: list[str] = []
    while len(words) >= 2 and words[0] in ("state", "exclude"):
        (include if words[0] == "state" else exclude).append(words[1])
        words = words[2:]
    states = None
    if include or exclude:
        states = parse_states(include) if include else parse_states(["all"])
        if exclude:
            states &= ~parse_states(exclude)
    code = b""
    if words:
        code, i = _expr(words, 0)
        if i != len(words):
            raise _error(f"'{words[i]}' is not expected there")
    return Filter(states, code, " ".join(args))
