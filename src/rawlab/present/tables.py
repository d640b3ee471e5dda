"""Captures as tables: the ``packets`` table, one Arrow row per frame (docs/tables.md).

    tables = PacketTables(file="x.pcap")
    for batch in open_batches("x.pcap"):              # rawlab.decode.columns
        rb = tables.table(batch)                      # pyarrow.RecordBatch, PACKETS schema
    rb = tables.table(batch, records=recs)            # live: the Records behind the rows
    packets_reader(["a.pcap", "dir/"])                # every file as one RecordBatchReader

Every row: the fast path's columns (:mod:`rawlab.decode.columns`) where it holds the frame,
else the per-packet views' (:func:`rawlab.decode.rows.fill`): no row is ever dropped. The
columns that only mean something inside a batch (``data_offset``, ``tcp_opt_layout``)
become the TCP options' values; a value that does not apply to the row (a port of an
ARP frame, IPv6 fields of IPv4) is null, not 0. Added for people and engines: the
frame's time (``time``, UTC), the source file, the interface's and link type's names,
the layer names (``eth:ipv4:tcp``, as the per-packet decoder names them), addresses as
text and the processes at each end (``capture --processes``; null otherwise). Text
columns are dictionary-encoded (a capture repeats its few addresses).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rawlab.decode import columns as C
from rawlab.decode.rows import fill
from rawlab.records import CsumHint, Owners, Record, linktype_name

if TYPE_CHECKING:
    import pyarrow as pa

ETH, SLL, SLL2, NETLINK = 1, 113, 276, 253
ETH_P_ARP = 0x0806

# (column, Arrow type name, which rows have a value): the packets table's numeric columns
# taken from the fast path's batch, in order (docs/tables.md says each one's meaning)
_GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("all", (("frame", "uint64"), ("ts_ns", "int64"))),
    ("all", (("interface", "uint32"),)),
    ("all", (("linktype", "uint32"),)),
    ("all", (("direction", "uint8"), ("caplen", "uint32"), ("wirelen", "uint32"))),
    ("all", (("status", "uint8"),)),
    ("eth", (("eth_type", "uint16"),)),
    ("eth", (("vlan_count", "uint8"),)),
    ("vlan1", (("vlan1_tpid", "uint16"), ("vlan1_tci", "uint16"))),
    ("vlan2", (("vlan2_tpid", "uint16"), ("vlan2_tci", "uint16"))),
    ("sll", (("sll_pkttype", "uint16"), ("sll_hatype", "uint16"), ("sll_halen", "uint16"),
             ("sll_addr", "uint64"))),
    ("sll2", (("sll_ifindex", "uint32"), ("sll2_reserved", "uint16"))),
    ("net", (("ethertype", "int32"), ("net_offset", "uint16"))),
    ("ip", (("ip_version", "uint8"), ("ip_proto", "int16"))),
    ("ip", (("src_hi", "uint64"), ("src_lo", "uint64"), ("dst_hi", "uint64"),
            ("dst_lo", "uint64"))),
    ("ip4", (("ip4_ihl", "uint8"), ("ip4_tos", "uint8"), ("ip4_total_length", "uint16"),
             ("ip4_id", "uint16"), ("ip4_flags", "uint8"), ("ip4_ttl", "uint8"),
             ("ip4_checksum", "uint16"))),
    ("ip6", (("ip6_traffic_class", "uint8"), ("ip6_flow_label", "uint32"),
             ("ip6_hop_limit", "uint8"), ("ip6_payload_length", "uint16"))),
    ("ip", (("l4_offset", "uint16"), ("l4_length", "uint32"), ("complete", "bool"))),
    ("l4", (("l4", "uint8"), ("payload_length", "uint32"), ("l4_checksum", "uint16"),
            ("l4_csum", "uint8"))),
    ("ports", (("sport", "uint16"), ("dport", "uint16"))),
    ("tcp", (("tcp_seq", "uint32"), ("tcp_ack", "uint32"), ("tcp_dataofs", "uint8"),
             ("tcp_reserved", "uint8"), ("tcp_flags", "uint16"), ("tcp_window", "uint16"),
             ("tcp_urgptr", "uint16"))),
    ("mss", (("tcp_mss", "uint16"),)),
    ("wscale", (("tcp_wscale", "uint8"),)),
    ("sackok", (("tcp_sack_perm", "bool"),)),
    ("ts", (("tcp_tsval", "uint32"), ("tcp_tsecr", "uint32"))),
    ("udp", (("udp_length", "uint16"),)),
    ("icmp", (("icmp_type", "uint8"), ("icmp_code", "uint8"), ("icmp_rest", "uint32"))),
    ("arp", (("arp_op", "uint16"), ("arp_length", "uint32"))),
)
_OPTS = {"tcp_mss": "uint16", "tcp_wscale": "uint8", "tcp_sack_perm": "bool",
         "tcp_tsval": "uint32", "tcp_tsecr": "uint32", "opt_valid": "uint8"}
_END_FIELDS = (("state", "string"), ("pid", "int32"), ("tid", "int32"), ("comm", "string"),
               ("cmdline", "string"), ("uid", "int64"), ("cgroup", "string"),
               ("container", "string"), ("netns", "uint64"), ("netns_name", "string"))
#: text columns (dictionary-encoded strings)
TEXT = ("file", "interface_name", "linktype_name", "layers", "eth_src", "eth_dst", "src",
        "dst", "arp_sha", "arp_spa", "arp_tha", "arp_tpa")


def _types() -> dict[str, Any]:
    import pyarrow as pa

    t: dict[str, Any] = {"uint8": pa.uint8(), "uint16": pa.uint16(), "uint32": pa.uint32(),
                         "uint64": pa.uint64(), "int16": pa.int16(), "int32": pa.int32(),
                         "int64": pa.int64(), "bool": pa.bool_(),
                         "string": pa.dictionary(pa.int32(), pa.string()),
                         "time": pa.timestamp("us", tz="UTC")}
    return t


def packets_schema(*, partitions: bool = True) -> pa.Schema:
    """The ``packets`` table's schema (docs/tables.md); `partitions`: with ``date`` and
    ``hour`` (a Hive-partitioned dataset keeps those in its directory names instead)."""
    import pyarrow as pa

    t = _types()
    fields = [pa.field(name, t[kind]) for name, kind in _column_kinds()]
    if partitions:
        fields += [pa.field("date", pa.date32()), pa.field("hour", pa.int32())]
    return pa.schema(fields)


def _column_kinds() -> list[tuple[str, str]]:
    """Every column in table order, with its type's name ('time' is the timestamp)."""
    after = {"ts_ns": (("time", "time"), ("file", "string")),
             "interface": (("interface_name", "string"),),
             "linktype": (("linktype_name", "string"),), "status": (("layers", "string"),),
             "eth_type": (("eth_src", "string"), ("eth_dst", "string")),
             "dst_lo": (("src", "string"), ("dst", "string")),
             "arp_length": (("arp_sha", "string"), ("arp_spa", "string"),
                            ("arp_tha", "string"), ("arp_tpa", "string"))}
    out: list[tuple[str, str]] = []
    for _group, cols in _GROUPS:
        for col in cols:
            out.append(col)
            out += after.get(col[0], ())
    for end in ("src", "dst"):
        out += [(f"{end}_process_{k}" if k == "state" else f"{end}_{k}", kind)
                for k, kind in _END_FIELDS]
    return out


