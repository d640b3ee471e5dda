"""Wrap-safe 32-bit TCP sequence numbers (RFC 1982 serial arithmetic, as smoltcp's ``SeqNumber``).

    a = Seq32(0xFFFFFFF0)
    b = a + 0x20            # Seq32(0x10): wrapped
    b > a                   # True: b is 32 bytes "after" a
    b - a                   # 32 (a signed distance, -2**31 .. 2**31-1)
    int(b)                  # 16

The analyser's hot path uses the plain-int helpers below (:func:`seq_gt` ...),
which are the same comparisons as Wireshark's ``GT_SEQ``/``LT_SEQ``/``LE_SEQ``:
``(int32)(x - y) > 0`` and so on.
"""

from __future__ import annotations

from typing import Any

MASK = 0xFFFFFFFF
HALF = 0x80000000


def seq_gt(x: int, y: int) -> bool:
    """Wireshark ``GT_SEQ(x, y)``: ``(int32)(x - y) > 0``."""
    return 0 < ((x - y) & MASK) < HALF


def seq_lt(x: int, y: int) -> bool:
    """Wireshark ``LT_SEQ(x, y)``: ``(int32)(y - x) > 0``."""
    return 0 < ((y - x) & MASK) < HALF


def seq_le(x: int, y: int) -> bool:
    """Wireshark ``LE_SEQ(x, y)``: ``(int32)(x - y) <= 0``."""
    return not 0 < ((x - y) & MASK) < HALF


def seq_ge(x: int, y: int) -> bool:
    """Wireshark ``GE_SEQ(x, y)``: ``(int32)(y - x) <= 0``."""
    return not 0 < ((y - x) & MASK) < HALF


def seq_diff(x: int, y: int) -> int:
    """Signed distance ``x - y`` in -2**31 .. 2**31-1."""
    d = (x - y) & MASK
    return d - 0x100000000 if d & HALF else d


class Seq32:
    """A 32-bit sequence number: adding wraps, comparing is by serial-number order.

    Two numbers exactly 2**31 apart are neither less nor greater than each
    other (RFC 1982 leaves that undefined); ``==`` is plain equality.
    """

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value & MASK

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"Seq32({self.value})"

    def __hash__(self) -> int:
        return hash(self.value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Seq32):
            return self.value == other.value
        if isinstance(other, int):
            return self.value == other & MASK
        return NotImplemented

    def __add__(self, n: int) -> Seq32:
        if isinstance(n, Seq32):
            return NotImplemented  # adding two sequence numbers means nothing
        return Seq32(self.value + n)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, Seq32):
            return seq_diff(self.value, other.value)
        if isinstance(other, int):
            return Seq32(self.value - other)
        return NotImplemented

    @staticmethod
    def _v(other: Any) -> int:
        if isinstance(other, Seq32):
            return other.value
        if isinstance(other, int):
            return other & MASK
        raise TypeError(f"cannot compare Seq32 with {type(other).__name__}")

    def __lt__(self, other: Seq32 | int) -> bool:
        return seq_lt(self.value, self._v(other))

    def __le__(self, other: Seq32 | int) -> bool:
        return seq_le(self.value, self._v(other))

    def __gt__(self, other: Seq32 | int) -> bool:
        return seq_gt(self.value, self._v(other))

    def __ge__(self, other: Seq32 | int) -> bool:
        return seq_ge(self.value, self._v(other))
