"""Witness cosignatures on checkpoints: C2SP tlog-cosignature v1 (Ed25519).

A cosignature is one more signature line on the log's signed-note checkpoint:

    — <cosigner name> base64(key id || u64 timestamp || Ed25519 signature)

key id = SHA-256(name || 0x0A || 0x04 || public key)[:4]; the signed message is

    cosignature/v1\\n
    time <timestamp, decimal>\\n
    <the whole checkpoint note text, extension lines included>

and means: "as of <timestamp>, this is the largest tree I have seen for this log and it is
consistent with everything I saw before". Every kiosk is such a witness: it cosigns the
checkpoints it accepted (after the consistency proof from its previous head) and publishes
its latest cosigned checkpoint, retained, so an audit can compare the store with it.
"""
from __future__ import annotations

import base64
import hashlib
import re
import struct
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from kiosk.errors import FormatError, VerificationError
from kiosk.ledger.checkpoint import (
    SIG_PREFIX,
    Checkpoint,
    NoteVerifier,
    _b64decode,
    _valid_name,
    open_checkpoint,
    parse_note,
)

ALG_COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = (1 << 63) - 1
_HEADER = "cosignature/v1\n"


def witness_name(origin: str, kiosk: str) -> str:
    """The cosigner name of a kiosk witnessing log `origin` (a schema-less URL, C2SP)."""
    name = f"{origin}/witness/{kiosk}"
    if not _valid_name(name):
        raise FormatError("witness name must be non-empty, without spaces or '+'")
    return name


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key
                          ).digest()[:4]


def cosignature_message(text: str, timestamp: int) -> bytes:
    """What a cosigner signs over a checkpoint note text (which ends in a newline)."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise FormatError("cosignature timestamp out of range")
    return (f"{_HEADER}time {timestamp}\n" + text).encode("utf-8")


@dataclass(frozen=True)
class Cosigner:
    """A witness's name and Ed25519 public key (C2SP vkey with type 0x04)."""

    name: str
    key: nacl.signing.VerifyKey

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, bytes(self.key))

    def text(self) -> str:
        """The verifier key text `name+hex(key id)+base64(0x04 || key)`."""
        raw = bytes([ALG_COSIGNATURE_V1]) + bytes(self.key)
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(raw).decode()}"


def parse_cosigner_key(text: str) -> Cosigner:
    """Parse a cosigner vkey; FormatError if malformed, VerificationError if its id is wrong."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not _valid_name(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise FormatError("cosigner key must be name+keyid+key")
    name, id_hex, key_b64 = parts
    raw = _b64decode(key_b64, "cosigner key")
    if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
        raise FormatError("cosigner key is not an Ed25519 cosignature/v1 key (type 0x04)")
    if hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4] != bytes.fromhex(id_hex):
        raise VerificationError("cosigner key id does not match its name and key")
    return Cosigner(name, nacl.signing.VerifyKey(raw[1:]))


def cosign(note: bytes, name: str, key: nacl.signing.SigningKey, timestamp: int) -> bytes:
    """`note` with this witness's cosignature line added (any older line of it replaced)."""
    if not _valid_name(name):
        raise FormatError("witness name must be non-empty, without spaces or '+'")
    text, _ = parse_note(note)
    sig = key.sign(cosignature_message(text, timestamp)).signature
    kid = cosigner_key_id(name, bytes(key.verify_key))
    line = SIG_PREFIX + name + " " + base64.b64encode(kid + struct.pack(">Q", timestamp) + sig
                                                      ).decode()
    keep = [s for s in _sig_lines(note) if not s.startswith(SIG_PREFIX + name + " ")]
    return (text + "\n" + "".join(x + "\n" for x in keep + [line])).encode("utf-8")


def _sig_lines(note: bytes) -> list[str]:
    msg = note.decode("utf-8")
    return msg[msg.rfind("\n\n") + 2:].rstrip("\n").split("\n")


def merge(note: bytes, other: bytes) -> bytes:
    """One note with the signature lines of both (the same checkpoint text); FormatError else."""
    text, _ = parse_note(note)
    text2, _ = parse_note(other)
    if text != text2:
        raise FormatError("cannot merge signatures of two different checkpoints")
    lines = _sig_lines(note)
    lines += [x for x in _sig_lines(other) if x not in lines]
    return (text + "\n" + "".join(x + "\n" for x in lines)).encode("utf-8")


@dataclass(frozen=True)
class Witnessed:
    """A checkpoint signed by the log and cosigned by `witness` at `timestamp`."""

    witness: str
    timestamp: int
    checkpoint: Checkpoint
    note: bytes


def split_cosignature(raw: bytes) -> tuple[int, bytes]:
    """A cosignature line's bytes after the key id: (timestamp, Ed25519 signature)."""
    if len(raw) != 8 + 64:
        raise VerificationError("cosignature has the wrong length")
    (ts,) = struct.unpack(">Q", raw[:8])
    if ts > MAX_TIMESTAMP:
        raise VerificationError("cosignature timestamp out of range")
    return ts, raw[8:]


def cosignature_timestamp(note: bytes, cosigner: Cosigner) -> int | None:
    """The timestamp of `cosigner`'s line on `note` after checking it, None if it has none.

    Raises VerificationError for a line that names the cosigner but does not verify.
    """
    text, sigs = parse_note(note)
    mine = [s for s in sigs if s.name == cosigner.name and s.key_id == cosigner.key_id]
    if not mine:
        return None
    try:
        ts, sig = split_cosignature(mine[0].signature)
    except VerificationError as e:
        raise VerificationError(f"{e.message} ({cosigner.name})") from None
    try:
        cosigner.key.verify(cosignature_message(text, ts), sig)
    except nacl.exceptions.BadSignatureError:
        raise VerificationError(f"invalid cosignature by {cosigner.name}") from None
    return ts


def open_witnessed(note: bytes, log: NoteVerifier | None, cosigners: list[Cosigner],
                   origin: str | None = None) -> list[Witnessed]:
    """Every valid cosignature on a checkpoint note by one of `cosigners`.

    With `log`, the log's own signature must verify too (a witness only cosigns what the log
    signed). Raises FormatError for a malformed note and VerificationError for a bad log
    signature or a cosignature line that claims a known cosigner but does not verify.
    """
    text, _ = parse_note(note)
    cp = open_checkpoint(note, log, origin) if log is not None else Checkpoint.from_text(text)
    if origin is not None and cp.origin != origin:
        raise VerificationError("checkpoint origin does not match the expected log")
    out = []
    for c in cosigners:
        ts = cosignature_timestamp(note, c)
        if ts is not None:
            out.append(Witnessed(c.name, ts, cp, note))
    return out
