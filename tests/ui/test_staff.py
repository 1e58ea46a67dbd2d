"""Staff mode by touch: badge + PIN sign-in, lock-out that survives a restart, the admin reset,
log-off (button, idle, a patient's tap), and the override entry in the outbox."""

from __future__ import annotations

import time
from pathlib import Path

import nacl.pwhash.argon2id as argon2id
import pytest
from checkin.fakes import FakeClock, FakeSink, Rig

from kiosk.checkin import events as E
from kiosk.checkin.events import Event
from kiosk.config import ConsentTable
from kiosk.protocol import cose, entry
from kiosk.staff import pin as P
from kiosk.staff.desk import Desk
from kiosk.staff.store import LockoutPolicy, StaffStore
from kiosk.ui.app import PygameUi
from kiosk.ui.model import UiModel, UiSettings
from kiosk.ui.robot import tap

BADGE = bytes.fromhex("04a1b2c3d4e5f6")
FAST = {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN}  # tests only


class Badge:
    """A badge reader: hands out `uid` once it is put on."""

    def __init__(self) -> None:
        self.uid: bytes | None = None

    def read_badge(self, timeout_s: float) -> bytes | None:
        uid, self.uid = self.uid, None
        if uid is None:
            time.sleep(min(timeout_s, 0.01))
        return uid


class Wall:
    """Wall time for the lock-out, moved by hand."""

    def __init__(self) -> None:
        self.t = 1_750_000_000.0

    def __call__(self) -> float:
        return self.t


def staff_file(path: Path, wall: Wall) -> StaffStore:
    return StaffStore(path, LockoutPolicy(free_tries=3, base_s=30, max_s=600), now=wall)


@pytest.fixture
def kit(tmp_path: Path):
    wall = Wall()
    store = staff_file(tmp_path / "staff.sqlite3", wall)
    store.add("s-0042", "Alex at the desk", BADGE, "2468", **FAST)
    rig = Rig(clock=FakeClock())
    sink = FakeSink()
    badge = Badge()
    desk = Desk(
        store, site="clinic", kiosk="kiosk-1", kiosk_key=rig.kiosk_key, override_sink=sink, badge_reader=badge
    )
    model = UiModel(UiSettings(staff_idle_s=120), ConsentTable().text, rig.clock, ConsentTable(), desk)
    ui = PygameUi(model, (800, 480), fps=0, clock=rig.clock).open()
    model.on_event(Event(E.TAP_OR_SHOW_QR, {"channels": ["nfc", "qr"]}))
    yield ui, model, badge, sink, rig, store, wall, tmp_path
    ui.close()
    store.close()


def pump(ui: PygameUi, until=lambda: False, n: int = 400) -> None:
    for _ in range(n):
        ui.step()
        if until():
            return
        time.sleep(0.005)


def press(ui: PygameUi, action: str) -> None:
    pump(ui, n=2)
    assert tap(ui, action), (action, [w.action for w in ui.widgets if w.action])
    pump(ui, n=2)


def sign_in(ui: PygameUi, model: UiModel, badge: Badge, pin: str) -> None:
    press(ui, "staff:open")
    badge.uid = BADGE
    pump(ui, lambda: model.staff is not None and model.staff.step == "pin")
    assert model.staff.step == "pin" and model.staff.staff_id == "s-0042"
    for d in pin:
        press(ui, f"key:{d}")
    press(ui, "key:ok")
    pump(ui, lambda: model.staff is None or model.staff.step != "checking")


def test_sign_in_override_and_log_off(kit) -> None:
    ui, model, badge, sink, rig, *_ = kit
    sign_in(ui, model, badge, "2468")
    assert model.staff.step == "tabs" and model.staff.tab == "queue"
    press(ui, "tab:override")
    press(ui, "override:confirm")  # no reason picked: refused, nothing written
    assert sink.sessions == [] and model.staff.message[0] == "staff.override.pick"
    press(ui, "reason:face-not-matched")
    press(ui, "override:confirm")
    assert model.staff.message == ("staff.override.done", {"ticket": "A-1"})
    ((leaf, body, pres),) = sink.sessions[0]
    env, _ = entry.decode_leaf(leaf)
    cose.verify_sign1(leaf, rig.kiosk_key.verify_key, "leaf")
    assert env.type == "staff-override" and env.patient is None and pres is None
    content = entry.decode_body(body)
    assert content == {
        "kind": "staff-override",
        "action": "check-in",
        "staff_id": "s-0042",
        "reason": "face-not-matched",
        "ticket": "A-1",
    }
    assert b"Alex" not in leaf + body  # the name stays on the kiosk
    press(ui, "tab:queue")
    assert [t.channel for t in model.desk.queue(rig.clock.time())] == ["desk"]
    press(ui, "staff:logoff")
    assert model.staff is None and model.screen == "welcome"


