"""The type-length-value walk the link-layer and tunnel protocols share.

    items, trouble = walk(buf, start, end, head, hsize, inclusive=False, align=1)
    for t in items: t.type, t.offset, t.value        # value: bytes (what was captured)
    trouble                     # "" | TRUNCATED | MALFORMED

``head(buf, pos)`` reads one TLV header at ``pos`` and answers ``(type, length)``;
``hsize`` is that header's size. ``inclusive``: the length counts the header too
(CDP, NFLOG) rather than the value alone (LLDP, PPPoE tags, 802.11 elements,
Geneve and NSH metadata). ``unit``: the length is in units of that many bytes
(Geneve, NSH: 4). ``align``: each TLV starts on a multiple of ``align`` bytes
from ``start`` (NFLOG: 4). The walk stops at ``end``; a TLV whose value runs past
the captured bytes is still returned, last, with the bytes there are (``trouble``
is :data:`TRUNCATED`); one that runs past ``end`` itself, a length below the
header's own size (inclusive lengths) or more than :data:`MAX_TLVS` items are
:data:`MALFORMED` and end the walk.

Each protocol keeps its own names for the types; unknown types keep their number
and bytes (design principle 6).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

MAX_TLVS = 512
TRUNCATED = "truncated"
MALFORMED = "malformed"

Head = Callable[[memoryview, int], tuple[int, int]]


class Tlv(NamedTuple):
    type: int
    offset: int  # of the TLV's header, from the start of the view's buffer
    value: bytes


def walk(buf: memoryview, start: int, end: int, head: Head, hsize: int, *,
         inclusive: bool = False, unit: int = 1, align: int = 1) -> tuple[list[Tlv], str]:
    """Every TLV in ``buf[start:end]`` (``end`` is clamped to what was captured)."""
    out: list[Tlv] = []
    cap = len(buf)
    stop = min(end, cap)
    pos = start
    while pos + hsize <= stop:
        if len(out) == MAX_TLVS:
            return out, MALFORMED
        typ, ln = head(buf, pos)
        ln *= unit
        if inclusive:
            if ln < hsize:
                out.append(Tlv(typ, pos, bytes(buf[pos + hsize : stop])))
                return out, MALFORMED
            vend = pos + ln
        else:
            vend = pos + hsize + ln
        out.append(Tlv(typ, pos, bytes(buf[pos + hsize : min(vend, stop)])))
        if vend > stop:
            return out, MALFORMED if vend > end else TRUNCATED
        pos = vend
        if align > 1:
            pos = start + -(-(pos - start) // align) * align
    if pos < end and cap < end:
        return out, TRUNCATED  # a header cut short by the capture
    return out, ""
