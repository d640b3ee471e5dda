"""The vm/hostguest tiers' host side (tests/conftest.py GuestRun) when a guest wedges or
its pytest ends early: what was finished is kept, a wedge is booted again once for the
test it was in and those it did not reach, and what stays unreported fails with the end
of the guest's output. The guest itself is replaced here by what it leaves in the
shared directory (its report and output), as a real one does."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from rawlab.errors import Exit, RawlabError
from rawlab.lab import vm

pytestmark = pytest.mark.unit

_spec = importlib.util.spec_from_file_location(
    "tier_conftest", Path(__file__).resolve().parents[1] / "conftest.py")
assert _spec is not None and _spec.loader is not None
conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conftest)

A, B, C = (f"tests/vm/test_x.py::test_{k}" for k in "abc")


class Result:
    returncode = 0
    output = ""
    accel = "tcg"

    class kernel:
        release = "6.1.0"


def guests(monkeypatch: pytest.MonkeyPatch, plan: list[Any]) -> list[list[str]]:
    """vm.run replaced by `plan`: per boot (results, running, output, wedged)."""
    booted: list[list[str]] = []

    def run(cmd: str, rwdirs: list[Path], **kw: Any) -> Result:
        ids = Path(cmd.split(" @")[1].split(maxsplit=1)[0].strip("'")).read_text().split()
        booted.append(ids)
        results, running, output, wedged = plan.pop(0)
        (rwdirs[0] / "console.txt").write_text(output)
        (rwdirs[0] / "report.json").write_text(json.dumps(
            {"results": {k: {"outcome": v} for k, v in results.items()}, "running": running}))
        if wedged:
            raise RawlabError("the guest did not finish in 480 s (tcg); it was killed",
                              Exit.FAILED)
        return Result()

    monkeypatch.setattr(vm, "run", run)
    return booted


def test_a_wedge_boots_once_more_for_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    booted = guests(monkeypatch, [({A: "passed"}, B, "A ok\nin B\n", True),
                                  ({B: "passed", C: "passed"}, C, "", False)])
    g = conftest.GuestRun("vm", [A, B, C])
    res = g.get()
    assert booted == [[A, B, C], [B, C]]
    assert {k: v["outcome"] for k, v in res.items()} == {A: "passed", B: "passed",
                                                          C: "passed"}
    lines = g.summary.splitlines()
    assert len(lines) == 2 and "did not finish in 480 s" in lines[0]
    assert "again" in lines[1] and "guest pytest exit 0" in lines[1]


def test_a_hostguest_wedge_runs_the_whole_module_again(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """A hostguest module's tests are one sequence (the last checks what the first ones
    made): a second guest runs the module from its start, and its results stand."""
    d = "tests/hostguest/test_y.py::test_d"
    booted = guests(monkeypatch, [({A: "passed", d: "passed"}, B, "in B\n", True),
                                  ({A: "failed", B: "passed", C: "passed"}, C, "", False)])
    g = conftest.GuestRun("hostguest", [A, B, C, d])
    res = g.get()
    assert booted == [[A, B, C, d], [A, B, C]]
    assert {k: v["outcome"] for k, v in res.items()} == {A: "failed", B: "passed",
                                                          C: "passed", d: "passed"}
    assert "(and the rest of their modules)" in g.summary.splitlines()[1]


def test_a_second_wedge_fails_with_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    booted = guests(monkeypatch, [({A: "passed"}, B, "in B\n", True),
                                  ({}, B, "still in B: stack of the hung thread\n", True)])
    res = conftest.GuestRun("hostguest", [A, B, C]).get()
    assert len(booted) == 2 and res[A]["outcome"] == "passed"
    assert res[B]["outcome"] == res[C]["outcome"] == "failed"
    assert res[B]["longrepr"].startswith(
        "the guest stopped during this test (the first guest wedged in it too)")
    assert res[C]["longrepr"].startswith("not run: the guest stopped before it")
    assert "stack of the hung thread" in res[B]["longrepr"]


def test_a_pytest_that_ends_early_is_not_booted_again(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    out = "ImportError while importing test module\nE   ModuleNotFoundError: foo\n"
    booted = guests(monkeypatch, [({}, None, out, False)])
    res = conftest.GuestRun("vm", [A, B]).get()
    assert len(booted) == 1
    for k in (A, B):
        assert res[k]["outcome"] == "failed"
        assert "ModuleNotFoundError: foo" in res[k]["longrepr"]
