"""Option types every command shares, checked when the command line is parsed.

``Seconds()`` accepts a finite number of seconds > 0 (not nan, not inf, not 0 or
negative, which would end a capture at once or never); ``Seconds(lo, hi)`` bounds it.
"""

from __future__ import annotations

import math
from typing import Any

import click


class Seconds(click.ParamType):
    """A finite duration in seconds, > `lo` (default 0) and ≤ `hi` (default none)."""

    name = "seconds"

    def __init__(self, lo: float = 0.0, hi: float | None = None, *, lo_open: bool = True):
        self.lo = lo
        self.hi = hi
        self.lo_open = lo_open

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, float):
            v = value
        else:
            try:
                v = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        if v < self.lo or (self.lo_open and v == self.lo):
            self.fail(f"{value!r} must be {'>' if self.lo_open else '≥'} {self.lo:g} seconds",
                      param, ctx)
        if self.hi is not None and v > self.hi:
            self.fail(f"{value!r} must be ≤ {self.hi:g} seconds", param, ctx)
        return v

    def __repr__(self) -> str:
        return "SECONDS"


class Size(click.ParamType):
    """A byte count: 1, 4K, 64KiB, 32M (rawlab.sockets.vsockbench.parse_size's forms);
    a bad one is reported under the option's name as typed (--buffer-size)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from rawlab.sockets.vsockbench import parse_size

        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SNAPLEN_MAX = 262144  # libpcap's MAXIMUM_SNAPLEN: what -s 0 means, as in tcpdump


def snaplen(value: int) -> int:
    """tcpdump's -s: 0 means the maximum."""
    return value or SNAPLEN_MAX


