"""Fakes for every engine port, and a rig that builds an engine on a fake clock."""
from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field
from typing import Any

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from kiosk.checkin.engine import CheckinEngine
from kiosk.checkin.headless import HeadlessDriver, ScriptedPatient
from kiosk.checkin.pass_checker import ProtocolPassChecker
from kiosk.checkin.ports import Credential, FaceReading, LivenessResult, MatchResult
from kiosk.config import ConsentTable, EngineTable, PassTable
from kiosk.errors import StoreError
from kiosk.protocol import keys, patient_pass, presentation, revocation, sealing
from kiosk.wallet.wallet import Wallet

SITE, KIOSK = "clinic", "kiosk-1"


class FakeClock:
    """Monotonic and wall time that only move when someone sleeps or ticks."""

    def __init__(self, wall: float = 1_750_000_000.0) -> None:
        self.t = 1000.0
        self.wall0 = wall

    def monotonic(self) -> float:
        return self.t

    def monotonic_ns(self) -> int:
        return int(self.t * 1e9)

    def time(self) -> float:
        return self.wall0 + self.t

    def sleep(self, s: float) -> None:
        self.t += max(0.0, s)


class FakeSource:
    """A credential source playing a script: Credential, an exception to raise, or None."""

    def __init__(self, name: str, clock: FakeClock, items: list | None = None) -> None:
        self.name = name
        self.clock = clock
        self.items: collections.deque = collections.deque(items or [])
        self.polls = 0

    def poll(self, timeout_s: float) -> Credential | None:
        self.polls += 1
        if self.items:
            item = self.items.popleft()
            if isinstance(item, BaseException):
                raise item
            if item is not None:
                return item
        self.clock.sleep(timeout_s)
        return None


class FakeFaces:
    """Frames as FaceReadings; after the script it repeats `tail` (default: nobody)."""

    def __init__(self, clock: FakeClock, readings: list | None = None, tail: Any = None) -> None:
        self.clock = clock
        self.readings = collections.deque(readings or [])
        self.tail = tail if tail is not None else FaceReading(False, "face.none")
        self.reads = 0
        self.last_template: Any = None  # the face last seen with a template (still in view)

    def read(self, want_template: bool = True) -> FaceReading:
        self.reads += 1
        self.clock.sleep(1 / 15)
        item = self.readings.popleft() if self.readings else self.tail
        if isinstance(item, BaseException):
            raise item
        if item.template is not None:
            self.last_template = item.template
        return item

    def reset(self) -> None:
        pass


class FakeMatcher:
    """Opens sealed templates for real; a fake template is one byte value repeated (256 bytes,
    130 on a card pass: `template`), and two match when they repeat the same value."""

    def __init__(self, sealing_key: PrivateKey, frames: int = 1) -> None:
        self.sealing_key = sealing_key
        self.frames_per_decision = frames
        self.decisions: list[int] = []  # frames per decision, in order

    def enrolled_template(self, sealed: Any) -> bytes:
        return sealing.open_sealed([list(x) for x in sealed], [self.sealing_key])

    def decide(self, enrolled: Any, lives: Any) -> MatchResult:
        self.decisions.append(len(lives))
        same = all(set(live) == set(enrolled) for live in lives)
        return MatchResult(same, 0.0 if same else 0.9)


class FakeSink:
    def __init__(self, fail: bool = False) -> None:
        self.sessions: list[list[tuple[bytes, bytes, dict | None]]] = []
        self.fail = fail

    def write_session(self, records: list) -> None:
        if self.fail:
            raise StoreError("outbox: disk full")
        self.sessions.append(list(records))


class FakeLiveness:
    """A liveness check with scripted verdicts (the last one repeats); like the real one, it
    hands the engine templates of the frames it saw during its challenge."""

    required = True

    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)
        self.method = "fake"
        self.runs = 0

    def run(self, faces: Any, ui: Any, clock: Any) -> LivenessResult:
        ui.show_field((255, 255, 255), "full")
        status = self.statuses[min(self.runs, len(self.statuses) - 1)]
        self.runs += 1
        # a frame of the challenge: the next reading, or whoever was last seen (still standing there)
        r = faces.read(want_template=True)
        t = r.template if r.template is not None else getattr(faces, "last_template", None)
        return LivenessResult(status, "fake", {}, (t,) if t is not None else ())


