"""What the viewer lists: the frames of a file (indexed in the background) or of a live
capture (arriving in a worker thread), read one at a time or as a range.

    frames = FileFrames("big.pcap"); frames.start()      # the index pass runs in a thread
    frames = LiveFrames(open_ring("eth0")); frames.start()
    len(frames), frames.record(i), frames.records(start, stop), frames.interface(n)
    frames.complete, frames.problem, frames.progress()    # (done, total) for the status line
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from rawlab.pcap.index import FrameIndex
from rawlab.records import Interface, Record


class Frames(Protocol):
    """A numbered list of records that may still grow (``complete`` False)."""

    name: str

    def __len__(self) -> int: ...

    def record(self, i: int) -> Record: ...

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[Record]: ...

    def interface(self, n: int) -> Interface | None: ...

    @property
    def complete(self) -> bool: ...

    @property
    def problem(self) -> str | None: ...

    def progress(self) -> tuple[int, int]: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


def interface_name(frames: Frames, rec: Record) -> str | int:
    """The name of a record's interface when the source names it, else its number."""
    iface = frames.interface(rec.interface)
    return iface.name if iface is not None and iface.name else rec.interface


class FileFrames:
    """A capture file's frames through its :class:`FrameIndex` (built by :meth:`start`)."""

    def __init__(self, path: str | Path) -> None:
        self.index = FrameIndex(path)
        self.name = self.index.name
        self._thread: threading.Thread | None = None
        self._hold = threading.Event()

    def start(self, *, hold: bool = False) -> None:
        """Start the index pass; with ``hold``, only its first page until :meth:`release`
        (so that the first screen is drawn without the pass sharing the interpreter)."""
        if not hold:
            self._hold.set()
        self._thread = threading.Thread(target=self.index.build, args=(self._hold,),
                                        name="rawlab-index", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._hold.set()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def __len__(self) -> int:
        return len(self.index)

    def record(self, i: int) -> Record:
        return self.index.record(i)

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[Record]:
        return self.index.records(start, stop)

    def interface(self, n: int) -> Interface | None:
        ifs = self.index.interfaces
        return ifs[n] if 0 <= n < len(ifs) else None

    @property
    def complete(self) -> bool:
        return self.index.complete

    @property
    def problem(self) -> str | None:
        return self.index.problem

    def progress(self) -> tuple[int, int]:
        return self.index.done, self.index.size

    def close(self) -> None:
        self.index.stop()
        self._hold.set()
        if self._thread is not None:
            self._thread.join()
        self.index.close()


class LiveFrames:
    """Records of a live capture (a rawlab.sockets.packet ring), taken by a worker thread
    and kept in memory until the viewer quits (``w`` writes them to a file)."""

    def __init__(self, ring: Any, *, count: int | None = None) -> None:
        self.ring = ring
        self.name = f"live on {ring.iface}"
        self.count = count
        self._recs: list[Record] = []
        self._done = False
        self._error: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rawlab-capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from rawlab.errors import RawlabError

        add = self._recs.append
        try:
            for rec in self.ring.records(count=self.count):
                add(rec)
        except RawlabError as exc:
            self._error = exc.message
        finally:
            self._done = True

    def __len__(self) -> int:
        return len(self._recs)

    def release(self) -> None:
        pass

    def record(self, i: int) -> Record:
        return self._recs[i]

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[Record]:
        stop = len(self._recs) if stop is None else min(stop, len(self._recs))
        return iter(self._recs[start:stop])

    def interface(self, n: int) -> Interface | None:
        return self.ring.interface(n)

    @property
    def complete(self) -> bool:
        return self._done

    @property
    def problem(self) -> str | None:
        return self._error

    def progress(self) -> tuple[int, int]:
        return len(self._recs), 0

    def stats(self) -> Any:
        """The ring's counters (received / captured / dropped), as tcpdump reports them."""
        return self.ring.stats()

    def stop(self) -> None:
        self.ring.stop()

    def close(self) -> None:
        self.ring.stop()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.ring.close()


def write_frames(frames: Frames, numbers: Any, path: str) -> int:
    """Write the frames numbered in ``numbers`` (0-based, in order) to a pcapng file (one
    IDB per interface of the source); returns how many were written."""
    from rawlab.pcap.writer import CaptureWriter

    w = CaptureWriter(path)
    n = 0
    try:
        for i in numbers:
            rec = frames.record(int(i))
            w.write(rec, frames.interface(rec.interface))
            n += 1
    finally:
        w.close()
    return n


def follow_records(frames: Frames, stop: threading.Event, *, until: int | None = None,
                   wait: bool = True, done: list[int] | None = None) -> Iterator[Record]:
    """Every record of ``frames`` in order, up to ``until`` (a count), waiting for a source
    that still grows while ``wait`` (else: those there are now); ends early when ``stop``
    is set. ``done[0]`` counts the records given (progress)."""
    i = 0
    while not stop.is_set():
        final = frames.complete
        n = len(frames) if until is None else min(len(frames), until)
        if i >= n:
            if final or not wait or (until is not None and i >= until):
                return
            stop.wait(0.05)
            continue
        for rec in frames.records(i, min(n, i + 4096)):
            yield rec
            i += 1
        if done is not None:
            done[0] = i
