"""`rawlab handshake`: the built-in demo of a TCP three-way handshake, captured live."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535),
              help="Server port inside the throwaway namespace.")
@click.option("--data", default="GET / HTTP/1.0\r\n\r\n", show_default=False,
              help="What the client sends (default: an HTTP request).")
@click.option("--reply-size", default=3000, show_default=True, type=click.IntRange(0, 1 << 20),
              help="Bytes the server answers (3000: three segments at MSS 1460... minus options).")
@click.option("--ladder/--no-ladder", default=True, show_default=True,
              help="Ladder diagram with a one-line explanation per segment, or plain lines.")
@click.option("-6", "--ipv6", is_flag=True, help="Use IPv6 addresses.")
@click.option("-w", "out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the capture to FILE (pcapng) for `rawlab read`, tshark ...")
def handshake(port: int, data: str, reply_size: int, ladder: bool, ipv6: bool,
              out: str | None) -> None:
    """Capture a real TCP handshake, data and teardown, and explain every segment.

    Makes two throwaway network namespaces joined by a veth pair (offloads off,
    so segments are real), runs a listener and a client in them, captures on the
    client's side with rawlab's AF_PACKET ring and shows the three-way handshake,
    the data segments and the teardown: flags, relative seq/ack, length, window,
    checksum status and expert flags, each with the reason it looks that way.
    Removes everything it made, always. Needs root (privileges.md).
    Exit 0 only if it really captured and decoded the handshake.
    """
    import shutil

    from rawlab.lab import handshake as demo
    from rawlab.present.handshake import report

    writer = None
    if out:
        from rawlab.pcap.writer import CaptureWriter

        writer = CaptureWriter(out)  # created now: a bad path fails before the demo runs
    res = demo.run(port, data.encode(), reply_size, ipv6=ipv6)
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    report(res, sys.stdout, ladder=ladder, width=width)
    if writer is not None:
        from rawlab.records import Interface

        for rec in res.records:
            writer.write(rec, Interface(0, rec.linktype, 262144, name="veth0"))
        writer.close()
        sys.stdout.write(f"capture written to {out} (try: rawlab read {out} -v)\n")
