"""The Vagrantfile: valid for vagrant-libvirt, a vsock device with the CID from the
environment, and vagrant really checks it (a misspelt provider key is caught)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("vagrant") is None,
                                reason="vagrant not installed (./setup.sh --test installs it)")


def validate(folder: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, VAGRANT_DEFAULT_PROVIDER="libvirt",
             VAGRANT_HOME=str(tmp_path / "vagrant.d"), **env)
    return subprocess.run(["vagrant", "validate"], cwd=folder, env=e, capture_output=True,
                          text=True, timeout=120, check=False)


def test_vagrantfile_validates(tmp_path: Path) -> None:
    r = validate(ROOT, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "validated successfully" in r.stdout


def test_vsock_device_and_cid_from_the_environment(tmp_path: Path) -> None:
    text = (ROOT / "Vagrantfile").read_text()
    assert 'lv.qemuargs value: "vhost-vsock-pci,id=vsock0,guest-cid=#{guest_cid}"' in text
    assert 'ENV.fetch("RAWLAB_GUEST_CID", "3")' in text
    r = validate(ROOT, tmp_path, RAWLAB_GUEST_CID="2")
    assert r.returncode != 0 and "RAWLAB_GUEST_CID must be >= 3" in r.stdout + r.stderr


def test_a_misspelt_provider_key_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "box"
    bad.mkdir()
    text = (ROOT / "Vagrantfile").read_text().replace("lv.memory = 1024", "lv.memroy = 1024")
    (bad / "Vagrantfile").write_text(text)
    r = validate(bad, tmp_path)
    assert r.returncode != 0
    assert "memroy" in r.stdout + r.stderr
