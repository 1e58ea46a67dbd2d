"""Serial transport to a PN532 on its high-speed UART (HSU), over pyserial.

This is the one place pyserial is imported: its exceptions become `kiosk.errors.NfcError`
here and nothing above this module sees them (STYLE.md item 5). A pseudo-terminal from the
emulator is just another serial port. The port is held exclusively (flock) while open.
"""
from __future__ import annotations

import errno
import logging
import time

import serial

from kiosk.errors import NfcError

log = logging.getLogger(__name__)

# HSU wake-up (UM0701-02 §7.2.11 SAMConfiguration / §6.3.2 power modes): after power-up or
# PowerDown the PN532 needs a "long preamble" — 0x55 0x55 then zeros — before it listens.
WAKE_UP = b"\x55\x55" + bytes(14)
# what flock(LOCK_EX | LOCK_NB) fails with when another process holds the port
_BUSY = {errno.EWOULDBLOCK, errno.EAGAIN}


class SerialTransport:
    """A byte pipe to the PN532 with timeouts. Every failure raises NfcError."""

    def __init__(self, port: str, baudrate: int = 115200, timeout: float = 1.0) -> None:
        self.port = port
        self.timeout = timeout
        self.bytes_written = 0
        self.bytes_read = 0
        try:
            # exclusive: an flock(LOCK_EX | LOCK_NB) on the port, so a second opener (`kiosk
            # doctor`, `kiosk nfc probe`) is refused instead of stealing the kiosk's bytes
            self._serial = serial.Serial(
                port, baudrate, timeout=0, write_timeout=max(timeout, 1.0),
                bytesize=8, parity="N", stopbits=1, xonxoff=False, rtscts=False,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as e:
            if getattr(e, "errno", None) in _BUSY:
                raise NfcError(f"NFC reader port {port} is in use by another process "
                               "(is kiosk.service running?)", reason="port-busy") from e
            raise NfcError(f"cannot open NFC reader port {port}", reason="port-unavailable") from e
        self._woken = False

    @property
    def baudrate(self) -> int:
        """The line speed in baud."""
        return int(self._serial.baudrate)

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        try:
            self._serial.baudrate = value
        except (serial.SerialException, OSError, ValueError) as e:
            raise NfcError(f"cannot set {value} baud on {self.port}", reason="port-error") from e

    def wake_up(self) -> None:
        """Send the HSU wake-up preamble (once, before the first command)."""
        self.write(WAKE_UP)
        self._woken = True

    @property
    def woken(self) -> bool:
        """Whether the wake-up preamble was sent on this port."""
        return self._woken

    def write(self, data: bytes) -> None:
        """Write all of `data` (bounded by the write timeout)."""
        try:
            n = self._serial.write(data)
            self._serial.flush()
        except serial.SerialTimeoutException as e:
            raise NfcError(f"write to {self.port} timed out", reason="timeout") from e
        except (serial.SerialException, OSError) as e:
            raise NfcError(f"write to {self.port} failed", reason="port-error") from e
        self.bytes_written += n or 0

    def read(self, max_bytes: int, deadline: float) -> bytes:
        """Read what is there (up to `max_bytes`), waiting until `deadline` (monotonic) for
        at least one byte. Returns b"" when the deadline passes with nothing to read."""
        try:
            while True:
                waiting = self._serial.in_waiting
                if waiting:
                    data = self._serial.read(min(waiting, max_bytes))
                    self.bytes_read += len(data)
                    return data
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b""
                # one blocking read of a single byte, bounded by the remaining time
                self._serial.timeout = min(remaining, 0.05)
                first = self._serial.read(1)
                self._serial.timeout = 0
                if first:
                    more = self._serial.read(min(self._serial.in_waiting, max_bytes - 1))
                    self.bytes_read += 1 + len(more)
                    return first + more
        except (serial.SerialException, OSError, TypeError) as e:
            # pyserial raises TypeError on a port closed under it
            raise NfcError(f"read from {self.port} failed", reason="port-error") from e

    def flush_input(self) -> None:
        """Drop bytes already received and not yet read (stale responses, noise)."""
        try:
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError) as e:
            raise NfcError(f"flush of {self.port} failed", reason="port-error") from e

    def close(self) -> None:
        """Close the port; safe to call twice."""
        try:
            self._serial.close()
        except (serial.SerialException, OSError):
            log.debug("closing %s failed; ignored", self.port)
