"""One CBOR decoding policy for every format, and COSE per RFC 9052 §3 (issue #12, items 1 and 6).

Each test here is a finding of the red-team review: it failed (or hung) before the policy.
"""
from __future__ import annotations

import hashlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from protocol_world import NOW, SITE
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message

from kiosk.errors import FormatError, KioskError, Reason
from kiosk.protocol import (
    cbor,
    cose,
    entry,
    keys,
    patient_pass,
    presentation,
    qr_text,
    revocation,
)


def shared_reference_bomb(depth: int = 13, width: int = 4) -> bytes:
    """Value k = 28([value k+1, 29(k+1) × (width-1)]): tiny on the wire, width^depth expanded."""
    out = b"\xd8\x1c\x80"
    for k in range(depth - 1, -1, -1):
        refs = b"".join(b"\xd8\x1d" + cbor2.dumps(k + 1) for _ in range(width - 1))
        out = b"\xd8\x1c" + bytes([0x80 | width]) + out + refs
    return out


def _record(sealed_item: bytes, size: int = 255) -> bytes:
    """A record message {kid, leaf, sealed, last_size} (keys in deterministic order) padded to `size`."""
    head = cbor.dumps("kid") + cbor.dumps(b"k" * 8) + cbor.dumps("leaf")
    tail = cbor.dumps("sealed") + sealed_item + cbor.dumps("last_size") + b"\x00"
    pad = size - 1 - len(head) - len(tail) - 2
    return b"\xa4" + head + b"\x58" + bytes([pad]) + b"\x00" * pad + tail


# ---------------------------------------------------------------- item 1: shared references

@pytest.mark.timeout(10)  # a hang guard: the old decoder took minutes on this record
def test_the_255_byte_shared_reference_record_is_refused_before_anything_expands():
    rec = _record(shared_reference_bomb())
    assert len(rec) == 255
    with pytest.raises(FormatError, match="shared references"):
        entry.decode_record(rec)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("decoder", ["receipt", "revocation", "qr", "pass", "statement", "leaf"])
def test_shared_references_are_refused_by_every_decoder(world, decoder):
    bomb = shared_reference_bomb()
    rl = world.revocations()
    with pytest.raises(FormatError, match="shared references"):
        if decoder == "receipt":
            entry.decode_receipt(bomb)
        elif decoder == "revocation":
            revocation.verify(b"\xd2\x84" + bomb, world.issuers)
        elif decoder == "qr":
            presentation.from_qr_text(qr_text.encode(bomb))
        elif decoder == "pass":
            patient_pass.decode(bomb)
        elif decoder == "leaf":
            entry.decode_leaf(bomb)
        else:
            p = patient_pass.decode(world.pass_bytes)
            pres = presentation.Presentation("nfc", world.pass_bytes, bomb, b"\x00" * 64)
            v = presentation.verify(pres, world.issuers, now=NOW, revocations=rl,
                                    fresh=presentation.Freshness(site=SITE))
            assert v.reason is Reason.MALFORMED and p
            raise FormatError(v.detail)


def test_a_lone_break_marker_is_a_format_error():
    for data in (b"\xff", b"\x82\x01\xff", b"\xa1\x01\xff"):
        with pytest.raises(FormatError, match="break marker"):
            cbor.loads(data)


@pytest.mark.parametrize("data,why", [
    (b"", "empty"), (b"\x82\x01", "truncated"), (b"\x1c", "reserved"), (b"\x01\x02", "trailing"),
    (b"\x62\xc3\x28", "UTF-8"), (b"\x9b" + b"\xff" * 8, "more items announced"),
    (b"\xf7", "simple value"), (b"\xf0", "simple value"), (b"\xf8\x20", "simple value"),
    (b"\xa1\x80\x00", "integers or text"), (b"\xa1\xf5\x00", "integers or text"),
])
def test_malformed_cbor_is_a_format_error_naming_the_problem(data, why):
    with pytest.raises(FormatError, match=why):
        cbor.loads(data)


