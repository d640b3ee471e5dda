"""`rawlab netlink dump`: links, addresses, routes, neighbours or rules, like `ip`."""

from __future__ import annotations

import sys
from typing import Any

import click

DUMP_KINDS = ("links", "addrs", "routes", "neigh", "rules")
# ip's words for each kind, singular and plural, as `ip link|addr|route|neigh|rule` takes them
KIND_WORDS = {"link": "links", "links": "links", "addr": "addrs", "addrs": "addrs",
              "address": "addrs", "route": "routes", "routes": "routes", "neigh": "neigh",
              "neighbor": "neigh", "neighbour": "neigh", "rule": "rules", "rules": "rules"}


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


def _neigh_shown(m: Any) -> bool:
    """As `ip neigh`: entries in state NOARP or NONE only with --all."""
    return bool(m.header.get("state", 0) & ~0x40)  # NUD_NOARP


@click.command()
@click.argument("what", type=click.Choice(list(KIND_WORDS)), metavar="link|addr|route|neigh|rule")
@click.option("--table", metavar="N", help="routes/rules: a table number or main, local, "
              "default, all (routes default: main, as `ip route`).")
@click.option("--dev", metavar="IF", help="Only objects of this interface (links: just it).")
@click.option("-4", "v4", is_flag=True, help="IPv4 only (routes and rules: the default; "
              "routes of --table all: every family, as ip).")
@click.option("-6", "v6", is_flag=True, help="IPv6 only.")
@click.option("--json", "as_json", is_flag=True, help="NDJSON, one object per message "
              "(docs/json.md, netlink).")
@click.option("-v", "verbose", is_flag=True, help="pyroute2's names beside the byte layout.")
@click.option("--netns", metavar="NAME", help="Dump inside this network namespace.")
@click.option("--all", "show_all", is_flag=True, help="neigh: also NOARP and NONE entries "
              "(`ip neigh` hides them, as `nud all` shows them).")
@click.option("--ip-json", "ip_json", is_flag=True, help="NDJSON in `ip -j`'s shapes and "
              "words (dev, dst, gateway, protocol names ...; addr: each link with its "
              "addr_info), one object per line (`jq -s` makes ip's array).")
@click.option("-s", "--stats", is_flag=True, help="links: counters, as `ip -s link`.")
@click.option("-d", "--details", is_flag=True, help="links: kind, promiscuity, MTU bounds, "
              "queues, as `ip -d link`.")
@click.option("-br", "--brief", is_flag=True, help="links and addresses: one short line each, "
              "as `ip -br`.")
def dump(what: str, table: str | None, dev: str | None, v4: bool, v6: bool, as_json: bool,
         verbose: bool, netns: str | None, show_all: bool, ip_json: bool, stats: bool,
         details: bool, brief: bool) -> None:
    """Dump links, addresses, routes, neighbours or rules, filtered in the kernel.

    Like `ip link|addr|route|neigh|rule` (singular or plural): NETLINK_GET_STRICT_CHK
    and the filter attributes iproute2 sends, each reply decoded as it arrives.
    """
    import gc

    from rawlab.errors import Exit, RawlabError, explain
    from rawlab.sockets import netlink as nl
    from rawlab.sockets.netns import entered

    what = KIND_WORDS[what]
    if v4 and v6:
        raise click.UsageError("choose one of -4, -6")
    if sum((as_json, verbose, ip_json, brief)) > 1:
        raise click.UsageError("choose one of -v, --json, --ip-json, -br")
    if brief and what not in ("links", "addrs"):
        raise click.UsageError("-br shows links and addresses (as `ip -br`)")
    view = {"ip_json": ip_json, "stats": stats, "details": details, "brief": brief,
            "table_asked": table is not None and table != "all"}
    # as ip: routes of one table are IPv4 unless -6 says otherwise; `table all`, every family
    family = 2 if v4 else 10 if v6 else (
        2 if what == "rules" or (what == "routes" and table != "all") else 0)
    tid = _table(table)
    if what == "routes" and tid is None:
        tid = 254
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
        kw = {"family": family, "table": tid or None, "ifindex": ifindex}
        keep = _neigh_shown if what == "neigh" and not show_all else None
        if ip_json or stats or details or brief:
            _print_view(sock, what, kw, keep=keep, view=view)
        elif what == "links" and ifindex:  # the one link: a dump of all, kept by index
            _print(sock, what, {}, as_json=as_json, verbose=verbose,
                   keep=lambda m: m.header.get("index") == ifindex)
        elif as_json:
            _print_shapes(sock, what, kw, keep=keep)
        else:
            _print(sock, what, kw, as_json=False, verbose=verbose, keep=keep)
        if sock.interrupted:  # as iproute2 says it, on stderr; the output is still complete
            sys.stdout.flush()
            click.echo("rawlab: warning: the dump was interrupted (NLM_F_DUMP_INTR: the table "
                       "changed while the kernel was sending it) and may be inconsistent; run "
                       "it again for a consistent view", err=True)
    except BrokenPipeError:
        raise
    except nl.NetlinkError as exc:
        raise exc.refused(f"dump {what}" + (f" (table {table})" if table else "")) from None
    except OSError as exc:
        raise explain(exc, f"dump {what}") from None
    finally:
        gc.enable()
        sock.close()


