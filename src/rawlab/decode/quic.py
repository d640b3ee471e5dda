"""QUIC (RFC 9000, 9001; v2, RFC 9369): long and short headers of every packet a UDP
datagram holds, and the client's Initial packets decrypted with the public Initial
keys (RFC 9001 5.2) to show the TLS ClientHello inside.

    q = Quic(udp_payload)
    q.packets          # tuple[QuicPacket, ...]: coalesced packets in datagram order
    p = q.packets[0]
    p.long, p.type, p.version, p.dcid, p.scid, p.token, p.length, p.pn_offset
    p.supported_versions                     # a Version Negotiation packet's list
    q.initial(p)       # InitialPlain (packet number, frames) of a client Initial, or None
    q.crypto()         # the CRYPTO bytes of the datagram's client Initials, from offset 0
    q.client_hello     # rawlab.decode.tls.Hello of that ClientHello, or None

Packet types are named as in v1 (0 Initial, 1 0-RTT, 2 Handshake, 3 Retry) for both
versions (v2 encodes them differently on the wire: ``type`` is already mapped). A
short header's destination connection ID has no length on the wire: ``dcid`` is
empty there and the rest is protected. Decryption is lazy (only when asked: the
line view of an Initial, ``-v``, ``--json``) and needs the ``cryptography``
package; a packet it cannot open (a server's Initial: its keys come from the
client's first DCID; a damaged packet) stays protected, never an error. Initial
secrets: the version's salt and the packet's DCID (the client chose it).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, ClassVar, NamedTuple

from rawlab.decode.tls import Handshake, Hello, handshakes, hkdf_expand_label, parse_hello
from rawlab.decode.view import AppView, Buffer, as_view

PORT_QUIC = 443
VERSION_1 = 0x00000001
VERSION_2 = 0x6B3343CF
#: Initial salts (RFC 9001 5.2, RFC 9369 3.3.1, draft-29)
SALTS = {
    VERSION_1: bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
    VERSION_2: bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
    0xFF00001D: bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899"),
}
T_INITIAL, T_0RTT, T_HANDSHAKE, T_RETRY = 0, 1, 2, 3
TYPE_NAMES = {0: "Initial", 1: "0-RTT", 2: "Handshake", 3: "Retry"}
#: v2's wire bits -> v1's type numbers (RFC 9369 3.2)
V2_TYPES = {0b01: T_INITIAL, 0b10: T_0RTT, 0b11: T_HANDSHAKE, 0b00: T_RETRY}
FRAME_NAMES = {0x00: "PADDING", 0x01: "PING", 0x02: "ACK", 0x03: "ACK", 0x06: "CRYPTO",
               0x1C: "CONNECTION_CLOSE", 0x1D: "CONNECTION_CLOSE"}
MAX_PACKETS = 16
MAX_CID = 20


def varint(b: bytes | memoryview, o: int) -> tuple[int, int]:
    """(value, offset after) of a variable-length integer (RFC 9000 16); (-1, len) when
    cut short."""
    if o >= len(b):
        return -1, len(b)
    n = 1 << (b[o] >> 6)
    if o + n > len(b):
        return -1, len(b)
    v = b[o] & 0x3F
    for i in range(1, n):
        v = v << 8 | b[o + i]
    return v, o + n


class QuicPacket(NamedTuple):
    offset: int  # in the datagram
    long: bool
    first: int  # the first byte as sent (protected bits included)
    version: int  # 0: Version Negotiation; short header: 0 too
    type: int  # T_INITIAL ... T_RETRY (long headers), -1 short header or VN
    dcid: bytes
    scid: bytes
    token: bytes  # Initial's token, Retry's retry token
    length: int  # the Length field (packet number + payload), -1 where there is none
    pn_offset: int  # in the datagram; -1 where there is none
    end: int  # where this packet ends in the datagram
    supported_versions: tuple[int, ...]


class QuicFrame(NamedTuple):
    type: int
    offset: int  # CRYPTO: the stream offset; else 0
    data: bytes  # CRYPTO's data; CONNECTION_CLOSE's reason; else b""
    value: tuple[int, ...]  # ACK: (largest, delay, ranges); CONNECTION_CLOSE: (code, ...)


class InitialPlain(NamedTuple):
    packet_number: int
    frames: tuple[QuicFrame, ...]
    malformed: bool


def parse_packets(mv: memoryview) -> tuple[list[QuicPacket], int]:
    """The packets of a datagram; status 0 good, 1 cut short, 2 malformed."""
    out: list[QuicPacket] = []
    o, n = 0, len(mv)
    while o < n and len(out) < MAX_PACKETS:
        b0 = mv[o]
        if not b0 & 0x80:  # short header: the rest of the datagram
            out.append(QuicPacket(o, False, b0, 0, -1, b"", b"", b"", -1, -1, n, ()))
            return out, 0
        if o + 6 > n:
            return out, 1
        version = int.from_bytes(mv[o + 1 : o + 5], "big")
        p = o + 5
        dl = mv[p]
        dcid = bytes(mv[p + 1 : p + 1 + dl])
        p += 1 + dl
        if p >= n:
            return out, 1
        sl = mv[p]
        scid = bytes(mv[p + 1 : p + 1 + sl])
        p += 1 + sl
        if p > n:
            return out, 1
        if version == 0:  # Version Negotiation
            vers = tuple(int.from_bytes(mv[i : i + 4], "big") for i in range(p, n - 3, 4))
            out.append(QuicPacket(o, True, b0, 0, -1, dcid, scid, b"", -1, -1, n, vers))
            return out, 0
        if dl > MAX_CID or sl > MAX_CID:
            return out, 2
        bits = b0 >> 4 & 3
        ptype = V2_TYPES[bits] if version == VERSION_2 else bits
        token = b""
        if ptype == T_RETRY:
            out.append(QuicPacket(o, True, b0, version, ptype, dcid, scid, bytes(mv[p : n - 16]),
                                  -1, -1, n, ()))
            return out, 0
        if ptype == T_INITIAL:
            tl, p = varint(mv, p)
            if tl < 0:
                return out, 1
            token = bytes(mv[p : p + tl])
            p += tl
        length, p = varint(mv, p)
        if length < 0:
            return out, 1
        end = p + length
        out.append(QuicPacket(o, True, b0, version, ptype, dcid, scid, token, length, p,
                              min(end, n), ()))
        if end > n:
            return out, 1
        o = end
    return out, 0


def initial_keys(version: int, dcid: bytes, client: bool = True) -> tuple[bytes, bytes, bytes]:
    """(key, iv, hp) of the Initial packets one side sends (RFC 9001 5.2; v2 labels)."""
    salt = SALTS.get(version, SALTS[VERSION_1])
    initial = hmac.new(salt, dcid, hashlib.sha256).digest()
    secret = hkdf_expand_label(initial, b"client in" if client else b"server in", b"", 32,
                               "sha256")
    pre = b"quicv2 " if version == VERSION_2 else b"quic "
    return (hkdf_expand_label(secret, pre + b"key", b"", 16, "sha256"),
            hkdf_expand_label(secret, pre + b"iv", b"", 12, "sha256"),
            hkdf_expand_label(secret, pre + b"hp", b"", 16, "sha256"))


def open_initial(dgram: bytes, p: QuicPacket, keys: tuple[bytes, bytes, bytes]
                 ) -> tuple[int, bytes] | None:
    """(packet number, plaintext) of a long-header packet protected with ``keys``, or
    None when it does not authenticate (another key, damaged, cut short)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key, iv, hp = keys
    po = p.pn_offset
    if p.end - po < 20 or p.end > len(dgram):
        return None
    sample = dgram[po + 4 : po + 20]
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    first = p.first ^ (mask[0] & 0x0F)
    pnl = (first & 3) + 1
    pn_bytes = bytes(dgram[po + i] ^ mask[1 + i] for i in range(pnl))
    pn = int.from_bytes(pn_bytes, "big")
    header = bytes([first]) + dgram[p.offset + 1 : po] + pn_bytes
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    try:
        return pn, AESGCM(key).decrypt(nonce, dgram[po + pnl : p.end], header)
    except (InvalidTag, ValueError):
        return None


