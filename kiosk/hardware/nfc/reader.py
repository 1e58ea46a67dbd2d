"""The kiosk's NFC reader: passes and signatures in, no frames in sight.

    reader = NfcReader("/dev/serial0", 115200, timeout=1.0)
    cred = reader.wait_for_credential(timeout=30)   # None when nobody tapped
    if cred and cred.kind == "phone":
        statement, signature = cred.sign_presentation(site, kiosk, nonce)
    reader.close()

A phone is recognised by SELECT of our AID succeeding (see `pass_app`); otherwise the
NFC Forum Type 4 NDEF application is tried for a clinic-issued card (see `type4`). A
target with SAK 00h is a Type 2 Tag (an NTAG card, see `type2`): its NDEF pass is read with
READ/FAST_READ, and `write_card` writes one (`kiosk issuer write-card`). Every
failure is `kiosk.errors.NfcError` with a machine-readable `reason` ("timeout",
"card-lost", "card-error", "not-a-pass", "link-error", "port-unavailable", "port-busy",
...). Nothing here logs pass bytes, nonces or signatures.

A tapped card or phone is untrusted: every read and every signature runs against a
deadline (`card_timeout`, 5 s by default) and a cap on the number of exchanges, so a
hostile phone (endless `61xx` chains, one byte per READ BINARY, ...) costs the kiosk at
most that long plus one exchange timeout, and ends in NfcError(reason="card-error").
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

from kiosk.errors import FormatError, NfcError
from kiosk.hardware.nfc import apdu as A
from kiosk.hardware.nfc import pass_app, type2, type4
from kiosk.hardware.nfc.pn532 import Pn532, TargetA
from kiosk.hardware.nfc.transport import SerialTransport

log = logging.getLogger(__name__)

CHUNK = 0xF0  # R-APDU data per exchange: fits one normal PN532 frame with status and SW
MAX_PASS = 8192
MAX_SIGN_OUT = 4096  # statement + signature; ours are a few hundred bytes
MAX_GET_RESPONSES = MAX_SIGN_OUT // CHUNK + 2
POLL_INTERVAL = 0.05
CARD_TIMEOUT = 5.0  # the longest one tapped card/phone may hold the reader: a read or a signature


def _read_cap(size: int) -> int:
    """READ BINARY exchanges allowed for a `size`-byte pass: twice what full chunks need
    (a phone may send less than asked), plus two."""
    return 2 * -(-size // CHUNK) + 2


@dataclass
class NfcCredential:
    """What was tapped: `kind` "phone" or "card" and the pass (COSE_Sign1 bytes).

    A phone can sign while it stays in the field; a card cannot sign at all.
    """

    kind: Literal["phone", "card"]
    pass_bytes: bytes = field(repr=False)
    _reader: NfcReader | None = field(default=None, repr=False, compare=False)
    _session: int = field(default=0, repr=False, compare=False)

    def sign_presentation(self, site: str, kiosk: str, nonce: bytes, *,
                          timeout: float | None = None) -> tuple[bytes, bytes]:
        """Have the phone sign `{ctx: "kiosk-nfc-v1", site, kiosk, nonce, pass_hash}`
        (docs/design-notes.md). Returns (statement CBOR bytes, Ed25519 signature).

        `timeout` (default: the reader's `card_timeout`) bounds the whole exchange; a phone
        that has not delivered its signature by then is NfcError(reason="card-error")."""
        return self._sign(pass_app.P1_PRESENTATION, site, kiosk, nonce, None, timeout)

    def sign_consent(self, site: str, kiosk: str, nonce: bytes, body_hash: bytes, *,
                     timeout: float | None = None) -> tuple[bytes, bytes]:
        """Have the phone sign `{ctx: "kiosk-consent-v1", site, kiosk, nonce, body_hash}`.
        `timeout` as for `sign_presentation`."""
        if len(body_hash) != 32:
            raise NfcError("body_hash must be 32 bytes", reason="bad-request")
        return self._sign(pass_app.P1_CONSENT, site, kiosk, nonce, body_hash, timeout)

    def _sign(self, p1: int, site: str, kiosk: str, nonce: bytes,
              body_hash: bytes | None, timeout: float | None) -> tuple[bytes, bytes]:
        if self.kind != "phone" or self._reader is None:
            raise NfcError("a card cannot sign; only a phone can", reason="cannot-sign")
        if not pass_app.NONCE_MIN <= len(nonce) <= pass_app.NONCE_MAX:
            raise NfcError("the nonce must be 16..32 bytes", reason="bad-request")
        reader = self._reader
        deadline = time.monotonic() + (reader.card_timeout if timeout is None else timeout)
        return reader._sign(self._session, p1, site, kiosk, nonce, body_hash, deadline)


class NfcReader:
    """A PN532 on a serial port, ready to read passes.

    `timeout` bounds each exchange with the chip; `card_timeout` bounds everything one
    tapped card or phone gets: reading its pass, or one signature. The port is opened
    exclusively: a second NfcReader on it (say `kiosk nfc probe` while kiosk.service
    runs) is NfcError(reason="port-busy").
    """

    def __init__(self, port: str, baudrate: int = 115200, timeout: float = 1.0, *,
                 retries: int = 3, card_timeout: float = CARD_TIMEOUT) -> None:
        self.timeout = timeout
        self.card_timeout = card_timeout
        self._transport = SerialTransport(port, baudrate, timeout)
        self._chip = Pn532(self._transport, timeout=timeout, retries=retries)
        self._target: TargetA | None = None
        self._session = 0
        try:
            self._transport.wake_up()
            self._chip.sam_configuration()
            self._chip.set_parameters()  # automatic RATS back on, whatever a previous host left
            self._chip.set_retries(passive=0x02)  # bounded polling, never "forever"
        except NfcError:
            self._transport.close()
            raise

    @classmethod
    def from_config(cls, nfc: object) -> NfcReader:
        """Open the reader a `kiosk.config.NfcTable` describes."""
        return cls(nfc.port, nfc.baudrate, nfc.timeout_s)  # type: ignore[attr-defined]

    def firmware_version(self) -> str:
        """The chip and firmware, e.g. "PN532 v1.6"."""
        return str(self._chip.get_firmware_version())

    def wait_for_credential(self, timeout: float, *,
                            read_timeout: float | None = None) -> NfcCredential | None:
        """Poll the field until a phone or card with a pass is read, or `timeout` passes.

        A target that is neither (no pass application, no NDEF pass) is released and
        polling goes on. A credential that leaves the field mid-read raises
        NfcError(reason="card-lost").

        `timeout` is how long to wait for a tap. Reading what was tapped has its own
        deadline, `read_timeout` (default `card_timeout`) from the moment the target
        answered — a short poll (the engine polls every 0.1 s) must still be able to read a
        full pass — so the call ends within about ``timeout + read_timeout`` plus one
        exchange timeout, whatever the target does. A target still sending when its
        deadline passes is NfcError(reason="card-error").
        """
        deadline = time.monotonic() + timeout
        budget = self.card_timeout if read_timeout is None else read_timeout
        self._release()
        while True:
            target = self._chip.in_list_passive_target_106a(timeout=min(self.timeout, 1.0))
            if target is not None:
                self._target = target
                self._session += 1
                read_deadline = time.monotonic() + budget
                if target.iso_dep:
                    cred = self._read_phone(read_deadline) or self._read_card(read_deadline)
                    if cred is not None:
                        return cred
                elif target.sel_res == 0x00:
                    cred = self._read_type2(read_deadline)
                    if cred is not None:
                        return cred
                log.info("a target without a pass was in the field; ignored")
                self._release()
            if time.monotonic() + POLL_INTERVAL >= deadline:
                return None
            time.sleep(POLL_INTERVAL)

    def read_uid(self, timeout: float) -> bytes | None:
        """The UID of a plain ISO 14443-A card (a staff badge) tapped within `timeout`, else None.

        ISO-DEP targets are not badges: phones show random UIDs and pass cards are read
        as passes, so both are skipped. A Type 2 tag (SAK 00) may be either: badges are
        often NTAG or Ultralight too, so one is a badge unless it holds a card pass — a
        patient's clinic card tapped in staff mode signs nobody in (its UID is no secret:
        anyone who held the card could read it)."""
        deadline = time.monotonic() + timeout
        self._release()
        while True:
            target = self._chip.in_list_passive_target_106a(timeout=min(self.timeout, 1.0))
            if target is not None:
                self._target = target
                patient_card = False
                if not target.iso_dep and target.sel_res == 0x00:
                    patient_card = self._read_type2(time.monotonic() + self.card_timeout) is not None
                self._release()
                if patient_card:
                    log.info("a patient card in the field while a badge was asked for; ignored")
                elif not target.iso_dep:
                    return target.uid
            if time.monotonic() + POLL_INTERVAL >= deadline:
                return None
            time.sleep(POLL_INTERVAL)

    def close(self) -> None:
        """Release any target and close the port."""
        try:
            self._release()
        finally:
            self._transport.close()

    def __enter__(self) -> NfcReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------------
    def _release(self) -> None:
        if self._target is not None:
            self._chip.in_release(0)
            self._target = None

    def _transmit_raw(self, command: bytes, deadline: float) -> bytes:
        """One exchange with the target; none is started after `deadline` (monotonic)."""
        if self._target is None:
            raise NfcError("no card or phone in the field", reason="card-lost")
        if time.monotonic() >= deadline:
            raise NfcError("the card/phone took too long; abandoned", reason="card-error")
        try:
            return self._chip.in_data_exchange(self._target.number, command, deadline=deadline)
        except NfcError as e:
            if e.reason == "timeout" and time.monotonic() >= deadline:  # the card's time, not the reader
                raise NfcError("the card/phone took too long; abandoned", reason="card-error") from None
            raise

    def _transmit(self, command: A.CommandApdu, deadline: float) -> A.ResponseApdu:
        try:
            return A.ResponseApdu.decode(self._transmit_raw(command.encode(), deadline))
        except FormatError:
            raise NfcError("the card sent a malformed answer", reason="card-error") from None

    def _read_phone(self, deadline: float) -> NfcCredential | None:
        r = self._transmit(A.select_aid(pass_app.AID), deadline)
        if not r.ok:
            return None
        if len(r.data) < 3 or r.data[0] != pass_app.VERSION:
            raise NfcError("unsupported pass application version", reason="card-error")
        size = int.from_bytes(r.data[1:3], "big")
        if not 0 < size <= MAX_PASS:
            raise NfcError("the phone offers no usable pass", reason="not-a-pass")
        blob = bytearray()
        for _ in range(_read_cap(size)):
            if len(blob) >= size:
                break
            r = self._transmit(A.read_binary(len(blob), min(CHUNK, size - len(blob))), deadline)
            if r.sw not in (A.SW_OK, A.SW_END_OF_FILE) or not r.data:
                raise NfcError(f"the phone refused to send its pass (SW {r.sw:04X})",
                               reason="card-error")
            blob += r.data
        if len(blob) < size:
            raise NfcError("the phone sent its pass in too many pieces", reason="card-error")
        return NfcCredential("phone", bytes(blob[:size]), self, self._session)

    def _read_card(self, deadline: float) -> NfcCredential | None:
        try:
            message = type4.read_ndef(lambda command: self._transmit_raw(command, deadline),
                                      MAX_PASS)
            blob = type4.extract_pass(message)
        except FormatError:
            return None
        if not blob:
            return None
        return NfcCredential("card", blob)

    def _type2_exchanges(self, deadline: float) -> tuple[type2.Exchange, type2.Exchange | None]:
        """READ/WRITE through InDataExchange; GET_VERSION/FAST_READ through InCommunicateThru,
        offered only for NXP UIDs (04..): other Type 2 tags go mute on an unknown command."""
        target = self._target
        assert target is not None

        def thru(command: bytes) -> bytes:
            if time.monotonic() >= deadline:
                raise NfcError("the card took too long; abandoned", reason="card-error")
            try:
                return self._chip.in_communicate_thru(command, deadline=deadline)
            except NfcError as e:
                if e.reason == "timeout" and time.monotonic() >= deadline:
                    raise NfcError("the card took too long; abandoned", reason="card-error") from None
                raise

        def exchange(command: bytes) -> bytes:
            return self._transmit_raw(command, deadline)

        return exchange, (thru if target.uid[:1] == b"\x04" else None)

    def _read_type2(self, deadline: float) -> NfcCredential | None:
        exchange, thru = self._type2_exchanges(deadline)
        try:
            blob = type4.extract_pass(type2.read_ndef(exchange, thru, MAX_PASS + 64))
        except FormatError:
            return None
        return NfcCredential("card", blob) if blob else None

    def write_card(self, message: bytes, *, timeout: float, lock: bool = False,
                   overwrite: bool = False) -> dict:
        """Write an NDEF message to the next Type 2 tag (NTAG215/216) tapped within
        `timeout`, read it back, and optionally lock the tag for good.

        NfcError(reason="timeout") when no tag came; FormatError when the message does not
        fit, the tag is read-only, already holds a message (without `overwrite`), or reads
        back different. Returns {uid, model, written, capacity, locked}.
        """
        end = time.monotonic() + timeout
        self._release()
        while True:
            target = self._chip.in_list_passive_target_106a(timeout=min(self.timeout, 1.0))
            if target is not None and target.sel_res == 0x00:
                break
            if target is not None:
                self._chip.in_release(0)
            if time.monotonic() + POLL_INTERVAL >= end:
                raise NfcError("no Type 2 tag (NTAG) was put on the reader", reason="timeout")
            time.sleep(POLL_INTERVAL)
        self._target = target
        deadline = time.monotonic() + self.card_timeout * 4  # a write is ~230 exchanges
        exchange, thru = self._type2_exchanges(deadline)
        info = type2.identify(exchange, thru)
        if not overwrite and type2.read_ndef(exchange, thru):
            raise FormatError("the tag already holds an NDEF message (overwrite it on purpose)")
        written = type2.write_ndef(exchange, message, info)
        if type2.read_ndef(exchange, thru) != message:
            raise FormatError("the tag reads back different bytes: write failed")
        if lock:
            type2.lock(exchange, info)
            if type2.identify(exchange, thru).writable:
                raise FormatError("the tag did not take the lock")
        return {"uid": target.uid.hex(), "model": info.model.name if info.model else "Type 2 tag",
                "written": written, "capacity": info.data_area, "locked": lock}

    def _sign(self, session: int, p1: int, site: str, kiosk: str, nonce: bytes,
              body_hash: bytes | None, deadline: float) -> tuple[bytes, bytes]:
        if session != self._session or self._target is None:
            raise NfcError("that phone is no longer in the field", reason="card-lost")
        data = pass_app.encode_sign_data(site, kiosk, nonce, body_hash)
        r = self._transmit(A.CommandApdu(pass_app.CLA_PROPRIETARY, pass_app.INS_SIGN, p1, 0,
                                         data, CHUNK), deadline)
        out = bytearray(r.data)  # the SIGN answer itself may be a bare 61xx (ISO 7816-4)
        for _ in range(MAX_GET_RESPONSES):
            if r.sw & 0xFF00 != A.SW_BYTES_REMAINING:
                break
            left = r.sw & 0xFF or 256
            r = self._transmit(A.CommandApdu(0x00, A.INS_GET_RESPONSE, 0, 0,
                                             le=min(left, CHUNK)), deadline)
            if not r.data:
                raise NfcError(f"the phone sent an empty part of its signature (SW {r.sw:04X})",
                               reason="card-error")
            out += r.data
            if len(out) > MAX_SIGN_OUT:
                raise NfcError("the phone's signature answer is too long", reason="card-error")
        else:
            if r.sw & 0xFF00 == A.SW_BYTES_REMAINING:
                raise NfcError("the phone's signature answer does not end", reason="card-error")
        if r.sw == A.SW_CONDITIONS_NOT_SATISFIED:
            raise NfcError("the phone declined to sign", reason="declined")
        if not r.ok or len(out) <= pass_app.SIGNATURE_LEN:
            raise NfcError(f"the phone could not sign (SW {r.sw:04X})", reason="card-error")
        sig = pass_app.SIGNATURE_LEN
        return bytes(out[:-sig]), bytes(out[-sig:])
