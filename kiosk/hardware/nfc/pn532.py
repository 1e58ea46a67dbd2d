"""The PN532 command set as a host controller speaks it (NXP UM0701-02 §6.2 and §7).

Sits on a transport (anything with `write`, `read(max, deadline)`, `flush_input`) and the
frame codec; knows nothing of APDUs or passes. Link-level recovery follows §6.2.3:

* a command that is not ACKed (and not answered) within `ack_timeout` is sent again;
* a response that arrives without its ACK is accepted (a lost ACK);
* a response with a bad data checksum is answered with a NACK, so the PN532 repeats it;
* the error frame (§6.2.1.5) and unexpected frames cost one retry each;
* when the response does not come before the deadline, an ACK aborts the command
  (§6.2.1.3) and NfcError is raised. Nothing waits past its deadline: a caller's absolute
  `deadline` bounds resends and NACKs too, so a stream of bad-checksum answers cannot
  stretch a command past it.

InDataExchange keeps to the chip's 262 data bytes per frame (§7.3.8): a longer command is
sent chained (MI in the Tg byte), a longer answer (MI in the status) is fetched part by part.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from kiosk.errors import NfcError
from kiosk.hardware.nfc import frames

log = logging.getLogger(__name__)

# command codes (UM0701-02 §7, table 15)
DIAGNOSE = 0x00
GET_FIRMWARE_VERSION = 0x02
READ_REGISTER = 0x06
WRITE_REGISTER = 0x08
SET_SERIAL_BAUD_RATE = 0x10
SET_PARAMETERS = 0x12
SAM_CONFIGURATION = 0x14
POWER_DOWN = 0x16
RF_CONFIGURATION = 0x32
IN_DATA_EXCHANGE = 0x40
IN_COMMUNICATE_THRU = 0x42
IN_DESELECT = 0x44
IN_LIST_PASSIVE_TARGET = 0x4A
IN_RELEASE = 0x52

# status byte error codes (§7.1, table 14) that mean "the target is gone or unusable"
STATUS_TEXT = {
    0x01: "target did not answer (timeout)",
    0x02: "CRC error on the RF link",
    0x03: "parity error on the RF link",
    0x13: "RF framing/format error",
    0x25: "command invalid in current DEP state",
    0x27: "command not acceptable in this context (no target)",
    0x29: "released by initiator",
    0x2B: "card previously activated has disappeared",
}
MAX_DATA = 262  # InDataExchange DataOut / DataIn per frame (§7.3.8)
MAX_CHAINED_PARTS = 64
# SetParameters (§7.2.9): bit 2 fAutomaticATR_RES, bit 4 fAutomaticRATS (the power-up default)
PARAMETERS = 0x14
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)  # §7.2.8


class Transport(Protocol):
    """What the driver needs from a serial line."""

    def write(self, data: bytes) -> None: ...
    def read(self, max_bytes: int, deadline: float) -> bytes: ...
    def flush_input(self) -> None: ...


@dataclass(frozen=True)
class FirmwareVersion:
    """GetFirmwareVersion's answer (§7.2.2): IC 0x32 is a PN532."""

    ic: int
    version: int
    revision: int
    support: int

    def __str__(self) -> str:
        return f"PN5{self.ic:02x} v{self.version}.{self.revision}"


@dataclass(frozen=True)
class TargetA:
    """An ISO 14443-A target from InListPassiveTarget at 106 kbps (§7.3.5)."""

    number: int
    sens_res: bytes
    sel_res: int
    uid: bytes
    ats: bytes

    @property
    def iso_dep(self) -> bool:
        """SAK bit 6 (0x20): the target speaks ISO/IEC 14443-4."""
        return bool(self.sel_res & 0x20)


