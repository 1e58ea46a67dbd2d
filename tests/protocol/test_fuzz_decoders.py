"""Hostile input: random and mutated bytes to every decoder give a clean verdict or error."""
from __future__ import annotations

import contextlib

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_world import NOW, SITE, make_world

from kiosk.errors import FormatError, VerificationError
from kiosk.protocol import cbor, entry, patient_pass, presentation, qr_text, revocation
from kiosk.protocol.presentation import Freshness, Presentation

WORLD = make_world()
RL = WORLD.revocations()
CLEAN = (FormatError, VerificationError)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mutate(data: bytes, draw) -> bytes:
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        i = draw(st.integers(0, max(0, len(b) - 1)))
        if op == "flip" and b:
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del b[i:i + draw(st.integers(1, 8))]
        else:
            b[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(b)


@FUZZ
@given(st.data())
def test_pass_verify_never_raises(data):
    raw = data.draw(st.one_of(st.binary(max_size=600), st.just(WORLD.pass_bytes).map(lambda b: _mutate(b, data.draw))))
    v = patient_pass.verify(raw, WORLD.issuers, now=NOW, revocations=RL)
    if v.ok:  # only a mutation outside the signed bytes (e.g. the unprotected header) may pass
        assert v.data["pass"].pass_id == patient_pass.decode(WORLD.pass_bytes).pass_id


@FUZZ
@given(st.data())
def test_qr_text_decoder(data):
    good = WORLD.wallet.qr_text(now=NOW)
    text = data.draw(st.one_of(st.text(max_size=300), st.just(good).map(
        lambda t: _mutate(t.encode(), data.draw).decode("latin-1"))))
    try:
        pres = presentation.from_qr_text(text)
    except CLEAN:
        return
    presentation.verify(pres, WORLD.issuers, now=NOW, revocations=RL, fresh=Freshness(site=SITE))


@FUZZ
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.binary(max_size=40) | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=5)
                    | st.dictionaries(st.integers(-70000, 10) | st.text(max_size=5), c, max_size=6),
                    max_leaves=30))
def test_cbor_claims_of_any_shape(claims):
    """Claims of any shape, properly signed by the issuer: refused cleanly, never a crash."""
    from kiosk.protocol import cose
    raw = cose.sign1(cbor2.dumps(claims), WORLD.issuer)
    patient_pass.verify(raw, WORLD.issuers, now=NOW, revocations=RL)
    with contextlib.suppress(CLEAN):
        revocation.verify(raw, WORLD.issuers)
    with contextlib.suppress(CLEAN):
        Presentation.from_map(claims)


@FUZZ
@given(st.data())
def test_revocation_list_decoder(data):
    good = revocation.sign(WORLD.issuer, site=SITE, revoked={b"x" * 16: NOW}, issued=NOW, next_update=NOW + 9, seq=3)
    raw = data.draw(st.one_of(st.binary(max_size=300), st.just(good).map(lambda b: _mutate(b, data.draw))))
    with contextlib.suppress(CLEAN):
        revocation.verify(raw, WORLD.issuers)


@FUZZ
@given(st.binary(max_size=400))
def test_entry_and_record_decoders(raw):
    for fn in (entry.decode_leaf, entry.decode_record, entry.decode_receipt, entry.body_hash_of,
               Presentation.from_cbor, cbor.loads, qr_text.decode):
        with contextlib.suppress(CLEAN):
            fn(raw)


def test_deep_nesting_and_trailing_bytes_are_format_errors():
    import pytest
    with pytest.raises(FormatError):
        cbor.loads(b"\x81" * 5000 + b"\x00")
    with pytest.raises(FormatError):
        cbor.loads(cbor2.dumps(1) + b"\x00")
    with pytest.raises(FormatError):
        qr_text.decode("KP1:" + "A" * 5000)
