"""`rawlab netlink trace -- CMD ARGS`: a command's netlink conversation, decoded, in order."""

from __future__ import annotations

import sys
from typing import Any

import click


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--netns", metavar="NAME", help="Run the command inside this network namespace.")
@click.option("--json", "as_json", is_flag=True, help="NDJSON: one object per message, then a "
              "summary (docs/json.md, netlink trace).")
@click.option("-v", "verbose", is_flag=True, help="pyroute2's names beside the byte layout.")
@click.option("-w", "out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the conversation to FILE (pcapng, LINKTYPE_NETLINK).")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD [ARGS]")
def trace(netns: str | None, as_json: bool, verbose: bool, out: str | None,
          argv: tuple[str, ...]) -> None:
    """Run CMD and show its netlink conversation: each request, the kernel's replies,
    ACKs and errors with the extended-ACK text, decoded, in order, with the time since
    CMD started (like strace's netlink decoding, for every family rawlab decodes).

    The messages come from an nlmon link in CMD's namespace (removed afterwards,
    whatever happens); they are CMD's when they go through the ports of its netlink
    sockets, or its children's (NETLINK_DIAG while it runs, and the pid in the port
    id). A notification CMD's change caused is shown once, with the number of
    sockets it went to. CMD's standard output goes to standard error (standard
    output carries the conversation). Exits with CMD's exit status. Needs nlmon (`rawlab lab vm
    -m nlmon -- ...` where the kernel lacks it).
    """
    from rawlab.analysis.netlink_trace import Conversation
    from rawlab.decode.genl import GenlIds, families_of
    from rawlab.decode.netlink import nlmon_record
    from rawlab.errors import Exit, RawlabError
    from rawlab.present import netlink_trace as fmt
    from rawlab.present.netlink import encode
    from rawlab.sockets.genl import family_dump
    from rawlab.sockets.netlink_trace import TraceSession
    from rawlab.sockets.netns import entered

    cmd = list(argv)
    if as_json and verbose:
        raise click.UsageError("choose one of -v, --json")
    with entered(netns):
        ids = GenlIds.of(families_of(family_dump()))
    writer = None
    if out:
        from rawlab.pcap.writer import CaptureWriter

        writer = CaptureWriter(out)  # opened first: an unwritable path fails before CMD runs
    click.echo(f"rawlab: tracing {' '.join(cmd)}{f' in netns {netns}' if netns else ''} "
               "through nlmon", err=True)
    try:
        with TraceSession(cmd, netns=netns) as t:
            code = t.run()
    except FileNotFoundError:
        raise RawlabError(f"no command '{cmd[0]}'; fix: give a program on PATH or its path",
                          Exit.USAGE) from None
    if t.watch_error is not None:
        click.echo(f"rawlab: warning: could not follow the command's sockets "
                   f"({t.watch_error}); only ports equal to its pid were matched", err=True)
    conv = Conversation(t.ports, t.pids, genl=ids,
                        foreign=None if t.watch_error else t.foreign)
    steps = conv.steps((r.ts_ns, *nlmon_record(bytes(r.data)), r) for r in t.records)
    summary = fmt.trace_summary(cmd, code, steps, t.ended_ns - t.started_ns, conv.unmatched,
                                conv.others)
    write = sys.stdout.write
    if as_json:
        for d in fmt.trace_json(steps, t.started_ns):
            write(encode(d) + "\n")
        write(encode({"summary": summary}) + "\n")
    else:
        for text in fmt.trace_lines(steps, t.started_ns, verbose=verbose, genl=ids):
            write(text + "\n")
        click.echo(fmt.summary_text(summary), err=True)
    if writer is not None:
        _write(writer, steps, t)
    sys.stdout.flush()
    if code:
        raise SystemExit(code)


def _write(writer: Any, steps: list[Any], t: Any) -> None:
    """The conversation's records, as captured, into the -w file (direction in the flags:
    to the kernel outbound, to a socket inbound, as `netlink capture` writes them)."""
    from rawlab.records import Direction, Interface

    info = Interface(0, t.linktype, 262144, name=t.ifname)
    try:
        for st in steps:
            st.raw.direction = (Direction.OUTBOUND if st.direction == "to_kernel"
                                else Direction.INBOUND)
            writer.write(st.raw, info)
    finally:
        writer.close()
