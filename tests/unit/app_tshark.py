"""Compare rawlab's application layers with tshark's fields, frame by frame (shared by
the corpus tests of the unit tier and the fresh captures of the privileged tier).

Not a test module itself. :data:`FIELDS` maps a rawlab layer name to rows of
(tshark field, how to get the values from rawlab's JSON object of that layer, how
to read tshark's text): each frame's values are compared as lists, in order
(tshark's occurrences), byte for byte after the conversion.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
SEP = "\x1f"


def corpus_dir() -> Path | None:
    """The tcpdump test corpus: $RAWLAB_CORPUS, shared/ beside the checkout, or /work/shared."""
    here = Path(__file__).resolve().parents[2]
    for p in (os.environ.get("RAWLAB_CORPUS"), here.parent / "shared/corpus/tcpdump-tests",
              "/work/shared/corpus/tcpdump-tests"):
        if p and Path(p).is_dir():
            return Path(p)
    return None


def have_tshark() -> bool:
    return shutil.which("tshark") is not None


def _hex(s: str) -> int:
    return int(s, 16)


def _bool(s: str) -> bool:
    return s in ("1", "True", "true")


def _rrs(d: dict[str, Any]) -> list[dict[str, Any]]:
    return d["answers"] + d["authorities"] + d["additionals"]


def _not_opt(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in _rrs(d) if r["type"] != 41]


def _key(name: str) -> Callable[[dict[str, Any]], list[Any]]:
    return lambda d: [d[name]] if d.get(name) is not None else []


def _each(rows: Callable[[dict[str, Any]], list[dict[str, Any]]], name: str
          ) -> Callable[[dict[str, Any]], list[Any]]:
    return lambda d: [r[name] for r in rows(d) if name in r]


Row = tuple[str, Callable[[dict[str, Any]], list[Any]], Callable[[str], Any]]

DNS: list[Row] = [
    ("dns.id", _key("id"), _hex),
    ("dns.flags", _key("flags"), _hex),
    ("dns.flags.response", _key("response"), _bool),
    ("dns.flags.opcode", _key("opcode"), int),
    ("dns.flags.recdesired", _key("recursion_desired"), _bool),
    ("dns.count.queries", _key("qdcount"), int),
    ("dns.count.answers", _key("ancount"), int),
    ("dns.count.auth_rr", _key("nscount"), int),
    ("dns.count.add_rr", _key("arcount"), int),
    ("dns.qry.name", _each(lambda d: d["questions"], "name"), str),
    ("dns.qry.type", _each(lambda d: d["questions"], "type"), int),
    # (tshark 4.0 names an SRV record with dns.srv.name, not dns.resp.name)
    ("dns.resp.name", lambda d: [r["name"] for r in _rrs(d) if r["type"] != 33], str),
    ("dns.resp.type", _each(_rrs, "type"), int),
    ("dns.resp.ttl", _each(_not_opt, "ttl"), int),
    ("dns.resp.len", _each(_rrs, "rdlength"), int),
    ("dns.a", _each(_rrs, "a"), str),
    ("dns.aaaa", _each(_rrs, "aaaa"), str),
    ("dns.cname", _each(_rrs, "cname"), str),
    ("dns.ns", _each(_rrs, "ns"), str),
    ("dns.ptr.domain_name", _each(_rrs, "ptr"), str),
    ("dns.mx.preference", _each(_rrs, "preference"), int),
    ("dns.mx.mail_exchange", _each(_rrs, "exchange"), str),
    ("dns.srv.port", _each(_rrs, "port"), int),
    ("dns.srv.target", _each(_rrs, "target"), str),
    ("dns.soa.mname", _each(_rrs, "mname"), str),
    ("dns.soa.serial_number", _each(_rrs, "serial"), int),
    ("dns.rr.udp_payload_size", _each(_rrs, "udp_payload_size"), int),
    ("dns.resp.edns0_version", _each(_rrs, "edns_version"), int),
]


def _opt(code: int) -> Callable[[dict[str, Any]], list[Any]]:
    return lambda d: [o["value"] for o in d["options"] if o["code"] == code]


DHCP: list[Row] = [
    ("dhcp.type", _key("op"), int),
    ("dhcp.hw.type#1", _key("htype"), _hex),  # (#1: option 61 has one too)
    ("dhcp.hw.len", _key("hlen"), int),
    ("dhcp.hops", _key("hops"), int),
    ("dhcp.id", _key("xid"), _hex),
    ("dhcp.secs", _key("secs"), int),
    ("dhcp.flags", _key("flags"), _hex),
    ("dhcp.ip.client", _key("ciaddr"), str),
    ("dhcp.ip.your", _key("yiaddr"), str),
    ("dhcp.ip.server", _key("siaddr"), str),
    ("dhcp.ip.relay", _key("giaddr"), str),
    # (tshark 4.0 lists the End option's type as 0)
    ("dhcp.option.type", lambda d: [o["code"] for o in d["options"]] + [0] * d["end"], int),
    ("dhcp.option.length", lambda d: [o["length"] for o in d["options"]], int),
    ("dhcp.option.padding", lambda d: [d["padding"]] if d["padding"] else [],
     lambda s: len(s) // 2),
    ("dhcp.option.requested_ip_address", _opt(50), str),
    ("dhcp.option.dhcp_server_id", _opt(54), str),
    ("dhcp.option.subnet_mask", _opt(1), str),
    ("dhcp.option.hostname", _opt(12), str),
    ("dhcp.option.ip_address_lease_time", _opt(51), int),
]
NTP: list[Row] = [
    ("ntp.flags.li", _key("li"), int),
    ("ntp.flags.vn", _key("version"), int),
    ("ntp.flags.mode", _key("mode"), int),
    ("ntp.stratum", _key("stratum"), int),  # (not compared in mode 7: tshark reads its
    ("ntp.ppoll", _key("poll"), int),       #  data items' stratum and poll there)
    ("ntp.precision", _key("precision"), lambda s: int(s) - 256 if int(s) > 127 else int(s)),
    ("ntp.ctrl.flags2.opcode", _key("opcode"), int),
    ("ntp.ctrl.sequence", lambda d: [d["sequence"]] if "opcode" in d else [], int),
    ("ntp.ctrl.count", _key("count"), int),
    ("ntp.priv.impl", _key("implementation"), int),
    ("ntp.priv.reqcode", _key("request"), int),
]
SNMP: list[Row] = [
    ("snmp.version", _key("version"), int),
    ("snmp.community", _key("community"), str),
    ("snmp.request_id", _key("request_id"), int),
    ("snmp.error_status", _key("error_status"), int),
    ("snmp.name", lambda d: [v["oid"] for v in d["varbinds"]], str),
]
SSH: list[Row] = [
    ("ssh.protocol", _key("protocol"), str),
    ("ssh.message_code", lambda d: [p["message_code"] for p in d["packets"]], int),
    ("ssh.packet_length", lambda d: [p["packet_length"] for p in d["packets"]], int),
]

def _all_hs(d: dict[str, Any]) -> list[dict[str, Any]]:
    """The handshake messages of a frame, those a key log decrypted (TLS 1.3) after."""
    return d["handshakes"] + d.get("decrypted_handshakes", [])


def _hs(name: str) -> Callable[[dict[str, Any]], list[Any]]:
    return lambda d: [h[name] for h in _all_hs(d) if h.get(name) is not None]


def _hs_list(name: str) -> Callable[[dict[str, Any]], list[Any]]:
    return lambda d: [v for h in _all_hs(d) for v in h.get(name, ())]


def _certs(d: dict[str, Any]) -> list[int]:
    return [c["length"] for h in _all_hs(d) for c in h.get("certificates", ())]


def _ctype(r: dict[str, Any]) -> int:
    """tshark's tls.record.content_type: a decrypted TLS 1.3 record's inner type."""
    return r["decrypted"]["content_type"] if r["opaque"] and "decrypted" in r else (
        r["content_type"])


TLS: list[Row] = [
    ("tls.record.content_type", lambda d: [_ctype(r) for r in d["records"]
                                           if not r["opaque"] or "decrypted" in r], int),
    ("tls.record.opaque_type", lambda d: [r["content_type"] for r in d["records"]
                                          if r["opaque"]], int),
    ("tls.record.version", lambda d: [r["version"] for r in d["records"]], _hex),
    ("tls.record.length", lambda d: [r["length"] for r in d["records"]], int),
    ("tls.handshake.type", lambda d: [h["type"] for h in _all_hs(d)], int),
    ("tls.handshake.length", lambda d: [h["length"] for h in _all_hs(d)], int),
    ("tls.handshake.version", _hs("version"), _hex),
    ("tls.handshake.random", _hs("random"), lambda s: s.replace(":", "")),
    ("tls.handshake.ciphersuite", lambda d: [c for h in _all_hs(d) for c in (
        h.get("ciphers", ()) if "cipher" not in h else [h["cipher"]])], _hex),
    ("tls.handshake.extension.type", lambda d: [e["type"] for h in _all_hs(d)
                                                for e in h.get("extensions", ())], int),
    ("tls.handshake.extensions_server_name", _hs("sni"), str),
    ("tls.handshake.extensions_alpn_str", _hs_list("alpn"), str),
    ("tls.handshake.extensions_supported_group", _hs_list("supported_groups"), _hex),
    ("tls.handshake.ja3_full", _hs("ja3_full"), str),
    ("tls.handshake.ja3", _hs("ja3"), str),
    ("tls.handshake.ja3s_full", _hs("ja3s_full"), str),
    ("tls.handshake.ja3s", _hs("ja3s"), str),
    ("tls.handshake.certificate_length", _certs, int),
]
HTTP: list[Row] = [
    ("http.request.method", _key("method"), str),
    ("http.request.uri", _key("uri"), str),
    ("http.request.version", lambda d: [d["version"]] if d["request"] else [], str),
    ("http.host", _key("host"), str),
    ("http.user_agent", _key("user_agent"), str),
    ("http.response.version", lambda d: [d["version"]] if not d["request"] else [], str),
    ("http.response.code", _key("status"), int),
    ("http.response.phrase", _key("reason"), str),
    ("http.content_type", _key("content_type"), str),
    ("http.content_length", _key("content_length"), int),
    ("http.transfer_encoding", _key("transfer_encoding"), str),
]

def _qp(name: str) -> Callable[[dict[str, Any]], list[Any]]:
    return lambda d: [p[name] for p in d["packets"] if name in p]


def _q_ch(name: str, many: bool = False) -> Callable[[dict[str, Any]], list[Any]]:
    """A field of the ClientHello a QUIC client Initial carries (decrypted)."""
    def get(d: dict[str, Any]) -> list[Any]:
        out = []
        for h in d.get("handshakes", ()):
            v = h.get(name)
            if v is not None:
                out += list(v) if many else [v]
        return out
    return get


QUIC: list[Row] = [
    ("quic.version", _qp("version"), _hex),
    ("quic.long.packet_type", lambda d: [p["packet_type"] for p in d["packets"]
                                         if p.get("version")], int),
    ("quic.dcid", lambda d: [p["dcid"] for p in d["packets"] if p.get("dcid")], str),
    ("quic.scid", lambda d: [p["scid"] for p in d["packets"] if p.get("scid")], str),
    ("quic.length", _qp("length"), int),
    ("quic.packet_number", _qp("packet_number"), int),
    ("tls.handshake.extensions_server_name", _q_ch("sni"), str),
    ("tls.handshake.extensions_alpn_str", _q_ch("alpn", True), str),
    ("tls.handshake.extensions_supported_group", _q_ch("supported_groups", True), _hex),
]

FIELDS: dict[str, list[Row]] = {
    "tls": TLS, "http": HTTP, "quic": QUIC,
    "dns": DNS, "mdns": DNS, "llmnr": DNS, "dhcp": DHCP, "ntp": NTP, "snmp": SNMP,
    "ssh": SSH,
}
#: the tshark protocol (frame.protocols word) of each rawlab layer name
TSHARK_PROTO = {"dns": "dns", "mdns": "mdns", "llmnr": "llmnr", "dhcp": "dhcp", "ntp": "ntp",
                "snmp": "snmp", "ssh": "ssh", "tls": "tls", "http": "http", "quic": "quic"}


@dataclass
class Agreement:
    """What one comparison found, per layer name."""

    frames: dict[str, int] = field(default_factory=dict)  # frames where both decoded it
    fields: dict[str, int] = field(default_factory=dict)  # field values compared
    mismatches: list[tuple[str, int, str, Any, Any]] = field(default_factory=list)
    only_tshark: list[tuple[str, int]] = field(default_factory=list)
    only_rawlab: list[tuple[str, int]] = field(default_factory=list)
    empty_trees: int = 0  # frames where tshark shows the protocol with no field at all

    def add(self, other: Agreement) -> None:
        self.empty_trees += other.empty_trees
        for k, v in other.frames.items():
            self.frames[k] = self.frames.get(k, 0) + v
        for k, v in other.fields.items():
            self.fields[k] = self.fields.get(k, 0) + v
        self.mismatches += other.mismatches
        self.only_tshark += other.only_tshark
        self.only_rawlab += other.only_rawlab


def rawlab_json(path: Path, *args: str) -> dict[int, dict[str, Any]]:
    out = subprocess.run([RAWLAB, "read", str(path), "--json", *args], capture_output=True,
                         text=True, check=False).stdout
    recs = {}
    for line in out.splitlines():
        rec = json.loads(line)
        recs[rec["frame"]] = rec
    return recs


# rawlab puts a stream's segments in sequence order before the application layers read
# it; tshark does so only with this preference (off by default in Debian's 4.0), and
# without it loses every later message of a direction once one segment came out of
# order, as a veth pair's two CPUs sometimes deliver them (seen in CI, TLS 1.3).
TSHARK_REASSEMBLY = ("-o", "tcp.reassemble_out_of_order:TRUE")


def tshark_fields(path: Path, fields: Iterable[str], *args: str) -> dict[int, dict[str, list[str]]]:
    names = ["frame.number", "frame.protocols", *fields]
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a",
           "-E", f"aggregator={SEP}", "-E", "separator=\t", *TSHARK_REASSEMBLY, *args]
    for f in names:
        cmd += ["-e", f]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if "Some fields aren't valid" in p.stderr:
        raise ValueError(f"tshark: {p.stderr.strip()}")
    out = p.stdout
    rows: dict[int, dict[str, list[str]]] = {}
    for line in out.splitlines():
        cols = line.split("\t")
        if len(cols) < len(names) or not cols[0].isdigit():
            continue
        rows[int(cols[0])] = {n: (c.split(SEP) if c else []) for n, c in zip(names, cols,
                                                                           strict=False)}
    return rows


def layers_of(rec: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Every layer object of ``name`` in one JSON record (a second one is keyed ``name<i>``)."""
    return [v for k, v in rec.items()
            if k == name or (k.startswith(name) and k[len(name):].isdigit())]


