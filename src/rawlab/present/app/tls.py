"""TLS (rawlab.decode.tls) as a line, tree lines and JSON: records, handshake messages,
the hellos' choices, certificates' subjects, JA3/JA3S/JA4 fingerprints.

Line: ``TLS Client Hello SNI example.org ALPN h2,http/1.1`` /
``TLS Server Hello TLS_AES_128_GCM_SHA256 TLSv1.3, Change Cipher Spec, Application Data``
(with ``[3 segments: #4,#5,#6]`` when the records were reassembled).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rawlab.decode.tls import (
    ALERT_DESCRIPTIONS,
    CIPHER_NAMES,
    CONTENT_TYPES,
    CT_ALERT,
    CT_APPLICATION_DATA,
    CT_HANDSHAKE,
    EXT_ALPN,
    EXTENSION_NAMES,
    GROUP_NAMES,
    HANDSHAKE_TYPES,
    HS_CERTIFICATE,
    HS_ENCRYPTED_EXTENSIONS,
    VERSIONS,
    Handshake,
    Hello,
    alpn_protocols,
    handshakes,
    ja3,
    ja3s,
    ja4,
    parse_certificates,
    parse_extensions,
    parse_hello,
)
from rawlab.present.app import text


def version_name(v: int) -> str:
    return VERSIONS.get(v, f"0x{v:04x}").replace("TLS ", "TLSv")


def cipher_name(c: int) -> str:
    return CIPHER_NAMES.get(c, f"0x{c:04x}")


def reassembled(frames: tuple[tuple[int, int], ...]) -> str:
    """`` [3 segments: #4,#5,#6]`` for a message that came in several segments."""
    if len(frames) < 2:
        return ""
    return f" [{len(frames)} segments: " + ",".join(f"#{f}" for f, _n in frames) + "]"


def certificate_subjects(ders: tuple[bytes, ...]) -> list[dict[str, Any]]:
    """Subject, issuer and validity of each certificate (the ``cryptography`` package
    parses X.509); a certificate it cannot read keeps its length only."""
    out: list[dict[str, Any]] = []
    try:
        from cryptography import x509
    except ImportError:  # pragma: no cover - a dependency; kept lenient
        return [{"length": len(d)} for d in ders]
    for der in ders:
        item: dict[str, Any] = {"length": len(der)}
        try:
            c = x509.load_der_x509_certificate(der)
            item.update(subject=c.subject.rfc4514_string(), issuer=c.issuer.rfc4514_string(),
                        serial=format(c.serial_number, "x"),
                        not_before=c.not_valid_before_utc.isoformat(),
                        not_after=c.not_valid_after_utc.isoformat())
        except Exception as exc:  # any parse failure of untrusted bytes
            item["error"] = f"could not parse: {type(exc).__name__}"
        out.append(item)
    return out


def _hello_line(h: Hello) -> str:
    if h.client:
        s = "Client Hello"
        sni = h.sni
        if sni is not None:
            s += f" SNI {text(sni)}"
        sv = [v for v in h.supported_versions if v & 0x0F0F != 0x0A0A]
        if sv:
            s += f" versions {','.join(version_name(v) for v in sv)}"
    else:
        s = ("Hello Retry Request" if h.hello_retry else "Server Hello")
        if h.ciphers:
            s += f" {cipher_name(h.ciphers[0])} {version_name(h.selected_version)}"
    if h.alpn:
        s += " ALPN " + ",".join(text(a) for a in h.alpn)
    return s


def _records_line(t: Any) -> list[str]:
    parts: list[str] = []
    msgs = list(t.handshakes)
    for r in t.records:
        if r.content_type == CT_HANDSHAKE and r.offset in t.sealed:
            item = "Encrypted Handshake Message"
        elif r.content_type == CT_HANDSHAKE:
            continue  # the messages are listed below, once each
        elif r.content_type == CT_ALERT:
            desc = r.fragment[1] if len(r.fragment) == 2 else None
            item = ("Alert " + ALERT_DESCRIPTIONS.get(desc, str(desc))) if desc is not None \
                else "Encrypted Alert"
        else:
            item = CONTENT_TYPES.get(r.content_type, f"type {r.content_type}")
        if parts and parts[-1].split(" ×")[0] == item:
            n = int(parts[-1].split(" ×")[1]) + 1 if " ×" in parts[-1] else 2
            parts[-1] = f"{item} ×{n}"
        else:
            parts.append(item)
    hs_parts = []
    for m in msgs:
        h = parse_hello(m)
        hs_parts.append(_hello_line(h) if h is not None else HANDSHAKE_TYPES.get(
            m.type, f"Handshake {m.type}"))
    return hs_parts + parts


def line(t: Any) -> str:
    parts = _records_line(t)
    name = version_name(t.session_version) if t.session_version else "TLS"
    s = f"{name} " + ", ".join(parts) if parts else name
    if t.plaintext:
        inner = [m for ct, p in t.plaintext.values() if ct == CT_HANDSHAKE
                 for m in handshakes(p)[0]]
        names = [HANDSHAKE_TYPES.get(m.type, str(m.type)) for m in inner]
        s += (f" (decrypted {sum(len(p) for _c, p in t.plaintext.values())} bytes"
              + (": " + ", ".join(names) if names else "") + ")")
    return s + reassembled(t.frames)


def hello_json(h: Hello, transport: str = "t") -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": h.version, "random": h.random.hex(), "session_id": h.session_id.hex(),
        "ciphers": list(h.ciphers), "compressions": list(h.compressions),
        "extensions": [{"type": t, "name": EXTENSION_NAMES.get(t), "length": len(d)}
                       for t, d in h.extensions],
    }
    if h.client:
        sni = h.sni
        out.update(sni=text(sni) if sni is not None else None,
                   supported_groups=list(h.groups), ec_point_formats=list(h.point_formats),
                   sig_algs=list(h.sig_algs), supported_versions=list(h.supported_versions))
        full, digest = ja3(h)
        four, four_r, four_o = ja4(h, transport)
        out.update(ja3_full=full, ja3=digest, ja4=four, ja4_r=four_r, ja4_o=four_o)
    else:
        out.update(cipher=h.ciphers[0] if h.ciphers else None,
                   cipher_name=cipher_name(h.ciphers[0]) if h.ciphers else None,
                   selected_version=h.selected_version, hello_retry=h.hello_retry)
        full, digest = ja3s(h)
        out.update(ja3s_full=full, ja3s=digest)
    out["alpn"] = [text(a) for a in h.alpn]
    if h.malformed:
        out["malformed"] = True
    return out


