"""The standing fuzz check (bench/fuzz/run.py), short: mutated real captures through every
reader and decoder under a 600 MB address-space cap must find no crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fuzz" / "run.py"


def test_no_crash_in_a_short_run() -> None:
    p = subprocess.run([sys.executable, str(BENCH), "--cases", "1500", "--seconds", "60",
                        "--seed", "12"], capture_output=True, text=True, timeout=300,
                       check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert ", 0 crashes at 0 places" in p.stdout


def test_the_check_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder that raises is reported by its place, not swallowed."""
    sys.path.insert(0, str(BENCH.parent))
    import run as fuzz  # type: ignore[import-not-found]

    from rawlab.decode import dispatch

    def broken(self: object, data: bytes, linktype: int, hint: int = 0) -> object:
        raise ValueError("planted")

    monkeypatch.setattr(dispatch.Decoder, "decode", broken)
    n, crashes, first = fuzz.fuzz(40, 30, 3)
    assert n == 40 and crashes
    (key,) = crashes
    assert key.startswith("ValueError at test_fuzz_standing.py:") and first[key] == "planted"
