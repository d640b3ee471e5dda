"""Internet checksums (RFC 1071) and the per-packet checksum status.

A checksum is a *status*, never an exception (design principle 5)::

    from rawlab.decode.checksum import inet_checksum, ChecksumStatus, Verdict

    inet_checksum(b"...")                   # -> int, the value to put in the field
    verify_ipv4_header(hdr)                 # -> ChecksumStatus
    verify_l4(proto, src, dst, segment, field_offset)  # TCP/UDP/ICMP over IPv4, TCP/UDP/ICMPv6
                                            # over IPv6 (4- or 16-byte addresses; also
                                            # named verify_l4_v4 / verify_l4_v6)
    known_verdict(hint, tso, complete)      # what is known without summing (or None)

:class:`Verdict` values are the words used in JSON (``checksum_status``):
``good``, ``bad`` (then :attr:`ChecksumStatus.expected` holds the right value),
``partial`` (checksum offload: the kernel said CSUMNOTREADY, or an outgoing
packet was captured before the NIC filled the field: it then holds the folded
pseudo-header sum), ``kernel-verified`` (TP_STATUS_CSUM_VALID) and
``unverified`` (the captured bytes do not cover what the checksum covers).

The sum is computed with one big-integer conversion: for a byte string read as
one big-endian integer N, N mod 0xFFFF equals the one's-complement sum of its
16-bit words (because 2**16 ≡ 1 mod 0xFFFF). That is C speed, no Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rawlab.decode.descent import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP
from rawlab.records import CsumHint

__all__ = [
    "ChecksumStatus",
    "CsumHint",
    "Verdict",
    "inet_checksum",
    "inet_sum",
    "known_verdict",
    "pseudo_header_v4",
    "pseudo_header_v6",
    "verify_ipv4_header",
    "verify_l4",
    "verify_l4_v4",
    "verify_l4_v6",
    "worst",
]

class Verdict(StrEnum):
    """What is known about one checksum (the JSON word is the value)."""

    GOOD = "good"
    BAD = "bad"
    PARTIAL = "partial"
    KERNEL_VERIFIED = "kernel-verified"
    UNVERIFIED = "unverified"


@dataclass(frozen=True, slots=True)
class ChecksumStatus:
    """A verdict, the value found in the packet, and the right value when bad."""

    verdict: Verdict
    value: int | None = None
    expected: int | None = None

    @property
    def ok(self) -> bool:
        """True unless the checksum is known to be wrong."""
        return self.verdict is not Verdict.BAD

    def __str__(self) -> str:
        return self.verdict.value


# Order used to combine several layers into one packet verdict: the first
# one present in a packet wins.
_RANK = {
    Verdict.BAD: 0,
    Verdict.UNVERIFIED: 1,
    Verdict.PARTIAL: 2,
    Verdict.KERNEL_VERIFIED: 3,
    Verdict.GOOD: 4,
}


def worst(statuses: list[ChecksumStatus] | tuple[ChecksumStatus, ...]) -> ChecksumStatus | None:
    """The most worrying status of several (bad < unverified < partial < kernel < good)."""
    if not statuses:
        return None
    return min(statuses, key=lambda s: _RANK[s.verdict])


def inet_sum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """One's-complement sum of 16-bit big-endian words, folded to 16 bits (not inverted).

    Odd lengths are padded with a zero byte. ``initial`` is a sum to add (for
    example a pseudo-header's). Returns 0..0xFFFF; 0xFFFF means "sums to zero".
    """
    n = len(data)
    value = int.from_bytes(data, "big")
    if n & 1:
        value <<= 8
    s = value % 0xFFFF + initial % 0xFFFF
    s = s % 0xFFFF
    if s == 0 and (value or initial):
        return 0xFFFF
    return s


def inet_checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The RFC 1071 checksum of ``data``: the value to store in the field (field zeroed)."""
    return ~inet_sum(data, initial) & 0xFFFF


def pseudo_header_v4(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Folded sum of the IPv4 pseudo-header (src, dst, zero, proto, length)."""
    return inet_sum(bytes(src) + bytes(dst), proto + length)


def pseudo_header_v6(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Folded sum of the IPv6 pseudo-header (src, dst, u32 length, zero, next header)."""
    return inet_sum(bytes(src) + bytes(dst), (length >> 16) + (length & 0xFFFF) + proto)


def _field(data: bytes | bytearray | memoryview, off: int) -> int:
    return (data[off] << 8) | data[off + 1]


def _with_zero_field(data: bytes | bytearray | memoryview, off: int) -> bytes:
    b = bytes(data)
    return b[:off] + b"\x00\x00" + b[off + 2 :]


def verify_ipv4_header(header: bytes | bytearray | memoryview) -> ChecksumStatus:
    """Check an IPv4 header (exactly IHL*4 bytes, or fewer when truncated)."""
    if len(header) < 20 or len(header) < (header[0] & 0x0F) * 4:
        value = _field(header, 10) if len(header) >= 12 else None
        return ChecksumStatus(Verdict.UNVERIFIED, value)
    value = _field(header, 10)
    if inet_sum(header) == 0xFFFF:
        return ChecksumStatus(Verdict.GOOD, value)
    return ChecksumStatus(Verdict.BAD, value, inet_checksum(_with_zero_field(header, 10)))


_NOT_READY = int(CsumHint.NOT_READY)  # ints: IntFlag arithmetic builds members
_VALID = int(CsumHint.VALID)


def known_verdict(hint: int, tso: bool, complete: bool) -> Verdict | None:
    """A transport checksum's verdict when it is known without summing: the kernel's
    word (``hint``: partial, kernel-verified), a length field left to the NIC (``tso``:
    the checksum is not filled either: partial), too few bytes captured (unverified).
    None: the sum decides."""
    if hint:
        if hint & _NOT_READY:
            return Verdict.PARTIAL
        if hint & _VALID:
            return Verdict.KERNEL_VERIFIED
    if tso:
        return Verdict.PARTIAL
    if not complete:
        return Verdict.UNVERIFIED
    return None


def _verify_l4(
    pseudo: int,
    proto: int,
    segment: bytes | bytearray | memoryview,
    field_offset: int,
    value: int,
) -> ChecksumStatus:
    if proto == IPPROTO_UDP and value == 0:
        # UDP over IPv4: zero means "no checksum" (RFC 768). Nothing to verify.
        return ChecksumStatus(Verdict.UNVERIFIED, value)
    total = inet_sum(segment, pseudo)
    if total == 0xFFFF:
        return ChecksumStatus(Verdict.GOOD, value)
    # Offload: the stack left the folded pseudo-header sum in the field for the
    # NIC to finish (what an outgoing packet looks like before transmission).
    if value in (pseudo, ~pseudo & 0xFFFF):
        return ChecksumStatus(Verdict.PARTIAL, value)
    expected = inet_checksum(_with_zero_field(segment, field_offset), pseudo)
    if proto == IPPROTO_UDP and expected == 0:
        expected = 0xFFFF
    return ChecksumStatus(Verdict.BAD, value, expected)


def verify_l4(
    proto: int,
    src: bytes,
    dst: bytes,
    segment: bytes | bytearray | memoryview,
    field_offset: int,
    *,
    complete: bool = True,
    hint: int = CsumHint.NONE,
    tso: bool = False,
) -> ChecksumStatus:
    """TCP/UDP (pseudo-header) or ICMP (none) over IPv4, TCP/UDP/ICMPv6 over IPv6 (all
    with the pseudo-header): the family is the addresses' length (4 or 16 bytes).

    ``segment`` is the transport header plus payload; ``complete`` is False when
    the capture holds fewer bytes than the IP length says (→ unverified); ``tso``
    when the IP length is 0 (→ partial); see :func:`known_verdict`.
    """
    value = _field(segment, field_offset) if len(segment) >= field_offset + 2 else None
    v4 = len(src) == 4
    if v4 and proto == IPPROTO_ICMP:
        hint = CsumHint.NONE  # the kernel's bits concern TCP/UDP; ICMP is always in software
    known = known_verdict(hint, tso, complete and value is not None)
    if known is not None:
        return ChecksumStatus(known, value)
    if v4:
        pseudo = 0 if proto == IPPROTO_ICMP else pseudo_header_v4(src, dst, proto, len(segment))
        return _verify_l4(pseudo, proto, segment, field_offset, value)  # type: ignore[arg-type]
    pseudo = pseudo_header_v6(src, dst, proto, len(segment))
    status = _verify_l4(pseudo, IPPROTO_TCP if proto == IPPROTO_UDP else proto, segment,
                        field_offset, value)  # type: ignore[arg-type]
    # Over IPv6 a zero UDP checksum is not "absent" (RFC 8200 §8.1): it is bad,
    # unless a tunnel allows it (RFC 6935); report it as bad with the right value.
    if proto == IPPROTO_UDP and status.verdict is Verdict.BAD and status.expected == 0:
        return ChecksumStatus(Verdict.BAD, status.value, 0xFFFF)
    return status


#: the names by family (one function: the addresses' length says which)
verify_l4_v4 = verify_l4
verify_l4_v6 = verify_l4
