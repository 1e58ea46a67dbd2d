"""`kiosk demo`: the whole system on one machine, and a scripted morning at the clinic.

Brings up a private Mosquitto, the ledger gateway (in-process, SQLite log), an issuer, a
kiosk key registered with the gateway, two patients whose wallets were enrolled from two desk
photos each, rendered from two public-domain portraits (or `--faces DIR`), the PN532
emulator on a pty driven by the real reader code, and a camera fed frames synthesised from
the portraits. Then it runs five check-ins, prints each outcome and the receipts, and
verifies the log.
"""
from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.checkin import engine as EN
from kiosk.checkin import events as E
from kiosk.checkin.headless import HeadlessDriver, ScriptedPatient
from kiosk.hardware.camera.base import Camera, Frame
from kiosk.hardware.camera.synthetic import NOBODY, render
from kiosk.protocol import entry

SITE, KIOSK, LOG_NAME = "clinic", "kiosk-1", "demo.clinic.example/log"
DEMO_CHALLENGE_SEED = 2026  # the liveness challenges of a demo run (see build_runtime)


class DemoCamera(Camera):
    """What stands in front of the kiosk: a person (a portrait rendered as a curved face lit by
    the kiosk's own screen), a printed photo of one ("print:NAME"), a phone showing a QR code,
    or nobody. The demo director switches between them; `screen` learns what the UI shows."""

    name = "demo"

    def __init__(self, portraits: dict[str, np.ndarray], size: tuple[int, int] = (640, 480)) -> None:
        from kiosk.hardware.camera import photometric as ph
        from kiosk.vision.liveness.face_model import face_model

        # frames come 1/15 s apart on this clock however slowly a loaded machine renders them,
        # so the liveness challenge sees a camera's frame rate (its UI and check use it too);
        # a fixed start, so that nothing in a run depends on when it ran
        self.clock = ph.VirtualClock()
        self._names = list(portraits)
        self._portraits = [portraits[n] for n in self._names]
        self._size = size
        self.screen = ph.ScreenLog()
        room = ph.Room()
        self._cams: dict[str, ph.PhotometricCamera] = {}
        for i, n in enumerate(self._names):
            fm = face_model(portraits[n], size, face_px=170.0)
            self._cams[n] = ph.PhotometricCamera(ph.LiveFace(fm, ph.Behaviour(seed=i)), self.screen, room, size,
                                                 fps=15.0, clock=self.clock, seed=i)
            self._cams[f"print:{n}"] = ph.PhotometricCamera(ph.FlatPrint(fm, ph.Behaviour(seed=i, blink_every_s=0)),
                                                            self.screen, room, size, fps=15.0, clock=self.clock,
                                                            seed=i)
        self._person: str | None = None
        self._qr: np.ndarray | None = None
        self._index = 0
        self._lock = threading.Lock()
        self._locked = {"exposure_locked": False, "white_balance_locked": False}

    def stills(self, name: str) -> list[np.ndarray]:
        """Two photos of `name` as the enrolment desk's camera takes them (the same framing as
        the kiosk's, so the face passes the enrolment size gate the kiosk's frames pass): one
        in the kiosk's room light, one a moment later under a warmer, brighter lamp, as a desk
        takes a second photo. The kiosk camera's clock and exposure are left alone."""
        from kiosk.hardware.camera import photometric as ph

        cam = self._cams[name]
        lamp = replace(cam.room, ambient=cam.room.ambient * 1.25, ambient_rgb=(1.0, 0.93, 0.8))
        out = []
        for t_ns, room in ((0, cam.room), (700_000_000, lamp)):
            rad = cam.subject.render(t_ns, ph.Light.of(*ph.IDLE_FIELD), room)
            out.append((ph.linear_to_srgb(rad) * 255.0 + 0.5).astype(np.uint8))
        return out

    def show_person(self, name: str | None) -> None:
        with self._lock:
            self._person, self._qr = name, None

    def prompt(self, kind: str) -> None:
        """The kiosk asked for a head turn: whoever stands there complies."""
        cam = self._cams.get(self._person or "")
        if cam is not None:
            cam.prompt(kind)

    def show_qr(self, text: str) -> None:
        """A phone held up to the camera: the QR fills most of the view."""
        import segno

        m = np.array(segno.make(text, error="m", micro=False).matrix, dtype=np.uint8)
        m = np.pad(m, 4)  # quiet zone
        w, h = self._size
        scale = max(1, min(w, h) * 9 // 10 // m.shape[0])
        img = np.where(np.kron(m, np.ones((scale, scale), np.uint8)) > 0, 20, 235).astype(np.uint8)
        canvas = np.full((h, w), 200, np.uint8)
        y0, x0 = (h - img.shape[0]) // 2, (w - img.shape[1]) // 2
        canvas[y0:y0 + img.shape[0], x0:x0 + img.shape[1]] = img
        with self._lock:
            self._qr = np.repeat(canvas[:, :, None], 3, axis=2)

    def read(self) -> Frame:
        with self._lock:
            person, qr, i = self._person, self._qr, self._index
            self._index += 1
        if qr is None and person is not None:
            f = self._cams[person].read()
            return Frame(f.image, f.t_ns, i)
        image = qr if qr is not None else render(self._portraits, NOBODY, self._size)
        self.clock.advance(int(1e9 / 15))
        return Frame(image, self.clock.monotonic_ns(), i)

    def close(self) -> None:
        pass

    def lock_exposure(self, locked: bool, headroom: float = 1.0) -> None:
        # locking starts a liveness session: each simulated subject starts it from the same
        # state (sensor, noise, sway and blink phase), so a demo run's liveness evidence does
        # not depend on how many frames the face step happened to read before
        for cam in self._cams.values():
            if locked:
                cam.restart()
            cam.lock_exposure(locked, headroom)
        self._locked["exposure_locked"] = bool(locked)

    def lock_white_balance(self, locked: bool) -> None:
        for cam in self._cams.values():
            cam.lock_white_balance(locked)
        self._locked["white_balance_locked"] = bool(locked)

    def controls(self) -> dict[str, Any]:
        return {"backend": self.name, **self._locked}


class _ScreenTap:
    """The UI with its `show_field` also lighting the demo camera's scene: the field goes on the
    real (or headless) screen, and the time it went on is the camera's own clock."""

    def __init__(self, ui: Any, camera: DemoCamera) -> None:
        self._ui, self._camera = ui, camera

    def show_field(self, color: tuple[int, int, int], region: str) -> int:
        self._ui.show_field(color, region)
        t = self._camera.clock.monotonic_ns()
        self._camera.screen.show(color, region, t)
        return t

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ui, name)


