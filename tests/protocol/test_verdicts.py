"""Every verdict of pass and presentation verification, each from a case that produces it."""
from __future__ import annotations

import os

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey
from protocol_world import NOW, SITE

from kiosk.errors import Reason, VerificationError
from kiosk.protocol import patient_pass, presentation, revocation, sealing
from kiosk.protocol.presentation import Freshness, Presentation, ReplayCache
from kiosk.wallet.wallet import Wallet, WalletError


def _nfc(world, nonce=b"n" * 16, kiosk="kiosk-1", site=SITE):
    stmt, sig = world.wallet.sign_nfc(site, kiosk, nonce)
    return Presentation("nfc", world.pass_bytes, stmt, sig)


def _verify(world, pres, *, now=NOW, rl="fresh", fresh=None, replay=None):
    rl = world.revocations() if rl == "fresh" else rl
    fresh = fresh or Freshness(site=SITE, kiosk="kiosk-1", nonce=b"n" * 16)
    return presentation.verify(pres, world.issuers, now=now, revocations=rl, fresh=fresh, replay=replay)


def test_valid_nfc_presentation(world):
    v = _verify(world, _nfc(world))
    assert v.ok and v.reason is Reason.OK
    assert v.data["pass"].patient == "p-0011"


def test_bad_signature_of_issuer(world):
    raw = bytearray(world.pass_bytes)
    raw[-5] ^= 0x40  # inside the signature
    v = patient_pass.verify(bytes(raw), world.issuers, now=NOW, revocations=world.revocations())
    assert v.reason is Reason.BAD_SIGNATURE


def test_unknown_issuer(world):
    other = SigningKey.generate()
    raw = patient_pass.issue(other, issuer="x", site=SITE, patient="p-1", patient_key=world.wallet.public_key,
                             template=None, sealing_keys=[], now=NOW, valid_s=100)
    v = patient_pass.verify(raw, world.issuers, now=NOW, revocations=world.revocations())
    assert v.reason is Reason.UNKNOWN_ISSUER


def test_expired_and_not_yet_valid(world):
    p = patient_pass.decode(world.pass_bytes)
    assert patient_pass.verify(world.pass_bytes, world.issuers, now=p.expires_at + 1000,
                               revocations=world.revocations(next_update=p.expires_at + 5000)).reason is Reason.EXPIRED
    early = world.revocations(issued=p.not_before - 2000)  # a list older than the moment judged
    assert patient_pass.verify(world.pass_bytes, world.issuers, now=p.not_before - 1000,
                               revocations=early).reason is Reason.NOT_YET_VALID


def test_revoked_at_time(world):
    pid = patient_pass.decode(world.pass_bytes).pass_id
    assert _verify(world, _nfc(world), rl=world.revocations({pid: NOW - 10})).reason is Reason.REVOKED
    # revoked after the moment judged (the gateway judges at `created`): still valid then
    assert _verify(world, _nfc(world), rl=world.revocations({pid: NOW + 10})).ok


def test_revocation_list_missing_or_stale(world):
    assert _verify(world, _nfc(world), rl=None).reason is Reason.REVOCATION_LIST_STALE
    stale = world.revocations(next_update=NOW - 2 * 86400)
    assert _verify(world, _nfc(world), rl=stale).reason is Reason.REVOCATION_LIST_STALE


def test_revocation_list_forged_or_other_site(world):
    raw = revocation.sign(SigningKey.generate(), site=SITE, revoked={}, issued=NOW, next_update=NOW + 9, seq=1)
    with pytest.raises(VerificationError):
        revocation.verify(raw, world.issuers)
    raw = revocation.sign(world.issuer, site="elsewhere", revoked={}, issued=NOW, next_update=NOW + 9, seq=1)
    with pytest.raises(VerificationError):
        revocation.verify(raw, world.issuers, site=SITE)


def test_replayed_presentation(world):
    cache = ReplayCache()
    pres = _nfc(world)
    assert _verify(world, pres, replay=cache).ok
    assert _verify(world, pres, replay=cache).reason is Reason.REPLAYED


def test_stale_nfc_answer_to_another_challenge(world):
    assert _verify(world, _nfc(world, nonce=b"x" * 16)).reason is Reason.STALE


def test_nfc_statement_for_another_kiosk(world):
    assert _verify(world, _nfc(world, kiosk="kiosk-9")).reason is Reason.WRONG_KIOSK


def test_wallet_refuses_another_site(world):
    with pytest.raises(WalletError):
        world.wallet.sign_nfc("elsewhere", "kiosk-1", b"n" * 16)


def test_qr_windows(world):
    text = world.wallet.qr_text(now=NOW)
    pres = presentation.from_qr_text(text)
    fresh = Freshness(site=SITE)
    assert _verify(world, pres, fresh=fresh).ok
    assert _verify(world, pres, fresh=fresh, now=NOW + 31).ok  # the neighbouring window (drift)
    assert _verify(world, pres, fresh=fresh, now=NOW + 120).reason is Reason.STALE
    unsynced = Freshness(site=SITE, clock_synced=False)
    assert _verify(world, pres, fresh=unsynced).reason is Reason.CLOCK_UNSYNCED


def test_statement_bound_to_another_pass_is_malformed(world):
    other = Wallet.create()
    raw = patient_pass.issue(world.issuer, issuer="i", site=SITE, patient="p-2", patient_key=other.public_key,
                             template=None, sealing_keys=[], now=NOW - 10, valid_s=1000)
    other.store_pass(raw)
    stmt, sig = other.sign_nfc(SITE, "kiosk-1", b"n" * 16)
    assert _verify(world, Presentation("nfc", world.pass_bytes, stmt, sig)).reason is Reason.MALFORMED


