"""Fixtures for the vision tests: the demo portraits and rendered scenes."""
from __future__ import annotations

import numpy as np
import pytest

from kiosk.hardware.camera.synthetic import demo_portraits

NAMES = ("astronaut", "grace_hopper")


@pytest.fixture(scope="session")
def portraits() -> list[np.ndarray]:
    p = demo_portraits()
    return [p[n] for n in NAMES]
