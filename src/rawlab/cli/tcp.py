"""`rawlab tcp`: TCP connections of a capture file, analysed as Wireshark does."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True,
                                                        readable=False))
@click.option("-i", "iface", metavar="IFACE", help="Analyse live traffic on IFACE (or 'any') "
              "instead of a file; Ctrl-C ends it and prints the table.")
@click.option("-f", "--filter", "filt", metavar="EXPR", help="Live: a tcpdump filter ANDed "
              "with 'tcp'.")
@click.option("--netns", metavar="NAME", help="Live: capture inside this network namespace.")
@click.option("-c", "count", type=click.IntRange(min=1), metavar="N",
              help="Live: stop after N packets.")
@click.option("--duration", type=float, metavar="SECONDS", help="Live: stop after SECONDS.")
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
def tcp(file: str | None, iface: str | None, filt: str | None, netns: str | None,
        count: int | None, duration: float | None, ring_mb: int, as_json: bool,
        stream: int | None, follow: int | None, plot: str | None, ladder: bool) -> None:
    """Analyse the TCP connections in a pcap or pcapng FILE ('-' for stdin), or live
    on an interface (-i).

    Default: one line per connection — endpoints, Zeek-style state and history,
    initial RTT, payload bytes each way, retransmissions, TCP flags seen and the
    expert flags counted (Wireshark's names: retransmission, duplicate_ack,
    out_of_order, zero_window ...). Sequence analysis follows Wireshark 4.0's
    rules, frame for frame. Live, events print as they happen (a handshake
    completing, a retransmission, a connection ending), gaps the kernel's own
    capture drops explain are marked `capture loss`, and the table follows on exit.
    """
    if sum(map(bool, (as_json, follow is not None, ladder))) > 1:
        raise click.UsageError("choose one of --json, --follow, --ladder")
    if (file is None) == (iface is None):
        raise click.UsageError("give a FILE or -i IFACE (one of them)")
    if iface is not None:
        if follow is not None:
            raise click.UsageError("--follow reads a file (capture with `rawlab capture -w`)")
        _live(iface, filt, netns, count, duration, ring_mb, as_json, stream, plot, ladder)
        return
    assert file is not None
    from rawlab.analysis.tcp import ConnectionClosed, Segment, TcpAnalyzer
    from rawlab.pcap.reader import open_file

    source = sys.stdin.buffer if file == "-" else file
    analyzer = TcpAnalyzer()
    out = sys.stdout
    plotter = None
    if plot:
        from rawlab.present.plot import TimeSequence

        # without --stream: stream 0 unless a bigger one shows up (decided at the end)
        plotters: dict[int, Any] = {}

    def events() -> Iterator[Any]:
        with open_file(source) as cap:
            feed = analyzer.feed_bytes
            for frame, rec in enumerate(cap, 1):
                yield from feed(frame, rec.ts_ns, rec.data, rec.linktype, rec.csum_status)
        yield from analyzer.finish()

    def plotted(evs: Iterator[Any]) -> Iterator[Any]:
        for ev in evs:
            if type(ev) is Segment and (stream is None or ev.stream == stream):
                p = plotters.get(ev.stream)
                if p is None:
                    p = plotters[ev.stream] = TimeSequence(ev.stream)
                p.add(ev)
            yield ev

    evs = plotted(events()) if plot else events()
    if as_json:
        from rawlab.present.tcp import connection_json, segment_json

        w = out.write
        for ev in evs:
            if type(ev) is Segment:
                if stream is None or ev.stream == stream:
                    w(segment_json(ev))
            elif isinstance(ev, ConnectionClosed) and (stream is None or ev.stream == stream):
                w(connection_json(ev.connection))
    elif follow is not None:
        _follow(evs, follow, source, out)
    elif ladder:
        from rawlab.present.ladder import render

        render(evs, out, None, stream=stream)
    else:
        from rawlab.present.tcp import render_table

        conns = [ev.connection for ev in evs if isinstance(ev, ConnectionClosed)
                 and (stream is None or ev.stream == stream)]
        render_table(sorted(conns, key=lambda c: c.stream), out)
    if plot:
        if not plotters:
            raise click.ClickException("no TCP segments to plot")
        plotter = max(plotters.values(), key=lambda p: sum(p.bytes))
        path = plotter.save(plot)
        click.echo(f"wrote {path} (stream {plotter.stream})", err=True)


def _live(iface: str, filt: str | None, netns: str | None, count: int | None,
          duration: float | None, ring_mb: int, as_json: bool, stream: int | None,
          plot: str | None, ladder: bool) -> None:

    from rawlab.analysis.tcp import ConnectionClosed, Segment, TcpAnalyzer
    from rawlab.sockets.packet import RingConfig, open_ring

    expr = f"tcp and ({filt})" if filt else "tcp"
    ring = open_ring(iface, bpf=expr, netns=netns, config=RingConfig(ring_mb=ring_mb))
    analyzer = TcpAnalyzer()
    dropped = [0]

    def block_done() -> None:  # tell the analyser what the kernel dropped meanwhile
        st = ring.stats()
        if st.dropped > dropped[0]:
            analyzer.note_capture_drops(st.dropped - dropped[0])
            dropped[0] = st.dropped

    out = sys.stdout
    closed: list[Any] = []
    plotters: dict[int, Any] = {}
    records = ring.records(count=count, duration=duration, block_done=block_done)
    with ring.stopped_by_signals():
        try:
            if ladder:
                from rawlab.present.ladder import render

                def evs() -> Iterator[Any]:
                    for frame, rec in enumerate(records, 1):
                        yield from analyzer.feed_bytes(frame, rec.ts_ns, rec.data, rec.linktype,
                                                       rec.csum_status)
                render(evs(), out, None, stream=stream)
            else:
                from rawlab.present.tcp import connection_json, live_line, segment_json

                for frame, rec in enumerate(records, 1):
                    for ev in analyzer.feed_bytes(frame, rec.ts_ns, rec.data, rec.linktype,
                                                  rec.csum_status):
                        s = getattr(ev, "stream", None)
                        if stream is not None and s != stream:
                            continue
                        if isinstance(ev, ConnectionClosed):
                            closed.append(ev.connection)
                        if plot and type(ev) is Segment:
                            _plotter(plotters, ev).add(ev)
                        if as_json:
                            if type(ev) is Segment:
                                out.write(segment_json(ev))
                            elif isinstance(ev, ConnectionClosed):
                                out.write(connection_json(ev.connection))
                        else:
                            line = live_line(ev)
                            if line:
                                out.write(line + "\n")
                                out.flush()
        finally:
            records.close()
            st = ring.stats()
            ring.close()
    still_open = analyzer.connections()
    if not ladder:
        if as_json:
            from rawlab.present.tcp import connection_json

            done = {c.stream for c in closed}
            for c in still_open:
                if (stream is None or c.stream == stream) and c.stream not in done:
                    out.write(connection_json(c))
        else:
            from rawlab.present.tcp import render_table

            out.write("\n")
            # a closed connection may still linger in the analyser: one row per stream
            by_stream = {c.stream: c for c in [*closed, *still_open]
                         if stream is None or c.stream == stream}
            render_table([by_stream[k] for k in sorted(by_stream)], out)
    out.flush()
    if plot:
        if not plotters:
            raise click.ClickException("no TCP segments to plot")
        p = max(plotters.values(), key=lambda p: sum(p.bytes))
        click.echo(f"wrote {p.save(plot)} (stream {p.stream})", err=True)
    click.echo(st.summary(), err=True)


def _plotter(plotters: dict[int, Any], ev: Any) -> Any:
    from rawlab.present.plot import TimeSequence

    p = plotters.get(ev.stream)
    if p is None:
        p = plotters[ev.stream] = TimeSequence(ev.stream)
    return p


def _follow(evs: Iterator[Any], n: int, source: Any, out: Any) -> None:
    """Reassemble stream n: needs each segment's payload, so the frames are read again
    alongside the events (only the chosen stream's payload is kept)."""
    from rawlab.analysis.tcp import Segment
    from rawlab.decode.dispatch import Decoder
    from rawlab.pcap.reader import open_file
    from rawlab.present.tcp import Follow

    if source is sys.stdin.buffer:
        raise click.UsageError("--follow needs a file, not stdin")
    wanted = {ev.frame: ev for ev in evs if type(ev) is Segment and ev.stream == n}
    f = Follow(n)
    dec = Decoder()
    with open_file(source) as cap:
        for frame, rec in enumerate(cap, 1):
            seg = wanted.get(frame)
            if seg is None:
                continue
            payload = b""
            if seg.len:
                lay = dec.decode(rec.data, rec.linktype).layer("tcp")
                payload = bytes(lay.payload)[:seg.len] if lay is not None else b""
            f.add(seg, payload)
    f.render(out)
