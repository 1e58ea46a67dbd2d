"""A PN532 emulator on a pseudo-terminal: the simulated reader backend (docs/design-notes.md).

It speaks the real HSU frame protocol (UM0701-02 §6.2) through `frames`, so the real
driver — ours, or nfcpy — runs unchanged against it. It paces its output at the configured
baud rate (10 bits per byte: start, 8 data, stop), hosts one card in its field (the phone's
`PassApplication` or a `Type4Tag`), and injects faults on demand.

    emu = Pn532Emulator()                 # 115200 baud
    port = emu.start()                    # e.g. /dev/pts/7
    emu.place(phone_card(wallet))         # or type4_card(pass_bytes)
    ...  NfcReader(port) ...
    emu.remove(); emu.stop()

Commands (UM0701-02 §7): Diagnose (line test echo incl. extended frames, ROM/RAM tests),
GetFirmwareVersion (IC 0x32, v1.6), ReadRegister/WriteRegister (a register file; the
CIU_FIFOData read nfcpy uses to tell "no tag" answers 0x26), SetSerialBaudRate (switches
after the host's ACK), SetParameters (bit 4 fAutomaticRATS), SAMConfiguration, PowerDown,
RFConfiguration (MaxRetries honoured: 0xFF waits for a card), InListPassiveTarget (106
kbps type A only), InDataExchange, InCommunicateThru (ISO-DEP via `iso_dep`), InDeselect,
InRelease. Anything else gets the syntax-error frame (§6.2.1.5). Frames with a bad
checksum are ignored (no ACK), a NACK repeats the last response, and a new command or an
ACK from the host aborts a command still waiting (§6.2.1.3).

The chip's limits are modelled, so a host has to live within them: a frame body of at most
265 bytes (TFI + 264, §6.2.1.2) and 262 bytes of InDataExchange data either way (§7.3.8);
longer APDUs travel chained (the host sets MI in the Tg byte; a longer answer comes with MI
in the status and the rest is fetched with a bare Tg). Without automatic RATS
(SetParameters bit 4, which nfcpy clears) an ISO-DEP card is never activated and
InDataExchange to it times out, as on the chip. A card's application runs beside the line:
a card that has not answered after `wtx_limit_s` (waiting-time extensions included) is
treated as gone silent and the chip answers status 01h (target timed out), and the
emulator goes on serving the line.
"""
from __future__ import annotations

import collections
import contextlib
import enum
import logging
import os
import secrets
import select
import threading
import time
import tty
from dataclasses import dataclass, field
from typing import Protocol

from kiosk.hardware.nfc import frames
from kiosk.hardware.nfc.iso_dep import IsoDepCard

log = logging.getLogger(__name__)

FIRMWARE = bytes([0x32, 0x01, 0x06, 0x07])  # PN532, v1.6, support: ISO18092|ISO14443A|B
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)
CIU_FIFO_DATA = 0x6339
CIU_TX_MODE, CIU_RX_MODE = 0x6302, 0x6303  # bit 7: CRC generation / check (nfcpy clears RxCRCEn)
STATUS_CRC = 0x02
STATUS_MIFARE_NAK = 0x14  # what InDataExchange reports for a Type 2 NAK (treated as a refusal)
ATS = bytes.fromhex("05 78 00 80 02")  # TL T0(FSCI=8: 256) TA1 TB1(FWI=8, ~77 ms) TC1
STATUS_TIMEOUT = 0x01
MAX_FRAME_BODY = 265  # TFI + 264 data bytes: the largest (extended) frame the chip takes
MAX_DATA = 262        # InDataExchange DataOut / DataIn per frame (UM0701-02 §7.3.8)
MAX_CHAINED = 16 * 1024
WTX_LIMIT_S = 3.0
STATUS_NOT_ACCEPTABLE = 0x27


class Application(Protocol):
    """What a card in the field runs: APDU in, APDU out; `reset` on each activation."""

    def process(self, command: bytes) -> bytes: ...
    def reset(self) -> None: ...


@dataclass
class EmulatedCard:
    """A card (or phone) as the PN532 sees it at 106 kbps type A."""

    app: Application
    uid: bytes
    sens_res: bytes = b"\x00\x04"
    sel_res: int = 0x20  # ISO/IEC 14443-4 compliant
    ats: bytes = ATS

    @property
    def type2(self) -> bool:
        """A Type 2 Tag (SAK bits 6 and 7 clear): raw commands, no ISO-DEP."""
        return self.sel_res & 0x60 == 0