def _print(sock: Any, what: str, kw: dict[str, Any], *, as_json: bool, verbose: bool,
           keep: Any) -> None:
    """Decoded messages, one line each (ip's words, or JSON)."""
    from rawlab.analysis.netlink import dump_messages
    from rawlab.present import netlink as fmt

    names: dict[int, str] = {}
    if not as_json and what != "links":
        names = {m.header.get("index", 0): m.attrs.get("IFLA_IFNAME", "")
                 for m in dump_messages(sock, "links")}
    write = sys.stdout.write
    for m in filter(keep, dump_messages(sock, what, **kw)):
        if as_json:
            write(fmt.encode(fmt.msg_json(m)) + "\n")
            continue
        write(fmt.body_text(m, names.get) + "\n")
        if verbose:
            write("\n".join(fmt.layout(m.buf, m.offset)) + "\n")


def _print_view(sock: Any, what: str, kw: dict[str, Any], *, keep: Any,
                view: dict[str, bool]) -> None:
    """`ip -j`'s shapes, `ip -br`'s lines, or ip's lines with -s / -d (``view``: which, and
    whether a table was named)."""
    ip_json, stats, details, brief = (view["ip_json"], view["stats"], view["details"],
                                      view["brief"])
    table_asked = view["table_asked"]
    from rawlab.analysis.netlink import dump_messages
    from rawlab.present import ip_json as ipj
    from rawlab.present import netlink as fmt

    links = list(dump_messages(sock, "links"))
    names = {m.header.get("index", 0): m.attrs.get("IFLA_IFNAME", "") for m in links}.get
    ifindex = kw.get("ifindex")
    shown = [m for m in links if not ifindex or m.header.get("index") == ifindex]
    write = sys.stdout.write
    if what == "addrs":
        by: dict[int, list[Any]] = {}
        for m in dump_messages(sock, "addrs", **kw):
            by.setdefault(m.header.get("index", 0), []).append(m)
        for link in shown:
            mine = by.get(link.header.get("index", 0), [])
            if brief:
                write(ipj.brief_addr(link, mine, names) + "\n")
            elif ip_json:
                write(fmt.encode(ipj.addr_json(link, mine, names)) + "\n")
            else:
                write(fmt.body_text(link, names) + "\n")
                write("".join(f"    {fmt.body_text(m, names)}\n" for m in mine))
        return
    items = shown if what == "links" else filter(keep, dump_messages(sock, what, **kw))
    one = {"routes": lambda m: ipj.route_json(m, names, table_asked=table_asked),
           "neigh": lambda m: ipj.neigh_json(m, names), "rules": ipj.rule_json,
           "links": lambda m: ipj.link_json(m, names, stats=stats, details=details)}[what]
    for m in items:
        if brief:
            write(ipj.brief_link(m, names) + "\n")
        elif ip_json:
            write(fmt.encode(one(m)) + "\n")
        else:
            write(fmt.body_text(m, names) + "\n")
            if what == "links" and details:
                write(ipj.details_line(m) + "\n")
            if what == "links" and stats:
                write("".join(line + "\n" for line in ipj.stats_lines(m)))


