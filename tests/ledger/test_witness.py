"""C2SP tlog-cosignature v1 (Ed25519): checked against the spec text, the vectors of
transparency-dev/formats (note/note_cosigv1_test.go) and `cryptography` as an independent
Ed25519 verifier of messages built here by hand from the spec."""
from __future__ import annotations

import base64

import nacl.signing
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.errors import FormatError, VerificationError
from kiosk.ledger.checkpoint import Checkpoint, NoteVerifier, parse_note, sign_checkpoint
from kiosk.ledger.witness import (
    Cosigner,
    cosign,
    cosignature_message,
    cosigner_key_id,
    merge,
    open_witnessed,
    parse_cosigner_key,
    split_cosignature,
    witness_name,
)

# C2SP tlog-cosignature.md: the example checkpoint, its witness line and the signed message
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_WITNESS_LINE = ("jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZ"
                     "qhf5nNo0xUe+mbIUBkBIfZ+qnA==")
SPEC_MESSAGE = ("cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
                "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
# transparency-dev/formats: a native cosignature/v1 verifier key, and a timestamp vector
FORMATS_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
FORMATS_LOG_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"  # type 0x01
FORMATS_SIG = ("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gx"
               "EHWWOworDcFiEBYJXORmnFBOBA==")

LOG = "clinic.example/log"
LOG_KEY = nacl.signing.SigningKey(bytes([5]) * 32)
W_KEY = nacl.signing.SigningKey(bytes([7]) * 32)
W = Cosigner(witness_name(LOG, "kiosk-1"), W_KEY.verify_key)


def test_signed_message_is_the_spec_example():
    assert cosignature_message(SPEC_BODY, 1679315147).decode() == SPEC_MESSAGE


def test_spec_and_formats_signature_layouts():
    raw = base64.b64decode(SPEC_WITNESS_LINE)
    assert split_cosignature(raw[4:])[0] == 1679315147  # the time the spec's message names
    assert split_cosignature(base64.b64decode(FORMATS_SIG)[4:])[0] == 1727964367
    with pytest.raises(VerificationError):
        split_cosignature(base64.b64decode(FORMATS_SIG)[4:-1])


def test_formats_verifier_key_and_key_id_with_type_0x04():
    c = parse_cosigner_key(FORMATS_VKEY)
    assert c.name == "remora.n621.de" and c.key_id.hex() == "da77ade7"
    assert c.text() == FORMATS_VKEY
    with pytest.raises(FormatError):  # a note (type 0x01) key is not a cosigner key
        parse_cosigner_key(FORMATS_LOG_VKEY)
    with pytest.raises(VerificationError):
        parse_cosigner_key(FORMATS_VKEY.replace("da77ade7", "da77ade8"))


def _note(size: int = 3) -> bytes:
    return sign_checkpoint(Checkpoint(LOG, size, bytes(range(32))), LOG, LOG_KEY)


def test_cosignature_verifies_independently():
    note = _note()
    out = cosign(note, W.name, W_KEY, 1_700_000_123)
    text, sigs = parse_note(out)
    assert [s.name for s in sigs] == [LOG, W.name]
    line = sigs[1]
    assert line.key_id == cosigner_key_id(W.name, bytes(W_KEY.verify_key))
    ts = int.from_bytes(line.signature[:8], "big")
    msg = b"cosignature/v1\ntime " + str(ts).encode() + b"\n" + text.encode()
    Ed25519PublicKey.from_public_bytes(bytes(W_KEY.verify_key)).verify(line.signature[8:], msg)
    got = open_witnessed(out, NoteVerifier(LOG, LOG_KEY.verify_key), [W], LOG)
    assert [(g.witness, g.timestamp, g.checkpoint.size) for g in got] == [(W.name, 1_700_000_123, 3)]


def test_recosigning_replaces_the_line_and_merge_unions_witnesses():
    note = cosign(cosign(_note(), W.name, W_KEY, 1), W.name, W_KEY, 2)
    assert [s.name for s in parse_note(note)[1]] == [LOG, W.name]
    k2 = nacl.signing.SigningKey(bytes([9]) * 32)
    w2 = Cosigner(witness_name(LOG, "kiosk-2"), k2.verify_key)
    both = merge(note, cosign(_note(), w2.name, k2, 5))
    assert {g.witness for g in open_witnessed(both, None, [W, w2], LOG)} == {W.name, w2.name}
    with pytest.raises(FormatError):
        merge(note, _note(4))


def test_tampered_cosignature_and_wrong_log_signature_are_refused():
    note = bytearray(cosign(_note(), W.name, W_KEY, 7))
    note[-5] = ord("A") if note[-5] != ord("A") else ord("B")
    with pytest.raises((VerificationError, FormatError)):
        open_witnessed(bytes(note), None, [W], LOG)
    other = NoteVerifier(LOG, nacl.signing.SigningKey(bytes([6]) * 32).verify_key)
    with pytest.raises(VerificationError):
        open_witnessed(cosign(_note(), W.name, W_KEY, 7), other, [W], LOG)