def parse_frames(plain: bytes) -> tuple[tuple[QuicFrame, ...], bool]:
    """The frames an Initial packet may carry (PADDING, PING, ACK, CRYPTO,
    CONNECTION_CLOSE); True when one is cut short or of a type not allowed there."""
    out: list[QuicFrame] = []
    o, n = 0, len(plain)
    while o < n:
        t = plain[o]
        if t == 0x00:  # PADDING: a run of zeros is one frame
            e = o
            while e < n and plain[e] == 0:
                e += 1
            out.append(QuicFrame(0, 0, b"", (e - o,)))
            o = e
            continue
        o += 1
        if t == 0x01:
            out.append(QuicFrame(1, 0, b"", ()))
        elif t in (0x02, 0x03):
            largest, o = varint(plain, o)
            delay, o = varint(plain, o)
            count, o = varint(plain, o)
            first, o = varint(plain, o)
            for _ in range(max(count, 0)):
                _gap, o = varint(plain, o)
                _rng, o = varint(plain, o)
            if t == 0x03:
                for _ in range(3):
                    _v, o = varint(plain, o)
            if min(largest, delay, count, first) < 0:
                return tuple(out), True
            out.append(QuicFrame(t, 0, b"", (largest, delay, count, first)))
        elif t == 0x06:
            off, o = varint(plain, o)
            ln, o = varint(plain, o)
            if off < 0 or ln < 0 or o + ln > n:
                return tuple(out), True
            out.append(QuicFrame(6, off, plain[o : o + ln], ()))
            o += ln
        elif t in (0x1C, 0x1D):
            code, o = varint(plain, o)
            ftype = 0
            if t == 0x1C:
                ftype, o = varint(plain, o)
            rl, o = varint(plain, o)
            if min(code, ftype, rl) < 0 or o + rl > n:
                return tuple(out), True
            out.append(QuicFrame(t, 0, plain[o : o + rl], (code, ftype)))
            o += rl
        else:
            return tuple(out), True
    return tuple(out), False


