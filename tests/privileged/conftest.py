"""Privileged tier fixtures."""

from __future__ import annotations

import os
import subprocess

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
