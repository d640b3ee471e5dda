"""The fields a display filter reads: their names (the packet JSON's, docs/json.md, with
Wireshark's habits added), what each holds, and where their values come from.

    kind("ip.src")                        # "addr" (None: no such field)
    src = PacketFields(names, analyse=True)
    cols = src.fields(first, records, interface_name)   # name -> per frame, its values

A *field source* gives, for a run of consecutive frames, each requested field's
values per frame (an empty list when a frame lacks it): ``fields(first, records,
interface_name) -> {name: [[values of frame first], [values of first+1], ...]}``.
:class:`PacketFields` is the exact path: each packet decoded and turned into its
JSON object (rawlab.present.packet.packet_json), the TCP analyser run in frame
order when an analysis field is asked for. A columnar source (rawlab.decode.columns,
Arrow batches of the common shapes) can stand in for the names it holds and hand
the rows it cannot hold to this one; the display filter only sees the columns.

Names: ``frame ts caplen len interface direction vlan layers truncated malformed``,
then ``LAYER.FIELD`` for each layer key of the packet JSON (``eth``, ``sll``,
``ipv4``, ``ipv6``, ``arp``, ``tcp``, ``udp``, ``icmp``, ``icmpv6``, ``netlink``,
``vsock``, ``data``); ``ip.X`` is ``ipv4.X`` or ``ipv6.X``; ``ip.addr``,
``eth.addr``: source or destination; ``tcp.port``, ``udp.port``: either port;
``tcp.flags.syn`` (``fin rst psh ack urg ece cwr ae``; Wireshark's ``reset`` and
``push`` too): one flag, true or false; the analyser's
``tcp.analysis.NAME`` (Wireshark's expert flags: retransmission, duplicate_ack ...;
``tcp.analysis`` alone: any), ``tcp.stream``, ``tcp.seq_rel``, ``tcp.ack_rel``,
``tcp.next_seq_rel``, ``tcp.ack_rtt_ns``, ``tcp.bytes_in_flight``,
``tcp.dup_ack_num``, ``tcp.dup_ack_frame``, ``tcp.acked_frame``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rawlab.decode.dispatch import Decoder
from rawlab.decode.tcp import TcpFlag
from rawlab.present.fmt import ip_text, mac_text
from rawlab.present.packet import _addr_fields, packet_json
from rawlab.records import CsumHint, Record

TOP = {"frame": "int", "ts": "float", "caplen": "int", "len": "int", "interface": "any",
       "direction": "text", "vlan": "int", "layers": "text", "truncated": "bool",
       "malformed": "bool"}
_COMMON = {"checksum_status": "text", "checksum_expected": "int", "truncated": "bool",
           "malformed": "bool"}
ANALYSER = {"stream": "int", "seq_rel": "int", "ack_rel": "int", "next_seq_rel": "int",
            "ack_rtt_ns": "int", "bytes_in_flight": "int", "dup_ack_num": "int",
            "dup_ack_frame": "int", "acked_frame": "int"}
_EXTRA = {
    "eth": {"tags": "any", "ethertype": "int", "addr": "mac"},
    "ipv4": {"addr": "addr"}, "ipv6": {"ext_headers": "any", "proto": "int", "addr": "addr"},
    "tcp": {"flags": "text", "flags_int": "int", "options": "any", "len": "int", "port": "int",
            **ANALYSER},
    "udp": {"len": "int", "port": "int"},
    "netlink": {"family": "int", "messages": "any"},
    "data": {"proto": "int", "length": "int"},
}
FLAG_BITS = {f.name.lower(): int(f) for f in TcpFlag if f.name}
FLAG_BITS.update(reset=int(TcpFlag.RST), push=int(TcpFlag.PSH))  # Wireshark's words
_EITHER = {"addr": ("src", "dst"), "port": ("sport", "dport")}


@functools.cache
def catalogue() -> dict[str, dict[str, str]]:
    """Layer key -> field -> kind (rawlab.view.dfilter), from the decoders' own field lists."""
    from rawlab.decode.arp import Arp
    from rawlab.decode.ethernet import Ethernet
    from rawlab.decode.icmp import Icmp
    from rawlab.decode.icmpv6 import Icmpv6
    from rawlab.decode.ipv4 import Ipv4
    from rawlab.decode.ipv6 import Ipv6
    from rawlab.decode.sll import Sll, Sll2
    from rawlab.decode.tcp import Tcp
    from rawlab.decode.udp import Udp
    from rawlab.decode.vsockmon import Vsockmon

    out: dict[str, dict[str, str]] = {}
    for cls in (Ethernet, Sll, Sll2, Ipv4, Ipv6, Arp, Tcp, Udp, Icmp, Icmpv6, Vsockmon):
        fmts = _addr_fields(cls.name)
        names = [f[0] for f in cls.FIELDS] + (["sha", "spa", "tha", "tpa"] if cls is Arp else [])
        fields = out.setdefault(cls.name, dict(_COMMON))
        for n in names:
            fmt = fmts.get(n)
            fields[n] = "addr" if fmt is ip_text else "mac" if fmt is mac_text else "int"
    for layer, extra in _EXTRA.items():
        out.setdefault(layer, dict(_COMMON)).update(extra)
    out["vsock"]["virtio"] = "any"
    return out


