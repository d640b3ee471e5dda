"""`rawlab vsock` output: one line per event, bench tables, and the JSON documents.

The only place vsock records are formatted (docs/json.md, "vsock", has the schemas).
"""

from __future__ import annotations

from typing import Any

from rawlab.present.fmt import preview
from rawlab.sockets.vsock import (
    VMADDR_CID_ANY,
    VMADDR_PORT_ANY,
    Accepted,
    Closed,
    Endpoint,
    Event,
    Listening,
    Received,
    VsockAddr,
)
from rawlab.sockets.vsockbench import (
    BenchReport,
    Progress,
    ServerSession,
    Throughput,
    summary,
)

CID_SCHEMA = "rawlab.vsock.cid/1"
LISTEN_SCHEMA = "rawlab.vsock.listen/1"
BENCH_SCHEMA = "rawlab.vsock.bench/1"
SERVER_SCHEMA = "rawlab.vsock.bench-server/1"
PREVIEW = 64  # bytes of payload shown per event


# --- small formatters -------------------------------------------------------------------


def endpoint_text(ep: Endpoint) -> str:
    return str(ep)


def endpoint_json(ep: Endpoint) -> dict[str, Any]:
    if isinstance(ep, VsockAddr):
        d: dict[str, Any] = {"cid": None if ep.cid == VMADDR_CID_ANY else ep.cid,
                             "port": None if ep.port == VMADDR_PORT_ANY else ep.port}
        if ep.flags:
            d["flags"] = ep.flags
        return d
    return {"unix": ep.removeprefix("unix:")}


def size_text(n: float) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n:.0f} B"


def rate_text(bytes_per_s: float) -> str:
    return f"{bytes_per_s / (1 << 20):.1f} MiB/s ({bytes_per_s * 8 / 1e9:.2f} Gbit/s)"


def ns_text(ns: float) -> str:
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


# --- listen events ------------------------------------------------------------------------


def event_text(ev: Event) -> str:
    if isinstance(ev, Listening):
        return f"listening on {endpoint_text(ev.local)} ({ev.sock_type})"
    if isinstance(ev, Accepted):
        return f"accepted {endpoint_text(ev.peer)} ({ev.sock_type})"
    if isinstance(ev, Received):
        flags = [f for f, on in (("EOR", ev.eor), ("TRUNC", ev.trunc), ("echoed", ev.echoed))
                 if on]
        tail = f" [{' '.join(flags)}]" if flags else ""
        return f"recv {endpoint_text(ev.peer)} {len(ev.data)} B{tail} {preview(ev.data, PREVIEW)}"
    assert isinstance(ev, Closed)
    return (f"closed {endpoint_text(ev.peer)} ({ev.reason}): {ev.bytes_in} B in, "
            f"{ev.bytes_out} B out, {ev.messages} message(s), {ev.seconds:.3f} s")


def event_json(ev: Event) -> dict[str, Any]:
    if isinstance(ev, Listening):
        return {"event": "listening", "schema": LISTEN_SCHEMA, "local": endpoint_json(ev.local),
                "type": ev.sock_type}
    if isinstance(ev, Accepted):
        return {"event": "accepted", "peer": endpoint_json(ev.peer), "type": ev.sock_type}
    if isinstance(ev, Received):
        return {"event": "data", "peer": endpoint_json(ev.peer), "bytes": len(ev.data),
                "eor": ev.eor, "trunc": ev.trunc, "echoed": ev.echoed,
                "head_hex": ev.data[:PREVIEW].hex()}
    assert isinstance(ev, Closed)
    return {"event": "closed", "peer": endpoint_json(ev.peer), "reason": ev.reason,
            "bytes_in": ev.bytes_in, "bytes_out": ev.bytes_out, "messages": ev.messages,
            "seconds": round(ev.seconds, 6)}


# --- cid ------------------------------------------------------------------------------------


