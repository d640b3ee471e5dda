"""HTTP/1.x messages (RFC 9112): request or status line, header fields, body framing.

    m = Http(message_bytes)               # one whole message (rawlab.analysis.streams
                                          # reassembles it across TCP segments)
    m.request                             # True: request line; False: status line
    m.method, m.target, m.version         # request: b"GET", b"/index.html", b"HTTP/1.1"
    m.version, m.status, m.reason         # response: b"HTTP/1.1", 200, b"OK"
    m.headers                             # ((name, value), ...) as sent (bytes)
    m.header(b"host")                     # the first value of a field (case-insensitive)
    m.content_length, m.chunked           # body framing (int or None, bool)
    m.head_len                            # bytes of the start line and header fields
    m.body_len                            # bytes of the body (the decoded length for
                                          # chunked: the sum of the chunk sizes)
    m.chunks                              # chunk sizes, in order (chunked bodies)

:func:`message_len` is the framing the stream reassembler uses (as Wireshark's
``http`` dissector with body desegmentation): the head ends at the first empty
line; then ``Content-Length`` bytes, or the chunks up to the last one and its
trailer, or (a response with neither) everything until the connection closes.
Responses 1xx, 204 and 304 have no body.
"""

from __future__ import annotations

import re
from typing import ClassVar

from rawlab.decode.view import AppView, Buffer, as_view

#: TCP ports Wireshark gives to HTTP by default (the common ones)
HTTP_PORTS = (80, 631, 1900, 3128, 8080, 8088)
METHODS = (b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT",
           b"TRACE", b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK",
           b"UNLOCK", b"SEARCH", b"REPORT", b"NOTIFY", b"SUBSCRIBE", b"M-SEARCH", b"PRI")
MAX_HEAD = 65536
#: :func:`message_len` for a body that runs until the connection closes
UNTIL_CLOSE = 1 << 62
_STATUS = re.compile(rb"HTTP/\d\.\d \d\d\d")
_CHUNK = re.compile(rb"([0-9A-Fa-f]+)[^\r\n]*\r?\n")


def starts_message(data: bytes | memoryview) -> bool:
    """True when ``data`` begins like an HTTP/1.x request or status line."""
    head = bytes(data[:16])
    if head.startswith(b"HTTP/"):
        return len(head) < 12 or _STATUS.match(head) is not None
    sp = head.find(b" ")
    return (sp > 0 and head[:sp] in METHODS) or (sp < 0 and any(
        m.startswith(head) for m in METHODS))


def head_end(data: bytes | memoryview) -> int:
    """Bytes of the head (up to and including the empty line), 0 if not complete."""
    b = bytes(data[:MAX_HEAD])
    i = b.find(b"\r\n\r\n")
    j = b.find(b"\n\n")
    if i < 0 and j < 0:
        return 0
    if i >= 0 and (j < 0 or i + 2 <= j):
        return i + 4
    return j + 2


