"""TLS (RFC 5246, 8446): records, handshake messages, the hellos' extensions,
certificates; JA3/JA3S and JA4 fingerprints of the hellos.

    t = Tls(records_bytes)                 # one or more whole records (a TCP stream's,
                                           # reassembled by rawlab.analysis.streams)
    t.records          # tuple[TlsRecord, ...]: (offset, content_type, version, length,
                       #   fragment bytes)
    t.handshakes       # tuple[Handshake, ...] of the messages these records complete
    h = t.handshakes[0]
    h.type, h.length, h.body                  # 1 ClientHello, 2 ServerHello, 11 Certificate...
    hello = parse_hello(h)                    # Hello (ClientHello or ServerHello) or None
    hello.version, hello.random, hello.session_id, hello.ciphers, hello.compressions,
    hello.extensions                          # ((type, data), ...) in wire order
    hello.sni, hello.alpn, hello.groups, hello.point_formats, hello.sig_algs,
    hello.supported_versions, hello.selected_version
    parse_certificates(h, tls13)              # tuple of DER certificates
    ja3(hello) / ja3s(hello) -> (text, md5 hex);  ja4(hello, "t") -> (ja4, ja4_r)

Records whose content type is unknown, or whose version is not 3.x, mark the view
malformed (their bytes are kept); a record cut short marks it truncated. A
handshake message that continues into a later record is not in ``handshakes``
here: the stream reassembler hands the message's bytes over once complete
(``Tls(buf, handshake=...)``). Encrypted records (application data, TLS 1.3's
encrypted handshake) are records with their bytes; a key log decrypts them
(rawlab.analysis.tls_keylog).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any, ClassVar, NamedTuple

from construct import Bytes, Int8ub, Int16ub, Int24ub, Struct, this

from rawlab.decode.view import AppView, Buffer, as_view

PORT_HTTPS = 443
#: TCP ports Wireshark gives to TLS by default (the common ones)
TLS_PORTS = (443, 465, 636, 853, 993, 995, 5061, 8883)
RECORD_HLEN = 5
MAX_RECORD = 2**14 + 2048  # RFC 5246 6.2.3: TLSCiphertext.length limit

CT_CHANGE_CIPHER_SPEC, CT_ALERT, CT_HANDSHAKE, CT_APPLICATION_DATA, CT_HEARTBEAT = (
    20, 21, 22, 23, 24)
CONTENT_TYPES = {20: "Change Cipher Spec", 21: "Alert", 22: "Handshake",
                 23: "Application Data", 24: "Heartbeat"}
HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_ENCRYPTED_EXTENSIONS, HS_CERTIFICATE = 1, 2, 8, 11
HANDSHAKE_TYPES = {0: "Hello Request", 1: "Client Hello", 2: "Server Hello",
                   4: "New Session Ticket", 5: "End Of Early Data", 8: "Encrypted Extensions",
                   11: "Certificate", 12: "Server Key Exchange", 13: "Certificate Request",
                   14: "Server Hello Done", 15: "Certificate Verify", 16: "Client Key Exchange",
                   20: "Finished", 24: "Key Update", 254: "Message Hash"}
VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
            0x0304: "TLS 1.3"}
EXT_SERVER_NAME, EXT_SUPPORTED_GROUPS, EXT_EC_POINT_FORMATS, EXT_SIG_ALGS, EXT_ALPN = (
    0, 10, 11, 13, 16)
EXT_SUPPORTED_VERSIONS, EXT_KEY_SHARE = 43, 51
EXTENSION_NAMES = {0: "server_name", 1: "max_fragment_length", 5: "status_request",
                   10: "supported_groups", 11: "ec_point_formats", 13: "signature_algorithms",
                   14: "use_srtp", 15: "heartbeat", 16: "application_layer_protocol_negotiation",
                   18: "signed_certificate_timestamp", 21: "padding", 22: "encrypt_then_mac",
                   23: "extended_master_secret", 27: "compress_certificate",
                   28: "record_size_limit", 35: "session_ticket", 41: "pre_shared_key",
                   42: "early_data", 43: "supported_versions", 44: "cookie",
                   45: "psk_key_exchange_modes", 49: "post_handshake_auth",
                   50: "signature_algorithms_cert", 51: "key_share",
                   57: "quic_transport_parameters",
                   17513: "application_settings", 17613: "application_settings",
                   65037: "encrypted_client_hello", 65281: "renegotiation_info"}
GROUP_NAMES = {23: "secp256r1", 24: "secp384r1", 25: "secp521r1", 29: "x25519", 30: "x448",
               256: "ffdhe2048", 257: "ffdhe3072", 4588: "X25519MLKEM768"}
#: the cipher suites most captures hold (IANA names); others print as hex
CIPHER_NAMES = {
    0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA", 0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
}
ALERT_DESCRIPTIONS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
                      40: "handshake_failure", 42: "bad_certificate", 46: "certificate_unknown",
                      48: "unknown_ca", 50: "decode_error", 51: "decrypt_error",
                      70: "protocol_version", 80: "internal_error", 86: "inappropriate_fallback",
                      90: "user_canceled", 109: "missing_extension",
                      112: "unrecognized_name", 116: "certificate_required",
                      120: "no_application_protocol"}
#: ServerHello.random of a HelloRetryRequest (RFC 8446 4.1.3)
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

TLS_RECORD = Struct("content_type" / Int8ub, "version" / Int16ub, "length" / Int16ub,
                    "fragment" / Bytes(this.length))
TLS_HANDSHAKE = Struct("type" / Int8ub, "length" / Int24ub, "body" / Bytes(this.length))
_REC = struct.Struct("!BHH")
_H = struct.Struct("!H")


def is_grease(v: int) -> bool:
    """RFC 8701 GREASE values: 0x?a?a with both bytes equal."""
    return v & 0x0F0F == 0x0A0A and v >> 8 == v & 0xFF


class TlsRecord(NamedTuple):
    offset: int  # in the view's buffer
    content_type: int
    version: int
    length: int
    fragment: bytes  # as captured (shorter than `length` when truncated)


class Handshake(NamedTuple):
    type: int
    length: int
    body: bytes


def record_len(data: memoryview | bytes) -> int:
    """Bytes of the record at the start of ``data`` (header included), 0 while its header
    is incomplete, -1 when these bytes cannot start a record."""
    if len(data) < RECORD_HLEN:
        return 0 if not len(data) or data[0] in CONTENT_TYPES else -1
    ct, ver, ln = _REC.unpack_from(data)
    if ct not in CONTENT_TYPES or ver >> 8 != 3 or ln > MAX_RECORD:
        return -1
    return RECORD_HLEN + ln


def handshakes(data: bytes) -> tuple[list[Handshake], int]:
    """The whole handshake messages at the start of ``data`` and how many bytes they use."""
    out = []
    o = 0
    while o + 4 <= len(data):
        ln = int.from_bytes(data[o + 1 : o + 4], "big")
        if o + 4 + ln > len(data):
            break
        out.append(Handshake(data[o], ln, data[o + 4 : o + 4 + ln]))
        o += 4 + ln
    return out, o


class Tls(AppView):
    """Whole TLS records (module docstring); ``handshake`` passes the bytes of handshake
    messages the stream reassembler collected across records."""

    #: the first bytes a record may start with (its content types): descent.port_names
    FIRST_BYTES: ClassVar[bytes] = bytes(1 if b in CONTENT_TYPES else 0 for b in range(256))
    #: tshark puts an (empty) TLS tree in the frame where a record begins that a later
    #: segment completes: ``read --stats`` counts those frames too, as ``tshark -z io,phs``
    TREE_ON_START: ClassVar[bool] = True

    __slots__ = ("_handshakes", "_hs_bytes", "plaintext", "records", "sealed", "session_version")
    name: ClassVar[str] = "tls"

    def __init__(self, buf: Buffer, handshake: bytes | None = None) -> None:
        self.buf = mv = as_view(buf)
        self.truncated = self.malformed = False
        recs: list[TlsRecord] = []
        o, n = 0, len(mv)
        while o < n:
            if n - o < RECORD_HLEN:
                self.truncated = True
                break
            ct, ver, ln = _REC.unpack_from(mv, o)
            if ct not in CONTENT_TYPES or ver >> 8 != 3:
                self.malformed = True
                break
            recs.append(TlsRecord(o, ct, ver, ln, bytes(mv[o + 5 : o + 5 + ln])))
            if o + 5 + ln > n:
                self.truncated = True
            o += 5 + ln
        self.records = tuple(recs)
        self._hs_bytes = handshake
        self._handshakes: tuple[Handshake, ...] | None = None
        #: ((frame, bytes), ...) of the TCP segments the records came in
        self.frames: tuple[tuple[int, int], ...] = ()
        #: offsets of handshake and alert records sent after ChangeCipherSpec (encrypted)
        self.sealed: frozenset[int] = frozenset()
        #: record offset -> (inner content type, decrypted bytes): a key log's work
        #: (rawlab.analysis.tls_session)
        self.plaintext: dict[int, tuple[int, bytes]] = {}
        #: the version the connection's ServerHello chose, when the stream saw it
        self.session_version: int | None = None

    @staticmethod
    def pdu_len(data: memoryview | bytes) -> int:
        """:func:`record_len`: the TCP stream reassembler's framing."""
        return record_len(data)


    @property
    def handshakes(self) -> tuple[Handshake, ...]:
        if self._handshakes is None:
            data = self._hs_bytes
            if data is None:
                data = b"".join(r.fragment for r in self.records
                                if r.content_type == CT_HANDSHAKE)
            self._handshakes = tuple(handshakes(data)[0])
        return self._handshakes

    def fields(self) -> dict[str, Any]:
        return {"records": [r[:4] for r in self.records], "handshakes": [
            (h.type, h.length) for h in self.handshakes]}


