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
