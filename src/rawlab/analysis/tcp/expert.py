"""Wireshark's TCP expert bits (``TCP_A_*``, packet-tcp.c), their names, and the
retransmission kinds (retransmission, fast, spurious; out-of-order).

The bits stay ints on the hot path; :func:`analysis_names` turns a set of them
into the names ``Segment.analysis`` carries, in Wireshark's print order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rawlab.analysis.seq import seq_gt
from rawlab.decode.tcp import SYN_FIN

if TYPE_CHECKING:
    from rawlab.analysis.tcp.sequence import Flow

A_RETRANSMISSION = 0x0001
A_LOST_PACKET = 0x0002
A_ACK_LOST_PACKET = 0x0004
A_KEEP_ALIVE = 0x0008
A_DUPLICATE_ACK = 0x0010
A_ZERO_WINDOW = 0x0020
A_ZERO_WINDOW_PROBE = 0x0040
A_ZERO_WINDOW_PROBE_ACK = 0x0080
A_KEEP_ALIVE_ACK = 0x0100
A_OUT_OF_ORDER = 0x0200
A_FAST_RETRANSMISSION = 0x0400
A_WINDOW_UPDATE = 0x0800
A_WINDOW_FULL = 0x1000
A_REUSED_PORTS = 0x2000
A_SPURIOUS_RETRANSMISSION = 0x4000
#: any kind of retransmission (tshark's ``tcp.analysis.retransmission`` field is set for all)
A_RETRANSMITTED = A_RETRANSMISSION | A_FAST_RETRANSMISSION | A_SPURIOUS_RETRANSMISSION

FAST_RTX_NS = 20_000_000  # a fast retransmission follows the last dup ACK within 20 ms
OOO_DEFAULT_NS = 3_000_000  # out-of-order threshold without an iRTT

# Order of the names in Segment.analysis (Wireshark's print order).
_NAMES: tuple[tuple[int, str], ...] = (
    (A_REUSED_PORTS, "reused_ports"),
    (A_RETRANSMITTED, "retransmission"),
    (A_FAST_RETRANSMISSION, "fast_retransmission"),
    (A_SPURIOUS_RETRANSMISSION, "spurious_retransmission"),
    (A_OUT_OF_ORDER, "out_of_order"),
    (A_LOST_PACKET, "lost_segment"),
    (A_ACK_LOST_PACKET, "ack_lost_segment"),
    (A_WINDOW_UPDATE, "window_update"),
    (A_WINDOW_FULL, "window_full"),
    (A_KEEP_ALIVE, "keep_alive"),
    (A_KEEP_ALIVE_ACK, "keep_alive_ack"),
    (A_DUPLICATE_ACK, "duplicate_ack"),
    (A_ZERO_WINDOW_PROBE, "zero_window_probe"),
    (A_ZERO_WINDOW, "zero_window"),
    (A_ZERO_WINDOW_PROBE_ACK, "zero_window_probe_ack"),
)
ANALYSIS_NAMES: tuple[str, ...] = tuple(n for _, n in _NAMES)
_NAME_CACHE: dict[int, tuple[str, ...]] = {0: ()}


def analysis_names(bits: int) -> tuple[str, ...]:
    """The Wireshark names for a set of TCP_A_* bits (cached)."""
    got = _NAME_CACHE.get(bits)
    if got is None:
        got = _NAME_CACHE[bits] = tuple(n for b, n in _NAMES if bits & b)
    return got


def retransmission(fwd: Flow, rev: Flow, seq: int, seglen: int, flags: int, ts: int,
                   first_rtt: int, behind: bool) -> int:
    """Wireshark's RETRANSMISSION / FAST RETRANSMISSION / OUT-OF-ORDER block: the bit
    of this segment's kind of retransmission, or 0 (``behind``: GT_SEQ(nextseq, seq))."""
    nextseq = fwd.nextseq
    not_adv = behind
    if seglen > 1 and (nextseq - 1) & 0xFFFFFFFF == seq:
        not_adv = False
    rl = rev.lastack
    if seglen > 0 and rl and not seq_gt(seq + seglen, rl):
        return A_SPURIOUS_RETRANSMISSION
    t = ts - rev.lastacktime
    if not_adv and rev.dupacknum >= 2 and rl == seq and 0 <= t < FAST_RTX_NS:
        return A_FAST_RETRANSMISSION
    t = ts - fwd.nextseqtime
    thres = first_rtt or OOO_DEFAULT_NS
    if not_adv and 0 <= t < thres and \
            nextseq != (seq + seglen + (1 if flags & SYN_FIN else 0)) & 0xFFFFFFFF:
        return A_OUT_OF_ORDER
    if not_adv:
        return A_RETRANSMISSION
    return 0
