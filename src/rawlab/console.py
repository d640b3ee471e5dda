"""The ``rawlab`` console script: the signal policy first, then the CLI.

numpy's OpenBLAS is asked for one thread (unless the environment says otherwise):
rawlab does no linear algebra, and the threads OpenBLAS starts at import spin on the
other core (a fifth of ``rawlab read``'s CPU on 500k packets, perf).

Signals get their policy before click or any command module is imported (see
:mod:`rawlab.sockets.stop`): commands that run until stopped (:data:`STOPPABLE`)
remember a stop and end cleanly with their summary, exit 0; every other command is
interrupted (KeyboardInterrupt: its cleanup runs) and exits 130.
"""

from __future__ import annotations

import sys

# (command, sub-command) words of the commands that run until they are stopped
STOPPABLE = frozenset({("capture",), ("netlink", "monitor"), ("netlink", "capture"),
                       ("vsock", "capture"), ("view",)})


def _words(argv: list[str]) -> tuple[str, ...]:
    """The command words of a command line (options skipped)."""
    return tuple(a for a in argv[1:3] if not a.startswith("-"))


def stoppable(argv: list[str]) -> bool:
    w = _words(argv)
    if w[:1] == ("tcp",):
        return "-i" in argv[2:]  # live analysis runs until stopped; a file has an end
    return w[:1] in STOPPABLE or w[:2] in STOPPABLE


def run() -> None:
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # (before numpy is imported)
    from rawlab.sockets import stop

    if stoppable(sys.argv):
        stop.defer_stops()
    else:
        stop.interrupt_on_signals()
    try:
        from rawlab.cli import run as cli_run
    except KeyboardInterrupt:  # a signal while the CLI itself was being imported
        sys.stderr.write("rawlab: interrupted\n")
        sys.exit(130)
    cli_run()
