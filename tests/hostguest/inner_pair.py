"""Runs INSIDE the nested (inner) guest of the hostguest tier; not a test module.

    python inner_pair.py listen:TYPE:PORT ... connect:TYPE:CID:PORT:TEXT ...

Each spec runs the `rawlab vsock listen PORT --type TYPE --echo --once --json`
or `rawlab vsock connect CID:PORT --type TYPE --send TEXT -v` command line
through rawlab's own CLI entry point, in a forked child: under nested software
emulation a Python start-up over 9p costs ~25 s, so rawlab is imported once
here and each command then starts at once.  Output lines go to the console as
``NAME| line``; ``INNER-READY`` once every listener listens; each child's status
as ``NAME: exit N`` when it ends; the script exits with the largest status.
"""

from __future__ import annotations

import os
import selectors
import sys

# what the commands import, loaded once before forking
import rawlab.cli.vsock
import rawlab.present.vsock
import rawlab.sockets.vsock  # noqa: F401
from rawlab import cli


def argv_of(spec: str) -> tuple[str, list[str]]:
    kind, type_name, rest = spec.split(":", 2)
    if kind == "listen":
        return (f"listen-{type_name}-{rest}",
                ["vsock", "listen", rest, "--type", type_name, "--echo", "--once", "--json"])
    cid, port, text = rest.split(":", 2)
    return (f"connect-{type_name}-{cid}:{port}",
            ["vsock", "connect", f"{cid}:{port}", "--type", type_name, "--send", text, "-v"])


def spawn(argv: list[str]) -> tuple[int, int]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        os.dup2(w, 2)
        code = 0
        try:
            cli.main.main(argv, prog_name="rawlab")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:
            print(f"inner_pair: {exc!r}", file=sys.stderr)
            code = 70
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    os.close(w)
    return pid, r


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(specs: list[str]) -> int:
    sel = selectors.DefaultSelector()
    children: dict[int, int] = {}  # pipe fd -> pid
    worst = 0
    partial: dict[int, bytes] = {}
    waiting: set[str] = set()

    def start(spec: str) -> None:
        name, argv = argv_of(spec)
        pid, fd = spawn(argv)
        children[fd] = pid
        partial[fd] = b""
        sel.register(fd, selectors.EVENT_READ, name)
        if spec.startswith("listen:"):
            waiting.add(name)

    for spec in specs:
        if spec.startswith("listen:"):
            start(spec)
    if not waiting:
        say("INNER-READY")
    connects = [s for s in specs if s.startswith("connect:")]
    for spec in connects:
        start(spec)

    while sel.get_map():
        for key, _ in sel.select():
            fd = key.fd
            chunk = os.read(fd, 65536)
            if not chunk:
                if partial[fd]:
                    say(f"{key.data}| {partial[fd].decode(errors='replace')}")
                sel.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(children[fd], 0)
                code = os.waitstatus_to_exitcode(status)
                say(f"{key.data}: exit {code}")
                worst = max(worst, code if code >= 0 else 128 - code)
                continue
            data = partial[fd] + chunk
            *lines, partial[fd] = data.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace")
                say(f"{key.data}| {line}")
                if key.data in waiting and '"event": "listening"' in line:
                    waiting.discard(key.data)
                    if not waiting:
                        say("INNER-READY")
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
