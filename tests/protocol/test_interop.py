"""Our COSE/CWT and base45 against independent implementations and published vectors."""
from __future__ import annotations

import json

import cbor2
import pytest
from base45_vectors import RFC9285_EXAMPLES, RFC9285_INVALID
from nacl.signing import SigningKey, VerifyKey
from protocol_world import NOW, SITE
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message

from kiosk.errors import FormatError, VerificationError
from kiosk.protocol import cose, keys, patient_pass, qr_text


def _pycose_key(vk: VerifyKey, sk: SigningKey | None = None) -> OKPKey:
    if sk is None:
        return OKPKey(crv=Ed25519, x=bytes(vk))
    return OKPKey(crv=Ed25519, x=bytes(vk), d=bytes(sk))


def test_pycose_verifies_our_pass(world):
    msg = Sign1Message.decode(world.pass_bytes)
    msg.key = _pycose_key(world.issuer.verify_key)
    assert msg.verify_signature()
    assert msg.phdr[Algorithm] is EdDSA or msg.phdr[Algorithm] == EdDSA
    assert msg.phdr[KID] == keys.kid(world.issuer.verify_key)
    claims = cbor2.loads(msg.payload)
    assert claims[patient_pass.SITE] == SITE
    assert claims[patient_pass.SUB] == "p-0011"
    assert claims[patient_pass.CNF][1][-2] == bytes(world.wallet.public_key)


def test_pycose_rejects_our_pass_with_another_key(world):
    msg = Sign1Message.decode(world.pass_bytes)
    msg.key = _pycose_key(SigningKey.generate().verify_key)
    assert not msg.verify_signature()


def test_we_accept_a_pass_pycose_produced(world):
    sk = world.issuer
    good = patient_pass.decode(world.pass_bytes)
    claims = cbor2.loads(cose.decode_sign1(world.pass_bytes).payload)
    msg = Sign1Message(phdr={Algorithm: EdDSA, KID: keys.kid(sk.verify_key)}, payload=cbor2.dumps(claims))
    msg.key = _pycose_key(sk.verify_key, sk)
    raw = msg.encode()
    v = patient_pass.verify(raw, world.issuers, now=NOW, revocations=world.revocations(), site=SITE)
    assert v.ok, v
    assert v.data["pass"].pass_id == good.pass_id


def test_published_eddsa_sign1_vector(shared_data):
    case = json.loads((shared_data / "cose/eddsa-examples/eddsa-sig-01.json").read_text())
    k = case["input"]["sign0"]["key"]
    vk = VerifyKey(bytes.fromhex(k["x_hex"]))
    data = bytes.fromhex(case["output"]["cbor"])
    payload, kid = cose.verify_sign1(data, {b"11": vk})
    assert payload == case["input"]["plaintext"].encode()
    # the Sig_structure the vector signed is what Ed25519 verifies over
    tbs = bytes.fromhex(case["intermediates"]["ToBeSign_hex"])
    vk.verify(tbs, cose.decode_sign1(data).signature)
    # Ed25519 is deterministic: the same key signs the same Sig_structure identically
    assert SigningKey(bytes.fromhex(k["d_hex"])).sign(tbs).signature == cose.decode_sign1(data).signature


@pytest.mark.parametrize("name", ["sign-fail-01", "sign-fail-02", "sign-fail-03", "sign-fail-04",
                                  "sign-fail-06", "sign-fail-07"])
def test_published_negative_sign1_vectors_are_refused(shared_data, name):
    case = json.loads((shared_data / f"cose/sign1-tests/{name}.json").read_text())
    data = bytes.fromhex(case["output"]["cbor"])
    with pytest.raises((FormatError, VerificationError)):
        cose.verify_sign1(data, {b"11": SigningKey.generate().verify_key})


def test_ed25519_tampering_of_each_part_is_refused(world):
    """The failure classes of the published vectors, rebuilt for EdDSA."""
    tag = cbor2.loads(world.pass_bytes)
    prot, unprot, payload, sig = tag.value
    cases = {
        "payload": cbor2.CBORTag(18, [prot, unprot, payload[:-1] + bytes([payload[-1] ^ 1]), sig]),
        "protected": cbor2.CBORTag(18, [cbor2.dumps({1: -8, 4: cbor2.loads(prot)[4], 3: 0}), unprot, payload, sig]),
        "signature": cbor2.CBORTag(18, [prot, unprot, payload, bytes([sig[0] ^ 1]) + sig[1:]]),
        "tag": cbor2.CBORTag(98, [prot, unprot, payload, sig]),
        "alg": cbor2.CBORTag(18, [cbor2.dumps({1: -7, 4: cbor2.loads(prot)[4]}), unprot, payload, sig]),
    }
    for _what, msg in cases.items():
        with pytest.raises((FormatError, VerificationError)):
            cose.verify_sign1(cbor2.dumps(msg), world.issuers)
    # RFC 9052 lets the application decide whether the tag is required; ours always tags,
    # and one form means one hash, so the untagged form is refused
    with pytest.raises(FormatError, match="not a tagged COSE_Sign1"):
        cose.verify_sign1(cbor2.dumps(tag.value), world.issuers)
    assert cose.verify_sign1(world.pass_bytes, world.issuers)[0] == payload


@pytest.mark.parametrize("clear,encoded", RFC9285_EXAMPLES)
def test_base45_rfc9285_examples(clear, encoded):
    import base45
    assert base45.b45encode(clear).decode() == encoded
    assert base45.b45decode(encoded) == clear


@pytest.mark.parametrize("bad", RFC9285_INVALID)
def test_base45_invalid_input_is_refused_by_qr_layer(bad):
    with pytest.raises(FormatError):
        qr_text.decode(qr_text.PREFIX + bad)


def test_qr_text_round_trip_and_size(world):
    text = qr_text.encode(world.pass_bytes)
    assert text.startswith("KP1:") and text.isascii()
    assert qr_text.decode(text) == world.pass_bytes
    assert len(text) < 1000  # fits a QR code a phone shows comfortably
