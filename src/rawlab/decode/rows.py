"""One row of the columnar schema from the per-packet views: the rows the fast path left.

    from rawlab.decode.rows import fill, CSUM_CODES
    pkt = Decoder().decode(batch.data(i), linktype, hint)
    fill(cols, i, pkt)          # row i of `cols` (a batch's numpy columns) from pkt's views

A row that left the fast path (:mod:`rawlab.decode.columns`, ``status != FAST``) may hold
anything in its columns (the vectorised extraction read past a cut header, or stopped at
a shape it does not know). :func:`fill` clears the row and sets every column it can from
the lenient views of :mod:`rawlab.decode.dispatch` instead, with the fast path's meaning:
the link header (Ethernet with its first two VLAN tags, Linux cooked v1/v2), the first
IP header (IPv4, or IPv6 with the protocol after its extension headers), the transport
header right after it (TCP, UDP, ICMP, ICMPv6 of any type: a quoted packet in an ICMP
error is not the row's), ARP, and the transport checksum's verdict (:data:`CSUM_CODES`,
which knows more verdicts than the fast path's good/unverified). A tunnel's inner
headers are not the row's: ``ip_proto`` says what the outer IP header carries.

``tests/unit/test_tables.py`` holds :func:`fill` equal to the fast path on every row the
fast path holds (the same table either way).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rawlab.decode.checksum import Verdict
from rawlab.decode.columns import L4_ICMP, L4_ICMP6, L4_TCP, L4_UDP
from rawlab.decode.dispatch import Packet
from rawlab.decode.ethernet import ETH_P_IP, ETH_P_IPV6
from rawlab.records import ARPHRD_NETLINK

#: the ``l4_csum`` column: the fast path's 0 none, 1 good, 2 unverified, and the verdicts
#: only the per-packet path gives
CSUM_CODES = {None: 0, Verdict.GOOD: 1, Verdict.UNVERIFIED: 2, Verdict.BAD: 3,
              Verdict.PARTIAL: 4, Verdict.KERNEL_VERIFIED: 5}

#: columns that describe the record, not its bytes: kept as they are
_RECORD = frozenset({"frame", "ts_ns", "caplen", "wirelen", "interface", "linktype",
                     "direction", "data_offset", "status"})
_L4 = {"tcp": L4_TCP, "udp": L4_UDP, "icmp": L4_ICMP, "icmpv6": L4_ICMP6}


def clear(cols: dict[str, np.ndarray], i: int) -> None:
    """Every column of row `i` but the record's own to its empty value (0, False; -1 for a
    TCP option layout)."""
    for name, col in cols.items():
        if name not in _RECORD:
            col[i] = -1 if name == "tcp_opt_layout" else 0


def fill(cols: dict[str, np.ndarray], i: int, pkt: Packet) -> None:
    """Row `i` of `cols` from the decoded packet's views (module docstring). Columns the
    dict does not have are skipped; ``tcp_mss``, ``tcp_wscale``, ``tcp_sack_perm``,
    ``tcp_tsval``, ``tcp_tsecr`` and ``opt_valid`` (a bit per option present: 1 mss,
    2 wscale, 4 sack_perm, 8 timestamps) are set when present."""
    clear(cols, i)
    vals: dict[str, Any] = {}
    layers = pkt.layers[: pkt.quoted]
    net_at = 0
    ip_at = -1
    for k, lay in enumerate(layers):
        name = lay.name
        if k == 0 and name in ("eth", "sll"):
            net_at = lay.header_len
            vals.update(_link(lay))
        elif name in ("ipv4", "ipv6"):
            ip_at = k
            if k == 0:
                vals["ethertype"] = ETH_P_IP if name == "ipv4" else ETH_P_IPV6
            vals.update(_ip(lay, net_at, len(pkt.data)))
            break
        elif name == "arp" and k == 1:
            vals.update(_arp(lay))
            break
        else:
            break
    if ip_at >= 0 and ip_at + 1 < len(layers):
        l4 = layers[ip_at + 1]
        code = _L4.get(l4.name)
        if code is not None:
            vals.update(_transport(l4, code, vals["l4_length"]))
            vals["l4_csum"] = CSUM_CODES.get(_verdict(pkt, ip_at + 1), 0)
    for name, v in vals.items():
        col = cols.get(name)
        if col is not None:
            col[i] = v


def _verdict(pkt: Packet, k: int) -> Verdict | None:
    cs = pkt.checksums[k]
    return None if cs is None else cs.verdict


def _link(lay: Any) -> dict[str, Any]:
    if lay.name == "eth":
        v: dict[str, Any] = {"eth_type": lay.type, "eth_src": int.from_bytes(lay.src),
                             "eth_dst": int.from_bytes(lay.dst), "vlan_count": len(lay.tags),
                             "ethertype": lay.ethertype, "net_offset": lay.hlen}
        for n, tag in enumerate(lay.tags[:2], 1):
            v[f"vlan{n}_tpid"], v[f"vlan{n}_tci"] = tag.tpid, tag.tci
        return v
    v = {"sll_pkttype": lay.pkttype, "sll_hatype": lay.hatype, "sll_halen": lay.halen,
         "sll_addr": int.from_bytes(lay.addr)}
    if lay.hatype != ARPHRD_NETLINK:  # netlink's cooked header carries a family, no EtherType
        v["ethertype"], v["net_offset"] = lay.protocol, lay.header_len
    if hasattr(lay, "ifindex"):
        v["sll_ifindex"], v["sll2_reserved"] = lay.ifindex, lay.reserved
    return v


def _ip(ip: Any, net_at: int, caplen: int) -> dict[str, Any]:
    l4_at = net_at + ip.hlen
    l4_len = ip.l4_length
    v: dict[str, Any] = {"ip_proto": ip.proto, "net_offset": net_at, "l4_offset": l4_at,
                         "l4_length": l4_len, "complete": caplen >= l4_at + l4_len}
    if ip.name == "ipv4":
        v.update(ip_version=4, ip4_ihl=ip.ihl, ip4_tos=ip.tos,
                 ip4_total_length=ip.total_length, ip4_id=ip.id, ip4_flags=ip.flags,
                 ip4_ttl=ip.ttl, ip4_checksum=ip.checksum, src_lo=int.from_bytes(ip.src),
                 dst_lo=int.from_bytes(ip.dst))
    else:
        src, dst = int.from_bytes(ip.src), int.from_bytes(ip.dst)
        v.update(ip_version=6, ip6_traffic_class=ip.traffic_class,
                 ip6_flow_label=ip.flow_label, ip6_hop_limit=ip.hop_limit,
                 ip6_payload_length=ip.payload_length, src_hi=src >> 64,
                 src_lo=src & 0xFFFF_FFFF_FFFF_FFFF, dst_hi=dst >> 64,
                 dst_lo=dst & 0xFFFF_FFFF_FFFF_FFFF)
    return v


def _transport(lay: Any, code: int, l4_len: int) -> dict[str, Any]:
    v: dict[str, Any] = {"l4": code, "l4_checksum": lay.checksum}
    if code == L4_TCP:
        v.update(sport=lay.sport, dport=lay.dport, tcp_seq=lay.seq, tcp_ack=lay.ack,
                 tcp_dataofs=lay.dataofs, tcp_reserved=lay.reserved, tcp_flags=lay.flags,
                 tcp_window=lay.window, tcp_urgptr=lay.urgptr,
                 payload_length=max(l4_len - lay.dataofs * 4, 0))
        present = 0
        if lay.mss is not None:
            v["tcp_mss"], present = lay.mss, present | 1
        if lay.wscale is not None:
            v["tcp_wscale"], present = lay.wscale, present | 2
        if lay.sack_permitted:
            v["tcp_sack_perm"], present = True, present | 4
        ts = lay.timestamps
        if ts is not None:
            v["tcp_tsval"], v["tcp_tsecr"], present = ts[0], ts[1], present | 8
        v["opt_valid"] = present
    elif code == L4_UDP:
        v.update(sport=lay.sport, dport=lay.dport, udp_length=lay.length,
                 payload_length=max(l4_len - 8, 0))
    else:
        v.update(icmp_type=lay.type, icmp_code=lay.code, icmp_rest=lay.rest,
                 payload_length=max(l4_len - 8, 0))
    return v


def _arp(arp: Any) -> dict[str, Any]:
    v: dict[str, Any] = {"arp_op": arp.op, "arp_length": len(arp.buf)}
    if arp.hlen == 6 and arp.plen == 4:
        v.update(arp_sha=int.from_bytes(arp.sha), arp_spa=int.from_bytes(arp.spa),
                 arp_tha=int.from_bytes(arp.tha), arp_tpa=int.from_bytes(arp.tpa))
    return v
