"""Known traffic between a Lab's namespaces: TCP exchanges, UDP, ping; and a
tcpdump running inside a namespace. Targets are only addresses of namespaces
the caller's Lab created.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rawlab.errors import RawlabError
from rawlab.lab.netns import Netns


@contextlib.contextmanager
def tcpdump(ns: Netns, iface: str, path: Path | str, expression: str | None = None,
            *, timeout: float = 10.0) -> Iterator[subprocess.Popen[bytes]]:
    """Run `tcpdump -w path` on iface inside ns for the duration of the block."""
    argv = ["tcpdump", "-i", iface, "-w", str(path), "-U", "-n", "-s", "0",
            "--immediate-mode", "--time-stamp-precision=nano"]
    if expression:
        argv.append(expression)
    p = ns.popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert p.stderr is not None
        line = p.stderr.readline().decode(errors="replace")
        if "listening on" not in line:
            raise RawlabError(f"tcpdump in {ns.name} did not start: {line.strip()}")
        yield p
        _settled(Path(path))  # the last packets through the ring and into the file
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _settled(path: Path, step: float = 0.2, limit: float = 5.0) -> None:
    """Wait until ``path`` (written packet by packet, ``-U``) stops growing: on a loaded
    machine tcpdump may still be reading its ring, and SIGINT ends it without the rest."""
    end = time.monotonic() + limit
    size = -1
    while time.monotonic() < end:
        time.sleep(step)
        now = path.stat().st_size if path.exists() else 0
        if now == size:
            return
        size = now


@dataclass
class Exchange:
    """What one TCP exchange did: the bytes each side received, the ports."""

    server_got: bytes = b""
    client_got: bytes = b""
    client_port: int = 0
    errors: list[str] = field(default_factory=list)


def tcp_exchange(server: Netns, client: Netns, server_ip: str, port: int,
                 request: bytes, response: bytes, *, chunk: int | None = None,
                 timeout: float = 10.0,
                 before_close: Callable[[], None] | None = None) -> Exchange:
    """One TCP connection: connect, send request, server replies, both close.

    The listener is ready before the client connects. chunk: send the request
    in writes of that size (more segments). before_close: called once the client has
    the whole reply, while both ends' sockets are still open.
    """
    fam = socket.AF_INET6 if ":" in server_ip else socket.AF_INET
    ex = Exchange()
    with server.entered():
        srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((server_ip, port))
    srv.listen(1)
    srv.settimeout(timeout)

    def serve() -> None:
        try:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(timeout)
                buf = b""
                while len(buf) < len(request):
                    part = conn.recv(65536)
                    if not part:
                        break
                    buf += part
                ex.server_got = buf
                conn.sendall(response)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
        except OSError as exc:
            ex.errors.append(f"server: {exc}")
        finally:
            srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with client.entered():
        cli = socket.socket(fam, socket.SOCK_STREAM)
    try:
        cli.settimeout(timeout)
        cli.connect((server_ip, port))
        ex.client_port = cli.getsockname()[1]
        step = chunk or len(request) or 1
        for i in range(0, len(request), step):
            cli.sendall(request[i:i + step])
        got = b""
        while True:
            part = cli.recv(65536)
            if not part:
                break
            got += part
        ex.client_got = got
        if before_close is not None:
            before_close()
        cli.shutdown(socket.SHUT_WR)
    except OSError as exc:
        ex.errors.append(f"client: {exc}")
    finally:
        cli.close()
        t.join(timeout)
    return ex


def udp_send(src: Netns, dst: Netns, dst_ip: str, port: int, payload: bytes,
             timeout: float = 5.0) -> bytes:
    """Send one datagram from src to a receiver in dst; return what arrived."""
    fam = socket.AF_INET6 if ":" in dst_ip else socket.AF_INET
    with dst.entered():
        rx = socket.socket(fam, socket.SOCK_DGRAM)
    with src.entered():
        tx = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        rx.bind((dst_ip, port))
        rx.settimeout(timeout)
        tx.sendto(payload, (dst_ip, port))
        return rx.recv(65536)
    finally:
        rx.close()
        tx.close()


def ping(src: Netns, dst_ip: str, count: int = 1) -> None:
    p = src.run(["ping", "-c", str(count), "-i", "0.2", "-W", "2", dst_ip], check=False)
    if p.returncode != 0:
        raise RawlabError(f"ping {dst_ip} from {src.name} failed: {p.stdout}{p.stderr}")
