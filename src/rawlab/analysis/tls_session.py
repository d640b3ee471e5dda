"""One TLS connection's state across records (with rawlab.analysis.streams): handshake
messages that span records, which records are encrypted, what the hellos chose, and,
given a key log, the decrypted records and the HTTP/1.x messages inside them.
Handshake records after a side's ChangeCipherSpec (TLS <= 1.2: Finished, alerts) are
``sealed``: encrypted, not read as handshake messages.

    s = TlsSession(keylog=None)
    views = s.views(direction, pdus)      # pdus: whole records (streams.Cutter's output)
    s.client_hello, s.server_hello        # rawlab.decode.tls.Hello, once seen
    s.version, s.cipher                   # what the ServerHello chose

Every call gives one :class:`~rawlab.decode.tls.Tls` view holding all the records
the segment completed (tshark's one ``tls`` tree per frame); with a key log and the
secrets of this connection, the plaintext of each encrypted record is in the view's
``plaintext`` (record offset -> (content type, bytes)) and the HTTP/1.x messages it completes
follow as :class:`~rawlab.decode.http.Http` views.
"""

from __future__ import annotations

from typing import Any

from rawlab.decode.http import Http
from rawlab.decode.tls import (
    CT_ALERT,
    CT_APPLICATION_DATA,
    CT_CHANGE_CIPHER_SPEC,
    CT_HANDSHAKE,
    HS_CLIENT_HELLO,
    HS_SERVER_HELLO,
    Hello,
    Tls,
    handshakes,
    parse_hello,
)
from rawlab.decode.view import View

MAX_HANDSHAKE = 1 << 18  # a handshake message longer than this is given up


def merge_frames(pdus: list[Any]) -> tuple[tuple[int, int], ...]:
    """The (frame, bytes) of several messages, one entry per frame, in order."""
    out: list[list[int]] = []
    for _data, _n, frames in pdus:
        for f, n in frames:
            if out and out[-1][0] == f:
                out[-1][1] += n
            else:
                out.append([f, n])
    return tuple((f, n) for f, n in out)


class TlsSession:
    """TLS state of one connection (module docstring). Direction 0 is the client."""

    def __init__(self, keylog: Any = None) -> None:
        self.keylog = keylog
        self.hs = [b"", b""]  # handshake bytes not yet a whole message, per direction
        self.ccs = [False, False]  # ChangeCipherSpec seen: later handshake records sealed
        self.client_hello: Hello | None = None
        self.server_hello: Hello | None = None
        self.decrypter: Any = None  # rawlab.analysis.tls_decrypt.Decrypter, once keyed
        self.http: list[Any] = [None, None]  # Cutters of the decrypted bytes

    @property
    def version(self) -> int | None:
        sh = self.server_hello
        return sh.selected_version if sh is not None else None

    @property
    def cipher(self) -> int | None:
        sh = self.server_hello
        return sh.ciphers[0] if sh is not None and sh.ciphers else None

    def views(self, direction: int, pdus: list[Any]) -> list[View]:
        data = b"".join(p[0] for p in pdus)
        probe = Tls(data)
        hs = self.hs[direction]
        sealed = []
        for r in probe.records:
            if r.content_type == CT_CHANGE_CIPHER_SPEC:
                self.ccs[direction] = True
            elif r.content_type in (CT_HANDSHAKE, CT_ALERT) and self.ccs[direction] and (
                    self.version != 0x0304):
                sealed.append(r.offset)  # TLS <= 1.2 after ChangeCipherSpec: encrypted
            elif r.content_type == CT_HANDSHAKE:
                hs += r.fragment
        msgs, used = handshakes(hs)
        rest = hs[used:]
        self.hs[direction] = rest if len(rest) <= MAX_HANDSHAKE else b""
        view = Tls(data, handshake=hs[:used])
        view.frames = merge_frames(pdus)
        view.sealed = frozenset(sealed)
        for m in msgs:
            if m.type == HS_CLIENT_HELLO and direction == 0 and self.client_hello is None:
                self.client_hello = parse_hello(m)
            elif m.type == HS_SERVER_HELLO and direction == 1:
                sh = parse_hello(m)
                if sh is not None and not sh.hello_retry:
                    self.server_hello = sh
        view.session_version = self.version
        out: list[View] = [view]
        if self.keylog is not None:
            out += self._decrypt(direction, view)
        return out

    def _decrypt(self, direction: int, view: Tls) -> list[View]:
        """Plaintext of the encrypted records (into ``view.plaintext``) and the HTTP
        messages it completes."""
        if self.decrypter is None:
            from rawlab.analysis.tls_decrypt import Decrypter

            self.decrypter = Decrypter.for_session(self, self.keylog)
            if self.decrypter is None:
                return []
        out: list[View] = []
        plain: dict[int, tuple[int, bytes]] = {}
        for r in view.records:
            if r.content_type == CT_APPLICATION_DATA or r.offset in view.sealed:
                got = self.decrypter.decrypt(direction, r)
                if got is None:
                    continue
                ctype, text = got
                plain[r.offset] = got
                if ctype == CT_APPLICATION_DATA:
                    out += self._http(direction, view.frames[-1][0], text)
        view.plaintext = plain
        return out

    def _http(self, direction: int, frame: int, text: bytes) -> list[View]:
        from rawlab.analysis.streams import Cutter

        cut = self.http[direction]
        if cut is None:
            cut = self.http[direction] = Cutter(Http.pdu_len)
        out: list[View] = []
        for data, n, frames in cut.push(frame, text):
            v = Http(data) if n == len(data) else Http(data, n)
            v.frames = frames
            out.append(v)
        return out