def _fields(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    fields = []
    for ln in lines[1:]:
        if not ln:
            break
        if ln[:1] in (b" ", b"\t") and fields:  # obsolete line folding
            k, v = fields[-1]
            fields[-1] = (k, v + b" " + ln.strip())
            continue
        k, sep, v = ln.partition(b":")
        if sep:
            fields.append((k.strip(), v.strip()))
    return lines[0], fields


def _framing(start: bytes, fields: list[tuple[bytes, bytes]]) -> tuple[int | None, bool, bool]:
    """(content length, chunked, body runs until close) from the head."""
    cl: int | None = None
    chunked = False
    for k, v in fields:
        lk = k.lower()
        if lk == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
        elif lk == b"content-length" and cl is None:
            try:
                cl = int(v.split(b",")[0])
            except ValueError:
                cl = None
    response = start.startswith(b"HTTP/")
    if response:
        parts = start.split(b" ", 2)
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if 100 <= code < 200 or code in (204, 304):
            return 0, False, False
    if chunked:
        return None, True, False
    if cl is not None:
        return cl, False, False
    return (None, False, True) if response else (0, False, False)


def chunks(data: bytes | memoryview, start: int) -> tuple[list[int], int]:
    """The chunk sizes of a chunked body starting at ``start`` and the end of the body
    (after the last chunk's trailer fields), or -1 when it is not all there."""
    b = bytes(data)
    o = start
    sizes = []
    while True:
        m = _CHUNK.match(b, o)
        if m is None:
            return sizes, -1
        size = int(m.group(1), 16)
        o = m.end()
        if size == 0:  # the last chunk: trailer fields, then an empty line
            while True:
                nl = b.find(b"\n", o)
                if nl < 0:
                    return sizes, -1
                line = b[o:nl].rstrip(b"\r")
                o = nl + 1
                if not line:
                    return sizes, o
        sizes.append(size)
        o += size
        if b[o:o + 2] == b"\r\n":
            o += 2
        elif b[o:o + 1] == b"\n":
            o += 1
        else:
            return sizes, -1


def message_len(data: bytes | memoryview) -> int:
    """Bytes of the message at the start of ``data`` (as soon as the head tells: it may be
    more than ``data`` holds), 0 while the head (or a chunked body) is incomplete, -1
    when these bytes are no HTTP message, :data:`UNTIL_CLOSE` for a body that ends with
    the connection."""
    if not starts_message(data):
        return -1
    he = head_end(data)
    if not he:
        return 0 if len(data) < MAX_HEAD else -1
    start, fields = _fields(bytes(data[:he]))
    cl, chunked, until_close = _framing(start, fields)
    if until_close:
        return UNTIL_CLOSE
    if chunked:
        _sizes, end = chunks(data, he)
        return end if end > 0 else 0
    return he + (cl or 0)


class Http(AppView):
    #: the first bytes a message may start with (methods, "HTTP/"): descent.port_names
    FIRST_BYTES: ClassVar[bytes] = bytes(1 if b in {m[0] for m in (*METHODS, b"HTTP/")} else 0
                                         for b in range(256))

    __slots__ = ("chunked", "chunks", "content_length", "head_len", "headers", "length", "method",
                 "reason", "request", "start_line", "status", "target", "version")
    name: ClassVar[str] = "http"

    def __init__(self, buf: Buffer, length: int | None = None) -> None:
        self.buf = mv = as_view(buf)
        self.truncated = self.malformed = False
        he = head_end(mv)
        if not he:
            self.truncated = True
            he = len(mv)
        self.head_len = he
        start, fields = _fields(bytes(mv[:he]))
        self.start_line = start.rstrip(b"\r")
        self.headers = tuple(fields)
        parts = self.start_line.split(b" ", 2)
        self.request = not self.start_line.startswith(b"HTTP/")
        self.method = self.target = self.reason = None
        self.status: int | None = None
        if self.request:
            self.method = parts[0]
            self.target = parts[1] if len(parts) > 1 else b""
            self.version = parts[2] if len(parts) > 2 else b""
            self.malformed = len(parts) < 3 or self.method not in METHODS
        else:
            self.version = parts[0]
            self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            self.reason = parts[2] if len(parts) > 2 else b""
            self.malformed = self.status is None
        cl, self.chunked, _close = _framing(start, fields)
        self.content_length = self.header_int(b"content-length")
        self.chunks: tuple[int, ...] = ()
        if self.chunked:
            sizes, end = chunks(mv, he)
            self.chunks = tuple(sizes)
            if end < 0:
                self.truncated = True
        #: bytes of the whole message as the stream carried it (the view may hold less)
        self.length = len(mv) if length is None else length
        if length is None and cl is not None and len(mv) < he + cl:
            self.truncated = True
        #: ((frame, bytes), ...) of the TCP segments the message came in
        self.frames: tuple[tuple[int, int], ...] = ()

    @staticmethod
    def pdu_len(data: memoryview | bytes) -> int:
        """:func:`message_len`: the TCP stream reassembler's framing."""
        return message_len(data)


    @property
    def body_len(self) -> int:
        if self.chunked:
            return sum(self.chunks)
        return max(self.length - self.head_len, 0)

    def header(self, name: bytes) -> bytes | None:
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return None

    def header_int(self, name: bytes) -> int | None:
        v = self.header(name)
        try:
            return int(v.split(b",")[0]) if v is not None else None
        except ValueError:
            return None

    def fields(self) -> dict[str, object]:
        return {"start_line": self.start_line, "headers": self.headers,
                "content_length": self.content_length, "chunked": self.chunked,
                "body_len": self.body_len}
