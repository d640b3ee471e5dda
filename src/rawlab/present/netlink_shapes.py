"""NDJSON of rtnetlink dumps, fast: one compiled template per message *shape*.

A dump repeats itself: 20,000 routes are 20,000 messages whose bytes differ
only in numbers, addresses and names (destination, gateway, interface, MAC,
time stamps...). The first message of a shape is decoded the ordinary way
(:func:`decode_message`, then :func:`msg_json`); from that result a
:class:`Shape` is compiled:

* the byte ranges that hold plain values become *slots*: integer fields of
  the family header (not ``family``, which decides how attributes are read),
  and attributes that appear once at their level and are read as an integer,
  an IPv4 or IPv6 address, a 6-byte link-layer address, a string of plain
  ASCII, or a C struct of integers (its fields) -- at the top level and inside
  nested attributes;
* every other byte is *literal*: lengths, types, flags, ``nlmsg_seq`` and
  ``nlmsg_pid`` (one value for a whole dump), repeated attributes, strings
  with characters JSON escapes, opaque payloads.

A regular expression made of the literal bytes and a wildcard per slot byte
(a string slot: the characters JSON writes as they are) finds how many of the
following messages have the same shape (all in C); :func:`struct.iter_unpack`
reads their slots and ``%`` formatting fills the JSON text that
:func:`msg_json` produced for the first one, each slot turned into ``%d`` (an
IPv4 address into ``"%d.%d.%d.%d"``, a MAC into ``"%02x:...``, a string and an
IPv6 address into ``"%s"``). IPv6 addresses are turned into text column by
column (``inet_ntop`` mapped over the run: no Python per message), and the
columns are put in the order the JSON text names them. A message that matches
has the same bytes as the first everywhere but in its slots, so it decodes to
the same JSON but for those values: the output is byte for byte what the
ordinary path prints (tests compare the two on real dumps and on generated
ones). Anything that does not match, including truncated or malformed
messages, takes the ordinary path.
"""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import chain, repeat, takewhile
from typing import Any, NamedTuple

from rawlab.decode.rtnl import (
    K_DYN,
    K_INT,
    K_IP,
    K_MAC,
    K_NEST,
    K_STR,
    K_STRUCT,
    AttrSpec,
    Schema,
    decode_message,
    msg_type,
)
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
BATCH = 1 << 18  # bytes of a dump's datagrams rendered together (render_stream)
MAX_NEST = 4
# a run whose line holds fewer constant bytes than this per varying value is formatted
# with one `%` per line; else its pieces are joined (measured: neighbours and addresses
# with ~10 varying values per 300-byte line, links with ~8 per 3 KiB line)
PER_VALUE = 64  # slots inside nested attributes down to this depth; deeper bytes are literal
# string characters JSON writes as they are: printable ASCII but '"' and '\\'
_PLAIN = frozenset(range(0x20, 0x7F)) - {0x22, 0x5C}
_PLAIN_CLASS = b"[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]"
_V6_TEXT = partial(socket.inet_ntop, socket.AF_INET6)


def _v6_column(col: Iterable[bytes]) -> Iterator[bytes]:
    """IPv6 addresses as the UTF-8 text ip_text gives them (inet_ntop), all in C."""
    return map(str.encode, map(_V6_TEXT, col))


class Slot(NamedTuple):
    """A value a shape leaves open: where it sits and how it is read and written."""

    at: int  # offset in the message
    code: str  # struct code of its bytes ("I", "4B", "6B", "16s", "7s" ...)
    size: int
    path: tuple[str, ...]  # where its value sits in msg_json's object
    fill: str  # what replaces it in the JSON text
    v6: bool = False  # an IPv6 address: turned into text before filling

    @property
    def width(self) -> int:
        """How many values it unpacks to ("4B": 4, "16s": 1)."""
        return int(self.code[:-1]) if self.code[-1] == "B" and len(self.code) > 1 else 1


