"""HTTP/1.x messages (rawlab.decode.http) as a line, tree lines and JSON.

Line: ``HTTP GET /index.html Host example.org`` /
``HTTP/1.1 200 OK text/html 1234 bytes`` (``chunked (3 chunks)``; reassembly noted).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rawlab.present.app import text
from rawlab.present.app.tls import reassembled


def line(m: Any) -> str:
    if m.request:
        s = f"HTTP {text(m.method or b'')} {text(m.target or b'')}"
        host = m.header(b"host")
        if host is not None:
            s += f" Host {text(host)}"
    else:
        s = f"{text(m.version)} {m.status} {text(m.reason or b'')}".rstrip()
        ct = m.header(b"content-type")
        if ct is not None:
            s += f" {text(ct)}"
    if m.chunked:
        s += f" chunked ({len(m.chunks)} chunks, {m.body_len} bytes)"
    elif m.body_len:
        s += f" {m.body_len} bytes"
    return s + reassembled(m.frames)


def json(m: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"request": m.request}
    if m.request:
        out.update(method=text(m.method or b""), uri=text(m.target or b""),
                   version=text(m.version))
    else:
        out.update(version=text(m.version), status=m.status, reason=text(m.reason or b""))
    for key, name in (("host", b"host"), ("content_type", b"content-type"),
                      ("user_agent", b"user-agent"), ("server", b"server"),
                      ("transfer_encoding", b"transfer-encoding")):
        v = m.header(name)
        if v is not None:
            out[key] = text(v)
    out.update(content_length=m.content_length, chunked=m.chunked, head_length=m.head_len,
               body_length=m.body_len, headers=[[text(k), text(v)] for k, v in m.headers])
    if m.chunked:
        out["chunks"] = list(m.chunks)
    if m.frames:
        out["reassembled"] = [{"frame": f, "bytes": n} for f, n in m.frames]
    return out


def tree(m: Any) -> Iterable[str]:
    yield f"start line     {text(m.start_line)}"
    for k, v in m.headers:
        yield f"  {text(k)}: {text(v)}"
    if m.chunked:
        yield f"body           chunked: {', '.join(map(str, m.chunks))} ({m.body_len} bytes)"
    else:
        yield f"body           {m.body_len} bytes"
    if len(m.frames) > 1:
        yield "reassembled    " + ", ".join(f"#{f}({n})" for f, n in m.frames)