# ---- the hellos ------------------------------------------------------------------------------

class Hello(NamedTuple):
    """A ClientHello or ServerHello (``client`` says which); lists in wire order."""

    client: bool
    version: int  # legacy_version
    random: bytes
    session_id: bytes
    ciphers: tuple[int, ...]  # the server's choice alone for a ServerHello
    compressions: tuple[int, ...]
    extensions: tuple[tuple[int, bytes], ...]
    malformed: bool

    def ext(self, t: int) -> bytes | None:
        for k, v in self.extensions:
            if k == t:
                return v
        return None

    @property
    def sni(self) -> bytes | None:
        """The first host_name of the server_name extension."""
        d = self.ext(EXT_SERVER_NAME)
        if d is None or len(d) < 5:
            return None
        o = 2
        while o + 3 <= len(d):
            kind, ln = d[o], int.from_bytes(d[o + 1 : o + 3], "big")
            if kind == 0:
                return d[o + 3 : o + 3 + ln]
            o += 3 + ln
        return None

    @property
    def alpn(self) -> tuple[bytes, ...]:
        return alpn_protocols(self.ext(EXT_ALPN))

    def _u16s(self, t: int, head: int = 2) -> tuple[int, ...]:
        d = self.ext(t)
        if d is None or len(d) < head:
            return ()
        body = d[head:]
        return tuple(int.from_bytes(body[i : i + 2], "big") for i in range(0, len(body) - 1, 2))

    @property
    def groups(self) -> tuple[int, ...]:
        return self._u16s(EXT_SUPPORTED_GROUPS)

    @property
    def sig_algs(self) -> tuple[int, ...]:
        return self._u16s(EXT_SIG_ALGS)

    @property
    def point_formats(self) -> tuple[int, ...]:
        d = self.ext(EXT_EC_POINT_FORMATS)
        return tuple(d[1 : 1 + d[0]]) if d else ()

    @property
    def supported_versions(self) -> tuple[int, ...]:
        """ClientHello: the offered versions; ServerHello: the one chosen (one item)."""
        if not self.client:
            d = self.ext(EXT_SUPPORTED_VERSIONS)
            return (int.from_bytes(d[:2], "big"),) if d and len(d) >= 2 else ()
        return self._u16s(EXT_SUPPORTED_VERSIONS, 1)

    @property
    def selected_version(self) -> int:
        """The version a ServerHello chose (supported_versions, else legacy_version)."""
        sv = self.supported_versions
        return sv[0] if sv and not self.client else self.version

    @property
    def hello_retry(self) -> bool:
        return not self.client and self.random == HRR_RANDOM


