"""QR codes in camera frames, with zxing-cpp: only our pass texts, everything else ignored.

A phone shows a pass as a QR whose text starts with a prefix ("KP1:" for version 1 of our
pass encoding). Posters, menus and other passes may be in view; texts without the prefix
are dropped here, so nothing above sees a stranger's code. zxing-cpp errors become
FormatError at this boundary.
"""
from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from kiosk.errors import FormatError

PASS_PREFIX = "KP1:"


def decode_qr_texts(image: np.ndarray) -> list[str]:
    """Every QR code text zxing-cpp finds in an RGB or grey uint8 image (rotation tolerant)."""
    import zxingcpp

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise FormatError("QR decoding needs a uint8 grey or RGB image")
    # zxing-cpp reads 3-channel arrays as BGR; hand it our own grey conversion instead
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    try:
        qr_only = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        results = zxingcpp.read_barcodes(np.ascontiguousarray(grey), formats=qr_only,
                                         try_rotate=True, try_downscale=True)
    except (RuntimeError, ValueError) as e:
        raise FormatError(f"QR decoder failed ({e})") from None
    return [r.text for r in results if r.text]


def select_prefixed(texts: Iterable[str], prefix: str | tuple[str, ...] = PASS_PREFIX) -> list[str]:
    """The texts that start with `prefix` (or one of several), in order, without duplicates."""
    out: list[str] = []
    for t in texts:
        if t.startswith(prefix) and t not in out:
            out.append(t)
    return out


def decode_pass_qr(image: np.ndarray, prefix: str | tuple[str, ...] = PASS_PREFIX) -> list[str]:
    """The texts of QR codes in `image` that start with `prefix` (ours); other codes are ignored."""
    return select_prefixed(decode_qr_texts(image), prefix)


class QrReader:
    """Frame-to-frame QR reading for the engine: reports a pass text once until it leaves view."""

    def __init__(self, prefix: str | tuple[str, ...] = PASS_PREFIX) -> None:
        self.prefix = prefix
        self._in_view: set[str] = set()

    def read(self, image: np.ndarray) -> list[str]:
        """New pass texts in this frame (texts still in view from the last frame are not repeated)."""
        texts = decode_pass_qr(image, self.prefix)
        new = [t for t in texts if t not in self._in_view]
        self._in_view = set(texts)
        return new

    def reset(self) -> None:
        """Forget what was in view."""
        self._in_view = set()
