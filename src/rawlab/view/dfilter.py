"""The display filter: a small expression language over decoded fields (docs/view.md).

    f = DisplayFilter.parse("tcp.analysis.retransmission and ip.src == 10.0.0.1", kinds)
    f.fields                      # the field names it reads
    f.match(get)                  # get(name) -> the field's values in one packet ([] absent)

Grammar (keywords in any case)::

    expr     = term { ("or" | "||") term }
    term     = factor { ("and" | "&&") factor }
    factor   = ("not" | "!") factor | "(" expr ")" | field [ op value ]
    op       = "==" | "!=" | "<" | ">" | "<=" | ">=" | "contains"
    value    = number | "quoted text" | word      (10.0.0.1, fd00::1, 10.0.0.0/24, 02:00:..)

A field alone is true when the packet has it (and it is not false). A field
may have several values in one packet (``ip.addr``, a list such as
``tcp.options.name``): ``==``, ``<``, ``>``, ``<=``, ``>=`` and ``contains``
are true when one of them matches, ``!=`` when none equals the value (as
Wireshark's ``!=``). A comparison with an absent field is false.

``kinds(name)`` says what a field holds, so that mistakes are caught before
any packet is read: ``"int"``, ``"float"``, ``"bool"``, ``"addr"`` (an IP
address: the value may be a network, ``10.0.0.0/8``), ``"mac"``, ``"text"``,
``"layer"`` (presence only), ``"any"`` (decided per value), or None for a
field that does not exist. Every error is one line (RawlabError, exit 2).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rawlab.errors import Exit, RawlabError

Get = Callable[[str], list[Any]]
Kinds = Callable[[str], str | None]
Test = Callable[[Get], bool]

_TOKEN = re.compile(r"""\s*(?:
    (?P<op>==|!=|<=|>=|&&|\|\||[<>!()])
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<open>")
  | (?P<word>[A-Za-z0-9_.:/+\-]+)
  | (?P<bad>\S)
)""", re.X)
_COMPARE = {"==", "!=", "<", ">", "<=", ">=", "contains"}
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*\Z")


class DisplayFilterError(RawlabError):
    """A display filter that cannot be used: one line, with the column it went wrong at."""

    def __init__(self, problem: str, text: str, column: int) -> None:
        where = f" at column {column}" if column <= len(text) else " at its end"
        super().__init__(f"display filter: {problem}{where}: {text}", Exit.USAGE)
        self.column = column


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "op", "str", "word", "end"
    text: str
    col: int  # 1-based column


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while True:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        kind = m.lastgroup or "end"
        tok = m.group(kind)
        col = m.start(kind) + 1
        if kind == "bad":
            raise DisplayFilterError(f"unexpected character {tok!r}", text, col)
        if kind == "open":
            raise DisplayFilterError("unterminated quoted text", text, col)
        if kind == "str":
            tok = re.sub(r"\\(.)", r"\1", tok[1:-1])
        elif kind == "word" and tok.lower() in ("and", "or", "not", "contains"):
            kind, tok = "op", tok.lower()
        out.append(_Tok(kind, tok, col))
        pos = m.end()
    out.append(_Tok("end", "", len(text) + 1))
    return out


class DisplayFilter:
    """A parsed display filter; :meth:`match` runs it on one packet's fields."""

    def __init__(self, text: str, test: Test, fields: tuple[str, ...]) -> None:
        self.text = text
        self.fields = fields
        self._test = test

    @classmethod
    def parse(cls, text: str, kinds: Kinds | None = None) -> DisplayFilter:
        """Parse ``text``; ``kinds`` (see the module) checks the fields, None accepts any."""
        p = _Parser(text, kinds or (lambda _name: "any"))
        if not text.strip():
            raise DisplayFilterError("empty expression", text, 1)
        test = p.expr()
        if p.peek.kind != "end":
            raise DisplayFilterError(f"unexpected {p.peek.text!r} (expected and, or or the end)",
                                     text, p.peek.col)
        return cls(text, test, tuple(dict.fromkeys(p.fields)))

    def match(self, get: Get) -> bool:
        return self._test(get)

    def __repr__(self) -> str:
        return f"DisplayFilter({self.text!r})"