@pytest.mark.parametrize("tag", [0, 1, 2, 3, 24, 55799, 258, 61])
def test_only_the_tags_a_format_uses_are_accepted(tag):
    tagged = cbor2.dumps(cbor2.CBORTag(tag, b"x"))
    with pytest.raises(FormatError, match=f"tag {tag} is not used"):
        entry.decode_record(cbor.dumps({"leaf": b"", "body": b"", "last_size": 0}) [:-1] + tagged)
    with pytest.raises(FormatError, match=f"tag {tag} is not used"):
        cbor.loads(tagged, tags=(18,))


def test_the_cose_tag_only_at_the_root():
    inner = cbor2.dumps([cbor2.CBORTag(18, [])])
    with pytest.raises(FormatError, match="tag 18 is not used"):
        cbor.loads(inner, tags=(18,))


def test_duplicate_map_keys_are_refused_in_either_mode():
    dup = b"\xa2\x61a\x01\x61a\x02"
    with pytest.raises(FormatError, match="duplicate map key"):
        cbor.loads(dup)
    with pytest.raises(FormatError, match="duplicate map key"):
        cbor.loads(dup, deterministic=False)
    # the same key in two encodings is still one key
    with pytest.raises(FormatError, match="duplicate map key"):
        cbor.loads(b"\xa2\x01\x00\x18\x01\x00", deterministic=False)


def test_limits_on_items_depth_and_size_are_checked_before_decoding():
    with pytest.raises(FormatError, match="more than 100 items"):
        cbor.loads(cbor.dumps(list(range(200))), max_items=100)
    with pytest.raises(FormatError, match="nested too deeply"):
        cbor.loads(b"\x81" * 5000 + b"\x00")
    with pytest.raises(FormatError, match="size limit") as e:
        cbor.loads(b"\x40" * 2000, max_bytes=1000)
    assert e.value.reason == Reason.TOO_LARGE.value


@pytest.mark.parametrize("data,why", [
    (b"\x18\x05", "shortest"), (b"\x59\x00\x01x", "shortest"), (b"\x9f\x01\xff", "indefinite"),
    (b"\xa2\x02\x00\x01\x00", "order"), (b"\xfa\x3f\xc0\x00\x00", "float"),
    (b"\xfb\x3f\xf8\x00\x00\x00\x00\x00\x00", "float"), (b"\xf9\x7e\x01", "float"),
])
def test_only_the_deterministic_encoding_is_accepted(data, why):
    with pytest.raises(FormatError, match=why):
        cbor.loads(data)
    cbor.loads(data, deterministic=False)


# RFC 8949 Appendix A (floats) and §4.2.1's key order, which is bytewise, not length-first
@pytest.mark.parametrize("value,hexed", [
    (0.0, "f90000"), (-0.0, "f98000"), (1.0, "f93c00"), (1.1, "fb3ff199999999999a"), (1.5, "f93e00"),
    (65504.0, "f97bff"), (100000.0, "fa47c35000"), (3.4028234663852886e38, "fa7f7fffff"),
    (1.0e300, "fb7e37e43c8800759c"), (5.960464477539063e-8, "f90001"), (0.00006103515625, "f90400"),
    (-4.0, "f9c400"), (-4.1, "fbc010666666666666"), (float("inf"), "f97c00"), (float("nan"), "f97e00"),
    (float("-inf"), "f9fc00"), (24, "1818"), (-1000, "3903e7"), (18446744073709551615, "1bffffffffffffffff"),
    ({"z": 0, "aa": 0, 10: 0, 100: 0, -1: 0}, "a50a001864002000617a0062616100"),
])
def test_the_encoder_is_rfc8949_core_deterministic(value, hexed):
    assert cbor.dumps(value).hex() == hexed
    back = cbor.loads(bytes.fromhex(hexed))
    assert back == value or (value != value and back != back)


# ---------------------------------------------------------------- item 6: COSE and CWT

def _sign1(protected: bytes, unprotected: bytes, payload: bytes, key: SigningKey) -> bytes:
    """A COSE_Sign1 with hand-made header bytes and a valid signature over them."""
    sig_structure = cbor.dumps(["Signature1", protected, b"", payload])
    sig = key.sign(sig_structure).signature
    return b"\xd2\x84" + cbor.dumps(protected) + unprotected + cbor.dumps(payload) + cbor.dumps(sig)


