"""Checkpoints: the C2SP tlog-checkpoint body inside a C2SP signed note (Ed25519).

    <origin>\\n<decimal tree size>\\n<base64 root hash>\\n[<extension line>\\n ...]
    \\n
    — <key name> <base64(key id || signature)>\\n

C2SP signed-note: the key id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public
key) (0x01 = Ed25519); the signature covers the note text (everything up to and including
the newline before the blank line). The verifier key text is `name+hex(key id)+base64(0x01
|| public key)`. Parsing follows golang.org/x/mod/sumdb/note, whose vectors our tests use.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.signing

from kiosk.errors import FormatError, VerificationError

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # em dash and a space (C2SP signed-note)
MAX_SIGNATURES = 100  # as golang.org/x/mod/sumdb/note
MAX_UINT64 = (1 << 64) - 1
_DECIMAL = re.compile(r"^(0|[1-9][0-9]*)$")


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint body: which log, how many entries, and the root over them."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = field(default_factory=tuple)

    def to_text(self) -> str:
        """The body as note text (C2SP tlog-checkpoint), ending in a newline."""
        _check_line("origin", self.origin)
        if not 0 <= self.size <= MAX_UINT64:
            raise FormatError(f"checkpoint size {self.size} is not an unsigned 64-bit integer")
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        for ext in self.extensions:
            _check_line("extension line", ext)
            lines.append(ext)
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str, *, hash_size: int | None = 32) -> Checkpoint:
        """Parse a checkpoint body; `hash_size=None` accepts a root hash of any length."""
        if not text.endswith("\n"):
            raise FormatError("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise FormatError("checkpoint body needs origin, size and root hash lines")
        origin, size_s, root_s, *ext = lines
        if not origin:
            raise FormatError("checkpoint origin line is empty")
        if len(size_s) > 20 or not _DECIMAL.match(size_s) or int(size_s) > MAX_UINT64:
            raise FormatError("checkpoint size is not a decimal unsigned 64-bit integer")
        root = _b64decode(root_s, "checkpoint root hash")
        if hash_size is not None and len(root) != hash_size:
            raise FormatError(f"checkpoint root hash is {len(root)} bytes, want {hash_size}")
        if any(not line for line in ext):  # C2SP tlog-checkpoint: extension lines non-empty
            raise FormatError("checkpoint has an empty extension line")
        return cls(origin, int(size_s), root, tuple(ext))


@dataclass(frozen=True)
class NoteVerifier:
    """A named Ed25519 note-verifier key."""

    name: str
    key: nacl.signing.VerifyKey

    @property
    def key_id(self) -> bytes:
        """C2SP signed-note key id: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
        return key_id(self.name, bytes(self.key))

    def text(self) -> str:
        """The verifier key text `name+hexid+base64(0x01||key)`."""
        return verifier_key_text(self.name, self.key)


def key_id(name: str, public_key: bytes) -> bytes:
    """C2SP signed-note key id for an Ed25519 key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _valid_name(name: str) -> bool:
    # C2SP signed-note: non-empty, no whitespace and no '+' (golang isValidName).
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _check_line(what: str, line: str) -> None:
    if not line or "\n" in line or any(ord(c) < 0x20 for c in line):
        raise FormatError(f"{what} must be one non-empty line without control characters")


def _b64decode(s: str, what: str) -> bytes:
    """Strict standard base64 with padding; FormatError otherwise."""
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise FormatError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode() != s:
        raise FormatError(f"{what} is not canonical base64")
    return raw


def verifier_key_text(name: str, key: nacl.signing.VerifyKey) -> str:
    """C2SP signed-note verifier key: `name+hex(key id)+base64(0x01 || public key)`."""
    if not _valid_name(name):
        raise FormatError("key name must be non-empty, without spaces or '+'")
    raw = bytes(key)
    return f"{name}+{key_id(name, raw).hex()}+{base64.b64encode(bytes([ALG_ED25519]) + raw).decode()}"


def parse_verifier_key(text: str) -> NoteVerifier:
    """Parse a verifier key text; FormatError if malformed, VerificationError if its id is wrong."""
    parts = text.split("+", 2)  # the base64 key may itself hold '+'
    if len(parts) != 3:
        raise FormatError("verifier key must be name+keyid+key")
    name, id_hex, key_b64 = parts
    if not _valid_name(name) or not re.fullmatch(r"[0-9a-f]{8}", id_hex):
        raise FormatError("verifier key has a bad name or key id")
    key = _b64decode(key_b64, "verifier key")
    if not key:
        raise FormatError("verifier key is empty")
    # the id covers the algorithm byte and the key, whatever the algorithm
    if hashlib.sha256(name.encode() + b"\n" + key).digest()[:4] != bytes.fromhex(id_hex):
        raise VerificationError("verifier key id does not match its name and key")
    if key[0] != ALG_ED25519:
        raise FormatError(f"verifier key algorithm {key[0]} is not Ed25519")
    if len(key) != 33:
        raise FormatError("Ed25519 verifier key must be 32 bytes")
    return NoteVerifier(name, nacl.signing.VerifyKey(key[1:]))


# ---------------------------------------------------------------------------- notes

@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the signer's name, key id and raw signature."""

    name: str
    key_id: bytes
    signature: bytes


