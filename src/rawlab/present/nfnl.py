"""conntrack and nftables events as text (as `conntrack -E` and `nft monitor` print them)
and as JSON.

    conntrack_text(ct)   # '    [NEW] tcp      6 120 SYN_SENT src=10.0.0.1 dst=... [UNREPLIED] ...'
    conntrack_json(ct)   # {"event": "new", "proto": "tcp", "orig": {...}, "reply": {...}, ...}
    nft_text(ch)         # 'add rule ip t c handle 4: [ meta load l4proto => reg 1 ] ...'
    nft_json(ch)         # {"op": "add", "object": "rule", ..., "expressions": [...]}
    expr_text(e)         # '[ cmp eq reg 1 0x00001600 ]', as `nft --debug=netlink` prints it

The records are rawlab.decode.conntrack's and rawlab.decode.nftables'.
"""

from __future__ import annotations

import struct
from typing import Any

from rawlab.decode.conntrack import (
    IPS_ASSURED,
    IPS_HW_OFFLOAD,
    IPS_OFFLOAD,
    IPS_SEEN_REPLY,
    PROTO_NAMES,
    STATUS_BITS,
    TCP_STATES,
    Conntrack,
    CtTuple,
)
from rawlab.decode.nftables import (
    CMP_OPS,
    CT_KEYS,
    DATA_TYPES,
    FAMILIES,
    META_KEYS,
    PAYLOAD_BASES,
    PRIORITIES,
    VERDICTS,
    Expr,
    NftChange,
)
from rawlab.present.fmt import ip_text
from rawlab.present.netlink import jsonable

# ---- conntrack ---------------------------------------------------------------------------

EVENT_TAGS = {"new": "[NEW]", "update": "[UPDATE]", "destroy": "[DESTROY]"}
L3_NAMES = {2: "ipv4", 10: "ipv6"}


def _tuple_text(t: CtTuple) -> list[str]:
    out = []
    if t.src is not None:
        out.append(f"src={ip_text(t.src)}")
    if t.dst is not None:
        out.append(f"dst={ip_text(t.dst)}")
    if t.sport is not None or t.dport is not None:
        out += [f"sport={t.sport}", f"dport={t.dport}"]
    elif t.icmp_type is not None:
        out += [f"type={t.icmp_type}", f"code={t.icmp_code}", f"id={t.icmp_id}"]
    return out


def conntrack_text(ct: Conntrack) -> str:
    """One line as `conntrack -E` prints it (libnetfilter_conntrack's default form)."""
    proto = ct.orig.proto
    parts = [f"{EVENT_TAGS.get(ct.event, ct.event):>9}",
             f"{PROTO_NAMES.get(proto or 0, 'unknown'):<8} {proto}"]
    if ct.timeout is not None:
        parts.append(str(ct.timeout))
    if ct.state is not None and proto == 6:
        parts.append(TCP_STATES[ct.state] if ct.state < len(TCP_STATES) else str(ct.state))
    status = ct.status or 0
    parts += _tuple_text(ct.orig)
    if ct.orig.zone is not None:
        parts.append(f"zone-orig={ct.orig.zone}")
    if ct.orig_counters:
        parts += [f"packets={ct.orig_counters[0]}", f"bytes={ct.orig_counters[1]}"]
    if ct.status is not None and not status & IPS_SEEN_REPLY:
        parts.append("[UNREPLIED]")
    parts += _tuple_text(ct.reply)
    if ct.reply.zone is not None:
        parts.append(f"zone-reply={ct.reply.zone}")
    if ct.reply_counters:
        parts += [f"packets={ct.reply_counters[0]}", f"bytes={ct.reply_counters[1]}"]
    if status & IPS_OFFLOAD:
        parts.append("[OFFLOAD]")
    if status & IPS_HW_OFFLOAD:
        parts.append("[HW_OFFLOAD]")
    if status & IPS_ASSURED:
        parts.append("[ASSURED]")
    if ct.mark is not None:
        parts.append(f"mark={ct.mark}")
    if ct.zone is not None:
        parts.append(f"zone={ct.zone}")
    if ct.use is not None:
        parts.append(f"use={ct.use}")
    return " ".join(parts)


def _tuple_json(t: CtTuple) -> dict[str, Any]:
    d: dict[str, Any] = {"src": ip_text(t.src) if t.src is not None else None,
                         "dst": ip_text(t.dst) if t.dst is not None else None}
    for key in ("sport", "dport", "icmp_type", "icmp_code", "icmp_id", "zone"):
        v = getattr(t, key)
        if v is not None:
            d[key] = v
    return d