def line_style_options(f: Any) -> Any:
    """How packets are printed, the same on `read` and `capture`: -v.. (tree), --json, and
    tcpdump's habits for the one-line view: -t.., -e, -x/-xx, -X/-XX, -A, --payload, -S,
    -q, --color, and -n/-nn (accepted: rawlab never resolves names). The command takes
    `verbose` and `as_json`, and the rest through :func:`pop_line_style`."""
    opts = [
        click.option("-v", "verbose", count=True, help="Every field of every layer, with "
                     "offsets (-vv: and the frame in hex and ASCII; -vvv: and each layer's "
                     "own bytes)."),
        click.option("--json", "as_json", is_flag=True, help="NDJSON, one object per packet "
                     "(docs/json.md, packet)."),
        click.option("-t", "t_count", count=True, help="-t no time, -tt seconds since the "
                     "epoch, -ttt since the previous packet, -tttt with the date, -ttttt "
                     "since the first packet (as tcpdump)."),
        click.option("-e", "link", is_flag=True, help="Print the link-level header "
                     "(MAC addresses, ethertype, VLAN tags; the cooked header)."),
        click.option("-x", "x_count", count=True, help="Hex dump from the network header "
                     "(-xx: from the link header)."),
        click.option("-X", "xa_count", count=True, help="Hex and ASCII dump from the network "
                     "header (-XX: from the link header)."),
        click.option("-A", "ascii_dump", is_flag=True, help="Each packet in ASCII."),
        click.option("--payload", "payload_dump", is_flag=True, help="Hex and ASCII of the "
                     "transport payload only."),
        click.option("-S", "absolute", is_flag=True, help="Absolute TCP sequence numbers "
                     "(default: relative, as tcpdump)."),
        click.option("-q", "quick", is_flag=True, help="Quick output: less protocol "
                     "information (tcpdump -q); with -w: print nothing per packet."),
        click.option("--color", "--colour", "colour", type=click.Choice(["auto", "always",
                     "never"]), default="auto", show_default=True, help="Colours: on a "
                     "terminal (auto) unless NO_COLOR is set."),
        click.option("-n", "_numeric", count=True, expose_value=False, help="Accepted "
                     "(-n, -nn): rawlab never resolves addresses, ports or protocols."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def line_style(t_count: int, link: bool, x_count: int, xa_count: int, ascii_dump: bool,
               payload_dump: bool, absolute: bool = False, quick: bool = False,
               colour: str = "auto") -> Any:
    """The LineStyle the -t/-e/-x/-X/-A/--payload counts ask for."""
    from rawlab.present.tcpdump import Clock, LineStyle

    if sum((bool(x_count), bool(xa_count), ascii_dump, payload_dump)) > 1:
        raise click.UsageError("choose one of -x, -X, -A, --payload")
    forms = ("time", "", "epoch", "delta", "date", "since")
    clock = None if t_count == 0 else Clock(forms[min(t_count, 5)])
    dump = ("XX" if xa_count > 1 else "X" if xa_count else "xx" if x_count > 1 else
            "x" if x_count else "A" if ascii_dump else "payload" if payload_dump else "")
    import sys

    from rawlab.present.colour import wants_colour

    return LineStyle(clock, link, dump, absolute, quick, wants_colour(sys.stdout, colour))


def pop_line_style(kw: dict[str, Any]) -> Any:
    """Take the options of :func:`line_style_options` out of a command's keyword arguments."""
    return line_style(kw.pop("t_count"), kw.pop("link"), kw.pop("x_count"),
                      kw.pop("xa_count"), kw.pop("ascii_dump"), kw.pop("payload_dump"),
                      kw.pop("absolute"), kw.pop("quick"), kw.pop("colour"))


def process_options(f: Any) -> Any:
    """``--processes``, ``--pid``, ``--comm``, ``--cgroup``: who sent it (live captures)."""
    for opt in reversed([
        click.option("--processes", is_flag=True,
                     help="Attribute every TCP/UDP flow (and ICMP echo) to the processes at "
                          "its ends (sock_diag + /proc, no eBPF): shown beside each endpoint, in "
                          "--json, and as packet comments in -w files. A TCP client is "
                          "asked for as its SYN passes (a second packet socket that sees "
                          "only SYNs), so one that has exited by the time the capture "
                          "reads its packets is still named."),
        click.option("--pid", "pids", type=click.IntRange(min=1), multiple=True,
                     metavar="PID", help="Keep only the flows of process PID (repeatable; "
                     "implies --processes)."),
        click.option("--comm", "comms", multiple=True, metavar="NAME",
                     help="Keep only the flows of processes named NAME (as in "
                          "/proc/PID/comm; repeatable; implies --processes)."),
        click.option("--cgroup", "cgroups", multiple=True, metavar="PATH",
                     help="Keep only the flows of processes in cgroup PATH or below it "
                          "(repeatable; implies --processes)."),
    ]):
        f = opt(f)
    return f


def pop_processes(kw: dict[str, Any], netns: str | None) -> Any:
    """The Attribution the process options ask for (None without them); its lookup is
    started here: namespaces found, every existing socket's owner learnt."""
    pids, comms, cgroups = kw.pop("pids"), kw.pop("comms"), kw.pop("cgroups")
    if not (kw.pop("processes") or pids or comms or cgroups):
        return None
    from rawlab.analysis.processes import Attribution, ProcessMatch
    from rawlab.sockets.owners import OwnerLookup

    look = OwnerLookup(netns)
    look.start()
    return Attribution(look, ProcessMatch(frozenset(pids), frozenset(comms), tuple(cgroups)))


def watch_syns(attribution: Any, iface: str, netns: str | None, bpf: str | None) -> Any:
    """With attribution, live: the SYN watch (rawlab.analysis.syn_watch) beside the ring,
    started; the caller closes it before the lookup. None without attribution."""
    if attribution is None:
        return None
    from rawlab.analysis.syn_watch import SynWatch

    return SynWatch(attribution.lookup, iface, netns=netns, bpf=bpf).start()


def narrow_filter(bpf: str | None, attribution: Any) -> str | None:
    """With a process filter, the kernel keeps only TCP, UDP and ICMP (the rest could
    never be attributed); the processes' own flows are chosen in user space as they
    appear."""
    if attribution is None or attribution.match is None:
        return bpf
    kinds = "tcp or udp or icmp or icmp6"
    return f"({kinds}) and ({bpf})" if bpf else kinds


class KeylogFile(click.ParamType):
    """An SSLKEYLOGFILE (NSS key log: ``CLIENT_RANDOM``, ``*_TRAFFIC_SECRET_0`` ... lines),
    read when the command line is parsed: the value is a
    :class:`rawlab.analysis.tls_decrypt.KeyLog`. A file that cannot be read, or holds no
    secret, fails here (exit 2) with what is wrong."""

    name = "keylog"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from rawlab.analysis.tls_decrypt import KeyLog

        if isinstance(value, KeyLog):
            return value
        try:
            with open(value, encoding="ascii", errors="replace") as f:
                keys = KeyLog.parse(f.read())
        except OSError as exc:
            self.fail(f"cannot read {value}: {exc.strerror}", param, ctx)
        if not len(keys):
            self.fail(f"{value} holds no TLS secrets (expected lines like "
                      "'CLIENT_RANDOM <hex> <hex>')", param, ctx)
        return keys
