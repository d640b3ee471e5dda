"""SNMP (rawlab.decode.snmp) as a line, tree lines and JSON.

Line: ``SNMPv2c get-request public id 1234 1.3.6.1.2.1.1.1.0`` (the first varbinds).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rawlab.decode.snmp import (
    ERROR_NAMES,
    IPADDRESS,
    OCTET_STRING,
    PDU_NAMES,
    VERSION_NAMES,
)
from rawlab.present.app import text
from rawlab.present.fmt import ip_text

SHOWN = 3


def oid_text(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


def value_text(tag: int, v: Any) -> str:
    if v is None:
        return "NULL" if tag == 0x05 else {0x80: "noSuchObject", 0x81: "noSuchInstance",
                                           0x82: "endOfMibView"}.get(tag, "NULL")
    if tag == IPADDRESS and isinstance(v, bytes) and len(v) == 4:
        return ip_text(v)
    if isinstance(v, tuple):
        return oid_text(v)
    if isinstance(v, bytes):
        return f'"{text(v)}"' if tag == OCTET_STRING else v.hex()
    return str(v)


def line(s: Any) -> str:
    ver = VERSION_NAMES.get(s.version, f"version {s.version}") if s.version is not None else "?"
    out = f"SNMP{ver}"
    if s.community is not None:
        out += f" {text(s.community)}"
    if s.scoped_pdu_encrypted is not None:
        return out + " encrypted PDU"
    if s.pdu_type is not None:
        out += f" {PDU_NAMES.get(s.pdu_type, f'pdu {s.pdu_type}')}"
    if s.request_id is not None:
        out += f" id {s.request_id}"
    if s.error_status:
        out += f" {ERROR_NAMES.get(s.error_status, s.error_status)}@{s.error_index}"
    vbs = s.varbinds
    if vbs:
        out += " " + " ".join(
            oid_text(vb.oid) + ("" if vb.value is None else f"={value_text(vb.tag, vb.value)}")
            for vb in vbs[:SHOWN]) + (f" +{len(vbs) - SHOWN}" if len(vbs) > SHOWN else "")
    return out


def json(s: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"version": s.version}
    if s.community is not None:
        out["community"] = text(s.community)
    if s.version == 3:
        out.update(msg_id=s.msg_id, msg_max_size=s.msg_max_size, msg_flags=s.msg_flags,
                   security_model=s.security_model)
        if s.scoped_pdu_encrypted is not None:
            out["encrypted_pdu"] = s.scoped_pdu_encrypted.hex()
    out.update(pdu_type=s.pdu_type, pdu_name=PDU_NAMES.get(s.pdu_type) if s.pdu_type
               is not None else None, request_id=s.request_id, error_status=s.error_status,
               error_index=s.error_index)
    if s.trap is not None:
        ent, agent, generic, specific, ticks = s.trap
        out["trap"] = {"enterprise": oid_text(ent) if isinstance(ent, tuple) else None,
                       "agent_addr": ip_text(agent) if isinstance(agent, bytes) else None,
                       "generic": generic, "specific": specific, "timestamp": ticks}
    out["varbinds"] = [{"oid": oid_text(vb.oid), "tag": vb.tag,
                        "value": value_text(vb.tag, vb.value)} for vb in s.varbinds]
    return out


def tree(s: Any) -> Iterable[str]:
    for k, v in json(s).items():
        if k == "varbinds":
            for vb in v:
                yield f"varbind        {vb['oid']} = {vb['value']} (tag 0x{vb['tag']:02x})"
        elif v is not None:
            yield f"{k:<14} {v}"
