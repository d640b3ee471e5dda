"""tcpdump's fingers work: -t forms, -e, -x/-X/-xx/-XX/-A dumps byte for byte as tcpdump
prints them on the same file (Debian's tcpdump runs beside rawlab), -n accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RAWLAB = str(Path(sys.executable).with_name("rawlab"))
CAPS = Path(__file__).resolve().parents[2] / "captures"
ENV = {**os.environ, "TZ": "UTC"}


def run(*args: str) -> list[str]:
    p = subprocess.run(list(args), capture_output=True, text=True, env=ENV, timeout=60,
                       check=True)
    return p.stdout.splitlines()


@pytest.mark.parametrize("flag", ["-x", "-X", "-xx", "-XX"])
@pytest.mark.parametrize("name", ["tcp-clean.pcap", "tcp-ipv6-loss.pcap"])
def test_hex_dumps_are_tcpdumps(flag: str, name: str) -> None:
    mine = [ln for ln in run(RAWLAB, "read", str(CAPS / name), flag, "-nn", "-c", "12")
            if ln.startswith("\t")]
    theirs = [ln for ln in run("tcpdump", "-r", str(CAPS / name), flag, "-nn", "-c", "12")
              if ln.startswith("\t")]
    assert mine == theirs and len(mine) > 40


@pytest.mark.parametrize("flag", ["-tt", "-tttt", "-ttt", "-ttttt"])
def test_time_columns_are_tcpdumps(flag: str) -> None:
    f = str(CAPS / "tcp-loss.pcap")
    mine = run(RAWLAB, "read", f, flag, "-c", "30")
    theirs = run("tcpdump", "-r", f, flag, "-nn", "-c", "30")
    width = len(theirs[0].split(" IP ")[0])
    assert [m.split(" IP ")[0] for m in mine] == [t.split(" IP ")[0] for t in theirs]
    assert width > 8


def test_no_time_with_t() -> None:
    mine = run(RAWLAB, "read", str(CAPS / "tcp-clean.pcap"), "-t", "-c", "1")
    assert mine[0].startswith("IP 10.77.0.1.51204 > 10.77.0.2.5001: Flags [S], ")


def test_link_header_with_e() -> None:
    f = str(CAPS / "tcp-clean.pcap")
    mine = run(RAWLAB, "read", f, "-e", "-c", "5")
    theirs = run("tcpdump", "-r", f, "-e", "-nn", "-c", "5")
    cut = [ln.split(": ")[0] for ln in theirs]
    assert [ln.split(": ")[0] for ln in mine] == cut
    assert cut[0].endswith("ethertype IPv4 (0x0800), length 74")


def test_ascii_dump() -> None:
    mine = run(RAWLAB, "read", str(CAPS / "tcp-clean.pcap"), "-A", "-c", "4")
    assert any("rawla" in ln for ln in mine)
    assert len(mine) > 4


def test_n_and_nn_are_accepted() -> None:
    f = str(CAPS / "tcp-clean.pcap")
    assert run(RAWLAB, "read", f, "-nn", "-c", "2") == run(RAWLAB, "read", f, "-n", "-c", "2")


def test_one_dump_form_at_a_time() -> None:
    p = subprocess.run([RAWLAB, "read", str(CAPS / "tcp-clean.pcap"), "-x", "-A"],
                       capture_output=True, text=True, check=False)
    assert p.returncode == 2 and "choose one of -x, -X, -A, --payload" in p.stderr


def test_colour_only_when_asked_or_on_a_terminal() -> None:
    f = str(CAPS / "tcp-reset.pcap")
    plain = run(RAWLAB, "read", f, "-c", "3")
    assert not any("\033[" in ln for ln in plain)  # piped: no colour
    forced = run(RAWLAB, "read", f, "-c", "3", "--color", "always")
    assert forced[0].startswith("\033[2m") and "Flags [\033[32mS\033[0m]" in forced[0]
    assert [ln.replace("\033[2m", "").replace("\033[32m", "").replace("\033[36m", "")
            .replace("\033[0m", "") for ln in forced] == plain
    p = subprocess.run(["script", "-qc", f"{RAWLAB} read {f} -c 1", "/dev/null"],
                       capture_output=True, text=True, env={**ENV, "NO_COLOR": "1"},
                       timeout=60, check=True)
    assert "\033[" not in p.stdout  # a terminal, but NO_COLOR
    p = subprocess.run(["script", "-qc", f"{RAWLAB} read {f} -c 1", "/dev/null"],
                       capture_output=True, text=True, env=ENV, timeout=60, check=True)
    assert "\033[32mS\033[0m" in p.stdout  # a terminal: colour
