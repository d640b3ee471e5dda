"""Output faults are expected failures: one line, exit 7, and nothing already written lost.

The real command runs (a subprocess: stdout must be a real file descriptor for
`> /dev/full`). A full file system is in tests/privileged/test_output_full.py.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from rawlab.errors import Exit
from rawlab.pcap.reader import open_file
from rawlab.pcap.writer import PcapngWriter
from rawlab.records import LinkType

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
CAP = Path(__file__).resolve().parents[2] / "captures" / "tcp-clean.pcap"


def rawlab(*args: str, stdout: int | None = subprocess.PIPE, **kw: object
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RAWLAB, *args], stdout=stdout, stderr=subprocess.PIPE, text=True,
                          timeout=60, check=False, **kw)  # type: ignore[call-overload]


def one_error_line(p: subprocess.CompletedProcess[str]) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr
    return lines[0]


def test_write_to_dev_full_is_an_output_error() -> None:
    p = rawlab("read", str(CAP), "-q", "-w", "/dev/full")
    assert p.returncode == Exit.OUTPUT == 7
    assert one_error_line(p) == ("rawlab: error: write /dev/full failed: no space left on "
                                 "device (ENOSPC); fix: free some space, or write elsewhere")


def test_stdout_to_dev_full_is_an_output_error() -> None:
    with open("/dev/full", "w") as full:
        p = rawlab("read", str(CAP), stdout=full.fileno())
    assert p.returncode == 7
    assert "write to standard output failed: no space left on device (ENOSPC)" in \
        one_error_line(p)


@pytest.mark.parametrize("path, why", [
    ("/nonexistent/dir/x.pcapng", "no such directory (ENOENT)"),
    ("/proc/version", "(EIO)"),
])
def test_unwritable_output_fails_before_reading(path: str, why: str) -> None:
    p = rawlab("read", str(CAP), "-w", path, "-q")
    assert p.returncode == 7
    assert why in one_error_line(p)


def test_the_input_is_never_the_output(tmp_path: Path) -> None:
    f = tmp_path / "in.pcap"
    f.write_bytes(CAP.read_bytes())
    p = rawlab("read", str(f), "-w", str(f), "-q")
    assert p.returncode == Exit.USAGE
    assert "is the file being read" in one_error_line(p)
    assert f.read_bytes() == CAP.read_bytes()  # untouched
    link = tmp_path / "link.pcap"
    link.symlink_to(f)
    assert rawlab("read", str(f), "-w", str(link), "-q").returncode == Exit.USAGE
    assert f.read_bytes() == CAP.read_bytes()


def test_w_dash_writes_the_capture_to_stdout(tmp_path: Path) -> None:
    p = subprocess.run([RAWLAB, "read", str(CAP), "-w", "-", "-q"], capture_output=True,
                       timeout=60, check=True)
    out = tmp_path / "piped.pcapng"
    out.write_bytes(p.stdout)
    with open_file(out) as cap, open_file(CAP) as orig:
        got = [(r.ts_ns, r.data) for r in cap]
        want = [(r.ts_ns, r.data) for r in orig]
    assert got == want and len(got) == 32
    tshark = subprocess.run(["tshark", "-r", "-", "-T", "fields", "-e", "frame.number"],
                            input=p.stdout, capture_output=True, timeout=60, check=True)
    assert tshark.stdout.split() == [str(i).encode() for i in range(1, 33)]


def test_w_dash_refuses_to_mix_text_and_capture() -> None:
    p = rawlab("read", str(CAP), "-w", "-")
    assert p.returncode == Exit.USAGE


def test_plot_to_an_unwritable_place() -> None:
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    p = rawlab("tcp", str(CAP), "--plot", "/proc/nope.png")
    assert p.returncode == 7
    assert one_error_line(p).startswith("rawlab: error: write /proc/nope.png failed:")


class _FullAfter:
    """A raw file that accepts `room` bytes, then a short write, then ENOSPC (a disk
    filling up between two writes, as the kernel reports it)."""

    def __init__(self, path: Path, room: int) -> None:
        self.f = open(path, "wb", buffering=0)  # noqa: SIM115
        self.room = room
        self.name = str(path)

    def write(self, data: memoryview) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = self.f.write(data[: self.room])
        self.room -= n
        return n

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self.f.fileno()

    def close(self) -> None:
        self.f.close()


def test_a_full_disk_mid_block_keeps_every_whole_block(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's own file, cut short by ENOSPC in the middle of a buffered batch: it is
    truncated back to the last whole block and every packet before it reads."""
    import rawlab.pcap.writer as wmod

    path = tmp_path / "x.pcapng"
    real_open = open

    def fake_open(p: object, mode: str = "r", buffering: int = -1, **kw: object) -> object:
        if str(p) == str(path) and "w" in mode:
            return _FullAfter(path, 5000)
        return real_open(p, mode, buffering, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(wmod, "open", fake_open, raising=False)
    w = PcapngWriter(path, buffer_bytes=1 << 16)
    i = w.add_interface(LinkType.ETHERNET)
    with pytest.raises(Exception) as ei:
        for n in range(200):
            w.write(i, n * 1000, bytes(range(100)))
        w.flush()
    assert ei.value.code == Exit.OUTPUT  # type: ignore[attr-defined]
    assert "keeps its first" in str(ei.value)
    w.close()  # closing a failed writer writes nothing more and does not raise
    size = path.stat().st_size
    assert 0 < size <= 5000 and size % 4 == 0
    with open_file(path) as cap:
        recs = list(cap)
    assert recs and all(r.data == bytes(range(100)) for r in recs)
    assert [r.ts_ns for r in recs] == [n * 1000 for n in range(len(recs))]