class _Parser:
    def __init__(self, text: str, kinds: Kinds) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.kinds = kinds
        self.fields: list[str] = []

    @property
    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def _is(self, *ops: str) -> bool:
        t = self.peek
        return t.kind == "op" and t.text in ops

    def expr(self) -> Test:
        left = self.term()
        while self._is("or", "||"):
            self.take()
            right = self.term()
            left = _either(left, right)
        return left

    def term(self) -> Test:
        left = self.factor()
        while self._is("and", "&&"):
            self.take()
            right = self.factor()
            left = _both(left, right)
        return left

    def factor(self) -> Test:
        t = self.peek
        if self._is("not", "!"):
            self.take()
            inner = self.factor()
            return lambda g: not inner(g)
        if self._is("("):
            self.take()
            inner = self.expr()
            if not self._is(")"):
                raise DisplayFilterError("missing ')'", self.text, self.peek.col)
            self.take()
            return inner
        if t.kind != "word" or not _FIELD.match(t.text):
            what = "the end" if t.kind == "end" else repr(t.text)
            raise DisplayFilterError(f"expected a field name, not {what}", self.text, t.col)
        self.take()
        return self.comparison(t)

    def comparison(self, field: _Tok) -> Test:
        name = field.text
        kind = self.kinds(name)
        if kind is None:
            raise DisplayFilterError(f"unknown field {name!r} (docs/view.md lists them)",
                                     self.text, field.col)
        self.fields.append(name)
        if not (self.peek.kind == "op" and self.peek.text in _COMPARE):
            return lambda g: any(v is not None and v is not False for v in g(name))
        op = self.take().text
        val = self.take()
        if val.kind not in ("word", "str"):
            what = "the end" if val.kind == "end" else repr(val.text)
            raise DisplayFilterError(f"expected a value after {op!r}, not {what}", self.text,
                                     val.col)
        try:
            pred = predicate(kind, op, val.text)
        except ValueError as exc:
            raise DisplayFilterError(f"{name} {exc}", self.text, val.col) from None
        if op == "!=":
            return lambda g: bool(vals := g(name)) and not any(pred(v) for v in vals)
        return lambda g: any(pred(v) for v in g(name))


def _either(a: Test, b: Test) -> Test:
    return lambda g: a(g) or b(g)


def _both(a: Test, b: Test) -> Test:
    return lambda g: a(g) and b(g)


# ---- one comparison, by the kind of the field -----------------------------------------------

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a == b,  # != is "none equal": see above
    "<": lambda a, b: a < b, ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


def _number(text: str) -> int | float:
    try:
        return int(text, 0)
    except ValueError:
        return float(text)


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes"):
        return True
    if low in ("0", "false", "no"):
        return False
    raise ValueError(f"is true or false, not {text!r}")


@functools.lru_cache(maxsize=65536)
def _ip(text: str) -> Any:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _mac(text: str) -> str:
    return text.lower().replace("-", ":")


def predicate(kind: str, op: str, text: str) -> Callable[[Any], bool]:
    """Whether one value of a field of ``kind`` satisfies ``op text`` (ValueError: the
    value cannot be compared so, said as the end of a sentence naming the field)."""
    if kind == "layer":
        raise ValueError("is a layer: test it alone, or compare one of its fields")
    if op == "contains":
        if kind in ("int", "float", "bool", "addr"):
            raise ValueError(f"holds {'an address' if kind == 'addr' else 'numbers'}: "
                             "'contains' needs text")
        return lambda v: (isinstance(v, str) and text in v) or (
            not isinstance(v, str | dict | list) and text in str(v))
    cmp = _ORDER[op]
    if kind in ("int", "float"):
        try:
            want = _number(text)
        except ValueError:
            raise ValueError(f"holds numbers: {text!r} is not one") from None
        return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and cmp(v, want)
    if kind == "bool":
        b = _bool(text)
        if op not in ("==", "!="):
            raise ValueError(f"is true or false: {op!r} does not order it")
        return lambda v: bool(v) == b
    if kind == "addr":
        return _address_test(op, text, cmp)
    if kind == "mac":
        m = _mac(text)
        return lambda v: isinstance(v, str) and cmp(_mac(v), m)
    if kind == "text":
        return lambda v: cmp(str(v), text)
    return _any_test(text, cmp)


def _address_test(op: str, text: str, cmp: Callable[[Any, Any], bool]) -> Callable[[Any], bool]:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"holds an IP address: {text!r} is not one") from None
    if "/" in text:
        if op not in ("==", "!="):
            raise ValueError(f"{op!r} compares addresses, not networks ({text})")
        return lambda v: (a := _ip(v)) is not None and a.version == net.version and a in net
    want = net.network_address
    return lambda v: (a := _ip(v)) is not None and a.version == want.version and cmp(a, want)


def _any_test(text: str, cmp: Callable[[Any, Any], bool]) -> Callable[[Any], bool]:
    """A field whose values' kind is known only when seen (netlink attributes, list
    elements): numbers compare as numbers, true/false as such, the rest as text."""
    try:
        num: int | float | None = _number(text)
    except ValueError:
        num = None
    low = text.lower()

    def test(v: Any) -> bool:
        if isinstance(v, bool):
            return low in ("true", "false", "1", "0") and cmp(v, low in ("true", "1"))
        if isinstance(v, int | float):
            return num is not None and cmp(v, num)
        if isinstance(v, dict | list):
            return False
        return cmp(str(v), text)

    return test
