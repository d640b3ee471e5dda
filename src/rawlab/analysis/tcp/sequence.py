"""Wireshark's ``tcp_analyze_sequence_number`` (epan/dissectors/packet-tcp.c, 4.0):
what each segment says about its direction's sequence space, as TCP_A_* bits.

    bits = analyze(fwd, rev, hdr, seglen, frame, ts, first_rtt, bits)

``fwd`` is the :class:`Flow` of the segment's sender, ``rev`` the other one;
``hdr`` the header's ``(sport, dport, seq, ack, offset_and_flags, window)``.
Sequence numbers are raw 32-bit values compared wrap-safely (``GT_SEQ`` is
:func:`rawlab.analysis.seq.seq_gt`; :func:`analyze` writes it inline, the one place).
"""

from __future__ import annotations

from rawlab.analysis.tcp.expert import (
    A_ACK_LOST_PACKET,
    A_DUPLICATE_ACK,
    A_KEEP_ALIVE,
    A_KEEP_ALIVE_ACK,
    A_LOST_PACKET,
    A_WINDOW_FULL,
    A_WINDOW_UPDATE,
    A_ZERO_WINDOW,
    A_ZERO_WINDOW_PROBE,
    A_ZERO_WINDOW_PROBE_ACK,
    retransmission,
)
from rawlab.analysis.tcp.rtt import remember
from rawlab.decode.tcp import ACK, RST, SYN, SYN_FIN, SYN_FIN_RST


class Flow:
    """Wireshark's ``tcp_flow_t`` + ``tcp_analyze_seq_flow_info_t`` for one direction."""

    __slots__ = (
        "base",
        "base_set",
        "dupacknum",
        "fin_acked",
        "fin_seq",
        "hist_n",
        "is_first_ack",
        "lastack",
        "lastacktime",
        "lastnondupack",
        "lastsegflags",
        "max_nrel",
        "maxseqtobeacked",
        "nextseq",
        "nextseqframe",
        "nextseqtime",
        "sack",
        "saw_syn",
        "saw_synack",
        "segs",
        "valid_bif",
        "win_scale",
        "window",
    )

    def __init__(self) -> None:
        self.base = 0
        self.base_set = False
        self.nextseq = 0
        self.nextseqframe = 0
        self.nextseqtime = 0
        self.maxseqtobeacked = 0
        self.lastack = 0
        self.lastacktime = 0
        self.lastnondupack = 0
        self.dupacknum = 0
        self.window = 0xFFFFFFFF  # G_MAXUINT32: nothing seen yet
        self.win_scale = -1
        self.is_first_ack = False
        self.lastsegflags = 0
        self.valid_bif = True
        self.segs: list[list[int]] = []  # unacked: [seq - base, nextseq, frame, ts], by seq
        self.max_nrel = 0  # largest nextseq - base among segs
        self.sack: tuple[tuple[int, int], ...] = ()
        self.saw_syn = False
        self.saw_synack = False
        self.fin_seq: int | None = None
        self.fin_acked = False
        self.hist_n: dict[str, int] = {}  # Zeek history letters seen, and how often


def set_bases(fwd: Flow, rev: Flow, flags: int, seq: int, ack: int) -> None:
    """The base sequence numbers (relative 0) of both directions, once known."""
    if not fwd.base_set:
        fwd.base = seq if flags & SYN else (seq - 1) & 0xFFFFFFFF
        fwd.base_set = True
    if not rev.base_set and flags & ACK:
        rev.base = (ack - 1) & 0xFFFFFFFF
        rev.base_set = True


