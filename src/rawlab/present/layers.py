"""The one-line text and the value formats of the link-layer and tunnel protocols
(present/packet.py keeps Ethernet, IP, TCP, UDP, ICMP, ARP, netlink and vsock).

    text = summary(pkt, names, wirelen, inner)   # the line for a packet holding any of
                                                 # these layers; None: packet.py's own
    FIELD_FORMATS["wlan"]["ra"](b"...")          # how a field's bytes are written

**The line** follows tcpdump: link-level wrappers that tcpdump shows only with ``-e``
(BSD loopback, PPP, Cisco HDLC, SLIP, NFLOG, IPoIB, PKTAP, Juniper, radiotap, an
802.11 data header, LLC/SNAP) are stepped over when something follows them; an
encapsulation prints its outer IP header (``IP a > b:`` or ``IP a.p > b.p:``), its
own words (``GREv0, proto 0x6558, key 0x28``, ``VXLAN, flags [I] (0x08), vni 100``,
``MPLS (label 100704, tc 0, [S], ttl 1)`` ...), then ``: `` and the line of the packet
inside, which ``inner`` (present.packet.summary) writes: a tunnelled TCP segment reads
as any other. A layer with nothing after it prints its own summary (STP, LLDP, CDP,
SLARP, PPP control protocols, 802.11 management and control frames).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rawlab.decode.cdp import Cdp
from rawlab.decode.chdlc import Chdlc, Slarp
from rawlab.decode.cisco import Avsp, CiscoMetadata
from rawlab.decode.dispatch import Packet
from rawlab.decode.erspan import Erspan, Erspan1, Erspan3
from rawlab.decode.fabricpath import Fabricpath
from rawlab.decode.geneve import Geneve
from rawlab.decode.gre import Gre
from rawlab.decode.ieee80211 import TYPE_CONTROL, TYPE_DATA, TYPE_MGMT, Wlan
from rawlab.decode.ipoib import Ipoib
from rawlab.decode.ipv4 import Ipv4
from rawlab.decode.ipv6 import Ipv6
from rawlab.decode.juniper import Juniper, JuniperEther
from rawlab.decode.llc import Llc
from rawlab.decode.lldp import Lldp
from rawlab.decode.lwapp import Lwapp
from rawlab.decode.macsec import Macsec
from rawlab.decode.mpls import Mpls, PwControlWord
from rawlab.decode.nflog import Nflog
from rawlab.decode.nsh import Nsh
from rawlab.decode.null import Loop, Null
from rawlab.decode.pbb import Pbb
from rawlab.decode.pktap import Pktap
from rawlab.decode.ppp import Ppp, PppControl
from rawlab.decode.pppoe import PppoeDiscovery, PppoeSession
from rawlab.decode.radiotap import Radiotap
from rawlab.decode.slip import Slip
from rawlab.decode.stp import Stp, bridge_id
from rawlab.decode.tcp import Tcp
from rawlab.decode.udp import Udp
from rawlab.decode.view import View
from rawlab.decode.vlan import Vlan
from rawlab.decode.vntag import Vntag
from rawlab.decode.vxlan import Vxlan, VxlanGpe
from rawlab.present.fmt import ip_text, mac_text

Inner = Callable[[Packet, int], str]


# ---- value formats ------------------------------------------------------------

def text(b: bytes) -> str:
    """Bytes that are text on the wire (names, descriptions) as a string."""
    return b.decode("utf-8", "replace")


def text_or_mac(b: bytes) -> str:
    """LLDP's chassis and port ids: printable text as text, 6 other bytes as a MAC
    address, anything else hex."""
    if b and all(32 <= c < 127 for c in b):
        return b.decode("ascii")
    return mac_text(b) if len(b) == 6 else b.hex()


_MAC = dict.fromkeys(("ra", "ta", "da", "sa", "bssid", "addr1", "addr2", "addr3", "addr4"),
                     mac_text)
#: layer name -> field name -> how its bytes are written (present.packet uses it for the
#: JSON object and the tree of these layers)
FIELD_FORMATS: dict[str, dict[str, Callable[[bytes], Any]]] = {
    "wlan": {**_MAC, "ssid": text},
    "ieee8021ah": {"cdst": mac_text, "csrc": mac_text},
    "macsec": {"system_identifier": mac_text},
    "ipoib": {"dgid": ip_text, "sgid": ip_text},
    "slarp": {"address": ip_text, "mask": ip_text},
    "nflog": {"prefix": text},
    "pktap": {"ifname": text, "cmdname": text, "ecmdname": text},
    "cdp": {"device_id": text, "port_id": text, "platform": text, "software_version": text},
    "lldp": {"chassis_id": text_or_mac, "port_id": text_or_mac, "port_desc": text,
             "system_name": text, "system_desc": text},
    "stp": {"config_name": text},
}


# ---- the line -------------------------------------------------------------------

#: link-level headers tcpdump prints only with -e: stepped over when a layer follows
_WRAPPERS = (Null, Loop, Slip, Ppp, Chdlc, Nflog, Ipoib, Pktap, Juniper, JuniperEther,
             Radiotap, Llc, PwControlWord)
_MINE: frozenset[type] = frozenset((
    *_WRAPPERS, Wlan, Slarp, PppControl, Gre, Erspan, Erspan1, Erspan3, Vxlan, VxlanGpe,
    Geneve, Mpls, PppoeSession, PppoeDiscovery, Pbb, Macsec, Fabricpath, Vntag, Nsh, Lldp,
    Stp, Cdp, CiscoMetadata, Avsp, Lwapp, Vlan))
_IP = (Ipv4, Ipv6)
#: names tuple -> whether this module writes the line (present.packet.summary looks here
#: first: a dictionary hit per packet)
LAYER_SHAPES: dict[tuple[str, ...], bool] = {}


def _is_mine(layers: list[View]) -> bool:
    prev: View | None = None
    for lay in layers:
        if type(lay) in _MINE or isinstance(lay, PppControl) or (
                isinstance(lay, _IP) and isinstance(prev, _IP)):
            return True
        prev = lay
    return False


def summary(pkt: Packet, names: tuple[str, ...], wirelen: int, inner: Inner) -> str | None:
    """The line of a packet with one of these layers (or IP in IP); None for the rest."""
    mine = LAYER_SHAPES.get(names)
    if mine is None:
        if len(LAYER_SHAPES) > 4096:
            LAYER_SHAPES.clear()
        mine = LAYER_SHAPES[names] = _is_mine(pkt.layers)
    if not mine:
        return None
    return _describe(pkt, wirelen, inner)


def _sub(pkt: Packet, layers: list[View]) -> Packet:
    return Packet(pkt.linktype, pkt.data, layers, pkt.hint)


def _describe(pkt: Packet, wirelen: int, inner: Inner) -> str:
    layers = pkt.layers
    for j, lay in enumerate(layers):
        kind = type(lay)
        boundary = kind in _MINE or isinstance(lay, PppControl) or (
            j and isinstance(lay, _IP) and isinstance(layers[j - 1], _IP))
        if not boundary:
            continue
        rest = layers[j + 1:]
        if isinstance(lay, _IP):  # IP in IP: the outer addresses, then the inner packet
            return _outer(layers[:j], "") + inner(_sub(pkt, layers[j:]), wirelen)
        if kind in _WRAPPERS or (kind is Wlan and lay.type == TYPE_DATA):
            if rest:
                return inner(_sub(pkt, rest), wirelen)
            return _own(lay, wirelen)
        words = _own(lay, wirelen)
        if not rest:
            return _outer(layers[:j], words) + words
        sep = " " if kind is Mpls else ": "
        return _outer(layers[:j], words) + words + sep + inner(_sub(pkt, rest), wirelen)
    return inner(pkt, wirelen)


def _outer(head: list[View], words: str) -> str:
    """``IP a > b: `` / ``IP a.p > b.p: `` for an encapsulation carried by IP (and UDP)."""
    ip = next((lay for lay in reversed(head) if isinstance(lay, _IP)), None)
    if ip is None:
        return ""
    fam = "IP" if isinstance(ip, Ipv4) else "IP6"
    t: Any = head[-1]
    if isinstance(t, Udp | Tcp):
        return f"{fam} {ip_text(ip.src)}.{t.sport} > {ip_text(ip.dst)}.{t.dport}: "
    return f"{fam} {ip_text(ip.src)} > {ip_text(ip.dst)}: "


def _own(lay: Any, wirelen: int) -> str:
    """One layer's own words."""
    fn = _TEXT.get(type(lay))
    if fn is None and isinstance(lay, PppControl):
        fn = _ppp_control
    if fn is None:
        return f"{lay.name}, length {len(lay.buf)}"
    return fn(lay)


