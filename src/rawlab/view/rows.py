"""The packet list's rows, decoded only when shown: a row of the list is a frame of the
source (all of them, or those a selection keeps), read with one pread, decoded and
turned into columns by rawlab.present (listing, the -v tree), and kept in a small cache.

    rows = PacketRows(frames)
    len(rows), rows.row(i)              # a present.listing.ListRow
    rows.detail(i)                      # (tree rows with their bytes, the frame's bytes)
    rows.select(selection)              # show only what a Selection keeps (None: all)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

from rawlab.decode.dispatch import Decoder
from rawlab.present.listing import ListRow, packet_row
from rawlab.present.packet import TreeRow, tree_rows
from rawlab.records import CsumHint
from rawlab.view.frames import Frames, interface_name


class RowSource(Protocol):
    """What the list, the detail tree and the hex pane show (packets, netlink events)."""

    def __len__(self) -> int: ...

    def number(self, i: int) -> int: ...

    def row(self, i: int) -> ListRow: ...

    def detail(self, i: int) -> tuple[list[TreeRow], bytes]: ...


class _Cache(OrderedDict[int, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: int, value: Any) -> Any:
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value


class PacketRows:
    """Rows of a :class:`~rawlab.view.frames.Frames`, each decoded the first time it shows."""

    def __init__(self, frames: Frames, cache: int = 4096) -> None:
        self.frames = frames
        self.selection: Any = None
        self._decode = Decoder().decode
        self._rows = _Cache(cache)
        self._t0: int | None = None

    def select(self, selection: Any) -> None:
        self.selection = selection

    def __len__(self) -> int:
        return len(self.selection) if self.selection is not None else len(self.frames)

    def number(self, i: int) -> int:
        """The 0-based frame number of list row ``i``."""
        return self.selection[i] if self.selection is not None else i

    def _packet(self, n: int) -> tuple[Any, Any]:
        rec = self.frames.record(n)
        return rec, self._decode(rec.data, rec.linktype, CsumHint(rec.csum_status))

    def row(self, i: int) -> ListRow:
        n = self.number(i)
        got = self._rows.get(n)
        if got is not None:
            self._rows.move_to_end(n)
            return got  # type: ignore[no-any-return]
        if self._t0 is None:
            self._t0 = self.frames.record(0).ts_ns
        rec, pkt = self._packet(n)
        return self._rows.put(n, packet_row(n + 1, rec, pkt, self._t0))  # type: ignore[no-any-return]

    def detail(self, i: int) -> tuple[list[TreeRow], bytes]:
        n = self.number(i)
        rec, pkt = self._packet(n)
        return list(tree_rows(n + 1, rec, pkt, interface_name(self.frames, rec))), rec.data
