"""NTP (rawlab.decode.ntp) as a line, tree lines and JSON.

Line: ``NTPv4 client, stratum 0`` / ``NTPv4 server, stratum 2, refid 192.0.2.1,
xmit 2024-01-01 12:00:00.123456 UTC``; control and private modes by their opcode.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from rawlab.decode.ntp import MODE_CONTROL, MODE_NAMES, MODE_PRIVATE, NTP_UNIX_OFFSET
from rawlab.present.app import text
from rawlab.present.fmt import ip_text

CONTROL_OPS = {0: "reserved", 1: "read status", 2: "read variables", 3: "write variables",
               4: "read clock variables", 5: "write clock variables", 6: "set trap",
               7: "trap response", 8: "configure", 9: "save config", 10: "read MRU",
               11: "read ordered list", 12: "request nonce", 31: "unset trap"}


def ts_text(ts: int) -> str:
    """A 64-bit NTP timestamp as UTC text (era 0; ``0`` stays ``0``)."""
    if ts == 0:
        return "0"
    sec, frac = ts >> 32, ts & 0xFFFFFFFF
    us = frac * 1_000_000 >> 32
    unix = sec - NTP_UNIX_OFFSET
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix)) + f".{us:06d} UTC"
    except (OverflowError, OSError, ValueError):
        return f"{sec}.{us:06d}"


def refid_text(n: Any) -> str:
    """Stratum 0/1: four ASCII characters (a kiss code or a reference clock); above: an
    IPv4 address (or the first bytes of an IPv6 address's hash)."""
    if n.stratum <= 1:
        return text(n.refid.rstrip(b"\0"))
    return ip_text(n.refid)


def short_seconds(v: int) -> float:
    """The NTP short format (16.16 seconds) as seconds."""
    return v / 65536


def line(n: Any) -> str:
    s = f"NTPv{n.vn} {MODE_NAMES.get(n.mode, n.mode)}"
    if n.mode == MODE_CONTROL:
        s += (f" {'response' if n.response else 'request'}"
              f" {CONTROL_OPS.get(n.opcode, f'op {n.opcode}')}, seq {n.sequence}")
    elif n.mode == MODE_PRIVATE:
        s += (f" {'response' if n.response else 'request'} impl {n.implementation} "
              f"req {n.request}")
    else:
        s += f", stratum {n.stratum}"
        if n.stratum:
            s += f", refid {refid_text(n)}"
        if n.xmit_ts:
            s += f", xmit {ts_text(n.xmit_ts)}"
    return s


def json(n: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"version": n.vn, "mode": n.mode}
    if n.mode != MODE_PRIVATE:  # (mode 7's first byte holds R and M bits there instead)
        out["li"] = n.li
    if n.mode == MODE_CONTROL:
        out.update({k: getattr(n, k) for k in n.CONTROL_FIELDS})
        out["data"] = n.data.hex()
    elif n.mode == MODE_PRIVATE:
        out.update({k: getattr(n, k) for k in n.PRIVATE_FIELDS})
    else:
        out.update(stratum=n.stratum, poll=n.poll, precision=n.precision,
                   root_delay=n.root_delay, root_dispersion=n.root_dispersion,
                   refid=n.refid.hex(), refid_text=refid_text(n), ref_ts=n.ref_ts,
                   orig_ts=n.orig_ts, recv_ts=n.recv_ts, xmit_ts=n.xmit_ts)
        if len(n.extra):
            out["extra"] = bytes(n.extra).hex()
    return out


def tree(n: Any) -> Iterable[str]:
    yield f"li, vn, mode   {n.li}, {n.vn}, {n.mode} ({MODE_NAMES.get(n.mode, '?')})"
    if n.mode == MODE_CONTROL:
        for k in n.CONTROL_FIELDS:
            yield f"{k:<14} {getattr(n, k)}"
        if n.data:
            yield f"data           {text(n.data)}"
        return
    if n.mode == MODE_PRIVATE:
        for k in n.PRIVATE_FIELDS:
            yield f"{k:<14} {getattr(n, k)}"
        return
    yield f"stratum        {n.stratum}"
    yield f"poll           {n.poll} ({2 ** n.poll if -32 < n.poll < 32 else '?'} s)"
    yield f"precision      {n.precision}"
    yield f"root delay     {short_seconds(n.root_delay):.6f} s"
    yield f"root disp.     {short_seconds(n.root_dispersion):.6f} s"
    yield f"refid          {refid_text(n)}"
    for k in ("ref_ts", "orig_ts", "recv_ts", "xmit_ts"):
        yield f"{k:<14} {ts_text(getattr(n, k))}"