class PacketTables:
    """Batches (:class:`rawlab.decode.columns.Batch`) as the packets table's record batches.

    `file`: the ``file`` column (the capture's name; None live). `interface_name(n)`:
    interface n's name (default: the batch's interfaces, pcapng's ``if_name``).
    `partitions`: add ``date`` and ``hour`` (UTC) columns.
    """

    def __init__(self, file: str | None = None, *,
                 interface_name: Callable[[int], str | None] | None = None,
                 partitions: bool = True) -> None:
        from rawlab.decode.dispatch import Decoder
        from rawlab.present.columns import _Texts

        self.file = file
        self.interface_name = interface_name
        self.partitions = partitions
        self.schema = packets_schema(partitions=partitions)
        self._decoder = Decoder()
        self._texts = _Texts()
        self._shapes: dict[tuple[int, ...], str] = {}

    def table(self, batch: C.Batch, rows: int | None = None,
              records: Sequence[Record] | None = None) -> pa.RecordBatch:
        """The first `rows` rows of `batch` (all by default) as one record batch; `records`:
        the Records of the rows, when the caller has them (their checksum hints and
        owners)."""
        import pyarrow as pa

        n = len(batch) if rows is None else rows
        cols = {k: v[:n] for k, v in batch.cols.items()}
        odd = np.nonzero(cols["status"] != C.FAST)[0]
        layers = np.empty(n, object)
        if len(odd):
            cols = {k: v.copy() for k, v in cols.items()}
        opts = self._options(batch, cols, n)
        cols.update(opts)
        self._shape_names(batch, cols, layers, odd)
        for i in odd.tolist():
            rec = records[i] if records is not None else batch.record(i)
            pkt = self._decoder.decode(rec.data, rec.linktype, CsumHint(rec.csum_status))
            fill(cols, i, pkt)
            layers[i] = ":".join(pkt.names)
        owners = _owners(batch, records, n)
        arrays = self._arrays(batch, cols, layers, owners)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    # -- the parts --
    def _options(self, batch: C.Batch, cols: dict[str, np.ndarray], n: int
                 ) -> dict[str, np.ndarray]:
        """TCP options of the fast rows, from their layouts (present.columns' reader)."""
        from rawlab.present.columns import _opt_values

        out = {k: np.zeros(n, np.bool_ if t == "bool" else t) for k, t in _OPTS.items()}
        lay = cols["tcp_opt_layout"]
        fast_tcp = (lay >= 0) & (cols["status"] == C.FAST)
        if not fast_tcp.any():
            return out
        rows_all = np.nonzero(fast_tcp)[0]
        for code in np.unique(lay[rows_all]).tolist():
            layout = batch.layouts[code]
            rows = rows_all[lay[rows_all] == code]
            vals = iter(_opt_values(batch, rows, layout, np.zeros(len(rows), np.int64)))
            for kind, _pos, total in layout:
                if kind == 2:
                    out["tcp_mss"][rows] = next(vals)
                    out["opt_valid"][rows] |= 1
                elif kind == 3:
                    out["tcp_wscale"][rows] = next(vals)
                    out["opt_valid"][rows] |= 2
                elif kind == 4:
                    out["tcp_sack_perm"][rows] = True
                    out["opt_valid"][rows] |= 4
                elif kind == 8:
                    out["tcp_tsval"][rows] = next(vals)
                    out["tcp_tsecr"][rows] = next(vals)
                    out["opt_valid"][rows] |= 8
                elif kind == 5:
                    for _ in range(2 * ((total - 2) // 8)):
                        next(vals)
        return out

    def _shape_names(self, batch: C.Batch, cols: dict[str, np.ndarray], layers: np.ndarray,
                     odd: np.ndarray) -> None:
        """The layer names of the fast rows: one decode per shape (the per-packet path's
        names for its first row), remembered across batches."""
        fast = np.ones(len(layers), bool)
        fast[odd] = False
        rows = np.nonzero(fast)[0]
        if not len(rows):
            return
        key = [cols[k][rows] for k in ("linktype", "vlan_count", "ethertype", "ip_version",
                                       "l4")]
        first, inv = C.factorize(*key)
        names = np.empty(len(first), object)
        for j, r in enumerate(rows[first].tolist()):
            shape = tuple(int(k[first[j]]) for k in key)
            got = self._shapes.get(shape)
            if got is None:
                rec = batch.record(r)
                got = self._shapes[shape] = ":".join(
                    self._decoder.decode(rec.data, rec.linktype).names)
            names[j] = got
        layers[rows] = names[inv]

    def _arrays(self, batch: C.Batch, cols: dict[str, np.ndarray], layers: np.ndarray,
                owners: list[tuple[int, Owners]]) -> list[Any]:
        import pyarrow as pa

        t = _types()
        valid = _valid(cols)
        n = len(layers)
        texts = self._text_columns(batch, cols, layers, valid)
        ends = _owner_columns(owners, n)
        out: list[Any] = []
        for name, kind in _column_kinds():
            if name in texts:
                out.append(texts[name])
            elif name in ends:
                out.append(ends[name])
            elif kind == "time":
                out.append(pa.array(cols["ts_ns"] // 1000, pa.timestamp("us", tz="UTC")))
            else:
                ok = valid[_GROUP_OF[name]]
                out.append(pa.array(cols[name], t[kind], mask=None if ok is None else ~ok))
        if self.partitions:
            days = cols["ts_ns"] // 86_400_000_000_000
            out.append(pa.array(days.astype(np.int32), pa.date32()))
            out.append(pa.array(((cols["ts_ns"] // 3_600_000_000_000) % 24).astype(np.int32)))
        return out

    def _text_columns(self, batch: C.Batch, cols: dict[str, np.ndarray], layers: np.ndarray,
                      valid: dict[str, np.ndarray | None]) -> dict[str, Any]:
        n = len(layers)
        tx = self._texts
        out: dict[str, Any] = {"file": _repeat(self.file, n)}
        name_of = self.interface_name or (lambda i: _iface_name(batch.interfaces, i))
        ifs, inv = np.unique(cols["interface"], return_inverse=True)
        out["interface_name"] = _dict([name_of(int(i)) for i in ifs.tolist()], inv)
        lts, inv = np.unique(cols["linktype"], return_inverse=True)
        out["linktype_name"] = _dict([linktype_name(int(x)) for x in lts.tolist()], inv)
        uniq, inv = np.unique(layers.astype(str), return_inverse=True)
        out["layers"] = _dict(uniq.tolist(), inv)
        for col, ok in (("eth_src", valid["eth"]), ("eth_dst", valid["eth"]),
                        ("arp_sha", valid["arp"]), ("arp_tha", valid["arp"])):
            u, inv = tx.mac_dict(cols[col])
            out[col] = _dict([b.decode() for b in u], inv, ok)
        ver = cols["ip_version"]
        for end in ("src", "dst"):
            u2, inv = tx.ip_dict(ver, cols[f"{end}_hi"], cols[f"{end}_lo"])
            out[end] = _dict([t.decode() for t, _ in u2], inv, valid["ip"])
        four = np.full(n, 4, np.uint8)
        zero = np.zeros(n, np.uint64)
        for col in ("arp_spa", "arp_tpa"):
            u2, inv = tx.ip_dict(four, zero, cols[col].astype(np.uint64))
            out[col] = _dict([t.decode() for t, _ in u2], inv, valid["arp"])
        return out


_GROUP_OF = {name: group for group, cols in _GROUPS for name, _ in cols}


def _valid(c: dict[str, np.ndarray]) -> dict[str, np.ndarray | None]:
    """Which rows have a value in each group of columns (None: every row)."""
    lt, ver, l4 = c["linktype"], c["ip_version"], c["l4"]
    tcp = l4 == C.L4_TCP
    opt = c["opt_valid"]
    eth = lt == ETH
    sll = (lt == SLL) | (lt == SLL2) | (lt == NETLINK)
    return {
        "all": None, "eth": eth, "vlan1": eth & (c["vlan_count"] >= 1),
        "vlan2": eth & (c["vlan_count"] >= 2), "sll": sll,
        "sll2": lt == SLL2, "net": (c["ethertype"] > 0) & (lt != NETLINK),
        "ip": (ver == 4) | (ver == 6), "ip4": ver == 4, "ip6": ver == 6, "l4": l4 != 0,
        "ports": tcp | (l4 == C.L4_UDP), "tcp": tcp, "mss": tcp & (opt & 1 > 0),
        "wscale": tcp & (opt & 2 > 0), "sackok": tcp & (opt & 4 > 0),
        "ts": tcp & (opt & 8 > 0), "udp": l4 == C.L4_UDP,
        "icmp": (l4 == C.L4_ICMP) | (l4 == C.L4_ICMP6),
        "arp": (c["ethertype"] == ETH_P_ARP) & (c["arp_length"] > 0),
    }


def _dict(values: list[str | None], indices: np.ndarray, valid: np.ndarray | None = None
          ) -> Any:
    """A dictionary-encoded text column: row i is values[indices[i]] (null where not
    `valid`, or where the value is None)."""
    import pyarrow as pa

    idx = indices.astype(np.int32)
    mask = None if valid is None else ~valid
    if any(v is None for v in values):
        none = np.array([v is None for v in values])[idx]
        mask = none if mask is None else mask | none
        values = ["" if v is None else v for v in values]
    return pa.DictionaryArray.from_arrays(
        pa.array(idx, pa.int32(), mask=mask), pa.array(values, pa.string()))


def _repeat(value: str | None, n: int) -> Any:
    return _dict([value], np.zeros(n, np.int32))


def _iface_name(interfaces: Sequence[Any], i: int) -> str | None:
    return interfaces[i].name if i < len(interfaces) else None


def _owners(batch: C.Batch, records: Sequence[Record] | None, n: int
            ) -> list[tuple[int, Owners]]:
    """(row, owners) of the rows whose Record carries owners (capture --processes, or a
    pcapng file written by it)."""
    if records is not None:
        return [(i, r.owners) for i, r in enumerate(records[:n]) if r.owners is not None]
    return [(i, r.owners) for i, r in sorted(batch.records.items())
            if i < n and r.owners is not None]


def _owner_columns(owners: list[tuple[int, Owners]], n: int) -> dict[str, Any]:
    import pyarrow as pa

    t = _types()
    out: dict[str, Any] = {}
    for e, end in enumerate(("src", "dst")):
        for k, kind in _END_FIELDS:
            name = f"{end}_process_{k}" if k == "state" else f"{end}_{k}"
            if not owners:
                out[name] = pa.nulls(n, t[kind])
                continue
            vals: list[Any] = [None] * n
            for i, pair in owners:
                o = pair[e]
                if o is not None:
                    v = getattr(o, k)
                    vals[i] = " ".join(v) if k == "cmdline" and v is not None else v
            arr = pa.array(vals, pa.string() if kind == "string" else t[kind])
            out[name] = arr.dictionary_encode() if kind == "string" else arr
    return out


# ---- whole files ---------------------------------------------------------------------------

def capture_files(paths: Iterable[str]) -> list[str]:
    """The capture files named: files as given; directories walked in name order, keeping
    the files that start as a pcap or pcapng file does (hidden files left out)."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
                out += [f for f in (os.path.join(root, n) for n in sorted(files)
                                    if not n.startswith((".", "_"))) if _looks_like_capture(f)]
        else:
            out.append(p)
    seen: set[str] = set()
    unique = []
    for p in out:  # a file named twice (itself and in its directory) is read once
        real = p if p == "-" else os.path.realpath(p)
        if real not in seen:
            seen.add(real)
            unique.append(p)
    return unique


def _looks_like_capture(path: str) -> bool:
    from rawlab.pcap.reader import PCAP_MAGIC_NS, PCAP_MAGIC_US, PCAPNG_SHB

    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return True  # let the reader say what is wrong with it
    if len(head) < 4:
        return True
    magics = {PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAPNG_SHB}
    return int.from_bytes(head, "little") in magics or int.from_bytes(head, "big") in magics


def file_batches(paths: Sequence[str], warn: Callable[[str], None]) -> Iterator[
        tuple[str, C.Batch]]:
    """(file, batch) for every batch of every capture file; a file that cannot be read
    to its end yields every batch before the problem, then `warn` gets one line naming
    the file and the problem, and the next file follows."""
    from rawlab.errors import RawlabError

    for path in paths:
        try:
            with C.open_batches(path) as src:
                yield from ((path, b) for b in src)
        except RawlabError as exc:
            warn(f"{exc.message}; the rows before it are kept")


def packets_reader(paths: Sequence[str], warn: Callable[[str], None]) -> pa.RecordBatchReader:
    """The packets table of every capture file named (directories walked), streamed: one
    record batch at a time, nothing copied to disk."""
    import pyarrow as pa

    files = capture_files(paths)
    schema = packets_schema()

    def batches() -> Iterator[pa.RecordBatch]:
        tables: PacketTables | None = None
        for path, batch in file_batches(files, warn):
            if tables is None or tables.file != path:
                tables = PacketTables(path)
            yield tables.table(batch)

    return pa.RecordBatchReader.from_batches(schema, batches())
