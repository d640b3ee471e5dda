"""tcpdump's words that need no decoder: the line style and clocks (-t..-ttttt, -S, -q
...), the time of day, the letters of the TCP flags and the relative sequence numbers.

The columnar path (rawlab.present.columns) prints a file's lines with these alone; the
per-packet path (rawlab.present.packet) uses them too, and its decoder is imported only
when a row needs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LineStyle:
    """tcpdump's choices for the one-line view.

    ``clock``: a function of ts_ns giving the time column (:class:`Clock`; None: local
    time of day, tcpdump's default). ``link``: -e, the link-level header first.
    ``dump``: "x"/"X" (-x/-X: hex, with ASCII, from the network header), "xx"/"XX"
    (-xx/-XX: from the link header), "A" (-A: ASCII), "payload" (the transport payload
    as -X), or "" (none). ``absolute`` (-S): raw sequence numbers instead of tcpdump's
    relative ones. ``quick`` (-q): tcpdump's short form (``tcp 0``).
    """

    clock: Callable[[int], str] | None = None
    link: bool = False
    dump: str = ""
    absolute: bool = False  # -S: absolute sequence numbers
    quick: bool = False  # -q: less protocol information
    colour: bool = False  # ANSI colours (present.colour): a terminal, no NO_COLOR


DEFAULT_STYLE = LineStyle()


class Clock:
    """tcpdump's -t forms: "" (-t: none), "epoch" (-tt: seconds.µs since the epoch), "delta"
    (-ttt: since the previous packet), "date" (-tttt: date and time of day), "since"
    (-ttttt: since the first packet); "time" (default: time of day)."""

    def __init__(self, form: str = "time") -> None:
        self.form = form
        self._first: int | None = None
        self._prev: int | None = None

    def __call__(self, ts_ns: int) -> str:
        f = self.form
        if f == "time":
            return timestamp(ts_ns)
        if f == "":
            return ""
        if f == "epoch":
            sec, ns = divmod(ts_ns, 1_000_000_000)
            return f"{sec}.{ns // 1000:06d}"
        if f == "date":
            sec, ns = divmod(ts_ns, 1_000_000_000)
            return timestamp(ts_ns, "%Y-%m-%d %H:%M:%S")
        if self._first is None:
            self._first = self._prev = ts_ns
        ref = self._prev if f == "delta" else self._first
        self._prev = ts_ns
        d = max(ts_ns - (ref or ts_ns), 0) // 1000
        sec, us = divmod(d, 1_000_000)
        h, rest = divmod(sec, 3600)
        return f" {h:02d}:{rest // 60:02d}:{rest % 60:02d}.{us:06d}"


def timestamp(ts_ns: int, fmt: str = "%H:%M:%S") -> str:
    """Local time of `ts_ns` as `fmt` plus microseconds; a time the C library cannot
    show (a file's absurd if_tsresol or if_tsoffset) as seconds since the epoch."""
    sec, ns = divmod(ts_ns, 1_000_000_000)
    try:
        return time.strftime(fmt, time.localtime(sec)) + f".{ns // 1000:06d}"
    except (OverflowError, OSError, ValueError):
        return f"{sec}.{ns // 1000:06d}"


# tcpdump's table order (print-tcp.c tcp_flag_values): F S R P . U E W (AE not shown), the
# flag bits of the TCP header 0x01 to 0x80 (decode.tcp.TcpFlag: tests/unit/test_tcp_seq.py)
_TCPDUMP_FLAGS = tuple((1 << k, ch) for k, ch in enumerate("FSRP.UEW"))
_ACK = 0x10
_TD_FLAG_TEXT = ["".join(ch for bit, ch in _TCPDUMP_FLAGS if f & bit) or "none"
                 for f in range(512)]


def tcpdump_flags(flags: int) -> str:
    """tcpdump's letters for a TCP flags field, in tcpdump's order ("S.", "FP.")."""
    return _TD_FLAG_TEXT[flags & 0x1FF]



class TcpdumpSeq:
    """tcpdump's relative sequence numbers (print-tcp.c, without -S): per connection,
    keyed by the address and port pair in tcpdump's order, the base is taken from the
    first segment with ACK set (or a new SYN); the base segment itself prints absolute
    numbers, later ones print seq and ack relative to it."""

    __slots__ = ("_bases",)

    def __init__(self) -> None:
        self._bases: dict[tuple[bytes, bytes, int], tuple[int, int]] = {}

    def numbers(self, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int,
                flags: int) -> tuple[int, int, int]:
        """(seq, ack, SACK base) as tcpdump prints them."""
        if not flags & _ACK:
            return seq, ack, 0
        rev = sport > dport or (sport == dport and src > dst)
        key = (dst, src, dport << 16 | sport) if rev else (src, dst, sport << 16 | dport)
        got = self._bases.get(key)
        if got is None or flags & 0x02:
            if len(self._bases) >= 1 << 16:
                self._bases.clear()  # bounded, like tcpdump's hash (which never frees)
            got = self._bases[key] = ((ack - 1) & 0xFFFFFFFF, seq) if rev else (
                seq, (ack - 1) & 0xFFFFFFFF)
            return seq, ack, got[0] if rev else got[1]
        base_seq, base_ack = got
        if rev:
            return (seq - base_ack) & 0xFFFFFFFF, (ack - base_seq) & 0xFFFFFFFF, base_seq
        return (seq - base_seq) & 0xFFFFFFFF, (ack - base_ack) & 0xFFFFFFFF, base_ack
