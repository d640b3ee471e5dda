"""Colour for people at a terminal: on when stdout is a terminal, off when piped, with
``NO_COLOR`` set (https://no-color.org) or ``--color never``; ``--color always`` forces it.

    if wants_colour(sys.stdout, "auto"): text = paint_line(text)

Only ANSI SGR codes the terminal already knows (its own palette, so the user's colours
are followed): TCP flags by what they mean (SYN green, FIN yellow, RST red), a wrong
checksum and a malformed packet red, a cut header yellow, the time dim.
"""

from __future__ import annotations

import os
import re
from typing import TextIO

RESET = "\033[0m"
DIM, RED, GREEN, YELLOW, CYAN, BOLD = "\033[2m", "\033[31m", "\033[32m", "\033[33m", \
    "\033[36m", "\033[1m"

_FLAGS = re.compile(r"Flags \[([^\]]*)\]")
_MARKS = re.compile(r"( \[bad [^\]]*\]| \[malformed\])")
_CUT = re.compile(r"( \[\|[a-z0-9]+\])")
_TIME = re.compile(r"^(\d\d:\d\d:\d\d\.\d{6}|\d+\.\d{6}| \d\d:\d\d:\d\d\.\d{6})")


def wants_colour(out: TextIO, mode: str = "auto") -> bool:
    """The --color rule: always, never, or auto (a terminal and no NO_COLOR)."""
    if mode == "always":
        return True
    if mode == "never" or os.environ.get("NO_COLOR"):
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _flags(m: re.Match[str]) -> str:
    f = m.group(1)
    colour = RED if "R" in f else GREEN if "S" in f else YELLOW if "F" in f else CYAN
    return f"Flags [{colour}{f}{RESET}]"


def paint_line(text: str) -> str:
    """A one-line view line (and any dump lines after it) with colours."""
    first, nl, rest = text.partition("\n")
    first = _TIME.sub(lambda m: f"{DIM}{m.group(1)}{RESET}", first, count=1)
    first = _FLAGS.sub(_flags, first, count=1)
    first = _MARKS.sub(lambda m: f"{RED}{m.group(1)}{RESET}", first)
    first = _CUT.sub(lambda m: f"{YELLOW}{m.group(1)}{RESET}", first)
    return first + nl + (f"{DIM}{rest}{RESET}" if rest else "")


def paint_tree(text: str) -> str:
    """A -v tree: layer headings bold, field names dim, a bad checksum red."""
    def one(ln: str) -> str:
        if ln.startswith("  ") and not ln.startswith("   ") and " @" in ln:
            return f"{BOLD}{ln}{RESET}"
        if "checksum" in ln and " bad" in ln:
            return f"{RED}{ln}{RESET}"
        return ln

    return "\n".join(one(ln) for ln in text.split("\n"))
