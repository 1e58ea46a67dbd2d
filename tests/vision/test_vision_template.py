"""Template encoding (256 bytes, little-endian float16) and the 1:1 decision."""
from __future__ import annotations

import numpy as np
import pytest

from kiosk.errors import FormatError
from kiosk.vision.template import (
    CARD_TEMPLATE_BYTES,
    TEMPLATE_BYTES,
    template_from_bytes,
    template_to_bytes,
    template_to_card_bytes,
)
from kiosk.vision.verify import FaceVerifier, compare


def _t(seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(0, 0.09, 128)
    return v.astype(np.float16)


def test_round_trip_is_exact() -> None:
    t = _t()
    b = template_to_bytes(t)
    assert len(b) == TEMPLATE_BYTES == 256
    back = template_from_bytes(b)
    assert back.dtype == np.float16 and back.shape == (128,)
    assert np.array_equal(back, t)
    assert b[:2] == np.float16(t[0]).astype("<f2").tobytes()  # little-endian on any host


def test_card_encoding_is_130_bytes_within_half_a_step() -> None:
    t = _t(3)
    b = template_to_card_bytes(t)
    assert len(b) == CARD_TEMPLATE_BYTES == 130
    scale = float(np.frombuffer(b[:2], "<f2")[0])
    peak = float(np.abs(t.astype(np.float32)).max())
    assert scale == pytest.approx(peak / 127, rel=1e-3)  # float16 scale: 3 digits
    back = template_from_bytes(b)
    assert back.dtype == np.float16 and back.shape == (128,)
    # half a step of int8 plus float16's rounding of the product
    err = np.abs(back.astype(np.float32) - t.astype(np.float32))
    assert err.max() <= scale / 2 + peak * 2 ** -11 and err.max() > 0
    assert int(np.abs(np.frombuffer(b[2:], np.int8)).max()) == 127  # the peak takes the last step
    assert template_to_card_bytes(np.zeros(128, np.float16))[2:] == bytes(128)


def test_card_encoding_refuses_a_bad_scale_or_step() -> None:
    b = template_to_card_bytes(_t(4))
    for scale in (b"\x00\x00", np.float16(-0.01).astype("<f2").tobytes(), b"\x00\x7e"):  # 0, negative, NaN
        with pytest.raises(FormatError, match="bad scale"):
            template_from_bytes(scale + b[2:])
    with pytest.raises(FormatError, match="bad scale or step"):
        template_from_bytes(b[:2] + b"\x80" + b[3:])  # -128: outside the symmetric range


@pytest.mark.parametrize("n", [0, 1, 128, 129, 131, 255, 257, 512])
def test_wrong_lengths_refused(n: int) -> None:
    with pytest.raises(FormatError, match="256 bytes"):
        template_from_bytes(b"\x00" * n)


def test_nan_and_shape_refused() -> None:
    bad = _t()
    bad[5] = np.nan
    with pytest.raises(FormatError):
        template_from_bytes(bad.astype("<f2").tobytes())
    with pytest.raises(FormatError):
        template_to_bytes(bad)
    with pytest.raises(FormatError):
        template_to_bytes(np.zeros(127, np.float16))
    with pytest.raises(FormatError):
        template_from_bytes("x" * 256)  # type: ignore[arg-type]


def test_compare_and_verifier() -> None:
    a, b = _t(1), _t(2)
    assert compare(a, a) == 0.0
    d = compare(a, b)
    assert d == pytest.approx(float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64))), rel=1e-5)
    v = FaceVerifier(threshold=d + 0.01)
    assert v.verify(a, b).match
    assert not FaceVerifier(threshold=d).verify(a, b).match  # strictly below the threshold
    assert v.verify_session(a, [a, a]).distance == 0.0 and v.verify_session(a, [b, a]).frames == 2
    with pytest.raises(FormatError):
        compare(a, np.zeros(64, np.float16))


def test_combine_keeps_one_descriptor_and_restores_the_length_of_a_mean() -> None:
    from kiosk.vision.template import combine

    a = np.random.default_rng(1).normal(0, 0.09, 128).astype(np.float32)
    b = np.random.default_rng(2).normal(0, 0.09, 128).astype(np.float32)
    assert np.array_equal(combine(a[None, :]), a.astype(np.float16))
    c = combine(np.stack([a, b])).astype(np.float32)
    # the mean's direction, at the mean of the two lengths (not the shorter length of the mean)
    mean = (a + b) / 2
    assert np.allclose(c / np.linalg.norm(c), mean / np.linalg.norm(mean), atol=2e-3)
    assert np.linalg.norm(c) == pytest.approx((np.linalg.norm(a) + np.linalg.norm(b)) / 2, rel=2e-3)
    assert np.linalg.norm(mean) < 0.8 * np.linalg.norm(c)