def handshake_json(m: Handshake, tls13: bool, transport: str = "t") -> dict[str, Any]:
    out: dict[str, Any] = {"type": m.type, "type_name": HANDSHAKE_TYPES.get(m.type),
                           "length": m.length}
    h = parse_hello(m)
    if h is not None:
        out.update(hello_json(h, transport))
    elif m.type == HS_CERTIFICATE:
        out["certificates"] = certificate_subjects(parse_certificates(m, tls13))
    elif m.type == HS_ENCRYPTED_EXTENSIONS and len(m.body) >= 2:
        exts, _bad = parse_extensions(m.body, 0)
        out["extensions"] = [{"type": t, "name": EXTENSION_NAMES.get(t), "length": len(d)}
                             for t, d in exts]
        out["alpn"] = [text(a) for t, d in exts if t == EXT_ALPN for a in alpn_protocols(d)]
    return out


def _tls13(t: Any) -> bool:
    if t.session_version is not None:
        return bool(t.session_version == 0x0304)
    for m in t.handshakes:
        h = parse_hello(m)
        if h is not None and not h.client:
            return h.selected_version == 0x0304
    return False


def json(t: Any) -> dict[str, Any]:
    tls13 = _tls13(t)
    out: dict[str, Any] = {
        "records": [{"content_type": r.content_type,
                     "content_type_name": CONTENT_TYPES.get(r.content_type),
                     "version": r.version, "length": r.length,
                     "encrypted": r.content_type == CT_APPLICATION_DATA or r.offset in t.sealed,
                     "opaque": tls13 and r.content_type == CT_APPLICATION_DATA,
                     **({"decrypted": {"content_type": t.plaintext[r.offset][0],
                                       "length": len(t.plaintext[r.offset][1])}}
                        if r.offset in t.plaintext else {})}
                    for r in t.records],
        "handshakes": [handshake_json(m, tls13) for m in t.handshakes],
    }
    inner = [m for ct, p in t.plaintext.values() if ct == CT_HANDSHAKE
             for m in handshakes(p)[0]]
    if inner:
        out["decrypted_handshakes"] = [handshake_json(m, tls13) for m in inner]
    if t.session_version is not None:
        out["session_version"] = t.session_version
    if t.frames:
        out["reassembled"] = [{"frame": f, "bytes": n} for f, n in t.frames]
    return out


def tree(t: Any) -> Iterable[str]:
    tls13 = _tls13(t)
    for r in t.records:
        enc = " (encrypted)" if r.content_type == CT_APPLICATION_DATA or r.offset in t.sealed \
            else ""
        yield (f"record @{r.offset:<5} {CONTENT_TYPES.get(r.content_type, r.content_type)}, "
               f"{version_name(r.version)}, length {r.length}{enc}")
        if r.offset in t.plaintext:
            ct, p = t.plaintext[r.offset]
            yield (f"  decrypted     {CONTENT_TYPES.get(ct, ct)}, {len(p)} bytes: "
                   f"{text(p[:48])}" + ("…" if len(p) > 48 else ""))
    inner = [m for ct, p in t.plaintext.values() if ct == CT_HANDSHAKE
             for m in handshakes(p)[0]]
    for m in (*t.handshakes, *inner):
        d = handshake_json(m, tls13)
        yield f"handshake      {d['type_name'] or m.type}, length {m.length}"
        for k, v in d.items():
            if k in ("type", "type_name", "length"):
                continue
            shown = v
            if k == "ciphers":
                shown = ", ".join(cipher_name(c) for c in v)
            elif k == "supported_groups":
                shown = ", ".join(GROUP_NAMES.get(g, str(g)) for g in v)
            elif k == "extensions":
                shown = ", ".join(f"{e['name'] or e['type']}({e['length']})" for e in v)
            yield f"  {k:<13} {shown}"
    if len(t.frames) > 1:
        yield "reassembled    " + ", ".join(f"#{f}({n})" for f, n in t.frames)
