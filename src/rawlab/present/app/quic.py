"""QUIC (rawlab.decode.quic) as a line, tree lines and JSON.

Line: ``QUIC Initial v1 DCID 8394c8f03e515708 SCID -, ClientHello SNI example.com ALPN h3``
(every coalesced packet; short headers as ``1-RTT (protected)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rawlab.decode.quic import FRAME_NAMES, TYPE_NAMES, VERSION_1, VERSION_2, QuicPacket
from rawlab.decode.tls import parse_hello
from rawlab.present.app import text
from rawlab.present.app.tls import handshake_json


def version_name(v: int) -> str:
    return {VERSION_1: "v1", VERSION_2: "v2"}.get(v, f"0x{v:08x}")


def packet_name(p: QuicPacket) -> str:
    if not p.long:
        return "1-RTT (protected)"
    if p.version == 0:
        return "Version Negotiation"
    return f"{TYPE_NAMES.get(p.type, p.type)} {version_name(p.version)}"


def line(q: Any) -> str:
    parts = []
    for p in q.packets:
        s = packet_name(p)
        if p.long:
            s += f" DCID {p.dcid.hex() or '-'} SCID {p.scid.hex() or '-'}"
        if p.supported_versions:
            s += " versions " + ",".join(version_name(v) for v in p.supported_versions)
        parts.append(s)
    s = "QUIC " + ", ".join(parts) if parts else "QUIC"
    ch = q.client_hello
    if ch is not None:
        s += ", Client Hello"
        if ch.sni is not None:
            s += f" SNI {text(ch.sni)}"
        if ch.alpn:
            s += " ALPN " + ",".join(text(a) for a in ch.alpn)
    return s


def _packet_json(q: Any, p: QuicPacket) -> dict[str, Any]:
    out: dict[str, Any] = {"offset": p.offset, "header_form": "long" if p.long else "short",
                           "first_byte": p.first}
    if p.long:
        out.update(version=p.version, packet_type=p.type,
                   packet_type_name=TYPE_NAMES.get(p.type) if p.version else
                   "Version Negotiation",
                   dcid=p.dcid.hex(), scid=p.scid.hex())
        if p.version == 0:
            out["supported_versions"] = list(p.supported_versions)
        if p.token:
            out["token"] = p.token.hex()
        if p.length >= 0:
            out["length"] = p.length
    ini = q.initial(p)
    if ini is not None:
        out["decrypted"] = True
        out["packet_number"] = ini.packet_number
        out["frames"] = [{"type": f.type, "name": FRAME_NAMES.get(f.type),
                          **({"offset": f.offset, "length": len(f.data)} if f.type == 6
                             else {})} for f in ini.frames]
    return out


def json(q: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"packets": [_packet_json(q, p) for p in q.packets]}
    hs = q.crypto_handshakes
    if hs:
        out["handshakes"] = [handshake_json(m, True, "q") for m in hs]
    return out


def tree(q: Any) -> Iterable[str]:
    for p in q.packets:
        d = _packet_json(q, p)
        yield f"packet @{p.offset:<5} {packet_name(p)}"
        for k, v in d.items():
            if k not in ("offset", "frames"):
                yield f"  {k:<13} {v}"
        for f in d.get("frames", ()):
            yield f"  frame         {f['name'] or f['type']}" + (
                f" offset {f['offset']} length {f['length']}" if f["type"] == 6 else "")
    for m in q.crypto_handshakes:
        h = parse_hello(m)
        yield "client hello" if h is not None and h.client else f"handshake {m.type}"
        for k, v in handshake_json(m, True, "q").items():
            yield f"  {k:<13} {v}"
