"""rawlab view on live sources, driven by Textual's pilot: a capture in a throwaway
namespace (rows as they arrive, the tail followed unless scrolled away, the kernel's
counts in the status line, `w` writing what was captured) and the netlink monitor's
events (rows, the attribute tree, the display filter over the message's JSON)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rawlab.lab.traffic import ping
from rawlab.pcap.reader import read_records
from rawlab.sockets.packet import RingConfig, open_ring
from rawlab.view.app import PacketSource, ViewerApp
from rawlab.view.frames import LiveFrames
from rawlab.view.netlink import NetlinkEvents, NetlinkSource
from rawlab.view.widgets import DetailTree, HexPane, PacketList

pytestmark = pytest.mark.privileged


async def until(pilot: Any, cond: Callable[[], Any], timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        await pilot.pause(0.05)


def drawn(app: ViewerApp) -> list[str]:
    lst = app.query_one(PacketList)
    return [lst.render_line(y).text.rstrip() for y in range(1, lst.scrollable_content_region.height)
            if lst.render_line(y).text.strip()]


def status(app: ViewerApp) -> str:
    return str(app.query_one("#status").render())


def test_live_rows_follow_the_tail_and_w_writes_them(lab: Any, tmp_path: Path) -> None:
    a, b = lab.netns("a"), lab.netns("b")
    lab.veth(a, b, "10.77.0.1/24", "10.77.0.2/24")
    ring = open_ring("veth1", bpf="icmp", netns=b.name, config=RingConfig(ring_mb=4))
    frames = LiveFrames(ring)
    frames.start()
    source = PacketSource(frames, live=True)
    app = ViewerApp(source)
    out = tmp_path / "live.pcapng"

    async def script(pilot: Any) -> None:
        lst = app.query_one(PacketList)
        ping(a, "10.77.0.2", count=3)
        await until(pilot, lambda: lst.count >= 6)
        await until(pilot, lambda: lst.cursor == lst.count - 1)  # the tail is followed
        rows = drawn(app)
        assert rows[0].split()[:5] == ["1", "0.000000", "10.77.0.1", "10.77.0.2", "ICMP"]
        assert "echo request, id" in rows[0] and "echo reply, id" in rows[1]
        await until(pilot, lambda: "6 captured, 6 received by filter, 0 dropped by kernel"
                    in status(app))
        assert status(app).startswith("capturing: ")
        tree = app.query_one(DetailTree)
        assert str(tree.root.label).startswith(f"frame {lst.count}: 98 bytes on wire")
        assert len(app.query_one(HexPane).data) == 98
        await pilot.press("home")  # scrolled away: new rows no longer move the cursor
        ping(a, "10.77.0.2", count=2)
        await until(pilot, lambda: lst.count >= 10)
        await pilot.pause(0.3)
        assert lst.cursor == 0
        await pilot.press("end")  # back to the tail: followed again
        ping(a, "10.77.0.2", count=1)
        await until(pilot, lambda: lst.count >= 12)
        await until(pilot, lambda: lst.cursor == lst.count - 1)
        await pilot.press("w")
        from textual.widgets import Input

        await until(pilot, lambda: app.screen.query("#path"))
        app.screen.query_one("#path", Input).value = str(out)
        await pilot.press("enter")
        await until(pilot, lambda: "wrote " in app.message)
        assert app.message == f"wrote {lst.count} frames to {out}"

    async def run() -> None:
        async with app.run_test(size=(150, 44)) as pilot:
            await script(pilot)

    try:
        asyncio.run(run())
        n = len(frames)
    finally:
        source.close()
    got = list(read_records(out))
    assert len(got) == n >= 12
    assert [r.data for r in got] == [frames.record(i).data for i in range(n)]


def test_netlink_events_tree_and_display_filter(lab: Any) -> None:
    ns = lab.netns("nl")
    events = NetlinkEvents(["link", "addr"], netns=ns.name)
    source = NetlinkSource(events)
    source.start()
    app = ViewerApp(source)

    async def script(pilot: Any) -> None:
        from textual.widgets import Input

        lst = app.query_one(PacketList)
        await until(pilot, events.ready.is_set)
        ns.run(["ip", "link", "add", "vw0", "type", "veth", "peer", "name", "vw1"])
        ns.run(["ip", "addr", "add", "10.9.9.9/24", "dev", "vw0"])
        await until(pilot, lambda: any(lst.rows.row(i).protocol == "RTM_NEWADDR"
                                       for i in range(len(lst.rows))))
        await until(pilot, lambda: any("RTM_NEWADDR" in r for r in drawn(app)))
        rows = drawn(app)
        link = next(r for r in rows if "RTM_NEWLINK" in r and "vw0" in r)
        addr = next(r for r in rows if "RTM_NEWADDR" in r)
        assert "10.9.9.9/24" in addr and link.split()[2:4] == ["kernel", "link"]
        assert "monitoring: " in status(app) and "0 overflows (ENOBUFS)" in status(app)
        # the attribute tree of the address message, its bytes in the hex pane
        lst.cursor = next(i for i in range(lst.count) if "RTM_NEWADDR" in lst.rows.row(i).protocol)
        await pilot.pause()
        tree = app.query_one(DetailTree)
        labels = [str(tree.get_node_at_line(i).label) for i in range(tree.last_line + 1)]
        assert labels[0].startswith("[RTM_NEWADDR]") and "10.9.9.9/24" in labels[0]
        assert "nlmsg_type = 20 (RTM_NEWADDR)" in labels
        assert "IFA_LOCAL (local) = 10.9.9.9" in labels
        hexp = app.query_one(HexPane)
        assert len(hexp.data) == int(next(x for x in labels if x.startswith("nlmsg_len = "))
                                     .split()[-1])
        # the display filter runs over the message's JSON (docs/json.md, netlink)
        app.query_one("#display", Input).value = "attrs.IFA_LOCAL == 10.9.9.9"
        app.apply("", "attrs.IFA_LOCAL == 10.9.9.9")
        await until(pilot, lambda: app.selection is not None and app.selection.scanned
                    >= source.size() and lst.count == 1)
        assert "RTM_NEWADDR" in drawn(app)[0]
        app.apply("tcp", "")
        assert "BPF filters apply to packets, not netlink events" in app.message

    async def run() -> None:
        async with app.run_test(size=(150, 44)) as pilot:
            await script(pilot)

    try:
        asyncio.run(run())
    finally:
        source.close()
