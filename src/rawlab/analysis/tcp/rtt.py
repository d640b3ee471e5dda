"""Unacknowledged segments per direction: what each ACK covers (``tcp.analysis.acks_frame``,
``ack_rtt``) and the bytes in flight (``tcp.analysis.bytes_in_flight``).

Wireshark keeps a list of unacked segments and walks it on every ACK; here the
list is kept sorted by relative sequence number, so an ACK only looks at the
segments it covers, and bytes in flight are read from both ends of the list.
At most :data:`TCP_MAX_UNACKED_SEGMENTS` segments per direction, as in Wireshark.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from rawlab.analysis.seq import seq_gt
from rawlab.decode.tcp import SYN_FIN

if TYPE_CHECKING:
    from rawlab.analysis.tcp.sequence import Flow

TCP_MAX_UNACKED_SEGMENTS = 10000  # packet-tcp.h
MAX_TCP_SACK_RANGES = 4  # packet-tcp.h; Wireshark keeps at most 3 of them for bytes in flight


def _rel(s: list[int]) -> int:
    return s[0]


def remember(fwd: Flow, seq: int, seglen: int, flags: int, frame: int, ts: int) -> int:
    """Add the segment to ``fwd``'s unacked list (if it takes sequence space and the list
    has room); its next sequence number (+1 for SYN/FIN when remembered, as Wireshark)."""
    nxt = (seq + seglen) & 0xFFFFFFFF
    segs = fwd.segs
    if (seglen or flags & SYN_FIN) and len(segs) < TCP_MAX_UNACKED_SEGMENTS:
        if flags & SYN_FIN:
            nxt = (nxt + 1) & 0xFFFFFFFF  # SYN and FIN count as one byte
        rel = (seq - fwd.base) & 0xFFFFFFFF
        nrel = (nxt - fwd.base) & 0xFFFFFFFF
        if not segs:
            fwd.max_nrel = nrel
            segs.append([rel, nxt, frame, ts])
        else:
            fwd.max_nrel = max(fwd.max_nrel, nrel)
            if rel >= segs[-1][0]:
                segs.append([rel, nxt, frame, ts])
            else:
                bisect.insort(segs, [rel, nxt, frame, ts], key=_rel)
    return nxt


def ack_segments(rev: Flow, ack: int, ts: int) -> tuple[int | None, int | None]:
    """Drop the segments ``ack`` covers, trim the one it cuts; (frame acked, its RTT).

    Wireshark's loop, on a list sorted by relative seq: only segments starting before
    ``ack`` can be covered or cut. Of several segments ending exactly at ``ack`` the
    first sent wins (Wireshark visits its newest-first list to the end).
    """
    segs = rev.segs
    acked = None
    kept: list[list[int]] = []
    i = 0
    n = len(segs)
    while i < n:
        s = segs[i]
        if s[1] != ack and not seq_gt(ack, s[1]):
            # ends after ack: cut it if it starts before, then stop (the rest start later)
            if seq_gt(ack, s[0] + rev.base):
                s[0] = (ack - rev.base) & 0xFFFFFFFF
                kept.append(s)
                i += 1
                continue
            break
        if s[1] == ack and (acked is None or s[2] < acked[2]):
            acked = s
        i += 1
    if i:
        segs[:i] = kept
    if acked is None:
        return None, None
    return acked[2], ts - acked[3]


def bytes_in_flight(fwd: Flow, rev: Flow, flags: int) -> int | None:
    """Wireshark's bytes in flight after a data segment: from the first unacked byte to
    the highest next sequence number, less what the receiver's SACK blocks hold."""
    # Wireshark walks every unacked segment for min(seq) and max(nextseq); the list is
    # kept sorted by relative seq and the largest nextseq is never acked away before
    # the list empties, so both ends are at hand.
    inflight = (fwd.max_nrel - fwd.segs[0][0]) & 0xFFFFFFFF
    if rev.sack:
        delivered = 0
        for le, re_ in rev.sack:
            delivered += (re_ - le) & 0xFFFFFFFF
        inflight = (inflight - delivered) & 0xFFFFFFFF
    if 0 < inflight < 2_000_000_000:
        return (inflight - 1 if flags & SYN_FIN else inflight) or None
    return None
