"""Wireshark's TCP expert bits (``TCP_A_*``, packet-tcp.c) and their names.

The bits are set by the compiled sequence analysis (:mod:`rawlab._tcp_sequence`, which
also tells the retransmission kinds apart: retransmission, fast within 20 ms of the
second duplicate ACK, spurious for data already acknowledged, out-of-order within the
iRTT or 3 ms of the highest segment) and stay ints on the hot path;
:func:`analysis_names` turns a set of them into the names ``Segment.analysis``
carries, in Wireshark's print order.
"""

from __future__ import annotations

from rawlab._tcp_sequence import (  # the bits the compiled sequence analysis sets
    A_ACK_LOST_PACKET,
    A_DUPLICATE_ACK,
    A_FAST_RETRANSMISSION,
    A_KEEP_ALIVE,
    A_KEEP_ALIVE_ACK,
    A_LOST_PACKET,
    A_OUT_OF_ORDER,
    A_RETRANSMISSION,
    A_REUSED_PORTS,
    A_SPURIOUS_RETRANSMISSION,
    A_WINDOW_FULL,
    A_WINDOW_UPDATE,
    A_ZERO_WINDOW,
    A_ZERO_WINDOW_PROBE,
    A_ZERO_WINDOW_PROBE_ACK,
)

#: any kind of retransmission (tshark's ``tcp.analysis.retransmission`` field is set for all)
A_RETRANSMITTED = A_RETRANSMISSION | A_FAST_RETRANSMISSION | A_SPURIOUS_RETRANSMISSION

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
