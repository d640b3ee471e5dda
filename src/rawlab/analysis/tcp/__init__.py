"""TCP connection tracking and Wireshark's sequence analysis, sans I/O.

    from rawlab.analysis.tcp import TcpAnalyzer, Segment, Handshake, ConnectionClosed
    tcp = TcpAnalyzer(idle_timeout_ns=300 * 10**9, max_connections=100_000)
    for frame, rec in enumerate(records, 1):
        for ev in tcp.feed(frame, rec.ts_ns, decoder.decode(rec.data, rec.linktype)):
            ...                      # Segment, Handshake, ConnectionClosed
        # or, faster (finds the headers without views; same events):
        events = tcp.feed_bytes(frame, rec.ts_ns, rec.data, rec.linktype, rec.csum_status)
        events = tcp.feed_record(frame, rec)        # the same, from a Record
    tcp.note_capture_drops(n)        # live capture: the kernel dropped n packets since last call
    for ev in tcp.finish(): ...      # ConnectionClosed for every connection still open

The modules are the parts Wireshark and Zeek name: ``table`` (the connection
table: one canonical key and a direction bit per connection), ``sequence``
(``tcp_analyze_sequence_number``), ``expert`` (the ``TCP_A_*`` bits and names,
retransmission kinds), ``rtt`` (unacknowledged segments: ACK RTT, bytes in
flight), ``zeek`` (history, conn_state), ``events`` (what comes out) and
``analyzer`` (:class:`TcpAnalyzer`, which runs them per segment).

Rules are those of Wireshark 4.0's ``tcp_analyze_sequence_number`` (epan/
dissectors/packet-tcp.c, 4.0.17) with its default preferences (relative
sequence numbers, bytes in flight from segments, fast retransmission checked
before out-of-order), including the conversation rules of ``dissect_tcp``
(a SYN with a new ISN on a known 4-tuple starts a new stream: ``reused_ports``;
a retransmitted SYN restores the next expected sequence number). Sequence
numbers in the rules are raw 32-bit values compared wrap-safely (``GT_SEQ``).
Where rawlab differs from tshark on purpose it says so in
``tests/privileged/test_tcp_tshark.py`` and ``captures/README.md``:

* ``analysis`` names a fast or spurious retransmission together with
  ``retransmission``, as tshark's ``tcp.analysis.retransmission`` field does.
* IP fragments are not reassembled: a TCP segment in fragments is skipped.
* Connections idle longer than ``idle_timeout_ns`` (and closed ones, after
  ``close_linger_ns``) are forgotten; a later packet of the same 4-tuple starts
  a new stream where tshark (which keeps everything) would continue the old.

Memory is bounded by the connections alive (plus at most
``TCP_MAX_UNACKED_SEGMENTS`` unacknowledged segments per direction, as in
Wireshark); per packet the work is constant except when acknowledging out of
order segments.
"""

from typing import Any

from rawlab.analysis.seq import Seq32, seq_diff, seq_ge, seq_gt, seq_le, seq_lt
from rawlab.analysis.tcp.events import (
    COMPLETENESS,
    Connection,
    ConnectionClosed,
    ConnState,
    DirStats,
    Event,
    Handshake,
    Segment,
    SideOptions,
)
from rawlab.analysis.tcp.expert import ANALYSIS_NAMES, analysis_names
from rawlab.analysis.tcp.sequence import MAX_TCP_SACK_RANGES, TCP_MAX_UNACKED_SEGMENTS

__all__ = [
    "ANALYSIS_NAMES",
    "COMPLETENESS",
    "MAX_TCP_SACK_RANGES",
    "TCP_MAX_UNACKED_SEGMENTS",
    "ConnState",
    "Connection",
    "ConnectionClosed",
    "DirStats",
    "Event",
    "Handshake",
    "Segment",
    "Seq32",
    "SideOptions",
    "TcpAnalyzer",
    "analyse",
    "analysis_names",
    "seq_diff",
    "seq_ge",
    "seq_gt",
    "seq_le",
    "seq_lt",
]


def __getattr__(name: str) -> Any:
    """TcpAnalyzer and analyse, imported at first use: the connection table of a file
    (analysis.tcp.columns) needs the events' types, not the analyser's front end."""
    if name in ("TcpAnalyzer", "analyse"):
        from rawlab.analysis.tcp import analyzer

        return getattr(analyzer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
