"""Real application traffic between two of a Lab's namespaces, for the application-layer
tests: dnsmasq as DNS (UDP and TCP) and DHCP server, Python NTP / SNMP responders, SSH
banners and key-exchange packets, HTTP/1.1 (Content-Length and chunked bodies over many
segments), TLS 1.2 and 1.3 with a key log (Python's ssl) with HTTP inside, and the RFC 9001
QUIC client Initial. Targets are only the namespaces' own addresses.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CLIENT_IP, SERVER_IP = "10.88.0.1", "10.88.0.2"
BODY = b"<html>" + b"rawlab " * 3000 + b"</html>"  # ~21 kB: many segments, many records


def _serve(ns: Any, fam: int, kind: int, port: int, handle: Callable[[socket.socket], None],
           ready: threading.Event, count: int = 1) -> threading.Thread:
    with ns.entered():
        s = socket.socket(fam, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((SERVER_IP, port))
    if kind == socket.SOCK_STREAM:
        s.listen(4)
    s.settimeout(10)

    def run() -> None:
        ready.set()
        try:
            for _ in range(count):
                if kind == socket.SOCK_STREAM:
                    c, _a = s.accept()
                    with c:
                        c.settimeout(10)
                        handle(c)
                else:
                    handle(s)
        except OSError:
            pass
        finally:
            s.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait(5)
    return t


def _client(ns: Any, kind: int = socket.SOCK_STREAM) -> socket.socket:
    with ns.entered():
        s = socket.socket(socket.AF_INET, kind)
    s.settimeout(10)
    return s


def _recv_until(c: socket.socket, end: bytes) -> bytes:
    buf = b""
    while end not in buf:
        part = c.recv(65536)
        if not part:
            break
        buf += part
    return buf


@contextlib.contextmanager
def dnsmasq(ns: Any, tmp: Path) -> Iterator[subprocess.Popen[bytes]]:
    """dnsmasq in ``ns``: DNS for example.test (A, AAAA, MX, TXT, SRV, CNAME, PTR) on
    UDP and TCP 53, DHCP 10.88.0.50-60 on veth1."""
    exe = shutil.which("dnsmasq")
    assert exe, "dnsmasq is not installed (./setup.sh --test installs dnsmasq-base)"
    argv = [exe, "--keep-in-foreground", "--conf-file=/dev/null", "--user=root",
            "--interface=veth1", "--bind-interfaces", "--no-resolv", "--no-hosts",
            f"--pid-file={tmp}/dnsmasq.pid", f"--dhcp-leasefile={tmp}/leases",
            "--host-record=www.example.test,10.88.0.99,fd00:88::99",
            "--cname=alias.example.test,www.example.test",
            "--mx-host=example.test,mail.example.test,10",
            "--txt-record=example.test,v=spf1 -all,second string",
            "--srv-host=_http._tcp.example.test,www.example.test,80,1,2",
            "--ptr-record=99.0.88.10.in-addr.arpa,www.example.test",
            "--dhcp-range=10.88.0.50,10.88.0.60,255.255.255.0,1h",
            "--dhcp-option=option:router,10.88.0.2", "--dhcp-authoritative",
            "--no-ping", "--log-facility=-"]  # no-ping: no 3 s echo wait before an offer
    p = ns.popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # wait for port 53
            with contextlib.suppress(OSError), _client(ns) as s:
                s.settimeout(0.2)
                s.connect((SERVER_IP, 53))
                break
            time.sleep(0.05)
        yield p
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def dns_queries(ns: Any) -> list[bytes]:
    """UDP queries (with EDNS0 on some) and one over TCP; the answers."""
    from scapy.layers.dns import DNS, DNSQR, DNSRROPT

    out = []
    qs = [("www.example.test", "A"), ("www.example.test", "AAAA"), ("example.test", "MX"),
          ("example.test", "TXT"), ("_http._tcp.example.test", "SRV"),
          ("alias.example.test", "A"), ("99.0.88.10.in-addr.arpa", "PTR"),
          ("nowhere.example.test", "A")]
    with _client(ns, socket.SOCK_DGRAM) as s:
        for i, (name, qtype) in enumerate(qs):
            q = DNS(id=0x1000 + i, rd=1, qd=DNSQR(qname=name, qtype=qtype),
                    ar=[DNSRROPT(rclass=1232)] if i % 2 else [])
            s.sendto(bytes(q), (SERVER_IP, 53))
            out.append(s.recv(4096))
    with _client(ns) as t:
        t.connect((SERVER_IP, 53))
        q = bytes(DNS(id=0x2000, rd=1, qd=DNSQR(qname="www.example.test", qtype="A")))
        t.sendall(struct.pack("!H", len(q)) + q)
        out.append(t.recv(4096))
    return out


def dhcp_exchange(ns: Any) -> bytes:
    """DISCOVER, OFFER, REQUEST, ACK on veth0 (broadcast flag set); the ACK."""
    from scapy.layers.dhcp import BOOTP, DHCP

    mac = bytes.fromhex("02aa00000001")
    with ns.entered():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"veth0")
    s.bind(("0.0.0.0", 68))
    s.settimeout(5)
    try:
        def send(opts: list[Any]) -> bytes:
            b = BOOTP(op=1, xid=0x3903F326, flags=0x8000, chaddr=mac + bytes(10)) / DHCP(
                options=[*opts, ("hostname", b"rawlab-client"), ("param_req_list", [1, 3, 6]),
                         "end"])
            s.sendto(bytes(b), ("255.255.255.255", 67))
            return s.recv(4096)

        offer = send([("message-type", "discover")])
        yiaddr = socket.inet_ntoa(offer[16:20])
        return send([("message-type", "request"), ("requested_addr", yiaddr),
                     ("server_id", SERVER_IP)])
    finally:
        s.close()


def ntp_exchange(client: Any, server: Any) -> bytes:
    def handle(s: socket.socket) -> None:
        req, addr = s.recvfrom(512)
        now = int((time.time() + 2_208_988_800) * 2**32)
        resp = struct.pack("!BBbbII4sQQQQ", 0x24, 2, 6, -20, 0x100, 0x200,
                           socket.inet_aton(SERVER_IP), now, int.from_bytes(req[40:48], "big"),
                           now, now + 1)
        s.sendto(resp, addr)

    t = _serve(server, socket.AF_INET, socket.SOCK_DGRAM, 123, handle, threading.Event())
    with _client(client, socket.SOCK_DGRAM) as c:
        req = struct.pack("!BBbbII4sQQQQ", 0x23, 0, 6, -20, 0, 0, bytes(4), 0, 0, 0,
                          int((time.time() + 2_208_988_800) * 2**32))
        c.sendto(req, (SERVER_IP, 123))
        got = c.recv(512)
    t.join(5)
    return got


def snmp_exchange(client: Any, server: Any) -> bytes:
    from scapy.layers.snmp import SNMP, SNMPget, SNMPresponse, SNMPvarbind

    def handle(s: socket.socket) -> None:
        req, addr = s.recvfrom(1500)
        rid = SNMP(req).PDU.id.val
        s.sendto(bytes(SNMP(version=1, community=b"public", PDU=SNMPresponse(
            id=rid, varbindlist=[SNMPvarbind(oid="1.3.6.1.2.1.1.1.0",
                                             value=b"rawlab test agent")]))), addr)

    t = _serve(server, socket.AF_INET, socket.SOCK_DGRAM, 161, handle, threading.Event())
    with _client(client, socket.SOCK_DGRAM) as c:
        c.sendto(bytes(SNMP(version=1, community=b"public", PDU=SNMPget(
            id=4242, varbindlist=[SNMPvarbind(oid="1.3.6.1.2.1.1.1.0")]))), (SERVER_IP, 161))
        got = c.recv(1500)
    t.join(5)
    return got


def _kexinit(algo: bytes) -> bytes:
    lists = (b"curve25519-sha256", algo, b"aes128-ctr", b"aes128-ctr", b"hmac-sha2-256",
             b"hmac-sha2-256", b"none", b"none", b"", b"")
    payload = b"\x14" + os.urandom(16) + b"".join(struct.pack("!I", len(x)) + x for x in lists)
    payload += b"\x00" + bytes(4)
    pad = 4 + (-(5 + len(payload)) % 8)
    return struct.pack("!IB", 1 + len(payload) + pad, pad) + payload + bytes(pad)


def ssh_exchange(client: Any, server: Any) -> bytes:
    """Identification banners and KEXINITs both ways (no key exchange beyond)."""
    def handle(c: socket.socket) -> None:
        c.sendall(b"SSH-2.0-rawlab_server_1.0\r\n")
        _recv_until(c, b"\n")
        c.sendall(_kexinit(b"ssh-ed25519"))
        c.recv(4096)

    t = _serve(server, socket.AF_INET, socket.SOCK_STREAM, 22, handle, threading.Event())
    with _client(client) as c:
        c.connect((SERVER_IP, 22))
        got = _recv_until(c, b"\n")
        c.sendall(b"SSH-2.0-rawlab_client_1.0\r\n")
        c.recv(4096)
        c.sendall(_kexinit(b"rsa-sha2-512"))
        time.sleep(0.1)
    t.join(5)
    return got


def _http_reply(c: socket.socket, chunked: bool) -> None:
    if chunked:
        parts = [BODY[i:i + 3000] for i in range(0, len(BODY), 3000)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + body)
    else:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
                  % len(BODY) + BODY)


def _http_client(s: Any, paths: list[bytes]) -> list[bytes]:
    got = []
    for path in paths:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: rawlab-test\r\n"
                  b"\r\n" % path)
        buf = _recv_until(s, b"\r\n\r\n")
        while not buf.endswith((b"</html>", b"0\r\n\r\n")):
            part = s.recv(65536)
            if not part:
                break
            buf += part
        got.append(buf)
    return got


def http_exchange(client: Any, server: Any) -> list[bytes]:
    """One keep-alive connection: a Content-Length reply, then a chunked one."""
    def handle(c: socket.socket) -> None:
        for chunked in (False, True):
            _recv_until(c, b"\r\n\r\n")
            _http_reply(c, chunked)

    t = _serve(server, socket.AF_INET, socket.SOCK_STREAM, 80, handle, threading.Event())
    with _client(client) as c:
        c.connect((SERVER_IP, 80))
        got = _http_client(c, [b"/plain", b"/chunked"])
    t.join(5)
    return got


def make_cert(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.test"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rawlab")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(4242)
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.example.test")]),
                           False).sign(key, hashes.SHA256()))
    cp, kp = tmp / "cert.pem", tmp / "key.pem"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cp, kp


def tls_exchange(client: Any, server: Any, tmp: Path, keylog: Path) -> list[bytes]:
    """TLS 1.2 then TLS 1.3 on 443 (HTTP/1.1 inside, Content-Length and chunked bodies),
    the client writing its secrets to ``keylog``."""
    cert, key = make_cert(tmp)
    got = []
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(cert, key)
        sctx.maximum_version = version
        sctx.set_alpn_protocols(["http/1.1"])

        def handle(c: socket.socket, sctx: ssl.SSLContext = sctx) -> None:
            with sctx.wrap_socket(c, server_side=True) as s:
                for chunked in (False, True):
                    _recv_until(s, b"\r\n\r\n")
                    _http_reply(s, chunked)  # type: ignore[arg-type]

        t = _serve(server, socket.AF_INET, socket.SOCK_STREAM, 443, handle, threading.Event())
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cctx.load_verify_locations(cert)
        cctx.maximum_version = version
        cctx.set_alpn_protocols(["http/1.1"])
        cctx.keylog_filename = str(keylog)
        with _client(client) as raw:
            raw.connect((SERVER_IP, 443))
            with cctx.wrap_socket(raw, server_hostname="www.example.test") as s:
                got += _http_client(s, [b"/tls-plain", b"/tls-chunked"])
        t.join(5)
    return got


def quic_initial(client: Any, server: Any, dgram: bytes) -> None:
    """The RFC 9001 A.2 client Initial to UDP 443 (a listener takes it: no ICMP back)."""
    t = _serve(server, socket.AF_INET, socket.SOCK_DGRAM, 443, lambda s: s.recvfrom(2048),
               threading.Event())
    with _client(client, socket.SOCK_DGRAM) as c:
        c.sendto(dgram, (SERVER_IP, 443))
    t.join(5)
