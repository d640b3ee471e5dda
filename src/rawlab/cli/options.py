"""Option types every command shares, checked when the command line is parsed.

``Seconds()`` accepts a finite number of seconds > 0 (not nan, not inf, not 0 or
negative, which would end a capture at once or never); ``Seconds(lo, hi)`` bounds it.
"""

from __future__ import annotations

import math
from typing import Any

import click


class Seconds(click.ParamType):
    """A finite duration in seconds, > `lo` (default 0) and ≤ `hi` (default none)."""

    name = "seconds"

    def __init__(self, lo: float = 0.0, hi: float | None = None, *, lo_open: bool = True):
        self.lo = lo
        self.hi = hi
        self.lo_open = lo_open

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, float):
            v = value
        else:
            try:
                v = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        if v < self.lo or (self.lo_open and v == self.lo):
            self.fail(f"{value!r} must be {'>' if self.lo_open else '≥'} {self.lo:g} seconds",
                      param, ctx)
        if self.hi is not None and v > self.hi:
            self.fail(f"{value!r} must be ≤ {self.hi:g} seconds", param, ctx)
        return v

    def __repr__(self) -> str:
        return "SECONDS"


SNAPLEN_MAX = 262144  # libpcap's MAXIMUM_SNAPLEN: what -s 0 means, as in tcpdump


def snaplen(value: int) -> int:
    """tcpdump's -s: 0 means the maximum."""
    return value or SNAPLEN_MAX


def line_style_options(f: Any) -> Any:
    """tcpdump's habits for the one-line view, on `read` and `capture`: -t.., -e, -x/-xx,
    -X/-XX, -A, --payload, and -n/-nn (accepted: rawlab never resolves names). The
    command receives them as one ``style`` argument (a present.packet.LineStyle)."""
    opts = [
        click.option("-t", "t_count", count=True, help="-t no time, -tt seconds since the "
                     "epoch, -ttt since the previous packet, -tttt with the date, -ttttt "
                     "since the first packet (as tcpdump)."),
        click.option("-e", "link", is_flag=True, help="Print the link-level header "
                     "(MAC addresses, ethertype, VLAN tags; the cooked header)."),
        click.option("-x", "x_count", count=True, help="Hex dump from the network header "
                     "(-xx: from the link header)."),
        click.option("-X", "xa_count", count=True, help="Hex and ASCII dump from the network "
                     "header (-XX: from the link header)."),
        click.option("-A", "ascii_dump", is_flag=True, help="Each packet in ASCII."),
        click.option("--payload", "payload_dump", is_flag=True, help="Hex and ASCII of the "
                     "transport payload only."),
        click.option("-n", "_numeric", count=True, expose_value=False, help="Accepted "
                     "(-n, -nn): rawlab never resolves addresses, ports or protocols."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def line_style(t_count: int, link: bool, x_count: int, xa_count: int, ascii_dump: bool,
               payload_dump: bool) -> Any:
    """The LineStyle the -t/-e/-x/-X/-A/--payload counts ask for."""
    from rawlab.present.packet import Clock, LineStyle

    if sum((bool(x_count), bool(xa_count), ascii_dump, payload_dump)) > 1:
        raise click.UsageError("choose one of -x, -X, -A, --payload")
    forms = ("time", "", "epoch", "delta", "date", "since")
    clock = None if t_count == 0 else Clock(forms[min(t_count, 5)])
    dump = ("XX" if xa_count > 1 else "X" if xa_count else "xx" if x_count > 1 else
            "x" if x_count else "A" if ascii_dump else "payload" if payload_dump else "")
    return LineStyle(clock, link, dump)


def pop_line_style(kw: dict[str, Any]) -> Any:
    """Take the options of :func:`line_style_options` out of a command's keyword arguments."""
    return line_style(kw.pop("t_count"), kw.pop("link"), kw.pop("x_count"),
                      kw.pop("xa_count"), kw.pop("ascii_dump"), kw.pop("payload_dump"))


class KeylogFile(click.ParamType):
    """An SSLKEYLOGFILE (NSS key log: ``CLIENT_RANDOM``, ``*_TRAFFIC_SECRET_0`` ... lines),
    read when the command line is parsed: the value is a
    :class:`rawlab.analysis.tls_decrypt.KeyLog`. A file that cannot be read, or holds no
    secret, fails here (exit 2) with what is wrong."""

    name = "keylog"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from rawlab.analysis.tls_decrypt import KeyLog

        if isinstance(value, KeyLog):
            return value
        try:
            with open(value, encoding="ascii", errors="replace") as f:
                keys = KeyLog.parse(f.read())
        except OSError as exc:
            self.fail(f"cannot read {value}: {exc.strerror}", param, ctx)
        if not len(keys):
            self.fail(f"{value} holds no TLS secrets (expected lines like "
                      "'CLIENT_RANDOM <hex> <hex>')", param, ctx)
        return keys

