"""hostguest tier: real host↔guest vsock between this (outer) guest and a nested one.

Runs inside the tier's outer virtme-ng guest (tests/conftest.py), which has
vhost_vsock and vsockmon loaded: CID 2 here is this guest itself.  The module
boots ONE inner guest with `rawlab lab vsock-pair --cid 7` (a nested boot costs
~20 s with the outer guest's emulated SVM, minutes without), which runs
inner_pair.py: rawlab listeners (stream, seqpacket) and rawlab clients that
connect to this guest's listeners.  The tests then connect to the inner
listeners, check every byte both ways, and read the vsockmon capture taken
here during the whole session with `rawlab read` and tshark.

The tests share the pair and run in file order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rawlab import cli

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
DRIVER = str(Path(__file__).with_name("inner_pair.py"))
CID = 7
OUT_STREAM, OUT_SEQ, IN_STREAM, IN_SEQ = 5100, 5101, 5102, 5103
TO_OUTER = {"stream": "inner->outer stream: 0123456789 abcdef",
            "seqpacket": "inner->outer seqpacket: one message"}
TO_INNER = {"stream": "outer->inner stream: the quick brown fox",
            "seqpacket": "outer->inner seqpacket: one message back"}
PCAP = Path("/tmp/rawlab-hostguest-vsock.pcapng")
MON = "vsockmon0"
BOOT_WAIT = 240.0  # inner guest boot + its one Python start-up (~1 min with KVM, more with TCG)
WAIT = 60.0
T0 = time.monotonic()


def log(what: str) -> None:
    """Progress with a timestamp (seen with -s; the tier's guest keeps it otherwise)."""
    # the real stdout: CliRunner swaps sys.stdout while a test runs a command
    out = sys.__stdout__
    if out is not None:
        out.write(f"[hostguest {time.monotonic() - T0:6.1f} s] {what}\n")
        out.flush()

class Tail:
    """A background process whose stdout+stderr lines are kept as they arrive."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None,
                 show: bool = False) -> None:
        self.argv = argv
        self.show = show
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
            if self.show:
                log(f"| {line.rstrip()}")
        with self.cond:
            self.cond.notify_all()

    def text(self) -> str:
        with self.cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    break
                self.cond.wait(min(left, 1.0))
        raise AssertionError(f"{self.argv[1:4]}: no line matching {pattern!r} in {timeout:g} s "
                             f"(exit {self.proc.poll()}); output:\n{self.text()[-3000:]}")

    def finish(self, timeout: float = WAIT) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.argv[1:4]} did not end in {timeout:g} s; output:\n"
                                 f"{self.text()[-3000:]}") from None
        self.thread.join(timeout=10)
        return rc

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(timeout=10)


def json_events(tail: Tail, prefix: str = "") -> list[dict[str, Any]]:
    out = []
    for line in tail.text().splitlines():
        if line.startswith(prefix) and line[len(prefix):].lstrip().startswith("{"):
            out.append(json.loads(line[len(prefix):]))
    return out


def packet_sockets() -> int:
    with open("/proc/net/packet") as f:
        return len(f.readlines())


@dataclass
class Pair:
    guest: Tail  # `rawlab lab vsock-pair` (its stdout carries the inner console)
    listeners: dict[str, Tail]  # this guest's listeners, by socket type
    capture: Tail
    accel: str
    t_ready: float  # seconds from starting the inner guest to INNER-READY


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    # (a skip here, not a skipif mark: marks are evaluated again on the host)
    if not os.path.exists("/dev/vhost-vsock"):
        pytest.skip("no /dev/vhost-vsock (the tier's guest loads vhost_vsock)")
    PCAP.unlink(missing_ok=True)
    subprocess.run(["ip", "link", "del", MON], capture_output=True, check=False)
    subprocess.run(["ip", "link", "add", MON, "type", "vsockmon"], check=True)
    subprocess.run(["ip", "link", "set", MON, "up"], check=True)
    before = packet_sockets()
    procs: list[Tail] = []
    try:
        capture = Tail([RAWLAB, "capture", "-i", MON, "-w", str(PCAP)])
        procs.append(capture)
        listeners = {t: Tail([RAWLAB, "vsock", "listen", str(port), "--type", t, "--once",
                              "--json"])
                     for t, port in (("stream", OUT_STREAM), ("seqpacket", OUT_SEQ))}
        procs += listeners.values()
        log("capture and listeners started")
        for lst in listeners.values():
            lst.wait_for(r'"event": "listening"')
        log("listeners listen")
        deadline = time.monotonic() + WAIT
        while packet_sockets() <= before:  # the capture's AF_PACKET socket is open
            assert capture.proc.poll() is None, capture.text()
            assert time.monotonic() < deadline, "rawlab capture opened no packet socket"
            time.sleep(0.2)
        time.sleep(1.0)  # socket open → ring and filter attached
        log("capture runs")

        # This guest runs under software emulation with SVM in its CPU model, so
        # KVM here runs the inner guest (vm.kvm_usable's 20 s probe is too short
        # for a nested boot, hence the override).
        accel = "kvm" if os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg"
        env = dict(os.environ, RAWLAB_VM_ACCEL=accel)
        specs = [f"listen:stream:{IN_STREAM}", f"listen:seqpacket:{IN_SEQ}",
                 f"connect:stream:2:{OUT_STREAM}:{TO_OUTER['stream']}",
                 f"connect:seqpacket:2:{OUT_SEQ}:{TO_OUTER['seqpacket']}"]
        t0 = time.monotonic()
        guest = Tail([RAWLAB, "lab", "vsock-pair", "--cid", str(CID), "--memory", "512M",
                      "--timeout", "600", "--", sys.executable, DRIVER, *specs], env=env, show=True)
        procs.append(guest)
        guest.wait_for(r"^INNER-READY", BOOT_WAIT)
        log(f"inner guest ready ({accel}) after {time.monotonic() - t0:.1f} s")
        yield Pair(guest, listeners, capture, accel, time.monotonic() - t0)
    finally:
        for p in reversed(procs):
            p.stop()
        subprocess.run(["ip", "link", "del", MON], capture_output=True, check=False)


# ------------------------------------------------------------ inner → outer


def check_to_host(pair: Pair, type_name: str) -> None:
    """The inner guest's `rawlab vsock connect 2:PORT` reached this guest's listener."""
    lst = pair.listeners[type_name]
    assert lst.finish() == 0, lst.text()
    events = json_events(lst)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "listening" and "accepted" in kinds and kinds[-1] == "closed", events
    accepted = next(e for e in events if e["event"] == "accepted")
    assert accepted["peer"]["cid"] == CID and accepted["type"] == type_name
    data = b"".join(bytes.fromhex(e["head_hex"]) for e in events if e["event"] == "data")
    want = TO_OUTER[type_name].encode()
    assert data == want
    closed = events[-1]
    assert closed["bytes_in"] == len(want) and closed["peer"]["cid"] == CID
    if type_name == "seqpacket":
        msgs = [e for e in events if e["event"] == "data"]
        assert len(msgs) == 1 and msgs[0]["eor"] is True, msgs
    name = f"connect-{type_name}-2:{OUT_STREAM if type_name == 'stream' else OUT_SEQ}"
    pair.guest.wait_for(rf"^{re.escape(name)}: exit 0$")


# ------------------------------------------------------------ a CID is unique


def test_to_host_stream(pair: Pair) -> None:
    check_to_host(pair, "stream")


def test_to_host_seqpacket(pair: Pair) -> None:
    check_to_host(pair, "seqpacket")


# (short test names: tests/conftest.py passes every node id on the outer guest's
# kernel command line, which the kernel cuts at 2048 bytes)


def test_taken_cid(pair: Pair) -> None:
    from rawlab.errors import Exit, RawlabError
    from rawlab.lab import nested

    assert pair.guest.proc.poll() is None, "the inner guest should still run"
    g = nested.start_guest(CID, "true", accel=pair.accel, memory="128M")
    with pytest.raises(RawlabError, match="already taken") as info:
        g.wait(60)
    assert info.value.code == Exit.UNSUPPORTED


# ------------------------------------------------------------ outer → inner


def connect(args: list[str]) -> Result:
    """`rawlab ARGS` in-process (CliRunner), failing after WAIT s: the client waits for
    the peer to close, and a wedged peer must not hang the tier."""
    box: list[Result] = []
    t = threading.Thread(target=lambda: box.append(CliRunner().invoke(cli.main, args)),
                         daemon=True)
    t.start()
    t.join(WAIT)
    assert box, f"rawlab {' '.join(args)} did not end in {WAIT:g} s"
    return box[0]


def check_to_guest(pair: Pair, type_name: str) -> None:
    """`rawlab vsock connect 7:PORT` here reached the inner guest's echo listener."""
    port = IN_STREAM if type_name == "stream" else IN_SEQ
    want = TO_INNER[type_name]
    res = None
    for _ in range(5):  # INNER-READY means listening; retry only a lost race
        res = connect(["vsock", "connect", f"{CID}:{port}", "--type", type_name, "--send",
                       want, "--timeout", "20"])
        if res.exit_code == 0:
            break
        time.sleep(2)
    assert res is not None and res.exit_code == 0, res.output if res else None
    assert res.output == want  # echoed back by the inner listener, byte for byte
    name = f"listen-{type_name}-{port}"
    pair.guest.wait_for(rf"^{name}: exit 0$")
    events = json_events(pair.guest, f"{name}|")
    accepted = next(e for e in events if e["event"] == "accepted")
    assert accepted["peer"]["cid"] == 2 and accepted["type"] == type_name
    data = [e for e in events if e["event"] == "data"]
    assert b"".join(bytes.fromhex(e["head_hex"]) for e in data) == want.encode()
    assert all(e["echoed"] for e in data)
    if type_name == "seqpacket":
        assert len(data) == 1 and data[0]["eor"] is True, data


def test_to_guest_stream(pair: Pair) -> None:
    check_to_guest(pair, "stream")


def test_to_guest_seqpacket(pair: Pair) -> None:
    check_to_guest(pair, "seqpacket")


def test_pair_exit(pair: Pair) -> None:
    """`rawlab lab vsock-pair` says how to reach the guest and exits with its status."""
    rc = pair.guest.finish(WAIT)
    text = pair.guest.text()
    assert rc == 0, text[-3000:]
    assert f"rawlab: guest CID {CID} booting" in text
    assert f"rawlab vsock connect {CID}:PORT" in text
    assert re.search(rf"rawlab: guest CID {CID} exited 0 after [\d.]+ s \({pair.accel}\)", text)
    log(f"inner guest ({pair.accel}): ready after {pair.t_ready:.0f} s, done after "
        f"{time.monotonic() - T0:.0f} s")


# ------------------------------------------------------------ vsockmon capture


def test_vsockmon(pair: Pair) -> None:
    """The vsockmon capture here saw all four sessions (rawlab read --json, tshark)."""
    time.sleep(1.0)  # let the last RST/SHUTDOWN records reach the ring
    pair.capture.stop(signal.SIGTERM)
    assert pair.capture.proc.returncode == 0, pair.capture.text()
    out = subprocess.run([RAWLAB, "read", str(PCAP), "--json"], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    recs = [json.loads(ln) for ln in out.stdout.splitlines() if ln.strip()]
    vs = [r["vsock"] for r in recs if "vsock" in r]
    assert vs, f"no vsock records in {len(recs)} record(s)"

    def session(src: int, dst: int, port: int, vtype: int) -> list[dict[str, Any]]:
        return [v for v in vs
                if (v["src_cid"], v["dst_cid"], v["dst_port"]) == (src, dst, port)
                or (v["src_cid"], v["dst_cid"], v["src_port"]) == (dst, src, port)
                if v.get("virtio") and v["virtio"]["type"] == vtype]

    for src, dst, port, vtype, text in (
        (CID, 2, OUT_STREAM, 1, TO_OUTER["stream"]),
        (CID, 2, OUT_SEQ, 2, TO_OUTER["seqpacket"]),
        (2, CID, IN_STREAM, 1, TO_INNER["stream"]),
        (2, CID, IN_SEQ, 2, TO_INNER["seqpacket"]),
    ):
        s = session(src, dst, port, vtype)
        ops = {v["virtio"]["op"] for v in s}
        assert {1, 2, 5} <= ops, (src, dst, port, ops)  # request, response, rw
        rw = [v["virtio"]["len"] for v in s
              if v["virtio"]["op"] == 5 and v["src_cid"] == src]
        assert len(text) in rw, (port, rw)

    if shutil.which("tshark"):
        t = subprocess.run(["tshark", "-r", str(PCAP), "-T", "fields", "-e", "vsock.src_cid",
                            "-e", "vsock.dst_cid", "-e", "vsock.dst_port"],
                           capture_output=True, text=True, check=False)
        assert t.returncode == 0, t.stderr
        rows = {tuple(ln.split("\t")) for ln in t.stdout.splitlines()}
        assert (str(CID), "2", str(OUT_STREAM)) in rows, sorted(rows)[:10]
        assert ("2", str(CID), str(IN_STREAM)) in rows, sorted(rows)[:10]
        assert len(t.stdout.splitlines()) == len(recs)