def parse_hello(h: Handshake) -> Hello | None:
    """A ClientHello or ServerHello message's fields (None for other messages)."""
    if h.type not in (HS_CLIENT_HELLO, HS_SERVER_HELLO):
        return None
    b = h.body
    client = h.type == HS_CLIENT_HELLO
    bad = False
    if len(b) < 35:
        return Hello(client, _H.unpack_from(b)[0] if len(b) >= 2 else 0, b[2:34], b"", (), (),
                     (), True)
    version, random = _H.unpack_from(b)[0], b[2:34]
    o = 34
    sl = b[o]
    sid = b[o + 1 : o + 1 + sl]
    o += 1 + sl
    if client:
        cl = int.from_bytes(b[o : o + 2], "big")
        raw = b[o + 2 : o + 2 + cl]
        ciphers = tuple(int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw) - 1, 2))
        bad |= cl % 2 == 1 or len(raw) < cl
        o += 2 + cl
        ml = b[o] if o < len(b) else 0
        comps = tuple(b[o + 1 : o + 1 + ml])
        o += 1 + ml
    else:
        ciphers = (int.from_bytes(b[o : o + 2], "big"),) if o + 2 <= len(b) else ()
        comps = tuple(b[o + 2 : o + 3])
        o += 3
    exts: tuple[tuple[int, bytes], ...] = ()
    if o + 2 <= len(b):
        exts, ebad = parse_extensions(b, o)
        bad |= ebad
    elif o > len(b):
        bad = True
    return Hello(client, version, random, sid, ciphers, comps, exts, bad)


