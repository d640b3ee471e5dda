"""TLS 1.2 and 1.3 record decryption with a key log (the NSS ``SSLKEYLOGFILE`` format
browsers, curl and Python's ``SSLContext.keylog_filename`` write), using the
``cryptography`` package (AES-GCM, ChaCha20-Poly1305; HKDF and the TLS 1.2 PRF).

    keys = KeyLog.parse(text)                   # the file's text (the CLI reads it)
    d = Decrypter.for_session(session, keys)    # a rawlab.analysis.tls_session.TlsSession,
                                                # once both hellos are seen; None without
                                                # secrets or with a cipher suite not here
    d.decrypt(direction, record)                # (content type, plaintext) or None

TLS 1.2 (RFC 5246, 5288, 7905): the master secret of ``CLIENT_RANDOM`` lines; keys
from the PRF (SHA-256, or SHA-384 for the SHA384 suites); records after each side's
ChangeCipherSpec, sequence numbers from 0. TLS 1.3 (RFC 8446 7): the handshake
traffic secrets until that side's Finished, then ``*_TRAFFIC_SECRET_0``; the inner
content type from the end of the plaintext. AEAD suites only (the CBC suites are
reported as not decrypted). A record that fails authentication gives None (and the
direction's sequence stays put: a later record may still decrypt).
"""

from __future__ import annotations

import hmac
import struct
from typing import Any

from rawlab.decode.tls import CT_HANDSHAKE, TlsRecord, handshakes, hkdf_expand_label

# suite -> (AEAD, key length, fixed IV length, hash)
SUITES_12 = {
    0xC02B: ("gcm", 16, 4, "sha256"), 0xC02C: ("gcm", 32, 4, "sha384"),
    0xC02F: ("gcm", 16, 4, "sha256"), 0xC030: ("gcm", 32, 4, "sha384"),
    0x009C: ("gcm", 16, 4, "sha256"), 0x009D: ("gcm", 32, 4, "sha384"),
    0x009E: ("gcm", 16, 4, "sha256"), 0x009F: ("gcm", 32, 4, "sha384"),
    0xCCA8: ("chacha", 32, 12, "sha256"), 0xCCA9: ("chacha", 32, 12, "sha256"),
    0xCCAA: ("chacha", 32, 12, "sha256"),
}
SUITES_13 = {
    0x1301: ("gcm", 16, "sha256"), 0x1302: ("gcm", 32, "sha384"),
    0x1303: ("chacha", 32, "sha256"),
}
HS_FINISHED = 20


class KeyLog:
    """Secrets by label and client random (hex of the 32 bytes)."""

    def __init__(self, secrets: dict[tuple[str, bytes], bytes]) -> None:
        self.secrets = secrets

    @classmethod
    def parse(cls, text: str) -> KeyLog:
        """The lines ``LABEL <client random hex> <secret hex>``; comments, blank and
        malformed lines are skipped."""
        out: dict[tuple[str, bytes], bytes] = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) != 3 or parts[0].startswith("#"):
                continue
            try:
                out[(parts[0], bytes.fromhex(parts[1]))] = bytes.fromhex(parts[2])
            except ValueError:
                continue
        return cls(out)

    def get(self, label: str, client_random: bytes) -> bytes | None:
        return self.secrets.get((label, client_random))

    def __len__(self) -> int:
        return len(self.secrets)


def prf12(secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str) -> bytes:
    """The TLS 1.2 PRF (RFC 5246 5): P_hash(secret, label + seed)."""
    seed = label + seed
    out = b""
    a = seed
    while len(out) < length:
        a = hmac.new(secret, a, hash_name).digest()
        out += hmac.new(secret, a + seed, hash_name).digest()
    return out[:length]


