"""The viewer's three linked panes: the packet list (virtual: only the rows on screen are
decoded), the detail tree (the -v tree, one node per line) and the hex pane (the selected
field's bytes highlighted)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Tree

from rawlab.present.fmt import hex_columns, hex_lines
from rawlab.present.listing import header_line, row_line, widths_for
from rawlab.present.packet import TreeRow
from rawlab.view.rows import RowSource


def _strip(widget: Any, text: Text, width: int) -> Strip:
    segments = list(text.render(widget.app.console))
    return Strip(segments).crop_extend(0, width, widget.rich_style)


class PacketList(ScrollView, can_focus=True):
    """One line per row of a :class:`~rawlab.view.rows.RowSource`, a header above them;
    the cursor row is reversed. Follows the tail (a live capture) while the cursor is on
    the last row."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "up", show=False),
        Binding("down,j", "move(1)", "down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown,space", "page(1)", "page down", show=False),
        Binding("home,g", "first", "first", show=False),
        Binding("end,G", "last", "last", show=False),
        Binding("right,l", "shift(16)", "Info →", show=False),
        Binding("left,h", "shift(-16)", "Info ←", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"packet-list--cursor", "packet-list--header"}
    DEFAULT_CSS = """
    PacketList { height: 5fr; overflow-x: hidden; }
    PacketList > .packet-list--cursor { text-style: reverse; }
    PacketList > .packet-list--header { text-style: bold underline; }
    """

    cursor: reactive[int] = reactive(0)

    class Highlighted(Message):
        """The cursor moved to list row ``index``."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, rows: RowSource, **kw: Any) -> None:
        super().__init__(**kw)
        self.rows = rows
        self.count = 0
        self.follow = False  # keep the cursor on the last row as rows arrive
        self.addr = 15  # the widest Source/Destination seen (columns grow, never shrink)
        self.protocol = 8  # the widest Protocol seen
        self.process = False  # a row with a process was seen: show that column
        self.shift = 0  # characters of Info scrolled away (left/right)

    def set_rows(self, rows: RowSource) -> None:
        self.rows = rows
        self.count = -1
        self.cursor = 0
        self.scroll_to(y=0, animate=False)
        self.sync()
        self.post_message(self.Highlighted(0))

    def sync(self) -> None:
        """Take the source's current length (it grows while a file is indexed, a capture
        runs or a filter is applied)."""
        n = len(self.rows)
        if n == self.count:
            return
        first = self.count <= 0
        self.count = n
        self.virtual_size = Size(self.size.width, n + 1)
        if self.follow and n:
            self._go(n - 1)
        elif first and n:
            self.post_message(self.Highlighted(self.cursor))
        self.refresh()

    @property
    def page(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        widths = widths_for(width, addr=self.addr, protocol=self.protocol,
                            process=self.process)
        if y == 0:
            style = self.get_component_rich_style("packet-list--header")
            return _strip(self, Text(header_line(widths), style=style), width)
        i = int(self.scroll_offset.y) + y - 1
        if i >= self.count:
            return Strip.blank(width, self.rich_style)
        try:
            row = self.rows.row(i)
        except (OSError, IndexError) as exc:  # a file changed under us: say so in the row
            text = f"{i + 1}: cannot read: {exc}"
        else:
            wide = min(max(len(row.src), len(row.dst)), 39)
            proto = min(len(row.protocol), 16)
            if wide > self.addr or proto > self.protocol or (row.process and not self.process):
                self.addr = max(self.addr, wide)
                self.protocol = max(self.protocol, proto)
                self.process = self.process or bool(row.process)
                self.refresh()  # the next frame draws every line with the new widths
            if self.shift:
                row = dataclasses.replace(row, info=row.info[self.shift:])
            text = row_line(row, widths)
        style = self.get_component_rich_style("packet-list--cursor") if i == self.cursor \
            else Style()
        return _strip(self, Text(text, style=style), width)

    def _go(self, i: int) -> None:
        if not self.count:
            return
        i = max(0, min(i, self.count - 1))
        self.follow = i == self.count - 1 and self.follow_tail
        if i != self.cursor:
            self.cursor = i
        top = int(self.scroll_offset.y)
        if i < top:
            self.scroll_to(y=i, animate=False)
        elif i >= top + self.page:
            self.scroll_to(y=i - self.page + 1, animate=False)

    follow_tail = False  # set by the app for live captures

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh()
        self.post_message(self.Highlighted(new))

    def action_move(self, delta: int) -> None:
        self._go(self.cursor + delta)

    def action_page(self, delta: int) -> None:
        self._go(self.cursor + delta * self.page)

    def action_shift(self, delta: int) -> None:
        self.shift = max(0, self.shift + delta)
        self.refresh()

    def action_first(self) -> None:
        self._go(0)

    def action_last(self) -> None:
        self.follow = self.follow_tail
        self._go(self.count - 1)

    def on_click(self, event: events.Click) -> None:
        at = event.get_content_offset(self)
        if at is not None and at.y >= 1:
            self._go(int(self.scroll_offset.y) + at.y - 1)


class DetailTree(Tree[TreeRow]):
    """The -v tree of the selected row: the frame, its layers, their fields."""

    DEFAULT_CSS = "DetailTree { height: 4fr; }"

    class Picked(Message):
        """A node was highlighted: its bytes (``offset`` None: none of its own)."""

        def __init__(self, offset: int | None, size: int) -> None:
            super().__init__()
            self.offset = offset
            self.size = size

    def __init__(self, **kw: Any) -> None:
        super().__init__("", **kw)
        self.show_root = True
        self.guide_depth = 2

    def show(self, rows: list[TreeRow]) -> None:
        """Rows in order, each under the last row shallower than it (the first is the root);
        layers open, their fields shown."""
        self.clear()
        if not rows:
            self.root.set_label("")
            self.root.data = None
            return
        self.root.set_label(Text(rows[0].text.strip()))
        self.root.data = rows[0]
        # present.packet.tree indents two spaces a level: the tree's guides do that here
        stack: list[tuple[int, Any]] = [(rows[0].depth, self.root)]
        for k, r in enumerate(rows[1:], 1):
            while len(stack) > 1 and stack[-1][0] >= r.depth:
                stack.pop()
            parent = stack[-1][1]
            label = Text(r.text[2 * r.depth:] if r.text[:2 * r.depth].isspace() else r.text)
            if k + 1 < len(rows) and rows[k + 1].depth > r.depth:
                node = parent.add(label, data=r, expand=True)
                stack.append((r.depth, node))
            else:
                parent.add_leaf(label, data=r)
        self.root.expand()

    def at_offset(self, offset: int) -> None:
        """Highlight the deepest node whose bytes hold ``offset`` (a click in the hex pane)."""
        best = None
        for line in range(self.last_line + 1):
            node = self.get_node_at_line(line)
            r = node.data if node is not None else None
            if r is not None and r.offset is not None and r.offset <= offset < r.offset + max(
                    r.size, 1) and (best is None or r.size <= best[1]):
                best = (line, r.size)
        if best is not None:
            self.cursor_line = best[0]

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[TreeRow]) -> None:
        r = event.node.data
        parent = event.node.parent
        if r is not None and r.offset is None and parent is not None and parent.data:
            r = parent.data  # a derived value: its layer's bytes
        if r is not None:
            self.post_message(self.Picked(r.offset, r.size))


class HexPane(ScrollView, can_focus=True):
    """The selected row's bytes as tcpdump -X prints them; ``mark(offset, size)`` highlights
    a field's bytes (hex and characters) and scrolls them into view."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"hex-pane--mark"}
    DEFAULT_CSS = """
    HexPane { height: 3fr; overflow-x: hidden; }
    HexPane > .hex-pane--mark { text-style: reverse bold; }
    """

    class Clicked(Message):
        def __init__(self, offset: int) -> None:
            super().__init__()
            self.offset = offset

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.data = b""
        self.lines: list[str] = []
        self.lo = self.hi = 0

    def show(self, data: bytes) -> None:
        self.data = bytes(data)
        self.lines = [ln.lstrip("\t") for ln in hex_lines(self.data)]
        self.lo = self.hi = 0
        self.virtual_size = Size(66, len(self.lines))
        self.scroll_to(y=0, animate=False)
        self.refresh()

    def mark(self, offset: int | None, size: int) -> None:
        self.lo, self.hi = (offset, offset + size) if offset is not None else (0, 0)
        if offset is not None and self.lines:
            top, rows = int(self.scroll_offset.y), self.scrollable_content_region.height
            first, last = offset // 16, (offset + max(size, 1) - 1) // 16
            if first < top or last >= top + rows:
                self.scroll_to(y=max(first - 1, 0), animate=False)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        k = int(self.scroll_offset.y) + y
        if k >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        text = Text(self.lines[k])
        style = self.get_component_rich_style("hex-pane--mark")
        for j in range(16):
            if self.lo <= k * 16 + j < self.hi and k * 16 + j < len(self.data):
                h, a = hex_columns(j)
                text.stylize(style, h, h + 2)
                text.stylize(style, a, a + 1)
        return _strip(self, text, width)

    def on_click(self, event: events.Click) -> None:
        at = event.get_content_offset(self)
        if at is None:
            return
        k = int(self.scroll_offset.y) + at.y
        x = at.x
        j = None
        if 9 <= x < 48 and (x - 9) % 5 < 4:
            j = (x - 9) // 5 * 2 + (x - 9) % 5 // 2
        elif 50 <= x < 66:
            j = x - 50
        if j is not None and k * 16 + j < len(self.data):
            self.post_message(self.Clicked(k * 16 + j))