def _print_shapes(sock: Any, what: str, kw: dict[str, Any], *, keep: Any) -> None:
    """NDJSON of one dump; messages that repeat a shape are printed by its template."""
    from rawlab.decode.rtnl import FILTER_FIELDS, dump_filter
    from rawlab.present.netlink import encode
    from rawlab.present.netlink_shapes import ShapeRenderer
    from rawlab.sockets.netlink import dump_buffers

    bufs = dump_buffers(sock, what, read_ahead=True, **kw)
    wanted = dump_filter(what, strict=sock.strict, **kw)  # what the kernel could not filter
    literal = FILTER_FIELDS if wanted is not None else frozenset()
    if keep is not None:  # neighbours: as `ip neigh`
        literal |= {"state"}  # the shape templates must not make it a slot
        kernel = wanted

        def wanted(m: Any) -> bool:
            return bool(keep(m)) and (kernel is None or kernel(m))

    shapes = ShapeRenderer(encode, keep=wanted, literal=frozenset(literal))
    from rawlab.present.fmt import write_all

    sys.stdout.flush()
    raw = sys.stdout.buffer
    for lines in shapes.render_stream(bufs):
        write_all(raw, lines)


# ---- route get ---------------------------------------------------------------------------

@click.group()
def route() -> None:
    """Routes one at a time: `route get ADDRESS`, as `ip route get`."""


@route.command("get")
@click.argument("address")
@click.option("--from", "src", metavar="ADDR", help="Source address (ip route get ... from).")
@click.option("--iif", metavar="IF", help="As if received on this interface.")
@click.option("--oif", metavar="IF", help="Out through this interface.")
@click.option("--mark", type=click.IntRange(0, 0xFFFFFFFF), metavar="N", help="Firewall mark.")
@click.option("--netns", metavar="NAME", help="Ask inside this network namespace.")
@click.option("--json", "as_json", is_flag=True, help="The reply as one JSON object "
              "(docs/json.md, netlink).")
@click.option("--ip-json", "ip_json", is_flag=True, help="In `ip -j route get`'s shape.")
def get(address: str, src: str | None, iif: str | None, oif: str | None, mark: int | None,
        netns: str | None, as_json: bool, ip_json: bool) -> None:
    """The route the kernel picks for ADDRESS (RTM_GETROUTE), as `ip route get` shows it."""
    import ipaddress

    from rawlab.analysis.netlink import dump_messages
    from rawlab.decode.rtnl import decode_buffer
    from rawlab.errors import Exit, RawlabError, explain
    from rawlab.present import ip_json as ipj
    from rawlab.present import netlink as fmt
    from rawlab.sockets import netlink as nl
    from rawlab.sockets.netns import entered

    if as_json and ip_json:
        raise click.UsageError("choose one of --json, --ip-json")
    try:
        dst = ipaddress.ip_address(address)
        source = ipaddress.ip_address(src) if src else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with entered(netns):
        try:
            sock = nl.DumpSocket()
        except OSError as exc:
            raise explain(exc, "open a NETLINK_ROUTE socket") from None
    try:
        index = {}
        for name in (n for n in (iif, oif) if n):
            index[name] = sock.link_index(name)
            if index[name] is None:
                raise RawlabError(f"no device named '{name}'; fix: check `ip link`",
                                  Exit.USAGE)
        replies = sock.request(*nl.route_get_request(
            dst.packed, source.packed if source else None, iif=index.get(iif or ""),
            oif=index.get(oif or ""), mark=mark))
        names = {m.header.get("index", 0): m.attrs.get("IFLA_IFNAME", "")
                 for m in dump_messages(sock, "links")}.get
    except nl.NetlinkError as exc:
        raise exc.refused(f"route get {address}") from None
    except OSError as exc:
        raise explain(exc, f"route get {address}") from None
    finally:
        sock.close()
    for raw in replies:
        for m in decode_buffer(raw.buf[raw.offset:raw.end]):
            if as_json:
                click.echo(fmt.encode(fmt.msg_json(m)))
            elif ip_json:
                click.echo(fmt.encode(ipj.route_json(m, names)))
            else:
                click.echo(fmt.route_get_text(m, names))
