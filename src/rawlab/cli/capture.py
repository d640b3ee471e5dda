"""`rawlab capture`: live AF_PACKET capture, decoded like `rawlab read`."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from rawlab.cli.options import (
    SNAPLEN_MAX,
    Seconds,
    line_style_options,
    narrow_filter,
    pop_line_style,
    pop_processes,
    process_options,
    watch_syns,
)
from rawlab.cli.options import snaplen as snaplen_of


@click.command()
@click.option("-i", "iface", default="any", show_default=True, metavar="IFACE",
              help="Interface to capture on, or 'any' (all, with SLL2 headers).")
@click.option("-f", "--filter", "filt", metavar="EXPR", help="tcpdump filter syntax, attached "
              "in the kernel before the first packet (also accepted as trailing words).")
@click.option("-c", "count", type=click.IntRange(min=1), metavar="N",
              help="Stop after N packets.")
@click.option("-G", "rotate", type=click.IntRange(min=1), metavar="SECONDS",
              help="With -w: start a new file every SECONDS; FILE is a strftime pattern "
                   "(without one, a timestamp is added before the extension, so that no "
                   "file is overwritten: unlike tcpdump). With -W N: stop after N files.")
@click.option("-C", "size_mb", type=click.IntRange(min=1), metavar="MB",
              help="With -w: a new file when this one would pass MB million bytes: FILE, "
                   "FILE1, FILE2 ... (as tcpdump). With -W N: a ring of N files FILE0 .. "
                   "FILE<N-1>, the oldest overwritten.")
@click.option("-W", "files", type=click.IntRange(min=1), metavar="N",
              help="With -C: how many files the ring keeps; with -G alone: stop after N.")
@click.option("-Z", "user", metavar="USER", help="Become USER once the capture socket is "
              "open (before -w files are created, as tcpdump).")
@click.option("-D", "list_ifaces", is_flag=True, help="List the interfaces to capture on "
              "(as tcpdump -D) and exit.")
@click.option("-B", "buffer_kib", type=click.IntRange(min=1), metavar="KiB",
              help="Ring size in KiB, as tcpdump -B (rounded up to whole MiB; --ring-mb "
                   "says it in MiB).")
@click.option("-s", "snaplen", type=click.IntRange(0, SNAPLEN_MAX), default=SNAPLEN_MAX,
              show_default=True, callback=lambda _c, _p, v: snaplen_of(v),
              help="Bytes kept of each packet (cut in the kernel); 0 means the maximum, as "
                   "in tcpdump.")
@click.option("-w", "out", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE",
              help="Write pcapng (one interface block per interface, ns timestamps); '-' is "
                   "standard output (`-w - | tshark -r -`). Created before the capture starts; "
                   "valid after Ctrl-C, SIGTERM or a crash: every whole ring block is in it; "
                   "on a full disk cut back to its last whole block (exit 7).")
@click.option("--pcap", "as_pcap", is_flag=True, help="With -w: plain pcap (ns) instead.")
@click.option("--parquet", "parquet", metavar="OUT", help="Write the packets table "
              "(docs/tables.md; with -w too, or alone): OUT.parquet is one file (with -G a "
              "strftime pattern, as -w), any other OUT a dataset directory (OUT/packets/"
              "date=D/hour=H/capture-TIME.parquet; -G: one file per interval). Each file "
              "appears whole, when its interval (or the capture) ends.")
@click.option("--print", "also_print", is_flag=True, help="With -w: also print packets.")
@click.option("--promisc", is_flag=True, help="Promiscuous mode (dropped on exit).")
@click.option("--netns", metavar="NAME", help="Capture inside this network namespace.")
@click.option("--ring-mb", type=click.IntRange(min=1), default=128, show_default=True,
              help="Size of the TPACKET_V3 ring (holds a 1M-packet burst of small frames).")
@click.option("-Q", "direction", type=click.Choice(["in", "out", "inout"]), default="inout",
              show_default=True, help="Which direction to keep (as tcpdump -Q).")
@click.option("--duration", type=Seconds(), metavar="SECONDS", help="Stop after SECONDS.")
@process_options
@line_style_options
@click.argument("expression", nargs=-1)
def capture(iface: str, filt: str | None, count: int | None, snaplen: int,
            out: str | None, as_pcap: bool, parquet: str | None, verbose: int, as_json: bool,
            also_print: bool,
            promisc: bool, netns: str | None, ring_mb: int, direction: str,
            duration: float | None, expression: tuple[str, ...], **kw: Any) -> None:
    """Capture live packets with AF_PACKET (TPACKET_V3 ring) and decode them.

    Prints one tcpdump-like line per packet (-v tree, --json NDJSON then a summary
    object); with -w,
    writes pcapng and shows a status line on a terminal instead. Ends on -c,
    --duration, Ctrl-C or SIGTERM (exit 0), then prints tcpdump's summary:
    packets captured, received by filter, dropped by kernel.

    --processes names the process at each end of every TCP/UDP flow (`curl[1234]`
    beside the endpoint); --pid, --comm and --cgroup keep only those processes' flows
    and count the frames that could not be attributed.
    """
    from rawlab import pipeline
    from rawlab.pcap.writer import RotationDone
    from rawlab.present.packet import sink_for
    from rawlab.sockets.packet import RingConfig, open_ring

    if kw.pop("list_ifaces"):
        from rawlab.present.packet import interface_list
        from rawlab.sockets.packet import list_interfaces

        click.echo(interface_list(list_interfaces(netns)))
        return
    if filt and expression:
        raise click.UsageError("give the filter once: -f EXPR or trailing words")
    bpf = filt or (" ".join(expression) if expression else None)
    if sum((bool(verbose), as_json)) > 1:
        raise click.UsageError("choose one of -v, --json")
    quiet = bool(out or parquet) and not (verbose or as_json or also_print)
    if out == "-" and not quiet:
        raise click.UsageError("-w - writes the capture to standard output: it cannot also "
                               "print packets there")
    sinks = [] if quiet else [sink_for(sys.stdout, verbose=verbose, as_json=as_json,
                                       style=pop_line_style(kw))]
    if kw["buffer_kib"]:
        ring_mb = -(-kw["buffer_kib"] // 1024)
    attribution = pop_processes(kw, netns)
    cfg = RingConfig(ring_mb=ring_mb)
    ring = open_ring(iface, bpf=narrow_filter(bpf, attribution), snaplen=snaplen,
                     promisc=promisc, netns=netns, config=cfg, direction=direction)
    with contextlib.ExitStack() as undo:  # what is open, closed if the set-up fails
        undo.callback(ring.close)
        if attribution is not None:
            undo.callback(attribution.lookup.close)
        watch = watch_syns(attribution, iface, netns, narrow_filter(bpf, attribution))
        if watch is not None:
            undo.callback(watch.close)
        if kw["user"]:
            from rawlab.sockets.creds import drop_to

            drop_to(kw["user"])
        writer = _writer(out, as_pcap, kw["rotate"], kw["size_mb"], kw["files"],
                         parquet=parquet is not None)
        if parquet:
            sinks.append(_parquet_sink(parquet, kw["rotate"], kw["files"], ring))
        iface_name = "any" if iface == "any" else ring.iface
        counts = pipeline.Counts()

        status = out is not None and sys.stderr.isatty() and quiet
        block_done = writer.flush if writer else None
        streams = pipeline.app_streams(sinks)  # TCP application messages, reassembled
        if writer is None and attribution is None and len(sinks) == 1 and \
                not sys.stdout.isatty():
            # lines to a file or pipe: a ring block at a time through batches
            block_done, sinks = _lines_by_block(sinks, ring, block_done, streams)
        elif streams is not None:
            sinks.insert(0, streams)
        in_place = not sinks and writer is not None and writer.in_place
        # with a process filter, -c counts the frames kept (the ring cannot know them)
        records = None if in_place else ring.records(
            count=count if attribution is None else None, duration=duration,
            block_done=block_done)
        undo.pop_all()  # from here on, the `finally` below closes them
    try:
        with ring.stopped_by_signals(), contextlib.suppress(RotationDone):
            if records is None:  # -w alone: EPBs (or pcap records) made from the ring in place
                pipeline.write_ring(ring, writer, count=count, duration=duration,
                                    counts=counts, attribute=attribution,
                                    on_block=_status(ring, counts, writer) if status else None)
            else:
                feed = _with_status(records, ring, counts, writer) if status else records
                pipeline.run(feed, sinks, count=count, writer=writer,
                             interfaces=ring.interface, counts=counts, attribute=attribution)
    finally:
        if watch is not None:
            watch.close()
        if records is not None:
            records.close()  # the engine counts what it handed out when its walk ends
        st = ring.stats()
        ring.close()
        if status:
            sys.stderr.write("\r\033[K")
        _report(st, iface_name, bpf, as_json=as_json, writer=writer, attribution=attribution,
                watch=watch)
        if parquet:
            click.echo(f"wrote {', '.join(sinks[-1].files) or 'nothing'}", err=True)


def _lines_by_block(sinks: list[Any], ring: Any, block_done: Any,
                    streams: Any) -> tuple[Any, list[Any]]:
    """The one-line view rendered a ring block at a time from batches (the columnar
    path: present.columns.RecordLineSink, its per-packet rows fed to ``streams``) when the
    style allows it; else as it was (``streams`` the first sink)."""
    from rawlab.present.columns import RecordLineSink, batch_sink_for
    from rawlab.present.packet import LineSink

    as_was = [streams, *sinks] if streams is not None else sinks
    if type(sinks[0]) is not LineSink:
        return block_done, as_was
    lines = batch_sink_for(sys.stdout, sinks[0].style)
    if lines is None:
        return block_done, as_was
    lines.streams = streams.feed if streams is not None else None
    sink = RecordLineSink(lines, ring.interface)
    return sink.flush, [sink]


def _report(st: Any, iface_name: str, bpf: str | None, *, as_json: bool, writer: Any,
            attribution: Any, watch: Any = None) -> None:
    """What ends a capture: the JSON summary, the rotated files, tcpdump's three lines
    and the attribution's counts (the SYN watch's, closed, with them)."""
    from rawlab.pcap.writer import RotatingWriter
    from rawlab.present.packet import capture_summary, capture_summary_json
    from rawlab.present.processes import summary, summary_json

    if attribution is not None:
        attribution.lookup.close()
    if as_json:
        extra = None if attribution is None else {"processes": summary_json(
            attribution.counts, attribution.lookup.lookups, attribution.lookup.destroy_groups,
            watch)}
        sys.stdout.write(capture_summary_json(st, iface_name, bpf, extra))
        sys.stdout.flush()
    if isinstance(writer, RotatingWriter) and writer.files:
        click.echo(f"wrote {len(writer.files)} file(s): {', '.join(writer.files)}", err=True)
    click.echo(capture_summary(st), err=True)
    if attribution is not None:
        click.echo(summary(attribution.counts, attribution.match is not None, watch), err=True)


def _parquet_sink(out: str, rotate: int | None, files: int | None, ring: Any) -> Any:
    """--parquet: the packets table, rotated with -G; `files` lists what was written."""
    from rawlab.present import parquet as pq

    def name(n: int) -> str | None:
        return ring.interface(n).name

    if rotate:
        return pq.RotatingParquet(out, rotate, files=files, interface_name=name)
    sink = pq.packets_output(out, f"capture-{time.strftime('%Y%m%d-%H%M%S')}",
                             interface_name=name)
    return _Listing(sink)


class _Listing:
    """A packets sink that lists, once closed, the files it wrote."""

    decodes = False

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.packet = sink.packet
        self.files: list[str] = []

    def close(self) -> None:
        self.sink.close()
        out = self.sink.out
        self.files = list(getattr(out, "written", None) or [getattr(out, "path", "")])


def _writer(out: str | None, as_pcap: bool, rotate: int | None, size_mb: int | None,
            files: int | None, *, parquet: bool = False) -> Any:
    """The -w output: one file, or tcpdump's -G/-C/-W rotation (-G and -W also rotate
    --parquet)."""
    from rawlab.pcap.writer import CaptureWriter, RotatingWriter

    if not out:
        if size_mb or ((rotate or files) and not parquet):
            raise click.UsageError("-G, -C and -W need -w (-G and -W: or --parquet)")
        return None
    if rotate or size_mb:
        if out == "-":
            raise click.UsageError("-w - cannot rotate (-G, -C)")
        return RotatingWriter(out, rotate, size=size_mb * 1_000_000 if size_mb else None,
                              files=files, pcap=as_pcap)
    if files:
        raise click.UsageError("-W needs -C or -G")
    return CaptureWriter(out, pcap=as_pcap)


def _with_status(records: Iterator[Any], ring: Any, counts: Any, writer: Any) -> Iterator[Any]:
    """Pass records through, redrawing one status line on stderr twice a second."""
    redraw = _status(ring, counts, writer)
    for rec in records:
        yield rec
        redraw()


def _status(ring: Any, counts: Any, writer: Any) -> Callable[[], None]:
    """A call that redraws one status line on stderr, twice a second at most: the
    packets written so far (``counts.written``: pipeline.run's and write_ring's), the
    rate, the kernel's drops, the size of the file being written (-G/-C: the current
    one)."""
    t0 = last = time.monotonic()
    clock = time.monotonic

    def redraw() -> None:
        nonlocal last
        now = clock()
        if now - last < 0.5:
            return
        last = now
        n = counts.written
        st = ring.stats()
        files = getattr(writer, "files", None)
        try:
            size = os.path.getsize(files[-1] if files else writer.path)
        except (OSError, AttributeError):
            size = 0
        sys.stderr.write(f"\r\033[K{n} packets, {n / max(now - t0, 1e-9):,.0f}/s, "
                         f"{st.dropped} dropped, {size / 1e6:.1f} MB")
        sys.stderr.flush()

    return redraw