def _flags(bits: int, names: tuple[tuple[int, str], ...]) -> str:
    return ",".join(n for b, n in names if bits & b) or "none"


def _gre(g: Gre) -> str:
    out = f"GREv{g.version}, proto 0x{g.proto:04x}"
    if g.key is not None:
        out += f", key 0x{g.key:x}"
    if g.seq is not None:
        out += f", seq {g.seq}"
    if g.ack is not None:
        out += f", ack {g.ack}"
    return out + f", length {len(g.buf)}"


def _erspan(e: Any) -> str:
    if isinstance(e, Erspan1):
        return "ERSPAN type I"
    if isinstance(e, Erspan3):
        return f"ERSPAN type III session {e.spanid} vlan {e.vlan} ft {e.ft}"
    return f"ERSPAN type II session {e.spanid} vlan {e.vlan} cos {e.cos} index {e.index}"


def _vxlan(v: Vxlan) -> str:
    return f"VXLAN, flags [{'I' if v.flags & 0x0800 else ''}] (0x{v.flags >> 8:02x}), vni {v.vni}"


def _vxlan_gpe(v: VxlanGpe) -> str:
    return f"VXLAN-GPE, flags (0x{v.flags:02x}), next-protocol {v.next_proto}, vni {v.vni}"


def _geneve(g: Geneve) -> str:
    fl = _flags(g.flags, ((0x80, "O"), (0x40, "C")))
    return f"Geneve, Flags [{fl}], vni 0x{g.vni:x}, proto 0x{g.proto_type:04x}"