def parse_extensions(b: bytes, o: int) -> tuple[tuple[tuple[int, bytes], ...], bool]:
    """The extensions block at ``o`` (a 2-byte length, then type-length-value items) and
    True when its lengths do not add up."""
    el = int.from_bytes(b[o : o + 2], "big")
    end = min(o + 2 + el, len(b))
    bad = o + 2 + el > len(b)
    o += 2
    exts = []
    while o + 4 <= end:
        t, ln = int.from_bytes(b[o : o + 2], "big"), int.from_bytes(b[o + 2 : o + 4], "big")
        exts.append((t, b[o + 4 : o + 4 + ln]))
        bad |= o + 4 + ln > end
        o += 4 + ln
    return tuple(exts), bad or o != end


def alpn_protocols(d: bytes | None) -> tuple[bytes, ...]:
    """The protocol names of an ALPN extension's value."""
    if d is None or len(d) < 2:
        return ()
    out = []
    o = 2
    while o < len(d):
        ln = d[o]
        out.append(d[o + 1 : o + 1 + ln])
        o += 1 + ln
    return tuple(out)


def parse_certificates(h: Handshake, tls13: bool) -> tuple[bytes, ...]:
    """The DER certificates of a Certificate message (TLS 1.3: a request context first and
    extensions after each certificate)."""
    b = h.body
    o = 0
    if tls13:
        if not b:
            return ()
        o = 1 + b[0]
    if o + 3 > len(b):
        return ()
    end = min(o + 3 + int.from_bytes(b[o : o + 3], "big"), len(b))
    o += 3
    out = []
    while o + 3 <= end:
        ln = int.from_bytes(b[o : o + 3], "big")
        out.append(b[o + 3 : o + 3 + ln])
        o += 3 + ln
        if tls13 and o + 2 <= end:
            o += 2 + int.from_bytes(b[o : o + 2], "big")
    return tuple(out)


