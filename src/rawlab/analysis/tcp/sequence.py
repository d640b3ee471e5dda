"""Wireshark's sequence analysis of a TCP segment (``tcp_analyze_sequence_number``,
epan/dissectors/packet-tcp.c, 4.0), compiled in :mod:`rawlab._tcp_sequence`:

    fwd, rev = Flow(), Flow()          # one direction each (tcp_flow_t)
    taflags, acked, rtt, bif = segment(fwd, rev, seq, ack, flags, win, seglen, frame, ts,
                                       first_rtt, taflags)

``segment`` sets the base sequence numbers once known, adds the segment's TCP_A_* bits
(zero window and probes, lost segment, keep-alive, window update and full, duplicate
ACK, ACK of an unseen segment, the retransmission kinds and out-of-order:
:mod:`~rawlab.analysis.tcp.expert`), keeps the segments not yet acknowledged (at most
``TCP_MAX_UNACKED_SEGMENTS`` a direction, sorted by relative sequence number), and
returns the frame and RTT its ACK acknowledges (``tcp.analysis.acks_frame``,
``ack_rtt``; None) and the bytes in flight after it (``tcp.analysis.bytes_in_flight``;
None). A :class:`Flow`'s other fields (handshake marks, window scale, FIN, SACK blocks,
Zeek history) are attributes the analyser (:mod:`~rawlab.analysis.tcp.analyzer`) sets.

It was Python (~2 µs a segment, a third of ``tcp --json``'s analysis) until it became C;
the exact analyser's tests against tshark hold its rules.
"""

from __future__ import annotations

from rawlab._tcp_sequence import (
    MAX_TCP_SACK_RANGES,
    TCP_MAX_UNACKED_SEGMENTS,
    Flow,
    segment,
)

__all__ = ["MAX_TCP_SACK_RANGES", "TCP_MAX_UNACKED_SEGMENTS", "Flow", "segment"]
