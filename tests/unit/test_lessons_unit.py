"""The lessons' pure parts: tables, JSON shape, the text's words. No socket is opened."""

from __future__ import annotations

import io
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from rawlab.errors import Exit, RawlabError
from rawlab.lessons import families, pipe_vs_socket
from rawlab.lessons.families import FamiliesLesson, Probe
from rawlab.lessons.pipe_vs_socket import (
    BoundaryCase,
    BufferCase,
    DirectionCase,
    PipeVsSocketLesson,
    Throughput,
)
from rawlab.lessons.sigpipe import LocalCase, SigpipeLesson, TcpCase, TcpWrite
from rawlab.present import lesson as present


def test_family_numbers_agree_with_python() -> None:
    for num, name in families.ALL_FAMILIES.items():
        if hasattr(socket, name):
            assert int(getattr(socket, name)) == num, name
    assert set(families.FAMILIES) <= set(families.ALL_FAMILIES)
    assert max(families.ALL_FAMILIES) == 45  # AF_MAX - 1 (linux/socket.h)


def test_protocol_for_raw_and_packet() -> None:
    assert families.protocol_for(socket.AF_INET, socket.SOCK_RAW) == socket.IPPROTO_ICMP
    assert families.protocol_for(socket.AF_INET6, socket.SOCK_RAW) == socket.IPPROTO_ICMPV6
    assert families.protocol_for(socket.AF_PACKET, socket.SOCK_DGRAM) == socket.htons(3)
    assert families.protocol_for(socket.AF_INET, socket.SOCK_STREAM) == 0
    assert families.protocol_for(socket.AF_UNIX, socket.SOCK_RAW) == 0


def _sigpipe() -> SigpipeLesson:
    return SigpipeLesson(13, "ignored", [
        LocalCase("pipe.default", "pipe", "write", "default", 0, None, None, 13, [], 13, None),
        LocalCase("pipe.blocked", "pipe", "write", "blocked", 0, None, "EPIPE", None, [13], 0, 0),
    ], [TcpCase("tcp.closed", False, True, 1, 24, [TcpWrite(5, None), TcpWrite(None, "EPIPE")])])


def _families() -> FamiliesLesson:
    return FamiliesLesson(65534, False, [
        Probe(1, "AF_UNIX", socket.SOCK_RAW, "SOCK_RAW", 0, None),
        Probe(2, "AF_INET", socket.SOCK_RAW, "SOCK_RAW", 1, "EPERM"),
        Probe(31, "AF_BLUETOOTH", socket.SOCK_RAW, "SOCK_RAW", 1, "EAFNOSUPPORT"),
    ])


def _pvs() -> PipeVsSocketLesson:
    return PipeVsSocketLesson(
        [DirectionCase("pipe: write(read end)", "pipe", "read end", None, None, "EBADF")],
        [BufferCase("pipe", 65536, None, None, 65536, 65536, "EAGAIN", 65536, None)],
        [BoundaryCase("unix seqpacket", [5, 5], [b"hello", b"world"], True),
         BoundaryCase("tcp", [5, 5], [b"helloworld"], False)],
        [Throughput("pipe", 65536, 65536, 8 << 20, 8 << 20, 4_000_000, True)],
        5_000_000_000)


def test_json_documents() -> None:
    doc = present.to_json(_sigpipe())
    assert doc["schema"] == "rawlab.lesson.sigpipe/1" and doc["lesson"] == "sigpipe"
    assert doc["local"][0]["signal"] == 13
    assert doc["tcp"][0]["writes"][1] == {"written": None, "errno": "EPIPE"}
    fam = present.to_json(_families())
    assert fam["schema"] == "rawlab.lesson.families/1"
    assert [p["ok"] for p in fam["probes"]] == [True, False, False]
    pvs = present.to_json(_pvs())
    assert pvs["schema"] == "rawlab.lesson.pipe_vs_socket/1"
    assert pvs["lesson"] == "pipe-vs-socket"
    assert pvs["boundaries"][0]["reads"] == ["hello", "world"]  # bytes become text
    assert pvs["throughput"][0]["mb_per_s"] == pytest.approx(2097.2, abs=0.1)


def test_mb_per_s() -> None:
    assert present.mb_per_s(1_000_000, 1_000_000_000) == pytest.approx(1.0)
    assert present.mb_per_s(5, 0) == 0.0


def test_text_says_what_and_why() -> None:
    out = io.StringIO()
    present.render(_sigpipe(), out)
    text = out.getvalue()
    assert "child killed by SIGPIPE (13)" in text
    assert "pending: SIGPIPE (13)" in text
    assert "write 1: 5 bytes; write 2: EPIPE (Broken pipe)" in text
    assert text.count("why:") == 3

    out = io.StringIO()
    present.render(_families(), out)
    text = out.getvalue()
    assert "EPERM" in text and "CAP_NET_RAW" in text
    assert "ESOCKTNOSUPPORT" not in text  # the legend lists only what was seen
    assert "treats SOCK_RAW as SOCK_DGRAM" in text

    out = io.StringIO()
    present.render(_pvs(), out)
    text = out.getvalue()
    assert "EBADF (Bad file descriptor)" in text
    assert "'hello', 'world' (kept)" in text and "'helloworld' (merged)" in text
    assert "2097 MB/s" in text


def test_throughput_bounds_raise_before_doing_anything() -> None:
    with pytest.raises(RawlabError) as e:
        pipe_vs_socket.throughput(0)
    assert e.value.code == Exit.USAGE
    with pytest.raises(RawlabError):
        pipe_vs_socket.throughput(1, seconds=0)


def test_cli_lists_the_lessons_and_checks_bounds() -> None:
    from rawlab import cli

    res = CliRunner().invoke(cli.main, ["lesson", "--help"])
    assert res.exit_code == 0
    for name in ("sigpipe", "flags", "families", "pipe-vs-socket"):
        assert f"  {name} " in res.output
    res = CliRunner().invoke(cli.main, ["lesson", "pipe-vs-socket", "--mib", "0"])
    assert res.exit_code == 2


def test_importing_the_lessons_opens_nothing() -> None:
    code = (
        "import socket, os\n"
        "opened = []\n"
        "orig = socket.socket.__init__\n"
        "def spy(self, *a, **k):\n"
        "    opened.append(a); orig(self, *a, **k)\n"
        "socket.socket.__init__ = spy\n"
        "import rawlab.cli.lesson, rawlab.present.lesson\n"
        "import rawlab.lessons.sigpipe, rawlab.lessons.flags\n"
        "import rawlab.lessons.families, rawlab.lessons.pipe_vs_socket\n"
        "print(len(opened))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
