"""The TCP connections of the frames (rawlab.pipeline.run_tcp into rawlab.present.tcp's
table sink), and one connection's ladder and followed stream (present.ladder.LadderSink,
present.tcp.FollowSink), each computed in a worker thread.

    table = ConnectionTable(frames).start()      # table.lines: render_table's lines
    table.connections[k]                         # the connection of table line k + 1
    text = StreamText(frames, conn).start()      # text.ladder, text.follow: lines
"""

from __future__ import annotations

import io
from typing import Any

from rawlab.view.frames import Frames, follow_records
from rawlab.view.job import Job


class ConnectionTable(Job):
    """Every TCP connection of ``frames`` (of a live capture: those captured so far), one
    line each as ``rawlab tcp`` prints them, with the expert flags counted."""

    def __init__(self, frames: Frames, *, wait: bool = True) -> None:
        super().__init__()
        self.frames = frames
        self.wait_for_more = wait
        self.lines: list[str] = []
        self.connections: list[Any] = []

    def run(self) -> None:
        from rawlab import pipeline
        from rawlab.present.tcp import TableSink, render_table

        sink = TableSink(io.StringIO())
        pipeline.run_tcp(follow_records(self.frames, self._stop, wait=self.wait_for_more,
                                        done=self.progress), [sink])
        self.connections = [sink.connections[k] for k in sorted(sink.connections)]
        out = io.StringIO()
        render_table(self.connections, out)
        self.lines = out.getvalue().splitlines()


class StreamText(Job):
    """One connection's ladder and followed stream, from the frames up to its last one
    (the analyser must see every frame before it to number the streams as tshark does)."""

    def __init__(self, frames: Frames, connection: Any) -> None:
        super().__init__()
        self.frames = frames
        self.stream = connection.stream
        self.last = connection.last_frame
        self.ladder: list[str] = []
        self.follow: list[str] = []

    def run(self) -> None:
        from rawlab import pipeline
        from rawlab.present.ladder import LadderSink
        from rawlab.present.tcp import FollowSink

        lad, fol = io.StringIO(), io.StringIO()
        pipeline.run_tcp(follow_records(self.frames, self._stop, until=self.last,
                                        done=self.progress),
                         [LadderSink(lad), FollowSink(fol, self.stream)], stream=self.stream)
        self.ladder = lad.getvalue().strip("\n").splitlines()
        self.follow = fol.getvalue().splitlines()
