"""The test suite's own layout: pytest imports test modules by their basename (rootdir
mode, no packages), so two modules of one name in two tiers stop the whole collection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_name_is_unique_across_tiers() -> None:
    names = Counter(p.name for p in TESTS.rglob("*.py") if p.name != "conftest.py")
    assert sum(names.values()) > 100
    assert [n for n, k in names.items() if k > 1] == []
