"""rawlab's JSON against tshark's fields for the link-layer and tunnel protocols, on the
tcpdump project's test captures (not a test module: test_l2_tshark.py uses it).

The corpus files are read where they are (``RAWLAB_CORPUS``, default
/work/shared/corpus/tcpdump-tests), joined with ``mergecap -a`` into one pcapng (each
file keeps its interface and link type), and both tools read that one file: tshark
once (``-T json -e ...``: every occurrence of every field, per frame), rawlab through
the same path as ``rawlab read --json`` (pipeline.run, IP reassembly included).

:data:`FILES` are the corpus files in which tshark 4.0 finds one of these protocols
(``tshark -T fields -e frame.protocols`` over the whole corpus), plus every file of
the link types rawlab used to refuse (NULL, SLIP, 802.11, Juniper ATM).

Each tshark field has an extractor: a function of one rawlab JSON layer object
giving that field's values in tshark's order (a list; an absent field gives []).
Values are compared as tshark writes them once normalised: numbers by value (tshark
writes hex for BASE_HEX fields), addresses and strings as text, bytes as hex.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(os.environ.get("RAWLAB_CORPUS", "/work/shared/corpus/tcpdump-tests"))

Layer = dict[str, Any]
Extract = Callable[[Layer], Iterable[Any]]


def have_tools() -> str | None:
    """None when the corpus, tshark and mergecap are here, else why not."""
    if not CORPUS.is_dir():
        return f"no tcpdump test corpus at {CORPUS} (set RAWLAB_CORPUS)"
    for tool in ("tshark", "mergecap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package tshark / wireshark-common)"
    return None


def merge(files: Iterable[str], out: Path) -> Path:
    paths = [str(CORPUS / f) for f in files if (CORPUS / f).exists()]
    subprocess.run(["mergecap", "-a", "-F", "pcapng", "-w", str(out), *paths], check=True,
                   capture_output=True)
    return out


def tshark_fields(path: Path, fields: Iterable[str]) -> dict[int, dict[str, list[str]]]:
    """frame number -> field -> every occurrence tshark shows (strings); also
    ``frame.protocols`` and ``_ws.malformed`` (present when tshark hit an exception)."""
    cmd = ["tshark", "-n", "-r", str(path), "-T", "json", "-e", "frame.number",
           "-e", "frame.protocols", "-e", "_ws.malformed", "-e", "_ws.short"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = {}
    for item in json.loads(out or "[]"):
        lay = item["_source"]["layers"]
        rows[int(lay.pop("frame.number")[0])] = lay
    return rows


def layers_of(pkt: dict[str, Any]) -> list[tuple[str, Layer]]:
    """(name, layer object) in order, from one rawlab JSON packet."""
    out = []
    seen: set[str] = set()
    for i, name in enumerate(pkt.get("layers", ())):
        key = name if name not in seen else f"{name}{i}"
        seen.add(name)
        out.append((name, pkt.get(key, {})))
    return out


def norm(v: Any) -> Any:
    """One value in a comparable form: ints by value, bools as 0/1, the rest as text."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, str):
        s = v.strip()
        if s == "<MISSING>":  # tshark -T json's empty byte string
            return ""
        try:
            return int(s, 0)
        except ValueError:
            pass
        try:
            return round(float(s), 6) if s and s[0] in "-0123456789" and "." in s else s
        except ValueError:
            return s
    return str(v)


def get(name: str, conv: Callable[[Any], Any] | None = None) -> Extract:
    """The layer's field ``name`` (skipped when absent or None), converted."""

    def ex(lay: Layer) -> list[Any]:
        v = lay.get(name)
        if v is None:
            return []
        return [conv(v) if conv else v]

    return ex


@dataclass
class Field:
    tshark: str
    layers: tuple[str, ...]  # rawlab layer names the values come from
    extract: Extract
    #: compare only frames whose rawlab layer passes this (None: all)
    when: Callable[[Layer], bool] | None = None


@dataclass
class Result:
    frames: int = 0
    compared: int = 0  # (frame, field) pairs where either tool had a value
    mismatches: list[tuple[int, str, list[Any], list[Any]]] = field(default_factory=list)
    excused: list[tuple[int, str, str]] = field(default_factory=list)  # frame, field, why
    per_proto: dict[str, list[int]] = field(default_factory=dict)  # proto -> [compared, bad]


