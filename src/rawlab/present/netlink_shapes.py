"""NDJSON of rtnetlink dumps, fast: one compiled template per message *shape*.

A dump repeats itself: 20,000 routes are 20,000 messages whose bytes differ
only in numbers (destination, gateway, interface, sequence...). The first
message of a shape is decoded the ordinary way (:func:`decode_message`, then
:func:`msg_json`); from that result a :class:`Shape` is compiled:

* the byte ranges that hold plain numbers become *slots*: integer fields of
  the family header (not ``family``, which decides how attributes are read),
  and top-level attributes that appear once and are read as an integer or an
  IPv4 address;
* every other byte is *literal*: lengths, types, flags, ``nlmsg_seq`` and
  ``nlmsg_pid`` (one value for a whole dump), strings, nested and repeated
  attributes, IPv6 addresses.

A regular expression made of the literal bytes and a wildcard per slot byte
finds how many of the following messages have the same shape (all in C);
:func:`struct.iter_unpack` reads their slots and ``%`` formatting fills the
JSON text that :func:`msg_json` produced for the first one, with each slot
turned into ``%d`` (an IPv4 address into ``"%d.%d.%d.%d"``). A message that
matches has the same bytes as the first everywhere but in its slots, so it
decodes to the same JSON but for those numbers: the output is byte for byte
what the ordinary path prints (tests compare the two on real dumps and on
generated ones). Anything that does not match, including truncated or
malformed messages, takes the ordinary path.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from typing import Any

from rawlab.decode.rtnl import K_INT, K_IP, decode_message, msg_type
from rawlab.present.netlink import msg_json
from rawlab.sockets.netlink_wire import (
    NLA_TYPE_MASK,
    NLMSG_HDRLEN,
    NLMSG_MIN_TYPE,
    NLMSGHDR,
    NlMsg,
    attributes,
)

_INT_CODES = frozenset("bBhHiIlLqQ")
MAX_SHAPES = 8  # per (type, length): shapes kept, most recent first
GIVE_UP = 4  # shapes compiled for one (type, length) without a single reuse: stop trying


class Shape:
    """The compiled form of one message shape: a regex run, a Struct and a template."""

    __slots__ = ("hits", "run", "skip", "step", "template", "unpack")

    def __init__(self, pattern: bytes, fmt: str, template: bytes, step: int,
                 skip: bool) -> None:
        self.run = re.compile(b"(?:" + pattern + b")*", re.DOTALL).match
        self.unpack = struct.Struct(fmt).iter_unpack
        self.template = template
        self.step = step
        self.skip = skip  # messages of this shape are filtered out
        self.hits = 0

    def render(self, data: memoryview) -> bytes:
        if self.skip:
            return b""
        return b"".join(map(self.template.__mod__, self.unpack(data)))


class ShapeRenderer:
    """Turns dump buffers into NDJSON, identical to ``(encode(msg_json(m)) + "\\n").encode()``.

    Bytes, not text: ``bytes % values`` is a quarter faster than formatting a
    ``str`` and encoding it, and the lines go straight to ``sys.stdout.buffer``.

    ``encode``: the JSON encoder the caller uses for everything else.
    ``keep``: an optional filter; ``literal``: the header fields and attribute
    names it reads (they are never slots, so one shape is kept or dropped as a whole).
    """

    def __init__(self, encode: Callable[[Any], str], *,
                 keep: Callable[[NlMsg], bool] | None = None,
                 literal: frozenset[str] = frozenset()) -> None:
        self.encode = encode
        self.keep = keep
        self.literal = literal
        self.shapes: dict[tuple[int, int], list[Shape]] = {}
        self.compiled: dict[tuple[int, int], int] = {}
        self.fast = 0  # messages rendered by a shape
        self.slow = 0  # messages rendered the ordinary way

    def render(self, buf: bytes) -> Iterator[bytes]:
        """The NDJSON lines (UTF-8) of every rtnetlink message (type >= 16) in one buffer."""
        view = memoryview(buf)
        off, n = 0, len(buf)
        shapes = self.shapes
        header = NLMSGHDR.unpack_from
        while off + NLMSG_HDRLEN <= n:
            length, mtype, _flags, _seq, _pid = header(buf, off)
            if length < NLMSG_HDRLEN:
                break
            key = (mtype, length)
            end = off
            for shape in shapes.get(key, ()):
                end = shape.run(buf, off).end()
                if end > off:  # this message and the run after it have this shape
                    shape.hits += 1
                    self.fast += (end - off) // shape.step
                    yield shape.render(view[off:end])
                    break
            if end > off:
                off = end
                continue
            m, nxt = decode_message(buf, off)
            if m.type >= NLMSG_MIN_TYPE:
                self.slow += 1
                d = msg_json(m)
                wanted = self.keep is None or self.keep(m)
                if wanted:
                    yield (self.encode(d) + "\n").encode()
                self._learn(key, buf, off, m, d, not wanted)
            if nxt < 0:
                break
            off = nxt

    # ---- compiling a shape ----------------------------------------------------------

    def _learn(self, key: tuple[int, int], buf: bytes, off: int, m: NlMsg,
               d: dict[str, Any], skip: bool) -> None:
        made = self.compiled.get(key, 0)
        have = self.shapes.get(key, [])
        if made >= GIVE_UP and not any(s.hits for s in have):
            return  # every message of this size differs in its literal bytes
        shape = self._compile(buf, off, m, d, skip)
        if shape is None:
            return
        self.compiled[key] = made + 1
        self.shapes[key] = [shape, *have][:MAX_SHAPES]

    def _compile(self, buf: bytes, off: int, m: NlMsg, d: dict[str, Any],
                 skip: bool) -> Shape | None:
        if not m.ok or m.error is not None or m.extack is not None:
            return None
        t = msg_type(m.type)
        if t.header_st is None:
            return None
        length = m.len
        step = (length + 3) & ~3
        if off + step > len(buf):
            return None  # the last message of a buffer may lack its padding
        literal = self.literal
        # slot: (offset in the message, struct code, size, where its value sits in d)
        slots: list[tuple[int, str, int, tuple[str, ...]]] = []
        for name, st, foff in t.header_spec:
            code = _int_code(st)
            if code is None or name == "family" or name in literal:
                continue  # family decides how attributes are read: never a slot
            if name not in m.header or d.get(name) is not m.header[name]:
                continue
            slots.append((NLMSG_HDRLEN + foff, code, st.size, (name,)))
        attrs = d.get("attrs")
        if not isinstance(attrs, dict):
            return None
        seen: dict[str, int] = {}
        found: list[tuple[int, str, int, str]] = []
        schema = t.schema.by_type
        for atype, p, q in attributes(buf, off + NLMSG_HDRLEN + t.header_len, off + length):
            if atype > 0xFFFF:
                return None
            spec = schema.get(atype & NLA_TYPE_MASK)
            if spec is not None:
                seen[spec.name] = seen.get(spec.name, 0) + 1
                at, size = p - off, q - p  # the value's offset in the message, its size
                if spec.kind == K_INT and spec.st is not None:
                    code = _int_code(spec.st)
                    if code is not None and size >= spec.st.size:
                        found.append((at, code, spec.st.size, spec.name))
                elif spec.kind == K_IP and size == 4:  # an IPv4 address
                    found.append((at, "4B", 4, spec.name))
        for at, code, size, name in found:
            if seen[name] == 1 and name not in literal and name in attrs:
                slots.append((at, code, size, ("attrs", name)))
        slots.sort()
        return self._build(buf, off, length, step, slots, d, skip)

    def _build(self, buf: bytes, off: int, length: int, step: int,
               slots: list[tuple[int, str, int, tuple[str, ...]]], d: dict[str, Any],
               skip: bool) -> Shape | None:
        marked = {**d, "attrs": dict(d["attrs"])}
        fills: dict[str, str] = {}
        for i, (_at, code, _size, where) in enumerate(slots):
            mark = f"\ue000{i}\ue001"
            target = marked if len(where) == 1 else marked["attrs"]
            target[where[-1]] = mark
            fills[f'"{mark}"'] = '"%d.%d.%d.%d"' if code == "4B" else "%d"
        text = self.encode(marked)
        if text.count("\ue000") != len(slots) or text.count("\ue001") != len(slots):
            return None  # a string of the message itself holds a marker character
        template = text.replace("%", "%%")
        last = -1
        for mark, fill in fills.items():  # in slot (byte) order
            at = template.find(mark)
            if at < last:
                return None  # % fills in order: placeholders must come in byte order
            last = at
            template = template.replace(mark, fill)
        fmt = ["="]
        pattern = []
        pos = 0
        for at, code, size, _where in slots:
            if at < pos:
                return None
            if at > pos:
                fmt.append(f"{at - pos}x")
                pattern.append(re.escape(bytes(buf[off + pos:off + at])))
            fmt.append(code)
            pattern.append(b".{%d}" % size)
            pos = at + size
        if length > pos:
            fmt.append(f"{length - pos}x")
            pattern.append(re.escape(bytes(buf[off + pos:off + length])))
        if step > length:
            fmt.append(f"{step - length}x")
            pattern.append(b".{%d}" % (step - length))  # padding: any bytes
        return Shape(b"".join(pattern), "".join(fmt), (template + "\n").encode(), step, skip)


def _int_code(st: struct.Struct) -> str | None:
    """The one integer code of a native-order Struct (``"=I"`` -> ``"I"``), else None."""
    f = st.format
    if len(f) == 2 and f[0] == "=" and f[1] in _INT_CODES:
        return f[1]
    return None