def phone_card(wallet: object) -> EmulatedCard:
    """A phone doing host-card emulation of our pass application (random 4-byte UID 08..)."""
    from kiosk.hardware.nfc.pass_app import PassApplication

    return EmulatedCard(PassApplication(wallet), b"\x08" + secrets.token_bytes(3))  # type: ignore[arg-type]


def type4_card(pass_bytes: bytes) -> EmulatedCard:
    """A clinic-issued Type 4 Tag with the pass in an NDEF record (7-byte UID, NXP 04..)."""
    from kiosk.hardware.nfc.type4 import Type4Tag, pass_message

    return EmulatedCard(Type4Tag(pass_message(pass_bytes)), b"\x04" + secrets.token_bytes(6),
                        sens_res=b"\x00\x44")


def type2_card(pass_bytes: bytes | None = None, model: str = "NTAG216") -> EmulatedCard:
    """An NTAG213/215/216 (7-byte UID, NXP 04..): blank as it comes from the factory, or
    holding the pass in an NDEF record (what `kiosk issuer write-card` writes)."""
    from kiosk.hardware.nfc import type2
    from kiosk.hardware.nfc.type4 import pass_message

    models = {m.name: m for m in type2.MODELS.values()}
    tag = type2.Type2Tag(b"\x04" + secrets.token_bytes(6), models[model])
    if pass_bytes is not None:
        tag.write_ndef_message(pass_message(pass_bytes))
    return EmulatedCard(tag, tag.uid, sens_res=b"\x00\x44", sel_res=0x00, ats=b"")  # type: ignore[arg-type]


def crc_a(data: bytes) -> bytes:
    """ISO/IEC 14443-3 CRC_A (initial 6363h, LSB first)."""
    crc = 0x6363
    for b in data:
        b ^= crc & 0xFF
        b = (b ^ (b << 4)) & 0xFF
        crc = (crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4)
    return bytes([crc & 0xFF, crc >> 8])


class Fault(enum.Enum):
    """Faults to inject (each consumed by the next frame or exchange it applies to)."""

    CORRUPT_CHECKSUM = "corrupt-checksum"  # next response frame goes out with a bad DCS
    DROP_ACK = "drop-ack"  # next ACK is not sent (the response still is)
    NOISE = "noise"  # garbage bytes on the line before the next ACK
    SLOW_CARD = "slow-card"  # the card takes `delay` seconds to answer its next exchange
    PULL_CARD = "pull-card"  # the card leaves the field during its `after`-th next exchange


@dataclass
class _Pending:
    fault: Fault
    count: int
    delay: float = 0.0
    after: int = 0
    status: int = STATUS_TIMEOUT
    noise: bytes = b""


@dataclass
class Counters:
    """Bytes on each wire and commands handled (for benchmarks and tests)."""

    bytes_in: int = 0
    bytes_out: int = 0
    commands: collections.Counter = field(default_factory=collections.Counter)


