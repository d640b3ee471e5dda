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
    from rawlab.lab import handshake as demo
    from rawlab.present import ladder as ladder_fmt
    from rawlab.present import packet as packet_fmt

    res = demo.run(port, data.encode(), reply_size, ipv6=ipv6)
    w = sys.stdout.write
    w(f"rawlab handshake: client {res.client} → server {res.server}:{port}, captured on the "
      f"client's veth0 with AF_PACKET (TPACKET_V3), filter 'tcp port {port}'\n")
    if ladder:
        ladder_fmt.render(res.events, sys.stdout, explain_lines=True)
    else:
        from rawlab.decode.dispatch import Decoder
        from rawlab.records import CsumHint

        dec = Decoder()
        for i, rec in enumerate(res.records, 1):
            pkt = dec.decode(rec.data, rec.linktype, hint=CsumHint(rec.csum_status))
            w(packet_fmt.line(i, rec, pkt, "veth0") + "\n")
    hs = res.handshake
    assert hs is not None  # demo.run raised otherwise
    irtt = f"{hs.irtt_ns / 1e6:.3f} ms" if hs.irtt_ns is not None else "-"
    st = res.stats
    w(f"\nhandshake: frames {', '.join(map(str, hs.frames))} (SYN, SYN-ACK, ACK), "
      f"initial RTT {irtt}; {len(res.sent)} bytes sent, {res.reply_size} answered; "
      f"{st.captured if st else len(res.records)} packets captured, "
      f"{st.dropped if st else 0} dropped by the kernel\n")
    if out:
        from rawlab.pcap.writer import CaptureWriter
        from rawlab.records import Interface

        wr = CaptureWriter(out)
        for rec in res.records:
            wr.write(rec, Interface(0, rec.linktype, 262144, name="veth0"))
        wr.close()
        w(f"capture written to {out} (try: rawlab read {out} -v)\n")