class Shape:
    """The compiled form of one message shape: a regex run, a Struct and a template.

    ``columns``: for each ``%`` directive of the template, in template order, the
    position of its value in an unpacked row and whether it is an IPv6 address.
    ``pieces``/``directives``: the template cut at its directives.
    """

    __slots__ = ("columns", "directives", "hits", "in_order", "pieces", "run", "skip", "step",
                 "template", "unpack")

    def __init__(self, pattern: bytes, fmt: str, template: bytes, step: int, skip: bool,
                 columns: list[tuple[int, bool]]) -> None:
        self.run = re.compile(b"(?:" + pattern + b")*", re.DOTALL).match
        self.unpack = struct.Struct(fmt).iter_unpack
        self.template = template
        self.step = step
        self.skip = skip  # messages of this shape are filtered out
        self.columns = columns
        self.in_order = all(i == k and not v6 for k, (i, v6) in enumerate(columns))
        self.pieces, self.directives = _cut(template)
        self.hits = 0

    def render(self, data: memoryview) -> bytes:
        """The lines of a run of messages of this shape (``data``: the whole run).

        A value that is the same in every message of the run becomes text of this
        run's line once; the values that differ are turned into text column by
        column (``map`` of ``%`` or ``inet_ntop``) and joined between the constant
        pieces, or, where the line is short and many values differ, filled into the
        run's line by one ``%`` each: no Python runs per message (a table of routes
        differs in the destination, little else).
        """
        if self.skip:
            return b""
        rows = list(self.unpack(data))
        n = len(rows)
        if n < 4:
            if not self.in_order:
                cols = list(zip(*rows, strict=True))
                rows = list(zip(*[_v6_column(cols[i]) if v6 else cols[i]  # noqa: B905
                                  for i, v6 in self.columns]))
            return b"".join(map(self.template.__mod__, rows))
        cols = list(zip(*rows, strict=True))
        pieces, directives = self.pieces, self.directives
        texts: list[bytes] = []  # the constant text between two values that differ
        text = [pieces[0]]
        values: list[Iterable[Any]] = []
        forms: list[bytes] = []  # their directives
        for k, (i, v6) in enumerate(self.columns):
            col = cols[i]
            first = col[0]
            if col.count(first) == n:  # the same in the whole run
                text.append(directives[k] % (_V6_TEXT(first).encode() if v6 else first))
            else:
                texts.append(b"".join(text))
                text = []
                values.append(_v6_column(col) if v6 else col)
                forms.append(b"%s" if v6 else directives[k])
            text.append(pieces[k + 1])
        texts.append(b"".join(text))
        if not values:
            return texts[0] * n
        if sum(map(len, texts)) < PER_VALUE * len(values):
            # short lines, many values: one `%` per line beats joining the pieces
            line = texts[0].replace(b"%", b"%%") + b"".join(
                f + t.replace(b"%", b"%%") for f, t in zip(forms, texts[1:], strict=True))
            return b"".join(map(line.__mod__, zip(*values)))  # noqa: B905 - same length
        # each line: texts[0] values[0] texts[1] values[1] ... values[-1] texts[-1]
        streams: list[Iterable[bytes]] = [repeat(texts[0])]
        for j, v in enumerate(values):
            streams += [v if forms[j] == b"%s" else map(forms[j].__mod__, v),
                        repeat(texts[j + 1])]
        return b"".join(chain.from_iterable(zip(*streams)))  # noqa: B905 - repeat() is endless


_DIRECTIVE = re.compile(rb"%%|%(?:d|s|02x)")


