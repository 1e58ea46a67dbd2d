"""QR decoding from frames: only texts with our pass prefix come out."""
from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno
from PIL import Image

from kiosk.errors import FormatError
from kiosk.vision.qr import PASS_PREFIX, QrReader, decode_pass_qr, decode_qr_texts

PASS_TEXT = "KP1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEXWK G2EP4J0B3KL6QM5/OVGA/MAT%ZSGGM1"


def _qr(text: str, scale: int) -> np.ndarray:
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, border=4)
    return np.asarray(Image.open(buf).convert("RGB"))


def _frame(portraits: list[np.ndarray], size_px: int, angle: float) -> np.ndarray:
    """A 640×480 photo frame with our pass QR (scaled, rotated) and a stranger's QR in it."""
    frame = cv2.resize(portraits[1], (640, 480)).copy()
    ours = _qr(PASS_TEXT, 4)
    ours = cv2.resize(ours, (size_px, size_px), interpolation=cv2.INTER_AREA)
    pad = cv2.copyMakeBorder(ours, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    h, w = pad.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    pad = cv2.warpAffine(pad, rot, (w, h), borderValue=(255, 255, 255))
    frame[30:30 + h, 30:30 + w] = pad
    other = _qr("https://example.org/cafeteria-menu", 3)
    frame[480 - other.shape[0] - 10:470, 640 - other.shape[1] - 10:630] = other
    return frame


@pytest.mark.parametrize("size_px,angle", [(220, 0), (160, 15), (260, -30), (200, 90)])
def test_only_pass_text_is_returned(portraits: list[np.ndarray], size_px: int, angle: float) -> None:
    frame = _frame(portraits, size_px, angle)
    texts = decode_qr_texts(frame)
    assert "https://example.org/cafeteria-menu" in texts  # the other code is seen ...
    assert decode_pass_qr(frame) == [PASS_TEXT]  # ... and dropped


def test_no_code_and_wrong_prefix(portraits: list[np.ndarray]) -> None:
    assert decode_pass_qr(portraits[0].copy()) == []
    frame = _frame(portraits, 220, 0)
    assert decode_pass_qr(frame, prefix="KP2:") == []
    assert PASS_PREFIX == "KP1:"
    with pytest.raises(FormatError):
        decode_qr_texts(np.zeros((10, 10), np.float32))


def test_reader_reports_a_pass_once_while_in_view(portraits: list[np.ndarray]) -> None:
    reader = QrReader()
    frame = _frame(portraits, 220, 0)
    assert reader.read(frame) == [PASS_TEXT]
    assert reader.read(frame) == []
    assert reader.read(portraits[0].copy()) == []
    assert reader.read(frame) == [PASS_TEXT]


def test_a_real_photo_from_the_zxing_blackbox(shared_data: Path) -> None:
    png = shared_data / "qr" / "zxing_blackbox" / "qrcode-2" / "1.png"
    expected = png.with_suffix(".txt").read_text("utf-8")
    rgb = np.asarray(Image.open(png).convert("RGB"))
    assert expected.strip() in [t.strip() for t in decode_qr_texts(rgb)]
    assert decode_pass_qr(rgb) == []
