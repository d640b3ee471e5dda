"""A TCP client in user space, sans I/O: segments in, segments out.

    tcp = UserTcp(isn=…, data=b"hello")
    out = tcp.start()                 # [SYN]
    out = tcp.receive(seg)            # what to send in answer to the peer's segment
    out = tcp.retransmit()            # after a timeout: whatever is unacknowledged
    tcp.done, tcp.state, tcp.received

One connection, active open, active close: SYN → SYN-ACK → ACK, the data
(in MSS-sized segments, within the peer's window), then FIN once the data is
acknowledged; the peer's data and FIN are acknowledged as they arrive, in
order (out-of-order segments get a duplicate ACK and are dropped). Done when
our FIN is acknowledged and the peer's FIN received. No window scaling, no
SACK, no timestamps: the SYN offers only an MSS, so the peer uses none of them.
States are RFC 9293's names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rawlab.analysis.seq import Seq32
from rawlab.raw.packets import ACK, FIN, PSH, RST, SYN

WINDOW = 65535


@dataclass(frozen=True)
class Seg:
    """A segment as the state machine sees it (ports and addresses live elsewhere)."""

    flags: int
    seq: int
    ack: int = 0
    payload: bytes = b""
    window: int = WINDOW
    mss: int | None = None  # the MSS option (SYN / SYN-ACK only)


@dataclass
class UserTcp:
    isn: int
    data: bytes = b""
    mss: int = 1460
    state: str = "CLOSED"
    received: bytes = b""
    reset: bool = False  # the peer reset the connection
    refused: bool = False  # the RST answered our SYN
    peer_fin: bool = False
    peer_isn: int | None = None
    peer_mss: int = 536  # RFC 9293's default until the peer says otherwise
    peer_window: int = 0
    snd_una: int = 0
    snd_nxt: int = 0
    rcv_nxt: int = 0
    log: list[str] = field(default_factory=list)  # state changes, for the report

    def _goto(self, state: str) -> None:
        if state != self.state:
            self.log.append(f"{self.state} → {state}")
            self.state = state

    @property
    def done(self) -> bool:
        return self.state in ("TIME-WAIT", "CLOSED") and (self.peer_isn is not None
                                                          or self.reset)

    @property
    def fin_seq(self) -> int:
        """The sequence number our FIN takes."""
        return (self.isn + 1 + len(self.data)) & 0xFFFFFFFF

    def _ack_seg(self) -> Seg:
        return Seg(ACK, self.snd_nxt, self.rcv_nxt)

    def start(self) -> list[Seg]:
        self.snd_una = self.isn
        self.snd_nxt = (self.isn + 1) & 0xFFFFFFFF
        self._goto("SYN-SENT")
        return [Seg(SYN, self.isn, 0, mss=self.mss)]

    def _data_segments(self, start: int) -> list[Seg]:
        """Unsent (or, for a retransmission, unacknowledged) data from sequence `start`."""
        out = []
        off = (start - self.isn - 1) & 0xFFFFFFFF
        una = (self.snd_una - self.isn - 1) & 0xFFFFFFFF
        step = max(min(self.mss, self.peer_mss), 1)
        end = min(len(self.data), una + max(self.peer_window, 1))  # the peer's window
        while off < end:
            chunk = self.data[off:min(off + step, end)]
            seq = (self.isn + 1 + off) & 0xFFFFFFFF
            out.append(Seg(PSH | ACK, seq, self.rcv_nxt, chunk))
            off += len(chunk)
        return out

    def _after_ack(self) -> list[Seg]:
        """Send what may be sent now: more data, or our FIN once all data is acknowledged."""
        out = self._data_segments(self.snd_nxt)
        if out:
            last = out[-1]
            self.snd_nxt = (last.seq + len(last.payload)) & 0xFFFFFFFF
            return out
        all_data_acked = Seq32(self.snd_una) >= Seq32(self.fin_seq)
        if self.state in ("ESTABLISHED", "CLOSE-WAIT") and all_data_acked:
            self.snd_nxt = (self.fin_seq + 1) & 0xFFFFFFFF
            self._goto("FIN-WAIT-1" if self.state == "ESTABLISHED" else "LAST-ACK")
            return [Seg(FIN | ACK, self.fin_seq, self.rcv_nxt)]
        return []

    def receive(self, seg: Seg) -> list[Seg]:
        """The peer's segment; returns what to send."""
        if self.state in ("CLOSED", "TIME-WAIT") and not seg.flags & FIN:
            return []
        if seg.flags & RST:
            return self._on_rst(seg)
        if self.state == "SYN-SENT":
            return self._on_syn_sent(seg)
        out: list[Seg] = []
        if seg.flags & ACK and Seq32(self.snd_una) < Seq32(seg.ack) <= Seq32(self.snd_nxt):
            self.snd_una = seg.ack
        self.peer_window = seg.window
        if self.state == "FIN-WAIT-1" and Seq32(self.snd_una) == Seq32(self.fin_seq + 1):
            self._goto("FIN-WAIT-2")
        need_ack = False
        if seg.payload or seg.flags & FIN:
            if seg.seq != self.rcv_nxt:  # out of order or a retransmission: say where we are
                return [self._ack_seg()]
            self.received += seg.payload
            self.rcv_nxt = (self.rcv_nxt + len(seg.payload)) & 0xFFFFFFFF
            need_ack = True
            if seg.flags & FIN and not self.peer_fin:
                self.peer_fin = True
                self.rcv_nxt = (self.rcv_nxt + 1) & 0xFFFFFFFF
                self._on_peer_fin()
        fin_acked = Seq32(self.snd_una) == Seq32(self.fin_seq + 1)
        if fin_acked and self.state in ("CLOSING", "LAST-ACK"):
            self._goto("TIME-WAIT" if self.state == "CLOSING" else "CLOSED")
        if self.state == "FIN-WAIT-2" and self.peer_fin:
            self._goto("TIME-WAIT")
        sent = self._after_ack()
        out.extend(sent)
        if need_ack and not sent:
            out.append(self._ack_seg())
        return out

    def _on_peer_fin(self) -> None:
        if self.state == "ESTABLISHED":
            self._goto("CLOSE-WAIT")
        elif self.state == "FIN-WAIT-1":
            self._goto("CLOSING")

    def _on_rst(self, seg: Seg) -> list[Seg]:
        if self.state == "SYN-SENT":
            if seg.flags & ACK and seg.ack == self.snd_nxt:
                self.refused = self.reset = True
                self._goto("CLOSED")
            return []
        if seg.seq == self.rcv_nxt:  # RFC 5961: only an exact RST resets
            self.reset = True
            self._goto("CLOSED")
        return []

    def _on_syn_sent(self, seg: Seg) -> list[Seg]:
        if seg.flags & (SYN | ACK) != SYN | ACK or seg.ack != self.snd_nxt:
            return []
        self.peer_isn = seg.seq
        self.rcv_nxt = (seg.seq + 1) & 0xFFFFFFFF
        self.snd_una = seg.ack
        self.peer_window = seg.window
        if seg.mss:
            self.peer_mss = seg.mss
        self._goto("ESTABLISHED")
        return [self._ack_seg(), *self._after_ack()]

    def retransmit(self) -> list[Seg]:
        """What a retransmission timeout resends."""
        if self.state == "SYN-SENT":
            return [Seg(SYN, self.isn, 0, mss=self.mss)]
        if self.state in ("CLOSED", "TIME-WAIT"):
            return []
        out = self._data_segments(self.snd_una)
        if Seq32(self.snd_nxt) == Seq32(self.fin_seq + 1) and \
                Seq32(self.snd_una) <= Seq32(self.fin_seq):
            out.append(Seg(FIN | ACK, self.fin_seq, self.rcv_nxt))
        if not out and self.peer_fin:
            out.append(self._ack_seg())
        return out

    def abort(self) -> Seg | None:
        """The RST that tears the peer's side down (None when there is nothing to reset)."""
        if self.state in ("CLOSED", "TIME-WAIT", "SYN-SENT"):
            return None
        self._goto("CLOSED")
        return Seg(RST | ACK, self.snd_nxt, self.rcv_nxt)