@dataclass
class Step:
    """One scripted visit and the outcome the demo expects of it."""

    label: str
    channel: str               # nfc | qr
    holder: str                # whose wallet / pass is presented
    face: str                  # whose face the camera sees
    patient: ScriptedPatient
    expect: str
    expect_reason: str = ""
    outcome: Any = None

    @property
    def as_expected(self) -> bool:
        o = self.outcome
        return o is not None and o.status == self.expect and (not self.expect_reason or o.reason == self.expect_reason)


@dataclass
class DemoResult:
    steps: list[Step]
    receipts: list[tuple[bytes, str, int, int]] = field(default_factory=list)  # hash, type, index, size
    ledger: list[tuple[int, str, str, bool]] = field(default_factory=list)      # index, type, kiosk, sig ok
    verify_ok: bool = False
    verify_line: str = ""
    kiosk_public: bytes = b""
    gateway_public: bytes = b""  # with --ehr: the gateway's entry key (its ehr-update entries)
    ehr_ok: bool = True
    workdir: Path | None = None
    overrides: list[bytes] = field(default_factory=list)  # staff-override entries (--ui)
    overrides_expected: int = 0
    screens: list[Path] = field(default_factory=list)     # PNGs saved (--ui)

    @property
    def ok(self) -> bool:
        expected_entries = sum(2 for s in self.steps if s.expect in (EN.CHECKED_IN, EN.CONSENT_DECLINED))
        expected_entries += len(self.overrides)
        kiosk_entries = [e for e in self.ledger if e[1] not in entry.GATEWAY_TYPES]
        return (all(s.as_expected for s in self.steps) and self.verify_ok and self.ehr_ok
                and len(self.overrides) == self.overrides_expected
                and len(kiosk_entries) == expected_entries == len(self.receipts)
                and all(ok for *_, ok in self.ledger))


