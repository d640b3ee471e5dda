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

    Like `ip link|addr|route|neigh|rule` (singular or plural): NETLINK_GET_STRICT_CHK and the filter
    attributes iproute2 sends, each reply decoded as it arrives.
    """
    import gc

    from rawlab.errors import Exit, RawlabError, explain
    from rawlab.sockets import netlink as nl
    from rawlab.sockets.netns import entered

    what = KIND_WORDS[what]
    if v4 and v6:
        raise click.UsageError("choose one of -4, -6")
    if as_json and verbose:
        raise click.UsageError("choose one of -v, --json")
    family = 2 if v4 else 10 if v6 else (2 if what in ("routes", "rules") else 0)
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
        if what == "links" and ifindex:  # the one link: a dump of all, kept by index
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
    sys.stdout.flush()
    out = sys.stdout.buffer.write
    for lines in shapes.render_stream(bufs):
        out(lines)
