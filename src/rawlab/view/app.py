"""The Textual application: the packet list, the detail tree and the hex pane, linked; a
filter bar (BPF and display filter, applied in the background); the connection table,
each connection's ladder and followed stream; writing the listed frames to a file.

    app = ViewerApp(PacketSource(FileFrames("x.pcap")))     # or a live / netlink source
    app.run()                                               # q or Ctrl-C quits

A *source* (:class:`PacketSource`, rawlab.view.netlink.NetlinkSource) gives the rows,
says what it is (``title``, ``status()``), builds a filter's judge and writes frames.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, Log, OptionList, Static, TabbedContent, TabPane

from rawlab.errors import RawlabError
from rawlab.present.packet import plural
from rawlab.view.rows import PacketRows, RowSource
from rawlab.view.widgets import DetailTree, HexPane, PacketList

if TYPE_CHECKING:
    from rawlab.view.select import Judge, Selection

HELP = """\
rawlab view — keys

  ↑ ↓ j k         move in the list          PgUp PgDn space   a page
  Home g / End G  first / last row (End follows a live capture's tail)
  ← → h l         scroll the Info column
  Tab / Shift-Tab next / previous pane: list, tree, hex, filters
  Enter           (tree) open or close a layer; the hex pane marks the field's bytes
  click           a row, a tree node, or a byte in the hex pane (selects its field)
  /               display filter      f   BPF filter (as `rawlab read -f`)
                  Enter applies both (empty: none); Escape returns to the list
  c               TCP connections (Enter: the connection's ladder and followed stream)
  w               write the listed frames to a pcapng file (live: what was captured)
  ?               this help          q or Ctrl-C   quit

Display filter (docs/view.md): the packet JSON's field names (docs/json.md) with
==, !=, <, >, <=, >=, contains, and, or, not, parentheses; a field alone = present.
  tcp.analysis.retransmission and ip.src == 10.0.0.1
  ip.addr == 10.0.0.0/24 and tcp.port == 443 and not tcp.flags.syn
  udp.len > 512 or icmp          eth.src == 02:00:00:00:00:01
"""


class PacketSource:
    """Packets from a file (indexed in the background) or a live capture."""

    bpf = True
    tcp = True

    def __init__(self, frames: Any, *, live: bool = False) -> None:
        self.frames = frames
        self.live = live
        self.rows: RowSource = PacketRows(frames)
        self.title = frames.name

    def size(self) -> int:
        return len(self.frames)

    def final(self) -> bool:
        return bool(self.frames.complete)

    def judge(self, bpf: str | None, display: str | None) -> Judge:
        from rawlab.view.dfilter import DisplayFilter
        from rawlab.view.fields import kind
        from rawlab.view.select import packet_judge

        return packet_judge(self.frames, bpf, DisplayFilter.parse(display, kind)
                            if display else None)

    def status(self) -> str:
        f = self.frames
        n = len(f)
        if self.live:
            st = f.stats()
            state = "stopped" if f.complete else "capturing"
            return (f"{state}: {n:,} captured, {st.received:,} received by filter, "
                    f"{st.dropped:,} dropped by kernel")
        if not f.complete:
            done, total = f.progress()
            return f"indexing: {n:,} frames ({100 * done // max(total, 1)}%)"
        return f"{n:,} frames" + (f"; the file ends early: {f.problem}" if f.problem else "")

    def write(self, path: str, numbers: Any) -> int:
        from rawlab.view.frames import write_frames

        return write_frames(self.frames, numbers, path)

    def drawn(self) -> None:
        """The first screen is on the terminal: the background work may take its share."""
        self.frames.release()

    def close(self) -> None:
        self.frames.close()


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close",
                                                     "close")]
    DEFAULT_CSS = "HelpScreen { align: center middle; } #help { width: auto; padding: 1 2; " \
                  "border: round $accent; background: $surface; }"

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help")

    def action_close(self) -> None:
        self.dismiss(None)


class WriteScreen(ModalScreen[str | None]):
    """Asks for the file to write (a pcapng)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = "WriteScreen { align: center middle; } #ask { width: 70; height: auto; " \
                  "padding: 1 2; border: round $accent; background: $surface; }"

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(id="ask"):
            yield Label(f"Write {self.what} to (pcapng):")
            yield Input(time.strftime("rawlab-%Y%m%d-%H%M%S.pcapng"), id="path")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class JobScreen(Screen[None]):
    """A screen showing what a background job computes: its progress in the status line
    until it is done, then :meth:`show` once; the job is stopped when the screen goes."""

    def __init__(self, job: Any) -> None:
        super().__init__()
        self.job = job
        self.shown = False

    def on_mount(self) -> None:
        self.set_interval(0.2, self.tick)

    def tick(self) -> None:
        status = self.query_one("#status", Static)
        if not self.job.done:
            status.update(self.progress())
        elif not self.shown:
            self.shown = True
            if self.job.error:
                status.update(f"error: {self.job.error}")
            else:
                status.update(self.show())

    def progress(self) -> str:
        return f"{self.job.progress[0]:,} frames read…"

    def show(self) -> str:
        """Fill the screen with the job's result; returns the status line."""
        raise NotImplementedError

    def on_unmount(self) -> None:
        self.job.stop()


class StreamScreen(JobScreen):
    """One connection: its ladder and its followed stream, computed in the background."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "app.pop_screen", "back"),
                                             Binding("l", "tab('ladder')", "ladder"),
                                             Binding("s", "tab('follow')", "stream")]

    def __init__(self, job: Any, title: str) -> None:
        super().__init__(job)
        self.heading = title

    def compose(self) -> ComposeResult:
        yield Static(self.heading, id="title")
        with TabbedContent(initial="ladder"):
            with TabPane("ladder", id="ladder"):
                yield Log(id="ladder-text", auto_scroll=False)
            with TabPane("follow stream", id="follow"):
                yield Log(id="follow-text", auto_scroll=False)
        yield Static("", id="status")
        yield Footer()

    def progress(self) -> str:
        return f"reading frames {self.job.progress[0]:,} of {self.job.last:,}…"

    def show(self) -> str:
        job = self.job
        for wid, lines in (("#ladder-text", job.ladder), ("#follow-text", job.follow)):
            log = self.query_one(wid, Log)
            log.write_lines(lines)
            log.scroll_home(animate=False)
        return (f"stream {job.stream}: {len(job.ladder):,} ladder lines; l ladder, s stream, "
                "Escape back")

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab


class ConnectionsScreen(JobScreen):
    """The TCP connection table (``rawlab tcp``'s), Enter opens a connection."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,c", "app.pop_screen", "back")]

    def __init__(self, source: PacketSource) -> None:
        from rawlab.view.connections import ConnectionTable

        super().__init__(ConnectionTable(source.frames, wait=not source.live).start())
        self.source = source

    def compose(self) -> ComposeResult:
        yield Static(f"TCP connections — {self.source.title}", id="title")
        yield Static("", id="head")
        yield OptionList(id="conns")
        yield Static("", id="status")
        yield Footer()

    def progress(self) -> str:
        return f"analysing: {self.job.progress[0]:,} frames read…"

    def show(self) -> str:
        job = self.job
        lines = job.lines
        self.query_one("#head", Static).update(lines[0] if job.connections else "")
        opts = self.query_one("#conns", OptionList)
        opts.add_options(Text(line, no_wrap=True, overflow="ellipsis")
                         for line in (lines[1:] if job.connections else lines))
        opts.highlighted = 0 if job.connections else None
        opts.focus()
        return (f"{plural(len(job.connections), 'connection')}; Enter: ladder and stream, "
                "Escape back")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        conns = self.job.connections
        if not conns:
            return
        from rawlab.present.fmt import endpoint
        from rawlab.view.connections import StreamText

        c = conns[event.option_index]
        job = StreamText(self.source.frames, c).start()
        self.app.push_screen(StreamScreen(
            job, f"stream {c.stream}: {endpoint(*c.client)} > {endpoint(*c.server)} "
                 f"(frames {c.first_frame}–{c.last_frame})"))


class ViewerApp(App[None]):
    """rawlab view: list, tree and hex linked; filters; connections; write."""

    TITLE = "rawlab view"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #title { height: 1; text-style: bold; }
    #head { height: 1; text-style: bold underline; }
    #status { height: 1; }
    DetailTree { height: 4fr; border-top: solid $primary-darken-2; }
    HexPane { height: 3fr; border-top: solid $primary-darken-2; }
    #filters { height: 1; }
    #filters Label { padding: 0 1; }
    #filters Input { height: 1; border: none; padding: 0; width: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("question_mark", "help", "help"),
        Binding("slash", "focus('display')", "display filter"),
        Binding("f", "focus('bpf')", "BPF filter"),
        Binding("escape", "focus('list')", "list", show=False),
        Binding("c", "connections", "connections"),
        Binding("w", "write", "write"),
    ]

    def __init__(self, source: Any, *, bpf: str | None = None,
                 display: str | None = None) -> None:
        super().__init__(ansi_color=True)  # the terminal's own palette and background
        self.source = source
        self.selection: Selection | None = None
        self.filters = (bpf or "", display or "")
        self.message = ""
        self._stop_asked = False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that mean nothing for this source are neither shown nor run (netlink
        events have no BPF filter, no TCP connections, nothing written)."""
        if action == "focus" and parameters == ("bpf",):
            return bool(self.source.bpf)
        if action == "connections":
            return bool(self.source.tcp)
        if action == "write":
            return bool(getattr(self.source, "writes", True))
        return True

    def request_stop(self) -> None:
        """Quit soon (safe in a signal handler: it sets a flag the next tick reads)."""
        self._stop_asked = True

    def compose(self) -> ComposeResult:
        # the main screen's widgets, kept: other screens (connections, a stream) may be on
        # top while these still receive messages
        self.packets = PacketList(self.source.rows, id="list")
        self.detail = DetailTree(id="tree")
        self.hexpane = HexPane(id="hex")
        self.statusline = Static("", id="status")
        self.inputs: dict[str, Input] = {}
        yield Static(self.source.title, id="title")
        yield self.packets
        yield self.detail
        yield self.hexpane
        with Horizontal(id="filters"):
            if self.source.bpf:
                yield Label("BPF")
                self.inputs["bpf"] = Input(self.filters[0], id="bpf",
                                           placeholder="e.g. tcp port 443")
                yield self.inputs["bpf"]
            yield Label("display")
            self.inputs["display"] = Input(
                self.filters[1], id="display",
                placeholder="e.g. tcp.analysis.retransmission and ip.src == 10.0.0.1")
            yield self.inputs["display"]
        yield self.statusline
        yield Footer()

    def on_mount(self) -> None:
        lst = self.packets
        lst.follow_tail = lst.follow = bool(getattr(self.source, "live", False))
        lst.focus()
        if any(self.filters):
            self.apply(*self.filters)
        self.set_interval(0.2, self.tick)
        self.tick()
        self.call_after_refresh(getattr(self.source, "drawn", lambda: None))

    # -- keeping up with the background ------------------------------------------------

    def tick(self) -> None:
        if self._stop_asked:
            self.exit()
            return
        self.packets.sync()
        parts = [self.source.status()]
        sel = self.selection
        if sel is not None:
            total = self.source.size()
            if sel.error:
                parts.append(f"filter stopped: {sel.error}")
            elif sel.done:
                parts.append(f"filter: {len(sel):,} of {total:,} shown")
            else:
                parts.append(f"filtering: {sel.scanned:,} of {total:,} read, {len(sel):,} kept")
        if self.message:
            parts.append(self.message)
        self.statusline.update(" | ".join(parts))

    # -- the three panes ---------------------------------------------------------------

    def on_packet_list_highlighted(self, event: PacketList.Highlighted) -> None:
        rows = self.packets.rows
        tree, hexp = self.detail, self.hexpane
        if event.index >= len(rows):
            tree.show([])
            hexp.show(b"")
            return
        try:
            detail, data = rows.detail(event.index)
        except (OSError, IndexError, RawlabError) as exc:
            self.message = f"cannot read row {event.index + 1}: {exc}"
            return
        tree.show(detail)
        hexp.show(data)

    def on_detail_tree_picked(self, event: DetailTree.Picked) -> None:
        self.hexpane.mark(event.offset, event.size)

    def on_hex_pane_clicked(self, event: HexPane.Clicked) -> None:
        tree = self.detail
        tree.at_offset(event.offset)
        tree.focus()

    # -- filters -------------------------------------------------------------------------

    def action_focus(self, what: str) -> None:
        if what == "list":
            self.packets.focus()
        elif what in self.inputs:
            self.inputs[what].focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id not in ("bpf", "display"):
            return
        bpf = self.inputs["bpf"].value.strip() if "bpf" in self.inputs else ""
        display = self.inputs["display"].value.strip()
        self.apply(bpf, display)
        self.packets.focus()

    def apply(self, bpf: str, display: str) -> None:
        """Show only what ``bpf`` and ``display`` keep (both empty: everything)."""
        try:
            judge = self.source.judge(bpf or None, display or None) if bpf or display else None
        except RawlabError as exc:
            self.message = exc.message
            self.tick()
            return
        if self.selection is not None:
            self.selection.stop()
        self.message = ""
        rows = self.source.rows
        self.selection = None
        if judge is not None:
            from rawlab.view.select import Selection

            self.selection = Selection(judge, size=self.source.size,
                                       final=self.source.final).start()
        rows.select(self.selection)  # type: ignore[attr-defined]
        self.packets.set_rows(rows)
        self.tick()

    # -- screens -------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_connections(self) -> None:
        if not self.source.tcp:
            self.message = "connections: only for packets"
            return
        self.push_screen(ConnectionsScreen(self.source))

    def action_write(self) -> None:
        rows = self.source.rows
        what = f"{len(rows):,} {'listed ' if self.selection is not None else ''}frames"
        self.push_screen(WriteScreen(what), self._write_to)

    def _write_to(self, path: str | None) -> None:
        if path:
            rows = self.source.rows
            self.message = f"writing {path}…"
            self._write(path, [rows.number(i) for i in range(len(rows))])  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="write")
    def _write(self, path: str, numbers: list[int]) -> None:
        try:
            n = self.source.write(path, numbers)
            self.message = f"wrote {n:,} frames to {path}"
        except RawlabError as exc:
            self.message = f"write failed: {exc.message}"

    async def action_quit(self) -> None:
        self.exit()

    def on_unmount(self) -> None:
        if self.selection is not None:
            self.selection.stop()
