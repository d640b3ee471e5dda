"""The application decoders on messages with known values (scapy builds most of them; the
rest are published vectors: RFC 9001 A.2/A.3 for QUIC, JA3/JA4 reference fingerprints),
the port dispatch and the names-only walk, and the line/tree/JSON presenters."""

from __future__ import annotations

import struct

import pytest

from rawlab.decode import dhcp, dns, http, ntp, quic, snmp, ssh, tls
from rawlab.decode.dispatch import Decoder
from rawlab.present import packet
from rawlab.present.app import suffix
from rawlab.records import Record

pytestmark = pytest.mark.unit
DEC = Decoder()


def frame(l4: object) -> bytes:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                 / IP(src="10.0.0.1", dst="10.0.0.2") / l4)


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    from scapy.layers.inet import UDP

    return frame(UDP(sport=sport, dport=dport) / payload)


# ---- DNS -------------------------------------------------------------------------------------

def _dns_response() -> bytes:
    from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRRMX, DNSRROPT, DNSRRSOA, DNSRRSRV

    return bytes(DNS(id=0x1A2B, qr=1, rd=1, ra=1, qd=DNSQR(qname="example.org"), an=[
        DNSRR(rrname="example.org", type="CNAME", ttl=60, rdata="www.example.org"),
        DNSRR(rrname="www.example.org", type="A", ttl=300, rdata="93.184.216.34"),
        DNSRR(rrname="www.example.org", type="AAAA", ttl=300, rdata="2606:2800:220:1::1"),
        DNSRR(rrname="example.org", type="TXT", ttl=1, rdata=[b"v=spf1 -all", b"x"]),
        DNSRRMX(rrname="example.org", ttl=5, preference=10, exchange="mail.example.org"),
        DNSRRSRV(rrname="_x._tcp.example.org", ttl=7, priority=1, weight=2, port=443,
                 target="srv.example.org"),
    ], ns=[DNSRRSOA(rrname="example.org", ttl=9, mname="ns.example.org",
                    rname="admin.example.org", serial=2024, refresh=1, retry=2, expire=3,
                    minimum=4)],
        ar=[DNSRROPT(rclass=1232, z=0x8000)]))


def test_dns_every_record_type() -> None:
    p = DEC.decode(udp(53, 40000, _dns_response()), 1)
    assert p.names == ("eth", "ipv4", "udp", "dns")
    d = p["dns"]
    assert (d.id, d.qr, d.rd, d.ra, d.rcode, d.qdcount, d.ancount, d.nscount, d.arcount) == (
        0x1A2B, 1, 1, 1, 0, 1, 6, 1, 1)
    assert d.questions[0][:3] == (b"example.org", 1, 1)
    by_type = {rr.type: rr for rr in d.answers}
    assert by_type[dns.T_CNAME].data == b"www.example.org"
    assert by_type[dns.T_A].data == bytes([93, 184, 216, 34])
    assert by_type[dns.T_AAAA].data == bytes.fromhex("26062800022000010000000000000001")
    assert by_type[dns.T_TXT].data == (b"v=spf1 -all", b"x")
    assert by_type[dns.T_MX].data == (10, b"mail.example.org")
    assert by_type[dns.T_SRV].data == (1, 2, 443, b"srv.example.org")
    assert d.authorities[0].data == (b"ns.example.org", b"admin.example.org", 2024, 1, 2, 3, 4)
    opt = d.edns
    assert opt is not None and opt.cls == 1232 and opt.ttl >> 15 & 1 == 1
    assert not d.truncated and not d.malformed
    assert suffix(p) == (": DNS response 0x1a2b NOERROR A example.org → CNAME www.example.org, "
                         "93.184.216.34, 2606:2800:220:1::1 +3")


def test_dns_query_line_and_json() -> None:
    from scapy.layers.dns import DNS, DNSQR

    raw = udp(40000, 53, bytes(DNS(id=7, rd=1, qd=DNSQR(qname="example.org", qtype="AAAA"))))
    p = DEC.decode(raw, 1)
    assert suffix(p) == ": DNS query 0x0007 AAAA example.org"
    j = packet.packet_json(1, Record(0, len(raw), 1, raw), p, None)["dns"]
    assert j["questions"] == [{"name": "example.org", "type": 28, "type_name": "AAAA",
                               "class": 1, "unicast_response": False}]
    assert j["response"] is False and j["recursion_desired"] is True


