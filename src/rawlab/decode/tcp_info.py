"""``struct tcp_info`` (include/uapi/linux/tcp.h), as TCP_INFO and INET_DIAG_INFO return it.

    info = TcpInfo(payload)          # payload: the bytes the kernel returned
    info.length                      # how many it returned (104 ... 280)
    info.snd_wscale, info.rcv_wscale # the two nibbles of byte 6, done right
    info.rtt                         # µs; None when the kernel's struct is too short
    info.fields()                    # {name: int} of every field the kernel sent

The struct has only grown, always at its end, so an older kernel simply
returns fewer bytes: a field is decoded only when the kernel's bytes cover it
whole, never read from padding (``length`` says how far it got). Kernels
newer than this table return more; the extra bytes are kept in ``extra``.

Byte 6 holds ``tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4``: on little-endian
Linux the first bit field takes the LOW nibble, so ``snd = b & 0x0F`` and
``rcv = b >> 4`` (pyroute2's ``x & 0xF0 >> 4`` is ``x & 0x0F``, since ``>>``
binds tighter than ``&``: it returns the snd nibble for rcv). Byte 7 holds
``tcpi_delivery_rate_app_limited : 1, tcpi_fastopen_client_fail : 2``.

The layout ends as in Linux 6.18 (280 bytes: the AccECN counters, then
``__u16 tcpi_accecn_fail_mode, tcpi_accecn_opt_seen``). Linux 7.0 re-splits
that last u32 into ``tcpi_ecn_mode:2, tcpi_accecn_opt_seen:2,
tcpi_accecn_fail_mode:4, tcpi_options2:24``; ``accecn_word`` keeps the raw u32
so either reading stays possible. Values are native-endian (host order).
"""

from __future__ import annotations

import struct
from typing import Any

from construct import (
    BitsInteger,
    BitStruct,
    GreedyBytes,
    Int8ul,
    Int16un,
    Int32un,
    Int64un,
    Padding,
    Struct,
)

# tcpi_state values (net/tcp_states.h) and tcpi_ca_state (enum tcp_ca_state)
TCP_CA_STATES = {0: "open", 1: "disorder", 2: "cwr", 3: "recovery", 4: "loss"}

# tcpi_options bits
TCPI_OPT_TIMESTAMPS = 1
TCPI_OPT_SACK = 2
TCPI_OPT_WSCALE = 4
TCPI_OPT_ECN = 8
TCPI_OPT_ECN_SEEN = 16
TCPI_OPT_SYN_DATA = 32
TCPI_OPT_USEC_TS = 64
TCPI_OPT_TFO_CHILD = 128
TCPI_OPTIONS = {
    TCPI_OPT_TIMESTAMPS: "ts", TCPI_OPT_SACK: "sack", TCPI_OPT_WSCALE: "wscale",
    TCPI_OPT_ECN: "ecn", TCPI_OPT_ECN_SEEN: "ecnseen", TCPI_OPT_SYN_DATA: "fastopen",
    TCPI_OPT_USEC_TS: "usec_ts", TCPI_OPT_TFO_CHILD: "tfo_child",
}

# (name, struct code) in kernel order; "_wscale" and "_flags7" are the bit-field bytes.
_LAYOUT: tuple[tuple[str, str], ...] = (
    ("state", "B"), ("ca_state", "B"), ("retransmits", "B"), ("probes", "B"),
    ("backoff", "B"), ("options", "B"), ("_wscale", "B"), ("_flags7", "B"),
    ("rto", "I"), ("ato", "I"), ("snd_mss", "I"), ("rcv_mss", "I"),
    ("unacked", "I"), ("sacked", "I"), ("lost", "I"), ("retrans", "I"), ("fackets", "I"),
    ("last_data_sent", "I"), ("last_ack_sent", "I"), ("last_data_recv", "I"),
    ("last_ack_recv", "I"),
    ("pmtu", "I"), ("rcv_ssthresh", "I"), ("rtt", "I"), ("rttvar", "I"),
    ("snd_ssthresh", "I"), ("snd_cwnd", "I"), ("advmss", "I"), ("reordering", "I"),
    ("rcv_rtt", "I"), ("rcv_space", "I"),
    ("total_retrans", "I"),
    ("pacing_rate", "Q"), ("max_pacing_rate", "Q"), ("bytes_acked", "Q"),
    ("bytes_received", "Q"), ("segs_out", "I"), ("segs_in", "I"),
    ("notsent_bytes", "I"), ("min_rtt", "I"), ("data_segs_in", "I"), ("data_segs_out", "I"),
    ("delivery_rate", "Q"),
    ("busy_time", "Q"), ("rwnd_limited", "Q"), ("sndbuf_limited", "Q"),
    ("delivered", "I"), ("delivered_ce", "I"),
    ("bytes_sent", "Q"), ("bytes_retrans", "Q"), ("dsack_dups", "I"), ("reord_seen", "I"),
    ("rcv_ooopack", "I"),
    ("snd_wnd", "I"),
    ("rcv_wnd", "I"), ("rehash", "I"),
    ("total_rto", "H"), ("total_rto_recoveries", "H"), ("total_rto_time", "I"),
    ("received_ce", "I"), ("delivered_e1_bytes", "I"), ("delivered_e0_bytes", "I"),
    ("delivered_ce_bytes", "I"), ("received_e1_bytes", "I"), ("received_e0_bytes", "I"),
    ("received_ce_bytes", "I"),
    ("accecn_fail_mode", "H"), ("accecn_opt_seen", "H"),
)