def _portraits(faces_dir: Path | None) -> dict[str, np.ndarray]:
    if faces_dir is None:
        from kiosk.hardware.camera.synthetic import demo_portraits

        return demo_portraits()
    from kiosk.errors import NoInputError
    from kiosk.vision.enroll import load_photo

    if not Path(faces_dir).is_dir():
        raise NoInputError(f"{faces_dir}: --faces needs a folder (it does not exist or is not a folder)")
    files = sorted(p for p in Path(faces_dir).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) < 2:
        raise NoInputError(f"{faces_dir}: --faces needs a folder with at least two photos (jpg/png)")
    return {f"face{i + 1}": load_photo(p) for i, p in enumerate(files[:2])}


def _config(work: Path, port: int, nfc_port: str, ehr: dict | None = None) -> Any:
    from kiosk import config

    return config.from_dict({**({"ehr": ehr} if ehr else {}),
        "kiosk": {"site": SITE, "id": KIOSK},
        "paths": {"state_dir": str(work / "state")},
        "keys": {"kiosk_key": str(work / "kiosk" / "kiosk.key"),
                 "sealing_key": str(work / "issuer" / "for-kiosks" / "sealing.key"),
                 "issuer_public": [str(work / "issuer" / "issuer.pub")],
                 "log_public": str(work / "gateway" / "log.pub"), "log_name": LOG_NAME,
                 "gateway_sealing_public": str(work / "gateway" / "gateway-sealing.pub")},
        "broker": {"port": port},
        "nfc": {"port": nfc_port},
        "outbox": {"resend_after_s": 3.0},
        "gateway": {"log_key": str(work / "gateway" / "log.key"),
                    "sealing_key": str(work / "gateway" / "gateway-sealing.key")},
        "engine": {"credential_timeout_s": 20.0, "face_timeout_s": 20.0, "consent_timeout_s": 15.0,
                   "done_display_s": 0.0, "retry_pause_s": 0.2, "consent_tap_timeout_s": 8.0,
                   "poll_interval_s": 0.05, "absent_timeout_s": 5.0},
    }, source="demo")


STAFF_ID, STAFF_PIN, STAFF_BADGE = "s-0042", "2468", bytes.fromhex("04a1b2c3d4e5f6")