def test_dns_compression_loop_is_malformed_not_endless() -> None:
    hdr = struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0)
    looped = hdr + b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01"  # the pointer points at its label
    d = dns.Dns(looped)
    # the question is kept with what was read (as tshark), its name bounded, and marked
    assert len(d.questions) == 1 and len(d.questions[0].name) <= dns.MAX_NAME and d.malformed
    self_ptr = dns.Dns(hdr + b"\xc0\x0c\x00\x01\x00\x01")
    assert self_ptr.questions[0].name == b"" and self_ptr.malformed  # (marks: as sections are read)
    name, end, st = dns.read_name(b"\x03www\x07example\x00\xc0\x04", 13)
    assert (name, end, st) == (b"example", 15, dns.OK)


def test_dns_unknown_type_kept_and_truncation_marked() -> None:
    rr = b"\x00" + struct.pack("!HHIH", 65280, 1, 10, 3) + b"abc"
    msg = struct.pack("!HHHHHH", 9, 0x8400, 0, 1, 0, 0) + rr
    d = dns.Dns(msg)
    assert d.answers[0].type == 65280 and d.answers[0].rdata == b"abc" and d.answers[0].data is None
    cut = dns.Dns(msg[:-2])
    assert cut.answers[0].rdata == b"a" and cut.truncated


def test_dns_over_tcp_length_prefix() -> None:
    msg = _dns_response()
    d = dns.DnsTcp(struct.pack("!H", len(msg)) + msg)
    assert d.length == len(msg) and d.id == 0x1A2B and len(d.answers) == 6
    assert dns.DnsTcp.pdu_len(b"\x00") == 0 and dns.DnsTcp.pdu_len(b"\x00\x05") == 7


def test_mdns_and_llmnr_by_port() -> None:
    from scapy.layers.dns import DNS, DNSQR

    q = bytes(DNS(qd=DNSQR(qname="host.local")))[:-2] + b"\x80\x01"  # QU bit set
    assert DEC.decode(udp(5353, 5353, q), 1).names[-1] == "mdns"
    assert DEC.decode(udp(40000, 5355, q), 1).names[-1] == "llmnr"
    assert DEC.decode(udp(5353, 5353, q), 1)["mdns"].questions[0].cls == 0x8001


# ---- DHCP, NTP, SNMP, SSH --------------------------------------------------------------------

def test_dhcp_options_by_name() -> None:
    from scapy.layers.dhcp import BOOTP, DHCP

    b = bytes(BOOTP(op=1, xid=0x3903F326, chaddr=bytes.fromhex("000b8201fc42") + bytes(10),
                    flags=0x8000) / DHCP(options=[("message-type", "request"),
                                                  ("requested_addr", "192.168.0.10"),
                                                  ("hostname", b"box"), ("param_req_list",
                                                                         [1, 3, 6]), "end"]))
    p = DEC.decode(udp(68, 67, b), 1)
    d = p["dhcp"]
    assert (d.op, d.xid, d.flags, d.cookie, d.message_type) == (1, 0x3903F326, 0x8000,
                                                                dhcp.DHCP_MAGIC, 3)
    assert d.hwaddr == bytes.fromhex("000b8201fc42")
    assert d.option(50) == bytes([192, 168, 0, 10]) and d.option(12) == b"box"
    assert suffix(p) == (": DHCP Request xid 0x3903f326 from 00:0b:82:01:fc:42 "
                         "requested 192.168.0.10")
    j = packet.packet_json(1, Record(0, 1, 1, b""), p, None)["dhcp"]
    assert {o["name"]: o["value"] for o in j["options"]} == {
        "DHCP Message Type": "Request", "Requested IP Address": "192.168.0.10",
        "Host Name": "box", "Parameter Request List": [1, 3, 6]}


def test_ntp_modes() -> None:
    from scapy.layers.ntp import NTPHeader

    n = ntp.Ntp(bytes(NTPHeader(version=4, mode=4, stratum=2, poll=6, precision=-20,
                                id="192.0.2.1")))
    assert (n.vn, n.mode, n.stratum, n.poll, n.precision, n.refid) == (
        4, 4, 2, 6, -20, bytes([192, 0, 2, 1]))
    ctl = ntp.Ntp(bytes.fromhex("160200440000000000000000"))
    assert (ctl.mode, ctl.opcode, ctl.sequence, ctl.count) == (6, 2, 68, 0)
    assert ntp.Ntp(b"\x23").truncated