def sign_note(text: str, name: str, signing_key: nacl.signing.SigningKey) -> bytes:
    """A C2SP signed note over `text` (which must end in a newline) with one Ed25519 signature."""
    if not text.endswith("\n") or "\n\n" in text or any(
            ord(c) < 0x20 and c != "\n" for c in text):
        raise FormatError("note text must be non-empty lines, each ending in a newline")
    if not _valid_name(name):
        raise FormatError("key name must be non-empty, without spaces or '+'")
    sig = signing_key.sign(text.encode("utf-8")).signature
    kid = key_id(name, bytes(signing_key.verify_key))
    return (text + "\n" + SIG_PREFIX + name + " " +
            base64.b64encode(kid + sig).decode() + "\n").encode("utf-8")


def parse_note(note: bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and signature lines, without verifying anything."""
    try:
        msg = note.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("note is not UTF-8") from None
    if any(ord(c) < 0x20 and c != "\n" for c in msg):
        raise FormatError("note holds control characters")
    split = msg.rfind("\n\n")
    if split < 0:
        raise FormatError("note has no signature block")
    text, block = msg[:split + 1], msg[split + 2:]
    if not block or not block.endswith("\n"):
        raise FormatError("note signature block must end in a newline")
    sigs: list[NoteSignature] = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise FormatError("note signature line must start with an em dash")
        name, _, b64 = line[len(SIG_PREFIX):].partition(" ")
        if not _valid_name(name) or not b64:
            raise FormatError("note signature line has a bad name")
        raw = _b64decode(b64, "note signature")
        if len(raw) < 5:
            raise FormatError("note signature is too short")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
        if len(sigs) > MAX_SIGNATURES:
            raise FormatError("note has too many signatures")
    return text, sigs


def open_note(note: bytes, verifier: NoteVerifier) -> str:
    """Verify `verifier`'s signature on a note and return its text.

    Signatures by other keys are ignored (they may be witnesses' cosignatures). Raises
    FormatError for a malformed note, VerificationError if the key's signature is missing
    or does not verify.
    """
    text, sigs = parse_note(note)
    kid = verifier.key_id
    mine = [s for s in sigs if s.name == verifier.name and s.key_id == kid]
    if not mine:
        raise VerificationError(
            f"note is not signed by key {verifier.name}+{kid.hex()}")
    # Like golang's note.Open, repeated signatures by one key after the first are ignored.
    try:
        if len(mine[0].signature) != 64:
            raise ValueError("wrong signature length")
        verifier.key.verify(text.encode("utf-8"), mine[0].signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        raise VerificationError(
            f"invalid signature for key {verifier.name}+{kid.hex()}") from None
    return text


def sign_checkpoint(cp: Checkpoint, name: str, signing_key: nacl.signing.SigningKey) -> bytes:
    """The checkpoint as a C2SP signed note signed by the log key `name`."""
    return sign_note(cp.to_text(), name, signing_key)


def open_checkpoint(note: bytes, verifier: NoteVerifier, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint note and return its body.

    `origin`, when given, must equal the checkpoint's origin line. Raises FormatError or
    VerificationError naming what failed.
    """
    if origin is not None:
        # a log-name mismatch is a set-up mistake, not a forgery: say which name to change,
        # before the signature check would only report an unknown key name
        got = note.split(b"\n", 1)[0].decode("utf-8", "replace")
        if got != origin:
            raise VerificationError(
                f"checkpoint origin {got!r} is not the log this side expects ({origin!r}): if it is the "
                f"gateway's log, set keys.log_name = \"{got}\" in kiosk.toml (kiosk and gateway "
                f"must name the same log)", reason="wrong-log")
    return Checkpoint.from_text(open_note(note, verifier))
