"""C2SP signed notes and tlog-checkpoints, against golang/mod and transparency-dev vectors."""
from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.errors import FormatError, VerificationError
from kiosk.ledger import checkpoint as ckpt
from kiosk.ledger.checkpoint import Checkpoint

VECTORS = Path(__file__).parent / "vectors"
NOTES = json.loads((VECTORS / "note_vectors.json").read_text())
BODIES = json.loads((VECTORS / "checkpoint_bodies.json").read_text())


def _raw(msg: str) -> bytes:
    # the upstream "\xff" case is a raw 0xFF byte (invalid UTF-8), not U+00FF
    return msg.encode("utf-8").replace("\u00ff".encode(), b"\xff")


def peter_signing_key() -> nacl.signing.SigningKey:
    raw = base64.b64decode(NOTES["peter_skey"].split("+", 4)[4])
    assert raw[0] == 1
    return nacl.signing.SigningKey(raw[1:])


# ---------------------------------------------------------------- verifier keys

def test_parse_golang_verifier_keys():
    peter = ckpt.parse_verifier_key(NOTES["peter_vkey"])
    assert peter.name == "PeterNeumann" and peter.key_id.hex() == "c74f20a3"
    assert peter.text() == NOTES["peter_vkey"]
    assert ckpt.verifier_key_text("PeterNeumann", peter_signing_key().verify_key) == NOTES["peter_vkey"]
    enoch = ckpt.parse_verifier_key(NOTES["enoch_vkey"])
    assert enoch.key_id.hex() == "af0cfe78"


@pytest.mark.parametrize("bad", NOTES["bad_vkeys"])
def test_bad_verifier_keys(bad):
    with pytest.raises((FormatError, VerificationError)):
        ckpt.parse_verifier_key(bad)


def test_verifier_key_manglings_are_refused():
    # golang TestNewVerifier: every proper substring and every one-byte increment fails
    vkey = NOTES["peter_vkey"]
    for i in range(len(vkey) + 1):
        for j in range(i + 1, len(vkey) + 1):
            if i == 0 and j == len(vkey):
                continue
            with pytest.raises((FormatError, VerificationError)):
                ckpt.parse_verifier_key(vkey[i:j])
    for i in range(len(vkey)):
        mangled = vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1:]
        with pytest.raises((FormatError, VerificationError)):
            ckpt.parse_verifier_key(mangled)


# ---------------------------------------------------------------- notes

def test_sign_matches_golang():
    note = ckpt.sign_note(NOTES["text"], "PeterNeumann", peter_signing_key())
    assert note.decode() == NOTES["signed_by_peter"]


def test_open_golang_notes():
    peter = ckpt.parse_verifier_key(NOTES["peter_vkey"])
    enoch = ckpt.parse_verifier_key(NOTES["enoch_vkey"])
    both = (NOTES["text"] + "\n" + NOTES["peter_sig_line"] + NOTES["enoch_sig_line"]).encode()
    assert ckpt.open_note(both, peter) == NOTES["text"]
    assert ckpt.open_note(both, enoch) == NOTES["text"]
    text, sigs = ckpt.parse_note(both)
    assert [(s.name, s.key_id.hex()) for s in sigs] == [
        ("PeterNeumann", "c74f20a3"), ("EnochRoot", "af0cfe78")]
    only_enoch = (NOTES["text"] + "\n" + NOTES["enoch_sig_line"]).encode()
    with pytest.raises(VerificationError, match="not signed by key PeterNeumann"):
        ckpt.open_note(only_enoch, peter)


@pytest.mark.parametrize("i", range(len(NOTES["bad_messages"])))
def test_malformed_golang_notes(i):
    peter = ckpt.parse_verifier_key(NOTES["peter_vkey"])
    with pytest.raises(FormatError):
        ckpt.open_note(_raw(NOTES["bad_messages"][i]), peter)


def test_invalid_signature_golang():
    peter = ckpt.parse_verifier_key(NOTES["peter_vkey"])
    with pytest.raises(VerificationError, match="invalid signature for key PeterNeumann"):
        ckpt.open_note(NOTES["invalid_signature"].encode(), peter)


