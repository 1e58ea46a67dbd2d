"""The phone's host-card-emulation application: the patient pass over ISO 7816-4 APDUs.

Protocol (docs/design-notes.md):

* AID (proprietary, ISO/IEC 7816-5 category F): ``F0 4B 49 4F 53 4B 50 41 53 53``
  (F0 + ASCII "KIOSKPASS"), 10 bytes.
* ``00 A4 04 00 Lc AID [Le]`` SELECT. Response data: version (1 byte, 0x01) and the pass
  length (2 bytes big-endian), SW 9000. Another AID: 6A82.
* ``00 B0 P1 P2 Le`` GET PASS as READ BINARY: P1-P2 is the 15-bit byte offset into the
  pass (P1 bit 8 = 0). Returns up to Le bytes; SW 6282 when fewer than Le remain, 6B00 for
  an offset past the end. Reads are idempotent, so a reader may repeat one after a link error.
* ``80 2A P1 00 Lc DATA [Le]`` SIGN (proprietary class). DATA is a CBOR map: P1=00
  ``{"site": str, "kiosk": str, "nonce": bstr 16..32}`` for a check-in presentation, P1=01
  the same plus ``"body_hash": bstr 32`` for the optional consent signature. The phone builds
  the domain-separated statement itself (the wallet does) and signs it; the result is
  ``statement_cbor || signature`` (the signature is the last 64 bytes, Ed25519). The result
  is returned in chunks ISO 7816-4 style: up to Le bytes with SW 61xx while more remain,
  then ``00 C0 00 00 Le`` GET RESPONSE for the rest.

Status words: 6E00 unknown class, 6D00 unknown instruction, 6A86 bad P1/P2, 6700 wrong
length, 6A80 malformed SIGN data, 6985 conditions not satisfied (SIGN or READ before
SELECT, GET RESPONSE with nothing pending, or the wallet refusing — e.g. a site that is not
its pass's), 6F00 any other failure. `process` never raises.
"""
from __future__ import annotations

import logging
from typing import Protocol

from kiosk.errors import FormatError, KioskError
from kiosk.hardware.nfc import apdu as A
from kiosk.protocol import cbor

log = logging.getLogger(__name__)

AID = bytes.fromhex("F0") + b"KIOSKPASS"
VERSION = 0x01
CLA_ISO = 0x00
CLA_PROPRIETARY = 0x80
INS_SIGN = 0x2A
P1_PRESENTATION = 0x00
P1_CONSENT = 0x01
SIGNATURE_LEN = 64
NONCE_MIN, NONCE_MAX = 16, 32
MAX_TEXT = 64  # site and kiosk ids are [a-z0-9-]{1,32}; leave room, refuse the absurd
MAX_SIGN_DATA = 512  # the SIGN map: ids, a nonce, a body hash — far below this


class PhoneWallet(Protocol):
    """What the pass application needs from the wallet (implemented in kiosk/wallet/).

    `sign_*` build the docs/design-notes.md statement (`kiosk-nfc-v1` / `kiosk-consent-v1`) and
    return ``(statement CBOR bytes, Ed25519 signature)``. They raise (any exception;
    `KioskError`, `ValueError` or `PermissionError` for a deliberate refusal such as a
    site that is not the pass's) to refuse.
    """

    pass_bytes: bytes

    def sign_nfc(self, site: str, kiosk: str, nonce: bytes) -> tuple[bytes, bytes]: ...

    def sign_consent(self, site: str, kiosk: str, nonce: bytes,
                     body_hash: bytes) -> tuple[bytes, bytes]: ...


