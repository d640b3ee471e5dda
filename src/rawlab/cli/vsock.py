"""`rawlab vsock`: AF_VSOCK (and hybrid vsock) listen, connect, echo, bench. Wiring only."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import click

from rawlab.cli import LazyGroup
from rawlab.cli.options import Seconds, Size

TYPES = click.Choice(["stream", "seqpacket", "dgram"])
BENCH_TYPES = click.Choice(["stream", "seqpacket"])
TESTS = ("throughput", "latency", "connect")
CHUNK = 64 * 1024


def _usage(exc: ValueError, param: str) -> click.BadParameter:
    return click.BadParameter(str(exc), param_hint=param)


def _listener(port: str, cid_text: str, type_name: str) -> tuple[socket.socket, Any, Any]:
    """A listening socket for PORT (vsock, or unix:PATH_PORT), its local end, its hybrid addr."""
    from rawlab.sockets import hybrid
    from rawlab.sockets import vsock as vs

    if hybrid.is_hybrid(port):
        if type_name != "stream":
            raise click.BadParameter("hybrid vsock carries streams only", param_hint="--type")
        try:
            hyb = hybrid.parse_listen(port)
        except ValueError as exc:
            raise _usage(exc, "PORT") from None
        return hybrid.listen(hyb), str(hyb), hyb
    try:
        addr = vs.VsockAddr(vs.parse_cid(cid_text), vs.parse_port(port))
    except ValueError as exc:
        raise _usage(exc, "PORT/--cid") from None
    listener = vs.listen(addr, type_name)
    return listener, vs.VsockAddr(*listener.getsockname()), None


@click.group(cls=LazyGroup, lazy={"capture": "rawlab.cli.vsock_capture:capture"})
def vsock() -> None:
    """AF_VSOCK: local CID, listen, connect, echo, bench and capture (vsockmon); hybrid
    vsock over unix:.

    Addresses are CID:PORT (CID a number or any/hypervisor/local/host) or, for
    Firecracker / Cloud Hypervisor hybrid vsock, unix:PATH:PORT (connect) and
    unix:PATH_PORT (listen). Errors print one line with the fix; exit codes:
    2 usage, 3 privilege, 4 unsupported here, 6 peer (nothing listening, timeout).
    """


# --- cid ---------------------------------------------------------------------------------


@vsock.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document (docs/json.md, vsock).")
@click.option("--check-guest-cid", "guest_cid", type=click.IntRange(0, 0xFFFFFFFF),
              help="On a host: claim this guest CID on /dev/vhost-vsock and release it, "
                   "to see whether a VM could use it.")
def cid(as_json: bool, guest_cid: int | None) -> None:
    """The local CID and which vsock transports exist (guest, host, loopback).

    The same probes as `rawlab doctor --only vsock`; nothing connects anywhere.
    """
    from rawlab import doctor
    from rawlab.present import vsock as pv
    from rawlab.sockets import vsock as vs

    checks = doctor.vsock_checks()
    try:
        local: int | None = vs.local_cid()
    except OSError:
        local = None
    if guest_cid is not None:
        os.close(vs.claim_guest_cid(guest_cid))  # raises RawlabError with the fix
    if as_json:
        doc = pv.cid_json(checks, local)
        if guest_cid is not None:
            doc["guest_cid_free"] = guest_cid
        click.echo(json.dumps(doc, indent=2))
        return
    from rawlab.present.doctor import render

    render(checks, sys.stdout)
    if guest_cid is not None:
        click.echo(f"guest CID {guest_cid} is free on this host (claimed and released on "
                   "/dev/vhost-vsock)")


# --- listen --------------------------------------------------------------------------------


@vsock.command()
@click.argument("port")
@click.option("--type", "type_name", type=TYPES, default="stream", show_default=True)
@click.option("--echo", is_flag=True, help="Send back what arrives (SEQPACKET: same boundaries "
              "and MSG_EOR).")
@click.option("--cid", "cid_text", default="any", show_default=True,
              help="Bind to this CID (any, local = 1, or this machine's own).")
@click.option("--once", is_flag=True, help="Exit after the first connection (or datagram).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event (docs/json.md).")
@click.option("--raw", is_flag=True, help="Write received bytes to stdout as they are "
              "(socat-like); events go to stderr.")
def listen(port: str, type_name: str, echo: bool, cid_text: str, once: bool, as_json: bool,
           raw: bool) -> None:
    """Accept vsock connections on PORT and show peer CID:port, bytes and message boundaries.

    PORT is a number, `any` (the kernel picks; the first line says which), or
    unix:PATH_PORT to accept hybrid vsock connections a guest makes to host port
    PORT through a Firecracker / Cloud Hypervisor VMM. SEQPACKET shows one line
    per message with EOR when the sender set MSG_EOR. Connections are served one
    after another.
    """
    from rawlab.present import vsock as pv
    from rawlab.present.fmt import write_all
    from rawlab.sockets import hybrid
    from rawlab.sockets import vsock as vs

    listener, local, hyb = _listener(port, cid_text, type_name)
    events_out = sys.stderr if raw else sys.stdout
    try:
        with listener:
            for ev in vs.serve(listener, type_name, local, echo=echo, once=once,
                               peer_fallback=local):
                if raw and isinstance(ev, vs.Received):
                    write_all(sys.stdout.buffer, ev.data)
                    sys.stdout.buffer.flush()
                    continue
                line = json.dumps(pv.event_json(ev)) if as_json else pv.event_text(ev)
                events_out.write(line + "\n")
                events_out.flush()
    except OSError as exc:
        raise vs.vsock_error(exc, f"serve {local}", None, type_name) from None
    finally:
        if hyb is not None:
            hybrid.unlink(hyb)


# --- connect -------------------------------------------------------------------------------


def _chunks(send: str | None, file: BinaryIO | None) -> Iterator[bytes]:
    if send is not None:
        yield send.encode()
        return
    src = file if file is not None else sys.stdin.buffer
    read = getattr(src, "read1", src.read)
    while True:
        data = read(CHUNK)
        if not data:
            return
        yield data


def _open(target: str, type_name: str, timeout: float | None, buffer_size: int | None,
          to_host: bool) -> tuple[Callable[[], socket.socket], str]:
    """A function opening one connection to TARGET, and TARGET as shown."""
    from rawlab.sockets import hybrid
    from rawlab.sockets import vsock as vs

    if hybrid.is_hybrid(target):
        if type_name != "stream":
            raise click.BadParameter("hybrid vsock carries streams only", param_hint="--type")
        if to_host:
            raise click.BadParameter("--to-host is for AF_VSOCK addresses",
                                     param_hint="--to-host")
        try:
            haddr = hybrid.parse_connect(target)
        except ValueError as exc:
            raise _usage(exc, "TARGET") from None
        return (lambda: hybrid.connect(haddr, timeout=timeout)[0]), str(haddr)
    try:
        addr = vs.parse_addr(target, to_host=to_host)
    except ValueError as exc:
        raise _usage(exc, "TARGET") from None
    return (lambda: vs.connect(addr, type_name, timeout=timeout,
                               buffer_size=buffer_size)), str(addr)


COMMON = [
    click.option("--type", "type_name", type=TYPES, default="stream", show_default=True),
    click.option("--timeout", type=Seconds(0.001, lo_open=False), default=None,
                 help="Connect timeout in seconds (SO_VM_SOCKETS_CONNECT_TIMEOUT; kernel "
                      "default 2)."),
    click.option("--buffer-size", type=Size(), default=None,
                 help="SO_VM_SOCKETS_BUFFER_SIZE, e.g. 1M (raises BUFFER_MAX_SIZE as needed)."),
    click.option("--to-host", is_flag=True, help="Set VMADDR_FLAG_TO_HOST in svm_flags: route "
                 "through the host even for a CID > 2 (sibling VMs)."),
]


def common(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(COMMON):
        f = opt(f)
    return f


@vsock.command()
@click.argument("target")
@common
@click.option("--send", "send", default=None, help="Send this text (as is) instead of stdin.")
@click.option("--file", "file", type=click.File("rb"), default=None,
              help="Send this file instead of stdin.")
@click.option("--no-eor", is_flag=True, help="SEQPACKET: do not set MSG_EOR on messages.")
@click.option("-v", "--verbose", is_flag=True, help="Say on stderr when connected and what "
              "moved.")
def connect(target: str, type_name: str, timeout: float | None, buffer_size: int | None,
            to_host: bool, send: str | None, file: BinaryIO | None, no_eor: bool,
            verbose: bool) -> None:
    """Connect to TARGET (CID:PORT or unix:PATH:PORT), send stdin / --send / --file, print replies.

    Like socat: what arrives goes to stdout; after the input ends the write side
    is shut down and the command exits when the peer closes. SEQPACKET sends each
    read of the input as one message, with MSG_EOR.
    """
    from rawlab.sockets import vsock as vs

    if send is not None and file is not None:
        raise click.BadParameter("give --send or --file, not both", param_hint="--send")
    opener, shown = _open(target, type_name, timeout, buffer_size, to_host)
    t0 = time.perf_counter()
    sock = opener()
    took = time.perf_counter() - t0
    with sock:
        if verbose:
            extra = ""
            if sock.family == vs.AF_VSOCK:
                extra = f"; local {vs.VsockAddr(*sock.getsockname())}, buffer " \
                        f"{vs.get_buffer_size(sock)} B"
            click.echo(f"rawlab: connected to {shown} ({type_name}) in {took * 1e3:.2f} ms"
                       f"{extra}", err=True)

        def sink(data: bytes) -> None:
            from rawlab.present.fmt import write_all

            write_all(sys.stdout.buffer, data)
            sys.stdout.buffer.flush()

        try:
            stats = vs.pump(sock, type_name, _chunks(send, file), sink, eor=not no_eor)
        except OSError as exc:
            raise vs.vsock_error(exc, f"exchange data with {shown}", None, type_name) from None
    if verbose:
        click.echo(f"rawlab: sent {stats.sent} B in {stats.messages_sent} message(s), received "
                   f"{stats.received} B, {stats.seconds:.3f} s", err=True)


# --- bench ----------------------------------------------------------------------------------


class _Progress:
    """A progress line on stderr, at most 10 times a second, only on a terminal."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()
        self.last = 0.0
        self.shown = False

    def __call__(self, p: Any) -> None:
        now = time.monotonic()
        if not self.on or now - self.last < 0.1:
            return
        from rawlab.present.vsock import progress_text

        self.last = now
        self.shown = True
        sys.stderr.write("\r\033[K" + progress_text(p))
        sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