# ---- fingerprints ----------------------------------------------------------------------------

def _dec(vals: tuple[int, ...]) -> str:
    return "-".join(str(v) for v in vals if not is_grease(v))


def ja3(h: Hello) -> tuple[str, str]:
    """JA3 (Salesforce): ``version,ciphers,extensions,groups,point formats`` in decimal,
    GREASE left out, and its MD5."""
    text = ",".join((str(h.version), _dec(h.ciphers), _dec(tuple(t for t, _ in h.extensions)),
                     _dec(h.groups), _dec(h.point_formats)))
    return text, hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def ja3s(h: Hello) -> tuple[str, str]:
    """JA3S: ``version,cipher,extensions`` of a ServerHello, and its MD5."""
    text = ",".join((str(h.version), _dec(h.ciphers), _dec(tuple(t for t, _ in h.extensions))))
    return text, hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                0x0002: "s2", 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "000000000000"


def ja4(h: Hello, transport: str = "t") -> tuple[str, str, str]:
    """JA4 (FoxIO, JA4.md) of a ClientHello: (JA4, JA4_r, JA4_o); ``transport`` is ``t``
    (TCP), ``q`` (QUIC) or ``d`` (DTLS)."""
    sv = [v for v in h.supported_versions if not is_grease(v)]
    version = JA4_VERSIONS.get(max(sv) if sv else h.version, "00")
    exts = [t for t, _ in h.extensions if not is_grease(t)]
    ciphers = [c for c in h.ciphers if not is_grease(c)]
    alpn = h.alpn
    if alpn and alpn[0]:
        first = alpn[0]
        a, z = chr(first[0]), chr(first[-1])
        if not (a.isascii() and a.isalnum() and z.isascii() and z.isalnum()):
            hx = first.hex()
            a, z = hx[0], hx[-1]
        alpn_s = a + z
    else:
        alpn_s = "00"
    head = (f"{transport}{version}{'d' if h.ext(EXT_SERVER_NAME) is not None else 'i'}"
            f"{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}{alpn_s}")
    sigs = ",".join(f"{s:04x}" for s in h.sig_algs if not is_grease(s))

    def part_c(ext_list: list[int]) -> str:
        text = ",".join(f"{t:04x}" for t in ext_list)
        return f"{text}_{sigs}" if sigs and text else text

    c_sorted = ",".join(f"{c:04x}" for c in sorted(ciphers))
    e_sorted = part_c(sorted(t for t in exts if t not in (EXT_SERVER_NAME, EXT_ALPN)))
    c_orig = ",".join(f"{c:04x}" for c in ciphers)
    e_orig = part_c(exts)
    return (f"{head}_{_sha12(c_sorted)}_{_sha12(e_sorted)}",
            f"{head}_{c_sorted}_{e_sorted}",
            f"{head}_{_sha12(c_orig)}_{_sha12(e_orig)}")


# ---- the TLS 1.3 key schedule's one step QUIC and key-log decryption share -------------------

def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int,
                      hash_name: str) -> bytes:
    """RFC 8446 7.1 HKDF-Expand-Label (HMAC with ``hash_name``: "sha256", "sha384")."""
    full = b"tls13 " + label
    info = struct.pack("!H", length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    out = b""
    block = b""
    i = 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), hash_name).digest()
        out += block
        i += 1
    return out[:length]