def test_snmp_v2c_get() -> None:
    from scapy.layers.snmp import SNMP, SNMPget, SNMPvarbind

    s = snmp.Snmp(bytes(SNMP(version=1, community=b"public", PDU=SNMPget(
        id=1234, varbindlist=[SNMPvarbind(oid="1.3.6.1.2.1.1.1.0")]))))
    assert (s.version, s.community, s.pdu_type, s.request_id, s.error_status) == (
        1, b"public", 0, 1234, 0)
    assert s.varbinds[0].oid == (1, 3, 6, 1, 2, 1, 1, 1, 0)
    assert not s.malformed and not s.truncated


def test_ssh_banner_and_kexinit() -> None:
    kex = b"\x14" + bytes(16) + b"".join(struct.pack("!I", len(x)) + x for x in (
        b"curve25519-sha256", b"ssh-ed25519", b"aes128-ctr", b"aes128-ctr", b"hmac-sha2-256",
        b"hmac-sha2-256", b"none", b"none", b"", b"")) + b"\x00" + bytes(4)
    pad = 4 + (-(5 + len(kex) + 4) % 8)
    pkt = struct.pack("!IB", 1 + len(kex) + pad, pad) + kex + bytes(pad)
    s = ssh.Ssh(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n" + pkt)
    assert s.banner == b"SSH-2.0-OpenSSH_9.2p1 Debian"
    assert [p.message_code for p in s.packets] == [20] and not s.encrypted
    assert s.kexinit is not None and s.kexinit["kex_algorithms"] == b"curve25519-sha256"
    assert ssh.Ssh(bytes(range(200, 256)) * 3).encrypted


# ---- TLS: hellos, fingerprints against published values ---------------------------------------

def _u16(v: int) -> bytes:
    return struct.pack("!H", v)


def _vec16(b: bytes) -> bytes:
    return _u16(len(b)) + b


def client_hello(ciphers: list[int], exts: list[int], sigs: list[int], groups: list[int],
                 alpn: list[bytes], sni: bytes, versions: list[int]) -> tls.Hello:
    body = b""
    for t in exts:
        d = {0: _vec16(b"\x00" + _vec16(sni)),
             16: _vec16(b"".join(bytes([len(a)]) + a for a in alpn)),
             13: _vec16(b"".join(_u16(s) for s in sigs)),
             10: _vec16(b"".join(_u16(g) for g in groups)), 11: b"\x01\x00",
             43: bytes([2 * len(versions)]) + b"".join(_u16(v) for v in versions)}.get(t, b"")
        body += _u16(t) + _vec16(d)
    ch = (_u16(0x0303) + bytes(32) + b"\x20" + bytes(32)
          + _vec16(b"".join(_u16(c) for c in ciphers)) + b"\x01\x00" + _vec16(body))
    h = tls.parse_hello(tls.Handshake(1, len(ch), ch))
    assert h is not None
    return h


def test_ja3_and_ja4_match_published_fingerprints() -> None:
    # A Chrome 143 ClientHello as a public TLS fingerprinting service reported it: JA4_ro
    # (original order), JA4, JA4_r, JA4_o, JA3 string and JA3 hash; GREASE values added
    # where Chrome puts them (they must not count).
    ro = ("1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_"
          "002d,0033,0010,fe0d,0017,44cd,0000,000b,000a,002b,ff01,0023,0012,0005,000d,001b_"
          "0403,0804,0401,0503,0805,0501,0806,0601")
    c, e, s = ro.split("_")
    h = client_hello([0xFAFA, *(int(x, 16) for x in c.split(","))],
                     [0x1A1A, *(int(x, 16) for x in e.split(",")), 0x2A2A],
                     [int(x, 16) for x in s.split(",")], [0xAAAA, 4588, 29, 23, 24],
                     [b"h2", b"http/1.1"], b"tls.browserleaks.com", [0x3A3A, 0x0304, 0x0303])
    four, four_r, four_o = tls.ja4(h)
    assert four == "t13d1516h2_8daaf6152771_d8a2da3f94cd"
    assert four_o == "t13d1516h2_acb858a92679_f96a17c57971"
    assert four_r == (
        "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,"
        "cca9_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_0403,"
        "0804,0401,0503,0805,0501,0806,0601")
    text, digest = tls.ja3(h)
    assert text == ("771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-"
                    "157-47-53,45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,"
                    "4588-29-23-24,0")
    assert digest == "98487aa16281980e7d1120d399efb6a4"


def test_ja4_second_published_vector_and_edge_cases() -> None:
    # JA4_r t13d1011h2_00ff,1301,...: a second published example (10 ciphers, 11 extensions)
    ciphers = [0x1302, 0x1303, 0x1301, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC02B, 0xC02F, 0x00FF]
    exts = [0x0000, 0x000B, 0x000A, 0x0023, 0x0016, 0x0017, 0x000D, 0x002B, 0x002D, 0x0033,
            0x0010]
    exts = [0, 11, 10, 35, 5, 23, 13, 43, 45, 51, 16]
    sigs = [0x0503, 0x0403, 0x0807, 0x0806, 0x0805, 0x0804, 0x0601, 0x0501, 0x0401]
    h = client_hello(ciphers, exts, sigs, [29, 23], [b"h2"], b"a.example", [0x0304, 0x0303])
    four, four_r, _o = tls.ja4(h)
    assert four_r == ("t13d1011h2_00ff,1301,1302,1303,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,"
                      "000b,000d,0017,0023,002b,002d,0033_0503,0403,0807,0806,0805,0804,0601,"
                      "0501,0401")
    assert four == "t13d1011h2_61a7ad8aa9b6_3fcd1a44f3e3"
    bare = client_hello([0x002F], [], [], [], [], b"", [])
    assert tls.ja4(bare)[0].startswith("t12i0100") and tls.ja4(bare)[0].endswith("_000000000000")


def test_tls_records_and_stream_framing() -> None:
    h = client_hello([0x1301], [0, 43], [], [], [], b"example.org", [0x0304])
    body = (_u16(0x0303) + bytes(32) + b"\x20" + bytes(32) + _vec16(_u16(0x1301)) + b"\x01\x00"
            + _vec16(_u16(0) + _vec16(_vec16(b"\x00" + _vec16(b"example.org")))
                     + _u16(43) + _vec16(b"\x02\x03\x04")))
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    rec = b"\x16\x03\x01" + _vec16(hs)
    t = tls.Tls(rec + b"\x17\x03\x03\x00\x02hi")
    assert [r.content_type for r in t.records] == [22, 23]
    assert tls.parse_hello(t.handshakes[0]).sni == b"example.org"
    assert h.supported_versions == (0x0304,)
    assert tls.record_len(rec[:3]) == 0 and tls.record_len(rec) == len(rec)
    assert tls.record_len(b"GET / HTTP/1.1") == -1
    assert tls.Tls(rec[:-3]).truncated


# ---- HTTP framing ----------------------------------------------------------------------------

def test_http_framing() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n"
    assert http.message_len(head + body) == len(head + body)
    assert http.message_len(head + body[:-2]) == 0
    m = http.Http(head + body)
    assert (m.status, m.chunked, m.chunks, m.body_len) == (200, True, (5, 3), 8)
    req = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd"
    # the whole length as soon as the head says it (the reassembler waits for it)
    assert http.message_len(req) == len(req) == http.message_len(req[:-1])
    assert http.message_len(req[:20]) == 0
    assert http.message_len(b"HTTP/1.0 200 OK\r\n\r\nbody") == http.UNTIL_CLOSE
    not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
    assert http.message_len(not_modified) == len(not_modified)  # no body, whatever the length
    assert http.message_len(b"\x16\x03\x01\x00") == -1
    r = http.Http(req)
    assert (r.method, r.target, r.version, r.header(b"HOST"), r.content_length) == (
        b"POST", b"/x", b"HTTP/1.1", b"h", 4)


# ---- QUIC: RFC 9001 appendix A ---------------------------------------------------------------

RFC9001_DCID = bytes.fromhex("8394c8f03e515708")
RFC9001_CRYPTO = bytes.fromhex(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806048000ffff")
RFC9001_SERVER_INITIAL = bytes.fromhex(
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a"
    "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3"
    "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4"
    "2158407dd074ee")


def protect_rfc9001_client_initial() -> bytes:
    """RFC 9001 A.2's client Initial, protected as A.2 does (header c300000001...,
    packet number 2, 1162 bytes of payload: the CRYPTO frame, then PADDING)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key, iv, hp = quic.initial_keys(quic.VERSION_1, RFC9001_DCID)
    header = bytes.fromhex("c300000001088394c8f03e5157080000449e00000002")
    payload = RFC9001_CRYPTO + bytes(1162 - len(RFC9001_CRYPTO))
    nonce = (int.from_bytes(iv, "big") ^ 2).to_bytes(12, "big")
    sealed = AESGCM(key).encrypt(nonce, payload, header)
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sealed[:16]) + enc.finalize()
    first = bytes([header[0] ^ (mask[0] & 0x0F)])
    pn = bytes(a ^ b for a, b in zip(header[-4:], mask[1:5], strict=True))
    return first + header[1:-4] + pn + sealed


def test_quic_rfc9001_client_initial() -> None:
    key, iv, hp = quic.initial_keys(quic.VERSION_1, RFC9001_DCID)
    # RFC 9001 A.1: the client's Initial keys
    assert (key.hex(), iv.hex(), hp.hex()) == ("1f369613dd76d5467730efcbe3b1a22d",
                                               "fa044b2f42a3fd3b46fb255c",
                                               "9f50449e04a0e810283a1e9933adedd2")
    dgram = protect_rfc9001_client_initial()
    # RFC 9001 A.2: the protected header, the first sample, and the last 16 bytes
    assert dgram[:22].hex() == "c000000001088394c8f03e5157080000449e7b9aec34"
    assert dgram[22:38].hex() == "d1b1c98dd7689fb8ec11d242b123dc9b"
    assert dgram[-16:].hex() == "e221af44860018ab0856972e194cd934"
    p = DEC.decode(udp(51000, 443, dgram), 1)
    q = p["quic"]
    pk = q.packets[0]
    assert (pk.long, pk.version, pk.type, pk.dcid, pk.scid, pk.length) == (
        True, 1, quic.T_INITIAL, RFC9001_DCID, b"", 1182)
    ini = q.initial(pk)
    assert ini is not None and ini.packet_number == 2 and not ini.malformed
    ch = q.client_hello
    assert ch is not None and ch.sni == b"example.com" and ch.alpn == (b"alpn",)
    assert suffix(p) == (": QUIC Initial v1 DCID 8394c8f03e515708 SCID -, Client Hello "
                         "SNI example.com ALPN alpn")
    assert tls.ja4(ch, "q")[0].startswith("q13d0211an_")  # 2 ciphers, 11 extensions, ALPN "alpn"


def test_quic_rfc9001_server_initial_stays_protected_per_packet() -> None:
    q = quic.Quic(RFC9001_SERVER_INITIAL)
    pk = q.packets[0]
    assert (pk.type, pk.dcid, pk.scid.hex(), pk.length) == (0, b"", "f067a5502a4262b5", 117)
    assert q.initial(pk) is None  # its keys come from the client's DCID: not in this packet
    got = quic.open_initial(RFC9001_SERVER_INITIAL, pk,
                            quic.initial_keys(quic.VERSION_1, RFC9001_DCID, client=False))
    assert got is not None and got[0] == 1
    frames, bad = quic.parse_frames(got[1])
    assert not bad and [f.type for f in frames] == [2, 6]
    sh = tls.parse_hello(tls.handshakes(quic.crypto_stream(list(frames)))[0][0])
    assert sh is not None and sh.ciphers == (0x1301,) and sh.selected_version == 0x0304


# ---- dispatch --------------------------------------------------------------------------------

@pytest.mark.parametrize(("sport", "dport", "payload", "want"), [
    (40000, 53, b"\x00" * 12, "dns"), (53, 53, b"\x00" * 12, "dns"),
    (67, 68, b"\x02" * 240, "dhcp"), (123, 40000, b"\x24" + bytes(47), "ntp"),
    (40000, 161, b"\x30\x00", "snmp"), (40000, 443, b"\xc0" + bytes(20), "quic"),
    (5353, 53, b"\x00" * 12, "dns"),  # both ports have an entry: the lower wins
    (40000, 9999, b"x", None), (40000, 53, b"", None),
])
def test_udp_port_dispatch_and_names(sport: int, dport: int, payload: bytes,
                                     want: str | None) -> None:
    raw = udp(sport, dport, payload)
    p = DEC.decode(raw, 1)
    assert p.names == ("eth", "ipv4", "udp", *([want] if want else []))
    assert DEC.path(raw, 1) == p.names


def test_tcp_stream_ports_are_not_the_per_packet_walks() -> None:
    from scapy.layers.inet import TCP

    for dport, payload, names in ((443, b"\x16\x03\x01\x00\x05hello", ("tcp",)),
                                  (80, b"GET / HTTP/1.1\r\n\r\n", ("tcp",)),
                                  (22, b"SSH-2.0-x\r\n", ("tcp",))):
        raw = frame(TCP(sport=40000, dport=dport, flags="PA") / payload)
        dec = Decoder()
        assert dec.decode(raw, 1).names[2:] == names
        assert dec.path(raw, 1)[2:] == names
        assert dec.stream is not None