def run_demo(faces_dir: Path | None = None, keep: Path | None = None,
             out: Any = print, ui_dir: Path | None = None, ehr: bool = False) -> DemoResult:
    """Run the scripted demo; `out` receives each printed line.

    With `ui_dir`, the touchscreen UI (SDL dummy driver) replaces the headless driver: a robot
    taps the patients' answers, every screen shown is saved there as PNG, and a sixth step has
    a staff member sign in (badge + PIN) and check a patient in at the desk (an override).
    With `ehr`, a FHIR server beside the gateway shows each appointment go to "arrived".
    """
    from kiosk.gateway.core import Gateway
    from kiosk.gateway.mqtt import GatewayService
    from kiosk.gateway.registry import open_registry
    from kiosk.hardware.nfc.emulator import Pn532Emulator, phone_card
    from kiosk.issuer.issuer import Issuer
    from kiosk.net import topics
    from kiosk.net.broker import MosquittoBroker
    from kiosk.net.mqtt_once import publish_retained
    from kiosk.protocol import keys
    from kiosk.vision.enroll import enrol
    from kiosk.vision.template import template_to_bytes
    from kiosk.wallet.wallet import Wallet

    t0 = time.monotonic()
    portraits = _portraits(faces_dir)  # a wrong --faces is refused before anything starts
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    stack: list = []
    try:
        broker = MosquittoBroker(directory=work / "broker").start()
        stack.append(broker.stop)
        emu = Pn532Emulator(pace=False)
        nfc_port = emu.start()
        stack.append(emu.stop)
        sandbox = None
        if ehr:  # a real FHIR server beside the gateway, with today's appointments
            from kiosk.gateway.ehr.sandbox import FhirSandbox

            sandbox = FhirSandbox(work / "ehr").start()
            stack.append(sandbox.stop)
            entry_key = keys.new_signing_key(work / "gateway" / "gateway-entry.key")
        cfg = _config(work, broker.port, nfc_port,
                      sandbox.table(work / "gateway" / "gateway-entry.key") if sandbox else None)
        from kiosk.config import to_toml
        # kept with --keep, so `kiosk ledger verify|history`, `kiosk outbox` and `kiosk doctor`
        # can look at what the demo left (the broker and emulator ports die with the demo)
        (work / "kiosk.toml").write_text(to_toml(cfg))
        # --- enrolment desk: issuer, patients' wallets (made first: the wallet owns its key)
        issuer = Issuer.init(work / "issuer", SITE)
        names = list(portraits)
        wallets: dict[str, Wallet] = {}
        desk = DemoCamera(portraits)
        for n in names:
            w = Wallet.create()
            # two photos, as the desk takes them (one photo refuses far more patients at the kiosk)
            tpl = template_to_bytes(enrol(desk.stills(n)).template)
            w.store_pass(issuer.enroll(w.public_key, tpl).pass_bytes)
            wallets[n] = w
        lost = Wallet.create()  # a third pass (the first patient's old phone), reported lost
        lost_tpl = template_to_bytes(enrol(desk.stills(names[0])).template)
        lost.store_pass(issuer.enroll(lost.public_key, lost_tpl).pass_bytes)
        from kiosk.protocol import patient_pass
        issuer.revoke(patient_pass.decode(lost.pass_bytes).pass_id)
        wallets["revoked"] = lost
        rl_bytes = issuer.revocation_list()
        # --- gateway host: log key, gateway sealing key, kiosk registry, gateway service
        keys.new_signing_key(work / "gateway" / "log.key", work / "gateway" / "log.pub")
        keys.new_sealing_key(work / "gateway" / "gateway-sealing.key",
                             work / "gateway" / "gateway-sealing.pub")
        kiosk_key = keys.new_signing_key(work / "kiosk" / "kiosk.key", work / "kiosk" / "kiosk.pub")
        (work / "state").mkdir(parents=True, exist_ok=True)
        reg = open_registry(cfg)
        reg.add(KIOSK, kiosk_key.verify_key)
        if sandbox is not None:
            reg.add(cfg.gateway.client_id, entry_key.verify_key, service=True)
            _book_appointments(cfg, sandbox, wallets, names[:2], out)
        reg.close()
        publish_retained("127.0.0.1", broker.port, topics.revocations(SITE), rl_bytes, client_id="issuer-demo")
        from kiosk.gateway.ehr.worker import worker_from_config

        gw = GatewayService(Gateway.from_config(cfg), cfg.broker, site=SITE, settings=cfg.gateway,
                            ehr=worker_from_config(cfg)).start()
        stack.append(gw.stop)
        if not gw.wait_ready(15):
            raise RuntimeError("gateway did not come up")
        deadline = time.monotonic() + 10
        while gw.gateway.revocations is None and time.monotonic() < deadline:
            time.sleep(0.05)
        # --- the kiosk
        from kiosk.app.runtime import build_runtime
        from kiosk.hardware.nfc.reader import NfcReader

        camera = desk  # the same scenes: the kiosk's camera sees what the desk enrolled
        reader = NfcReader(nfc_port, cfg.nfc.baudrate, cfg.nfc.timeout_s)
        stack.append(reader.close)
        touch = _TouchDemo(work, cfg, ui_dir) if ui_dir is not None else None
        if touch is not None:
            stack.append(touch.close)
        # the screen the patient sees also lights the simulated scene, on the camera's clock
        ui: Any = _ScreenTap(touch.ui if touch is not None else HeadlessDriver(), camera)
        ui.on(E.LIVENESS_TURN, lambda ev: camera.prompt(str(ev.params["direction"])))
        rt = build_runtime(cfg, ui=ui, camera=camera, reader=reader, listen_revocations=True,
                           nfc_repeat_guard_s=0.0,  # the director takes each phone away itself
                           # the simulated phones read the same host clock as the kiosk, so
                           # their QR windows agree whether or not NTP has set that clock
                           clock_synced=lambda: True, liveness_clock=camera.clock,
                           # the simulated scenes are seeded; so are the demo's challenges, so a
                           # run can be reproduced (a kiosk draws them from the OS's random source)
                           liveness_rng=random.Random(DEMO_CHALLENGE_SEED))
        stack.append(rt.close)
        if touch is not None:
            touch.attach(cfg, rt)
        rt.revocations.offer(rl_bytes)
        out(f"kiosk demo: site {SITE}, kiosk {KIOSK}, broker 127.0.0.1:{broker.port}, "
            f"NFC reader on {nfc_port} (emulated PN532), work dir {work}")
        out(f"  patients: {len(names)} enrolled from {'--faces' if faces_dir else 'public-domain portraits'}"
            f" ({', '.join(names)}), plus one revoked pass; setup {time.monotonic() - t0:.1f} s")

        a, b = names[0], names[1]
        steps = [
            Step(f"{a} taps their phone (NFC), signs the consent on a second tap", "nfc", a, a,
                 ScriptedPatient(second_tap=True), EN.CHECKED_IN),
            Step(f"{b} shows the QR code on their phone", "qr", b, b, ScriptedPatient(language="es"),
                 EN.CHECKED_IN),
            Step(f"a stranger ({b}'s face) taps {a}'s phone", "nfc", a, b, ScriptedPatient(), EN.FACE_MISMATCH),
            Step("a revoked pass is tapped", "nfc", "revoked", a, ScriptedPatient(), EN.PASS_REFUSED, "revoked"),
            Step(f"{b} taps their phone and declines the consent", "nfc", b, b,
                 ScriptedPatient(decision="decline", strokes=()), EN.CONSENT_DECLINED),
            Step(f"someone taps {b}'s phone holding up a printed photo of {b}", "nfc", b, f"print:{b}",
                 ScriptedPatient(), EN.LIVENESS_FAILED),
        ]
        # the phone leaves the reader once read, and comes back when the kiosk asks for the 2nd tap
        current: dict[str, Any] = {}

        def credential_read(ev: E.Event) -> None:
            # the phone leaves the reader; a QR phone is lowered and the face comes into view
            emu.remove()
            camera.show_person(current["face"])

        ui.on(E.READING, credential_read)
        def second_tap(ev: E.Event) -> None:
            if current.get("second_tap"):
                emu.place(phone_card(current["w"]))

        ui.on(E.CONSENT_TAP_TO_SIGN, second_tap)
        ui.on(E.CONSENT_PATIENT_SIGNED, lambda ev: emu.remove())
        for i, st in enumerate(steps, 1):
            w = wallets[st.holder]
            current.update(w=w, second_tap=st.patient.second_tap, face=st.face)
            if touch is not None:
                touch.patient(st.patient)
            else:
                ui.set_patient(st.patient)
            camera.show_person(st.face)
            if st.channel == "nfc":
                emu.place(phone_card(w))
            else:
                camera.show_qr(w.qr_text())
            st.outcome = rt.engine.run_once()
            if touch is not None:
                time.sleep(0.3)  # let the result screen reach the display (and its PNG) before the next tap
            emu.remove()
            camera.show_person(None)
            o = st.outcome
            what = o.status + (f" ({o.reason})" if o.reason else "")
            if o.entries:
                what += f", consent {o.consent}" + (", patient-signed" if o.patient_signed else "")
                what += ", entries " + " ".join(h.hex()[:12] for h in o.entries)
            out(f"[{i}] {st.label}: {what} -> {'as expected' if st.as_expected else 'UNEXPECTED'}")

        result = DemoResult(steps, kiosk_public=bytes(kiosk_key.verify_key), workdir=work,
                            gateway_public=bytes(entry_key.verify_key) if sandbox else b"")
        expected = [h for st in steps if st.outcome for h in st.outcome.entries]
        if touch is not None:
            ticket = touch.staff_override(lambda: emu.place(_badge_card()), emu.remove)
            result.overrides = list(touch.desk.overrides)
            result.overrides_expected = 1
            result.screens = list(touch.saved)
            expected += result.overrides
            ov = " ".join(h.hex()[:12] for h in result.overrides) or "NONE"
            out(f"[{len(steps) + 1}] staff {STAFF_ID} signs in (badge + PIN) and checks a patient in "
                f"at the desk "
                f"(reason identity-confirmed): ticket {ticket}, staff-override entry {ov}")
        _await_receipts(rt.outbox, expected, timeout_s=30.0)
        out("receipts (verified by the kiosk: signed checkpoint, inclusion, consistency):")
        leaves = _ledger_leaves(cfg)
        for h in expected:
            r = rt.outbox.receipt(h)
            typ = entry.decode_leaf(leaves[h])[0].type if h in leaves else "?"
            if r is None:
                out(f"  {h.hex()[:12]}  {typ:9s} NO RECEIPT")
                continue
            result.receipts.append((h, typ, r.leaf_index, r.checkpoint_size))
            out(f"  {h.hex()[:12]}  {typ:9s} leaf index {r.leaf_index}, checkpoint size {r.checkpoint_size}")
        if sandbox is not None:
            result.ehr_ok = _await_ehr(cfg, sandbox, names[:2], steps, out)
        _verify_ledger(cfg, result, out)
        took = time.monotonic() - t0
        n_ok = sum(s.as_expected for s in steps)
        out(f"demo: {n_ok}/{len(steps)} outcomes as expected, {len(result.ledger)} ledger entries, "
            f"log {'verified' if result.verify_ok else 'NOT verified'} ({took:.1f} s) -> "
            f"{'OK' if result.ok else 'FAILED'}")
        return result
    finally:
        for fn in reversed(stack):
            with contextlib.suppress(Exception):
                fn()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _badge_card() -> Any:
    """A staff badge on the emulated reader: a plain ISO 14443-A card with a fixed UID."""
    from kiosk.hardware.nfc.emulator import EmulatedCard

    class _Plain:
        def process(self, command: bytes) -> bytes:
            return b"\x6a\x82"

        def reset(self) -> None:
            pass

    return EmulatedCard(_Plain(), STAFF_BADGE, sens_res=b"\x00\x44", sel_res=0x08)


