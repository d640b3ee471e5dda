"""How rawlab writes values down, once for every output: addresses, endpoints, JSON.

    ip_text(b"\\x0a\\x00\\x00\\x01")      # '10.0.0.1' (16 bytes: IPv6 as inet_ntop, RFC 5952;
                                           #  any other length: hex)
    mac_text(b"\\x02\\x00...")            # '02:00:00:00:00:01'
    endpoint("10.0.0.1", 80)             # '10.0.0.1:80'; IPv6 in brackets: '[fd00::1]:80'
    endpoint(b"\\xfd\\x00...", 80)        # bytes are turned into text first
    jsonable(value)                      # any value a decoder gives -> JSON data (total)
    json_line(obj)                       # compact NDJSON line, with its newline

Addresses are written by the C library's ``inet_ntop`` (what tcpdump, tshark and
``ip`` print, IPv4-mapped IPv6 included: ``::ffff:10.0.0.1``), far cheaper than
``ipaddress`` objects (bench/README.md, "Where the time goes").
"""

from __future__ import annotations

import dataclasses
import enum
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

_AF = {4: socket.AF_INET, 16: socket.AF_INET6}
_ntop = socket.inet_ntop


_IP_CACHE: dict[bytes, str] = {}


def ip_text(b: bytes | bytearray | memoryview) -> str:
    """An IPv4 or IPv6 address as text; bytes of another length as hex.

    Remembers the last 65,536 addresses (a capture repeats its few addresses on every
    packet: a dict hit is cheaper than ``inet_ntop``)."""
    key = b if type(b) is bytes else bytes(b)
    got = _IP_CACHE.get(key)
    if got is not None:
        return got
    af = _AF.get(len(key))
    got = key.hex() if af is None else _ntop(af, key)
    if len(_IP_CACHE) >= 65536:
        _IP_CACHE.clear()
    _IP_CACHE[key] = got
    return got


def mac_text(b: bytes | bytearray | memoryview) -> str:
    """A link-layer address as colon-separated hex."""
    return ":".join(f"{x:02x}" for x in bytes(b))


def endpoint(addr: str | bytes, port: int) -> str:
    """``addr:port``, with an IPv6 address in brackets (``[fd00::1]:80``)."""
    a = addr if isinstance(addr, str) else ip_text(addr)
    return f"[{a}]:{port}" if ":" in a else f"{a}:{port}"


def jsonable(value: Any, fmt: Callable[[bytes], Any] | None = None,
             fields: Mapping[str, Callable[[bytes], Any]] | None = None) -> Any:
    """JSON data for any value a decoder gives; never fails (docs/json.md, "values").

    ints, floats, strings, booleans and None stay; bytes become ``fmt(bytes)`` where
    the caller knows the field is an address, else lower-case hex; enums their value;
    tuples, lists and sets lists; dicts objects with string keys (``fields`` maps a
    key to the formatter of its bytes); dataclasses objects of their fields;
    anything else its ``str()``.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        b = bytes(value)
        return fmt(b) if fmt is not None else b.hex()
    if isinstance(value, dict):
        get = (fields or {}).get
        return {str(k): jsonable(v, get(str(k))) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, fmt, fields) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def preview(data: bytes, limit: int = 64) -> str:
    """Payload bytes as quoted text: printable ASCII as is, the rest escaped (``\\n``,
    ``\\x00``), cut at `limit` bytes with an ellipsis: ``"GET / HTTP/1.0\\r\\n"…``."""
    text = data[:limit].decode("ascii", "backslashreplace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return f'"{text}"' + ("…" if len(data) > limit else "")


def hex_lines(data: bytes | memoryview, *, ascii: bool = True, offset: int = 0) -> list[str]:
    """tcpdump's -x / -X dump: 16 bytes a line in groups of two, the offset in hex, and
    (``ascii``) the printable bytes beside them, others as dots."""
    b = bytes(data)
    out = []
    for i in range(0, len(b), 16):
        chunk = b[i:i + 16]
        words = " ".join(chunk[j:j + 2].hex() for j in range(0, len(chunk), 2))
        if ascii:
            text = "".join(chr(c) if 32 < c < 127 else "." for c in chunk)  # isgraph
            out.append(f"\t0x{offset + i:04x}:  {words:<39}  {text}")
        else:
            out.append(f"\t0x{offset + i:04x}:  {words}")
    return out


def hex_columns(j: int) -> tuple[int, int]:
    """Where byte ``j`` (0..15) of a :func:`hex_lines` line (``ascii``, its tab left out)
    is shown: the column of its two hex digits and of its character."""
    return 9 + (j // 2) * 5 + (j % 2) * 2, 50 + j


def ascii_text(data: bytes | memoryview) -> str:
    """tcpdump's -A: printable bytes and line breaks as they are, other bytes as dots."""
    b = bytes(data).replace(b"\r\n", b"\n")
    return "".join(chr(c) if 32 <= c < 127 or c in (9, 10) else "." for c in b)


_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def json_line(obj: Any) -> str:
    """One compact NDJSON line (UTF-8 text kept as is), newline included."""
    return _compact(obj) + "\n"


def json_text(obj: Any) -> str:
    """Compact JSON without the newline (for values inside text lines)."""
    return _compact(obj)


def write_all(out: Any, data: bytes | bytearray | memoryview) -> None:
    """Every byte of ``data`` to the binary stream ``out``. An unbuffered one (``python -u``,
    PYTHONUNBUFFERED: ``sys.stdout.buffer`` is then the raw FileIO) may take a part only:
    a signal that interrupts a write to a full pipe (Ctrl-C of a capture whose reader is
    slow) returns how much went through, and the rest would be lost."""
    view = memoryview(data)
    while view:
        n = out.write(view)
        if n is None:  # a non-blocking descriptor, full: wait until it takes more
            import select

            select.select([], [out], [])
            continue
        view = view[n:]