class WalletSigner:
    """The phone's second tap, straight to the wallet."""

    def __init__(self, wallet: Wallet, fail: bool = False) -> None:
        self.wallet, self.fail, self.calls = wallet, fail, 0

    def sign_consent(self, pass_bytes: bytes, body_hash: bytes, timeout_s: float):
        self.calls += 1
        return self.wallet.sign_consent(SITE, KIOSK, os.urandom(16), body_hash)


def template(seed: int, card: bool = False) -> bytes:
    return bytes([seed]) * (sealing.CARD_TEMPLATE_BYTES if card else sealing.TEMPLATE_BYTES)


@dataclass
class Rig:
    clock: FakeClock = field(default_factory=FakeClock)
    issuer: SigningKey = field(default_factory=SigningKey.generate)
    sealing_key: PrivateKey = field(default_factory=PrivateKey.generate)
    kiosk_key: SigningKey = field(default_factory=SigningKey.generate)
    revoked: dict = field(default_factory=dict)
    engine_cfg: EngineTable = field(default_factory=lambda: EngineTable(done_display_s=0))

    def enroll(self, seed: int | None = 1) -> Wallet:
        w = Wallet.create()
        now = int(self.clock.time())
        w.store_pass(patient_pass.issue(
            self.issuer, issuer="clinic-issuer", site=SITE, patient=patient_pass.new_patient_id(),
            patient_key=w.public_key, template=None if seed is None else template(seed),
            sealing_keys=[self.sealing_key.public_key], now=now - 60, valid_s=365 * 86400))
        return w

    def revocations(self):
        now = int(self.clock.time())
        raw = revocation.sign(self.issuer, site=SITE, revoked=self.revoked, issued=now - 10,
                              next_update=now + 86400, seq=1)
        return revocation.verify(raw, {keys.kid(self.issuer.verify_key): self.issuer.verify_key})

    def nfc(self, w: Wallet, signer: bool = True) -> Credential:
        nonce = os.urandom(16)
        stmt, sig = w.sign_nfc(SITE, KIOSK, nonce)
        return Credential("nfc", presentation.Presentation("nfc", w.pass_bytes, stmt, sig), nonce,
                          WalletSigner(w) if signer else None)

    def qr(self, w: Wallet) -> Credential:
        return Credential("qr", presentation.from_qr_text(w.qr_text(self.clock.time())))

    def card_pass(self, seed: int = 1) -> bytes:
        """A clinic-issued card pass: no patient key, bound by the face alone."""
        now = int(self.clock.time())
        return patient_pass.issue(
            self.issuer, issuer="clinic-issuer", site=SITE, patient=patient_pass.new_patient_id(),
            patient_key=None, template=template(seed, card=True), sealing_keys=[self.sealing_key.public_key],
            now=now - 60, valid_s=365 * 86400)

    def card(self, pass_bytes: bytes) -> Credential:
        return Credential("nfc", presentation.Presentation("card", pass_bytes))

    def engine(self, *, nfc: list | None = None, qr: list | None = None, faces: FakeFaces | None = None,
               patient: ScriptedPatient | None = None, sink: FakeSink | None = None, liveness: Any = None,
               no_camera: bool = False, matcher: FakeMatcher | None = None
               ) -> tuple[CheckinEngine, HeadlessDriver, FakeSink]:
        ui = HeadlessDriver(self.clock, patient or ScriptedPatient())
        sink = sink or FakeSink()
        checker = ProtocolPassChecker(site=SITE, kiosk=KIOSK,
                                      issuers={keys.kid(self.issuer.verify_key): self.issuer.verify_key},
                                      passes=PassTable(), revocations=self.revocations, clock=self.clock)
        self.nfc_source = FakeSource("nfc", self.clock, nfc)
        self.qr_source = FakeSource("qr", self.clock, qr)
        eng = CheckinEngine(site=SITE, kiosk=KIOSK, kiosk_key=self.kiosk_key, engine=self.engine_cfg,
                            consent=ConsentTable(), sources=[self.nfc_source, self.qr_source],
                            faces=None if no_camera else (faces or FakeFaces(self.clock)),
                            matcher=matcher or FakeMatcher(self.sealing_key), checker=checker, sink=sink, ui=ui,
                            liveness=liveness, clock=self.clock)
        return eng, ui, sink


def good_face(seed: int = 1) -> FaceReading:
    return FaceReading(True, None, template(seed))


def guidance(msg: str) -> FaceReading:
    return FaceReading(True, msg)