#: protocols tshark decodes that carry these layers and that rawlab does not decode (an
#: application protocol, or a link type out of scope): tshark's values past them are
#: not expected from rawlab
OUT_OF_SCOPE = frozenset(("openflow", "openflow_v1", "openflow_v4", "fr", "lwapp", "lwapp-l3",
                          "nhrp"))


def _excuse(row: dict[str, list[str]], want: list[Any], got: list[Any]) -> str | None:
    """Why a difference is not rawlab's to fix, or None."""
    chain = set(row.get("frame.protocols", [""])[0].split(":"))
    if not got and chain & OUT_OF_SCOPE:
        return "carried by " + ",".join(sorted(chain & OUT_OF_SCOPE))
    if ("_ws.malformed" in row or "_ws.short" in row) and got[: len(want)] == want:
        return "tshark stopped at an exception (malformed, or cut short by the snaplen)"
    return None


def compare(rows: dict[int, dict[str, list[str]]], packets: dict[int, dict[str, Any]],
            fields: list[Field]) -> Result:
    res = Result()
    for frame, pkt in packets.items():
        res.frames += 1
        row = rows.get(frame, {})
        lays = layers_of(pkt)
        for f in fields:
            chosen = [lay for name, lay in lays if name in f.layers]
            if f.when is not None and chosen and not all(f.when(lay) for lay in chosen):
                continue
            want = [norm(v) for v in row.get(f.tshark, [])]
            got = [norm(v) for lay in chosen for v in f.extract(lay)]
            if not want and not got:
                continue
            proto = f.tshark.split(".")[0]
            acc = res.per_proto.setdefault(proto, [0, 0])
            acc[0] += 1
            res.compared += 1
            if want != got:
                why = _excuse(row, want, got)
                if why is not None:
                    res.excused.append((frame, f.tshark, why))
                    continue
                acc[1] += 1
                res.mismatches.append((frame, f.tshark, want, got))
    return res


#: tshark's frame.protocols entries that are not layers of their own in rawlab (a type
#: field, a radio summary, an IPv6 extension header, a tag Ethernet holds ...)
PSEUDO = frozenset(("ethertype", "wlan_radio", "pcap_pktdata", "user_dlt", "raw", "fcs"))
#: rawlab layer name -> tshark's
RENAME = {"ipv4": "ip", "vxlan_gpe": None, "pwethcw": "pwethcw"}
#: tshark names of the protocols rawlab decodes (a chain that stops before one of these
#: where tshark goes on is a rawlab bug)
DECODED = frozenset((
    "eth", "sll", "ip", "ipv6", "arp", "tcp", "udp", "icmp", "icmpv6", "null", "ppp", "lcp",
    "ipcp", "ipv6cp", "ccp", "pap", "chap", "chdlc", "slarp", "nflog", "ipoib", "pktap",
    "juniper", "radiotap", "wlan", "llc", "stp", "cdp", "lldp", "gre", "erspan", "vxlan",
    "geneve", "mpls", "pppoes", "pppoed", "macsec", "nsh", "ieee8021ah", "vntag", "cfp",
    "cmd", "avsp", "vlan", "lwapp",
))


def tshark_chain(protocols: str) -> list[str]:
    out: list[str] = []
    for p in protocols.split(":"):
        if not p or p in PSEUDO or p.startswith("ipv6."):
            continue
        if p in ("vlan", "ieee8021ad") and out and out[-1] == "eth":
            continue  # rawlab's Ethernet layer holds its tags
        if p == "mpls" and out and out[-1] == "mpls":
            continue  # one rawlab layer holds the whole label stack
        out.append(p)
    return out


def rawlab_chain(names: Iterable[str]) -> list[str]:
    out = []
    for n in names:
        m = RENAME.get(n, n)
        if m is not None:
            out.append(m)
    return out


def chain_difference(tshark: list[str], rawlab: list[str]) -> str | None:
    """Where the two descents part (None: rawlab names what tshark names, as far as it
    goes; rawlab may stop with data where tshark goes on into an application)."""
    for i, name in enumerate(rawlab):
        if i >= len(tshark):
            return None if name == "data" else f"rawlab goes on with {name}"
        if name != tshark[i] and not (name == "data" and i == len(rawlab) - 1):
            return f"at {i}: tshark {tshark[i]}, rawlab {name}"
    if len(tshark) > len(rawlab) and tshark[len(rawlab)] in DECODED:
        return f"rawlab stops before {tshark[len(rawlab)]}"
    return None
