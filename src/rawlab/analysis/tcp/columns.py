"""TCP connections summarised on columns: tcptrace's per-connection figures, column-wise.

    from rawlab.analysis.tcp.columns import ConnSummary, summarise
    table = summarise(open_batches("x.pcap"))       # dict of numpy columns, a row a connection
    s = ConnSummary(); s.add(batch); ...; s.columns()  # the same, batch by batch
    s.connections()                                  # as analysis.tcp.Connection (the table)
    to_arrow(table)                                  # a pyarrow.Table

The batches are :mod:`rawlab.decode.columns`' (a row a frame). Rows the columns hold are
read from the columns (also those whose only oddity is a checksum, status CHECKSUM: a
bad one is counted unless the kernel's word decides); every other row (odd link types,
tunnels, options the columns do not hold) is read by the exact analyser's own front end
(:func:`~rawlab.analysis.tcp.analyzer.segment_fields`), so both see the same segments.

A connection is a canonical 4-tuple (:mod:`~rawlab.analysis.tcp.table`), numbered in
order of first appearance; its client sent the first packet, or received it when that
was a SYN-ACK (Wireshark's and Zeek's rule, as the exact analyser). Unlike the exact
analyser, a SYN with a new ISN on a known 4-tuple, or a long idle time, does not start a
new connection here (tcptrace's own heuristics are not those either).

The summary itself is compiled (:mod:`rawlab._tcp_summary`, ``src/rawlab/_tcp_summary.c``):
one pass a segment in file order through its connection's two directions, as tcptrace
walks a capture (the windows and probes, the sequence space unwrapped per direction with
its highest end and the holes below it, the counters, the ACK against the segments not
yet acknowledged, the history letters). The batches only feed it: the rows the columns
hold are read from the columns there, the others (here) by the exact analyser's front
end. The answer does not depend on where the batches were cut.

Definitions (tcptrace 6.6.7's, ``trace.c``/``rexmit.c``; where Wireshark differs it
says so, and the exact analyser keeps Wireshark's):

* ``packets``: TCP segments sent that way. ``data_pkts``/``data_bytes``: segments with
  payload and their payload bytes (by the IP length), retransmissions included
  (tcptrace's "actual data"; the exact analyser's ``segments`` and ``bytes``).
* ``rexmit_pkts``/``rexmit_bytes``: segments carrying sequence space (SYN and FIN
  count one) any of which was seen before in that direction, and those bytes.
  Wireshark's ``retransmission`` differs: a segment behind the next expected
  sequence number sent within the iRTT of the highest one is ``out_of_order`` for
  Wireshark, a retransmission here; one filling a gap in the capture is a
  retransmission for Wireshark, ``out_of_order`` here.
* ``unique_bytes``: payload bytes never seen before in that direction.
* ``ooo_pkts``: segments that fill a hole below the highest sequence number seen and
  end before the segment after that hole ends (tcptrace's out-of-order).
* ``zwnd_probes``: segments with sequence space sent while the other side's last
  advertised window was 0; they are not counted as data seen (tcptrace).
* RTT: a sample when an ACK acknowledges exactly the end of a segment that no earlier
  ACK covered, that was not retransmitted, and after which no earlier sequence
  number was sent again before the ACK (Karn's rule, tcptrace's "intervening
  transmissions"); ``rtt_*_us`` in microseconds as tcptrace (pcap times). Wireshark's
  ``ack_rtt`` (the exact analyser's) takes every ACK that ends exactly at an unacked
  segment, retransmitted or not. ``rtt_3whs_us``: the sample of the SYN (SYN-ACK).
* ``irtt_ns``: Wireshark's initial RTT (first pure SYN to the first ACK without SYN
  after it), as the exact analyser.
* SACK: ``sack_pkts`` ACKs with SACK blocks, ``max_sack_blocks``, ``dsack_pkts``
  (first block below the ACK, inside or overlapping the second: tcptrace's three cases).
* Windows: ``win_max``, ``win_min`` (non-zero), ``win_zero`` (ACKs advertising 0),
  scaled once both SYNs asked for scaling (never in a SYN).
* Zeek ``history`` and ``state`` as the exact analyser, with ``t`` from
  ``rexmit_pkts``' rule and ``g`` a segment starting past the highest sequence end
  seen that way (Wireshark's lost segment without its zero-window-probe exception).

Memory: the state is per direction (a few numbers, the holes below the highest sequence
number: at most :data:`MAX_HOLES`, and the segments not yet acknowledged: the newest
:data:`MAX_PENDING` per direction, as Wireshark's unacked list, and
:data:`MAX_PENDING_ALL` in all — an ACK of an older one gives no RTT sample, where
tcptrace, which keeps everything, would take one). It grows with the number of
connections (a few hundred bytes each, as tcptrace's and Wireshark's tables), not
with the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rawlab import _tcp_summary as K
from rawlab.analysis.tcp.frontend import held, tunnelled
from rawlab.decode import columns as C

if TYPE_CHECKING:
    import pyarrow as pa

    from rawlab.analysis.tcp.events import Connection

MAX_PENDING = K.MAX_PENDING  # unacknowledged segments kept per direction (TCP_MAX_UNACKED_SEGMENTS)
MAX_PENDING_ALL = K.MAX_PENDING_ALL  # ... and in all (the newest): ~2 MB, whatever the connections
MAX_HOLES = K.MAX_HOLES  # holes kept per direction below its highest sequence number (the highest)

#: per-direction counters (``c2s_<name>`` and ``s2c_<name>`` in :meth:`ConnSummary.columns`)
DIR_FIELDS = ("packets", "data_pkts", "data_bytes", "unique_bytes", "rexmit_pkts",
              "rexmit_bytes", "ooo_pkts", "zwnd_probes", "ack_pkts", "pure_acks", "syn", "fin",
              "rst", "sack_pkts", "dsack_pkts", "max_sack_blocks", "win_max", "win_min",
              "win_zero", "rtt_samples", "rtt_min_us", "rtt_avg_us", "rtt_max_us",
              "rtt_3whs_us", "flags_seen", "bad_checksums", "gaps")
# the compiled table's names of the columns named otherwise here
_RENAME = {"max_sack_blocks": "max_sack", "rtt_min_us": "rtt_min", "rtt_max_us": "rtt_max",
           "rtt_3whs_us": "rtt_3whs", "flags_seen": "flags"}


class ConnSummary:
    """Connections of a stream of batches; :meth:`add` each batch, then :meth:`columns`."""

    def __init__(self) -> None:
        # the exact analyser's front end and its IP reassembly are
        # made when a batch first needs them (most files: never)
        self._fields: Any = None
        self.reassembly: Any = None
        self._core = K.Summary(C.CSUM_BAD, C.CSUM_NOTE_HINT, C.L4_TCP)
        self._layouts: dict[tuple[tuple[int, int, int], ...], tuple[int, int, int]] = {}
        # (stream, direction, owners) of records that name the processes at their ends
        # (pcapng written with ``capture --processes``), for the table's process columns
        self.owners: list[tuple[int, int, Any]] = []

    @property
    def n(self) -> int:
        """Connections so far."""
        return self._core.connections

    @property
    def pending(self) -> int:
        """Segments kept until acknowledged (for RTT samples), in all connections."""
        return self._core.pending

    # ---- one batch ----------------------------------------------------------------------

    def add(self, batch: C.Batch, rows: int | None = None) -> None:
        """Take the first `rows` rows (all) of a batch."""
        n = len(batch) if rows is None else min(rows, len(batch))
        if not n:
            return
        c = batch.cols
        # a checksum that is not good keeps the row's fields good (status CHECKSUM: all
        # held; the compiled part counts a bad one unless the kernel's word decides); a
        # UDP datagram on a tunnel's port (VXLAN, Geneve ...) may carry TCP: read per packet
        easy = held(c, n)
        easy &= ~tunnelled(c, n, easy)
        odd, owned = self._odd(batch, np.nonzero(~easy)[0])
        got = self._core.feed(c, batch.buf, self._layout_array(batch.layouts), n, easy, odd)
        for k, who in owned:
            self.owners.append((*got[k], who))

    def _layout_array(self, layouts: list[tuple[tuple[int, int, int], ...]]) -> np.ndarray:
        """Each option layout's (window scale at, SACK at, SACK length), -1: none."""
        out = np.full((max(len(layouts), 1), 3), -1, np.int64)
        for li, lay in enumerate(layouts):
            got = self._layouts.get(lay)
            if got is None:
                ws = next((pos for kind, pos, _t in lay if kind == 3), -1)
                sack = next(((pos, total) for kind, pos, total in lay if kind == 5), (-1, -1))
                got = self._layouts[lay] = (ws, *sack)
            out[li] = got
        return out

    def _odd(self, batch: C.Batch, rows: np.ndarray) -> tuple[list[tuple[int, ...]],
                                                               list[tuple[int, Any]]]:
        """Rows the columns do not hold, read as the exact analyser reads them: the
        compiled part's tuples, and (index among them, owners) of records naming processes."""
        from rawlab.decode.checksum import Verdict

        out: list[tuple[int, ...]] = []
        owned: list[tuple[int, Any]] = []
        if not len(rows):
            return out, owned
        if self._fields is None:
            from rawlab.analysis.reassembly import IpReassembly
            from rawlab.analysis.tcp.analyzer import segment_fields

            self._fields = segment_fields
            self.reassembly = IpReassembly()  # as the exact analyser's: fragmented segments
        frames = batch.cols["frame"]
        for i in rows.tolist():
            rec = batch.record(i)
            got = self._fields(rec.data, rec.linktype, rec.csum_status, self.reassembly,
                               int(frames[i]), rec.ts_ns)
            if got is None:
                continue
            if getattr(rec, "owners", None) is not None:
                owned.append((len(out), rec.owners))
            src, dst, hdr, l4, opts, csum = got
            sport, dport, seq, ack, off, win = hdr
            v6 = len(src) == 16
            sh, sl = (int.from_bytes(src[:8], "big"), int.from_bytes(src[8:], "big")) if v6 \
                else (0, int.from_bytes(src, "big"))
            dh, dl = (int.from_bytes(dst[:8], "big"), int.from_bytes(dst[8:], "big")) if v6 \
                else (0, int.from_bytes(dst, "big"))
            sack = list(opts.get("sack", ()))[:4]
            blocks = [x for b in sack[:2] for x in b] + [0] * (4 - 2 * min(len(sack), 2))
            out.append((i, int(frames[i]), rec.ts_ns, 6 if v6 else 4, sh, sl, dh, dl, sport,
                        dport, seq, ack, off & 0x1FF, win, max(l4 - (off >> 12) * 4, 0),
                        int(csum == Verdict.BAD), opts.get("wscale", -1), len(sack), *blocks))
        return out, owned

    # ---- results ------------------------------------------------------------------------

    def _table(self) -> tuple[dict[str, np.ndarray], list[tuple[Any, ...]]]:
        """The compiled table: its figures by name (``c2s_``/``s2c_`` per direction), and
        each connection's endpoints and history."""
        raw, conns = self._core.table()
        names = [*K.CONN_FIELDS, *(f"c2s_{f}" for f in K.DIR_FIELDS),
                 *(f"s2c_{f}" for f in K.DIR_FIELDS)]
        fig = np.frombuffer(raw, np.int64).reshape(len(conns), len(names))
        return {k: fig[:, j] for j, k in enumerate(names)}, conns

    def columns(self) -> dict[str, np.ndarray]:
        """One row per connection, by stream number: the module docstring's columns."""
        from rawlab.analysis.tcp.zeek import state_of

        fig, conns = self._table()
        n = len(conns)
        out: dict[str, Any] = {"stream": np.arange(n, dtype=np.int64),
                               "family": np.array([c[0] for c in conns], np.int64)}
        ends: dict[str, list[Any]] = {"client": [], "client_port": [], "server": [],
                                      "server_port": []}
        for ver, ah, al, bh, bl, ports, client_is_b, _flipped, _h in conns:
            def addr(hi: int, lo: int, v6: bool = ver == 6) -> bytes:
                return hi.to_bytes(8, "big") + lo.to_bytes(8, "big") if v6 else \
                    lo.to_bytes(4, "big")
            a, b = (addr(ah, al), ports >> 16), (addr(bh, bl), ports & 0xFFFF)
            client, server = (b, a) if client_is_b else (a, b)
            ends["client"].append(client[0])
            ends["client_port"].append(client[1])
            ends["server"].append(server[0])
            ends["server_port"].append(server[1])
        for k in ("client", "server"):
            out[k] = np.array(ends[k], object)
            out[f"{k}_port"] = np.array(ends[f"{k}_port"], np.int64)
        for k in ("first_frame", "last_frame", "first_ts_ns", "last_ts_ns"):
            out[k] = fig[k].copy()
        out["duration_ns"] = out["last_ts_ns"] - out["first_ts_ns"]
        out["irtt_ns"] = fig["irtt_ns"].copy()
        out["history"] = np.array([("^" if c[7] else "") + c[8].decode() for c in conns],
                                  object)
        out["state"] = np.array([state_of(
            bool(fig["c2s_syn_pure"][k]), bool(fig["s2c_synack"][k]), bool(fig["c2s_rst"][k]),
            bool(fig["s2c_rst"][k]), bool(fig["c2s_fin"][k]), bool(fig["s2c_fin"][k]))
            for k in range(n)], object)
        for side in ("c2s", "s2c"):
            for f in DIR_FIELDS:
                if f == "rtt_avg_us":
                    ns = fig[f"{side}_rtt_samples"]
                    v = np.where(ns > 0, fig[f"{side}_rtt_sum"] // np.maximum(ns, 1), 0)
                else:
                    v = fig[f"{side}_{_RENAME.get(f, f)}"].copy()
                out[f"{side}_{f}"] = v
            out[f"{side}_rtt_sum_us"] = fig[f"{side}_rtt_sum"].copy()
        return out

    def connections(self) -> list[Connection]:
        """The connections as :class:`~rawlab.analysis.tcp.events.Connection` (for
        :func:`rawlab.present.tcp.render_table`): ``stats`` hold packets, payload bytes,
        tcptrace's retransmitted packets and RTT; ``analysis_counts`` tcptrace's
        out-of-order packets, zero-window probes, ACKs advertising a zero window, SACK
        and D-SACK packets (both directions added), named as in the module docstring."""
        from rawlab.analysis.tcp.events import Connection, DirStats

        t = self.columns()
        out = []
        for k in range(len(t["stream"])):
            stats = []
            for side in ("c2s", "s2c"):
                ns = int(t[f"{side}_rtt_samples"][k])
                stats.append(DirStats(
                    segments=int(t[f"{side}_packets"][k]), bytes=int(t[f"{side}_data_bytes"][k]),
                    retransmissions=int(t[f"{side}_rexmit_pkts"][k]),
                    rtt_min_ns=int(t[f"{side}_rtt_min_us"][k]) * 1000 if ns else None,
                    rtt_max_ns=int(t[f"{side}_rtt_max_us"][k]) * 1000 if ns else None,
                    rtt_sum_ns=int(t[f"{side}_rtt_sum_us"][k]) * 1000,
                    rtt_samples=ns, flags_seen=int(t[f"{side}_flags_seen"][k])))
            counts = {}
            for name, f in (("out_of_order", "ooo_pkts"), ("zero_window_probe", "zwnd_probes"),
                            ("zero_window", "win_zero"), ("sack", "sack_pkts"),
                            ("dsack", "dsack_pkts")):
                v = int(t[f"c2s_{f}"][k] + t[f"s2c_{f}"][k])
                if v:
                    counts[name] = v
            irtt = int(t["irtt_ns"][k])
            out.append(Connection(
                k, (t["client"][k], int(t["client_port"][k])),
                (t["server"][k], int(t["server_port"][k])), int(t["family"][k]),
                int(t["first_ts_ns"][k]), int(t["last_ts_ns"][k]), int(t["first_frame"][k]),
                int(t["last_frame"][k]), str(t["state"][k]), str(t["history"][k]),
                irtt or None, 0, (stats[0], stats[1]), analysis_counts=counts, closed="end"))
        return out


def summarise(batches: Any, count: int | None = None) -> dict[str, np.ndarray]:
    """:meth:`ConnSummary.columns` of a stream of batches (the first `count` rows)."""
    s = ConnSummary()
    seen = 0
    for b in batches:
        n = len(b) if count is None else min(len(b), count - seen)
        s.add(b, n)
        seen += n
        if count is not None and seen >= count:
            break
    return s.columns()


def to_arrow(cols: dict[str, np.ndarray]) -> pa.Table:
    """The summary as a :class:`pyarrow.Table` (addresses as binary)."""
    import pyarrow as pa

    return pa.table({k: pa.array(v.tolist() if v.dtype == object else v)
                     for k, v in cols.items()})
