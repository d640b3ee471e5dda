"""Netlink mode: the rtnetlink monitor's events as the viewer's rows (the monitor of
``rawlab netlink monitor``: rawlab.sockets.netlink_monitor.MonitorSession drained by a
worker thread, rawlab.analysis.netlink.Monitor's events), each message's attribute tree
(rawlab.present.netlink.layout_rows) in the detail pane and its bytes in the hex pane.

    src = NetlinkSource(["link", "addr", "route"], netns=None); src.start()
    app = ViewerApp(src)
"""

from __future__ import annotations

import io
import threading
from typing import Any

from rawlab.errors import Exit, RawlabError
from rawlab.present.listing import ListRow, process_text, since
from rawlab.present.packet import TreeRow
from rawlab.view.select import Judge


class NetlinkEvents:
    """The monitor's events, gathered by a worker thread (inside ``netns`` when given)."""

    def __init__(self, groups: list[str], *, netns: str | None = None,
                 all_nsid: bool = False) -> None:
        from rawlab.sockets import netlink_monitor as nm

        try:
            self.numbers = nm.group_numbers(groups)
        except ValueError as exc:
            raise RawlabError(f"unknown group '{exc}'; fix: use some of {', '.join(nm.GROUPS)}",
                              Exit.USAGE) from None
        self.groups = groups
        self.netns = netns
        self.all_nsid = all_nsid
        self.events: list[Any] = []
        self.monitor: Any = None
        self.ready = threading.Event()  # seeded: events from now on are news
        self.done = False
        self.error: str | None = None
        self.overflows = 0
        self._session: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rawlab-netlink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from rawlab.analysis import netlink as an
        from rawlab.decode.rtnl import decode_dump
        from rawlab.errors import explain
        from rawlab.sockets import netlink_monitor as nm
        from rawlab.sockets.netns import entered
        from rawlab.sockets.proc import PortOwners

        try:
            with entered(self.netns):
                mon = self.monitor = an.Monitor(an.kinds_of(self.groups),
                                                owner=PortOwners().lookup)
                try:
                    session = nm.MonitorSession(self.numbers, all_nsid=self.all_nsid)
                except OSError as exc:
                    raise explain(exc, "open the rtnetlink monitor socket") from None
                self._session = session
                with session:
                    for kind in sorted(mon.kinds):
                        mon.seed(kind, decode_dump(session.seed(an.DUMP_OF[kind])))
                    mon.name_links(decode_dump(session.dump("links")))
                    self.ready.set()
                    if self._stop.is_set():
                        session.stop()
                    add = self.events.append
                    for item in session.drain():
                        for ev in mon.feed(item):
                            add(ev)
                    self.overflows = mon.overflows
        except RawlabError as exc:
            self.error = exc.message
        finally:
            self.ready.set()
            self.done = True

    def stop(self) -> None:
        self._stop.set()
        if self._session is not None:
            self._session.stop()

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=2)


class NetlinkRows:
    """The list's rows for netlink events (RowSource), all of them or a selection's."""

    def __init__(self, events: NetlinkEvents) -> None:
        self.source = events
        self.selection: Any = None

    def select(self, selection: Any) -> None:
        self.selection = selection

    def __len__(self) -> int:
        return len(self.selection) if self.selection is not None else len(self.source.events)

    def number(self, i: int) -> int:
        return self.selection[i] if self.selection is not None else i

    def row(self, i: int) -> ListRow:
        n = self.number(i)
        evs = self.source.events
        return event_row(n + 1, evs[n], evs[0].ts_ns if hasattr(evs[0], "ts_ns") else 0,
                         self._ifname)

    def _ifname(self, index: int) -> str | None:
        mon = self.source.monitor
        return mon.ifnames.get(index) if mon is not None else None

    def detail(self, i: int) -> tuple[list[TreeRow], bytes]:
        ev = self.source.events[self.number(i)]
        m = getattr(ev, "msg", None)
        if m is None:
            return [TreeRow(0, event_row(i + 1, ev, 0, self._ifname).info, None, 0)], b""
        return message_tree(m, self._ifname), bytes(m.buf[m.offset:m.offset + m.len])


