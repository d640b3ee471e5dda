"""OS errors become one line with the why and the fix, and a documented exit code."""

from __future__ import annotations

import errno

import pytest

from rawlab.errors import Exit, RawlabError, advice, explain


@pytest.mark.parametrize(
    ("err", "op", "code", "words"),
    [
        (errno.EPERM, "open AF_PACKET socket", Exit.PRIVILEGE,
         ("needs CAP_NET_RAW", "privileges.md")),
        (errno.EPERM, "create nlmon link", Exit.PRIVILEGE, ("needs CAP_NET_ADMIN",)),
        (errno.EPERM, "create network namespace x", Exit.PRIVILEGE, ("needs CAP_SYS_ADMIN",)),
        (errno.EACCES, "remove network namespace x", Exit.PRIVILEGE, ("needs CAP_SYS_ADMIN",)),
        (errno.EACCES, "open /dev/vhost-vsock", Exit.PRIVILEGE, ("permission denied",)),
        (errno.EAFNOSUPPORT, "open AF_VSOCK socket", Exit.UNSUPPORTED, ("address family",)),
        (errno.EPROTONOSUPPORT, "open netlink", Exit.UNSUPPORTED, ("protocol",)),
        (errno.ENODEV, "bind eth9", Exit.UNSUPPORTED, ("no such device", "ip link")),
        (errno.EADDRNOTAVAIL, "bind vsock 1:5000", Exit.UNSUPPORTED, ("vsock_loopback",)),
        (errno.ECONNRESET, "connect vsock 3:5000", Exit.PEER, ("nothing listening",)),
        (errno.ECONNREFUSED, "connect 10.0.0.2:80", Exit.PEER, ("refused",)),
        (errno.ETIMEDOUT, "connect vsock 3:5000", Exit.PEER, ("timed out", "--timeout")),
        (errno.ENOBUFS, "read netlink", Exit.FAILED, ("overflowed",)),
    ],
)
def test_explain_names_the_cause_and_the_fix(err: int, op: str, code: Exit,
                                            words: tuple[str, ...]) -> None:
    e = explain(OSError(err, "x"), op)
    assert isinstance(e, RawlabError)
    assert e.code == code
    assert e.errno == err
    assert e.message.startswith(f"{op} failed: ")
    assert f"({errno.errorcode[err]})" in e.message
    assert "fix: " in e.message
    assert "\n" not in e.message
    for w in words:
        assert w in e.message


def test_unknown_errno_still_gives_one_line() -> None:
    e = explain(OSError(errno.EXDEV, "cross"), "do a thing")
    assert e.code == Exit.FAILED
    assert "EXDEV" in e.message and "\n" not in e.message


def test_exit_codes_are_the_documented_ones() -> None:
    assert [int(x) for x in Exit] == [0, 1, 2, 3, 4, 5, 6, 7, 130]
    assert advice(errno.EPERM, "x").code == 3


def test_a_bad_option_value_names_the_option_as_typed() -> None:
    """Issue 14: `--buffer-size bogus` said `--buffer_size`. Parsing fails before any
    socket is opened (no vsock connection is ever made here)."""
    from click.testing import CliRunner

    from rawlab.cli import main

    r = CliRunner().invoke(main, ["vsock", "connect", "1:1", "--buffer-size", "bogus"])
    assert r.exit_code == 2
    assert "Invalid value for '--buffer-size': 'bogus' is not a size" in r.output
