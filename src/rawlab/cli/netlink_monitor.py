"""`rawlab netlink monitor`: netlink events, losslessly, like `ip monitor`, `conntrack -E`
and `nft monitor` (and generic netlink families' multicast groups)."""

from __future__ import annotations

import sys
from itertools import chain
from typing import Any

import click

from rawlab.cli.options import Seconds


@click.command()
@click.option("--groups", default=None, metavar="G,G,...",
              help="rtnetlink groups: link, addr, route, neigh, rule, nsid, netconf, nexthop, "
                   "prefix, mroute, tc, mdb, mpls (addr4/addr6, route4/route6, rule4/rule6). "
                   "Default: as `ip monitor all` (unless only --conntrack, --nftables or "
                   "--genl are asked for).")
@click.option("--conntrack", is_flag=True, help="Connection tracking events (new, update, "
              "destroy), as `conntrack -E`: tuples, state, marks, zones, counters when "
              "accounting is on (net.netfilter.nf_conntrack_acct).")
@click.option("--nftables", is_flag=True, help="nftables changes (tables, chains, rules with "
              "their expressions, sets, elements, generations), as `nft monitor`.")
@click.option("--genl", "genl_specs", multiple=True, metavar="FAMILY[:GROUP]",
              help="A generic netlink family's multicast groups (all, or the one named), "
                   "e.g. nl80211:config, ethtool, devlink; repeatable. `rawlab netlink genl` "
                   "lists families and groups.")
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
def monitor(groups: str | None, conntrack: bool, nftables: bool, genl_specs: tuple[str, ...],
            all_nsid: bool, netns: str | None, as_json: bool, verbose: bool, rcvbuf_kb: int,
            count: int | None, duration: float | None, stamp: str | None,
            no_resolve: bool) -> None:
    """Watch netlink events, losslessly (like `ip monitor`, with JSON and attribution).

    A separate thread drains the sockets into memory while events are decoded
    and printed, so a burst does not overflow the kernel's buffer. If the
    rtnetlink socket overflows anyway (ENOBUFS), the overflow is counted, the
    affected tables are re-dumped and what changed meanwhile is reported as
    `resync` records. Each event names the process that asked for the change
    (nlmsg_pid), looked up the moment the event arrives; when it cannot, it says
    why (the kernel's own change, or the sender exited first). Ends on -c,
    --duration, Ctrl-C or SIGTERM.
    """
    import gc

    from rawlab.analysis import netlink as an
    from rawlab.errors import explain
    from rawlab.present.netlink import MonitorPrinter
    from rawlab.sockets import netlink_monitor as nm
    from rawlab.sockets.netns import entered
    from rawlab.sockets.proc import PortOwners, TaskExits
    from rawlab.sockets.stop import stop_on_signals

    if as_json and verbose:
        raise click.UsageError("choose one of -v, --json")
    # names of processes as they exit (TASKSTATS is in the first namespace: before --netns)
    exits = None if no_resolve else TaskExits.open()
    if not no_resolve:
        # the threads that name senders must run the moment the kernel wakes them (a
        # sender often exits within milliseconds), not after the decoder's 5 ms slice
        sys.setswitchinterval(0.0002)
    with entered(netns):  # the whole run: the drain thread's /proc/thread-self/net is here
        subs, names, ids = _subscriptions(groups, conntrack, nftables, genl_specs)
        mon = an.Monitor(an.kinds_of(names), genl=ids)
        out = MonitorPrinter(sys.stdout, as_json=as_json, verbose=verbose,
                             ifname=mon.ifnames.get, stamp=stamp, genl=ids)
        owners = None if no_resolve else PortOwners(exits=exits)
        try:
            session = nm.MonitorSession(subs, all_nsid=all_nsid, rcvbuf=rcvbuf_kb << 10,
                                        at_receipt=owners.at_receipt if owners else None)
        except OSError as exc:
            raise explain(exc, "open the netlink monitor socket") from None
        what = ",".join([*names, *(["conntrack"] if conntrack else []),
                         *(["nftables"] if nftables else []), *genl_specs])
        seen = 0
        gc.disable()  # many small dicts per event: the collector would walk them all, often
        try:
            with session, stop_on_signals(session.stop):
                _seed(session, mon)
                click.echo(f"rawlab: monitoring {what}{f' in netns {netns}' if netns else ''}"
                           f" (rcvbuf {session.rcvbuf >> 10} KiB"
                           f"{', all nsids' if all_nsid else ''}); Ctrl-C to stop", err=True)
                items = session.drain(duration)
                for ev in chain((ev for item in items for ev in mon.feed(item)),
                                _later(mon.flush)):
                    out.show(ev)
                    if isinstance(ev, an.Event):
                        seen += 1
                        if seen == count:
                            break
                    if session.caught_up:
                        sys.stdout.flush()
        finally:
            gc.enable()
            if exits is not None:
                exits.close()
        summary = {"messages": seen, "datagrams": session.datagrams, "overflows": mon.overflows,
                   "resync": mon.changes, "truncated": session.truncated,
                   "rcvbuf": session.rcvbuf, "groups": what.split(",")}
        text = out.summary(summary)
        if text:
            click.echo(text, err=True)
        sys.stdout.flush()


