"""`rawlab netlink sockets` (sock_diag, like `ss`), `rawlab netlink genl` (`genl ctrl list`)."""

from __future__ import annotations

import json
import socket
import sys

import click


def _ifnames() -> dict[int, str]:
    try:
        return dict(socket.if_nameindex())
    except OSError:
        return {}


@click.command()
@click.option("-t", "--tcp", "kinds", flag_value="tcp", multiple=True, help="TCP (the default).")
@click.option("-u", "--udp", "kinds", flag_value="udp", multiple=True, help="UDP.")
@click.option("-x", "--unix", "kinds", flag_value="unix", multiple=True, help="Unix sockets.")
@click.option("--vsock", "kinds", flag_value="vsock", multiple=True,
              help="AF_VSOCK sockets (needs vsock_diag), with their type by name.")
@click.option("--netlink", "kinds", flag_value="netlink", multiple=True,
              help="Netlink sockets (needs netlink_diag).")
@click.option("--packet", "kinds", flag_value="packet", multiple=True,
              help="AF_PACKET sockets (needs af_packet_diag).")
@click.option("-4", "fams", flag_value=4, multiple=True, type=int, help="TCP/UDP over IPv4 only.")
@click.option("-6", "fams", flag_value=6, multiple=True, type=int, help="TCP/UDP over IPv6 only.")
@click.option("--state", "states", multiple=True, metavar="S",
              help="Only sockets in state S (repeatable): established, syn-sent, syn-recv, "
              "fin-wait-1, fin-wait-2, time-wait, closed, close-wait, last-ack, listening, "
              "closing; groups all, connected, synchronized, bucket.")
@click.option("-l", "--listening", is_flag=True, help="Only listening (and unconnected UDP) "
              "sockets.")
@click.option("-a", "--all", "all_states", is_flag=True, help="Sockets in every state.")
@click.option("-i", "--info", is_flag=True, help="TCP: all of tcp_info, the congestion "
              "algorithm and its info, socket memory; others: their extra facts.")
@click.option("-p", "--processes", is_flag=True, help="Which processes hold each socket "
              "(from /proc/*/fd).")
@click.option("-n", "--numeric", "_numeric", count=True, expose_value=False,
              help="Accepted (as `ss -n`): rawlab never resolves addresses, ports or users.")
@click.option("-H", "--no-header", is_flag=True, help="No header line.")
@click.option("--json", "as_json", is_flag=True, help="NDJSON, one object per socket "
              "(docs/json.md, netlink sockets).")
@click.option("--netns", metavar="NAME", help="List the sockets of this network namespace.")
@click.option("-o", "--options", "timers", is_flag=True, help="Timers, as `ss -o`: "
              "timer:(name,time left,retransmits).")
@click.option("-e", "--extended", is_flag=True, help="uid, inode, socket cookie, mark and "
              "cgroup at the end of each line, as `ss -e`.")
@click.option("-m", "--memory", is_flag=True, help="Socket memory (skmem), as `ss -m`.")
@click.option("-s", "--summary", is_flag=True, help="Counts by protocol, as `ss -s` "
              "(/proc/net/sockstat, sockstat6, snmp).")
@click.argument("expression", nargs=-1, metavar="[FILTER]")
def sockets(kinds: tuple[str, ...], fams: tuple[int, ...], states: tuple[str, ...],
            listening: bool, all_states: bool, info: bool, processes: bool, no_header: bool,
            as_json: bool, netns: str | None, timers: bool, extended: bool, memory: bool,
            summary: bool, expression: tuple[str, ...]) -> None:
    """List sockets through sock_diag, like `ss`: one line per socket.

    Default: TCP sockets that are not listening (as `ss -t`). With --info, every
    field of tcp_info the kernel returned, decoded right (wscale nibbles
    included), the congestion algorithm with its BBR/DCTCP/Vegas info, and skmem.
    vsock sockets show their type (STREAM, SEQPACKET, DGRAM) by name.

    FILTER is ss's: `state NAME`/`exclude NAME`, then an expression of `sport`,
    `dport` (OP :PORT), `src`, `dst` (ADDR[/LEN][:PORT]) with and, or, not and
    parentheses, e.g. `state established '( dport = :443 or sport = :22 )'`. The
    expression is compiled to the kernel's inet_diag bytecode, as ss does, and
    the kernel applies it to TCP and UDP sockets.
    """
    from rawlab.decode.sock_diag import sockets_of
    from rawlab.present import diag as present
    from rawlab.sockets import diag
    from rawlab.sockets.diag_filter import parse
    from rawlab.sockets.proc import inode_owners

    if listening and all_states:
        raise click.UsageError("choose one of --listening, --all")
    if summary:
        _summary(netns)
        return
    expr = parse(list(expression))
    explicit = diag.parse_states(list(states)) if states else 0
    if expr.states is not None:
        explicit = (explicit or 0) | expr.states
    families = [{4: socket.AF_INET, 6: socket.AF_INET6}[f] for f in dict.fromkeys(fams)] \
        or [socket.AF_INET, socket.AF_INET6]
    from rawlab.sockets.netns import entered

    with entered(netns):
        socks = sockets_of(diag.collect(list(dict.fromkeys(kinds)) or ["tcp"], families,
                                        listening=listening, all_states=all_states,
                                        explicit_states=explicit, info=info, memory=memory,
                                        bytecode=expr.bytecode))
        ifnames = _ifnames()
    owners = inode_owners() if processes else None
    out = sys.stdout
    if as_json:
        for s in socks:
            out.write(json.dumps(present.socket_json(s, owners=owners)) + "\n")
        return
    for line in present.socket_table(socks, info=info, header=not no_header, ifnames=ifnames,
                                     owners=owners, timers=timers, extended=extended,
                                     memory=memory):
        out.write(line + "\n")


def _summary(netns: str | None) -> None:
    """`ss -s`: the namespace's socket counts."""
    from rawlab.present import diag as present
    from rawlab.sockets.netns import entered
    from rawlab.sockets.proc import sockstat

    with entered(netns):
        counts = sockstat()
    sys.stdout.write("".join(line + "\n" for line in present.summary_lines(counts)))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="NDJSON, one object per family "
              "(docs/json.md, netlink genl).")
@click.option("--netns", metavar="NAME", help="Ask inside this network namespace.")
def genl(as_json: bool, netns: str | None) -> None:
    """List generic netlink families with their ops and multicast groups (like
    `genl ctrl list`)."""
    from rawlab.decode.genl import families_of
    from rawlab.errors import RawlabError
    from rawlab.present import diag as present
    from rawlab.sockets.genl import family_dump
    from rawlab.sockets.netns import entered

    with entered(netns):
        fams = families_of(family_dump())
    if not fams:
        raise RawlabError("generic netlink returned no families (not even nlctrl)")
    out = sys.stdout
    if as_json:
        for f in fams:
            out.write(json.dumps(present.genl_json(f)) + "\n")
        return
    for line in present.genl_text(fams):
        out.write(line + "\n")
