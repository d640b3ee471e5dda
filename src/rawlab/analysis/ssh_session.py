"""One SSH connection's framing state (with rawlab.analysis.streams): after a side sends
NEWKEYS, everything it sends is encrypted (RFC 4253 7.3), and each run of its bytes is
one encrypted message (as tshark's "Encrypted packet").

    s = SshSession()
    s.pdu_len(direction)(data)      # the framing of that direction (rawlab.decode.ssh)
    views = s.views(direction, pdus)    # one Ssh view per segment's messages
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rawlab.decode.ssh import MSG_NEWKEYS, Ssh, message_len
from rawlab.decode.view import View


class SshSession:
    def __init__(self) -> None:
        self.encrypted = [False, False]

    def pdu_len(self, direction: int) -> Callable[[Any], int]:
        return lambda data: message_len(data, self.encrypted[direction])

    def views(self, direction: int, pdus: list[Any]) -> list[View]:
        """One view for all the messages a segment completes (tshark's one ``ssh`` tree)."""
        from rawlab.analysis.tls_session import merge_frames

        if self.encrypted[direction]:
            v = Ssh(b"".join(p[0] for p in pdus))
            v.banner, v.packets, v.encrypted = None, (), True
        else:
            v = Ssh(b"".join(p[0] for p in pdus))
            if any(p.message_code == MSG_NEWKEYS for p in v.packets):
                self.encrypted[direction] = True
        v.frames = merge_frames(pdus)
        return [v]