def test_alerts_show_until_acknowledged(kit) -> None:
    ui, model, badge, *_ = kit
    model.on_event(Event(E.STAFF_ALERT, {"kind": "camera-failure"}))
    model.on_event(Event(E.STAFF_ALERT, {"kind": "some-new-kind"}))
    sign_in(ui, model, badge, "2468")
    press(ui, "tab:alerts")
    texts = " ".join(r.text for r in ui.records)
    assert "The camera failed" in texts and "some-new-kind" in texts and "Alerts (2)" in texts
    first = model.desk.alerts()[0].id
    press(ui, f"ack:{first}")
    assert [a.kind for a in model.desk.alerts()] == ["some-new-kind"]


def test_a_foreign_credential_asks_staff_to_confirm_who_it_names(kit) -> None:
    from kiosk.protocol.credentials.base import ClaimedIdentity

    ui, model, badge, *_ = kit
    model.on_event(
        Event(
            E.STAFF_CONFIRM_IDENTITY,
            {
                "format": "eu-dcc",
                "issuer": "AT",
                "key_id": "ab",
                "content": ["vaccination"],
                "issued_at": None,
                "expires_at": None,
                "claimed": ClaimedIdentity("Musterfrau", "Gabriele", "1998-02-26"),
            },
        )
    )
    model.on_event(Event(E.SEE_FRONT_DESK, {"reason": "foreign-credential"}))
    pump(ui, n=2)
    patient_view = " ".join(r.text for r in ui.records)
    assert "Musterfrau" not in patient_view and "check this certificate" in patient_view
    press(ui, "result:ok")
    sign_in(ui, model, badge, "2468")
    press(ui, "tab:alerts")
    assert "EU DCC from AT: confirm Musterfrau, Gabriele (born 1998-02-26)" in " ".join(
        r.text for r in ui.records
    )
    press(ui, f"ack:{model.desk.alerts()[0].id}")
    assert model.desk.alerts() == []  # acknowledged: the claimed identity is gone from memory


def test_idle_and_a_patient_tap_log_staff_off(kit) -> None:
    ui, model, badge, _, rig, *_ = kit
    sign_in(ui, model, badge, "2468")
    rig.clock.sleep(121)
    pump(ui, n=2)
    assert model.staff is None
    sign_in(ui, model, badge, "2468")
    assert model.staff is not None
    model.on_event(Event(E.READING, {"channel": "nfc"}))  # a patient tapped their phone
    assert model.staff is None and model.screen == "reading"


def test_lockout_grows_and_survives_a_restart_until_the_admin_resets(kit) -> None:
    ui, model, badge, _, _, store, wall, tmp = kit
    sign_in(ui, model, badge, "1111")
    assert model.staff.message == ("staff.wrong_pin", {"left": 2})
    for _ in range(2):
        for d in "1111":
            press(ui, f"key:{d}")
        press(ui, "key:ok")
        pump(ui, lambda: model.staff.step != "checking")
    assert model.staff.message == ("staff.locked", {"minutes": 1})  # 30 s, shown as 1 min
    # the right PIN is refused while locked, even by a freshly opened staff file (a restart)
    restarted = staff_file(tmp / "staff.sqlite3", wall)
    r = restarted.verify("s-0042", "2468")
    assert not r.ok and r.reason == "locked" and r.locked_s == pytest.approx(30)
    wall.t += 31
    assert restarted.verify("s-0042", "0000").locked_s == pytest.approx(60)  # the 4th wrong PIN: 60 s
    wall.t += 61
    assert restarted.verify("s-0042", "0000").locked_s == pytest.approx(120)  # doubling, capped at 600
    assert not restarted.verify("s-0042", "2468").ok
    restarted.reset("s-0042")  # `kiosk staff reset s-0042`
    assert restarted.verify("s-0042", "2468").ok
    restarted.close()


def test_unknown_and_disabled_badges_are_refused(kit) -> None:
    ui, model, badge, _, _, store, *_ = kit
    press(ui, "staff:open")
    badge.uid = b"\x01\x02\x03\x04"
    pump(ui, lambda: model.staff.message is not None)
    assert model.staff.message == ("staff.unknown_badge", {}) and model.staff.step == "badge"
    store.disable("s-0042")
    badge.uid = BADGE
    pump(ui, lambda: model.staff.message == ("staff.disabled", {}))
    assert model.staff.step == "badge"
    press(ui, "staff:cancel")
    assert model.staff is None


def test_pin_hashing_is_argon2id_with_the_chosen_cost() -> None:
    h = P.hash_pin("2468")
    assert h.startswith(b"$argon2id$") and b"m=65536,t=3" in h
    assert P.verify_pin(h, "2468") and not P.verify_pin(h, "2469")
    with pytest.raises(ValueError):
        P.hash_pin("12a4")