def test_too_many_signatures():
    peter = ckpt.parse_verifier_key(NOTES["peter_vkey"])
    msg = NOTES["text"] + "\n" + NOTES["peter_sig_line"] * 101
    with pytest.raises(FormatError):
        ckpt.open_note(msg.encode(), peter)


# ---------------------------------------------------------------- checkpoint bodies

@pytest.mark.parametrize("case", BODIES["valid"], ids=lambda c: c["desc"])
def test_valid_bodies(case):
    cp = Checkpoint.from_text(case["text"], hash_size=None)
    assert cp == Checkpoint(case["origin"], case["size"], base64.b64decode(case["hash_b64"]),
                            tuple(case["extensions"]))
    assert cp.to_text() == case["text"]


@pytest.mark.parametrize("case", BODIES["invalid"] + BODIES["divergent"], ids=lambda c: c["desc"])
def test_invalid_bodies(case):
    with pytest.raises(FormatError):
        Checkpoint.from_text(case["text"], hash_size=None)


def test_root_hash_must_be_32_bytes_by_default():
    with pytest.raises(FormatError, match="32"):
        Checkpoint.from_text(BODIES["valid"][0]["text"])


# ---------------------------------------------------------------- signed checkpoints

def _log_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(bytes(range(32)))


def test_checkpoint_round_trip():
    sk = _log_key()
    cp = Checkpoint("clinic.example/log", 42, bytes(32), ("ext one",))
    note = ckpt.sign_checkpoint(cp, "clinic.example/log", sk)
    assert note.startswith(b"clinic.example/log\n42\nAAAA")
    assert "\n\n\u2014 clinic.example/log ".encode() in note
    v = ckpt.parse_verifier_key(ckpt.verifier_key_text("clinic.example/log", sk.verify_key))
    assert ckpt.open_checkpoint(note, v, origin="clinic.example/log") == cp
    with pytest.raises(VerificationError, match="origin .* this side expects"):
        ckpt.open_checkpoint(note, v, origin="other.example/log")


def test_checkpoint_by_other_key_is_refused():
    cp = Checkpoint("log", 1, bytes(32))
    other = nacl.signing.SigningKey(bytes([7]) * 32)
    note = ckpt.sign_checkpoint(cp, "log", other)
    v = ckpt.NoteVerifier("log", _log_key().verify_key)
    with pytest.raises(VerificationError, match="not signed by key log"):
        ckpt.open_checkpoint(note, v)


def test_tampered_body_is_refused():
    note = ckpt.sign_checkpoint(Checkpoint("log", 5, bytes(32)), "log", _log_key())
    v = ckpt.NoteVerifier("log", _log_key().verify_key)
    with pytest.raises(VerificationError, match="invalid signature"):
        ckpt.open_checkpoint(note.replace(b"\n5\n", b"\n6\n"), v)


def test_cosignatures_are_ignored():
    sk = _log_key()
    note = ckpt.sign_checkpoint(Checkpoint("log", 5, bytes(32)), "log", sk)
    witness = ckpt.sign_checkpoint(Checkpoint("log", 5, bytes(32)), "witness",
                                   nacl.signing.SigningKey(bytes([3]) * 32))
    combined = note + witness.split(b"\n\n", 1)[1]
    v = ckpt.NoteVerifier("log", sk.verify_key)
    assert ckpt.open_checkpoint(combined, v).size == 5


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_only_raise_our_errors(data):
    v = ckpt.NoteVerifier("log", _log_key().verify_key)
    with pytest.raises((FormatError, VerificationError)):
        ckpt.open_checkpoint(data, v)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 400), st.binary(min_size=1, max_size=4))
def test_fuzz_mutated_notes(pos, junk):
    sk = _log_key()
    note = ckpt.sign_checkpoint(Checkpoint("log", 5, bytes(32)), "log", sk)
    pos = pos % len(note)
    mutated = note[:pos] + junk + note[pos + 1:]
    v = ckpt.NoteVerifier("log", sk.verify_key)
    try:
        ckpt.open_checkpoint(mutated, v)
    except (FormatError, VerificationError):
        return
    # the only acceptable success is a mutation that left the note unchanged
    assert mutated == note


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_verifier_key_text(text):
    with contextlib.suppress(FormatError, VerificationError):
        ckpt.parse_verifier_key(text)
