"""`rawlab read`: decode a pcap/pcapng file like `tcpdump -r`, deeper."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from rawlab.cli.options import KeylogFile, line_style_options, pop_line_style


@click.command()
@click.argument("file", type=click.Path(allow_dash=True, readable=False))
@click.option("-f", "--filter", "expression", metavar="EXPR",
              help="tcpdump filter syntax (compiled and run by libpcap, as tcpdump -r does).")
@click.option("-c", "count", type=click.IntRange(min=1), metavar="N",
              help="Stop after N matching packets.")
@click.option("-w", "out", type=click.Path(dir_okay=False, allow_dash=True), metavar="OUT",
              help="Write the matching packets to OUT (pcapng; --pcap for plain pcap; '-' for "
              "standard output, with -q). Never the file being read; on a full disk OUT is "
              "cut back to its last whole block (exit 7).")
@click.option("--pcap", "as_pcap", is_flag=True, help="With -w: write plain pcap (ns).")
@click.option("--stats", is_flag=True, help="Protocol hierarchy: packets and bytes per layer "
              "(like tshark -z io,phs).")
@click.option("--parquet", "parquet", metavar="OUT", help="Write the packets table "
              "(docs/tables.md) instead of printing: OUT.parquet is one file, any other OUT a "
              "dataset directory (OUT/packets/date=D/hour=H/FILE.parquet, one file per "
              "capture and hour). More FILEs (or directories of captures) may follow FILE. "
              "Files appear whole (written under a hidden name, then renamed).")
@click.option("--scapy", "scapy_view", is_flag=True, help="scapy's own show() of every "
              "frame (its dissectors, its words).")
@click.option("--keylog", type=KeylogFile(), metavar="FILE",
              help="Decrypt TLS 1.2/1.3 with the secrets in FILE (SSLKEYLOGFILE format, as "
              "browsers, curl and Python's ssl write) and decode the HTTP/1.x inside.")
@line_style_options
@click.argument("words", nargs=-1, metavar="[FILE...] [EXPRESSION]")
def read(file: str, expression: str | None, count: int | None, out: str | None,
         as_pcap: bool, verbose: int, as_json: bool, stats: bool, parquet: str | None,
         scapy_view: bool, keylog: Any, words: tuple[str, ...], **style_kw: Any) -> None:
    """Read a pcap or pcapng FILE ('-' for stdin) and decode every packet; a tcpdump
    filter EXPRESSION after the file (or -f) selects which.

    One tcpdump-like line per packet by default (time, interface, addresses and
    ports, flags, seq/ack, window, length; the checksum verdict only when it is
    not good). A damaged file prints every good packet first, then one line
    naming the file, the byte offset and the problem (exit 5).

    Two paths print the same bytes: the columnar one (whole batches of a file,
    numpy and compiled loops) for the one-line view and --json of a regular file without
    -f/-w (and without -e/-x/-X/-A/-q for lines); the per-packet one for everything else
    (-v, --stats, filters, -w, stdin, a FIFO: a packet prints as it arrives),
    and inside a batch for each packet the columns do not hold (link types
    other than Ethernet/SLL/raw IP, tunnels, fragments, options, bad checksums).

    --parquet OUT writes the packets table instead (one row per frame, the same two
    paths; `rawlab sql` and any Parquet engine read it).
    """
    from rawlab import pipeline

    if sum((bool(verbose), as_json, stats, scapy_view)) > 1:
        raise click.UsageError("choose one of -v, --json, --stats, --scapy")
    if parquet:
        _parquet(file, words, expression, count, parquet,
                 (out, verbose, as_json, stats, scapy_view, keylog))
        return
    if os.path.isdir(file):
        raise click.UsageError(f"{file} is a directory (a directory of captures: --parquet)")
    if expression and words:
        raise click.UsageError("give the filter once: -f EXPR or trailing words")
    expression = expression or " ".join(words) or None
    counts = pipeline.Counts()
    # the packet view (-v, --json, lines), unless --stats, --scapy or -q with -w
    view = not (stats or scapy_view or (style_kw["quick"] and out))
    style = pop_line_style(style_kw) if view else None
    if out == "-" and (view or stats or scapy_view):
        raise click.UsageError("-w - writes the capture to standard output: add -q (print "
                               "nothing per packet) or write to a file")
    if out:
        from rawlab.pcap.writer import refuse_overwrite

        refuse_overwrite(out, [file])
    fast = _batch_sink(file, expression, out, view and not verbose, as_json, style)
    if fast is not None:
        from rawlab.decode.columns import open_batches

        # (rows of application ports take the per-packet path, and the streams see them)
        fast.streams = pipeline.lazy_streams(keylog)
        size = {k: getattr(fast, k) for k in ("rows", "chunk") if hasattr(fast, k)}
        # (from a regular file the next batch is read on a second core: not from a pipe,
        # where a blocked read would hold up Ctrl-C; open_batches tells them apart)
        with open_batches(file, **size, ahead=2) as src:
            pipeline.run_batches(src, [fast], count=count, counts=counts)
        return
    _per_packet_read(file, expression, count, out, as_pcap, counts,
                     (view, verbose, as_json, stats, scapy_view, style, keylog))


def _per_packet_read(file: str, expression: str | None, count: int | None, out: str | None,
                     as_pcap: bool, counts: Any, how: tuple[Any, ...]) -> None:
    """The per-packet path: every record decoded, into the sinks asked for."""
    from rawlab import pipeline
    from rawlab.pcap.reader import open_file
    from rawlab.pcap.writer import CaptureWriter
    from rawlab.present import packet
    from rawlab.present.hierarchy import HierarchySink

    view, verbose, as_json, stats, scapy_view, style, keylog = how
    sinks: list[pipeline.PacketSink] = []
    if stats:
        sinks.append(HierarchySink(sys.stdout, counts, source=file, expression=expression))
    elif scapy_view:
        from rawlab.present.app.scapy import ScapySink

        sinks.append(ScapySink(sys.stdout))
    elif view:
        sinks.append(packet.sink_for(sys.stdout, verbose=verbose, as_json=as_json,
                                     style=style))
    streams = pipeline.app_streams(sinks, keylog)
    writer = CaptureWriter(out, pcap=as_pcap) if out else None
    if streams is not None:
        sinks.insert(0, streams)
    source = sys.stdin.buffer if file == "-" else file
    with open_file(source) as cap:
        # (a pcapng reader fills, and per section renews, its interface list)
        pipeline.run(cap, sinks, expression=expression, count=count, writer=writer,
                     interfaces=lambda i: cap.interfaces[i] if 0 <= i < len(cap.interfaces)
                     else None, counts=counts)


def _batch_sink(file: str, expression: str | None, out: str | None, lines_or_json: bool,
                as_json: bool, style: Any) -> Any:
    """The columnar path's sink for what was asked, or None for the per-packet path: the
    one-line view (in a style the batches print: present.columns.batch_sink_for) or
    NDJSON of a regular file (not a pipe or a FIFO: batches wait for a MiB, and a packet
    read must print before the next arrives), without a filter or -w."""
    if file == "-" or not os.path.isfile(file) or expression or out or not lines_or_json:
        return None
    if as_json:
        from rawlab.present.columns import json_sink_for

        return json_sink_for(sys.stdout)
    from rawlab.present.columns import batch_sink_for

    return batch_sink_for(sys.stdout, style)


def _parquet(file: str, words: tuple[str, ...], expression: str | None, count: int | None,
             parquet: str, others: tuple[Any, ...]) -> None:
    """--parquet: the files (FILE, then the words naming existing paths), the rest a filter."""
    from rawlab.present.parquet import write_packets

    if any(others):
        raise click.UsageError("--parquet writes the table: not with -w, -v, --json, --stats, "
                               "--scapy, --keylog")
    inputs = [file]
    rest = list(words)
    while rest and os.path.exists(rest[0]):
        inputs.append(rest.pop(0))
    if expression and rest:
        raise click.UsageError("give the filter once: -f EXPR or trailing words")
    expression = expression or " ".join(rest) or None

    def warn(msg: str) -> None:
        click.echo(f"rawlab: warning: {msg}", err=True)

    rows, files = write_packets(inputs, parquet, warn, expression=expression, count=count)
    click.echo(f"wrote {rows} rows of {files} capture(s) to {parquet}", err=True)