def analyze(fwd: Flow, rev: Flow, hdr: tuple[int, ...], seglen: int, frame: int, ts: int,
            first_rtt: int, taflags: int) -> int:
    """``taflags`` with this segment's TCP_A_* bits added; both flows updated."""
    _sport, _dport, seq, ack, off, win = hdr
    flags = off & 0x1FF
    if flags & ACK:
        rev.valid_bif = True
    # The analyser's one inline form of GT_SEQ (rawlab.analysis.seq.seq_gt): a call
    # per comparison costs ~5 % of the per-segment time, and these run on every one.
    nextseq = fwd.nextseq
    dist = (seq - nextseq) & 0xFFFFFFFF
    gap = bool(nextseq) and 0 < dist < 0x80000000  # GT_SEQ(seq, nextseq)
    behind = bool(nextseq) and dist > 0x80000000  # GT_SEQ(nextseq, seq)
    taflags |= _before_fwd(fwd, rev, seq, ack, flags, seglen, win, gap)
    # "finished_fwd": what follows applies to every segment
    if ack != fwd.lastack:
        fwd.lastnondupack = frame
        fwd.dupacknum = 0
    rmax = rev.maxseqtobeacked
    if rmax and flags & ACK and 0 < ((ack - rmax) & 0xFFFFFFFF) < 0x80000000:
        if 0 < ((rev.nextseq - rmax) & 0xFFFFFFFF) < 0x80000000:
            rev.maxseqtobeacked = rev.nextseq
            taflags |= A_ACK_LOST_PACKET
        else:
            if rev.dupacknum == 0:
                taflags |= A_ACK_LOST_PACKET
            rev.dupacknum = -1
    if (seglen > 0 or flags & SYN_FIN) and not taflags & A_KEEP_ALIVE:
        taflags |= retransmission(fwd, rev, seq, seglen, flags, ts, first_rtt, behind)
    nxt = remember(fwd, seq, seglen, flags, frame, ts) if seglen or flags & SYN_FIN else seq
    if not taflags & A_ZERO_WINDOW_PROBE:
        if not nextseq or 0 < ((nxt - nextseq) & 0xFFFFFFFF) < 0x80000000:
            fwd.nextseq = nxt
            fwd.nextseqframe = frame
            fwd.nextseqtime = ts
        if seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked:
            fwd.maxseqtobeacked = fwd.nextseq
    fwd.window = win
    fwd.lastack = ack
    fwd.lastacktime = ts
    fwd.lastsegflags = taflags
    return taflags


def _before_fwd(fwd: Flow, rev: Flow, seq: int, ack: int, flags: int, seglen: int,
                win: int, gap: bool) -> int:
    """The checks before "finished_fwd": zero window (probe), lost segment (``gap``: seq is
    past the next expected), keep-alive, window update, window full, duplicate ACK (and
    the ACKs of probes and keep-alives)."""
    nextseq = fwd.nextseq
    if seglen == 1 and seq == nextseq and rev.window == 0:
        return A_ZERO_WINDOW_PROBE  # then straight to "finished_fwd"
    taflags = 0
    nosfr = not flags & SYN_FIN_RST
    if win == 0 and nosfr:
        taflags |= A_ZERO_WINDOW
    if gap and not flags & RST:
        taflags |= A_LOST_PACKET
        fwd.valid_bif = False
    if seglen <= 1 and seq == ((nextseq - 1) & 0xFFFFFFFF) and nosfr:
        taflags |= A_KEEP_ALIVE
    if not nosfr:
        return taflags
    same = seglen == 0 and seq == nextseq and ack == fwd.lastack
    if same and win and win != fwd.window:
        taflags |= A_WINDOW_UPDATE
    if seglen > 0 and rev.win_scale != -1:
        sh = 0 if rev.is_first_ack or rev.win_scale == -2 else rev.win_scale
        if (seq + seglen - rev.lastack - (rev.window << sh)) & 0xFFFFFFFF == 0:
            taflags |= A_WINDOW_FULL
    if same and win == fwd.window:
        if win and rev.lastsegflags & A_KEEP_ALIVE:
            taflags |= A_KEEP_ALIVE_ACK
        elif win == 0 and rev.lastsegflags & A_ZERO_WINDOW_PROBE:
            taflags |= A_ZERO_WINDOW_PROBE_ACK
        elif win:
            fwd.dupacknum = 1 if fwd.dupacknum == -1 else fwd.dupacknum + 1
            taflags |= A_DUPLICATE_ACK
    return taflags
