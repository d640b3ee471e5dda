"""Random and mutated bytes never raise in any application decoder, nor in its line, tree
and JSON presenters (hypothesis); the names-only walk names what decoding names."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawlab.decode import dhcp, dns, http, ntp, quic, snmp, ssh, tls
from rawlab.decode.dispatch import Decoder
from rawlab.decode.scapy_tail import scapy_tail
from rawlab.present import app
from rawlab.present.fmt import json_line

pytestmark = pytest.mark.unit
DEC = Decoder()
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VIEWS = [dns.Dns, dns.Mdns, dns.DnsTcp, dhcp.Dhcp, ntp.Ntp, snmp.Snmp, ssh.Ssh, tls.Tls,
         http.Http, quic.Quic]


def exercise(v: Any) -> None:
    """Touch everything a presenter would, then present it three ways."""
    v.fields()
    repr(v)
    _ = (v.header_len, bytes(v.payload), v.truncated, v.malformed)
    if isinstance(v, tls.Tls):
        for h in v.handshakes:
            hello = tls.parse_hello(h)
            if hello is not None:
                _ = (hello.sni, hello.alpn, hello.groups, hello.sig_algs, hello.point_formats,
                     hello.supported_versions, hello.selected_version)
                tls.ja3(hello)
                tls.ja4(hello)
            tls.parse_certificates(h, True)
            tls.parse_certificates(h, False)
    p = app.presenter(v.name)
    p.line(v)
    list(p.tree(v))
    json_line(p.json(v))


def _seeds() -> list[tuple[type, bytes]]:
    from test_app_decode import _dns_response, protect_rfc9001_client_initial

    msg = _dns_response()
    boot = (struct.pack("!BBBBIHH", 1, 1, 6, 0, 7, 0, 0) + bytes(224)
            + struct.pack("!I", dhcp.DHCP_MAGIC) + b"\x35\x01\x03\x32\x04\xc0\xa8\x00\x0a"
            + b"\x34\x01\x03\xff")
    ch = (b"\x01\x00\x00\x2d\x03\x03" + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00"
          + b"\x00\x04\x00\x2b\x00\x00")
    return [
        (dns.Dns, msg), (dns.DnsTcp, struct.pack("!H", len(msg)) + msg),
        (dhcp.Dhcp, boot), (ntp.Ntp, b"\x24\x02\x06\xec" + bytes(44)),
        (ntp.Ntp, bytes.fromhex("160200440000000000000004") + b"abcd"),
        (snmp.Snmp, bytes.fromhex("302602010104067075626c6963a0190202"
                                  "04d2020100020100300d300b06072b060102010101000500")),
        (ssh.Ssh, b"SSH-2.0-x\r\n" + struct.pack("!IBB", 12, 4, 20) + bytes(14)),
        (tls.Tls, b"\x16\x03\x01" + struct.pack("!H", len(ch)) + ch + b"\x17\x03\x03\x00\x01x"),
        (http.Http, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        (quic.Quic, protect_rfc9001_client_initial()),
    ]


@SETTINGS
@given(st.sampled_from(VIEWS), st.binary(max_size=300))
def test_random_bytes_never_raise(view: type, data: bytes) -> None:
    exercise(view(data))


@SETTINGS
@given(st.data())
def test_mutations_and_truncations_never_raise(data: st.DataObject) -> None:
    view, raw = data.draw(st.sampled_from(_seeds()))
    b = bytearray(raw)
    for _ in range(data.draw(st.integers(0, 6))):
        b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
    exercise(view(bytes(b[: data.draw(st.integers(0, len(b)))])))


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 1, 0, 64, 17, 0,
                     bytes(4), bytes(4))
    return ip + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


@SETTINGS
@given(st.sampled_from([53, 5353, 5355, 67, 68, 123, 161, 162, 443, 22, 9999]),
       st.integers(0, 0xFFFF), st.binary(max_size=200))
def test_ports_walk_names_what_decode_names(port: int, other: int, payload: bytes) -> None:
    raw = _udp(other, port, payload)
    p = DEC.decode(raw, 101)
    assert DEC.path(raw, 101) == p.names
    for v in p.layers:
        if v.application:
            exercise(v)
    tail = scapy_tail(p, DEC.table)  # the long tail never raises either
    if tail is not None:
        exercise(tail)
