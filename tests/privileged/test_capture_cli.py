"""`rawlab capture` end to end, in namespaces: files tshark reads, SIGKILL leaves a
valid file, the JSON summary adds up, -G rotates, bad input is one line."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _background import started_capture
from rawlab.lab import traffic
from rawlab.lab.netns import Lab

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


@pytest.fixture
def pair(lab: Lab):
    a, b = lab.netns("a"), lab.netns("b")
    lab.veth(a, b, "10.66.0.1/24", "10.66.0.2/24", offloads=False)
    return a, b


def start(ns, *args: str) -> subprocess.Popen[str]:
    """The capture, once its ring is bound (before the first packet we send)."""
    return started_capture(ns, [RAWLAB, "capture", "-i", "veth0", "--netns", ns.name, *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def blast(src, dst_ip: str, n: int, port: int = 9000) -> None:
    with src.entered():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(n):
            s.sendto(i.to_bytes(4, "big") * 4, (dst_ip, port))
    finally:
        s.close()


def test_write_pcapng_tshark_reads_the_same_frames(pair, tmp_path: Path) -> None:
    a, _ = pair
    out = tmp_path / "c.pcapng"
    p = start(a, "-w", str(out), "udp port 9000")
    blast(a, "10.66.0.2", 500)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert "500 packets captured" in err and "0 packets dropped by kernel" in err
    frames = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.len",
                             "-e", "udp.dstport", "-e", "frame.interface_name"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(frames) == 500
    assert set(frames) == {"58\t9000\tveth0"}
    recs = [json.loads(x) for x in subprocess.run([RAWLAB, "read", str(out), "--json"],
            capture_output=True, text=True, check=True).stdout.splitlines()]
    payloads = [r["udp"]["sport"] for r in recs]
    assert len(payloads) == 500 and all(r["interface"] == "veth0" for r in recs)
    assert all(r["direction"] == "out" for r in recs)


def test_sigkill_mid_burst_leaves_a_valid_file(pair, tmp_path: Path) -> None:
    a, _ = pair
    out = tmp_path / "k.pcapng"
    p = start(a, "-w", str(out), "udp port 9000")
    blast(a, "10.66.0.2", 20000)
    # past the 100 ms block timeout: blocks retired and written (on a loaded machine the
    # writer may take longer than that: wait until the file has stopped growing)
    size, end = -1, time.monotonic() + 20
    while not out.exists() and time.monotonic() < end:  # (the file is made after the ring)
        time.sleep(0.05)
    while size != out.stat().st_size and time.monotonic() < end:
        size = out.stat().st_size
        time.sleep(0.4)
    p.kill()
    p.wait()
    res = subprocess.run([RAWLAB, "read", str(out), "--stats"], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stderr  # no torn record at the end
    n = int(res.stdout.split("frames:")[1].split()[0])
    assert n == 20000  # every block the kernel retired before the kill is in the file
    t = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.number"],
                       capture_output=True, text=True, check=False)
    assert t.returncode == 0 and len(t.stdout.split()) == n


def test_json_packets_then_a_summary_that_adds_up(pair) -> None:
    a, _ = pair
    p = start(a, "--json", "-c", "5", "icmp")
    traffic.ping(a, "10.66.0.2", 3)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    pkts, summary = lines[:-1], lines[-1]["summary"]
    assert len(pkts) == 5
    assert [x["icmp"]["type"] for x in pkts] == [8, 0, 8, 0, 8]
    assert all(x["icmp"]["checksum_status"] == "good" for x in pkts)
    assert summary["captured"] == 5 and summary["dropped"] == 0
    assert summary["received"] >= 5 and summary["interface"] == "veth0"
    assert summary["filter"] == "icmp"


def test_rotation_makes_one_file_per_period(pair, tmp_path: Path) -> None:
    a, _ = pair
    pattern = tmp_path / "rot-%H%M%S.pcapng"
    p = start(a, "-w", str(pattern), "-G", "1", "udp port 9000")
    for _ in range(3):
        blast(a, "10.66.0.2", 10)
        time.sleep(1.1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    files = sorted(tmp_path.glob("rot-*.pcapng"))
    assert len(files) >= 3
    total = 0
    for f in files:
        r = subprocess.run([RAWLAB, "read", str(f), "--json"], capture_output=True, text=True,
                           check=True)
        total += len(r.stdout.splitlines())
    assert total == 30


def test_unknown_interface_lists_the_real_ones(pair) -> None:
    a, _ = pair
    r = subprocess.run([RAWLAB, "capture", "-i", "nope0", "--netns", a.name, "-c", "1"],
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "nope0" in r.stderr and "veth0" in r.stderr and "lo" in r.stderr


def test_bad_filter_is_libpcaps_message(pair) -> None:
    a, _ = pair
    r = subprocess.run([RAWLAB, "capture", "-i", "veth0", "--netns", a.name, "-f", "tcp prt 1"],
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 2 and "syntax error" in r.stderr and "Traceback" not in r.stderr


def test_without_cap_net_raw_the_doctors_fix(pair) -> None:
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        RAWLAB, "capture", "-i", "lo", "-c", "1"],
                       capture_output=True, text=True, timeout=30, cwd="/", check=False)
    assert r.returncode == 3
    assert "needs CAP_NET_RAW" in r.stderr and "privileges.md" in r.stderr
    assert r.stderr.count("\n") == 1


def test_any_names_each_interface(lab: Lab, tmp_path: Path) -> None:
    """`-i any` prints the packet's own interface (tcpdump's `lo In`), and -w keeps one IDB
    per interface met, named, so tshark shows `lo` and `veth0` (not `any`)."""
    a, b = lab.netns("a"), lab.netns("b")
    lab.veth(a, b, "10.66.0.1/24", "10.66.0.2/24", offloads=False)
    p = started_capture(a, [RAWLAB, "capture", "--netns", a.name, "-c", "4", "icmp"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    a.run(["ping", "-c", "1", "-W", "2", "127.0.0.1"], check=True)
    a.run(["ping", "-c", "1", "-W", "2", "10.66.0.2"], check=True)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 4
    assert [ln.split()[1:3] for ln in lines] == [["lo", "In"], ["lo", "In"],
                                                 ["veth0", "Out"], ["veth0", "In"]]
    assert all(" any " not in ln for ln in lines)
    f = tmp_path / "any.pcapng"
    p = started_capture(a, [RAWLAB, "capture", "--netns", a.name, "-c", "4", "-w", str(f),
                            "icmp"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    a.run(["ping", "-c", "1", "-W", "2", "127.0.0.1"], check=True)
    a.run(["ping", "-c", "1", "-W", "2", "10.66.0.2"], check=True)
    _, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    names = subprocess.run(["tshark", "-r", str(f), "-T", "fields", "-e",
                            "frame.interface_name", "-e", "sll.ifindex"], capture_output=True,
                           text=True, check=True).stdout.split("\n")
    assert [n.split("\t")[0] for n in names if n] == ["lo", "lo", "veth0", "veth0"]


def test_size_rotation_ring_and_drop_privileges(pair, open_tmp: Path) -> None:
    """-C 1 -W 3: a ring of three ~1 MB files out0 out1 out2 (tcpdump's names), each a valid
    capture; -Z nobody: the files are created by nobody after the ring is open."""
    a, _ = pair
    d = open_tmp / "ring"
    d.mkdir()
    d.chmod(0o777)
    p = start(a, "-w", str(d / "out"), "-C", "1", "-W", "3", "-Z", "nobody", "-B", "4096",
              "udp port 9000")
    with a.entered():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(12000):  # ~4.3 MB of 358-byte frames: more than three files' worth
            s.sendto(i.to_bytes(4, "big") + bytes(312), ("10.66.0.2", 9000))
            if i % 500 == 0:
                time.sleep(0.01)
    finally:
        s.close()
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    names = sorted(x.name for x in d.iterdir())
    assert names == ["out0", "out1", "out2"], names
    from rawlab.pcap.reader import open_file

    seqs = []
    for name in names:
        f = d / name
        assert f.stat().st_uid == 65534  # made by nobody (-Z)
        assert f.stat().st_size <= 1_000_000 + 512  # passed by one packet at most
        with open_file(f) as cap:
            seqs.append([int.from_bytes(r.data[42:46], "big") for r in cap])
    # every file but the one being written when the capture stopped is full
    assert sum((d / n).stat().st_size < 1_000_000 for n in names) == 1
    # the ring kept the newest packets: together they end with the last one sent
    assert max(max(x) for x in seqs) == 11999
    assert all(x == sorted(x) and x for x in seqs)


def test_time_rotation_stops_after_w_files(pair, tmp_path: Path) -> None:
    a, _ = pair
    p = start(a, "-w", str(tmp_path / "t-%s.pcapng"), "-G", "1", "-W", "2", "udp port 9000")
    for _ in range(40):
        blast(a, "10.66.0.2", 5)
        time.sleep(0.1)
        if p.poll() is not None:
            break
    _, err = p.communicate(timeout=20)
    assert p.returncode == 0, err  # it stopped by itself after two files, as tcpdump
    assert len(list(tmp_path.glob("t-*.pcapng"))) == 2


def test_list_interfaces(pair) -> None:
    a, _ = pair
    out = subprocess.run([RAWLAB, "capture", "-D", "--netns", a.name], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out[0] == "1.any (Pseudo-device that captures on all interfaces) [Up, Running]"
    assert "2.lo [Up, Running, Loopback]" in out
    assert any(x.endswith(".veth0 [Up, Running]") for x in out)


@pytest.mark.parametrize("how", ["sigint", "sigterm", "duration"])
def test_a_clean_stop_loses_nothing(pair, how: str) -> None:
    """Packets in the block the kernel is still filling when the capture stops (it hands a
    partly filled block over only at its 100 ms timeout) are captured, not lost: the
    summary adds up (received = dropped + captured + skipped + pending, pending 0)."""
    a, _ = pair
    args = ["--json", "udp port 9000"] + (["--duration", "1.2"] if how == "duration" else [])
    p = start(a, *args)
    blast(a, "10.66.0.2", 300)
    if how != "duration":
        p.send_signal(signal.SIGINT if how == "sigint" else signal.SIGTERM)  # at once
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    lines = out.splitlines()
    summary = json.loads(lines[-1])["summary"]
    assert len(lines) - 1 == summary["captured"] == 300, summary
    assert summary["received"] == 300 and summary["pending"] == 0
    assert "300 packets captured" in err and "arrived after the stop" not in err


@pytest.mark.parametrize("iface", ["veth0", "any"])
def test_lines_by_ring_block_are_the_per_packet_lines(pair, tmp_path: Path,
                                                      iface: str) -> None:
    """Lines to a file or pipe are rendered a ring block at a time through batches (the
    columnar path); they are the lines `rawlab read` prints of the same packets written
    by a second capture (held byte for byte to the per-packet path by
    tests/unit/test_columns.py), time stamps aside (two sockets, two clocks' reads).
    The lines go to a pipe nobody reads until after the stop: the stop's signal
    interrupts a write to the full pipe (with PYTHONUNBUFFERED the write is the raw one
    and takes a part only: present.fmt.write_all writes the rest)."""
    a, b = pair
    out = tmp_path / "same.pcapng"
    cmd = [RAWLAB, "capture", "-i", iface, "--netns", a.name]
    flt = ["tcp port 9100 or udp port 9000"]
    lines_p = started_capture(a, [*cmd, *flt], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    file_p = started_capture(a, [*cmd, "-w", str(out), *flt], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    with b.entered():
        srv = socket.socket()
        srv.bind(("10.66.0.2", 9100))
        srv.listen()
    with a.entered():
        cli = socket.create_connection(("10.66.0.2", 9100))
    conn, _ = srv.accept()
    for _ in range(50):
        cli.sendall(b"x" * 3000)
        conn.recv(65536)
    cli.close()
    conn.close()
    srv.close()
    blast(a, "10.66.0.2", 300)
    time.sleep(0.5)
    for p in (lines_p, file_p):
        p.send_signal(signal.SIGINT)
    got, err = lines_p.communicate(timeout=20)
    _, err2 = file_p.communicate(timeout=20)
    assert lines_p.returncode == 0 and file_p.returncode == 0, err + err2
    want = subprocess.run([RAWLAB, "read", str(out)], capture_output=True, text=True,
                          check=True).stdout
    gl, wl = got.splitlines(), want.splitlines()
    assert len(gl) > 300 and len(gl) == len(wl)
    assert [x.split(" ", 1)[1] for x in gl] == [x.split(" ", 1)[1] for x in wl]