def _protected(sk: SigningKey) -> bytes:
    return cbor.dumps({1: -8, 4: keys.kid(sk.verify_key)})


def test_a_hand_made_sign1_verifies(world):
    raw = _sign1(_protected(world.issuer), b"\xa0", b"hello", world.issuer)
    assert cose.verify_sign1(raw, world.issuers)[0] == b"hello"


def test_duplicate_labels_in_the_unprotected_header_are_refused(world):
    raw = _sign1(_protected(world.issuer), b"\xa2\x05\x40\x05\x41x", b"hello", world.issuer)
    with pytest.raises(FormatError, match="duplicate map key"):
        cose.verify_sign1(raw, world.issuers)


def test_alg_in_the_unprotected_header_is_refused(world):
    raw = _sign1(cbor.dumps({1: -8}), cbor.dumps({1: -8, 4: keys.kid(world.issuer.verify_key)}),
                 b"hello", world.issuer)
    with pytest.raises(FormatError, match="alg must be in the protected header only"):
        cose.verify_sign1(raw, world.issuers)


def test_a_label_in_both_buckets_is_refused(world):
    raw = _sign1(_protected(world.issuer), cbor.dumps({4: keys.kid(world.issuer.verify_key)}),
                 b"hello", world.issuer)
    with pytest.raises(FormatError, match="both buckets"):
        cose.verify_sign1(raw, world.issuers)


def test_crit_is_refused(world):
    prot = cbor.dumps({1: -8, 2: [99], 4: keys.kid(world.issuer.verify_key)})
    with pytest.raises(FormatError, match="critical"):
        cose.verify_sign1(_sign1(prot, b"\xa0", b"hello", world.issuer), world.issuers)


def test_duplicate_cwt_claim_keys_are_refused_though_signed(world):
    claims = cbor2.loads(cose.decode_sign1(world.pass_bytes).payload)
    good = cbor.dumps(claims)
    assert good[0] == 0xA0 | len(claims)
    # the same map with claim 2 (sub) twice: a second subject after the first
    dup = bytes([0xA0 | (len(claims) + 1)]) + good[1:] + b"\x02" + cbor.dumps("p-9999")
    raw = _sign1(_protected(world.issuer), b"\xa0", dup, world.issuer)
    with pytest.raises(FormatError, match="pass claims"):
        patient_pass.decode(raw)
    v = patient_pass.verify(raw, world.issuers, now=NOW, revocations=world.revocations())
    assert not v.ok and v.reason is Reason.MALFORMED


def _variants(world) -> dict[str, bytes]:
    """The same signed pass re-encoded: each would be a second pass_hash for one pass."""
    msg = cose.decode_sign1(world.pass_bytes)
    prot, payload, sig = msg.protected_bytes, msg.payload, msg.signature
    long_payload = b"\x5a" + len(payload).to_bytes(4, "big") + payload  # a non-shortest length
    return {
        "untagged": world.pass_bytes[1:],
        "extra unprotected header": b"\xd2\x84" + cbor.dumps(prot) + cbor.dumps({5: b"x" * 12})
                                    + cbor.dumps(payload) + cbor.dumps(sig),
        "kid also unprotected": b"\xd2\x84" + cbor.dumps(prot) + cbor.dumps({4: msg.protected[4]})
                                + cbor.dumps(payload) + cbor.dumps(sig),
        "non-shortest length": b"\xd2\x84" + cbor.dumps(prot) + b"\xa0" + long_payload + cbor.dumps(sig),
        "indefinite array": b"\xd2\x9f" + cbor.dumps(prot) + b"\xa0" + cbor.dumps(payload)
                            + cbor.dumps(sig) + b"\xff",
        "tag 18 as two bytes": b"\xd8\x12\x84" + world.pass_bytes[2:],
    }


@pytest.mark.parametrize("variant", ["untagged", "extra unprotected header", "kid also unprotected",
                                     "non-shortest length", "indefinite array", "tag 18 as two bytes"])
