"""The `rawlab` command line. It only wires: parse options, build a pipeline, run it.

Sub-commands live in their own modules and are imported only when used, so
`rawlab --help` stays fast and importing :mod:`rawlab.cli` has no side effects.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from typing import Any

import click

from rawlab import __version__
from rawlab.errors import Exit, RawlabError

# name -> "module:attribute"; each module defines one click command or group.
# A command is offered once its module exists (they land issue by issue).
COMMANDS: dict[str, str] = {
    "doctor": "rawlab.cli.doctor:doctor",
    "lab": "rawlab.cli.lab:lab",
    "read": "rawlab.cli.read:read",
    "capture": "rawlab.cli.capture:capture",
    "tcp": "rawlab.cli.tcp:tcp",
    "sql": "rawlab.cli.sql:sql",
    "handshake": "rawlab.cli.handshake:handshake",
    "netlink": "rawlab.cli.netlink:netlink",
    "vsock": "rawlab.cli.vsock:vsock",
    "raw": "rawlab.cli.raw:raw",
    "lesson": "rawlab.cli.lesson:lesson",
    "view": "rawlab.cli.view:view",
}

EX_SOFTWARE = 70  # an unexpected internal error (a bug): sysexits.h EX_SOFTWARE


def fail(message: str, code: int) -> None:
    """Print one line on stderr and exit with `code`."""
    click.echo(f"rawlab: {message}", err=True)
    sys.exit(int(code))


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def _present(self, name: str) -> bool:
        import importlib.util

        return importlib.util.find_spec(self.lazy[name].split(":")[0]) is not None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(n for n in self.lazy if self._present(n))})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attr = self.lazy[cmd_name].split(":")
            try:
                return getattr(importlib.import_module(module), attr)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RawlabError as exc:
            fail(f"error: {exc.message}", exc.code)
        except KeyboardInterrupt:
            fail("interrupted", Exit.INTERRUPTED)
        except BrokenPipeError:
            # the reader (e.g. `| head`) went away: not an error of ours
            _silence_stdout()
            sys.exit(0)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except OSError as exc:
            if not _stdout_failed(exc):
                _bug(exc)
        except Exception as exc:  # a bug: say so in one line, traceback on request
            _bug(exc)


_OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def _stdout_failed(exc: OSError) -> bool:
    """When writing standard output is what failed (disk full under `> file`, /dev/full),
    say so in one line and exit OUTPUT; False when the error came from elsewhere."""
    from rawlab.errors import output_error

    try:
        sys.stdout.flush()
    except OSError as again:
        exc = again
    else:
        if exc.errno not in _OUTPUT_ERRNOS:
            return False
    _silence_stdout()
    err = output_error(exc, "write to standard output")
    fail(f"error: {err.message}", err.code)
    return True


def _silence_stdout() -> None:
    """Nothing more reaches the old stdout (nor the flush at exit)."""
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    except OSError:
        pass


def _bug(exc: BaseException) -> None:
    """A bug: say so in one line, the traceback on request (RAWLAB_DEBUG=1)."""
    if os.environ.get("RAWLAB_DEBUG"):
        import traceback

        traceback.print_exc()
    fail(f"internal error: {type(exc).__name__}: {exc} (a bug; rerun with RAWLAB_DEBUG=1 "
         "for the traceback and please report it)", EX_SOFTWARE)


class _Main(LazyGroup):
    """The top group: an interrupt while click parses (before a command runs) is the same
    one line and exit code as during the command, not click's 'Aborted!'."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("standalone_mode", True)
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.Abort:
            fail("interrupted", Exit.INTERRUPTED)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        return None


@click.group(cls=_Main, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rawlab")
def main() -> None:
    """Capture and explain what Linux sockets carry: SOCK_RAW, AF_PACKET, AF_NETLINK, AF_VSOCK.

    Start with `rawlab doctor` to see what this kernel and your privileges allow.
    Exit codes: 0 ok, 1 failed, 2 usage, 3 missing privilege, 4 unsupported by
    this kernel, 5 bad input, 6 peer error, 7 output could not be written, 70 internal
    error, 130 interrupted.
    """


def run() -> None:
    """The ``rawlab`` console script: :func:`main`, then a quick exit.

    A finished command has closed what it wrote, so tearing the interpreter down
    (freeing every module and object) buys nothing:
    exit hooks run, stdout and stderr are flushed, and the process ends. With a
    non-daemon thread still running, the ordinary exit waits for it as usual.
    """
    import gc

    # Start-up allocates ~100k objects (click, the command's modules) and little
    # garbage: collecting every 700 allocations costs time for nothing (bench/README.md).
    gc.set_threshold(20_000, *gc.get_threshold()[1:])
    try:
        main()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # between click's parsing and the command, or after it
        print("rawlab: interrupted", file=sys.stderr)
        code = int(Exit.INTERRUPTED)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    import threading

    if any(t.is_alive() and not t.daemon and t is not threading.main_thread()
           for t in threading.enumerate()):
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except OSError as exc:  # the last buffered output: a full disk still says so
        if exc.errno in _OUTPUT_ERRNOS and code == 0:
            from rawlab.errors import output_error

            err = output_error(exc, "write to standard output")
            print(f"rawlab: error: {err.message}", file=sys.stderr)
            code = int(err.code)
    except ValueError:  # a closed stream
        pass
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)