class PassApplication:
    """The HCE application: feed it command APDUs, get response APDUs back."""

    def __init__(self, wallet: PhoneWallet) -> None:
        self.wallet = wallet
        self._selected = False
        self._pending = b""  # SIGN result not yet fetched by GET RESPONSE

    def reset(self) -> None:
        """The field was lost / a new activation: nothing is selected."""
        self._selected = False
        self._pending = b""

    def process(self, command: bytes) -> bytes:
        """Answer one command APDU. Never raises: every failure is a status word."""
        try:
            return self._process(command)
        except Exception:  # noqa: BLE001 - the card must answer, never crash
            log.warning("pass application: unexpected failure answered with 6F00")
            return A.status(A.SW_UNKNOWN)

    def _process(self, command: bytes) -> bytes:
        try:
            c = A.CommandApdu.decode(command)
        except FormatError:
            return A.status(A.SW_WRONG_LENGTH)
        if c.cla not in (CLA_ISO, CLA_PROPRIETARY):
            return A.status(A.SW_CLA_NOT_SUPPORTED)
        if c.cla == CLA_ISO and c.ins == A.INS_SELECT:
            return self._select(c)
        if c.cla == CLA_ISO and c.ins == A.INS_READ_BINARY:
            return self._read(c)
        if c.cla == CLA_ISO and c.ins == A.INS_GET_RESPONSE:
            return self._get_response(c)
        if c.cla == CLA_PROPRIETARY and c.ins == INS_SIGN:
            return self._sign(c)
        return A.status(A.SW_INS_NOT_SUPPORTED)

    def _select(self, c: A.CommandApdu) -> bytes:
        if c.p1 != 0x04 or c.p2 not in (0x00, 0x0C):
            self._selected = False
            return A.status(A.SW_WRONG_P1P2)
        if c.data != AID:
            self._selected = False  # ISO 7816-4: a failed SELECT leaves nothing selected here
            return A.status(A.SW_FILE_NOT_FOUND)
        self._selected = True
        self._pending = b""
        fci = bytes([VERSION]) + len(self.wallet.pass_bytes).to_bytes(2, "big")
        return A.status(A.SW_OK, fci if c.p2 == 0x00 else b"")

    def _read(self, c: A.CommandApdu) -> bytes:
        if not self._selected:
            return A.status(A.SW_CONDITIONS_NOT_SATISFIED)
        if c.data:
            return A.status(A.SW_WRONG_LENGTH)
        if c.p1 & 0x80:
            return A.status(A.SW_WRONG_P1P2)  # short-EF addressing is not offered
        offset = c.p1 << 8 | c.p2
        blob = self.wallet.pass_bytes
        if offset > len(blob) or (offset == len(blob) and blob):
            return A.status(A.SW_OFFSET_OUTSIDE_EF)
        le = min(c.le or 256, 256)
        chunk = blob[offset:offset + le]
        return A.status(A.SW_OK if len(chunk) == le else A.SW_END_OF_FILE, chunk)

    def _get_response(self, c: A.CommandApdu) -> bytes:
        if c.p1 or c.p2:
            return A.status(A.SW_WRONG_P1P2)
        if not self._selected or not self._pending:
            return A.status(A.SW_CONDITIONS_NOT_SATISFIED)
        return self._chunk(min(c.le or 256, 256))

    def _chunk(self, le: int) -> bytes:
        part, self._pending = self._pending[:le], self._pending[le:]
        if self._pending:
            left = len(self._pending)
            return A.status(A.SW_BYTES_REMAINING | (left if left < 256 else 0), part)
        return A.status(A.SW_OK, part)

    def _sign(self, c: A.CommandApdu) -> bytes:
        if c.p1 not in (P1_PRESENTATION, P1_CONSENT) or c.p2 != 0:
            return A.status(A.SW_WRONG_P1P2)
        if not c.data:
            return A.status(A.SW_WRONG_LENGTH)
        if not self._selected:
            return A.status(A.SW_CONDITIONS_NOT_SATISFIED)
        self._pending = b""
        request = _parse_sign_data(c.data, consent=c.p1 == P1_CONSENT)
        if request is None:
            return A.status(A.SW_WRONG_DATA)
        try:
            if c.p1 == P1_PRESENTATION:
                statement, signature = self.wallet.sign_nfc(*request)
            else:
                statement, signature = self.wallet.sign_consent(*request)
        except (KioskError, ValueError, PermissionError):
            log.info("pass application: the wallet refused to sign")
            return A.status(A.SW_CONDITIONS_NOT_SATISFIED)
        if len(signature) != SIGNATURE_LEN or not statement:
            return A.status(A.SW_UNKNOWN)
        self._pending = bytes(statement) + bytes(signature)
        return self._chunk(min(c.le or 256, 256))


def _parse_sign_data(data: bytes, *, consent: bool) -> tuple | None:
    """Decode and check SIGN's CBOR map; None when it is malformed."""
    try:
        m = cbor.loads(data, "SIGN data", max_bytes=MAX_SIGN_DATA)
    except FormatError:
        return None
    keys = {"site", "kiosk", "nonce"} | ({"body_hash"} if consent else set())
    if not isinstance(m, dict) or set(m) != keys:
        return None
    site, kiosk, nonce = m["site"], m["kiosk"], m["nonce"]
    if not (isinstance(site, str) and isinstance(kiosk, str) and isinstance(nonce, bytes)):
        return None
    if not (0 < len(site) <= MAX_TEXT and 0 < len(kiosk) <= MAX_TEXT):
        return None
    if not NONCE_MIN <= len(nonce) <= NONCE_MAX:
        return None
    if consent:
        body_hash = m["body_hash"]
        if not isinstance(body_hash, bytes) or len(body_hash) != 32:
            return None
        return site, kiosk, nonce, body_hash
    return site, kiosk, nonce


def encode_sign_data(site: str, kiosk: str, nonce: bytes, body_hash: bytes | None = None) -> bytes:
    """The SIGN command data (reader side): a canonical CBOR map."""
    m: dict[str, object] = {"site": site, "kiosk": kiosk, "nonce": bytes(nonce)}
    if body_hash is not None:
        m["body_hash"] = bytes(body_hash)
    return cbor.dumps(m)