def test_a_pass_has_one_accepted_encoding(world, variant):
    raw = _variants(world)[variant]
    assert raw != world.pass_bytes
    with pytest.raises(FormatError):
        patient_pass.decode(raw)
    v = patient_pass.verify(raw, world.issuers, now=NOW, revocations=world.revocations())
    assert not v.ok and v.reason is Reason.MALFORMED


def test_a_non_deterministic_claims_payload_is_refused_though_signed(world):
    claims = cbor2.loads(cose.decode_sign1(world.pass_bytes).payload)
    shuffled = cbor2.dumps(dict(reversed(list(claims.items()))))  # same claims, keys out of order
    raw = _sign1(_protected(world.issuer), b"\xa0", shuffled, world.issuer)
    with pytest.raises(FormatError, match="deterministic order"):
        patient_pass.decode(raw)


def test_a_pycose_pass_that_meets_the_rule_is_accepted_and_hashes_the_same(world):
    sk = world.issuer
    claims = cbor2.loads(cose.decode_sign1(world.pass_bytes).payload)
    msg = Sign1Message(phdr={Algorithm: EdDSA, KID: keys.kid(sk.verify_key)}, payload=cbor.dumps(claims))
    msg.key = OKPKey(crv=Ed25519, x=bytes(sk.verify_key), d=bytes(sk))
    raw = msg.encode()
    p = patient_pass.decode(raw)
    assert hashlib.sha256(raw).digest() == p.pass_hash
    assert patient_pass.verify(raw, world.issuers, now=NOW, revocations=world.revocations()).ok


# ---------------------------------------------------------------- item 7: nothing hostile in logs

def test_unknown_fields_are_counted_never_quoted():
    hostile = {"entry_hash": b"e" * 32, "kid": b"k" * 8, "sealed": b"", "last_size": 0,
               "Jane Doe 1970-01-01": 1}
    with pytest.raises(FormatError) as e:
        entry.decode_record(cbor.dumps(hostile))
    assert "Jane" not in e.value.message and "1 unknown field" in e.value.message


def test_every_decoder_raises_only_project_errors():
    # the classes that used to leak: cbor2's own errors, RecursionError, a stray break marker
    for raw in (b"\xff", b"\x81" * 100000, b"\xc2\x41\x01", b"\xd9\xd9\xf7\x00", b"\x5f\x41a\x61b\xff"):
        for fn in (entry.decode_record, entry.decode_receipt, entry.decode_leaf, patient_pass.decode,
                   presentation.Presentation.from_cbor, cbor.loads):
            with pytest.raises(KioskError):
                fn(raw)


_leaves = (st.none() | st.booleans() | st.integers(-(1 << 64), (1 << 64) - 1) | st.binary(max_size=40)
           | st.text(max_size=30))


@settings(max_examples=500, deadline=None)
@given(st.recursive(_leaves, lambda c: st.lists(c, max_size=6) | st.lists(c, max_size=3).map(tuple)
                    | st.dictionaries(st.text(max_size=30), c, max_size=6)
                    | st.builds(cbor2.CBORTag, st.integers(0, (1 << 64) - 1), c), max_leaves=40))
def test_the_fast_encoder_writes_what_the_deterministic_encoder_writes(value):
    # cbor.dumps hands text-keyed values to cbor2's C encoder; bytes must not change
    slow = bytearray()
    cbor._encode(value, slow)
    assert cbor.dumps(value) == bytes(slow)


def test_values_outside_the_fast_encoders_domain_keep_the_deterministic_encoding():
    # integer keys in bytewise order (24 before -1, unlike cbor2's length-first canonical),
    # shortest floats, a bignum refused
    assert cbor.dumps({24: 0, -1: 1}) == bytes.fromhex("a2181800" "2001")
    assert cbor.dumps({"a": 1.5, "b": [1.0e300]}) == bytes.fromhex("a26161f93e006162" "81fb7e37e43c8800759c")
    with pytest.raises(ValueError):
        cbor.dumps({"big": 1 << 64})
