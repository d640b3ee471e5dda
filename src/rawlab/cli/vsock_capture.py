"""`rawlab vsock capture`: vsock traffic through a vsockmon link, into pcapng (LINKTYPE_VSOCK)."""

from __future__ import annotations

import sys
from typing import Any

import click

from rawlab.cli.options import Seconds


@click.command("capture")
@click.option("-w", "out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write pcapng (LINKTYPE_VSOCK, opens in Wireshark/tshark).")
@click.option("--cid", type=int, metavar="CID", help="Only packets from or to this CID.")
@click.option("--port", type=int, metavar="PORT", help="Only packets from or to this port.")
@click.option("-c", "count", type=click.IntRange(min=1), metavar="N",
              help="Stop after N matching packets.")
@click.option("--duration", type=Seconds(), metavar="SECONDS", help="Stop after SECONDS.")
@click.option("-v", "verbose", is_flag=True, help="Every field, with offsets.")
@click.option("--json", "as_json", is_flag=True, help="NDJSON per packet (docs/json.md).")
@click.option("-q", "quiet", is_flag=True, help="With -w: print nothing per packet.")
@click.option("--netns", metavar="NAME", help="Make the vsockmon link in this namespace.")
def capture(out: str | None, cid: int | None, port: int | None, count: int | None,
            duration: float | None, verbose: bool, as_json: bool, quiet: bool,
            netns: str | None) -> None:
    """Capture vsock traffic: create a vsockmon link (removed on exit, also on Ctrl-C
    or SIGTERM) and capture it with the AF_PACKET engine.

    Each packet is decoded: the vsockmon op (connect, disconnect, control,
    payload) and the virtio header — op (request, response, rst, shutdown, rw,
    credit_update, credit_request), type (stream, seqpacket), flags (EOM/EOR on
    seqpacket data), the credit window (buf_alloc, fwd_cnt) and length. Needs
    CAP_NET_ADMIN (the link) and CAP_NET_RAW (the capture).
    """
    from rawlab import pipeline
    from rawlab.pcap.writer import CaptureWriter
    from rawlab.present.packet import sink_for
    from rawlab.records import Interface
    from rawlab.sockets.monlink import monitor_link
    from rawlab.sockets.packet import RingConfig, open_ring

    if verbose and as_json:
        raise click.UsageError("choose one of -v, --json")
    sinks = [] if out and quiet else [sink_for(sys.stdout, verbose=verbose, as_json=as_json)]
    with monitor_link("vsockmon", netns=netns) as name:
        ring = open_ring(name, netns=netns, config=RingConfig(ring_mb=32))
        writer = CaptureWriter(out) if out else None
        info = Interface(0, ring.linktype, 262144, name=name)

        click.echo(f"rawlab: capturing vsock on {name}" + (f" into {out}" if out else "")
                   + "; Ctrl-C to stop", err=True)
        records = ring.records(duration=duration,
                               block_done=writer.flush if writer else None)
        counts = pipeline.Counts()
        try:
            with ring.stopped_by_signals():
                pipeline.run(_matching(records, cid, port), sinks, count=count,
                             writer=writer, interfaces=lambda i: info, counts=counts)
        finally:
            records.close()
            st = ring.stats()
            ring.close()
        sys.stdout.flush()
        click.echo(f"{counts.matched} packets captured"
                   + (f" (of {st.captured}; --cid/--port chose)" if cid is not None
                      or port is not None else "")
                   + f", {st.dropped} dropped by kernel", err=True)


def _matching(records: Any, cid: int | None, port: int | None) -> Any:
    """Records whose af_vsockmon_hdr has `cid` / `port` on either side."""
    from rawlab.decode.vsockmon import AF_VSOCKMON_HDR_ST

    if cid is None and port is None:
        yield from records
        return
    unpack = AF_VSOCKMON_HDR_ST.unpack_from
    for rec in records:
        if len(rec.data) < AF_VSOCKMON_HDR_ST.size:
            continue
        scid, dcid, sport, dport, *_rest = unpack(rec.data)
        if cid is not None and cid not in (scid, dcid):
            continue
        if port is not None and port not in (sport, dport):
            continue
        yield rec