def _aead(kind: str, key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

    return AESGCM(key) if kind == "gcm" else ChaCha20Poly1305(key)


class _Dir:
    """One direction's key, IV and sequence number."""

    __slots__ = ("aead", "iv", "seq")

    def __init__(self, aead: Any, iv: bytes) -> None:
        self.aead = aead
        self.iv = iv
        self.seq = 0


class Decrypter:
    """Decrypts one connection's records (module docstring)."""

    def __init__(self, version: int, kind: str, hash_name: str) -> None:
        self.version = version
        self.kind = kind
        self.hash_name = hash_name
        self.dirs: list[_Dir | None] = [None, None]
        self.app: list[tuple[Any, bytes] | None] = [None, None]  # TLS 1.3: after Finished
        self.failed = 0

    @classmethod
    def for_session(cls, session: Any, keys: KeyLog) -> Decrypter | None:
        ch, sh = session.client_hello, session.server_hello
        if ch is None or sh is None or not sh.ciphers:
            return None
        cr, sr, suite = ch.random, sh.random, sh.ciphers[0]
        if sh.selected_version == 0x0304:
            spec13 = SUITES_13.get(suite)
            if spec13 is None:
                return None
            kind, klen, hname = spec13
            d = cls(0x0304, kind, hname)
            for i, (hs_label, app_label) in enumerate((
                    ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"),
                    ("SERVER_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"))):
                hs, app = keys.get(hs_label, cr), keys.get(app_label, cr)
                if hs is not None:
                    d.dirs[i] = d._keys13(hs, klen)
                if app is not None:
                    k = d._keys13(app, klen)
                    d.app[i] = (k.aead, k.iv)
                    if hs is None:
                        d.dirs[i] = k
            return d if any(d.dirs) else None
        spec = SUITES_12.get(suite)
        master = keys.get("CLIENT_RANDOM", cr)
        if spec is None or master is None:
            return None
        kind, klen, ivlen, hname = spec
        block = prf12(master, b"key expansion", sr + cr, 2 * klen + 2 * ivlen, hname)
        ck, sk = block[:klen], block[klen:2 * klen]
        civ, siv = block[2 * klen:2 * klen + ivlen], block[2 * klen + ivlen:]
        d = cls(sh.selected_version, kind, hname)
        d.dirs = [_Dir(_aead(kind, ck), civ), _Dir(_aead(kind, sk), siv)]
        return d

    def _keys13(self, secret: bytes, klen: int) -> _Dir:
        key = hkdf_expand_label(secret, b"key", b"", klen, self.hash_name)
        iv = hkdf_expand_label(secret, b"iv", b"", 12, self.hash_name)
        return _Dir(_aead(self.kind, key), iv)

    @staticmethod
    def _nonce(iv: bytes, seq: int) -> bytes:
        return (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")

    def decrypt(self, direction: int, r: TlsRecord) -> tuple[int, bytes] | None:
        """(content type, plaintext) of an encrypted record of ``direction``, or None."""
        d = self.dirs[direction]
        if d is None or len(r.fragment) < r.length:
            return None
        from cryptography.exceptions import InvalidTag

        frag = r.fragment
        hdr = struct.pack("!BHH", r.content_type, r.version, r.length)
        try:
            if self.version == 0x0304:
                plain = d.aead.decrypt(self._nonce(d.iv, d.seq), frag, hdr)
                body = plain.rstrip(b"\0")
                ctype, text = (body[-1], body[:-1]) if body else (0, b"")
                d.seq += 1
                if ctype == CT_HANDSHAKE and any(
                        m.type == HS_FINISHED for m in handshakes(text)[0]):
                    nxt = self.app[direction]
                    if nxt is not None:
                        self.dirs[direction] = _Dir(*nxt)
                return ctype, text
            plen = r.length - 16
            if self.kind == "gcm":
                plen -= 8
                nonce, frag = d.iv + frag[:8], frag[8:]
            else:
                nonce = self._nonce(d.iv, d.seq)
            aad = struct.pack("!QBHH", d.seq, r.content_type, r.version, max(plen, 0))
            plain = d.aead.decrypt(nonce, frag, aad)
            d.seq += 1
            return r.content_type, plain
        except (InvalidTag, ValueError):
            self.failed += 1
            return None