def _mpls(m: Mpls) -> str:
    return " ".join(f"MPLS (label {lab.label}, tc {lab.exp}{', [S]' if lab.bottom else ''}, "
                    f"ttl {lab.ttl})" for lab in m.labels) or "MPLS"


def _pppoe(p: Any) -> str:
    if isinstance(p, PppoeSession):
        return f"PPPoE [ses 0x{p.session_id:x}]"
    codes = {0x09: "PADI", 0x07: "PADO", 0x19: "PADR", 0x65: "PADS", 0xA7: "PADT"}
    return (f"PPPoE {codes.get(p.code, f'code 0x{p.code:02x}')} [ses 0x{p.session_id:x}], "
            f"{len(p.tags)} tags, length {p.payload_length}")


_CP_NAMES = {"lcp": "LCP", "ipcp": "IPCP", "ipv6cp": "IP6CP", "ccp": "CCP", "pap": "PAP",
             "chap": "CHAP"}
_CP_CODES = {1: "Conf-Request", 2: "Conf-Ack", 3: "Conf-Nack", 4: "Conf-Reject",
             5: "Term-Request", 6: "Term-Ack", 7: "Code-Reject", 8: "Prot-Reject",
             9: "Echo-Request", 10: "Echo-Reply", 11: "Discard-Request"}


def _ppp_control(c: PppControl) -> str:
    return (f"{_CP_NAMES.get(c.name, c.name)}, {_CP_CODES.get(c.code, 'code')} "
            f"(0x{c.code:02x}), id {c.identifier}, length {c.length}")


def _macsec(m: Macsec) -> str:
    fl = _flags(m.tci, ((0x10, "ES"), (0x08, "SC"), (0x04, "SCB"), (0x02, "E"), (0x01, "C")))
    sci = f", sci {m.sci.hex()}" if m.sci is not None else ""
    return f"MACsec, an {m.an}, pn {m.pn}, flags [{fl}]{sci}"


def _nsh(h: Nsh) -> str:
    return (f"NSH, md-type {h.mdtype}, service-path-id 0x{h.spi:06x}, "
            f"service-index 0x{h.si:x}")


def _stp(s: Stp) -> str:
    kinds = {0x00: "Config", 0x80: "Topology Change", 0x02: "Rapid STP"}
    versions = {0: "802.1d", 2: "802.1w", 3: "802.1s"}
    if s.type == 0x80:
        return f"STP {versions.get(s.version, s.version)}, Topology Change, length {len(s.buf)}"
    prio, ext, hw = bridge_id(s.bridge_id)
    return (f"STP {versions.get(s.version, s.version)}, {kinds.get(s.type, f'type {s.type}')}, "
            f"Flags [0x{s.flags:02x}], bridge-id {prio | ext:04x}.{mac_text(hw)}.{s.port:04x}, "
            f"length {len(s.buf)}")


def _lldp(lay: Lldp) -> str:
    parts = ["LLDP"]
    if lay.chassis_id is not None:
        parts.append(f"chassis {text_or_mac(lay.chassis_id)}")
    if lay.port_id is not None:
        parts.append(f"port {text_or_mac(lay.port_id)}")
    if lay.ttl is not None:
        parts.append(f"ttl {lay.ttl}s")
    if lay.system_name is not None:
        parts.append(f"system {text(lay.system_name)!r}")
    return ", ".join(parts) + f", length {len(lay.buf)}"


def _cdp(c: Cdp) -> str:
    dev = f", Device-ID {text(c.device_id)!r}" if c.device_id is not None else ""
    port = f", Port-ID {text(c.port_id)!r}" if c.port_id is not None else ""
    return f"CDPv{c.version}, ttl {c.ttl}s{dev}{port}, length {len(c.buf)}"


