"""rawlab view driven by Textual's headless pilot: a capture of captures/ opened, moved
through, filtered (BPF and display), its connections, a ladder and a followed stream
opened, frames written; the assertions read the widgets' contents."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rawlab.cli import main
from rawlab.pcap.reader import read_records
from rawlab.view.app import HelpScreen, PacketSource, StreamScreen, ViewerApp
from rawlab.view.frames import FileFrames
from rawlab.view.widgets import DetailTree, HexPane, PacketList

pytestmark = pytest.mark.unit

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
LOSS = CAPTURES / "tcp-loss.pcap"

Script = Callable[[ViewerApp, Any], Awaitable[None]]


def drive(path: Path, script: Script, size: tuple[int, int] = (150, 44), **kw: Any) -> None:
    frames = FileFrames(path)
    frames.start()
    source = PacketSource(frames)
    app = ViewerApp(source, **kw)

    async def run() -> None:
        async with app.run_test(size=size) as pilot:
            # the status line follows on the next 0.2 s tick: wait for its final text too
            await until(pilot, lambda: frames.complete and app.query_one(PacketList).count
                        and not status(app).startswith("indexing:"))
            await script(app, pilot)

    try:
        asyncio.run(run())
    finally:
        source.close()


async def until(pilot: Any, cond: Callable[[], Any], timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        await pilot.pause(0.05)


async def filtered(app: ViewerApp, pilot: Any) -> None:
    """Wait until the filter has read every frame and the list shows what it kept."""
    await until(pilot, lambda: app.selection is not None and app.selection.done
                and app.query_one(PacketList).count == len(app.selection)
                and "| filter: " in status(app))
    await pilot.pause()


def rows(app: ViewerApp) -> list[str]:
    """The packet list as drawn (header first)."""
    lst = app.query_one(PacketList)
    return [lst.render_line(y).text.rstrip()
            for y in range(lst.scrollable_content_region.height)]


def numbers(app: ViewerApp) -> list[int]:
    return [int(line.split()[0]) for line in rows(app)[1:] if line.strip()]


def status(app: ViewerApp) -> str:
    return str(app.query_one("#status").render())


def tree_labels(app: ViewerApp) -> list[str]:
    tree = app.query_one(DetailTree)
    out = []
    for line in range(tree.last_line + 1):
        node = tree.get_node_at_line(line)
        if node is not None:
            out.append(str(node.label))
    return out


def test_first_screen_move_and_the_linked_panes() -> None:
    async def script(app: ViewerApp, pilot: Any) -> None:
        shown = rows(app)
        assert shown[0].split() == ["No.", "Time", "Source", "Destination", "Protocol",
                                    "Length", "Info"]
        assert shown[1].split()[:8] == ["1", "0.000000", "10.77.0.1", "10.77.0.2", "TCP", "74",
                                        "51216", ">"]
        assert "5001 Flags [S], seq 1308470074, win 64240" in shown[1]
        assert shown[2].split()[:6] == ["2", "0.000031", "10.77.0.2", "10.77.0.1", "TCP", "74"]
        assert status(app).startswith("421 frames")
        labels = tree_labels(app)
        assert labels[0].startswith("frame 1: 74 bytes on wire, 74 captured, ts 1795472951.4088")
        assert labels[1:3] == ["eth @0, header 14 bytes", "    0  dst            ca:bf:a7:70:3f:95"]
        hexp = app.query_one(HexPane)
        assert hexp.lines[0] == "0x0000:  cabf a770 3f95 4e10 3944 849e 0800 4500  ...p?.N.9D....E."
        # move: the tree and the hex pane follow the list
        await pilot.press("down", "down", "down")
        assert app.query_one(PacketList).cursor == 3
        assert tree_labels(app)[0].startswith("frame 4: 1514 bytes on wire, 96 captured")
        assert len(hexp.data) == 96
        await pilot.press("end")
        await pilot.pause()
        assert tree_labels(app)[0].startswith("frame 421: ")
        assert numbers(app)[-1] == 421
        await pilot.press("home")
        await pilot.pause()
        assert numbers(app)[0] == 1
        await pilot.press("right")  # the Info column scrolls: 16 characters further
        assert rows(app)[1].split()[6:8] == ["gs", "[S],"]  # "51216 > 5001 Fla" scrolled away
        await pilot.press("left")
        assert rows(app)[1].split()[6:8] == ["51216", ">"]
        # the tree marks a field's bytes in the hex pane: ipv4 src is bytes 26..29
        tree = app.query_one(DetailTree)
        tree.focus()
        line = next(i for i, t in enumerate(tree_labels(app)) if t.split()[:2] == ["26", "src"])
        tree.cursor_line = line
        await pilot.pause()
        assert (hexp.lo, hexp.hi) == (26, 30)
        assert bytes(hexp.data[26:30]) == bytes([10, 77, 0, 1])
        marked = [s.text for s in hexp.render_line(1) if s.style and s.style.reverse]
        assert marked == ["0a", "4d", "00", "01", ".", "M", ".", "."]
        # a click on a byte of the hex pane selects its field in the tree: byte 0x24 (36)
        # is the high byte of the TCP destination port
        await pilot.click(HexPane, offset=(9 + 2 * 5, 1 + 2))  # (its border) line 0x0020, word 2
        await pilot.pause()
        node = tree.cursor_node
        assert node is not None and node.data is not None
        assert node.data.offset == 36 and str(node.label).split()[:3] == ["36", "dport", "5001"]

    drive(LOSS, script)


def test_filters_bpf_then_display_then_both() -> None:
    async def script(app: ViewerApp, pilot: Any) -> None:
        await pilot.press("f")
        await pilot.press(*"tcp[tcpflags] & tcp-syn != 0", "enter")
        await filtered(app, pilot)
        assert numbers(app) == [1, 2]
        assert "filter: 2 of 421 shown" in status(app)
        assert app.focused is app.query_one(PacketList)
        await pilot.press("f", "ctrl+u", "enter")  # BPF cleared
        await pilot.press("slash")
        await pilot.press(*"tcp.analysis.retransmission and ip.src == 10.77.0.1", "enter")
        await filtered(app, pilot)
        assert numbers(app) == [51, 92, 121, 416, 418]
        assert tree_labels(app)[0].startswith("frame 51: ")
        await pilot.press("f", *"dst port 5001", "enter")  # both: none of those are to 5001
        await filtered(app, pilot)
        assert numbers(app) == [51, 92, 121, 416, 418]
        await pilot.press("slash", "ctrl+u", *"tcp.analysis.duplicate_ack", "enter")
        await filtered(app, pilot)
        assert len(app.selection or []) == 0 and "filter: 0 of 421 shown" in status(app)

    drive(LOSS, script)


def test_a_bad_filter_is_one_line_and_keeps_the_list() -> None:
    async def script(app: ViewerApp, pilot: Any) -> None:
        await pilot.press("slash", *"tcp.prot == 80", "enter")
        await pilot.pause()
        assert ("display filter: unknown field 'tcp.prot' (docs/view.md lists them) at column "
                "1: tcp.prot == 80") in status(app)
        assert app.selection is None and app.query_one(PacketList).count == 421
        await pilot.press("slash", "ctrl+u", "enter", "f", *"tcp port", "enter")
        await pilot.pause()
        assert "syntax error" in status(app) and app.selection is None
        assert "\n" not in status(app)

    drive(LOSS, script)


def cli_lines(*args: str) -> list[str]:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert r.exit_code == 0
    return r.output.splitlines()


def test_connections_ladder_and_follow_are_rawlab_tcps() -> None:
    async def script(app: ViewerApp, pilot: Any) -> None:
        await pilot.press("c")
        from textual.widgets import Log, OptionList, Static

        opts = app.screen.query_one(OptionList)
        await until(pilot, lambda: opts.option_count)
        table = cli_lines("tcp", "--exact", str(LOSS))
        head = str(app.screen.query_one("#head", Static).render())
        assert head.split() == table[0].split()
        assert str(opts.get_option_at_index(0).prompt) == table[1]
        assert table[1].split()[:4] == ["0", "10.77.0.1:51216", "10.77.0.2:5001", "SF"]
        assert "duplicate_ack=23" in table[1]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, StreamScreen)
                    and app.screen.query_one("#ladder-text", Log).line_count)
        ladder = app.screen.query_one("#ladder-text", Log)
        assert list(ladder.lines) == cli_lines("tcp", "--ladder", "--stream", "0",
                                               str(LOSS))[1:]  # its leading blank line
        assert ladder.lines[2].split()[:4] == ["1", "0.000", "├──", "SYN"]
        await pilot.press("s")
        follow = app.screen.query_one("#follow-text", Log)
        assert list(follow.lines) == cli_lines("tcp", "--follow", "0", str(LOSS))
        assert follow.lines[0] == "=== 10.77.0.1:51216 -> 10.77.0.2:5001  seq 1  30 bytes"
        await pilot.press("escape", "escape")
        assert app.screen.query(PacketList)

    drive(LOSS, script)


def test_write_the_listed_frames(tmp_path: Path) -> None:
    out_all, out_some = tmp_path / "all.pcapng", tmp_path / "some.pcapng"

    async def script(app: ViewerApp, pilot: Any) -> None:
        from textual.widgets import Input

        for out in (out_all, out_some):
            await pilot.press("w")
            await until(pilot, lambda: app.screen.query("#path"))
            app.screen.query_one("#path", Input).value = str(out)
            await pilot.press("enter")
            await until(pilot, lambda out=out: f"to {out}" in app.message)
            if out is out_all:
                await pilot.press("slash", *"tcp.analysis.retransmission", "enter")
                await filtered(app, pilot)
        assert app.message == f"wrote 5 frames to {out_some}"

    drive(LOSS, script)
    src = list(read_records(LOSS))
    got = list(read_records(out_all))
    assert [(r.ts_ns, r.data, r.wirelen) for r in got] == [(r.ts_ns, r.data, r.wirelen)
                                                             for r in src]
    some = [(r.ts_ns, r.data) for r in read_records(out_some)]
    assert some == [(src[n - 1].ts_ns, src[n - 1].data)
                    for n in (51, 92, 121, 416, 418)]


def test_help_and_quit() -> None:
    async def script(app: ViewerApp, pilot: Any) -> None:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        from textual.widgets import Static

        text = str(app.screen.query_one("#help", Static).render())
        assert "tcp.analysis.retransmission and ip.src == 10.0.0.1" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.pause()
        assert app._exit  # type: ignore[attr-defined]

    drive(LOSS, script)


def test_a_truncated_file_shows_every_whole_record(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    blob = LOSS.read_bytes()
    cut.write_bytes(blob[:-30])

    async def script(app: ViewerApp, pilot: Any) -> None:
        assert app.query_one(PacketList).count == 420
        assert status(app).startswith(f"420 frames; the file ends early: {cut}: offset ")
        assert "truncated record" in status(app)

    drive(cut, script)


def test_starting_filters_and_the_live_tail() -> None:
    """Filters given at start (the CLI's EXPRESSION and -Y) apply at once."""
    async def script(app: ViewerApp, pilot: Any) -> None:
        await filtered(app, pilot)
        assert numbers(app) == [1]

    drive(LOSS, script, bpf="src host 10.77.0.1", display="tcp.flags.syn")