@vsock.command()
@click.argument("target")
@click.option("--type", "type_name", type=BENCH_TYPES, default="stream", show_default=True)
@click.option("--test", "tests", type=click.Choice(TESTS), multiple=True,
              help="Run only these (repeatable; default: all three).")
@click.option("--size", "sizes", default="4K,64K", show_default=True,
              help="Throughput message sizes, comma-separated.")
@click.option("--bytes", "total", type=Size(), default="64M", show_default=True,
              help="Bytes to send per throughput size.")
@click.option("--latency-size", "lat_sizes", default="1", show_default=True,
              help="Request sizes for round trips, comma-separated.")
@click.option("--response-size", type=Size(), default=None,
              help="Response size (default: the request size).")
@click.option("--count", default=10000, show_default=True, type=click.IntRange(min=1),
              help="Round trips per latency size.")
@click.option("--connects", default=200, show_default=True, type=click.IntRange(min=1),
              help="Connections for the connect time.")
@click.option("--timeout", type=Seconds(0.001, lo_open=False), default=None,
              help="Connect timeout in seconds.")
@click.option("--buffer-size", type=Size(), default=None,
              help="SO_VM_SOCKETS_BUFFER_SIZE of the client's sockets.")
@click.option("--to-host", is_flag=True, help="Set VMADDR_FLAG_TO_HOST.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (docs/json.md).")
def bench(target: str, type_name: str, tests: tuple[str, ...], sizes: str, total: int,
          lat_sizes: str, response_size: int | None, count: int, connects: int,
          timeout: float | None, buffer_size: int | None, to_host: bool,
          as_json: bool) -> None:
    """Measure throughput, round-trip latency and connect time against `bench-server`.

    Throughput counts bytes the server received and checksummed (CRC-32, sent
    back and compared), timed from the first send to the server's report, not
    write() time. Latency: p50/p99/p999 of request/response round trips.
    """
    from rawlab.present import vsock as pv
    from rawlab.sockets import vsock as vs
    from rawlab.sockets import vsockbench as vb

    try:
        msg_sizes = vb.parse_sizes(sizes)
        req_sizes = vb.parse_sizes(lat_sizes)
    except ValueError as exc:
        raise _usage(exc, "--size/--latency-size") from None
    opener, shown = _open(target, type_name, timeout, buffer_size, to_host)
    progress = _Progress()
    client = vb.Client(opener, type_name, progress)
    report = vb.BenchReport(shown, type_name)
    run = set(tests or TESTS)
    try:
        if "connect" in run:
            report.connect = client.connect_time(connects)
        if "latency" in run:
            for n in req_sizes:
                report.latency.append(client.latency(n, response_size or n, count))
        if "throughput" in run:
            for n in msg_sizes:
                report.throughput.append(client.throughput(n, max(total or n, n)))
    except OSError as exc:
        raise vs.vsock_error(exc, f"bench {shown}", None, type_name) from None
    finally:
        progress.done()
    click.echo(json.dumps(pv.bench_json(report), indent=2) if as_json else pv.bench_text(report))


@vsock.command("bench-server")
@click.argument("port")
@click.option("--type", "type_name", type=BENCH_TYPES, default="stream", show_default=True)
@click.option("--cid", "cid_text", default="any", show_default=True, help="Bind to this CID.")
@click.option("--once", is_flag=True, help="Exit after one connection.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per session.")
def bench_server(port: str, type_name: str, cid_text: str, once: bool, as_json: bool) -> None:
    """Serve `rawlab vsock bench` on PORT (or unix:PATH_PORT): one line per session."""
    from rawlab.present import vsock as pv
    from rawlab.sockets import hybrid
    from rawlab.sockets import vsock as vs
    from rawlab.sockets import vsockbench as vb

    listener, local, hyb = _listener(port, cid_text, type_name)
    try:
        with listener:
            for ev in vb.serve(listener, type_name, local, once=once, peer_fallback=local):
                if as_json:
                    line = json.dumps(pv.session_json(ev))
                elif isinstance(ev, vs.Listening):
                    line = pv.event_text(ev)
                else:
                    line = pv.session_text(ev)
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
    except OSError as exc:
        raise vs.vsock_error(exc, f"serve {local}", None, type_name) from None
    finally:
        if hyb is not None:
            hybrid.unlink(hyb)