class Pn532:
    """Commands of a PN532 in initiator (reader) mode."""

    def __init__(self, transport: Transport, *, timeout: float = 1.0, ack_timeout: float = 0.25,
                 retries: int = 3) -> None:
        self.transport = transport
        self.timeout = timeout
        self.ack_timeout = ack_timeout
        self.retries = retries
        self._parser = frames.FrameParser()
        self.stats = {"resent": 0, "nacks": 0, "lost_acks": 0, "aborted": 0, "chained": 0}
        self._end = math.inf  # the current command's absolute deadline

    # --- link layer ------------------------------------------------------------------
    def command(self, code: int, params: bytes = b"", timeout: float | None = None,
                deadline: float | None = None) -> bytes:
        """Send one command, return the response parameters (after the response code).

        `timeout` bounds the wait for the response after the ACK; the whole call never
        takes longer than ``(retries + 1) * (ack_timeout + timeout)``, nor past `deadline`
        (monotonic) when given: then the command is aborted and NfcError(reason="timeout").
        """
        timeout = self.timeout if timeout is None else timeout
        self._end = math.inf if deadline is None else deadline
        frame = frames.encode_command(code, params)
        attempts = 0
        nacks = 0
        while True:
            attempts += 1
            if time.monotonic() >= self._end:
                self._abort()
                raise NfcError("the NFC reader did not answer in time", reason="timeout")
            self.transport.flush_input()
            self._parser.reset()
            self.transport.write(frame)
            result = self._await_response(code, timeout)
            if isinstance(result, bytes):
                return result
            # result is the reason this attempt failed
            if result == "checksum" and nacks < self.retries:
                nacks += 1
                result = self._nack_until_good(code, timeout)
                if isinstance(result, bytes):
                    return result
            if result == "timeout":
                self._abort()
                raise NfcError("the NFC reader did not answer in time", reason="timeout")
            if attempts > self.retries:
                raise NfcError(f"the NFC reader link failed ({result})", reason="link-error")
            self.stats["resent"] += 1
            log.debug("resending command 0x%02x after %s", code, result)

    def _await_response(self, code: int, timeout: float) -> bytes | str:
        """Wait for ACK then response. Returns the params, or a failure reason:
        "no-ack" (nothing came: resend), "checksum", "error-frame", "nack", "timeout"."""
        start = time.monotonic()
        ack_deadline = min(start + self.ack_timeout, self._end)
        deadline = min(start + self.ack_timeout + timeout, self._end)
        acked = False
        while True:
            now = time.monotonic()
            limit = deadline if acked else ack_deadline
            if now >= limit:
                return "timeout" if acked or now >= self._end else "no-ack"
            data = self.transport.read(1024, limit)
            for f in self._parser.feed(data) if data else ():
                if isinstance(f, frames.Ack):
                    acked = True
                elif isinstance(f, frames.InformationFrame):
                    if f.tfi == frames.TFI_PN532 and f.command == code + 1:
                        if not acked:
                            self.stats["lost_acks"] += 1
                        return f.params
                    log.debug("ignoring an unexpected frame (tfi 0x%02x)", f.tfi)
                elif isinstance(f, frames.ChecksumError):
                    return "checksum"
                elif isinstance(f, frames.ErrorFrame):
                    return "error-frame"
                elif isinstance(f, frames.Nack):
                    return "nack"

    def _nack_until_good(self, code: int, timeout: float) -> bytes | str:
        """Ask for the last response again with NACKs (§6.2.1.4), within the retry budget."""
        result: bytes | str = "checksum"
        for _ in range(self.retries):
            self.stats["nacks"] += 1
            self._parser.reset()
            self.transport.write(frames.NACK)
            result = self._await_after_nack(code, timeout)
            if result != "checksum":
                return result
        return result

    def _await_after_nack(self, code: int, timeout: float) -> bytes | str:
        deadline = min(time.monotonic() + self.ack_timeout + timeout, self._end)
        while time.monotonic() < deadline:
            data = self.transport.read(1024, deadline)
            for f in self._parser.feed(data) if data else ():
                if isinstance(f, frames.InformationFrame) and f.command == code + 1:
                    return f.params
                if isinstance(f, frames.ChecksumError):
                    return "checksum"
                if isinstance(f, frames.ErrorFrame):
                    return "error-frame"
        return "timeout" if time.monotonic() >= self._end else "no-ack"

    def _abort(self) -> None:
        """An ACK from the host aborts the command in progress (§6.2.1.3)."""
        self.stats["aborted"] += 1
        try:
            self.transport.write(frames.ACK)
        except NfcError:
            log.debug("abort ACK could not be written")

    # --- commands ----------------------------------------------------------------------
    def get_firmware_version(self) -> FirmwareVersion:
        """GetFirmwareVersion (§7.2.2)."""
        p = self.command(GET_FIRMWARE_VERSION)
        if len(p) != 4:
            raise NfcError("malformed firmware version answer", reason="link-error")
        return FirmwareVersion(*p)

    def sam_configuration(self, mode: int = 0x01, timeout: int = 0x14, irq: int = 0x01) -> None:
        """SAMConfiguration (§7.2.10): mode 1 = normal (no SAM); leaves LowVbat after power-up."""
        self.command(SAM_CONFIGURATION, bytes([mode, timeout, irq]))

    def rf_configuration(self, item: int, data: bytes) -> None:
        """RFConfiguration (§7.3.1), any CfgItem."""
        self.command(RF_CONFIGURATION, bytes([item]) + data)

    def set_retries(self, atr: int = 0xFF, psl: int = 0x01, passive: int = 0x02) -> None:
        """RFConfiguration item 5, MaxRetries (§7.3.1). `passive` 0xFF would make
        InListPassiveTarget wait forever for a card; keep it small so polling is bounded."""
        self.rf_configuration(0x05, bytes([atr, psl, passive]))

    def diagnose_echo(self, data: bytes) -> bytes:
        """Diagnose NumTst 0x00, communication line test (§7.2.1): the PN532 echoes data."""
        return self.command(DIAGNOSE, b"\x00" + data)[1:]

    def in_list_passive_target_106a(self, timeout: float | None = None) -> TargetA | None:
        """InListPassiveTarget, one target, 106 kbps type A (§7.3.5); None when the field
        is empty. With automatic RATS (the default) the ATS of an ISO-DEP target follows."""
        p = self.command(IN_LIST_PASSIVE_TARGET, b"\x01\x00", timeout)
        if not p or p[0] == 0:
            return None
        try:
            tg, sens_res, sel_res, uid_len = p[1], p[2:4], p[4], p[5]
            uid = p[6:6 + uid_len]
            rest = p[6 + uid_len:]
            if len(uid) != uid_len:
                raise IndexError
            ats = rest[: rest[0]] if rest else b""
        except IndexError:
            raise NfcError("malformed target data from the reader", reason="link-error") from None
        return TargetA(tg, bytes(sens_res), sel_res, bytes(uid), bytes(ats))

    def in_data_exchange(self, target: int, data: bytes, timeout: float | None = None,
                         deadline: float | None = None) -> bytes:
        """InDataExchange (§7.3.8): send `data` to the target, return its answer.

        More than 262 bytes go chained (MI set in the Tg byte of every part but the last);
        an answer with MI in its status is fetched on with bare-Tg InDataExchanges, at most
        MAX_CHAINED_PARTS parts. A non-zero status (the target left the field, timed out,
        garbled the RF frame) is NfcError with reason "card-lost" or "card-error".
        """
        parts = [data[i:i + MAX_DATA] for i in range(0, len(data), MAX_DATA)] or [b""]
        if len(parts) > MAX_CHAINED_PARTS:
            raise NfcError("command too long to chain", reason="bad-request")
        for part in parts[:-1]:
            self.stats["chained"] += 1
            p = self._exchange_part(bytes([target | 0x40]) + part, timeout, deadline)
            if p[0] & 0x40 or p[1:]:
                raise NfcError("the card answered in the middle of a chained command", reason="card-error")
        p = self._exchange_part(bytes([target]) + parts[-1], timeout, deadline)
        out = bytearray(p[1:])
        for _ in range(MAX_CHAINED_PARTS):
            if not p[0] & 0x40:
                return bytes(out)
            self.stats["chained"] += 1
            p = self._exchange_part(bytes([target]), timeout, deadline)
            out += p[1:]
        raise NfcError("the card's chained answer does not end", reason="card-error")

    def _exchange_part(self, params: bytes, timeout: float | None, deadline: float | None) -> bytes:
        p = self.command(IN_DATA_EXCHANGE, params, timeout, deadline)
        if not p:
            raise NfcError("empty InDataExchange answer", reason="link-error")
        self._check_status(p[0])
        return p

    def set_parameters(self, flags: int = PARAMETERS) -> None:
        """SetParameters (§7.2.9). Sent at start-up: a host such as nfcpy turns automatic
        RATS off and leaves it off, and the chip keeps that until it is powered down."""
        self.command(SET_PARAMETERS, bytes([flags]))

    def in_communicate_thru(self, data: bytes, timeout: float | None = None,
                            deadline: float | None = None) -> bytes:
        """InCommunicateThru (§7.3.9): raw bytes to the activated target, its raw answer
        (CRC handled by the chip). Used for Type 2 commands InDataExchange does not know
        (GET_VERSION, FAST_READ). A non-zero status is NfcError as for InDataExchange."""
        p = self.command(IN_COMMUNICATE_THRU, bytes(data), timeout, deadline)
        if not p:
            raise NfcError("empty InCommunicateThru answer", reason="link-error")
        self._check_status(p[0])
        return p[1:]

    def _check_status(self, status_byte: int) -> None:
        status = status_byte & 0x3F
        if status:
            lost = status in (0x01, 0x27, 0x29, 0x2B)
            raise NfcError(
                f"the card/phone stopped answering: {STATUS_TEXT.get(status, f'status 0x{status:02x}')}",
                reason="card-lost" if lost else "card-error",
            )

    def in_release(self, target: int = 0) -> None:
        """InRelease (§7.3.11); target 0 releases all. Errors are ignored (best effort)."""
        try:
            self.command(IN_RELEASE, bytes([target]))
        except NfcError:
            log.debug("InRelease failed; ignored")

    def set_serial_baud_rate(self, baudrate: int) -> None:
        """SetSerialBaudRate (§7.2.8): after the response the host ACKs, then both switch."""
        self.command(SET_SERIAL_BAUD_RATE, bytes([BAUD_RATES.index(baudrate)]))
        self.transport.write(frames.ACK)