class Pn532Emulator:
    """The emulated chip, serving one pseudo-terminal from a background thread."""

    def __init__(self, baudrate: int = 115200, *, pace: bool = True, link: str | None = None,
                 wtx_limit_s: float = WTX_LIMIT_S) -> None:
        self.wtx_limit_s = wtx_limit_s
        self._chain_in = bytearray()  # a host-chained C-APDU being received
        self._chain_out = b""  # the rest of an answer longer than one frame
        self.baudrate = baudrate
        self.baud_history = [baudrate]
        self.pace = pace
        self.link = link  # optional symlink path to the pty (nfcpy wants /dev/NAME)
        self.counters = Counters()
        self._lock = threading.Lock()
        self._card: EmulatedCard | None = None
        self._active: IsoDepCard | object | None = None  # the activated target (or Type 2 tag)
        self._faults: list[_Pending] = []
        self._regs: dict[int, int] = {}
        self._flags = 0x14  # SetParameters default: fAutomaticRATS | fAutomaticATR_RES
        self._passive_retries = 0xFF
        self._pending_baud: int | None = None
        self._last_response = b""
        self._parser = frames.FrameParser()
        self._queue: collections.deque = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._line_free_at = 0.0
        self.path = ""

    # --- life cycle ------------------------------------------------------------------
    def start(self) -> str:
        """Open the pty, start serving; return the path a serial client opens."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: a plain 8N1 line
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        if self.link:
            if os.path.lexists(self.link):
                os.unlink(self.link)
            os.symlink(self.path, self.link)
        self._thread = threading.Thread(target=self._run, name="pn532-emulator", daemon=True)
        self._thread.start()
        return self.link or self.path

    def stop(self) -> None:
        """Stop serving and close the pty (and remove the symlink)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        for fd in (getattr(self, "_master", None), getattr(self, "_slave", None)):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)

    def __enter__(self) -> Pn532Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the field and faults --------------------------------------------------------
    def place(self, card: EmulatedCard) -> None:
        """Put a card (or phone) into the field."""
        with self._lock:
            self._card, self._active = card, None

    def remove(self) -> None:
        """Take the card out of the field."""
        with self._lock:
            self._card, self._active = None, None

    @property
    def card(self) -> EmulatedCard | None:
        """The card in the field, if any."""
        return self._card

    def inject(self, fault: Fault, count: int = 1, *, delay: float = 0.5, after: int = 0,
               status: int = STATUS_TIMEOUT, noise: bytes = b"\x98\x80\x98\x80\x1e\x66") -> None:
        """Arm a fault for the next `count` occasions. `noise` defaults to the garbage a
        real PN532 sent in libnfc issue 355; `status` is the InDataExchange status a pulled
        card produces (0x01 timeout, 0x13 framing, 0x27, ...)."""
        with self._lock:
            self._faults.append(_Pending(fault, count, delay, after, status, noise))

    def _take(self, fault: Fault) -> _Pending | None:
        with self._lock:
            for p in self._faults:
                if p.fault is fault and p.count > 0:
                    p.count -= 1
                    if p.count == 0:
                        self._faults.remove(p)
                    return p
        return None

    # --- the line --------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._poll(0.05)
            while self._queue and not self._stop.is_set():
                self._handle(self._queue.popleft())

    def _poll(self, timeout: float) -> bool:
        """Read what the host sent (waiting up to `timeout`); queue complete frames."""
        try:
            ready, _, _ = select.select([self._master], [], [], timeout)
            data = os.read(self._master, 4096) if ready else b""
        except (OSError, ValueError):  # no client on the slave side yet, or closed
            time.sleep(min(timeout, 0.01))
            return False
        if data:
            self.counters.bytes_in += len(data)
            if self.pace:  # the host's bytes, too, take 10 bits each to arrive
                time.sleep(len(data) * 10 / self.baudrate)
            self._queue.extend(self._parser.feed(data))
        return bool(data)

    def _send(self, data: bytes) -> None:
        """Write at the line rate: 10 bits per byte at `baudrate`."""
        step = 16
        for i in range(0, len(data), step):
            chunk = data[i:i + step]
            try:
                os.write(self._master, chunk)
            except (BlockingIOError, OSError):
                log.debug("emulator output dropped (nobody reading)")
            self.counters.bytes_out += len(chunk)
            if self.pace:
                now = time.monotonic()
                self._line_free_at = max(self._line_free_at, now) + len(chunk) * 10 / self.baudrate
                if self._line_free_at > now:
                    time.sleep(self._line_free_at - now)

    def _wait(self, seconds: float) -> bool:
        """Sleep while listening; True if the host aborted (ACK or a new command, §6.2.1.3)."""
        end = time.monotonic() + seconds
        while not self._stop.is_set():
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            self._poll(min(remaining, 0.02))
            for f in list(self._queue):
                if isinstance(f, frames.Ack):
                    self._queue.remove(f)
                    return True
                if isinstance(f, frames.InformationFrame):
                    return True  # left queued: it is handled next
        return True

    def _handle(self, f: frames.Frame) -> None:
        if isinstance(f, frames.Nack):
            if self._last_response:
                self._send(self._maybe_corrupt(self._last_response))
            return
        if isinstance(f, frames.Ack):
            self._switch_baud()
            return
        if not isinstance(f, frames.InformationFrame) or f.tfi != frames.TFI_HOST or not f.data:
            return  # bad checksum or not for us: ignored, no ACK; the host resends
        if len(f.data) + 1 > MAX_FRAME_BODY:  # beyond the chip's buffer: a syntax error
            self._last_response = frames.ERROR_FRAME
            self._send(frames.ERROR_FRAME)
            return
        # nfcpy reopens the port right after its ACK, and the close's TCOFLUSH can eat that
        # ACK on a pty; a command at the new rate shows the host switched anyway
        self._switch_baud()
        noise = self._take(Fault.NOISE)
        if noise:
            self._send(noise.noise)
        if not self._take(Fault.DROP_ACK):
            self._send(frames.ACK)
        self.counters.commands[f.command] += 1
        try:
            result = self._execute(f.command, f.params)
        except Exception:  # noqa: BLE001 - an emulator bug must not kill the thread
            log.exception("emulator failed on command 0x%02x", f.command)
            result = "syntax"
        if result is None:
            return  # aborted by the host
        if result == "syntax":
            self._last_response = frames.ERROR_FRAME
            self._send(frames.ERROR_FRAME)
            return
        frame = frames.encode_response(f.command, result)  # type: ignore[arg-type]
        self._last_response = frame
        self._send(self._maybe_corrupt(frame))

    def _switch_baud(self) -> None:
        if self._pending_baud:  # §7.2.8: the new rate applies after the host's ACK
            self.baudrate, self._pending_baud = self._pending_baud, None
            self.baud_history.append(self.baudrate)

    def _maybe_corrupt(self, frame: bytes) -> bytes:
        if self._take(Fault.CORRUPT_CHECKSUM):  # flip bits of the DCS byte
            return frame[:-2] + bytes([frame[-2] ^ 0x5A]) + frame[-1:]
        return frame

    # --- commands (UM0701-02 §7) ------------------------------------------------------
    def _execute(self, cmd: int, p: bytes) -> bytes | str | None:
        if cmd == 0x00:  # Diagnose §7.2.1
            if not p:
                return "syntax"
            return p if p[0] == 0x00 else b"\x00"
        if cmd == 0x02:  # GetFirmwareVersion §7.2.2
            return FIRMWARE
        if cmd == 0x06:  # ReadRegister §7.2.4
            addrs = [p[i] << 8 | p[i + 1] for i in range(0, len(p) - 1, 2)]
            return bytes(self._read_register(a) for a in addrs)
        if cmd == 0x08:  # WriteRegister §7.2.5
            for i in range(0, len(p) - 2, 3):
                self._regs[p[i] << 8 | p[i + 1]] = p[i + 2]
            return b""
        if cmd == 0x10:  # SetSerialBaudRate §7.2.8
            if not p or p[0] >= len(BAUD_RATES):
                return "syntax"
            self._pending_baud = BAUD_RATES[p[0]]
            return b""
        if cmd == 0x12:  # SetParameters §7.2.9
            self._flags = p[0] if p else self._flags
            return b""
        if cmd in (0x14, 0x32):  # SAMConfiguration §7.2.10, RFConfiguration §7.3.1
            if cmd == 0x32 and len(p) >= 4 and p[0] == 0x05:
                self._passive_retries = p[3]
            return b""
        if cmd == 0x16:  # PowerDown §7.2.11
            return b"\x00"
        if cmd == 0x4A:  # InListPassiveTarget §7.3.5
            return self._in_list_passive_target(p)
        if cmd in (0x40, 0x42):  # InDataExchange §7.3.8, InCommunicateThru §7.3.9
            if len(p) - (cmd == 0x40) > MAX_DATA:
                return "syntax"
            return self._exchange(cmd, p)
        if cmd in (0x44, 0x52):  # InDeselect §7.3.10, InRelease §7.3.11
            with self._lock:
                self._active = None
            return b"\x00"
        return "syntax"

    def _read_register(self, addr: int) -> int:
        if addr == CIU_FIFO_DATA and self._card is None:
            return 0x26  # the SENS_REQ still in the FIFO: nobody answered
        return self._regs.get(addr, 0)

    def _in_list_passive_target(self, p: bytes) -> bytes | None:
        if len(p) < 2 or p[1] != 0x00:
            return b"\x00"  # only 106 kbps type A cards live here
        if self._card is None and self._passive_retries == 0xFF:
            while self._card is None:  # retry forever, as the chip does, until aborted
                if self._wait(0.02):
                    return None
        with self._lock:
            card = self._card
            if card is None:
                return b"\x00"
            card.app.reset()
            self._chain_in, self._chain_out = bytearray(), b""
            # the firmware activates at 106 kbps with CRC on both ways
            self._regs[CIU_TX_MODE] = self._regs[CIU_RX_MODE] = 0x80
            data = bytes([1, 1]) + card.sens_res + bytes([card.sel_res, len(card.uid)]) + card.uid
            if card.type2:
                self._active = card.app
                return data
            auto_rats = bool(self._flags & 0x10)
            self._active = IsoDepCard(card.ats, card.app.process)
            self._active.active = auto_rats
        return data + (card.ats if auto_rats else b"")

    def _exchange(self, cmd: int, p: bytes) -> bytes | None:
        with self._lock:
            active, card = self._active, self._card
        if cmd == 0x40 and (not p or p[0] & 0x0F != 1 or active is None):
            return bytes([STATUS_NOT_ACCEPTABLE])
        if active is None or card is None:
            return bytes([STATUS_TIMEOUT])
        pull = self._pull_due()
        if pull is not None:
            self.remove()
            return bytes([pull])
        slow = self._take(Fault.SLOW_CARD)
        if slow and self._wait(slow.delay):
            return None
        if self._active is not active:
            return bytes([STATUS_TIMEOUT])  # removed while we waited
        if card.type2:
            return self._type2(cmd, active, p[1:] if cmd == 0x40 else p)
        assert isinstance(active, IsoDepCard)
        if active.hung:
            return bytes([STATUS_TIMEOUT])  # it never came back
        if cmd == 0x40:
            return self._data_exchange(active, p)
        answer = self._run_card(active, active.process, p)
        if answer == "aborted":
            return None
        return bytes([STATUS_TIMEOUT]) if not isinstance(answer, bytes) else b"\x00" + answer

    def _data_exchange(self, active: IsoDepCard, p: bytes) -> bytes | None:
        """InDataExchange with ISO-DEP: chaining both ways within the chip's frame limits."""
        if not active.active:  # no (automatic) RATS: the card is not in ISO-DEP
            return bytes([STATUS_TIMEOUT])
        data = p[1:]
        if not data and self._chain_out:  # the host fetches the rest of a long answer
            return self._answer_part(self._chain_out)
        if p[0] & 0x40:  # MI: more of this command follows
            self._chain_in += data
            if len(self._chain_in) > MAX_CHAINED:
                self._chain_in.clear()
                return bytes([STATUS_NOT_ACCEPTABLE])
            return b"\x00"
        apdu, self._chain_in = bytes(self._chain_in) + data, bytearray()
        answer = self._run_card(active, active.handler, apdu)
        if answer == "aborted":
            return None
        if not isinstance(answer, bytes):
            return bytes([STATUS_TIMEOUT])
        return self._answer_part(answer)

    def _answer_part(self, answer: bytes) -> bytes:
        part, self._chain_out = answer[:MAX_DATA], answer[MAX_DATA:]
        return bytes([0x40 if self._chain_out else 0x00]) + part

    def _run_card(self, active: IsoDepCard, fn: object, data: bytes) -> bytes | str | None:
        """Run the card's side beside the line; "timeout" when it stays silent past
        `wtx_limit_s`, "aborted" when the host gives up first (§6.2.1.3)."""
        done = threading.Event()
        box: list = []

        def work() -> None:
            try:
                box.append(fn(data))  # type: ignore[operator]
            except Exception:  # noqa: BLE001 - a card bug is a card that does not answer
                log.exception("emulated card failed")
                box.append(None)
            finally:
                done.set()

        threading.Thread(target=work, name="emulated-card", daemon=True).start()
        end = time.monotonic() + self.wtx_limit_s
        while not done.wait(0.005):
            if time.monotonic() >= end:
                active.hung = True
                return "timeout"
            if self._wait(0.01):
                return "aborted"
        return box[0]

    def _type2(self, cmd: int, tag: object, data: bytes) -> bytes:
        """A raw Type 2 command. InDataExchange: the chip handles READ/WRITE as MIFARE
        Ultralight commands (ACK = empty success). InCommunicateThru: raw bytes; a 4-bit
        ACK/NAK only comes through with the CRC check off, else it is a CRC error."""
        answer = tag.command(data)  # type: ignore[attr-defined]
        if answer is None:
            return bytes([STATUS_TIMEOUT])
        crc_on = bool(self._regs.get(CIU_RX_MODE, 0x80) & 0x80)
        if isinstance(answer, int):  # a 4-bit ACK (0Ah) or NAK
            if cmd == 0x40:
                return b"\x00" if answer == 0x0A else bytes([STATUS_MIFARE_NAK])
            return bytes([STATUS_CRC]) if crc_on else bytes([0x00, answer])
        return b"\x00" + answer + (b"" if crc_on or cmd == 0x40 else crc_a(answer))

    def _pull_due(self) -> int | None:
        with self._lock:
            for f in self._faults:
                if f.fault is Fault.PULL_CARD:
                    if f.after > 0:
                        f.after -= 1
                        return None
                    self._faults.remove(f)
                    return f.status
        return None