def test_signature_by_someone_else_is_bad(world):
    stmt, _ = world.wallet.sign_nfc(SITE, "kiosk-1", b"n" * 16)
    sig = SigningKey.generate().sign(stmt).signature
    assert _verify(world, Presentation("nfc", world.pass_bytes, stmt, sig)).reason is Reason.BAD_SIGNATURE


def test_malformed_pass(world):
    v = patient_pass.verify(b"\xa1\x01", world.issuers, now=NOW, revocations=world.revocations())
    assert v.reason is Reason.MALFORMED and "COSE_Sign1" in v.detail or "pass" in v.detail


def test_wrong_site_pass(world):
    v = patient_pass.verify(world.pass_bytes, world.issuers, now=NOW, revocations=world.revocations(),
                            site="other-site")
    assert v.reason is Reason.WRONG_SITE


def test_card_pass_needs_no_signature_but_a_bare_phone_pass_is_a_copy(world):
    # a phone pass lifted out of a screenshot or an old QR code: refused however often shown
    assert _verify(world, Presentation("card", world.pass_bytes)).reason is Reason.STALE
    card = patient_pass.issue(world.issuer, issuer="i", site=SITE, patient="p-card", patient_key=None,
                              template=world.template[:sealing.CARD_TEMPLATE_BYTES],
                              sealing_keys=[world.sealing.public_key],
                              now=NOW - 10, valid_s=1000)
    p = patient_pass.decode(card)
    assert p.is_card and p.patient_key is None
    v = _verify(world, Presentation("card", card))
    assert v.ok and v.data["presentation"].kind == "card"
    # a card pass cannot pretend to be a phone: it has no key to check a statement with
    stmt, sig = world.wallet.sign_nfc(SITE, "kiosk-1", b"n" * 16)
    assert _verify(world, Presentation("nfc", card, stmt, sig)).reason is Reason.MALFORMED


def test_a_pass_is_either_phone_or_card(world):
    import cbor2

    from kiosk.protocol import cose
    claims = cbor2.loads(cose.decode_sign1(world.pass_bytes).payload)
    claims[patient_pass.CARD] = True  # both a key and the card claim
    raw = cose.sign1(cbor2.dumps(claims), world.issuer)
    assert patient_pass.verify(raw, world.issuers, now=NOW, revocations=world.revocations()).reason is Reason.MALFORMED


def test_sealed_template_opens_only_with_the_kiosk_key(world):
    p = patient_pass.decode(world.pass_bytes)
    assert p.has_template
    assert sealing.open_sealed([list(x) for x in p.sealed_templates], [world.sealing]) == world.template
    with pytest.raises(VerificationError):
        sealing.open_sealed([list(x) for x in p.sealed_templates], [PrivateKey.generate()])
    # a tampered box does not open either
    kid, box = p.sealed_templates[0]
    with pytest.raises(VerificationError):
        sealing.open_sealed([[kid, box[:-1] + bytes([box[-1] ^ 1])]], [world.sealing])
    assert world.template not in world.pass_bytes


def test_rotation_seals_to_both_keys(world):
    nxt = PrivateKey.generate()
    raw = patient_pass.issue(world.issuer, issuer="i", site=SITE, patient="p-3", patient_key=world.wallet.public_key,
                             template=world.template, sealing_keys=[world.sealing.public_key, nxt.public_key],
                             now=NOW, valid_s=100)
    sealed = [list(x) for x in patient_pass.decode(raw).sealed_templates]
    assert sealing.open_sealed(sealed, [nxt]) == world.template
    assert sealing.open_sealed(sealed, [world.sealing]) == world.template


def test_consent_signature(world):
    body_hash = os.urandom(32)
    stmt, sig = world.wallet.sign_consent(SITE, "kiosk-1", b"c" * 16, body_hash)
    p = patient_pass.decode(world.pass_bytes)
    assert presentation.verify_consent_signature(p, stmt, sig, site=SITE, kiosk="kiosk-1", body_hash=body_hash).ok
    bad = presentation.verify_consent_signature(p, stmt, sig, site=SITE, kiosk="kiosk-1", body_hash=os.urandom(32))
    assert bad.reason is Reason.MALFORMED


def test_no_phi_claims_in_the_pass(world):
    import cbor2

    from kiosk.protocol import cose
    claims = cbor2.loads(cose.decode_sign1(world.pass_bytes).payload)
    assert set(claims) == {1, 2, 4, 5, 6, 7, 8, patient_pass.SITE, patient_pass.SEALED}


def test_a_lagging_kiosk_clock_cannot_resurrect_a_revoked_pass(world):
    """The list was signed after the revocation; real time is at least its issue time."""
    pid = patient_pass.decode(world.pass_bytes).pass_id
    rl = world.revocations({pid: NOW + 5000}, issued=NOW + 6000, next_update=NOW + 90000)
    lagging_now = NOW  # the kiosk's clock is 6000 s behind the issuer's
    assert _verify(world, _nfc(world), now=lagging_now, rl=rl).reason is Reason.REVOKED
    # the gateway judges at the entry's created time: valid then, before the revocation
    v = presentation.verify(_nfc(world), world.issuers, now=NOW, revocations=rl,
                            fresh=Freshness(site=SITE, kiosk="kiosk-1"), live=False)
    assert v.ok