def _slarp(s: Slarp) -> str:
    if s.ptype == 2:
        return (f"SLARP keepalive, mineseen 0x{s.mysequence or 0:08x}, yourseen "
                f"0x{s.yoursequence or 0:08x}, reliability 0x{s.reliability or 0:04x}")
    kind = {0: "request", 1: "reply"}.get(s.ptype, f"type {s.ptype}")
    addr = f" {ip_text(s.address)}/{ip_text(s.mask)}" if s.address and s.mask else ""
    return f"SLARP {kind}{addr}"


_MGMT = {0: "Assoc Request", 1: "Assoc Response", 2: "ReAssoc Request", 3: "ReAssoc Response",
         4: "Probe Request", 5: "Probe Response", 8: "Beacon", 9: "ATIM", 10: "Disassociation",
         11: "Authentication", 12: "Deauthentication", 13: "Action", 14: "Action No Ack"}
_CTRL = {7: "Control Wrapper", 8: "BAR", 9: "BA", 10: "Power Save-Poll", 11: "Request-To-Send",
         12: "Clear-To-Send", 13: "Acknowledgment", 14: "CF-End", 15: "CF-End+CF-Ack"}


def _wlan(w: Wlan) -> str:
    roles = w.roles()
    if w.type == TYPE_MGMT:
        out = f"802.11 {_MGMT.get(w.subtype, f'Management subtype {w.subtype}')}"
        if w.ssid is not None:
            out += f" ({text(w.ssid)})"
        reason = w.fixed.get("reason_code")
        if reason is not None:
            out += f", reason code {reason}"
        sa = roles.get("sa")
        return out + (f", SA {mac_text(sa)}" if sa else "")
    if w.type == TYPE_CONTROL:
        ra = roles.get("ra")
        return (f"802.11 {_CTRL.get(w.subtype, f'Control subtype {w.subtype}')}"
                + (f", RA {mac_text(ra)}" if ra else ""))
    if w.type == TYPE_DATA:
        kind = "Protected Data" if w.protected else "Data"
        return f"802.11 {kind}, SA {mac_text(roles.get('sa') or b'')}, length {len(w.buf)}"
    return f"802.11 type {w.type} subtype {w.subtype}, length {len(w.buf)}"


_TEXT: dict[type, Callable[[Any], str]] = {
    Gre: _gre, Erspan: _erspan, Erspan1: _erspan, Erspan3: _erspan, Vxlan: _vxlan,
    VxlanGpe: _vxlan_gpe, Geneve: _geneve, Mpls: _mpls, PppoeSession: _pppoe,
    PppoeDiscovery: _pppoe, Macsec: _macsec, Nsh: _nsh, Stp: _stp, Lldp: _lldp, Cdp: _cdp,
    Slarp: _slarp, Wlan: _wlan,
    Pbb: lambda p: f"802.1ah, isid {p.isid}, customer {mac_text(p.csrc)} > {mac_text(p.cdst)}",
    Vntag: lambda v: f"VN-Tag, dst vif {v.dst}, src vif {v.src}",
    Fabricpath: lambda f: f"FabricPath, ftag {f.ftag}, ttl {f.ttl}",
    Null: lambda n: f"Loopback, family {n.family}, length {len(n.buf)}",
    Loop: lambda n: f"Loopback, family {n.family}, length {len(n.buf)}",
    Ppp: lambda p: f"PPP, protocol 0x{p.protocol or 0:04x}, length {len(p.buf)}",
    Chdlc: lambda c: f"CHDLC, protocol 0x{c.protocol:04x}, length {len(c.buf)}",
    Slip: lambda s: f"SLIP, {'out' if s.direction else 'in'}, length {len(s.buf)}",
    Nflog: lambda f: f"NFLOG, version {f.version}, resource ID {f.res_id}, family {f.family}",
    Ipoib: lambda b: f"IPoIB, ethertype 0x{b.type:04x}, length {len(b.buf)}",
    Pktap: lambda p: f"PKTAP, dlt {p.dlt}, interface {text(p.ifname)}",
    Juniper: lambda j: f"Juniper, flags 0x{j.flags:02x}, length {len(j.buf)}",
    JuniperEther: lambda j: f"Juniper, flags 0x{j.flags:02x}, length {len(j.buf)}",
    Radiotap: lambda r: f"radiotap, length {len(r.buf)}",
    Llc: lambda lay: (f"LLC, dsap 0x{lay.dsap or 0:02x}, ssap 0x{lay.ssap or 0:02x}, "
                      f"length {len(lay.buf)}"),
    PwControlWord: lambda c: f"PW control word, sequence {c.sequence}",
    CiscoMetadata: lambda m: f"CMD, sgt {m.sgt}",
    Avsp: lambda a: f"Arista timestamp {a.ts_sec}.{a.ts_ns or 0:09d}",
    Lwapp: lambda w: f"LWAPP, {'control' if w.flags & 4 else 'data'}, slot {w.slot_id}",
    Vlan: lambda v: f"vlan {v.vid}, p {v.pcp}",
}
