"""The UI tests draw with SDL's dummy video driver and a dummy audio device.

Set per test (and per module fixture), never for the whole process: other parts read
SDL_VIDEODRIVER too (`kiosk doctor`'s display check), and xdist runs their tests in the same
workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
SDL_DUMMY = {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


@pytest.fixture(autouse=True)
def _sdl_dummy(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in SDL_DUMMY.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(scope="module")
def sdl_dummy_module() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in SDL_DUMMY.items():
            mp.setenv(k, v)
        yield