def kind(name: str) -> str | None:
    """What the field ``name`` holds (rawlab.view.dfilter's kinds), None if there is none."""
    parts = name.split(".")
    if len(parts) == 1:
        return TOP.get(name) or ("layer" if name in catalogue() or name == "ip" else None)
    layer, field, rest = parts[0], parts[1], parts[2:]
    if layer == "tcp" and field == "analysis":
        from rawlab.analysis.tcp import ANALYSIS_NAMES

        return "layer" if not rest else "bool" if rest == [rest[0]] and rest[0] in \
            ANALYSIS_NAMES else None
    if layer == "tcp" and field == "flags" and rest:
        return "bool" if len(rest) == 1 and rest[0] in FLAG_BITS else None
    cat = catalogue()
    kinds = [cat[x].get(field) for x in (("ipv4", "ipv6") if layer == "ip" else (layer,))
             if x in cat]
    got = next((k for k in kinds if k is not None), None)
    if got is None or (rest and got != "any"):
        return None
    return got


def values(d: dict[str, Any], name: str) -> list[Any]:
    """The values of field ``name`` in one packet's JSON object (see the module)."""
    parts = name.split(".")
    head = parts[0]
    if head == "ip":
        rest = ".".join(parts[1:])
        return (values(d, f"ipv4.{rest}") + values(d, f"ipv6.{rest}")) if rest else [
            d.get("ipv4") or d.get("ipv6")]
    if len(parts) == 2 and parts[1] in _EITHER and head in d and parts[1] not in d[head]:
        a, b = _EITHER[parts[1]]
        return values(d, f"{head}.{a}") + values(d, f"{head}.{b}")
    if head == "tcp" and len(parts) > 2 and parts[1] in ("flags", "analysis"):
        tcp = d.get("tcp")
        if tcp is None:
            return []
        if parts[1] == "flags":
            return [bool(tcp.get("flags_int", 0) & FLAG_BITS[parts[2]])]
        return [True] if parts[2] in tcp.get("analysis", ()) else []
    if name == "tcp.analysis":
        return [True] if d.get("tcp", {}).get("analysis") else []
    cur: list[Any] = [d]
    for part in parts:
        nxt: list[Any] = []
        for c in cur:
            v = c.get(part) if isinstance(c, dict) else None
            if isinstance(v, list):
                nxt.extend(v)
            elif v is not None:
                nxt.append(v)
        cur = nxt
    return cur


Columns = dict[str, list[list[Any]]]


class PacketFields:
    """The exact field source: one packet at a time, decoded and turned into its JSON object;
    with ``analyse``, the TCP analyser sees every frame in order (so the ranges asked for
    must follow each other from the first frame)."""

    def __init__(self, names: Sequence[str], *, analyse: bool = False) -> None:
        self.names = list(names)
        self._decode = Decoder().decode
        self._tcp: Any = None
        self._next = 0
        if analyse:
            from rawlab.analysis.tcp import TcpAnalyzer

            self._tcp = TcpAnalyzer()

    @property
    def analysing(self) -> bool:
        return self._tcp is not None

    def fields(self, first: int, records: Sequence[Record],
               interface: Callable[[Record], str | int]) -> Columns:
        """Values of each field, per frame, for the frames ``first``, ``first + 1``, ...
        (0-based; with ``analyse``, these must follow the frames asked for before)."""
        if self._tcp is not None and first != self._next:
            raise ValueError(f"analysis needs frames in order: asked for {first}, "
                             f"next is {self._next}")
        self._next = first + len(records)
        return self.fields_of(range(first, first + len(records)), records, interface)

    def fields_of(self, numbers: Iterable[int], records: Sequence[Record],
                  interface: Callable[[Record], str | int]) -> Columns:
        """Values of each field for these frames (0-based numbers, any order; the analyser,
        if any, is fed them as they come)."""
        cols: Columns = {n: [] for n in self.names}
        adds = [(n, cols[n].append) for n in self.names]
        tcp = self._tcp
        decode = self._decode
        for i, rec in zip(numbers, records, strict=True):
            pkt = decode(rec.data, rec.linktype, CsumHint(rec.csum_status))
            d = packet_json(i + 1, rec, pkt, interface(rec))
            if tcp is not None:
                add_analysis(d, tcp.feed_bytes(i + 1, rec.ts_ns, rec.data, rec.linktype,
                                               rec.csum_status))
            for n, add in adds:
                add(values(d, n))
        return cols


def add_analysis(d: dict[str, Any], events: list[Any]) -> None:
    """Put the analyser's view of this frame's segment under the packet's ``tcp`` key."""
    from rawlab.analysis.tcp.events import Segment

    tcp = d.get("tcp")
    if tcp is None:
        return
    for ev in events:
        if type(ev) is Segment:
            tcp["analysis"] = list(ev.analysis)
            for k in ANALYSER:
                tcp[k] = getattr(ev, k)
            return


def needs_analysis(names: Iterable[str]) -> bool:
    return any(n.startswith("tcp.") and n.split(".")[1] in ("analysis", *ANALYSER)
               for n in names)