def _cut(template: bytes) -> tuple[list[bytes], list[bytes]]:
    """A template's literal pieces (as text: ``%%`` read as ``%``) and its directives."""
    pieces, directives = [], []
    pos = 0
    for m in _DIRECTIVE.finditer(template):
        if m.group() == b"%%":
            continue
        pieces.append(template[pos:m.start()].replace(b"%%", b"%"))
        directives.append(m.group())
        pos = m.end()
    pieces.append(template[pos:].replace(b"%%", b"%"))
    return pieces, directives


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

    def render_stream(self, bufs: Iterable[bytes], batch: int = BATCH) -> Iterator[bytes]:
        """The lines of a whole dump, its datagrams taken ``batch`` bytes at a time.

        A datagram of a dump holds at most 32 KiB of whole messages (28 links); joined,
        consecutive datagrams make longer runs of one shape, and a run costs once
        what it costs per shape, not per message.
        """
        held: list[bytes] = []
        size = 0
        for buf in bufs:
            held.append(buf)
            size += len(buf)
            if size >= batch:
                yield from self.render(held[0] if len(held) == 1 else b"".join(held))
                held, size = [], 0
        if held:
            yield from self.render(b"".join(held))

    def render(self, buf: bytes) -> Iterator[bytes]:
        """The NDJSON lines (UTF-8) of every rtnetlink message (type >= 16) in ``buf``:
        one datagram, or several of one dump joined (each holds whole messages)."""
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
        slots: list[Slot] = []
        for name, st, foff in t.header_spec:
            code = _int_code(st)
            if code is None or name == "family" or name in literal:
                continue  # family decides how attributes are read: never a slot
            if name not in m.header or d.get(name) is not m.header[name]:
                continue
            slots.append(Slot(NLMSG_HDRLEN + foff, code, st.size, (name,), "%d"))
        attrs = d.get("attrs")
        if not isinstance(attrs, dict):
            return None
        found = _SlotWalk(buf, off, m.family or 0, literal).level(
            off + NLMSG_HDRLEN + t.header_len, off + length, t.schema, m.attrs, attrs,
            ("attrs",))
        if found is None:
            return None
        slots += found
        slots.sort()
        return self._build(buf, off, length, step, slots, d, skip)

    def _build(self, buf: bytes, off: int, length: int, step: int, slots: list[Slot],
               d: dict[str, Any], skip: bool) -> Shape | None:
        marked = _marked(d, slots)
        text = self.encode(marked)
        if text.count("\ue000") != len(slots) or text.count("\ue001") != len(slots):
            return None  # a string of the message itself holds a marker character
        template = text.replace("%", "%%")
        where = []
        for i, slot in enumerate(slots):
            mark = f'"\ue000{i}\ue001"'
            at = template.find(mark)
            if at < 0:
                return None
            where.append((at, i))
            template = template.replace(mark, slot.fill)
        order = [i for _at, i in sorted(where)]  # the slots in the order the text names them
        first = [0]  # where each slot's values start in an unpacked row ("4B": 4 values)
        for slot in slots:
            first.append(first[-1] + slot.width)
        columns = [(first[i] + k, slots[i].v6) for i in order for k in range(slots[i].width)]
        fmt = ["="]
        pattern: list[bytes | int | tuple[int]] = []  # literal bytes; a count of any bytes;
        # (count,): that many plain string characters
        pos = 0
        for slot in slots:
            if slot.at < pos:
                return None
            if slot.at > pos:
                fmt.append(f"{slot.at - pos}x")
                pattern.append(bytes(buf[off + pos:off + slot.at]))
            fmt.append(slot.code)
            plain = slot.code.endswith("s") and not slot.v6  # a string: plain characters only
            pattern.append((slot.size,) if plain else slot.size)
            pos = slot.at + slot.size
        if length > pos:
            fmt.append(f"{length - pos}x")
            pattern.append(bytes(buf[off + pos:off + length]))
        if step > length:
            fmt.append(f"{step - length}x")
            pattern.append(step - length)  # padding: any bytes
        return Shape(_regex(pattern), "".join(fmt), (template + "\n").encode(), step, skip,
                     columns)


def _regex(parts: list[bytes | int | tuple[int]]) -> bytes:
    """A regular expression of literal bytes, counts of any bytes (adjacent ones merged:
    fewer, longer pieces match faster) and counts of plain string characters."""
    out: list[bytes] = []
    wild = 0
    for part in parts:
        if isinstance(part, int):
            wild += part
            continue
        if wild:
            out.append(b".{%d}" % wild)
            wild = 0
        out.append(_PLAIN_CLASS + b"{%d}" % part[0] if isinstance(part, tuple)
                   else re.escape(part))
    if wild:
        out.append(b".{%d}" % wild)
    return b"".join(out)


