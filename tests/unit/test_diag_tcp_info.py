"""tcp_info decoding from golden bytes built with struct, at every length kernels return."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawlab.decode import tcp_info as ti
from rawlab.decode.tcp_info import KNOWN_LENGTHS, SIZE, TcpInfo, parse_construct

# one distinct value per member, in kernel order (bit-field bytes given as raw bytes)
SND_WSCALE, RCV_WSCALE = 7, 14
WSCALE_BYTE = (RCV_WSCALE << 4) | SND_WSCALE  # 0xE7: snd in the LOW nibble
FLAGS7 = 0b101  # app_limited=1, fastopen_client_fail=2


def golden_values() -> dict[str, int]:
    vals: dict[str, int] = {}
    for n, (name, off, size) in enumerate(ti.FIELDS):
        if name == "_wscale":
            vals[name] = WSCALE_BYTE
        elif name == "_flags7":
            vals[name] = FLAGS7
        elif size == 1:
            vals[name] = n + 1
        else:
            vals[name] = (off + 1) * 100 + size  # unique and fits every width (< 65535)
    return vals


def golden_bytes() -> bytes:
    vals = golden_values()
    return struct.pack("=" + "".join(c for _n, c in ti._LAYOUT),
                       *(vals[n] for n, _c in ti._LAYOUT))


def test_layout_matches_the_kernel() -> None:
    assert SIZE == 280  # Linux 6.18
    offs = {name: off for name, off, _s in ti.FIELDS}
    # offsets from include/uapi/linux/tcp.h (pahole)
    assert offs["rto"] == 8
    assert offs["rtt"] == 68
    assert offs["total_retrans"] == 100
    assert offs["pacing_rate"] == 104
    assert offs["bytes_received"] == 128
    assert offs["delivery_rate"] == 160
    assert offs["snd_wnd"] == 228
    assert offs["total_rto"] == 240
    assert offs["received_ce"] == 248
    assert offs["accecn_opt_seen"] == 278
    assert KNOWN_LENGTHS == {"total_retrans": 104, "delivery_rate": 168, "snd_wnd": 232,
                             "total_rto_time": 248, "accecn_opt_seen": 280}


def test_full_struct_every_field() -> None:
    raw = golden_bytes()
    t = TcpInfo(raw)
    vals = golden_values()
    assert t.length == 280 and t.extra == b""
    assert t.snd_wscale == SND_WSCALE and t.rcv_wscale == RCV_WSCALE
    assert t.delivery_rate_app_limited == 1 and t.fastopen_client_fail == 2
    for name, _off, _size in ti.FIELDS:
        if not name.startswith("_"):
            assert getattr(t, name) == vals[name], name
    assert t.accecn_word == vals["accecn_fail_mode"] | vals["accecn_opt_seen"] << 16


def test_view_and_construct_agree() -> None:
    raw = golden_bytes()
    fields = TcpInfo(raw).fields()
    fields.pop("accecn_word")
    assert parse_construct(raw) == fields


def test_wscale_nibbles_not_pyroute2s() -> None:
    t = TcpInfo(golden_bytes())
    x = WSCALE_BYTE
    assert x & 0xF0 >> 4 == SND_WSCALE  # pyroute2's rcv_wscale: precedence gives the snd nibble
    assert t.rcv_wscale == 14 != x & 0xF0 >> 4


def test_real_kernel_sample_from_a_loopback_connection() -> None:
    # getsockopt(TCP_INFO) on Linux 6.18, client of an established loopback connection
    head = bytes.fromhex("010000000007aa01400d0300")
    t = TcpInfo(head)
    assert t.state == 1 and t.options == 7
    assert (t.snd_wscale, t.rcv_wscale) == (10, 10)
    assert t.delivery_rate_app_limited == 1
    assert t.rto == 200000
    assert t.ato is None  # not in the 12 bytes given


@pytest.mark.parametrize("length", [0, 1, 6, 7, 8, 11, 104, 168, 232, 236, 248, 279])
def test_short_lengths_decode_only_what_was_sent(length: int) -> None:
    raw = golden_bytes()[:length]
    t = TcpInfo(raw)
    f = t.fields()
    assert t.length == length
    for name, off, size in ti.FIELDS:
        public = ti._BITS.get(name, (name,))
        for p in public:
            if off + size <= length:
                assert p in f
            else:
                assert p not in f and getattr(t, p) is None
    if length >= 7:
        assert (t.snd_wscale, t.rcv_wscale) == (SND_WSCALE, RCV_WSCALE)


def test_old_kernel_232_bytes() -> None:
    t = TcpInfo(golden_bytes()[:232])  # Debian 12's 6.1
    assert t.snd_wnd == golden_values()["snd_wnd"]
    assert t.rcv_wnd is None and t.total_rto is None and "accecn_word" not in t.fields()


def test_newer_kernel_extra_kept() -> None:
    t = TcpInfo(golden_bytes() + b"\x01\x02\x03\x04")
    assert t.length == 284 and t.extra == b"\x01\x02\x03\x04"
    assert t.accecn_opt_seen == golden_values()["accecn_opt_seen"]


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError):
        _ = TcpInfo(b"").no_such_field


@given(st.binary(max_size=300))
def test_any_bytes_never_raise(raw: bytes) -> None:
    t = TcpInfo(raw)
    f = t.fields()
    assert all(isinstance(v, int) for v in f.values())
    if len(raw) >= 7:
        assert f["snd_wscale"] == raw[6] & 0x0F and f["rcv_wscale"] == raw[6] >> 4
