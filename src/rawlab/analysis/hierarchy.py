"""Protocol hierarchy counts (like ``tshark -z io,phs``) for ``rawlab read --stats``.

    h = ProtocolHierarchy()
    dec = Decoder()
    for rec in capture:
        h.add(dec.path(rec.data, rec.linktype), rec.wirelen)
    for row in h.rows():            # tree order, children in order of first appearance
        row.depth, row.name, row.packets, row.bytes, row.path
    h.paths                         # path -> [packets, bytes]: what add() counts (a hot loop
                                    # may count into it directly)

As in tshark, every node counts the packets that contain it at that place in
the stack and the *whole frame's* length (``wirelen``) of those packets.
``add`` is one dictionary look-up (a path's tuple is hashed once) and two list
increments: the tree is only built by ``rows()``.
"""

from __future__ import annotations

from typing import NamedTuple


class HierarchyRow(NamedTuple):
    depth: int
    name: str
    path: tuple[str, ...]
    packets: int
    bytes: int


class ProtocolHierarchy:
    __slots__ = ("paths",)

    def __init__(self) -> None:
        self.paths: dict[tuple[str, ...], list[int]] = {}  # path -> [packets, bytes]

    def add(self, path: tuple[str, ...], nbytes: int) -> None:
        acc = self.paths.get(path)
        if acc is None:
            self.paths[path] = [1, nbytes]
        else:
            acc[0] += 1
            acc[1] += nbytes

    @property
    def packets(self) -> int:
        return sum(n for n, _b in self.paths.values())

    @property
    def bytes(self) -> int:
        return sum(b for _n, b in self.paths.values())

    def rows(self) -> list[HierarchyRow]:
        nodes: dict[tuple[str, ...], list[int]] = {}  # insertion order = first appearance
        for path, (n, b) in self.paths.items():
            for i in range(1, len(path) + 1):
                acc = nodes.setdefault(path[:i], [0, 0])
                acc[0] += n
                acc[1] += b
        children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for p in nodes:
            children.setdefault(p[:-1], []).append(p)
        out: list[HierarchyRow] = []

        def walk(parent: tuple[str, ...]) -> None:
            for p in children.get(parent, ()):
                n, b = nodes[p]
                out.append(HierarchyRow(len(p) - 1, p[-1], p, n, b))
                walk(p)

        walk(())
        return out
