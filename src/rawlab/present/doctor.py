"""The doctor's report for people: a table per group, fixes under what is missing."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rawlab.doctor import INFO, MISSING, NO_PRIVILEGE, OK, UNSUPPORTED, Check

MARK = {OK: ("ok", "green"), INFO: ("info", "cyan"), NO_PRIVILEGE: ("no-privilege", "red"),
        UNSUPPORTED: ("unsupported", "yellow"), MISSING: ("missing", "yellow")}


def render(checks: list[Check], out: TextIO, *, color: bool | None = None,
           width: int | None = None) -> None:
    console = Console(file=out, force_terminal=color, no_color=color is False,
                      width=width or (None if out.isatty() else 120), highlight=False)
    groups: dict[str, list[Check]] = {}
    for c in checks:
        groups.setdefault(c.group, []).append(c)
    for group, rows in groups.items():
        table = Table(title=group, title_justify="left", expand=False, show_lines=False)
        table.add_column("check", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("detail / fix")
        for c in rows:
            label, style = MARK.get(c.status, (c.status, ""))
            body = Text(c.detail)
            if c.errno:
                body.append(f" [{c.errno}]", style="dim")
            if c.fix and not c.ok:
                body.append("\nfix: ", style="bold")
                body.append(c.fix)
            table.add_row(c.title, Text(label, style=style), body)
        console.print(table)
    bad = [c for c in checks if not c.ok]
    console.print(f"{len(checks) - len(bad)} of {len(checks)} checks ok"
                  + (f"; {len(bad)} not available (each row says how to get it)" if bad else ""))
