"""What every protocol view shares: a lenient ``__slots__`` object over a memoryview.

Contract of a view (design principles 1, 2, 4, 6):

- ``View(buf)`` never raises, whatever ``buf`` holds.
- The fixed header is unpacked once, in ``__init__``, with a precompiled
  :class:`struct.Struct`. When fewer bytes were captured than the fixed header
  needs, the missing bytes read as zero and ``truncated`` is True.
- ``truncated``: the capture ends before what the header says (fixed part,
  options, or the length fields). ``malformed``: the bytes contradict
  themselves (bad version, length fields too small, option overruns ...).
- Values are ints and bytes (addresses are raw ``bytes``); ``payload`` is a
  zero-copy memoryview slice of the captured bytes. Only ``present/`` formats.
- ``FIELDS`` lists ``(name, offset, size)`` of the fixed header's fields, for
  trees that show byte offsets (bit fields share their byte's offset).
- Absent means absent: :meth:`View.fields` gives None for a fixed field whose bytes
  were not captured (the attribute itself holds the zero padding, so hot paths
  that checked the length first read it as before). Renderers print None as
  missing (JSON ``null``, the tree ``(not captured)``), never as a value.
- ``name`` is the layer key used in JSON and in the protocol hierarchy.
- ``application`` is True for the views of application protocols (what a TCP or
  UDP port leads to: DNS, TLS, ...): the packet's ``payload`` stays the transport's.
"""

from __future__ import annotations

from typing import Any, ClassVar

Buffer = bytes | bytearray | memoryview


def pad(buf: memoryview, size: int) -> tuple[memoryview | bytes, bool]:
    """``buf`` if it holds ``size`` bytes, else a zero-padded copy and True."""
    if len(buf) >= size:
        return buf, False
    return bytes(buf) + bytes(size - len(buf)), True


def as_view(data: Buffer) -> memoryview:
    """A read-only byte memoryview over ``data`` (no copy)."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


class View:
    """Base of all protocol views."""

    __slots__ = ("buf", "malformed", "truncated")
    name: ClassVar[str] = "data"
    FIELDS: ClassVar[tuple[tuple[str, int, int], ...]] = ()
    #: non-zero for an IP header that is one fragment of a datagram (IPv4, IPv6 set it)
    fragmented: ClassVar[int] = 0
    application: ClassVar[bool] = False

    buf: memoryview
    truncated: bool
    malformed: bool

    @property
    def header_len(self) -> int:
        return 0

    @property
    def payload(self) -> memoryview:
        """The bytes after this header (zero-copy), bounded by any length field."""
        return self.buf[min(self.header_len, len(self.buf)) :]

    def fields(self) -> dict[str, Any]:
        """Every fixed-header field by name (ints and bytes), in wire order; None for a
        field whose bytes were not captured."""
        if not self.truncated:
            return {name: getattr(self, name) for name, _off, _size in self.FIELDS}
        n = len(self.buf)
        return {name: getattr(self, name) if off + size <= n else None
                for name, off, size in self.FIELDS}

    def captured(self, name: str) -> bool:
        """Whether fixed field ``name``'s bytes were captured (False for other names)."""
        return any(f == name and off + size <= len(self.buf) for f, off, size in self.FIELDS)

    def __repr__(self) -> str:
        marks = "".join(
            m for m, on in ((" truncated", self.truncated), (" malformed", self.malformed)) if on
        )
        inner = ", ".join(f"{k}={v!r}" for k, v in self.fields().items())
        return f"<{type(self).__name__} {inner}{marks}>"


class Raw(View):
    """Bytes nobody decoded (unknown protocol, non-first fragment, payload)."""

    __slots__ = ("proto",)
    name: ClassVar[str] = "data"

    def __init__(self, buf: Buffer, proto: int | None = None) -> None:
        self.buf = as_view(buf)
        self.proto = proto
        self.truncated = False
        self.malformed = False

    def fields(self) -> dict[str, Any]:
        return {"proto": self.proto, "length": len(self.buf)}


class AppView(View):
    """Base of the application protocols' views (decode/dns.py, tls.py ...): the whole
    message is the layer (no payload of its own), and ``frames`` names the TCP segments
    a reassembled message came in (``((frame, bytes), ...)``; empty per packet)."""

    __slots__ = ("frames",)
    application: ClassVar[bool] = True
    frames: tuple[tuple[int, int], ...]

    @property
    def header_len(self) -> int:
        return len(self.buf)

