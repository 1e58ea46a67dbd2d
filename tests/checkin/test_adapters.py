"""The real adapters: the PN532 driver over the emulator's pty, QR from camera frames."""
from __future__ import annotations

import pytest

from kiosk.app.demo import DemoCamera
from kiosk.errors import FormatError
from kiosk.hardware.nfc.adapter import NfcAdapter
from kiosk.net.sink import OutboxSink
from kiosk.protocol import presentation
from kiosk.vision.adapters import QrAdapter

from .fakes import KIOSK, SITE, FakeClock, Rig


@pytest.fixture
def reader_and_emu():
    from kiosk.hardware.nfc.emulator import Pn532Emulator
    from kiosk.hardware.nfc.reader import NfcReader

    emu = Pn532Emulator(pace=False)
    port = emu.start()
    reader = NfcReader(port, 115200, 1.0)
    yield reader, emu
    reader.close()
    emu.stop()


def test_nfc_phone_presentation_and_second_tap(reader_and_emu) -> None:
    from kiosk.hardware.nfc.emulator import phone_card

    reader, emu = reader_and_emu
    rig = Rig()
    w = rig.enroll(1)
    nfc = NfcAdapter(reader, SITE, KIOSK, repeat_guard_s=0)
    assert nfc.poll(0.1) is None  # empty field
    emu.place(phone_card(w))
    cred = nfc.poll(1.0)
    assert cred is not None and cred.channel == "nfc" and cred.presentation.kind == "nfc"
    assert cred.consent_signer is nfc and len(cred.nonce) == 16
    v = rig.engine()[0].checker.check(cred)
    assert v.ok, v
    body_hash = bytes(32)
    stmt, sig = nfc.sign_consent(w.pass_bytes, body_hash, 1.0)
    pp = v.data["pass"]
    assert presentation.verify_consent_signature(pp, stmt, sig, site=SITE, kiosk=KIOSK, body_hash=body_hash).ok
    # somebody else's phone is not asked to sign this patient's consent
    other = rig.enroll(2)
    emu.place(phone_card(other))
    assert nfc.sign_consent(w.pass_bytes, body_hash, 0.2) is None


def test_nfc_phone_left_on_reader_is_not_a_new_checkin(reader_and_emu) -> None:
    from kiosk.hardware.nfc.emulator import phone_card

    reader, emu = reader_and_emu
    w = Rig().enroll(1)
    clock = FakeClock()
    nfc = NfcAdapter(reader, SITE, KIOSK, repeat_guard_s=3.0, clock=clock)
    emu.place(phone_card(w))
    assert nfc.poll(1.0) is not None
    assert nfc.poll(0.2) is None
    clock.sleep(10)
    assert nfc.poll(1.0) is not None


def test_nfc_type4_card(reader_and_emu) -> None:
    from kiosk.hardware.nfc.emulator import type4_card

    reader, emu = reader_and_emu
    card = Rig().card_pass(1)
    emu.place(type4_card(card))
    cred = NfcAdapter(reader, SITE, KIOSK, repeat_guard_s=0).poll(1.0)
    assert cred is not None and cred.presentation == presentation.Presentation("card", card)
    assert cred.nonce is None


def test_ntag215_card_written_then_the_kiosk_checks_in_with_it(reader_and_emu) -> None:
    """A card pass in the card encoding, written to an emulated NTAG215 the way `issuer
    write-card` does, read by the kiosk's NFC adapter, and matched by the real matcher."""
    import numpy as np

    from kiosk.checkin import engine as EN
    from kiosk.checkin.ports import FaceReading
    from kiosk.config import VisionTable
    from kiosk.hardware.nfc import type2
    from kiosk.hardware.nfc.emulator import type2_card
    from kiosk.hardware.nfc.type4 import pass_message
    from kiosk.protocol import patient_pass
    from kiosk.vision.adapters import TemplateMatcher
    from kiosk.vision.template import template_to_card_bytes

    from .fakes import FakeFaces

    reader, emu = reader_and_emu
    rig = Rig()
    rng = np.random.default_rng(7)
    face = rng.normal(0, 0.09, 128).astype(np.float16)  # dlib descriptors' spread
    now = int(rig.clock.time())
    card = patient_pass.issue(rig.issuer, issuer="clinic-issuer", site=SITE, patient=patient_pass.new_patient_id(),
                              patient_key=None, template=template_to_card_bytes(face),
                              sealing_keys=[rig.sealing_key.public_key], now=now - 60, valid_s=86400)
    emu.place(type2_card(model="NTAG215"))
    message = pass_message(card)
    result = reader.write_card(message, timeout=2.0)
    assert result["model"] == "NTAG215" and type2.NTAG215.ndef_capacity - len(message) >= 80
    cred = NfcAdapter(reader, SITE, KIOSK, repeat_guard_s=0).poll(1.0)
    assert cred is not None and cred.presentation == presentation.Presentation("card", card)
    threshold = VisionTable().match_threshold
    for live, status in ((face + rng.normal(0, 0.01, 128).astype(np.float16), EN.CHECKED_IN),
                         (rng.normal(0, 0.09, 128).astype(np.float16), EN.FACE_MISMATCH)):
        eng, _, sink = rig.engine(nfc=[cred], faces=FakeFaces(rig.clock, [FaceReading(True, None, live)] * 9),
                                  matcher=TemplateMatcher([rig.sealing_key], threshold))  # type: ignore[arg-type]
        assert eng.run_once().status == status


def test_qr_from_camera_frames() -> None:
    from kiosk.hardware.camera.synthetic import demo_portraits

    rig = Rig()
    w = rig.enroll(1)
    cam = DemoCamera(demo_portraits())
    qr = QrAdapter(cam)
    cam.show_person("astronaut")
    assert qr.poll(0.1) is None
    text = w.qr_text(rig.clock.time())
    cam.show_qr(text)
    cred = qr.poll(0.1)
    assert cred is not None and cred.channel == "qr" and cred.presentation.kind == "qr"
    assert rig.engine()[0].checker.check(cred).ok
    assert qr.poll(0.1) is None  # still in view: not a second credential
    cam.show_qr("KP1:" + "%%%")  # our prefix, broken payload
    with pytest.raises(FormatError):
        qr.poll(0.1)


def test_outbox_sink_one_transaction(tmp_path) -> None:
    from kiosk.net.outbox import Outbox

    class Pub:
        woken = 0

        def wake(self) -> None:
            Pub.woken += 1

    from nacl.signing import SigningKey

    from kiosk.protocol import entry

    key = SigningKey.generate()
    body, h = entry.make_body({"x": 1})
    leaf = entry.sign_leaf(entry.new_envelope("kiosk-event", site=SITE, kiosk=KIOSK, body_hash=h,
                                              created_ms=1), key)
    with Outbox(tmp_path / "o.sqlite3") as ob:
        OutboxSink(ob, Pub()).write_session([(leaf, body, None)])
        assert ob.depth() == 1 and Pub.woken == 1
