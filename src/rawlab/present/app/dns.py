"""DNS, mDNS and LLMNR messages (rawlab.decode.dns) as a line, tree lines and JSON.

Line: ``DNS query 0x1a2b A example.org`` /
``DNS response 0x1a2b NOERROR A example.org → 93.184.216.34, CNAME x.example.net``
(the first :data:`SHOWN` answers; ``+N`` more).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rawlab.decode.dns import (
    CLASS_NAMES,
    EDNS_OPTION_NAMES,
    OPCODE_NAMES,
    RCODE_NAMES,
    T_A,
    T_AAAA,
    T_CNAME,
    T_DNAME,
    T_MX,
    T_NS,
    T_OPT,
    T_PTR,
    T_SOA,
    T_SRV,
    T_TXT,
    TYPE_NAMES,
    DnsRR,
)
from rawlab.present.app import name_text, text
from rawlab.present.fmt import ip_text

SHOWN = 3
LABEL = {"dns": "DNS", "mdns": "MDNS", "llmnr": "LLMNR"}


def type_name(t: int) -> str:
    return TYPE_NAMES.get(t, f"TYPE{t}")


def rcode_name(r: int) -> str:
    return RCODE_NAMES.get(r, f"RCODE{r}")


def value_text(rr: DnsRR) -> str:
    """An answer's value as text (the type's own form; unknown types as hex)."""
    d, t = rr.data, rr.type
    if d is None:
        return rr.rdata.hex() if rr.rdata else ""
    if t in (T_A, T_AAAA):
        return ip_text(d)
    if t in (T_NS, T_CNAME, T_PTR, T_DNAME):
        return name_text(d)
    if t == T_MX:
        return f"{d[0]} {name_text(d[1])}"
    if t == T_SRV:
        return f"{d[0]} {d[1]} {d[2]} {name_text(d[3])}"
    if t == T_SOA:
        return f"{name_text(d[0])} {name_text(d[1])} {' '.join(map(str, d[2:]))}"
    if t == T_TXT:
        return " ".join(f'"{text(s)}"' for s in d)
    if t == T_OPT:
        return " ".join(f"{EDNS_OPTION_NAMES.get(c, c)}={v.hex()}" for c, v in d)
    return rr.rdata.hex()


def line(d: Any) -> str:
    """``DNS query 0x1a2b A example.org``, ``DNS response 0x1a2b NOERROR A example.org →
    93.184.216.34``; other opcodes by name, marks for truncation and malformation."""
    label = LABEL.get(d.name, "DNS")
    op = "" if d.opcode == 0 else f" {OPCODE_NAMES.get(d.opcode, f'opcode {d.opcode}')}"
    s = f"{label}{op} {'response' if d.qr else 'query'} 0x{d.id:04x}"
    if d.qr:
        s += f" {rcode_name(d.full_rcode)}"
    if d.tc:
        s += " [TC]"
    qs = d.questions
    if qs:
        q = qs[0]
        s += f" {type_name(q.type)} {name_text(q.name)}"
        if len(qs) > 1:
            s += f" (+{len(qs) - 1} questions)"
    elif not d.qr and d.qdcount == 0:
        s += " (no question)"
    ans = [rr for rr in d.answers if rr.type != T_OPT]
    if ans:
        shown = [value_text(rr) if rr.type in (T_A, T_AAAA)
                 else f"{type_name(rr.type)} {value_text(rr)}" for rr in ans[:SHOWN]]
        s += " → " + ", ".join(shown) + (f" +{len(ans) - SHOWN}" if len(ans) > SHOWN else "")
    elif d.qr and (d.nscount or d.arcount):
        s += f" ({d.nscount} authority, {d.arcount} additional)"
    return s


def _flag_text(d: Any) -> str:
    bits = [n for n, on in (("response" if d.qr else "query", True),
                            ("authoritative", d.qr and d.aa), ("truncated", d.tc),
                            ("recursion desired", d.rd), ("recursion available", d.ra),
                            ("authenticated", d.ad), ("checking disabled", d.cd)) if on]
    return ", ".join(bits)


def _rr_json(rr: DnsRR) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name_text(rr.name), "type": rr.type,
                           "type_name": type_name(rr.type)}
    if rr.type == T_OPT:
        out.update(udp_payload_size=rr.cls, ext_rcode=rr.ttl >> 24,
                   edns_version=rr.ttl >> 16 & 0xFF, do=bool(rr.ttl >> 15 & 1),
                   z=rr.ttl & 0x7FFF, rdlength=rr.rdlength,
                   options=[{"code": c, "name": EDNS_OPTION_NAMES.get(c), "length": len(v),
                             "data": v.hex()} for c, v in (rr.data or ())])
        return out
    out.update({"class": rr.cls & 0x7FFF, "cache_flush": bool(rr.cls >> 15), "ttl": rr.ttl,
                "rdlength": rr.rdlength})
    d, t = rr.data, rr.type
    if d is None:
        out["rdata"] = rr.rdata.hex()
    elif t == T_A:
        out["a"] = ip_text(d)
    elif t == T_AAAA:
        out["aaaa"] = ip_text(d)
    elif t in (T_NS, T_CNAME, T_PTR, T_DNAME):
        out[{T_NS: "ns", T_CNAME: "cname", T_PTR: "ptr", T_DNAME: "dname"}[t]] = name_text(d)
    elif t == T_MX:
        out.update(preference=d[0], exchange=name_text(d[1]))
    elif t == T_SRV:
        out.update(priority=d[0], weight=d[1], port=d[2], target=name_text(d[3]))
    elif t == T_SOA:
        out.update(mname=name_text(d[0]), rname=name_text(d[1]), serial=d[2], refresh=d[3],
                   retry=d[4], expire=d[5], minimum=d[6])
    elif t == T_TXT:
        out["txt"] = [text(x) for x in d]
    else:
        out["rdata"] = rr.rdata.hex()
    return out


def json(d: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if hasattr(d, "length"):
        out["length"] = d.length
    out.update(
        id=d.id, flags=d.flags, response=bool(d.qr), opcode=d.opcode,
        authoritative=bool(d.aa), truncated_flag=bool(d.tc), recursion_desired=bool(d.rd),
        recursion_available=bool(d.ra), z=d.z, authenticated=bool(d.ad),
        checking_disabled=bool(d.cd), rcode=d.rcode,
        rcode_name=rcode_name(d.full_rcode), qdcount=d.qdcount, ancount=d.ancount,
        nscount=d.nscount, arcount=d.arcount,
        questions=[{"name": name_text(q.name), "type": q.type, "type_name": type_name(q.type),
                    "class": q.cls & 0x7FFF, "unicast_response": bool(q.cls >> 15)}
                   for q in d.questions],
        answers=[_rr_json(rr) for rr in d.answers],
        authorities=[_rr_json(rr) for rr in d.authorities],
        additionals=[_rr_json(rr) for rr in d.additionals],
    )
    if d.frames:
        out["reassembled"] = [{"frame": f, "bytes": n} for f, n in d.frames]
    return out


def _rr_line(rr: DnsRR) -> str:
    if rr.type == T_OPT:
        return (f"<Root>: type OPT, UDP payload size {rr.cls}, ext rcode {rr.ttl >> 24}, "
                f"version {rr.ttl >> 16 & 0xFF}, DO {rr.ttl >> 15 & 1}"
                + (f", options {value_text(rr)}" if rr.data else ""))
    cls = CLASS_NAMES.get(rr.cls & 0x7FFF, f"CLASS{rr.cls & 0x7FFF}")
    return (f"{name_text(rr.name)}: type {type_name(rr.type)}, class {cls}, ttl {rr.ttl}, "
            f"len {rr.rdlength}: {value_text(rr)}")


def tree(d: Any) -> Iterable[str]:
    if hasattr(d, "length"):
        yield f"length         {d.length}"
    yield f"id             {d.id} (0x{d.id:04x})"
    yield f"flags          0x{d.flags:04x} ({_flag_text(d)})"
    yield (f"opcode         {d.opcode} ({OPCODE_NAMES.get(d.opcode, '?')}), "
           f"rcode {d.rcode} ({rcode_name(d.full_rcode)})")
    yield (f"counts         {d.qdcount} questions, {d.ancount} answers, "
           f"{d.nscount} authority, {d.arcount} additional")
    for q in d.questions:
        cls = CLASS_NAMES.get(q.cls & 0x7FFF, f"CLASS{q.cls & 0x7FFF}")
        yield f"query          {name_text(q.name)}: type {type_name(q.type)}, class {cls}"
    for title, rrs in (("answer", d.answers), ("authority", d.authorities),
                       ("additional", d.additionals)):
        for rr in rrs:
            yield f"{title:<14} {_rr_line(rr)}"
    if d.frames:
        yield "reassembled    " + ", ".join(f"#{f}({n})" for f, n in d.frames)