FULL = struct.Struct("=" + "".join(code for _n, code in _LAYOUT))
SIZE = FULL.size  # 280 (Linux 6.18)


def _offsets() -> tuple[tuple[str, int, int], ...]:
    out, off = [], 0
    for name, code in _LAYOUT:
        size = struct.calcsize(code)
        out.append((name, off, size))
        off += size
    return tuple(out)


# (name, offset, size) of every member, bit-field bytes included
FIELDS = _offsets()
_END = {name: off + size for name, off, size in FIELDS}
# public names in kernel order (bit fields expanded where their byte sits)
_BITS = {"_wscale": ("snd_wscale", "rcv_wscale"),
         "_flags7": ("delivery_rate_app_limited", "fastopen_client_fail")}
NAMES: tuple[str, ...] = (
    *(n for name, _o, _s in FIELDS for n in _BITS.get(name, (name,))), "accecn_word")

# Lengths older kernels return, named by their last field (for tests and docs):
# 104 total_retrans (2.6), 168 delivery_rate (4.9), 232 snd_wnd (5.4, Debian 12's 6.1),
# 248 total_rto_time (6.7), 280 accecn_opt_seen (6.18).
KNOWN_LENGTHS = {name: _END[name] for name in (
    "total_retrans", "delivery_rate", "snd_wnd", "total_rto_time", "accecn_opt_seen")}

TCP_INFO = Struct(*[
    (
        name / BitStruct("rcv_wscale" / BitsInteger(4), "snd_wscale" / BitsInteger(4))
        if name == "_wscale" else
        name / BitStruct(Padding(5), "fastopen_client_fail" / BitsInteger(2),
                         "delivery_rate_app_limited" / BitsInteger(1))
        if name == "_flags7" else
        name / {"B": Int8ul, "H": Int16un, "I": Int32un, "Q": Int64un}[code]
    )
    for name, code in _LAYOUT
], "extra" / GreedyBytes)
"""construct schema of the whole struct (the cross-check; the view is the fast path)."""


class TcpInfo:
    """A lenient view: every field the kernel's bytes cover, others ``None``."""

    __slots__ = ("_v", "extra", "length")

    def __init__(self, buf: bytes | bytearray | memoryview) -> None:
        data = bytes(buf)
        self.length = len(data)
        self.extra = data[SIZE:]
        if self.length >= SIZE:
            vals = FULL.unpack_from(data)
            self._v: dict[str, int] = dict(zip((n for n, _c in _LAYOUT), vals, strict=True))
        else:
            self._v = {}
            for name, off, size in FIELDS:
                if off + size > self.length:
                    break
                self._v[name] = int.from_bytes(data[off:off + size], _BYTEORDER)

    def __getattr__(self, name: str) -> int | None:
        if name.startswith("_"):
            raise AttributeError(name)
        v = self._v
        if name in ("snd_wscale", "rcv_wscale"):
            b = v.get("_wscale")
            if b is None:
                return None
            return b & 0x0F if name == "snd_wscale" else b >> 4
        if name in ("delivery_rate_app_limited", "fastopen_client_fail"):
            b = v.get("_flags7")
            if b is None:
                return None
            return b & 1 if name == "delivery_rate_app_limited" else (b >> 1) & 3
        if name == "accecn_word":
            if "accecn_opt_seen" not in v:
                return None
            return int.from_bytes(
                struct.pack("=HH", v["accecn_fail_mode"], v["accecn_opt_seen"]), _BYTEORDER)
        if name in _END:
            return v.get(name)
        raise AttributeError(name)

    def fields(self) -> dict[str, int]:
        """{name: value} for every field present, in kernel order."""
        out: dict[str, int] = {}
        for name in NAMES:
            val = getattr(self, name)
            if val is not None:
                out[name] = val
        return out

    def __repr__(self) -> str:
        return f"<TcpInfo {self.length} B {self.fields()}>"


_BYTEORDER: Any = "little" if struct.pack("=H", 1) == b"\x01\x00" else "big"


def parse_construct(buf: bytes) -> dict[str, int]:
    """The same fields through the construct schema (full-length buffers only)."""
    c = TCP_INFO.parse(bytes(buf))
    out: dict[str, int] = {}
    for name, _code in _LAYOUT:
        val = c[name]
        if name == "_wscale":
            out["snd_wscale"], out["rcv_wscale"] = val.snd_wscale, val.rcv_wscale
        elif name == "_flags7":
            out["delivery_rate_app_limited"] = val.delivery_rate_app_limited
            out["fastopen_client_fail"] = val.fastopen_client_fail
        else:
            out[name] = val
    return out
