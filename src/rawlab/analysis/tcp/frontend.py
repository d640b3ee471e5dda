"""What the exact analyser reads of each frame of a batch of columns
(:mod:`rawlab.decode.columns`): :func:`rawlab.analysis.tcp.analyzer.segment_fields`'s
``(src, dst, hdr, l4, opts, csum)`` without decoding the frame where the columns hold
its TCP segment.

    for frame, ts_ns, fields, rec in batch_fields(batch, n, reassembly):
        ...   # fields None: no segment the analyser takes; rec None: a row of the columns

A row the columns hold whole (status fast, an application's port, or a checksum that is
not good with no word of the kernel's on it) and that is TCP is read from the columns:
the header's fields, the addresses, the IP length, the checksum verdict; its options
from its bytes (:func:`rawlab.decode.tcp.options_summary`, compiled). Another row the columns hold
and that is no TCP is none (UDP on a tunnel's port excepted: it may carry TCP). Every
other row (fragments, tunnels, ICMP errors, other link types, pcapng records with
options) is read as the per-packet path reads it, from its record. ``tests/unit/
test_tcp_cli.py`` holds the two ways together: the same output on every capture.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from rawlab.decode import columns as C

if TYPE_CHECKING:
    from rawlab.analysis.reassembly import IpReassembly


@functools.cache
def tunnel_ports() -> np.ndarray:
    """The UDP ports a tunnel's decoder takes (VXLAN, Geneve ...), as a lookup array:
    a datagram on one may carry TCP."""
    from rawlab.decode.descent import tunnel_udp_ports

    ports = np.zeros(65536, bool)
    ports[list(tunnel_udp_ports())] = True
    return ports


def held(c: dict[str, np.ndarray], n: int) -> np.ndarray:
    """The first `n` rows whose every field the columns hold: status fast, an
    application's port, or all held but a checksum that is not good."""
    st = c["status"][:n]
    return (st == C.FAST) | (st == C.APPLICATION) | (st == C.CHECKSUM)


def tunnelled(c: dict[str, np.ndarray], n: int, rows: np.ndarray) -> np.ndarray:
    """Of `rows`, the UDP datagrams on a tunnel's port."""
    udp = rows & (c["l4"][:n] == C.L4_UDP)
    if not udp.any():
        return udp
    tun = tunnel_ports()
    return udp & (tun[c["sport"][:n]] | tun[c["dport"][:n]])


PIECE = 1024  # rows read into Python objects at a time (a whole batch's cost ~5 MB)


def batch_fields(batch: C.Batch, n: int, reassembly: IpReassembly | None
                 ) -> Iterator[list[tuple[Any, ...]]]:
    """``(frame, ts_ns, src, dst, hdr, l4, opts, csum, rec)`` of each of the first `n` rows
    that holds a segment, in order, in lists of at most :data:`PIECE`: the fields as
    :func:`~rawlab.analysis.tcp.analyzer.segment_fields` gives them, ``rec`` the row's
    record where it was read per packet (None for a row of the columns). The rows the
    columns hold are read by a compiled loop (:func:`rawlab._kernels.tcp_fields`)."""
    from rawlab import _kernels
    from rawlab.analysis.tcp.analyzer import segment_fields
    from rawlab.decode.checksum import Verdict

    c = batch.cols
    # (the kernel's word on a checksum is the per-packet path's to read)
    simple = held(c, n) & ((c["csum_notes"][:n] & C.CSUM_NOTE_HINT) == 0)
    on_tcp = simple & (c["l4"][:n] == C.L4_TCP)
    tcp = on_tcp & (c["l4_csum"][:n] != C.CSUM_NONE)
    rows = np.flatnonzero(tcp | ~simple | tunnelled(c, n, simple) | (on_tcp & ~tcp))
    if not len(rows):
        return

    def odd(i: int) -> tuple[Any, ...] | None:
        rec = batch.record(i)
        frame = int(c["frame"][i])
        got = segment_fields(rec.data, rec.linktype, rec.csum_status, reassembly, frame,
                             rec.ts_ns)
        return None if got is None else (frame, rec.ts_ns, *got, rec)

    verdicts = (None, Verdict.GOOD, Verdict.UNVERIFIED, Verdict.BAD, Verdict.PARTIAL)
    assert (C.CSUM_GOOD, C.CSUM_UNVERIFIED, C.CSUM_BAD, C.CSUM_PARTIAL) == (1, 2, 3, 4)
    rows = rows.astype(np.int64)
    for at in range(0, len(rows), PIECE):
        yield _kernels.tcp_fields(rows[at:at + PIECE], tcp.view(np.uint8), c, batch.buf,
                                  verdicts, odd)
