"""Application layers for people and programs: the line suffix, the -v tree lines and
the JSON object of each application protocol (docs/json.md, "application layers").

    suffix(pkt)          # ": DNS response 0x1a2b NOERROR A example.org → 93.184.216.34"
    tree_lines(view)     # the -v lines of one application layer (None: not one of ours)
    layer_json(view)     # its JSON object (None: not one of ours)

One module per protocol (dns.py, dhcp.py, ...) holds three functions, ``line``,
``tree`` and ``json``, of its view; :data:`PRESENTERS` maps a layer name to that
module. :mod:`rawlab.present.packet` calls these three hooks and nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from rawlab.present.fmt import jsonable

#: layer name -> the present module of its protocol (imported on first use)
MODULES = {
    "dns": "dns", "mdns": "dns", "llmnr": "dns",
    "dhcp": "dhcp", "ntp": "ntp", "snmp": "snmp", "ssh": "ssh",
    "tls": "tls", "http": "http", "quic": "quic", "scapy": "scapy",
}
_LOADED: dict[str, Any] = {}


def presenter(name: str) -> Any:
    """The module presenting layer ``name``, or None."""
    mod = MODULES.get(name)
    if mod is None:
        return None
    got = _LOADED.get(mod)
    if got is None:
        got = _LOADED[mod] = importlib.import_module(f"rawlab.present.app.{mod}")
    return got


def suffix(pkt: Any) -> str:
    """What the one-line view adds after the transport summary for the application
    layers of ``pkt`` (``""`` when it has none)."""
    layers = pkt.layers
    if len(layers) < 2:
        return ""
    parts = []
    for lay in layers:
        p = presenter(lay.name) if lay.name in MODULES else None
        if p is not None:
            text = p.line(lay)
            if text:
                parts.append(text)
    return (": " + "; ".join(parts)) if parts else ""


_TABLE: list[Any] = []


def with_scapy(pkt: Any, payloads: bool = True) -> None:
    """Append what scapy decodes of the part rawlab left undecoded (the long tail:
    rawlab.decode.scapy_tail), for the -v tree (``payloads``: UDP/TCP payloads on ports
    without an entry too) and JSON (a ``data`` layer only: both JSON paths, per packet
    and columnar, print the same)."""
    from rawlab.decode.descent import build_table
    from rawlab.decode.scapy_tail import scapy_tail

    if not _TABLE:
        _TABLE.append(build_table())
    tail = scapy_tail(pkt, _TABLE[0], payloads)
    if tail is not None:
        pkt.extend([tail])


def tree_lines(view: Any) -> Iterable[str] | None:
    p = presenter(view.name)
    return None if p is None else p.tree(view)


def layer_json(view: Any) -> dict[str, Any] | None:
    """The presenter's object, made JSON data (a value a broken message leaves as bytes
    becomes hex: fmt.jsonable)."""
    p = presenter(view.name)
    return None if p is None else jsonable(p.json(view))


def name_text(name: bytes) -> str:
    """A domain name as DNS presentation text: ``<Root>`` for the root (as Wireshark
    writes it), printable ASCII kept, other bytes as ``\\DDD`` (RFC 1035 5.1)."""
    if not name:
        return "<Root>"
    return "".join(chr(c) if 32 < c < 127 and c != 92 else f"\\{c:03d}" for c in name)


def text(b: bytes | memoryview) -> str:
    """Bytes that should be text (banners, header lines): printable ASCII as is, every
    other byte as ``\\xHH``."""
    return "".join(chr(c) if 32 <= c < 127 else f"\\x{c:02x}" for c in bytes(b))
