"""What ``rawlab handshake`` prints: where it captured, the connection (a ladder with a
reason per segment, or tcpdump-like lines), and the summary of the handshake.
"""

from __future__ import annotations

from typing import Any, TextIO

from rawlab.present.fmt import endpoint
from rawlab.present.ladder import LadderSink
from rawlab.present.packet import LineSink, plural


def report(res: Any, out: TextIO, *, ladder: bool = True, width: int | None = None) -> None:
    """The demo's result (rawlab.lab.handshake.DemoResult) as text; `width` folds the
    explanations to a terminal's width (None: one line each)."""
    from rawlab import pipeline
    from rawlab.records import Interface

    w = out.write
    w(f"rawlab handshake: client {res.client} → server {endpoint(res.server, res.port)}, "
      f"captured on the client's veth0 with AF_PACKET (TPACKET_V3), filter "
      f"'tcp port {res.port}'\n")
    if ladder:  # from the records: the ladder's heads name each end's process
        pipeline.run_tcp(res.records, [LadderSink(out, explain_lines=True, width=width)])
    else:
        veth0 = Interface(0, res.records[0].linktype if res.records else 1, 0, name="veth0")
        pipeline.run(res.records, [LineSink(out)], interfaces=lambda _i: veth0)
    hs = res.handshake
    irtt = f"{hs.irtt_ns / 1e6:.3f} ms" if hs is not None and hs.irtt_ns is not None else "-"
    frames = ", ".join(map(str, hs.frames)) if hs is not None else "-"
    st = res.stats
    captured = st.captured if st else len(res.records)
    w(f"\nhandshake: frames {frames} (SYN, SYN-ACK, ACK), initial RTT {irtt}; "
      f"{plural(len(res.sent), 'byte')} sent, {res.reply_size} answered; "
      f"{plural(captured, 'packet')} captured, {st.dropped if st else 0} dropped by the "
      "kernel\n")