def _marked(d: dict[str, Any], slots: list[Slot]) -> dict[str, Any]:
    """A copy of ``d`` with a marker string where each slot's value sits."""
    marked = dict(d)
    for i, slot in enumerate(slots):
        target = marked
        for key in slot.path[:-1]:
            target[key] = target = dict(target[key])  # copy each level on the way down
        target[slot.path[-1]] = f"\ue000{i}\ue001"
    return marked


class _SlotWalk:
    """Finds the slots of one message (``buf[off:]``): its attributes, level by level."""

    def __init__(self, buf: bytes, off: int, family: int, literal: frozenset[str]) -> None:
        self.buf = buf
        self.off = off
        self.family = family
        self.literal = literal  # top-level names that are never slots

    def level(self, start: int, end: int, schema: Schema, decoded: Any, shown: Any,
              path: tuple[str, ...], depth: int = 0) -> list[Slot] | None:
        """The slots among the attributes in ``buf[start:end]`` (and the levels nested in
        them); ``decoded`` / ``shown``: their values as decoded and as JSON. None when
        the walk is not clean."""
        seen: dict[str, int] = {}
        cands: list[tuple[str, AttrSpec, int, int]] = []
        for atype, p, q in attributes(self.buf, start, end):
            if atype > 0xFFFF:
                return None
            spec = schema.by_type.get(atype & NLA_TYPE_MASK)
            if spec is not None:
                seen[spec.name] = seen.get(spec.name, 0) + 1
                cands.append((spec.name, spec, p, q))
        if not isinstance(decoded, dict) or not isinstance(shown, dict):
            return []
        out: list[Slot] = []
        for name, spec, p, q in cands:
            if seen[name] != 1 or name not in shown or (not depth and name in self.literal):
                continue
            read = spec
            if spec.kind == K_DYN:  # chosen as the decoder chose: by the siblings before it
                before = dict(takewhile(lambda kv, name=name: kv[0] != name, decoded.items()))
                read = spec.choose(self.family, before) if depth + 1 < MAX_NEST else None
                if read is None:
                    continue
            got = self.value(p, q, read, decoded.get(name), shown[name], (*path, name), depth)
            if got is None:
                return None
            out += got
        return out

    def value(self, p: int, q: int, spec: AttrSpec, value: Any, shown: Any,
              path: tuple[str, ...], depth: int) -> list[Slot] | None:
        """The slots of one attribute value ``buf[p:q]`` read as ``spec`` says."""
        at, size, k = p - self.off, q - p, spec.kind
        if k == K_INT and spec.st is not None:
            code = _int_code(spec.st)
            if code is not None and size >= spec.st.size and type(shown) is int:
                return [Slot(at, code, spec.st.size, path, "%d")]
        elif k == K_IP and size == 4:
            return [Slot(at, "4B", 4, path, '"%d.%d.%d.%d"')]
        elif k == K_IP and size == 16:
            return [Slot(at, "16s", 16, path, '"%s"', v6=True)]
        elif k == K_MAC and size == 6:
            return [Slot(at, "6B", 6, path, '"' + ":".join(["%02x"] * 6) + '"')]
        elif k == K_STR:
            raw = bytes(self.buf[p:q])
            text = raw.partition(b"\0")[0]
            if text and len(text) < size and not raw[len(text):].strip(b"\0") \
                    and _PLAIN.issuperset(text):
                return [Slot(at, f"{len(text)}s", len(text), path, '"%s"')]
        elif k == K_STRUCT and isinstance(shown, dict):
            out = []
            for fname, st, foff in spec.sub:
                code = _int_code(st)
                if code is not None and foff + st.size <= size \
                        and type(shown.get(fname)) is int:
                    out.append(Slot(at + foff, code, st.size, (*path, fname), "%d"))
            return out
        elif k == K_NEST and depth + 1 < MAX_NEST:
            return self.level(p, q, spec.schema(), value, shown, path, depth + 1)
        return []


def _int_code(st: struct.Struct) -> str | None:
    """The one integer code of a native-order Struct (``"=I"`` -> ``"I"``), else None."""
    f = st.format
    if len(f) == 2 and f[0] == "=" and f[1] in _INT_CODES:
        return f[1]
    return None
