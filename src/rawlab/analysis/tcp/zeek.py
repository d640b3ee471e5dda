"""Zeek's view of a TCP connection: the ``history`` letters and the ``conn_state``
(``base/protocols/conn/main.zeek``).

History: one letter per thing first seen, upper case when the originator (the
client) did it: s SYN, h SYN-ACK, a pure ACK, d data, f FIN, r RST, q a SYN with
FIN or RST, c bad checksum, g a gap (lost segment or capture loss), t a
retransmitted data segment, w a zero window, ^ the first packet seen came from the
responder. c g t w repeat at 10, 100, 1000 ... occurrences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rawlab.analysis.tcp.events import ConnState
from rawlab.analysis.tcp.expert import A_LOST_PACKET, A_RETRANSMITTED
from rawlab.decode.tcp import ACK, FIN, RST, SYN, SYN_FIN_RST

if TYPE_CHECKING:
    from rawlab.analysis.tcp.table import Conn

_LOG_LETTERS = frozenset("cgtw")
_MARKED = A_LOST_PACKET | A_RETRANSMITTED  # bits that add "g" or "t"


def history(c: Conn, d: int, flags: int, seglen: int, win: int, taflags: int, bad: bool,
            loss: bool) -> None:
    """Add the letters a segment of direction ``d`` shows to the connection's history
    (``bad``: its checksum is bad; ``loss``: the capture lost packets before it)."""
    seen = c.flows[d].hist_n
    if win and not (flags & SYN_FIN_RST or bad or loss or taflags & _MARKED):
        # the commonest segment: only "d" (data) or "a" (a pure ACK), mostly seen before
        ch = "d" if seglen else "a" if flags & ACK else ""
        if not ch or ch in seen:
            return
        letters: tuple[str, ...] = (ch,)
    else:
        letters = _letters(flags, seglen, win, taflags, bad, loss)
    conn = c.conn
    for ch in letters:
        if ch in _LOG_LETTERS:
            n = seen.get(ch, 0) + 1
            seen[ch] = n
            while n % 10 == 0:
                n //= 10
            if n != 1:
                continue
        elif ch in seen:
            continue
        else:
            seen[ch] = 1
        conn.history += ch.upper() if d == 0 else ch


def _letters(flags: int, seglen: int, win: int, taflags: int, bad: bool,
             loss: bool) -> tuple[str, ...]:
    """The history letters a segment shows, in Zeek's order."""
    letters = []
    if flags & SYN:
        letters.append("h" if flags & ACK else "s")
        if flags & (FIN | RST):
            letters.append("q")
    if flags & FIN:
        letters.append("f")
    if flags & RST:
        letters.append("r")
    if flags & ACK and not seglen and not flags & SYN_FIN_RST:
        letters.append("a")
    if seglen:
        letters.append("d")
    if bad:
        letters.append("c")
    if taflags & A_LOST_PACKET or loss:
        letters.append("g")
    if seglen and taflags & A_RETRANSMITTED:
        letters.append("t")
    if win == 0 and not flags & SYN_FIN_RST:
        letters.append("w")
    return tuple(letters)


def refresh(c: Conn) -> None:
    """Recompute the connection's ``state`` from what both directions sent."""
    c.conn.state = conn_state(c)


def conn_state(c: Conn) -> str:
    """Zeek's ``conn_state`` from what both directions sent."""
    o, r = c.flows
    return state_of(o.saw_syn, r.saw_synack, "r" in o.hist_n, "r" in r.hist_n,
                    "f" in o.hist_n, "f" in r.hist_n)


def state_of(o_syn: bool, r_synack: bool, o_rst: bool, r_rst: bool, o_fin: bool,
             r_fin: bool) -> str:
    """Zeek's ``conn_state``: did the originator send a SYN, the responder a SYN-ACK,
    each a RST, each a FIN."""
    if o_syn and not r_synack:
        if r_rst:
            return ConnState.REJ
        if o_rst:
            return ConnState.RSTOS0
        if o_fin:
            return ConnState.SH
        return ConnState.S0
    if r_synack and not o_syn:
        if r_rst:
            return ConnState.RSTRH
        if r_fin:
            return ConnState.SHR
        return ConnState.OTH
    if not o_syn:
        return ConnState.OTH
    if o_rst:
        return ConnState.RSTO
    if r_rst:
        return ConnState.RSTR
    if o_fin and r_fin:
        return ConnState.SF
    if o_fin:
        return ConnState.S2
    if r_fin:
        return ConnState.S3
    return ConnState.S1