def conntrack_json(ct: Conntrack) -> dict[str, Any]:
    """The entry as JSON (docs/json.md, "netlink monitor --conntrack")."""
    proto = ct.orig.proto
    status = ct.status or 0
    d: dict[str, Any] = {
        "event": ct.event, "l3": L3_NAMES.get(ct.family or 0, ct.family),
        "proto": PROTO_NAMES.get(proto or 0), "protonum": proto, "timeout": ct.timeout,
        "state": (TCP_STATES[ct.state] if proto == 6 and ct.state is not None
                  and ct.state < len(TCP_STATES) else ct.state),
        "orig": _tuple_json(ct.orig), "reply": _tuple_json(ct.reply),
        "status": ct.status, "status_names": [n for bit, n in STATUS_BITS if status & bit],
        "mark": ct.mark, "zone": ct.zone, "id": ct.id, "use": ct.use}
    if ct.orig_counters:
        d["orig"].update(packets=ct.orig_counters[0], bytes=ct.orig_counters[1])
    if ct.reply_counters:
        d["reply"].update(packets=ct.reply_counters[0], bytes=ct.reply_counters[1])
    if ct.timestamp is not None:
        d["timestamp_start_ns"], d["timestamp_stop_ns"] = ct.timestamp
    if ct.labels is not None:
        d["labels"] = ct.labels.hex()
    return d


# ---- nftables ------------------------------------------------------------------------------

def words(value: Any) -> str:
    """Data as libnftnl prints it: 32-bit words in host order, ``0x%08x `` each."""
    if not isinstance(value, bytes | bytearray):
        return f"{value} "
    b = bytes(value) + b"\0" * (-len(value) % 4)
    return "".join(f"0x{w:08x} " for (w,) in struct.iter_unpack("=I", b))


def data_text(d: Any) -> str:
    """An nft_data (NFTA_DATA_VALUE, or NFTA_DATA_VERDICT with its chain)."""
    if not isinstance(d, dict):
        return words(d)
    if "NFTA_DATA_VERDICT" in d:
        v = d["NFTA_DATA_VERDICT"] if isinstance(d["NFTA_DATA_VERDICT"], dict) else {}
        code = v.get("NFTA_VERDICT_CODE")
        text = VERDICTS.get(code, str(code)) + " "
        if "NFTA_VERDICT_CHAIN" in v:
            text += f"-> {v['NFTA_VERDICT_CHAIN']} "
        return text
    return words(d.get("NFTA_DATA_VALUE", b""))


def _reg_key(d: dict[str, Any], prefix: str, keys: tuple[str, ...]) -> tuple[str, str, Any]:
    key = d.get(f"{prefix}_KEY")
    name = keys[key] if isinstance(key, int) and 0 <= key < len(keys) else str(key)
    if f"{prefix}_DREG" in d:
        return "load", name, d[f"{prefix}_DREG"]
    return "set", name, d.get(f"{prefix}_SREG")


def expr_text(e: Expr) -> str:
    """One expression as `nft --debug=netlink` prints it; others as ``[ name attr value ]``."""
    d, n = e.data, e.name
    g = d.get
    if n == "payload":
        base = PAYLOAD_BASES.get(g("NFTA_PAYLOAD_BASE"), g("NFTA_PAYLOAD_BASE"))
        if "NFTA_PAYLOAD_DREG" in d:
            return (f"[ payload load {g('NFTA_PAYLOAD_LEN')}b @ {base} header + "
                    f"{g('NFTA_PAYLOAD_OFFSET')} => reg {g('NFTA_PAYLOAD_DREG')} ]")
        return (f"[ payload write reg {g('NFTA_PAYLOAD_SREG')} => {g('NFTA_PAYLOAD_LEN')}b @ "
                f"{base} header + {g('NFTA_PAYLOAD_OFFSET')} csum_type "
                f"{g('NFTA_PAYLOAD_CSUM_TYPE', 0)} csum_off {g('NFTA_PAYLOAD_CSUM_OFFSET', 0)} "
                f"csum_flags 0x{g('NFTA_PAYLOAD_CSUM_FLAGS', 0):x} ]")
    if n == "cmp":
        op = CMP_OPS.get(g("NFTA_CMP_OP"), g("NFTA_CMP_OP"))
        return f"[ cmp {op} reg {g('NFTA_CMP_SREG')} {data_text(g('NFTA_CMP_DATA'))}]"
    if n in ("meta", "ct"):
        how, key, reg = _reg_key(d, f"NFTA_{n.upper()}", META_KEYS if n == "meta" else CT_KEYS)
        if how == "load":
            way = f", dir {('original', 'reply')[g('NFTA_CT_DIRECTION')]} " \
                if n == "ct" and g("NFTA_CT_DIRECTION") in (0, 1) else ""
            return f"[ {n} load {key} => reg {reg} {way}]"
        return f"[ {n} set {key} with reg {reg} ]"
    if n == "immediate":
        return f"[ immediate reg {g('NFTA_IMMEDIATE_DREG')} {data_text(g('NFTA_IMMEDIATE_DATA'))}]"
    if n == "counter":
        return f"[ counter pkts {g('NFTA_COUNTER_PACKETS', 0)} bytes {g('NFTA_COUNTER_BYTES', 0)} ]"
    if n == "bitwise" and "NFTA_BITWISE_MASK" in d:
        return (f"[ bitwise reg {g('NFTA_BITWISE_DREG')} = ( reg {g('NFTA_BITWISE_SREG')} & "
                f"{data_text(g('NFTA_BITWISE_MASK'))}) ^ {data_text(g('NFTA_BITWISE_XOR'))}]")
    if n == "lookup":
        text = f"[ lookup reg {g('NFTA_LOOKUP_SREG')} set {g('NFTA_LOOKUP_SET')} "
        if "NFTA_LOOKUP_DREG" in d:
            text += f"dreg {g('NFTA_LOOKUP_DREG')} "
        if g("NFTA_LOOKUP_FLAGS"):
            text += f"0x{g('NFTA_LOOKUP_FLAGS'):x} "
        return text + "]"
    prefix = f"NFTA_{n.upper()}_"
    fields = " ".join(f"{k.removeprefix(prefix).lower()} {_plain(v)}" for k, v in d.items())
    return f"[ {n} {fields} ]" if fields else f"[ {n} ]"


