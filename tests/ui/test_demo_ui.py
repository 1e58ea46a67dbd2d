"""`kiosk demo --ui`: the whole check-in by touch on the dummy driver, its screens saved, and a
staff override that reaches the real gateway's ledger naming the staff id and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

# the demo runs four liveness challenges on a rendered camera: a generous hang guard
pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(900)]


def test_demo_with_the_touchscreen_and_a_staff_override_in_the_ledger(tmp_path: Path) -> None:
    from kiosk.errors import KioskError
    from kiosk.net.broker import find_mosquitto

    try:
        find_mosquitto()
    except KioskError as e:
        pytest.skip(f"mosquitto not available: {e.message}")
    from kiosk import config
    from kiosk.app.demo import STAFF_ID, _store, run_demo
    from kiosk.checkin import engine as EN
    from kiosk.protocol import cose, entry, keys

    lines: list[str] = []
    result = run_demo(keep=tmp_path / "demo", out=lines.append, ui_dir=tmp_path / "screens")
    assert result.ok, "\n".join(lines)
    assert [s.outcome.status for s in result.steps] == [
        EN.CHECKED_IN,
        EN.CHECKED_IN,
        EN.FACE_MISMATCH,
        EN.PASS_REFUSED,
        EN.CONSENT_DECLINED,
        EN.LIVENESS_FAILED,
    ]
    names = [p.name.split("-", 1)[1] for p in result.screens]
    for want in ("welcome.png", "consent.png", "done.png", "staff-pin.png", "staff-override.png"):
        assert want in names, names
    assert all(p.is_file() and p.read_bytes().startswith(b"\x89PNG") for p in result.screens)

    # the override is in the log: a staff-override leaf signed by the kiosk, its body naming
    # the pseudonymous staff id and the reason, and no patient
    (override,) = result.overrides
    kiosk_pub = keys.load_verify_key(tmp_path / "demo" / "kiosk" / "kiosk.pub")
    store = _store(config.from_dict({"paths": {"state_dir": str(tmp_path / "demo" / "state")}}))
    try:
        index = store.find(override)
        assert index is not None
        leaf = store.get_leaf(index)
        cose.verify_sign1(leaf, kiosk_pub, "leaf")
        env, _ = entry.decode_leaf(leaf)
        body = store.get_body(env.body_hash)
    finally:
        store.close()
    assert env.type == "staff-override" and env.patient is None
    content = entry.decode_body(body)
    assert content["staff_id"] == STAFF_ID and content["reason"] == "identity-confirmed"
    assert content["action"] == "check-in" and content["ticket"].startswith("A-")
    assert any(f"staff-override entry {override.hex()[:12]}" in line for line in lines)
