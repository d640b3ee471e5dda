"""`rawlab tcp`: TCP connections of a capture file, or live: the columnar summary
(tcptrace's figures) or the exact analyser (Wireshark's rules)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any

import click

from rawlab.cli.options import (
    KeylogFile,
    Seconds,
    narrow_filter,
    pop_processes,
    process_options,
    watch_syns,
)


@click.command()
@click.argument("file", required=False, type=click.Path(allow_dash=True, readable=False))
@click.option("-i", "iface", metavar="IFACE", help="Analyse live traffic on IFACE (or 'any') "
              "instead of a file; Ctrl-C ends it and prints the table.")
@click.option("-f", "--filter", "filt", metavar="EXPR", help="Live: a tcpdump filter ANDed "
              "with 'tcp'.")
@click.option("--netns", metavar="NAME", help="Live: capture inside this network namespace.")
@click.option("-c", "count", type=click.IntRange(min=1), metavar="N",
              help="Stop after N packets (of the file, or captured).")
@click.option("--duration", type=Seconds(), metavar="SECONDS", help="Live: stop after SECONDS.")
@click.option("--ring-mb", type=click.IntRange(min=1), default=64, show_default=True,
              help="Live: capture ring size.")
@click.option("--json", "as_json", is_flag=True,
              help="NDJSON: one `segment` record per TCP segment and one `connection` record "
              "when each connection ends (docs/json.md, tcp).")
@click.option("--stream", "stream", type=click.IntRange(min=0), metavar="N",
              help="Only stream N (tshark's tcp.stream numbering).")
@click.option("--follow", "follow", type=click.IntRange(min=0), metavar="N",
              help="Print the reassembled payload of stream N, each direction.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False), metavar="PNG",
              help="Write a time-sequence graph of the stream (--stream, else the biggest) "
              "to PNG (needs the `plot` extra).")
@click.option("--ladder", is_flag=True, help="A sequence diagram: one arrow per segment.")
@click.option("--parquet", "parquet", metavar="DIR", help="Write the connections and segments "
              "tables (docs/tables.md) to the dataset DIR (DIR/connections, DIR/segments, "
              "Hive-partitioned by date and hour) instead of printing; more FILEs may follow.")
@click.argument("more", nargs=-1, type=click.Path(dir_okay=True, readable=False),
                metavar="[FILE...]")
@click.option("--exact", is_flag=True, help="The table from the exact analyser (Wireshark's "
              "rules, as --json) instead of the columnar summary (tcptrace's figures).")
@click.option("--keylog", type=KeylogFile(), metavar="FILE",
              help="Also print each application message as it completes (TLS records, "
              "decrypted with the secrets in FILE, SSLKEYLOGFILE format, and the HTTP/1.x "
              "inside), before the connection table.")
@process_options
def tcp(file: str | None, iface: str | None, filt: str | None, netns: str | None,
        count: int | None, duration: float | None, ring_mb: int, as_json: bool,
        stream: int | None, follow: int | None, plot: str | None, ladder: bool,
        parquet: str | None, more: tuple[str, ...], exact: bool, keylog: Any,
        **kw: Any) -> None:
    """Analyse the TCP connections in a pcap or pcapng FILE ('-' for stdin), or live
    on an interface (-i).

    Default: one line per connection — endpoints, Zeek-style state and history,
    initial RTT, payload bytes each way, retransmissions, TCP flags seen and what
    was counted. For a file it comes from the columnar summary (batches of
    columns, a compiled pass a segment): rtx and the counts (out_of_order,
    zero_window_probe, zero_window, sack, dsack) are tcptrace's (`tcptrace -l`).
    --exact, --json, --ladder, --follow, --keylog, --plot, --stream and live use
    the exact analyser: Wireshark 4.0's sequence
    analysis frame for frame, its expert flags counted (retransmission,
    duplicate_ack, out_of_order, zero_window ...); of a regular file it reads the
    segments the columns hold from them (the same output), of stdin or a FIFO each
    segment as it arrives. Live, events print as they happen
    (a handshake completing, a retransmission, a connection ending), gaps the
    kernel's own capture drops explain are marked `capture loss`, and the table
    follows on exit.

    Live, --processes adds the process at each end (client process, server process
    columns; the ladder's heads; `process` in --json connection records); --pid,
    --comm and --cgroup keep only those processes' connections. A pcapng FILE written
    with `capture --processes` shows the same columns.

    --parquet DIR writes the connections and segments tables instead (of each FILE, or
    live), for `rawlab sql` and any Parquet engine.
    """
    from rawlab import pipeline

    if sum(map(bool, (as_json, follow is not None, ladder))) > 1:
        raise click.UsageError("choose one of --json, --follow, --ladder")
    if (file is None) == (iface is None):
        raise click.UsageError("give a FILE or -i IFACE (one of them)")
    if iface is None and any(kw.values()):
        raise click.UsageError("--processes, --pid, --comm and --cgroup need -i (live)")
    if (more or (file and os.path.isdir(file))) and not parquet:
        raise click.UsageError("several FILEs (or a directory of captures) need --parquet")
    if parquet and file is not None:
        if any((as_json, follow is not None, ladder, plot, stream is not None,
                keylog is not None)):
            raise click.UsageError("--parquet writes the tables: not with --json, --follow, "
                                   "--ladder, --plot, --stream, --keylog")
        _parquet([file, *more], parquet, count)
        return
    if iface is None and not (as_json or follow is not None or ladder or plot or exact
                              or stream is not None or keylog is not None):
        from rawlab.decode.columns import open_batches
        from rawlab.present.tcp import SummarySink

        # (read's batch size: bigger ones were no faster and crossed 64 MiB of RSS; from
        # a regular file the next batch is read on a second core while the summary runs)
        with open_batches(sys.stdin.buffer if file == "-" else file, ahead=2) as src:
            pipeline.run_batches(src, [SummarySink(sys.stdout)], count=count)
        return
    from rawlab.analysis.tcp import TcpAnalyzer

    # a regular file is read as batches; a pipe or FIFO record by record, each segment
    # printed as it arrives (batches wait for a MiB)
    whole = iface is None and file != "-" and os.path.isfile(file)
    sinks, plotter = _sinks(as_json, follow, ladder, plot, live=iface is not None,
                            hold=whole)
    if parquet:
        from rawlab.present.parquet import TcpParquetSink

        sinks = [TcpParquetSink(parquet, f"live-{iface}-{time.strftime('%Y%m%d-%H%M%S')}")]
    if keylog is not None:
        if as_json or follow is not None or ladder:
            raise click.UsageError("--keylog prints message lines: not with --json, --follow, "
                                   "--ladder")
        from rawlab.present.app.messages import MessageSink

        sinks.insert(0, MessageSink(sys.stdout, keylog))
    analyzer = TcpAnalyzer()
    if whole and follow is None and keylog is None:
        from rawlab.decode.columns import open_batches

        # (the segments the columns hold are read from them: no sink here needs a
        # record beside its fields; a followed stream and --keylog need the payload.
        # One batch read ahead: the analyser takes ~20x longer over one than the reading)
        with open_batches(sys.stdin.buffer if file == "-" else file, ahead=1) as src:
            pipeline.run_tcp_batches(src, sinks, analyzer=analyzer, stream=stream,
                                     count=count)
    elif iface is None:
        from rawlab.pcap.reader import open_file

        with open_file(sys.stdin.buffer if file == "-" else file) as cap:
            pipeline.run_tcp(cap, sinks, analyzer=analyzer, stream=stream, count=count)
    else:
        _live(iface, filt, netns, count, duration, ring_mb, sinks, analyzer, stream,
              pop_processes(kw, netns))
    wanted = stream if stream is not None else follow
    if wanted is not None and wanted >= analyzer.streams:
        from rawlab.errors import Exit, RawlabError

        have = f"streams 0-{analyzer.streams - 1}" if analyzer.streams else "no TCP streams"
        raise RawlabError(f"no TCP stream {wanted}: the capture has {have}", Exit.FAILED)
    if plotter is not None:
        if plotter.saved is None:
            raise click.ClickException("no TCP segments to plot")
        click.echo(f"wrote {plotter.saved[0]} (stream {plotter.saved[1]})", err=True)


def _parquet(inputs: list[str], out: str, count: int | None) -> None:
    """--parquet with files: each capture's tables, files named after it."""
    from rawlab import pipeline
    from rawlab.errors import Exit, RawlabError
    from rawlab.pcap.reader import open_file
    from rawlab.present.parquet import TcpParquetSink, stem_of
    from rawlab.present.tables import capture_files

    taken: set[str] = set()
    conns = segs = 0
    for path in capture_files(inputs):
        sink = TcpParquetSink(out, stem_of(path, taken), file=None if path == "-" else path)
        try:
            with open_file(sys.stdin.buffer if path == "-" else path) as cap:
                pipeline.run_tcp(cap, [sink], count=count)
        except RawlabError as exc:
            if exc.code != Exit.BAD_INPUT:
                raise
            click.echo(f"rawlab: warning: {exc.message}; the rows before it are kept",
                       err=True)
        conns, segs = conns + sink.counts[0], segs + sink.counts[1]
    click.echo(f"wrote {conns} connections and {segs} segments to {out}", err=True)


def _sinks(as_json: bool, follow: int | None, ladder: bool, plot: str | None, *,
           live: bool, hold: bool = False) -> tuple[list[Any], Any]:
    from rawlab.present import tcp as ptcp

    out = sys.stdout
    sinks: list[Any]
    if as_json:  # (from a regular file, 1,024 segments are written at a time)
        sinks = [ptcp.JsonSink(out, hold=1024 if hold else 1)]
    elif follow is not None:
        sinks = [ptcp.FollowSink(out, follow)]
    elif ladder:
        from rawlab.present.ladder import LadderSink

        sinks = [LadderSink(out)]
    elif live:
        sinks = [ptcp.LiveSink(out), ptcp.TableSink(out, blank_line=True)]
    else:
        sinks = [ptcp.TableSink(out)]
    plotter = None
    if plot:
        from rawlab.present.plot import PlotSink

        plotter = PlotSink(plot)
        sinks.append(plotter)
    return sinks, plotter


def _live(iface: str, filt: str | None, netns: str | None, count: int | None,
          duration: float | None, ring_mb: int, sinks: list[Any], analyzer: Any,
          stream: int | None, attribution: Any) -> None:
    from rawlab import pipeline
    from rawlab.sockets.packet import RingConfig, open_ring

    bpf = narrow_filter(f"tcp and ({filt})" if filt else "tcp", attribution)
    cfg = RingConfig(ring_mb=ring_mb)
    ring = open_ring(iface, bpf=bpf, netns=netns, config=cfg)
    with contextlib.ExitStack() as undo:  # what is open, closed if the set-up fails
        undo.callback(ring.close)
        if attribution is not None:
            undo.callback(attribution.lookup.close)
        watch = watch_syns(attribution, iface, netns, bpf)
        if watch is not None:
            undo.callback(watch.close)
        records = ring.records(count=count, duration=duration,
                               block_done=ring.drops_to(analyzer.note_capture_drops))
        undo.pop_all()
    try:
        with ring.stopped_by_signals():
            pipeline.run_tcp(records, sinks, analyzer=analyzer, stream=stream,
                             attribute=attribution)
    finally:
        if watch is not None:
            watch.close()
        records.close()
        st = ring.stats()
        ring.close()
        from rawlab.present.packet import capture_summary

        click.echo(capture_summary(st), err=True)
        if attribution is not None:
            from rawlab.present.processes import summary

            attribution.lookup.close()
            click.echo(summary(attribution.counts, attribution.match is not None, watch),
                       err=True)
