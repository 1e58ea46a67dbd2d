"""One root for the project's own errors, and one verdict type for checks.

Library exceptions (pyserial, paho, psycopg, dlib, cbor2, nacl) are caught where the
library is called and re-raised as one of these; nothing above that boundary imports a
library's exception types. The CLI turns a KioskError into one line and an exit code
(sysexits.h codes; the table is in README.md, "Exit codes"). A check that ran and said no
(a signature, proof or pass that does not verify) exits 1, like `cmp` or `grep`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

EXIT_VERIFICATION_FAILED = 1


class KioskError(Exception):
    """Root of every error the project raises on purpose. `exit_code` is what the CLI returns.

    Raise a subclass: the root's code is EX_SOFTWARE (70), an error nobody classified.
    """

    exit_code = 70

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or type(self).__name__


class ConfigError(KioskError):
    """A configuration file is missing, unreadable, or holds an unknown key or a wrong type."""

    exit_code = 78  # EX_CONFIG (sysexits.h)


class MissingConfigError(ConfigError):
    """A configuration file that is not there: the file named is missing (66, like any input
    file), which says more than "misconfigured" (78) about what to do."""

    exit_code = 66  # EX_NOINPUT


class FormatError(KioskError):
    """Bytes or text that do not decode as the format they claim to be."""

    exit_code = 65  # EX_DATAERR


class VerificationError(KioskError):
    """A signature, proof or credential that decodes but does not verify."""

    exit_code = EXIT_VERIFICATION_FAILED


class UsageError(KioskError):
    """The command line itself is wrong: an unknown option, a missing or malformed argument."""

    exit_code = 64  # EX_USAGE


class NoInputError(KioskError):
    """An input file or folder the user named does not exist or cannot be opened."""

    exit_code = 66  # EX_NOINPUT


class CannotCreateError(KioskError):
    """An output file or folder cannot be created (exists and may not be replaced, or no room)."""

    exit_code = 73  # EX_CANTCREAT


class NoUserError(KioskError):
    """A user account named on the command line (`--owner`, `--user`) does not exist here."""

    exit_code = 67  # EX_NOUSER


class PermissionDeniedError(KioskError):
    """The operating system refused access to a file or device."""

    exit_code = 77  # EX_NOPERM


class KeyFileError(KioskError):
    """A key file is missing, unreadable, of the wrong kind, or has unsafe permissions."""

    exit_code = 77  # EX_NOPERM


class HardwareError(KioskError):
    """A device (camera, reader, display) failed or is absent."""

    exit_code = 69  # EX_UNAVAILABLE


class NfcError(HardwareError):
    """The NFC reader or the card/phone in its field misbehaved (timeout, bad frame, status word)."""


class CameraError(HardwareError):
    """The camera could not deliver frames."""


class UnavailableError(KioskError):
    """A program or service the command needs is not there (espeak-ng, systemctl)."""

    exit_code = 69  # EX_UNAVAILABLE: "a support program or file does not exist"


class TransportError(KioskError):
    """The broker or the network failed."""

    exit_code = 69


class StoreError(KioskError):
    """A database (outbox, log store) failed or holds inconsistent data."""

    exit_code = 74  # EX_IOERR


class LogIntegrityError(StoreError):
    """The Merkle log contradicts itself or an earlier checkpoint: an alarm, never ignored."""

    exit_code = EXIT_VERIFICATION_FAILED  # the log was checked and does not verify


def from_os_error(e: OSError, what: str | None = None, *, output: bool = False) -> KioskError:
    """The project error for an OSError on a file the user named: one line, the right code.
    `output`: the file was being written, so a missing folder, a read-only or full disk is
    "cannot create" (73), not "no input" (66) or an I/O error (74)."""
    name = what or (str(e.filename) if e.filename is not None else "file")
    why = e.strerror or type(e).__name__
    if isinstance(e, PermissionError):
        return PermissionDeniedError(f"{name}: permission denied")
    if isinstance(e, FileExistsError):
        return CannotCreateError(f"{name}: exists already")
    if output:
        return CannotCreateError(f"{name}: cannot create ({why})")
    if isinstance(e, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return NoInputError(f"{name}: {why}")
    return StoreError(f"{name}: {why}")


class Reason(str, enum.Enum):
    """Machine-readable reasons of a verdict. Values are stable: they go into JSON and MQTT."""

    OK = "ok"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_ISSUER = "unknown-issuer"
    UNKNOWN_KIOSK = "unknown-kiosk"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    REVOKED = "revoked"
    REPLAYED = "replayed"
    STALE = "stale"
    WRONG_SITE = "wrong-site"
    WRONG_KIOSK = "wrong-kiosk"
    CLOCK_UNSYNCED = "clock-unsynced"
    REVOCATION_LIST_STALE = "revocation-list-stale"
    TOO_LARGE = "too-large"
    FUTURE = "created-in-future"
    TOO_OLD = "too-old"
    BAD_PROOF = "bad-proof"
    INCONSISTENT = "inconsistent"
    WRONG_ENTRY = "wrong-entry"
    REJECTED = "rejected"
    UNSUPPORTED = "unsupported-format"  # a credential of a kind this kiosk does not read
    SIGNER_NOT_VALID = "signer-not-valid"  # a foreign credential signed outside its certificate's validity
    KEY_USAGE = "key-usage"  # a foreign signer not authorised for this kind of credential


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: `ok`, a machine-readable `reason`, and a human `detail`.

    `detail` never holds personal data: it names fields and positions, not their values.
    `data` carries what a successful check produced (decoded claims, etc.).
    """

    ok: bool
    reason: Reason
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def good(cls, detail: str = "", **data: Any) -> Verdict:
        return cls(True, Reason.OK, detail, dict(data))

    @classmethod
    def bad(cls, reason: Reason, detail: str) -> Verdict:
        return cls(False, reason, detail)

    def as_json(self) -> dict[str, Any]:
        """The verdict as JSON-safe data (without `data`, which may hold bytes)."""
        return {"ok": self.ok, "reason": self.reason.value, "detail": self.detail}

    def __bool__(self) -> bool:
        return self.ok
