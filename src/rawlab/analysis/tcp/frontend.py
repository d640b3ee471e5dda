"""What the exact analyser reads of each frame of a batch of columns
(:mod:`rawlab.decode.columns`): :func:`rawlab.analysis.tcp.analyzer.segment_fields`'s
``(src, dst, hdr, l4, opts, csum)`` without decoding the frame where the columns hold
its TCP segment.

    for frame, ts_ns, fields, rec in batch_fields(batch, n, reassembly):
        ...   # fields None: no segment the analyser takes; rec None: a row of the columns

A row the columns hold whole (status fast, an application's port, or a checksum that is
not good with no word of the kernel's on it) and that is TCP is read from the columns:
the header's fields, the addresses, the IP length, the checksum verdict; its options
from its bytes (:func:`rawlab.decode.tcp.options_summary`). Another row the columns hold
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


class Addresses(dict[tuple[int, int, int], bytes]):
    """(IP version, high, low 64 bits) -> the address's bytes, made once each."""

    def __missing__(self, key: tuple[int, int, int]) -> bytes:
        ver, hi, lo = key
        got = hi.to_bytes(8, "big") + lo.to_bytes(8, "big") if ver == 6 else lo.to_bytes(4, "big")
        if len(self) >= 65536:
            self.clear()
        self[key] = got
        return got


def batch_fields(batch: C.Batch, n: int, reassembly: IpReassembly | None,
                 addresses: dict[tuple[int, int, int], bytes] | None = None
                 ) -> Iterator[tuple[int, int, Any, Any]]:
    """``(frame, ts_ns, fields, rec)`` of the first `n` rows in order; ``fields`` as
    :func:`~rawlab.analysis.tcp.analyzer.segment_fields` (None: no segment), ``rec`` the
    row's record where it was read per packet (None for a row of the columns)."""
    from rawlab.analysis.tcp.analyzer import segment_fields
    from rawlab.decode.checksum import Verdict
    from rawlab.decode.tcp import options_summary

    c = batch.cols
    # (the kernel's word on a checksum is the per-packet path's to read)
    simple = held(c, n) & ((c["csum_notes"][:n] & C.CSUM_NOTE_HINT) == 0)
    on_tcp = simple & (c["l4"][:n] == C.L4_TCP)
    tcp = on_tcp & (c["l4_csum"][:n] != C.CSUM_NONE)
    take = tcp | ~simple | tunnelled(c, n, simple) | (on_tcp & ~tcp)
    rows = np.flatnonzero(take)
    if not len(rows):
        return
    addr = addresses if addresses is not None else Addresses()
    fr, ts = c["frame"][rows].tolist(), c["ts_ns"][rows].tolist()
    is_tcp, ver = tcp[rows].tolist(), c["ip_version"][rows].tolist()
    sh, sl = c["src_hi"][rows].tolist(), c["src_lo"][rows].tolist()
    dh, dl = c["dst_hi"][rows].tolist(), c["dst_lo"][rows].tolist()
    sport, dport = c["sport"][rows].tolist(), c["dport"][rows].tolist()
    seq, ack = c["tcp_seq"][rows].tolist(), c["tcp_ack"][rows].tolist()
    doff = c["tcp_dataofs"][rows].astype(np.int64)
    off = ((doff << 12) | (c["tcp_reserved"][rows].astype(np.int64) << 9)
           | c["tcp_flags"][rows]).tolist()
    win, l4 = c["tcp_window"][rows].tolist(), c["l4_length"][rows].tolist()
    at = (c["data_offset"][rows].astype(np.int64) + c["l4_offset"][rows] + 20).tolist()
    hl = (doff * 4).tolist()
    csum = c["l4_csum"][rows].tolist()
    buf = batch.buf
    verdict = {C.CSUM_GOOD: Verdict.GOOD, C.CSUM_UNVERIFIED: Verdict.UNVERIFIED,
               C.CSUM_BAD: Verdict.BAD, C.CSUM_PARTIAL: Verdict.PARTIAL}  # (l4_csum's codes)
    for k, i in enumerate(rows.tolist()):
        if not is_tcp[k]:
            rec = batch.record(i)
            yield fr[k], rec.ts_ns, segment_fields(rec.data, rec.linktype, rec.csum_status,
                                                   reassembly, fr[k], rec.ts_ns), rec
            continue
        v = ver[k]
        t = at[k]
        h = hl[k]
        yield fr[k], ts[k], (
            addr[v, sh[k], sl[k]], addr[v, dh[k], dl[k]],
            (sport[k], dport[k], seq[k], ack[k], off[k], win[k]), l4[k],
            options_summary(bytes(buf[t:t + h - 20])) if h > 20 else {},
            verdict[csum[k]]), None