def compare(path: Path, names: Iterable[str], *, rawlab_args: tuple[str, ...] = (),
            tshark_args: tuple[str, ...] = ()) -> Agreement:
    """rawlab vs tshark on ``path`` for the layers ``names``."""
    names = list(names)
    rows = [r for n in dict.fromkeys(names) for r in FIELDS[n]]
    tfields = list(dict.fromkeys(r[0].split("#")[0] for r in rows))
    ours = rawlab_json(path, *rawlab_args)
    theirs = tshark_fields(path, tfields, *tshark_args)
    ag = Agreement()
    for frame, t in theirs.items():
        protos = (t["frame.protocols"] or [""])[0].split(":")
        rec = ours.get(frame, {})
        for name in names:
            tp = TSHARK_PROTO[name]
            mine = layers_of(rec, name)
            if name == "tls" and "quic" in protos:
                continue  # TLS inside QUIC: the quic rows compare its ClientHello
            if tp not in protos:
                if mine:
                    ag.only_rawlab.append((name, frame))
                continue
            if not mine:
                if all(not t[r[0].split("#")[0]] for r in FIELDS[name]):
                    ag.empty_trees += 1  # (tshark's empty tree where a message begins)
                else:
                    ag.only_tshark.append((name, frame))
                continue
            ag.frames[name] = ag.frames.get(name, 0) + 1
            for tf, get, conv in FIELDS[name]:
                field_, _sep, first = tf.partition("#")  # "#1": the first occurrence only
                if name == "ntp" and field_ in ("ntp.stratum", "ntp.ppoll") and any(
                        lay.get("mode") == 7 for lay in mine):
                    continue
                want = [conv(x) for x in t[field_]][: 1 if first else None]
                got = [v for lay in mine for v in get(lay)]
                if not want and not got:
                    continue
                ag.fields[name] = ag.fields.get(name, 0) + len(want)
                if got != want:
                    ag.mismatches.append((name, frame, tf, got, want))
    return ag
