"""`rawlab netlink monitor`: rtnetlink events, losslessly, like `ip monitor`."""

from __future__ import annotations

import sys

import click

from rawlab.cli.options import Seconds


@click.command()
@click.option("--groups", default=None, metavar="G,G,...",
              help="Multicast groups: link, addr, route, neigh, rule, nsid, netconf, nexthop, "
                   "prefix, mroute, tc, mdb, mpls (addr4/addr6, route4/route6, rule4/rule6). "
                   "Default: as `ip monitor all`.")
@click.option("--all-nsid", is_flag=True, help="Also events of every namespace that has an "
              "nsid here (NETLINK_LISTEN_ALL_NSID), each tagged with that nsid.")
@click.option("--netns", metavar="NAME", help="Monitor inside this network namespace.")
@click.option("--json", "as_json", is_flag=True, help="NDJSON: one object per message, then a "
              "summary (docs/json.md, netlink).")
@click.option("-v", "verbose", is_flag=True,
              help="pyroute2's names beside the byte layout (offsets, hex) of each message.")
@click.option("--rcvbuf-kb", type=click.IntRange(min=4), default=65536, show_default=True,
              help="Socket receive buffer in KiB (SO_RCVBUFFORCE as root; the kernel "
                   "doubles it).")
@click.option("-c", "count", type=click.IntRange(min=1), metavar="N",
              help="Stop after N messages.")
@click.option("--duration", type=Seconds(), metavar="SECONDS", help="Stop after SECONDS.")
@click.option("-t", "--timestamp", "stamp", flag_value="long", help="Text: a `Timestamp:` "
              "line before each event, as `ip -t monitor`.")
@click.option("-ts", "--tshort", "stamp", flag_value="short", help="Text: each event "
              "prefixed with [ISO time], as `ip -ts monitor`.")
@click.option("--no-resolve", is_flag=True,
              help="Do not resolve nlmsg_pid to the sending process.")
def monitor(groups: str | None, all_nsid: bool, netns: str | None, as_json: bool, verbose: bool,
            rcvbuf_kb: int, count: int | None, duration: float | None, stamp: str | None,
            no_resolve: bool) -> None:
    """Watch rtnetlink events, losslessly (like `ip monitor`, with JSON and attribution).

    A separate thread drains the socket into memory while events are decoded
    and printed, so a burst does not overflow the kernel's buffer. If it
    overflows anyway (ENOBUFS), the overflow is counted, the affected tables
    are re-dumped and what changed meanwhile is reported as `resync` records.
    Each event names the process that asked for the change (from nlmsg_pid)
    while that process still exists. Ends on -c, --duration, Ctrl-C or SIGTERM.
    """
    import gc

    from rawlab.analysis import netlink as an
    from rawlab.decode.rtnl import decode_dump
    from rawlab.errors import Exit, RawlabError, explain
    from rawlab.present.netlink import MonitorPrinter
    from rawlab.sockets import netlink_monitor as nm
    from rawlab.sockets.netns import entered
    from rawlab.sockets.proc import PortOwners
    from rawlab.sockets.stop import stop_on_signals

    names = [g.strip() for g in (groups.split(",") if groups else nm.DEFAULT_GROUPS)
             if g.strip()]
    try:
        numbers = nm.group_numbers(names)
    except ValueError as exc:
        raise RawlabError(f"unknown group '{exc}'; fix: use some of "
                          f"{', '.join(nm.GROUPS)}", Exit.USAGE) from None
    if as_json and verbose:
        raise click.UsageError("choose one of -v, --json")
    with entered(netns):  # the whole run: /proc/thread-self/net/netlink is this namespace's
        mon = an.Monitor(an.kinds_of(names), owner=None if no_resolve else PortOwners().lookup)
        out = MonitorPrinter(sys.stdout, as_json=as_json, verbose=verbose,
                             ifname=mon.ifnames.get, stamp=stamp)
        try:
            session = nm.MonitorSession(numbers, all_nsid=all_nsid, rcvbuf=rcvbuf_kb << 10)
        except OSError as exc:
            raise explain(exc, "open the rtnetlink monitor socket") from None
        seen = 0
        gc.disable()  # many small dicts per event: the collector would walk them all, often
        try:
            with session, stop_on_signals(session.stop):
                for kind in sorted(mon.kinds):
                    mon.seed(kind, decode_dump(session.seed(an.DUMP_OF[kind])))
                mon.name_links(decode_dump(session.dump("links")))
                click.echo(f"rawlab: monitoring {','.join(names)}"
                           f"{f' in netns {netns}' if netns else ''} (rcvbuf "
                           f"{session.rcvbuf >> 10} KiB{', all nsids' if all_nsid else ''}); "
                           "Ctrl-C to stop", err=True)
                for ev in (ev for item in session.drain(duration) for ev in mon.feed(item)):
                    out.show(ev)
                    if isinstance(ev, an.Event):
                        seen += 1
                        if seen == count:
                            break
                    if session.caught_up:
                        sys.stdout.flush()
        finally:
            gc.enable()
        summary = {"messages": seen, "datagrams": session.datagrams, "overflows": mon.overflows,
                   "resync": mon.changes, "truncated": session.truncated,
                   "rcvbuf": session.rcvbuf, "groups": names}
        text = out.summary(summary)
        if text:
            click.echo(text, err=True)
        sys.stdout.flush()
