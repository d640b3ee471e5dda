"""Privileged tier fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _creds import NOBODY, RAWLAB


@pytest.fixture(scope="session")
def nobody_can_run_rawlab() -> None:
    """The unprivileged tests run this checkout's rawlab as `nobody`."""
    p = subprocess.run([*NOBODY, RAWLAB, "--version"], capture_output=True, text=True,
                       check=False, cwd="/")
    if p.returncode != 0:
        pytest.fail(f"`nobody` cannot run {RAWLAB} ({p.stderr.strip()}): put the checkout "
                    "where every user can read it, and build .venv with ./setup.sh "
                    "(it uses /usr/bin/python3, which every user can execute)")
    assert os.geteuid() == 0


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary directory every user can enter (pytest's own are 0700 root)."""
    d = Path(tempfile.mkdtemp(prefix="rawlab-test-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