def _subscriptions(groups: str | None, conntrack: bool, nftables: bool,
                   genl_specs: tuple[str, ...]) -> tuple[dict[int, list[int]], list[str], Any]:
    """({netlink protocol: group numbers}, the rtnetlink group names, generic netlink ids)."""
    from rawlab.decode import nfnl
    from rawlab.errors import Exit, RawlabError
    from rawlab.sockets import netlink_monitor as nm
    from rawlab.sockets.netlink_wire import NETLINK_GENERIC, NETLINK_NETFILTER, NETLINK_ROUTE

    subs: dict[int, list[int]] = {}
    names: list[str] = []
    if groups is not None or not (conntrack or nftables or genl_specs):
        names = [g.strip() for g in (groups.split(",") if groups else nm.DEFAULT_GROUPS)
                 if g.strip()]
        try:
            subs[NETLINK_ROUTE] = nm.group_numbers(names)
        except ValueError as exc:
            raise RawlabError(f"unknown group '{exc}'; fix: use some of "
                              f"{', '.join(nm.GROUPS)}", Exit.USAGE) from None
    nf = []
    if conntrack:
        nf += [nfnl.NFNLGRP_CONNTRACK_NEW, nfnl.NFNLGRP_CONNTRACK_UPDATE,
               nfnl.NFNLGRP_CONNTRACK_DESTROY]
    if nftables:
        nf.append(nfnl.NFNLGRP_NFTABLES)
    if nf:
        subs[NETLINK_NETFILTER] = nf
    ids = None
    if genl_specs:
        ids, numbers = _genl_groups(genl_specs)
        subs[NETLINK_GENERIC] = numbers
    return subs, names, ids


def _genl_groups(specs: tuple[str, ...]) -> tuple[Any, list[int]]:
    """Generic netlink ids of this namespace, and the multicast group ids FAMILY[:GROUP] name."""
    from rawlab.decode.genl import GenlIds, families_of
    from rawlab.errors import Exit, RawlabError
    from rawlab.sockets.genl import family_dump

    fams = {f.name: f for f in families_of(family_dump())}
    numbers: list[int] = []
    for spec in specs:
        name, _, group = spec.partition(":")
        fam = fams.get(name)
        if fam is None:
            raise RawlabError(f"no generic netlink family '{name}' in this namespace's kernel; "
                              f"fix: load its module, or use one of {', '.join(sorted(fams))}",
                              Exit.UNSUPPORTED)
        chosen = [g for g in fam.mcast_groups if not group or g.name == group]
        if not chosen:
            have = ", ".join(g.name for g in fam.mcast_groups) or "none"
            raise RawlabError(f"generic netlink family '{name}' has no multicast group "
                              f"'{group or '*'}'; fix: use one of its groups ({have})",
                              Exit.USAGE)
        numbers += [g.id for g in chosen if g.id not in numbers]
    return GenlIds.of(fams.values()), numbers


def _later(fn: Any) -> Any:
    """What ``fn()`` returns, asked for only when reached (after the drain ended)."""
    yield from fn()


def _seed(session: Any, mon: Any) -> None:
    """The rtnetlink tables before the first event, and the link names."""
    from rawlab.analysis import netlink as an
    from rawlab.decode.rtnl import decode_dump

    for kind in sorted(mon.kinds):
        mon.seed(kind, decode_dump(session.seed(an.DUMP_OF[kind])))
    if mon.kinds:
        mon.name_links(decode_dump(session.dump("links")))
