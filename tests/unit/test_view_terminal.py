"""`rawlab view` in a real terminal (tmux): the first screen, and a clean exit on q and on
SIGTERM that leaves the terminal as it was (the shell's screen back, its modes restored)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.unit,
              pytest.mark.skipif(shutil.which("tmux") is None,
                                 reason="tmux is not installed (./setup.sh --test installs it)")]

ROOT = Path(__file__).resolve().parents[2]
RAWLAB = Path(sys.executable).parent / "rawlab"


SOCKET = f"rawlab-test-{os.getpid()}"  # a tmux server of our own: no one else's sessions
TMUX = ["tmux", "-L", SOCKET]


@pytest.fixture(scope="module", autouse=True)
def own_server() -> Iterator[None]:
    """Our tmux server goes at the end, and its socket file with it."""
    yield
    subprocess.run([*TMUX, "kill-server"], check=False, capture_output=True)
    sock = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / SOCKET
    sock.unlink(missing_ok=True)


def pane(name: str) -> str:
    return subprocess.run([*TMUX, "capture-pane", "-p", "-t", name], capture_output=True,
                          text=True, check=True).stdout


def wait_for(name: str, test: Callable[[str], bool], timeout: float = 30) -> str:
    end = time.monotonic() + timeout
    while True:
        text = pane(name)
        if test(text):
            return text
        if time.monotonic() > end:
            raise AssertionError(f"timed out; the screen was:\n{text}")
        time.sleep(0.05)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start a command in a 120x36 tmux session, after a marker line and the terminal's
    modes saved; it prints its exit code and the modes after it."""
    name = f"rawlab-view-{uuid.uuid4().hex[:8]}"

    def start(cmd: str) -> str:
        modes = "stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\?\\(icanon\\|echo\\|isig\\)'"
        script = (f"{modes} > {tmp_path}/before; echo BEFORE-MARK; {cmd}; echo EXIT=$?; "
                  f"{modes} > {tmp_path}/after; sleep 60")
        for attempt in range(5):  # a tmux server that is just exiting refuses new sessions
            p = subprocess.run([*TMUX, "new-session", "-d", "-s", name, "-x", "120", "-y",
                                "36", "bash", "--norc", "--noprofile", "-c", script],
                               capture_output=True, text=True, check=False,
                               env={**os.environ, "TERM": "xterm-256color"})
            if p.returncode == 0:
                return name
            time.sleep(0.2 * (attempt + 1))
        raise AssertionError(f"tmux new-session failed: {p.stderr.strip()}")

    try:
        yield start
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", name], check=False,
                       capture_output=True)


def check_restored(name: str, tmp_path: Path) -> None:
    text = wait_for(name, lambda t: "EXIT=" in t)
    assert "EXIT=0" in text
    assert "BEFORE-MARK" in text  # the shell's screen is back (the app used the alternate one)
    assert "Destination" not in text and "frame 1:" not in text
    before = (tmp_path / "before").read_text().split()
    after = wait_for_file(tmp_path / "after").split()
    assert before == after and "icanon" in after and "echo" in after


def wait_for_file(path: Path) -> str:
    end = time.monotonic() + 10
    while not path.exists() or not path.read_text():
        assert time.monotonic() < end, f"{path} was not written"
        time.sleep(0.05)
    return path.read_text()


def test_first_screen_and_q(terminal: Callable[[str], str], tmp_path: Path) -> None:
    cap = ROOT / "captures" / "tcp-loss.pcap"
    name = terminal(f"{shlex.quote(str(RAWLAB))} view {shlex.quote(str(cap))}")
    text = wait_for(name, lambda t: "421 frames" in t and "0x0000:" in t)
    lines = text.splitlines()
    assert lines[0] == str(cap)
    assert lines[1].split() == ["No.", "Time", "Source", "Destination", "Protocol", "Length",
                                "Info"]
    assert lines[2].split()[:8] == ["1", "0.000000", "10.77.0.1", "10.77.0.2", "TCP", "74",
                                    "51216", ">"]
    assert any(ln.startswith("▼ frame 1: 74 bytes on wire, 74 captured") for ln in lines), text
    assert any(ln.startswith("0x0000:  cabf a770 3f95 4e10 3944 849e 0800 4500") for ln in lines)
    subprocess.run([*TMUX, "send-keys", "-t", name, "q"], check=True)
    check_restored(name, tmp_path)


def test_sigterm_quits_cleanly(terminal: Callable[[str], str], tmp_path: Path) -> None:
    cap = ROOT / "captures" / "tcp-clean.pcap"
    inner = f"echo $$ > {tmp_path}/pid; exec {shlex.quote(str(RAWLAB))} view {cap}"
    name = terminal(f"bash -c {shlex.quote(inner)}")
    wait_for(name, lambda t: "32 frames" in t and "0x0000:" in t)
    pid = int(wait_for_file(tmp_path / "pid"))
    os.kill(pid, 15)
    check_restored(name, tmp_path)


def test_bad_input_is_one_line_before_any_screen(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    p = subprocess.run([str(RAWLAB), "view", str(bad)], capture_output=True, text=True,
                       timeout=60, check=False)
    assert p.returncode == 2  # no terminal: refused first (usage)
    assert p.stderr.strip().endswith("rawlab view needs a terminal (for text output: "
                                     "rawlab read)")