def cid_json(checks: list[Any], cid: int | None) -> dict[str, Any]:
    """`rawlab vsock cid --json` from the doctor's vsock checks."""
    by_id = {c.id: c for c in checks}
    transports = {name: by_id[f"vsock.transport.{name}"].status
                  for name in ("guest", "host", "loopback") if f"vsock.transport.{name}" in by_id}
    return {"schema": CID_SCHEMA, "cid": cid, "transports": transports,
            "checks": [c.to_json() for c in checks]}


# --- bench -----------------------------------------------------------------------------------


def progress_text(p: Progress) -> str:
    pct = 100 * p.done / p.total if p.total else 100.0
    return f"rawlab: {p.phase}: {pct:5.1f}%"


def _throughput_json(t: Throughput) -> dict[str, Any]:
    return {"msg_size": t.msg_size, "bytes": t.bytes, "messages": t.messages,
            "seconds": round(t.seconds, 6), "server_seconds": round(t.server_seconds, 6),
            "bytes_per_s": round(t.bytes_per_s), "gbit_per_s": round(t.bytes_per_s * 8 / 1e9, 4),
            "crc32": f"{t.crc32:08x}", "verified": True}


def bench_json(r: BenchReport) -> dict[str, Any]:
    return {
        "schema": BENCH_SCHEMA,
        "target": r.target,
        "type": r.sock_type,
        "throughput": [_throughput_json(t) for t in r.throughput],
        "latency": [{"req_size": lat.req_size, "resp_size": lat.resp_size,
                     **summary(lat.samples_ns)} for lat in r.latency],
        "connect": summary(r.connect.samples_ns) if r.connect else None,
    }


def bench_text(r: BenchReport) -> str:
    lines = [f"rawlab vsock bench {r.target} ({r.sock_type})"]
    if r.throughput:
        lines.append("throughput (bytes and CRC-32 verified by the server; clock: first send "
                     "→ server's report)")
        for t in r.throughput:
            lines.append(f"  {size_text(t.msg_size):>9} messages  {size_text(t.bytes):>9} in "
                         f"{t.seconds:.3f} s  {rate_text(t.bytes_per_s)}  "
                         f"crc32 {t.crc32:08x} ok")
    for lat in r.latency:
        s = summary(lat.samples_ns)
        lines.append(f"latency {lat.req_size} B → {lat.resp_size} B round trips "
                     f"(n={s['count']}): p50 {ns_text(s['p50_ns'])}  p99 {ns_text(s['p99_ns'])}"
                     f"  p999 {ns_text(s['p999_ns'])}  min {ns_text(s['min_ns'])}  "
                     f"max {ns_text(s['max_ns'])}")
    if r.connect:
        s = summary(r.connect.samples_ns)
        lines.append(f"connect (n={s['count']}): p50 {ns_text(s['p50_ns'])}  "
                     f"p99 {ns_text(s['p99_ns'])}  max {ns_text(s['max_ns'])}")
    return "\n".join(lines)


def session_text(s: ServerSession) -> str:
    who = endpoint_text(s.peer)
    if s.error:
        return f"session {who}: error: {s.error}"
    if s.mode == "throughput":
        return (f"session {who}: throughput {size_text(s.msg_size)} messages: {s.bytes} B in "
                f"{s.messages} read(s), crc32 {s.crc32:08x}, {s.seconds:.3f} s")
    if s.mode == "latency":
        return f"session {who}: latency {s.msg_size} B x {s.messages} round trips"
    return f"session {who}: {s.mode}"


def session_json(s: ServerSession | Listening) -> dict[str, Any]:
    if isinstance(s, Listening):
        return {"event": "listening", "schema": SERVER_SCHEMA, "local": endpoint_json(s.local),
                "type": s.sock_type}
    return {"event": "session", "peer": endpoint_json(s.peer), "mode": s.mode,
            "msg_size": s.msg_size, "bytes": s.bytes, "messages": s.messages,
            "crc32": f"{s.crc32:08x}", "seconds": round(s.seconds, 6), "error": s.error}
