"""The option-list walk that IPv4 (RFC 791 §3.1) and TCP (RFC 9293 §3.1) share.

    items, malformed = walk(raw, base)    # ((kind, offset, value bytes), ...), bool

Both lists follow the same rules: kind 0 (End of Option List) ends the list,
kind 1 (No-Operation) is one byte, every other kind is kind, length (counting
both bytes, at least 2), then length - 2 bytes of value. ``offset`` is ``base``
plus the option's position in ``raw`` (callers pass the fixed header's length,
so it counts from the header's start). EOL and NOP items carry ``b""``. An
option whose length is missing, below 2 or past the end of ``raw`` is still
returned, last, with what bytes follow its kind and length, and ``malformed``
is True (unknown values survive: design principle 6). Each protocol wraps the
items in its own named tuple (``TcpOption``, ``Ipv4Option``).
"""

from __future__ import annotations

OPT_EOL = 0
OPT_NOP = 1

Item = tuple[int, int, bytes]


def walk(raw: memoryview | bytes, base: int) -> tuple[list[Item], bool]:
    """Every option of ``raw`` as ``(kind, base + position, value)``; True if malformed."""
    out: list[Item] = []
    i, n = 0, len(raw)
    while i < n:
        k = raw[i]
        if k == OPT_EOL:
            out.append((k, base + i, b""))
            break
        if k == OPT_NOP:
            out.append((k, base + i, b""))
            i += 1
            continue
        if i + 1 >= n or raw[i + 1] < 2 or i + raw[i + 1] > n:
            out.append((k, base + i, bytes(raw[i + 2 :])))
            return out, True
        ln = raw[i + 1]
        out.append((k, base + i, bytes(raw[i + 2 : i + ln])))
        i += ln
    return out, False
