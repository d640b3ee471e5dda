"""Filters applied in the background: which rows a BPF expression and a display filter
keep, found batch by batch in a worker thread while the interface goes on.

    sel = Selection(judge, size=lambda: len(frames), final=lambda: frames.complete)
    sel.start()
    len(sel), sel[i]                  # rows kept so far (0-based numbers of the source)
    sel.scanned, sel.done, sel.error  # progress, end, why it stopped (one line)
    sel.stop()

``judge(start, stop)`` says, for rows start..stop-1 of the source, which to keep:
:func:`packet_judge` runs a BPF program (libpcap's interpreter, as ``read -f``)
and a display filter over the fields a field source gives (rawlab.view.fields).
A source that still grows (a file being indexed, a live capture) is followed:
the selection waits for more rows until ``final()`` says there are no more.
"""

from __future__ import annotations

import array
from collections.abc import Callable, Sequence
from typing import Any

from rawlab.records import Record
from rawlab.view.dfilter import DisplayFilter
from rawlab.view.fields import PacketFields, needs_analysis
from rawlab.view.frames import Frames, interface_name
from rawlab.view.job import Job

Judge = Callable[[int, int], Sequence[bool]]
BATCH = 2048


class Selection(Job):
    """The rows a filter keeps, growing as a worker thread judges the source."""

    name = "rawlab-filter"

    def __init__(self, judge: Judge, *, size: Callable[[], int],
                 final: Callable[[], bool], batch: int = BATCH) -> None:
        super().__init__()
        self._judge = judge
        self._size = size
        self._final = final
        self.batch = batch
        self.rows = array.array("I")

    @property
    def scanned(self) -> int:
        """Rows of the source judged so far."""
        return self.progress[0]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> int:
        return self.rows[i]

    def run(self) -> None:
        add = self.rows.append
        i = 0
        while not self._stop.is_set():
            final = self._final()  # read before the size: no row can be missed
            n = self._size()
            if i >= n:
                if final:
                    break
                self._stop.wait(0.05)
                continue
            end = min(n, i + self.batch)
            for j, keep in enumerate(self._judge(i, end)):
                if keep:
                    add(i + j)
            i = self.progress[0] = end


def packet_judge(frames: Frames, bpf: str | None,
                 display: DisplayFilter | None) -> Judge:
    """What keeps a frame: the BPF expression (compiled now: a bad one raises
    RawlabError) and the display filter, both when both are given."""
    filt = None
    if bpf:
        from rawlab.sockets.bpf import OfflineFilter

        filt = OfflineFilter(bpf)
    source = None
    if display is not None:
        source = PacketFields(display.fields, analyse=needs_analysis(display.fields))
    def iface(rec: Record) -> str | int:
        return interface_name(frames, rec)

    def judge(start: int, stop: int) -> list[bool]:
        recs = list(frames.records(start, stop))
        keep = [True] * len(recs)
        if filt is not None:
            match = filt.match
            keep = [match(r.linktype, r.data, r.wirelen) for r in recs]
        if source is not None and display is not None:
            keep = _display(display, source, start, recs, keep, iface)
        return keep

    return judge


def _display(display: DisplayFilter, source: PacketFields, start: int, recs: list[Record],
             keep: list[bool], iface: Callable[[Record], Any]) -> list[bool]:
    """The display filter over the frames the BPF kept (over all of them when the
    analyser must see every frame)."""
    if source.analysing:
        cols = source.fields(start, recs, iface)
        idx = range(len(recs))
    else:
        idx = [j for j, k in enumerate(keep) if k]
        cols = source.fields_of([start + j for j in idx], [recs[j] for j in idx], iface)
    out = [False] * len(recs)
    match = display.match
    for n, j in enumerate(idx):
        if keep[j] and match(lambda name, n=n: cols[name][n]):
            out[j] = True
    return out