def event_row(number: int, ev: Any, t0_ns: int, ifname: Any) -> ListRow:
    """One monitor event as a list row: who sent it, the group, the message type, what it
    says (as ``rawlab netlink monitor`` prints it)."""
    from rawlab.analysis.netlink import Event
    from rawlab.decode.rtnl import type_name
    from rawlab.present.netlink import MonitorPrinter, body_text
    from rawlab.sockets.netlink_monitor import GROUPS

    ts = getattr(ev, "ts_ns", t0_ns)
    if type(ev) is Event:
        m = ev.msg
        who = process_text(ev.process)
        src = "kernel" if not m.pid else who or f"pid {m.pid}"
        group = next((g for g, nums in GROUPS.items() if ev.group in nums and len(nums) == 1),
                     "" if ev.group is None else str(ev.group))
        info = body_text(m, ifname)
        if ev.nsid is not None:
            info = f"[nsid {ev.nsid}] {info}"
        return ListRow(number, since(ts, t0_ns), src, group, type_name(m.type, m.protocol),
                       m.len, info, who)
    out = io.StringIO()
    MonitorPrinter(out, ifname=ifname).show(ev)
    what = "overflow" if hasattr(ev, "count") else f"resync {ev.what}"
    return ListRow(number, since(ts, t0_ns) if hasattr(ev, "ts_ns") else "", "", "", what, 0,
                   out.getvalue().strip())


def message_tree(m: Any, ifname: Any) -> list[TreeRow]:
    """A message's attribute tree: its line, then the layout's rows with their bytes."""
    from rawlab.present.netlink import layout_rows, line

    rows = [TreeRow(0, line(m, ifname), 0, m.len)]
    for r in layout_rows(bytes(m.buf), m.offset, m.protocol or 0) or []:
        rows.append(TreeRow(max(r.depth, 1), f"{r.name} = {r.value}", r.offset, r.size))
    return rows


class NetlinkSource:
    """Netlink mode for the viewer (ViewerApp's source)."""

    bpf = False
    tcp = False
    live = True
    writes = False

    def __init__(self, events: NetlinkEvents) -> None:
        self.events = events
        self.rows = NetlinkRows(events)
        where = f" in netns {events.netns}" if events.netns else ""
        self.title = f"netlink monitor: {','.join(events.groups)}{where}"

    def start(self) -> None:
        self.events.start()

    def size(self) -> int:
        return len(self.events.events)

    def final(self) -> bool:
        return self.events.done

    def judge(self, bpf: str | None, display: str | None) -> Judge:
        from rawlab.present.netlink import msg_json
        from rawlab.view.dfilter import DisplayFilter
        from rawlab.view.fields import values

        if bpf:
            raise RawlabError("BPF filters apply to packets, not netlink events", Exit.USAGE)
        flt = DisplayFilter.parse(display or "", None)
        evs = self.events.events

        def judge(start: int, stop: int) -> list[bool]:
            out = []
            for ev in evs[start:stop]:
                m = getattr(ev, "msg", None)
                if m is None:
                    out.append(False)
                    continue
                d = msg_json(m, n=getattr(ev, "n", 0), nsid=getattr(ev, "nsid", None),
                             group=getattr(ev, "group", None),
                             process=process_text(getattr(ev, "process", None)) or None)
                out.append(flt.match(lambda name, d=d: values(d, name)))
            return out

        return judge

    def status(self) -> str:
        ev = self.events
        if ev.error:
            return f"netlink monitor stopped: {ev.error}"
        if not ev.ready.is_set():
            return "netlink monitor: seeding the tables…"
        mon = ev.monitor
        over = mon.overflows if mon is not None else 0
        return (f"{'stopped' if ev.done else 'monitoring'}: {len(ev.events):,} events, "
                f"{over} overflows (ENOBUFS)")

    def write(self, path: str, numbers: Any) -> int:
        raise RawlabError("netlink events are not written to a file here; "
                          "`rawlab netlink capture -w FILE` records them", Exit.USAGE)

    def close(self) -> None:
        self.events.close()
