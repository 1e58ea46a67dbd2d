"""End to end: the demo's script against a real Mosquitto, gateway, emulated PN532 and dlib."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.checkin import engine as EN

# the demo runs four liveness challenges on a rendered camera: a generous hang guard
pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(900)]


def _need_mosquitto() -> None:
    from kiosk.errors import KioskError
    from kiosk.net.broker import find_mosquitto

    try:
        find_mosquitto()
    except KioskError as e:
        pytest.skip(f"mosquitto not available: {e.message}")


def test_demo_script_ledger_holds_exactly_the_expected_entries(tmp_path: Path) -> None:
    _need_mosquitto()

    from kiosk.app.demo import KIOSK, _ledger_leaves, _store, run_demo
    from kiosk.ledger.audit import iter_entries
    from kiosk.protocol import cose, entry, keys

    lines: list[str] = []
    result = run_demo(keep=tmp_path / "demo", out=lines.append)
    assert result.ok, "\n".join(lines)
    by_label = {s.expect: s.outcome for s in result.steps}
    statuses = [s.outcome.status for s in result.steps]
    assert statuses == [EN.CHECKED_IN, EN.CHECKED_IN, EN.FACE_MISMATCH, EN.PASS_REFUSED, EN.CONSENT_DECLINED,
                        EN.LIVENESS_FAILED]
    assert result.steps[0].outcome.patient_signed and result.steps[0].outcome.channel == "nfc"
    assert result.steps[1].outcome.channel == "qr"
    # nothing for the stranger or the revoked pass
    assert result.steps[2].outcome.entries == () and result.steps[3].outcome.entries == ()
    assert by_label[EN.PASS_REFUSED].reason == "revoked"
    # liveness ran on every check-in; the printed photo was refused and recorded nothing
    assert [s.outcome.liveness for s in result.steps if s.outcome.entries] == ["live"] * 3
    assert result.steps[5].outcome.entries == () and result.steps[5].outcome.liveness == "attack"

    # the log: exactly three check-ins and three consents, in session order, each consent
    # naming its check-in, every leaf verifying under the kiosk's public key file
    kiosk_pub = keys.load_verify_key(tmp_path / "demo" / "kiosk" / "kiosk.pub")
    from kiosk import config
    cfg = config.from_dict({"paths": {"state_dir": str(tmp_path / "demo" / "state")}})
    store = _store(cfg)
    try:
        leaves = [leaf for _, leaf in iter_entries(store)]
    finally:
        store.close()
    envs = []
    for leaf in leaves:
        cose.verify_sign1(leaf, kiosk_pub, "leaf")
        envs.append(entry.decode_leaf(leaf)[0])
    assert [e.type for e in envs] == ["check-in", "consent"] * 3
    assert all(e.kiosk == KIOSK for e in envs)
    for ci, co, ci_leaf in zip(envs[0::2], envs[1::2], leaves[0::2], strict=True):
        assert co.refs == (entry.entry_hash(ci_leaf),) and co.patient == ci.patient
    written = [h for s in result.steps for h in s.outcome.entries]
    assert [entry.entry_hash(leaf) for leaf in leaves] == written
    assert set(_ledger_leaves(cfg)) == set(written)
    # patient A's pass came twice (A, then the stranger): only A's own visit is in the log
    patients = [e.patient for e in envs[0::2]]
    assert patients[0] not in patients[1:] and patients[1] == patients[2]
    assert [r[2] for r in result.receipts] == list(range(6))
    assert any(line.startswith("ledger verify: ok") for line in lines)


def test_kiosk_demo_command_exits_zero(tmp_path: Path) -> None:
    _need_mosquitto()
    proc = subprocess.run([sys.executable, "-m", "kiosk", "demo"], capture_output=True, text=True,
                          timeout=800, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6/6 outcomes as expected" in proc.stdout
    assert "ledger verify: ok" in proc.stdout
