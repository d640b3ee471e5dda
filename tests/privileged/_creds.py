"""Run this checkout's rawlab under other credentials (privileged tier)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
RAWLAB = str(Path(sys.executable).with_name("rawlab"))


def run(prefix: list[str], args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, RAWLAB, *args], capture_output=True, text=True,
                          timeout=120, cwd="/", check=False, **kw)


def doctor_json(prefix: list[str], *only: str) -> dict[str, Any]:
    args = ["doctor", "--json"] + [a for g in only for a in ("--only", g)]
    p = run(prefix, args)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return json.loads(p.stdout)


def by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in doc["checks"]}
