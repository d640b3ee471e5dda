"""``rawlab tcp --keylog FILE``: each application message of the analysed connections as
one line when it completes (TLS records, decrypted with the key log, and the HTTP/1.x
inside): ``#42 stream 3 server: HTTP/1.1 200 OK text/html 21013 bytes [15 segments: ...]``.

An event sink of ``pipeline.run_tcp``: the analyser's own Segment events feed
rawlab.analysis.streams (no second TCP analysis); the payload comes from the record.
"""

from __future__ import annotations

from typing import Any, TextIO

from rawlab.decode import descent
from rawlab.present import app


class MessageSink:
    def __init__(self, out: TextIO, keylog: Any = None) -> None:
        from rawlab.analysis.streams import TcpStreams

        self.out = out
        self.streams = TcpStreams(keylog=keylog)

    def segment(self, seg: Any, rec: Any) -> None:
        if rec is None or not seg.len:
            if rec is not None:
                self.streams.feed_segment(seg, b"")
            return
        w = descent.walk(rec.data, rec.linktype)
        if w is not None:
            t = w[3]
            hl = (rec.data[t + 12] >> 4) * 4 if len(rec.data) > t + 12 else 20
            payload = rec.data[t + hl : t + hl + seg.len]
        else:  # an uncommon shape: the full decode
            tcp = descent.decode(rec.data, rec.linktype).layer("tcp")
            payload = bytes(tcp.payload) if tcp is not None else b""
        for v in self.streams.feed_segment(seg, payload):
            p = app.presenter(v.name)
            if p is not None:
                side = "client" if seg.dir == 0 else "server"
                self.out.write(f"#{seg.frame} stream {seg.stream} {side}: {p.line(v)}\n")

    def handshake(self, hs: Any) -> None:
        pass

    def closed(self, ev: Any) -> None:
        self.streams.closed(ev.stream)

    def close(self) -> None:
        self.out.flush()
