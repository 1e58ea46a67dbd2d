"""Fixtures shared by every test folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# no per-example deadline: the machines are shared and noisy, and a slow example is not a bug
# (hang guards are pytest-timeout's job); a profile of this name can still be chosen by hand
settings.register_profile("kiosk", deadline=None)
settings.load_profile("kiosk")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KIOSK_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`, or a skip with the reason when it is absent (a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soaks (marker `soak`) run only when asked for: `pytest -m soak`."""
    if "soak" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a soak: run it with pytest -m soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