class _TouchDemo:
    """The touchscreen on SDL's dummy driver, a robot at it, and a PNG per screen shown."""

    def __init__(self, work: Path, cfg: Any, ui_dir: Path) -> None:
        import os

        # SDL reads these when the display opens; put back what was there when the demo ends
        self._env = {k: os.environ.get(k) for k in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER")}
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        from kiosk.checkin.ports import SystemClock
        from kiosk.staff.desk import Desk
        from kiosk.staff.store import StaffStore
        from kiosk.ui.app import PygameUi
        from kiosk.ui.model import UiModel, UiSettings
        from kiosk.ui.robot import Loop
        from kiosk.ui.shell import settings_of

        self.dir = ui_dir
        self.store = StaffStore(cfg.state_path(cfg.staff.path))
        self.store.add(STAFF_ID, "Demo Desk", STAFF_BADGE, STAFF_PIN)
        self.desk = Desk(self.store, site=cfg.kiosk.site, kiosk=cfg.kiosk.id)
        base = settings_of(cfg)
        settings = UiSettings(base.languages, base.default_language, result_s=5.0,
                              idle_warning_s=base.idle_warning_s, idle_countdown_s=base.idle_countdown_s)
        self.model = UiModel(settings, dict(cfg.consent.text), SystemClock(), cfg.consent, self.desk)
        self.ui = PygameUi(self.model, (cfg.ui.width, cfg.ui.height), fps=60)
        self.saved: list[Path] = []
        self._last = ""
        self.ui.on_frame = self._frame
        self.loop = Loop(self.ui).start()
        self.loop.wait(lambda: self.ui.frames > 0, 10)

    def _frame(self, ui: Any) -> None:
        from kiosk.ui.widgets import Field

        m = ui.model
        name = ("staff-" + (m.staff.step if m.staff.step != "tabs" else m.staff.tab) if m.staff is not None
                else "field" if any(isinstance(w, Field) for w in ui.widgets) else m.screen)
        if name != self._last:
            self._last = name
            path = self.dir / f"{len(self.saved) + 1:02d}-{name}.png"
            ui.save(path)
            self.saved.append(path)

    def attach(self, cfg: Any, rt: Any) -> None:
        from kiosk.ui.shell import PreviewTap

        badge = next((s for s in rt.engine.sources if hasattr(s, "read_badge")), None)
        self.desk.attach(cfg, rt, lambda: True, badge)
        if rt.engine.faces is not None and hasattr(rt.engine.faces, "preview"):
            tap = PreviewTap()
            rt.engine.faces.preview = tap.offer
            self.ui.preview_source = tap

    def patient(self, p: ScriptedPatient) -> None:
        from kiosk.ui.robot import PatientRobot

        self.loop.robot = PatientRobot(p)

    def staff_override(self, place_badge: Any, remove_badge: Any) -> str | None:
        from kiosk.ui.robot import StaffRobot

        self.model.press("result:ok")  # back to the attract screen, where the Staff button is
        robot = StaffRobot(STAFF_PIN, "identity-confirmed", place_badge)
        self.loop.robot = robot
        self.loop.wait(lambda: robot.done, 90)  # a hang guard; a loaded machine hashes the PIN slowly
        remove_badge()
        return robot.ticket

    def close(self) -> None:
        import os

        self.loop.stop()
        self.store.close()
        for k, v in self._env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _await_receipts(outbox: Any, hashes: list[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(outbox.receipt(h) is not None for h in hashes):
            return
        time.sleep(0.1)


def _store(cfg: Any) -> Any:
    from kiosk.ledger.sqlite_store import SqliteLogStore

    return SqliteLogStore(cfg.state_path(cfg.gateway.sqlite_path))


def _ledger_leaves(cfg: Any) -> dict[bytes, bytes]:
    """entry hash → leaf, for every entry in the log."""
    from kiosk.ledger.audit import iter_entries

    store = _store(cfg)
    try:
        return {entry.entry_hash(leaf): leaf for _, leaf in iter_entries(store)}
    finally:
        store.close()


def _verify_ledger(cfg: Any, result: DemoResult, out: Any) -> None:
    """`kiosk ledger verify` logic, plus: every leaf is signed by the demo kiosk's key."""
    from nacl.signing import VerifyKey

    from kiosk.errors import KioskError
    from kiosk.ledger.audit import iter_entries, verify_log
    from kiosk.ledger.checkpoint import NoteVerifier
    from kiosk.protocol import keys

    kiosk_pub = VerifyKey(result.kiosk_public)
    gateway_pub = VerifyKey(result.gateway_public) if result.gateway_public else None
    signers = {KIOSK: kiosk_pub, cfg.gateway.client_id: gateway_pub}
    store = _store(cfg)
    try:
        report = verify_log(store, NoteVerifier(LOG_NAME, keys.load_verify_key(cfg.keys.log_public)), LOG_NAME)
        for idx, leaf in iter_entries(store):
            try:
                env = entry.open_leaf(leaf, signers.get)
                result.ledger.append((idx, env.type, env.kiosk, True))
            except KioskError:
                env, _ = entry.decode_leaf(leaf)
                result.ledger.append((idx, env.type, env.kiosk, False))
    finally:
        store.close()
    cp = report.checkpoint
    result.verify_ok = report.ok and report.checkpoint_verified and cp is not None and cp.size == report.entries
    types = ", ".join(f"{t}" for _, t, _, _ in result.ledger)
    if report.ok:
        result.verify_line = (f"ok: {report.entries} entries ({types}), checkpoint at size "
                              f"{cp.size if cp else '-'} matches, log signature "
                              f"{'verified' if report.checkpoint_verified else 'NOT checked'}, "
                              f"every leaf signed by {KIOSK}"
                              f"{' (or the gateway: ehr-update)' if gateway_pub else ''}: "
                              f"{all(ok for *_, ok in result.ledger)}")
    else:
        result.verify_line = "FAILED: " + "; ".join(f"{f.kind}: {f.detail}" for f in report.findings[:3])
    out("ledger verify: " + result.verify_line)


def _book_appointments(cfg: Any, sandbox: Any, wallets: dict, names: list[str], out: Any) -> None:
    """--ehr: each demo patient has an EHR record and an appointment today; the gateway's
    identifier map links their pass's pseudonymous id to it."""
    from kiosk.gateway.ehr.sandbox import MRN_SYSTEM
    from kiosk.gateway.ehr.state import EhrState
    from kiosk.protocol import patient_pass

    state = EhrState(cfg.state_path(cfg.ehr.state_path))
    for n in names:
        mrn = sandbox.book(n)
        state.map_patient(patient_pass.decode(wallets[n].pass_bytes).patient, MRN_SYSTEM, mrn)
        out(f"  EHR (FHIR R4 at {sandbox.base}): {n} has Appointment/{sandbox.appointments[n][:8]}… "
            f"today, status {sandbox.status(n)}")
    state.close()


def _await_ehr(cfg: Any, sandbox: Any, names: list[str], steps: list, out: Any) -> bool:
    """--ehr: wait for the gateway to tell the EHR of every check-in, then show the appointments."""
    from kiosk.gateway.ehr.state import EhrState

    checked_in = sum(1 for st in steps if st.outcome and st.outcome.entries)
    state = EhrState(cfg.state_path(cfg.ehr.state_path))
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            done = [j for j in state.all() if j.state == "done"]
            if len(done) >= checked_in:
                break
            time.sleep(0.2)
        jobs = state.all()
    finally:
        state.close()
    ok = len(jobs) == checked_in and all(j.state == "done" and j.answer == "arrived" for j in jobs)
    for n in names:
        enc = sandbox.encounters(n)
        out(f"  EHR: {n}'s appointment booked -> {sandbox.status(n)}"
            f"{', ' + ', '.join(e[:18] + '…' for e in enc) if enc else ''}")
    out(f"  EHR: {sum(j.answer == 'arrived' for j in jobs)}/{checked_in} check-ins reported, "
        f"each recorded in the ledger as an ehr-update entry -> {'OK' if ok else 'FAILED'}")
    return ok
