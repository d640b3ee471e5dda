"""DHCP/BOOTP (rawlab.decode.dhcp) as a line, tree lines and JSON; options by name.

Line: ``DHCP Request xid 0x3903f326 from 00:0b:82:01:fc:42`` /
``DHCP ACK xid 0x3903f326 yiaddr 192.168.0.10`` (BOOTP without the cookie: ``BOOTP
request``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rawlab.decode.dhcp import (
    ADDRESS_OPTIONS,
    DHCP_MAGIC,
    INT_OPTIONS,
    MESSAGE_TYPES,
    OPT_END,
    OPT_PAD,
    OPTION_NAMES,
    TEXT_OPTIONS,
)
from rawlab.present.app import text
from rawlab.present.fmt import ip_text, mac_text


def option_name(code: int) -> str:
    return OPTION_NAMES.get(code, f"Option {code}")


def option_value(code: int, data: bytes) -> Any:
    """An option's value as JSON data: addresses, text, ints, the parameter list, else hex."""
    if code == 53 and len(data) == 1:
        return MESSAGE_TYPES.get(data[0], data[0])
    if code in ADDRESS_OPTIONS and data and len(data) % 4 == 0:
        addrs = [ip_text(data[i:i + 4]) for i in range(0, len(data), 4)]
        return addrs[0] if len(addrs) == 1 and code in (1, 28, 50, 54, 118) else addrs
    if code in TEXT_OPTIONS:
        return text(data)
    if code in INT_OPTIONS and 1 <= len(data) <= 4:
        return int.from_bytes(data, "big", signed=code == 2)
    if code == 55:
        return list(data)
    if code == 61 and len(data) == 7 and data[0] == 1:
        return mac_text(data[1:])
    return data.hex()


def line(d: Any) -> str:
    mt = d.message_type
    if d.cookie != DHCP_MAGIC or mt is None:
        kind = "BOOTP " + ("request" if d.op == 1 else "reply" if d.op == 2 else f"op {d.op}")
    else:
        kind = "DHCP " + MESSAGE_TYPES.get(mt, f"type {mt}")
    s = f"{kind} xid 0x{d.xid:08x}"
    if d.op == 1:
        s += f" from {mac_text(d.hwaddr)}"
    if d.yiaddr != bytes(4):
        s += f" yiaddr {ip_text(d.yiaddr)}"
    req = d.option(50)
    if req is not None and len(req) == 4:
        s += f" requested {ip_text(req)}"
    return s


def json(d: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "op": d.op, "htype": d.htype, "hlen": d.hlen, "hops": d.hops, "xid": d.xid,
        "secs": d.secs, "flags": d.flags, "broadcast": bool(d.flags & 0x8000),
        "ciaddr": ip_text(d.ciaddr), "yiaddr": ip_text(d.yiaddr), "siaddr": ip_text(d.siaddr),
        "giaddr": ip_text(d.giaddr), "chaddr": mac_text(d.hwaddr),
        "sname": text(d.sname.rstrip(b"\0")), "file": text(d.file.rstrip(b"\0")),
        "cookie": d.cookie, "message_type": d.message_type,
        "options": [{"code": o.code, "name": option_name(o.code), "length": len(o.data),
                     "value": option_value(o.code, o.data)}
                    for o in d.options if o.code not in (OPT_PAD, OPT_END)],
        "end": any(o.code == OPT_END for o in d.options),
        "padding": sum(len(o.data) or 1 for o in d.options if o.code == OPT_PAD),
    }
    return out


def tree(d: Any) -> Iterable[str]:
    yield f"op             {d.op} ({'request' if d.op == 1 else 'reply' if d.op == 2 else '?'})"
    yield f"htype, hlen    {d.htype}, {d.hlen}; hops {d.hops}"
    yield f"xid            0x{d.xid:08x}"
    yield f"secs, flags    {d.secs}, 0x{d.flags:04x}" + (" (broadcast)" if d.flags & 0x8000
                                                         else "")
    for n in ("ciaddr", "yiaddr", "siaddr", "giaddr"):
        yield f"{n:<14} {ip_text(getattr(d, n))}"
    yield f"chaddr         {mac_text(d.hwaddr)}"
    if d.sname.strip(b"\0"):
        yield f"sname          {text(d.sname.rstrip(bytes(1)))}"
    if d.file.strip(b"\0"):
        yield f"file           {text(d.file.rstrip(bytes(1)))}"
    if d.cookie is not None:
        yield f"cookie         0x{d.cookie:08x}" + (" (DHCP)" if d.cookie == DHCP_MAGIC else "")
    for o in d.options:
        if o.code in (OPT_PAD, OPT_END):
            continue  # (padding)
        yield f"option {o.code:<7} {option_name(o.code)}: {option_value(o.code, o.data)}"
