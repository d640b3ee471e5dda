"""The CLI: expected failures are one line and a documented code, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rawlab import cli
from rawlab.errors import Exit, RawlabError


def test_import_has_no_side_effects() -> None:
    # a fresh interpreter: importing rawlab and its CLI must open no socket and
    # import none of the heavy libraries (scapy, pyroute2) nor any command module
    code = (
        "import socket, sys\n"
        "opened = []\n"
        "orig = socket.socket.__init__\n"
        "def spy(self, *a, **k):\n"
        "    opened.append(a); orig(self, *a, **k)\n"
        "socket.socket.__init__ = spy\n"
        "import rawlab, rawlab.cli\n"
        "heavy = [m for m in ('scapy', 'pyroute2', 'rawlab.doctor', 'rawlab.cli.doctor')"
        " if m in sys.modules]\n"
        "print(len(opened), heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0 []"


def test_help_lists_commands() -> None:
    res = CliRunner().invoke(cli.main, ["--help"])
    assert res.exit_code == 0
    assert "doctor" in res.output and "lab" in res.output
    assert "3 missing privilege" in res.output


def _group_with(exc: BaseException) -> click.Group:
    @click.group(cls=cli.LazyGroup)
    def g() -> None:
        pass

    @g.command()
    def boom() -> None:
        raise exc

    return g


@pytest.mark.parametrize(
    ("exc", "code", "text"),
    [
        (RawlabError("open AF_PACKET socket failed: needs CAP_NET_RAW", Exit.PRIVILEGE), 3,
         "rawlab: error: open AF_PACKET socket failed: needs CAP_NET_RAW\n"),
        (KeyboardInterrupt(), 130, "rawlab: interrupted\n"),
        (ValueError("bad"), 70, "rawlab: internal error: ValueError: bad"),
    ],
)
def test_failures_are_one_line(exc: BaseException, code: int, text: str) -> None:
    res = CliRunner().invoke(_group_with(exc), ["boom"])
    assert res.exit_code == code
    assert res.stderr.startswith(text)
    assert "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1


def test_usage_error_exit_2() -> None:
    res = CliRunner().invoke(cli.main, ["doctor", "--only", "nonsense"])
    assert res.exit_code == 2


def test_console_script_exits_quickly_but_keeps_codes_output_and_exit_hooks(
        tmp_path: Path) -> None:
    rawlab = str(Path(sys.executable).with_name("rawlab"))
    p = subprocess.run([rawlab, "--version"], capture_output=True, text=True, check=False)
    assert (p.returncode, p.stdout.startswith("rawlab, version "), p.stderr) == (0, True, "")
    p = subprocess.run([rawlab, "no-such-command"], capture_output=True, text=True, check=False)
    assert p.returncode == 2 and "No such command" in p.stderr
    p = subprocess.run([rawlab, "read", str(tmp_path / "missing.pcap")], capture_output=True,
                       text=True, check=False)
    assert p.returncode == int(Exit.BAD_INPUT) and p.stderr.count("\n") == 1
    # run() itself: exit hooks run and buffered stdout arrives before os._exit
    marker = tmp_path / "hook"
    code = ("import atexit, sys\n"
            "from rawlab import cli\n"
            f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
            "sys.stdout.write('x' * 100000)\n"
            "sys.argv = ['rawlab', '--version']\n"
            "cli.run()\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert p.returncode == 0 and p.stdout.startswith("x" * 100000) and "version" in p.stdout
    assert marker.read_text() == "ran"
