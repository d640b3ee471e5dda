"""`rawlab tcp`: TCP connections of a capture file, analysed as Wireshark does."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, readable=False))
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
def tcp(file: str, as_json: bool, stream: int | None, follow: int | None, plot: str | None,
        ladder: bool) -> None:
    """Analyse the TCP connections in a pcap or pcapng FILE ('-' for stdin).

    Default: one line per connection — endpoints, Zeek-style state and history,
    initial RTT, payload bytes each way, retransmissions, TCP flags seen and the
    expert flags counted (Wireshark's names: retransmission, duplicate_ack,
    out_of_order, zero_window ...). Sequence analysis follows Wireshark 4.0's
    rules, frame for frame.
    """
    if sum(map(bool, (as_json, follow is not None, ladder))) > 1:
        raise click.UsageError("choose one of --json, --follow, --ladder")
    from rawlab.analysis.tcp import ConnectionClosed, Segment, TcpAnalyzer
    from rawlab.pcap.reader import open_capture

    source = sys.stdin.buffer if file == "-" else file
    analyzer = TcpAnalyzer()
    out = sys.stdout
    plotter = None
    if plot:
        from rawlab.present.plot import TimeSequence

        # without --stream: stream 0 unless a bigger one shows up (decided at the end)
        plotters: dict[int, Any] = {}

    def events() -> Iterator[Any]:
        with open_capture(source) as cap:
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


def _follow(evs: Iterator[Any], n: int, source: Any, out: Any) -> None:
    """Reassemble stream n: needs each segment's payload, so the frames are read again
    alongside the events (only the chosen stream's payload is kept)."""
    from rawlab.analysis.tcp import Segment
    from rawlab.decode.dispatch import Decoder
    from rawlab.pcap.reader import open_capture
    from rawlab.present.tcp import Follow

    if source is sys.stdin.buffer:
        raise click.UsageError("--follow needs a file, not stdin")
    wanted = {ev.frame: ev for ev in evs if type(ev) is Segment and ev.stream == n}
    f = Follow(n)
    dec = Decoder()
    with open_capture(source) as cap:
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
