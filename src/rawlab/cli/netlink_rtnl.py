"""`rawlab netlink monitor | dump | decode | capture`: rtnetlink watched, dumped, tapped."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from typing import Any

import click

DUMP_KINDS = ("links", "addrs", "routes", "neigh", "rules")
NLMON_SEES = "ROUTE, USERSOCK, SOCK_DIAG, NFLOG, XFRM, FIB_LOOKUP, NETFILTER and GENERIC"
NLMON_MISSES = ("AUDIT, KOBJECT_UEVENT (uevent), CONNECTOR, SELINUX, ISCSI, RDMA, CRYPTO, "
                "SCSITRANSPORT and SMC")


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")


def _stop_on_signals() -> tuple[list[bool], dict[int, Any]]:
    flag = [False]

    def stop(signum: int, frame: Any) -> None:
        flag[0] = True

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    return flag, old


# ---- monitor ----------------------------------------------------------------------

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
@click.option("--duration", type=float, metavar="SECONDS", help="Stop after SECONDS.")
@click.option("--no-resolve", is_flag=True,
              help="Do not resolve nlmsg_pid to the sending process.")
def monitor(groups: str | None, all_nsid: bool, netns: str | None, as_json: bool, verbose: bool,
            rcvbuf_kb: int, count: int | None, duration: float | None, no_resolve: bool) -> None:
    """Watch rtnetlink events, losslessly (like `ip monitor`, with JSON and attribution).

    A separate thread drains the socket into memory while events are decoded
    and printed, so a burst does not overflow the kernel's buffer. If it
    overflows anyway (ENOBUFS), the overflow is counted, the affected tables
    are re-dumped and what changed meanwhile is reported as `resync` records.
    Each event names the process that asked for the change (from nlmsg_pid)
    while that process still exists. Ends on -c, --duration, Ctrl-C or SIGTERM.
    """
    from rawlab.errors import Exit, RawlabError
    from rawlab.sockets import netlink as nl

    names = [g.strip() for g in (groups.split(",") if groups else nl.DEFAULT_GROUPS)
             if g.strip()]
    try:
        numbers = nl.group_numbers(names)
    except ValueError as exc:
        raise RawlabError(f"unknown group '{exc}'; fix: use some of "
                          f"{', '.join(nl.GROUPS)}", Exit.USAGE) from None
    if as_json and verbose:
        raise click.UsageError("choose one of -v, --json")
    from rawlab.sockets.netns import entered

    with entered(netns):  # the whole run: /proc/thread-self/net/netlink is this namespace's
        _run_monitor(names, numbers, all_nsid=all_nsid, netns=netns, as_json=as_json,
                    verbose=verbose, rcvbuf=rcvbuf_kb << 10, count=count, duration=duration,
                    resolve=not no_resolve)


# ---- dump -------------------------------------------------------------------------

def _table(value: str | None) -> int | None:
    if value is None:
        return None
    named = {"main": 254, "local": 255, "default": 253, "all": 0}
    if value in named:
        return named[value]
    try:
        n = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: a number, main, local, default or all") from None
    if not 0 <= n < 1 << 32:
        raise click.BadParameter(f"{value!r}: tables are 0 .. 2^32-1")
    return n


@click.command()
@click.argument("what", type=click.Choice(DUMP_KINDS))
@click.option("--table", metavar="N", help="routes/rules: a table number or main, local, "
              "default, all (routes default: main, as `ip route`).")
@click.option("--dev", metavar="IF", help="Only objects of this interface (links: just it).")
@click.option("-4", "v4", is_flag=True, help="IPv4 only (routes and rules: the default).")
@click.option("-6", "v6", is_flag=True, help="IPv6 only.")
@click.option("--json", "as_json", is_flag=True, help="NDJSON, one object per message "
              "(docs/json.md, netlink).")
@click.option("-v", "verbose", is_flag=True, help="pyroute2's names beside the byte layout.")
@click.option("--netns", metavar="NAME", help="Dump inside this network namespace.")
@click.option("--all", "show_all", is_flag=True, help="neigh: also NOARP and NONE entries "
              "(`ip neigh` hides them, as `nud all` shows them).")
def dump(what: str, table: str | None, dev: str | None, v4: bool, v6: bool, as_json: bool,
         verbose: bool, netns: str | None, show_all: bool) -> None:
    """Dump links, addresses, routes, neighbours or rules, filtered in the kernel.

    Like `ip link|addr|route|neigh|rule`: NETLINK_GET_STRICT_CHK and the filter
    attributes iproute2 sends, each reply decoded as it arrives.
    """
    import gc

    from rawlab.errors import Exit, RawlabError, explain
    from rawlab.present import netlink as fmt
    from rawlab.sockets import netlink as nl

    if v4 and v6:
        raise click.UsageError("choose one of -4, -6")
    if as_json and verbose:
        raise click.UsageError("choose one of -v, --json")
    family = 2 if v4 else 10 if v6 else (2 if what in ("routes", "rules") else 0)
    tid = _table(table)
    if what == "routes" and tid is None:
        tid = 254
    from rawlab.sockets.netns import entered

    with entered(netns):
        try:
            sock = nl.DumpSocket()
        except OSError as exc:
            raise explain(exc, "open a NETLINK_ROUTE socket") from None
    gc.disable()  # tens of thousands of small dicts: the collector would walk them all, often
    try:
        ifindex = None
        if dev:
            ifindex = sock.link_index(dev)
            if ifindex is None:
                raise RawlabError(f"no device named '{dev}'; fix: check `ip link`", Exit.USAGE)
        names: dict[int, str] = {}
        if not as_json and what != "links":
            names = {m.header.get("index", 0): m.attrs.get("IFLA_IFNAME", "")
                     for m in nl.dump_messages(sock, "links")}
        if as_json and not (what == "links" and ifindex):
            _dump_json(sock, what, family=family, table=tid or None, ifindex=ifindex,
                       show_all=show_all)
            _warn_interrupted(sock)
            return
        msgs: Iterator[Any]
        if what == "links" and ifindex:
            msgs = (m for m in nl.dump_messages(sock, "links") if m.header.get("index") == ifindex)
        else:
            msgs = nl.dump_messages(sock, what, family=family, table=tid or None,
                                    ifindex=ifindex)
            if what == "neigh" and not show_all:
                msgs = filter(_neigh_shown, msgs)
        out = sys.stdout.write
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        for m in msgs:
            if as_json:
                out(dumps(fmt.msg_json(m)) + "\n")
            else:
                out(fmt.body_text(m, names.get) + "\n")
                if verbose:
                    out("\n".join(fmt.layout(m.buf, m.offset)) + "\n")
        _warn_interrupted(sock)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise explain(exc, f"dump {what}") from None
    finally:
        gc.enable()
        sock.close()


def _neigh_shown(m: Any) -> bool:
    """As `ip neigh`: entries in state NOARP or NONE only with --all."""
    return bool(m.header.get("state", 0) & ~0x40)  # NUD_NOARP


def _warn_interrupted(sock: Any) -> None:
    if sock.interrupted:  # as iproute2 says it, on stderr; the output is still complete
        sys.stdout.flush()
        click.echo("rawlab: warning: the dump was interrupted (NLM_F_DUMP_INTR: the table "
                   "changed while the kernel was sending it) and may be inconsistent; run it "
                   "again for a consistent view", err=True)


def _dump_json(sock: Any, what: str, *, family: int, table: int | None,
               ifindex: int | None, show_all: bool) -> None:
    """NDJSON of one dump; messages that repeat a shape are printed by its template."""
    from rawlab.present.netlink_shapes import ShapeRenderer
    from rawlab.sockets import netlink as nl

    bufs, wanted = nl.dump_buffers(sock, what, family=family, table=table, ifindex=ifindex,
                                   read_ahead=True)
    literal = nl.FILTER_FIELDS if wanted is not None else frozenset()
    if what == "neigh" and not show_all:
        literal |= {"state"}  # the shape templates must not make it a slot
        other = wanted  # what the kernel could not filter

        def wanted(m: Any) -> bool:
            return _neigh_shown(m) and (other is None or other(m))

    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    shapes = ShapeRenderer(encode, keep=wanted, literal=frozenset(literal))
    sys.stdout.flush()
    out = sys.stdout.buffer.write
    for buf in bufs:
        for lines in shapes.render(buf):
            out(lines)


# ---- decode -----------------------------------------------------------------------

@click.command()
@click.argument("source", metavar="FILE|HEX")
@click.option("--json", "as_json", is_flag=True, help="NDJSON, one object per message.")
@click.option("-v", "verbose", is_flag=True, help="pyroute2's names beside the byte layout.")
@click.option("--protocol", type=int, default=0, show_default=True,
              help="For HEX: the netlink family of the bytes (0 = ROUTE).")
def decode(source: str, as_json: bool, verbose: bool, protocol: int) -> None:
    """Decode netlink messages from a pcap/pcapng (LINKTYPE_NETLINK, e.g. an nlmon
    capture) or from hex bytes: every message of every packet."""
    import os

    if as_json and verbose:
        raise click.UsageError("choose one of -v, --json")
    recs = _file_records(source) if os.path.exists(source) else _hex_records(source, protocol)
    _print_decoded(recs, as_json=as_json, verbose=verbose)


# ---- capture ----------------------------------------------------------------------

@click.command()
@click.option("-w", "out", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="pcapng file to write (LINKTYPE_NETLINK).")
@click.option("--netns", metavar="NAME", help="Capture this network namespace's netlink.")
@click.option("-c", "count", type=click.IntRange(min=1), metavar="N",
              help="Stop after N messages.")
@click.option("--duration", type=float, metavar="SECONDS", help="Stop after SECONDS.")
def capture(out: str, netns: str | None, count: int | None, duration: float | None) -> None:
    """Capture netlink traffic through an nlmon device into pcapng (opens in Wireshark).

    Creates an nlmon link (removed on exit, also on Ctrl-C or SIGTERM) and
    captures it with the AF_PACKET engine. Direction (pcapng flags): to the
    kernel = outbound, to a user socket = inbound, from pkt_type when it says
    (PACKET_KERNEL/PACKET_USER), else from NLM_F_REQUEST. nlmon sees ROUTE,
    USERSOCK, SOCK_DIAG, NFLOG, XFRM, FIB_LOOKUP, NETFILTER and GENERIC; it
    cannot see AUDIT, KOBJECT_UEVENT (uevent), CONNECTOR, SELINUX, ISCSI, RDMA,
    CRYPTO, SCSITRANSPORT or SMC. Where the kernel has no nlmon (exit 4), use
    `rawlab netlink monitor`.
    """
    _run_capture(out, netns=netns, count=count, duration=duration)


# ---- the wiring behind the commands --------------------------------------------

def _run_monitor(names: list[str], numbers: list[int], *, all_nsid: bool, netns: str | None,
                 as_json: bool, verbose: bool, rcvbuf: int, count: int | None,
                 duration: float | None, resolve: bool) -> None:
    import gc
    import queue
    import time

    from rawlab.analysis import netlink as an
    from rawlab.errors import explain
    from rawlab.present import netlink as fmt
    from rawlab.sockets import netlink as nl

    kinds = sorted({k for g in names for k in an.KINDS_OF_GROUP.get(g, ())})
    mon = an.Monitor(kinds)
    owners = an.PortOwners() if resolve else None
    try:
        sock, got = nl.open_monitor(numbers, all_nsid=all_nsid, rcvbuf=rcvbuf)
        dsock = nl.DumpSocket()
    except OSError as exc:
        raise explain(exc, "open the rtnetlink monitor socket") from None
    links: dict[int, str] = {}

    def dump_kind(kind: str) -> list[Any]:
        return list(nl.dump_messages(dsock, an.DUMP_OF[kind]))

    drain = nl.Drain(sock).start()  # subscribed before the seeding dumps: nothing falls between
    stop, old = _stop_on_signals()
    gc.disable()
    try:
        for kind in kinds:
            mon.seed(kind, dump_kind(kind))
        for m in dump_kind("link"):
            links[m.header.get("index", 0)] = m.attrs.get("IFLA_IFNAME", "")
        where = f" in netns {netns}" if netns else ""
        click.echo(f"rawlab: monitoring {','.join(names)}{where} (rcvbuf {got >> 10} KiB"
                   f"{', all nsids' if all_nsid else ''}); Ctrl-C to stop", err=True)
        deadline = None if duration is None else time.monotonic() + duration
        write = sys.stdout.write
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        seen = 0

        def handle(batch: list[Any]) -> None:
            nonlocal seen
            for item in batch:
                feed = an.Overflow(time.time_ns()) if item is drain.OVERFLOW \
                    else an.Datagram(*item)
                for ev in mon.feed(feed):
                    if isinstance(ev, an.OverflowEvent):
                        _print_overflow(ev, as_json)
                        continue
                    if count is not None and seen >= count:
                        return
                    seen += 1
                    m = ev.msg
                    if m.type == 16 and ev.nsid is None:
                        links[m.header.get("index", 0)] = m.attrs.get("IFLA_IFNAME", "")
                    who = owners.lookup(m.pid) if owners and m.pid else None
                    if as_json:
                        write(dumps(fmt.msg_json(
                            m, event="message", n=ev.n, ts_ns=ev.ts_ns, nsid=ev.nsid,
                            group=ev.group, resynced=ev.resynced, process=None if who is None
                            else {"pid": who.pid, "comm": who.comm, "how": who.how})) + "\n")
                    else:
                        prefix = f"[nsid {ev.nsid}] " if ev.nsid is not None else ""
                        write(fmt.line(m, links.get, prefix=prefix,
                                       who=f"{who.comm}[{who.pid}]" if who else None) + "\n")
                        if verbose:
                            write("\n".join(fmt.layout(m.buf, m.offset)) + "\n")

        def take(timeout: float | None) -> bool:
            """Handle one queued batch; False once the drain has stopped."""
            batch = drain.queue.get(timeout=timeout) if timeout is not None \
                else drain.queue.get_nowait()
            if batch is None:
                if drain.error is not None:
                    raise explain(drain.error, "read the rtnetlink monitor socket")
                return False
            handle(batch)
            return True

        running = True
        while running and not stop[0] and (count is None or seen < count):
            wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if wait <= 0:
                break
            try:
                running = take(wait)
            except queue.Empty:
                continue
            if mon.resync_needed:
                # what was queued before the re-dump is older than it: handle that first
                with contextlib.suppress(queue.Empty):
                    while running:
                        running = take(None)
                for kind in sorted(mon.resync_needed):
                    for ch in mon.resync(kind, dump_kind(kind)):
                        _print_change(ch, as_json, links)
            sys.stdout.flush()
        drain.stop()
        # stopped by a signal or --duration: what the kernel already handed over is still shown
        with contextlib.suppress(queue.Empty):
            while running and (count is None or seen < count):
                running = take(None)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        gc.enable()
        drain.stop()
        sock.close()
        dsock.close()
    summary = {"messages": seen, "datagrams": drain.datagrams, "overflows": mon.overflows,
               "resync": mon.changes, "truncated": drain.truncated, "rcvbuf": got,
               "groups": names}
    if as_json:
        _emit({"summary": summary})
    else:
        click.echo(f"{seen} messages, {mon.overflows} overflows (ENOBUFS)"
                   + (f", re-dump found {mon.changes}" if mon.overflows else ""), err=True)
    sys.stdout.flush()


def _print_overflow(ev: Any, as_json: bool) -> None:
    if as_json:
        _emit({"event": "overflow", "ts_ns": ev.ts_ns, "count": ev.count,
               "resync": list(ev.resync)})
    else:
        sys.stdout.write(f"!! overflow #{ev.count}: the kernel dropped messages (ENOBUFS); "
                         f"re-dumping {', '.join(ev.resync) or 'nothing'} to show what changed\n")


def _print_change(ch: Any, as_json: bool, links: dict[int, str]) -> None:
    from rawlab.present import netlink as fmt

    if as_json:
        d = fmt.msg_json(ch.msg, event="resync", change=ch.what, kind=ch.kind)
        if ch.before is not None:
            d["before"] = fmt.msg_json(ch.before)
        _emit(d)
    else:
        sys.stdout.write(f"[resync {ch.what} {ch.kind}] {fmt.body_text(ch.msg, links.get)}\n")


def _file_records(path: str) -> Iterator[tuple[int, Any, int, int, bytes]]:
    """(frame, ts_ns, protocol, pkttype, netlink bytes) of each LINKTYPE_NETLINK record."""
    import struct

    from rawlab.errors import Exit, RawlabError
    from rawlab.pcap.reader import read_records

    lt_netlink = 253
    seen_nl = False
    frame = 0
    for rec in read_records(path):
        frame += 1
        if rec.linktype != lt_netlink:
            continue
        seen_nl = True
        data = bytes(rec.data)
        if len(data) < 16:
            yield frame, rec.ts_ns, -1, -1, data
            continue
        pkttype, _hatype, _halen = struct.unpack_from(">HHH", data)
        proto = struct.unpack_from(">H", data, 14)[0]
        yield frame, rec.ts_ns, proto, pkttype, data[16:]
    if frame and not seen_nl:
        raise RawlabError(f"{path}: no LINKTYPE_NETLINK (253) records; fix: capture with "
                          "`rawlab netlink capture` (nlmon)", Exit.BAD_INPUT)


def _hex_records(text: str, protocol: int) -> Iterator[tuple[int, Any, int, int, bytes]]:
    from rawlab.errors import Exit, RawlabError

    clean = "".join(ch for ch in text if ch not in " :\n\t-").removeprefix("0x")
    try:
        data = bytes.fromhex(clean)
    except ValueError:
        raise RawlabError(f"'{text[:40]}' is neither a file nor hex bytes; fix: give a "
                          "pcap/pcapng path or hex like 2400000018000506...", Exit.BAD_INPUT) \
            from None
    yield 1, None, protocol, -1, data


def _print_decoded(recs: Iterator[tuple[int, Any, int, int, bytes]], *, as_json: bool,
                   verbose: bool) -> None:
    from rawlab.decode.rtnl import decode_buffer
    from rawlab.present import netlink as fmt
    from rawlab.sockets import netlink as nl

    write = sys.stdout.write
    for frame, ts_ns, proto, pkttype, data in recs:
        msgs = decode_buffer(data, proto) if proto >= 0 else []
        direction = nl.nlmon_direction(pkttype, data) if pkttype >= 0 else None
        if not msgs:
            if as_json:
                _emit({"frame": frame, "ts_ns": ts_ns, "protocol": proto, "malformed": True,
                       "hex": data.hex()})
            else:
                write(f"#{frame} {len(data)} bytes: not a netlink message\n")
            continue
        for i, m in enumerate(msgs):
            if as_json:
                _emit(fmt.msg_json(m, frame=frame, msg_index=i, ts_ns=ts_ns, protocol=proto,
                                   protocol_name=fmt.PROTOCOLS.get(proto),
                                   pkttype=pkttype if pkttype >= 0 else None,
                                   direction=direction))
                continue
            arrow = {"to_kernel": "user→kernel", "to_user": "kernel→user"}.get(
                direction or "", "")
            prefix = f"#{frame}.{i} {fmt.PROTOCOLS.get(proto, proto)} {arrow} ".replace("  ", " ")
            if proto == 0:
                write(fmt.line(m, prefix=prefix) + "\n")
            else:
                write(f"{prefix}type={m.type} flags={','.join(fmt.flag_names(m.type, m.flags))}"
                      f" seq={m.seq} pid={m.pid} len={m.len}\n")
            if verbose:
                write("\n".join(fmt.layout(m.buf, m.offset, proto)) + "\n")


def _run_capture(out: str, *, netns: str | None, count: int | None,
                 duration: float | None) -> None:
    from rawlab.pcap.writer import CaptureWriter
    from rawlab.records import Direction, Interface
    from rawlab.sockets import netlink as nl
    from rawlab.sockets.monlink import monitor_link
    from rawlab.sockets.packet import open_ring

    with monitor_link("nlmon", netns=netns) as name:
        ring = None
        writer = CaptureWriter(out)
        n = 0
        try:
            ring = open_ring(name, netns=netns)
            click.echo(f"rawlab: capturing netlink on {name}"
                       f"{' in netns ' + netns if netns else ''} into {out}; nlmon sees "
                       f"{NLMON_SEES}, not {NLMON_MISSES}. Ctrl-C to stop", err=True)
            info = Interface(0, ring.linktype, 262144, name=name)
            with ring.stopped_by_signals():
                for rec in ring.records(count=count, duration=duration,
                                        block_done=writer.flush):
                    pkttype = rec.data[1] if len(rec.data) >= 2 else 0
                    toward = nl.nlmon_direction(pkttype, rec.data[16:])
                    rec.direction = (Direction.OUTBOUND if toward == "to_kernel"
                                     else Direction.INBOUND)
                    writer.write(rec, info)
                    n += 1
        finally:
            writer.close()
            if ring is not None:
                ring.close()
    click.echo(f"{n} netlink messages captured into {out}", err=True)
