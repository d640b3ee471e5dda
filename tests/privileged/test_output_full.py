"""A file system that fills up under `-w`: exit 7, one line, the file cut back to its last
whole block so tshark and rawlab read every record in it (a real tmpfs of 1 MiB)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pairs import pair

from rawlab.lab.netns import Lab
from rawlab.pcap.reader import open_file

RAWLAB = str(Path(sys.executable).with_name("rawlab"))


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _big_capture(path: Path, n: int = 6000) -> None:
    from rawlab.pcap.writer import PcapWriter
    from rawlab.records import LinkType

    eth = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    with PcapWriter(path, LinkType.ETHERNET) as w:
        for i in range(n):
            w.write(1_700_000_000_000_000_000 + i * 1000, eth + bytes(20) + i.to_bytes(4, "big")
                    + bytes(300))


def _tshark_frames(path: Path) -> tuple[int, str]:
    p = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number"],
                       capture_output=True, text=True, timeout=120, check=False)
    return len(p.stdout.split()), p.stderr


@pytest.mark.parametrize("fmt", [[], ["--pcap"]])
def test_read_into_a_full_fs(tmp_path: Path, small_fs: Path, fmt: list[str]) -> None:
    src = tmp_path / "big.pcap"
    _big_capture(src)
    out = small_fs / "x.out"
    p = subprocess.run([RAWLAB, "read", str(src), "-q", "-w", str(out), *fmt],
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 7, p.stderr
    assert p.stderr.count("\n") == 1 and "(ENOSPC)" in p.stderr and "Traceback" not in p.stderr
    assert f"{out} keeps its first" in p.stderr
    with open_file(out) as cap:
        recs = list(cap)  # no "truncated" error: the file ends on a block boundary
    assert 2000 < len(recs) < 6000
    assert [int.from_bytes(r.data[34:38], "big") for r in recs] == list(range(len(recs)))
    frames, err = _tshark_frames(out)
    assert frames == len(recs) and "cut short" not in err, err


def test_live_capture_into_a_full_fs(small_fs: Path) -> None:
    out = small_fs / "live.pcapng"
    with Lab() as lab:
        a, b = pair(lab)
        cap = subprocess.Popen([RAWLAB, "capture", "-i", "veth1", "--netns", b.name, "-w",
                                str(out), "--duration", "20", "udp port 9"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        a.run(["python3", "-c", "import socket,time\n"
               "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
               "for i in range(20000):\n"
               "    s.sendto(i.to_bytes(4,'big')+bytes(200),('10.0.0.2',9))\n"
               "    time.sleep(0.00005) if i % 100 == 0 else None\n"], check=True)
        _o, err = cap.communicate(timeout=60)
    assert cap.returncode == 7, err
    assert "(ENOSPC)" in err and "Traceback" not in err
    with open_file(out) as c:
        recs = list(c)
    assert len(recs) > 1000
    seq = [int.from_bytes(r.data[42:46], "big") for r in recs]
    assert seq == sorted(seq)
    frames, terr = _tshark_frames(out)
    assert frames == len(recs) and "cut short" not in terr, terr
