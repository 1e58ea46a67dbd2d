"""The camera interface every backend implements, and the frame it delivers.

Nothing above this boundary knows which backend it has, or sees a cv2/picamera2 exception:
backends turn those into `kiosk.errors.CameraError`. Frames stay in memory (docs/design-notes.md).

Liveness (later) flashes the screen and reads skin response, which needs the camera's
automatic exposure and white balance frozen: hence `lock_exposure` / `lock_white_balance`,
and a monotonic timestamp on every frame to line frames up with what the screen showed.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import numpy as np

from kiosk.errors import CameraError


@dataclass(frozen=True, eq=False)
class Frame:
    """One camera frame: RGB uint8 H×W×3, the monotonic capture time in ns, a running index."""

    image: np.ndarray
    t_ns: int
    index: int

    def __post_init__(self) -> None:
        img = self.image
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise CameraError(f"frame must be H×W×3 uint8, got {img.shape} {img.dtype}")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


class EndOfStream(CameraError):
    """A file or synthetic source without looping has no more frames."""


class Camera(abc.ABC):
    """A source of frames. Use as a context manager, or call `close()`."""

    name: str = "camera"

    @abc.abstractmethod
    def read(self) -> Frame:
        """The next frame; raises CameraError when the device fails (EndOfStream at the end)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device. Calling it twice is harmless."""

    def lock_exposure(self, locked: bool, headroom: float = 1.0) -> None:
        """Freeze (True) or release (False) automatic exposure and gain.

        Locked at the current automatic exposure divided by `headroom` (>= 1): the screen's
        challenge light adds to the idle scene the exposure was chosen for, and a face that
        clips under the brightest field no longer answers it. The default raises: a backend
        that cannot lock must say so, because liveness must not run on a camera that
        re-exposes every flash away.
        """
        raise CameraError(f"{self.name}: exposure cannot be locked on this camera")

    def lock_white_balance(self, locked: bool) -> None:
        """Freeze (True) or release (False) automatic white balance at the current gains."""
        raise CameraError(f"{self.name}: white balance cannot be locked on this camera")

    def controls(self) -> dict[str, Any]:
        """The current control state: at least `exposure_locked` and `white_balance_locked`."""
        return {"backend": self.name, "exposure_locked": False, "white_balance_locked": False}

    def __enter__(self) -> Camera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
