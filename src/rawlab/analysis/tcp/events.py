"""What the TCP analyser hands out: one :class:`Segment` per TCP packet, a
:class:`Handshake` when one completes, a :class:`ConnectionClosed` when a
connection ends; and the :class:`Connection` summary each close carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rawlab.decode.checksum import Verdict

#: ``tcp.completeness`` bits (Wireshark's conversation completeness)
COMPLETENESS = {"syn": 1, "syn-ack": 2, "ack": 4, "data": 8, "fin": 16, "rst": 32}


class ConnState:
    """Zeek ``conn_state`` values."""

    S0 = "S0"  # attempt seen, no reply
    S1 = "S1"  # established, not terminated
    SF = "SF"  # established and terminated normally
    REJ = "REJ"  # attempt rejected
    S2 = "S2"  # established, originator's close seen, no reply
    S3 = "S3"  # established, responder's close seen, no reply
    RSTO = "RSTO"  # established, originator aborted (RST)
    RSTR = "RSTR"  # responder sent a RST
    RSTOS0 = "RSTOS0"  # originator sent a SYN then a RST, no SYN-ACK
    RSTRH = "RSTRH"  # responder sent a SYN-ACK then a RST, no SYN seen
    SH = "SH"  # originator sent a SYN then a FIN, no SYN-ACK
    SHR = "SHR"  # responder sent a SYN-ACK then a FIN, no SYN seen
    OTH = "OTH"  # no SYN: midstream


@dataclass(slots=True)
class Segment:
    """One TCP segment as the analyser saw it (tshark's ``tcp.*`` and ``tcp.analysis.*``)."""

    frame: int
    ts_ns: int
    stream: int
    dir: int  # 0 from the client (first SYN's sender, or first sender midstream), 1 server
    src_addr: bytes
    src_port: int
    dst_addr: bytes
    dst_port: int
    seq: int  # raw
    ack: int  # raw
    seq_rel: int
    ack_rel: int  # relative when the ACK flag is set, else the raw field (as tshark)
    next_seq_rel: int  # tcp.nxtseq
    flags: int  # rawlab.decode.tcp.TcpFlag bits (letters F S R P A U E C N in scapy's order)
    len: int  # payload bytes (from the IP length, as tshark)
    window: int  # scaled when the scale is known (tcp.window_size)
    window_raw: int  # tcp.window_size_value
    checksum_status: Verdict  # a str: "good", "bad", "partial", "kernel-verified", "unverified"
    analysis: tuple[str, ...]
    dup_ack_num: int | None = None
    dup_ack_frame: int | None = None
    ack_rtt_ns: int | None = None
    bytes_in_flight: int | None = None
    capture_loss: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # rawlab.decode.tcp.options_summary
    acked_frame: int | None = None  # tcp.analysis.acks_frame
    family: int = 4
    window_scale: int = -1  # shift used for `window`; -1 unknown, -2 none (Wireshark's codes)


@dataclass(slots=True)
class Handshake:
    """A three-way handshake completed (or a simultaneous open's second SYN-ACK)."""

    stream: int
    irtt_ns: int | None  # first SYN (most recent one) -> handshake's ACK, as tshark's initial_rtt
    frames: tuple[int, ...]  # SYN, SYN-ACK, ACK


@dataclass(slots=True)
class DirStats:
    """What one side sent."""

    segments: int = 0
    bytes: int = 0  # payload, retransmissions included
    retransmissions: int = 0
    rtt_min_ns: int | None = None  # ACK RTT of this side's data (tcp.analysis.ack_rtt)
    rtt_max_ns: int | None = None
    rtt_sum_ns: int = 0
    rtt_samples: int = 0
    flags_seen: int = 0  # OR of the TCP flags this side sent

    @property
    def rtt_avg_ns(self) -> int | None:
        return self.rtt_sum_ns // self.rtt_samples if self.rtt_samples else None

    def add_rtt(self, rtt: int) -> None:
        self.rtt_samples += 1
        self.rtt_sum_ns += rtt
        if self.rtt_min_ns is None or rtt < self.rtt_min_ns:
            self.rtt_min_ns = rtt
        if self.rtt_max_ns is None or rtt > self.rtt_max_ns:
            self.rtt_max_ns = rtt


@dataclass(slots=True)
class SideOptions:
    """What one side offered in its SYN (or SYN-ACK)."""

    mss: int | None = None
    wscale: int | None = None
    sack_perm: bool = False
    timestamps: bool = False
    ecn: bool = False  # SYN with ECE+CWR, or SYN-ACK with ECE


@dataclass(slots=True)
class Connection:
    """One TCP connection (a Wireshark ``tcp.stream``)."""

    stream: int
    client: tuple[bytes, int]
    server: tuple[bytes, int]
    family: int
    first_ts_ns: int
    last_ts_ns: int
    first_frame: int
    last_frame: int = 0
    state: str = ConnState.OTH
    history: str = ""
    irtt_ns: int | None = None
    completeness: int = 0
    stats: tuple[DirStats, DirStats] = field(default_factory=lambda: (DirStats(), DirStats()))
    options: tuple[SideOptions, SideOptions] = field(
        default_factory=lambda: (SideOptions(), SideOptions()))
    analysis_counts: dict[str, int] = field(default_factory=dict)
    closed: str | None = None  # why it ended: "fin", "rst", "idle", "reused", "evicted", "end"


@dataclass(slots=True)
class ConnectionClosed:
    """A connection ended (FIN both ways and ACKed, RST), was evicted, or the input ended."""

    connection: Connection

    @property
    def stream(self) -> int:
        return self.connection.stream

    @property
    def reason(self) -> str | None:
        return self.connection.closed


Event = Segment | Handshake | ConnectionClosed