def crypto_stream(frames: list[QuicFrame]) -> bytes:
    """The CRYPTO frames' data in offset order, contiguous from offset 0 (frames may come
    out of order, and overlap)."""
    out = b""
    for f in sorted((f for f in frames if f.type == 6), key=lambda f: f.offset):
        if f.offset > len(out):
            break
        out += f.data[len(out) - f.offset :]
    return out


class Quic(AppView):
    """The QUIC packets of one UDP datagram (module docstring)."""

    __slots__ = ("_initials", "packets")
    name: ClassVar[str] = "quic"

    def __init__(self, buf: Buffer) -> None:
        self.buf = mv = as_view(buf)
        pkts, status = parse_packets(mv)
        self.packets = tuple(pkts)
        self.truncated = status == 1
        self.malformed = status == 2 or not pkts
        self._initials: dict[int, InitialPlain | None] | None = None
        self.frames = ()


    def initial(self, p: QuicPacket) -> InitialPlain | None:
        """A client Initial's packet number and frames (decrypted), else None."""
        if self._initials is None:
            self._initials = {}
            data = bytes(self.buf)
            for q in self.packets:
                if q.long and q.type == T_INITIAL and q.version in SALTS:
                    try:
                        got = open_initial(data, q, initial_keys(q.version, q.dcid))
                    except ImportError:  # pragma: no cover - cryptography is a dependency
                        got = None
                    if got is None:
                        self._initials[q.offset] = None
                        continue
                    frames, bad = parse_frames(got[1])
                    self._initials[q.offset] = InitialPlain(got[0], frames, bad)
        return self._initials.get(p.offset)

    def crypto(self) -> bytes:
        frames: list[QuicFrame] = []
        for p in self.packets:
            ini = self.initial(p)
            if ini is not None:
                frames += ini.frames
        return crypto_stream(frames)

    @property
    def crypto_handshakes(self) -> tuple[Handshake, ...]:
        return tuple(handshakes(self.crypto())[0])

    @property
    def client_hello(self) -> Hello | None:
        for m in self.crypto_handshakes:
            h = parse_hello(m)
            if h is not None and h.client:
                return h
        return None

    def fields(self) -> dict[str, Any]:
        return {"packets": self.packets}
