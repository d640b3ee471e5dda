"""SSH (rawlab.decode.ssh) as a line, tree lines and JSON.

Line: ``SSH banner SSH-2.0-OpenSSH_9.2p1`` / ``SSH Key Exchange Init`` /
``SSH encrypted``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rawlab.decode.ssh import MESSAGE_NAMES
from rawlab.present.app import text


def msg_name(code: int) -> str:
    return MESSAGE_NAMES.get(code, f"message {code}")


def line(s: Any) -> str:
    parts = []
    if s.banner is not None:
        parts.append(f"banner {text(s.banner)}")
    parts += [msg_name(p.message_code) for p in s.packets]
    if s.encrypted:
        parts.append("encrypted")
    return "SSH " + ", ".join(parts) if parts else "SSH"


def json(s: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.banner is not None:
        out["protocol"] = text(s.banner)
    out["packets"] = [{"packet_length": p.packet_length, "padding_length": p.padding_length,
                       "message_code": p.message_code, "message": msg_name(p.message_code)}
                      for p in s.packets]
    kex = s.kexinit
    if kex is not None:
        out["kexinit"] = {k: text(v) for k, v in kex.items()}
    out["encrypted"] = s.encrypted
    return out


def tree(s: Any) -> Iterable[str]:
    if s.banner is not None:
        yield f"protocol       {text(s.banner)}"
    for p in s.packets:
        yield (f"packet @{p.offset:<6} length {p.packet_length}, padding {p.padding_length},"
               f" {msg_name(p.message_code)} ({p.message_code})")
    kex = s.kexinit
    for k, v in (kex or {}).items():
        yield f"  {k}: {text(v)}"
    if s.encrypted:
        yield "encrypted packet(s)"
