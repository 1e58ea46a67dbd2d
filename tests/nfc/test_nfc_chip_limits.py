"""The driver against the chip's real behaviour (review findings): parameters another host
left behind, bad-checksum streams, frame limits and chaining, a phone that hangs, and
`kiosk nfc emulate` for card passes (each test failed before its fix)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from kiosk.errors import NfcError
from kiosk.hardware.nfc import apdu as A
from kiosk.hardware.nfc import frames
from kiosk.hardware.nfc.emulator import EmulatedCard, Fault, Pn532Emulator, phone_card
from kiosk.hardware.nfc.pn532 import Pn532
from kiosk.hardware.nfc.reader import NfcReader
from kiosk.hardware.nfc.transport import SerialTransport
from kiosk.issuer.issuer import Issuer, write_pass_files

pytestmark = pytest.mark.timeout(90)
REPO = Path(__file__).resolve().parents[2]


def test_reader_turns_automatic_rats_back_on(emulator, wallet) -> None:
    emulator._flags = 0x00  # what nfcpy's SetParameters(0) leaves in the chip until power-off
    emulator.place(phone_card(wallet))
    with NfcReader(emulator.path) as reader:
        cred = reader.wait_for_credential(3)
    assert cred is not None and cred.pass_bytes == wallet.pass_bytes
    assert emulator.counters.commands[0x12] == 1


def test_reader_works_after_nfcpy_touched_the_chip(wallet) -> None:
    nfc = pytest.importorskip("nfc")
    if not os.access("/dev", os.W_OK):
        pytest.skip("/dev is not writable: nfcpy needs a /dev/NAME link to the pty")
    name = "kiosknfc-" + uuid.uuid4().hex[:8]
    with Pn532Emulator(115200, link=f"/dev/{name}") as emu:
        nfc.ContactlessFrontend(f"tty:{name}:pn532").close()
        assert emu._flags & 0x10 == 0 and emu.baudrate == 115200
        emu.place(phone_card(wallet))
        with NfcReader(emu.path) as reader:
            cred = reader.wait_for_credential(3)
        assert cred is not None and cred.kind == "phone"


def _chip(emulator: Pn532Emulator) -> tuple[SerialTransport, Pn532]:
    t = SerialTransport(emulator.path)
    t.wake_up()
    chip = Pn532(t)
    chip.sam_configuration()
    return t, chip


def test_a_stream_of_bad_checksums_ends_at_the_callers_deadline(emulator, wallet) -> None:
    emulator.place(phone_card(wallet))
    t, chip = _chip(emulator)
    try:
        target = chip.in_list_passive_target_106a()
        assert target is not None
        emulator.inject(Fault.SLOW_CARD, count=1000, delay=0.9)
        emulator.inject(Fault.CORRUPT_CHECKSUM, count=100_000)
        start = time.monotonic()
        with pytest.raises(NfcError) as e:
            chip.in_data_exchange(target.number, A.select_aid(b"\xf0kiosk").encode(), deadline=start + 1.5)
        elapsed = time.monotonic() - start
        assert e.value.reason == "timeout" and chip.stats["aborted"] == 1
        # hang guard, not a speed claim: resends and NACKs used to run ~4 s past it
        assert elapsed < 1.5 + 1.0, elapsed
    finally:
        t.close()


class _Echo:
    """A card that answers any APDU with `size` bytes and remembers what it got."""

    def __init__(self, size: int) -> None:
        self.size, self.got = size, []

    def process(self, command: bytes) -> bytes:
        self.got.append(command)
        return bytes(i & 0xFF for i in range(self.size)) + b"\x90\x00"

    def reset(self) -> None:
        pass


def test_long_apdus_are_chained_within_the_chips_frame_limits(emulator) -> None:
    card = _Echo(700)
    emulator.place(EmulatedCard(card, b"\x08\x01\x02\x03"))
    t, chip = _chip(emulator)
    try:
        target = chip.in_list_passive_target_106a()
        assert target is not None
        command = A.CommandApdu(0x80, 0x10, 0, 0, bytes(range(256)) * 2, 256).encode()  # 520 bytes
        answer = chip.in_data_exchange(target.number, command)
        assert card.got == [command]
        assert answer == bytes(i & 0xFF for i in range(700)) + b"\x90\x00"
        assert chip.stats["chained"] == 1 + 2  # out 262 + 258, in 262 + 262 + 178
        # one frame beyond the chip's limit is refused, as the chip refuses it
        t.flush_input()
        t.write(frames.encode_command(0x40, b"\x01" + bytes(300)))
        deadline = time.monotonic() + 2
        got = b""
        while frames.ERROR_FRAME not in got and time.monotonic() < deadline:
            got += t.read(64, deadline)
        assert frames.ERROR_FRAME in got
    finally:
        t.close()


class _HungPhone:
    """A phone whose app stops answering (it never returns until released)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def process(self, command: bytes) -> bytes:
        self.release.wait(60)
        return b"\x6f\x00"

    def reset(self) -> None:
        pass


def test_a_hung_phone_gets_target_timed_out_and_the_chip_serves_on() -> None:
    phone = _HungPhone()
    with Pn532Emulator(115200, wtx_limit_s=0.5) as emu:
        emu.place(EmulatedCard(phone, b"\x08\x0a\x0b\x0c"))
        try:
            with NfcReader(emu.path, timeout=1.0, card_timeout=5.0) as reader:
                with pytest.raises(NfcError) as e:
                    reader.wait_for_credential(0.1)
                assert e.value.reason == "card-lost"  # status 01h: target timed out
                assert reader.firmware_version() == "PN532 v1.6"  # the emulator did not block
        finally:
            phone.release.set()


def _emulate(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "kiosk", "nfc", "emulate", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_nfc_emulate_hosts_a_card_pass_and_cleans_up_on_sigterm(tmp_path) -> None:
    iss = Issuer.init(tmp_path / "issuer", "clinic")
    enrolled = iss.enroll(None, bytes(256))
    card = tmp_path / "card"
    card.mkdir()
    write_pass_files(card, enrolled.pass_bytes)
    for kind in ("tag", "type2"):
        link = tmp_path / f"pn532-{kind}"
        proc = _emulate("--card", kind, "--pass", str(card / "pass.cose"), "--link", str(link))
        try:
            path = proc.stdout.readline().strip()
            assert path == str(link) and link.is_symlink(), proc.stderr.read() if proc.poll() else path
            with NfcReader(path) as reader:
                cred = reader.wait_for_credential(5)
            assert cred is not None and (cred.kind, cred.pass_bytes) == ("card", enrolled.pass_bytes)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
            assert not os.path.lexists(link)  # the link went with the emulator
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    proc = _emulate("--card", "tag", "--pass", str(tmp_path / "nope.cose"))
    assert proc.wait(timeout=30) == 66 and "nope.cose" in proc.stderr.read()
