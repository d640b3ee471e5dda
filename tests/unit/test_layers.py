"""Imports point down the layers (design.md, "Layout v2"; CONTRIBUTING, "Layout").

    errors, records  <  sockets, pcap  <  decode  <  analysis  <  present, pipeline  <  view  <  cli

raw, lessons, lab and doctor are applications built on the layers below, ranked
with analysis: like the analysers they produce results that present/ formats.

Every module of src/rawlab is parsed (ast) and each ``import rawlab.X`` /
``from rawlab.X import`` / ``from rawlab import X`` is checked: a module may
import its own layer and the layers below, never one above.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "rawlab"

# lower may not import higher; equal ranks may import each other only within one package
RANK = {
    "errors": 0, "records": 0, "__init__": 0, "prefetch": 0,
    "_kernels": 0, "_tcp_summary": 0, "_tcp_sequence": 0,  # compiled leaves
    "sockets": 1, "pcap": 1,
    "decode": 2,
    "analysis": 3,
    "raw": 3, "lessons": 3, "lab": 3, "doctor": 3,
    "present": 4, "pipeline": 4,
    "view": 5,
    "cli": 6, "__main__": 6, "console": 6,
}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, first package under rawlab) of every rawlab import in the module."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "rawlab":
                out += [(node.lineno, a.name) for a in node.names]
            elif node.module.startswith("rawlab."):
                out.append((node.lineno, node.module.split(".")[1]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[1]) for a in node.names
                    if a.name.startswith("rawlab.")]
    return out


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def upward_imports() -> list[str]:
    found = []
    for path in _modules():
        rel = path.relative_to(SRC)
        top = rel.parts[0].removesuffix(".py")
        mine = RANK[top]
        for line, other in _imports(ast.parse(path.read_text(), str(path))):
            theirs = RANK.get(other)
            if theirs is None:  # `from rawlab import __version__` and the like
                continue
            if other != top and (theirs > mine or (theirs == mine and mine > 0 and top != other
                                                    and top in ("sockets", "pcap"))):
                found.append(f"{rel}:{line} imports rawlab.{other}")
    return found


def test_every_package_has_a_rank() -> None:
    tops = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in _modules()}
    assert tops <= set(RANK), f"give these a layer in RANK: {sorted(tops - set(RANK))}"


def test_no_upward_import() -> None:
    assert upward_imports() == []


def test_vocabulary_imports_nothing_of_rawlab() -> None:
    for name in ("errors.py", "records.py"):
        assert _imports(ast.parse((SRC / name).read_text())) == [], name


def test_the_check_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module of sockets/ importing decode/ is reported (the test is not vacuous)."""
    fake = tmp_path / "rawlab"
    (fake / "sockets").mkdir(parents=True)
    (fake / "sockets" / "bad.py").write_text("from rawlab.decode.tcp import Tcp\n")
    (fake / "records.py").write_text("import os\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    assert upward_imports() == ["sockets/bad.py:1 imports rawlab.decode"]