def _plain(v: Any) -> str:
    j = jsonable(v)
    if isinstance(j, dict):
        return " ".join(f"{k} {x}" for k, x in j.items())
    return str(j)


HOOKS = {"ip": ("prerouting", "input", "forward", "output", "postrouting"),
         "netdev": ("ingress", "egress")}


def _chain_spec(ch: NftChange) -> str:
    a = ch.attrs
    hook = a.get("NFTA_CHAIN_HOOK")
    if not isinstance(hook, dict) or "NFTA_HOOK_HOOKNUM" not in hook:
        return ""
    fam = FAMILIES.get(ch.family or 0, "ip")
    names = HOOKS["netdev" if fam == "netdev" else "ip"]
    num = hook["NFTA_HOOK_HOOKNUM"]
    prio = hook.get("NFTA_HOOK_PRIORITY", 0)
    if fam in ("ip", "ip6", "inet"):
        prio = PRIORITIES.get(prio, prio)
    text = (f" {{ type {a.get('NFTA_CHAIN_TYPE', 'filter')} hook "
            f"{names[num] if num < len(names) else num} priority {prio};")
    if "NFTA_CHAIN_POLICY" in a:
        text += f" policy {VERDICTS.get(a['NFTA_CHAIN_POLICY'], a['NFTA_CHAIN_POLICY'])};"
    return text + " }"


def nft_text(ch: NftChange) -> str:
    """`nft monitor`'s line for a change; a rule shows its expressions as the kernel holds
    them (``nft --debug=netlink``'s form), a set element its key as data words."""
    a = ch.attrs
    if ch.object == "generation":
        return (f"# new generation {a.get('NFTA_GEN_ID')} by process "
                f"{a.get('NFTA_GEN_PROC_PID')} ({a.get('NFTA_GEN_PROC_NAME')})")
    fam = FAMILIES.get(ch.family or 0, str(ch.family))
    head = f"{ch.op} {ch.object} {fam} {ch.table}"
    if ch.object == "table":
        return f"{ch.op} table {fam} {ch.table}"
    if ch.object == "chain":
        return f"{head} {ch.chain}{_chain_spec(ch) if ch.op == 'add' else ''}"
    if ch.object == "rule":
        text = f"{head} {ch.chain} handle {ch.handle}"
        if ch.expressions and ch.op != "delete":
            text += ": " + " ".join(expr_text(e) for e in ch.expressions)
        return text
    if ch.object == "element":
        keys = ", ".join(words(e.get("key", b"")).strip() for e in ch.elements)
        return f"{head} {ch.name} {{ {keys} }}"
    if ch.object == "set" and ch.op == "add" and isinstance(a.get("NFTA_SET_KEY_TYPE"), int):
        kt = a["NFTA_SET_KEY_TYPE"]
        return f"{head} {ch.name} {{ type {DATA_TYPES[kt] if kt < len(DATA_TYPES) else kt}; }}"
    return f"{head} {ch.name}"


def nft_json(ch: NftChange) -> dict[str, Any]:
    """The change as JSON (docs/json.md, "netlink monitor --nftables")."""
    d: dict[str, Any] = {"op": ch.op, "object": ch.object,
                         "family": FAMILIES.get(ch.family or 0, ch.family), "table": ch.table}
    if ch.chain is not None:
        d["chain"] = ch.chain
    if ch.name is not None and ch.object not in ("table", "chain"):
        d["name"] = ch.name
    if ch.handle is not None:
        d["handle"] = ch.handle
    if ch.object in ("rule", "set"):
        d["expressions"] = [{"expr": e.name, "text": expr_text(e), **jsonable(e.data)}
                            for e in ch.expressions]
    if ch.object == "element":
        d["elements"] = [jsonable(e) for e in ch.elements]
    if ch.object == "generation":
        a = ch.attrs
        d.update(id=a.get("NFTA_GEN_ID"), pid=a.get("NFTA_GEN_PROC_PID"),
                 comm=a.get("NFTA_GEN_PROC_NAME"))
    return d
