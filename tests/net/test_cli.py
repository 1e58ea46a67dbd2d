"""`kiosk outbox`: the report names counts, hash prefixes and reasons, never a body."""
from __future__ import annotations

import json

from kiosk.cli import main
from kiosk.net.outbox import Outbox

from .conftest import Env
from .helpers import make_session


def test_outbox_report(env: Env, capsys) -> None:
    cfg_path = env.write_cfg("kiosk-1")
    cfg = env.cfg("kiosk-1")
    ob = Outbox(cfg.state_path(cfg.outbox.path))
    recs = make_session(env.kiosk_keys["kiosk-1"])
    h1, h2 = ob.add_session(recs)
    assert main(["outbox", "--config", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    assert "waiting for a receipt: 2" in out and "none yet" in out
    ob.park(h1, "unknown-kiosk")
    ob.set_last_checkpoint(12, b"r" * 32, b"n")
    assert main(["outbox", "--config", str(cfg_path), "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["depth"] == 1 and rep["last_checkpoint_size"] == 12
    assert rep["parked"][0] == {**rep["parked"][0], "entry": h1[:8].hex(), "reason": "unknown-kiosk"}
    text = json.dumps(rep)
    assert recs[0][1].hex() not in text and "kiosk-qr-v1" not in text  # no body, no presentation
    # once IT fixed the cause, the parked record is queued again
    assert main(["outbox", "--config", str(cfg_path), "--retry-parked"]) == 0
    assert "1 parked records queued again" in capsys.readouterr().out
    assert ob.depth() == 2 and ob.parked() == []


def test_a_reason_with_control_characters_is_shown_escaped(env: Env, capsys) -> None:
    cfg_path = env.write_cfg("kiosk-1")
    cfg = env.cfg("kiosk-1")
    ob = Outbox(cfg.state_path(cfg.outbox.path))
    h1, _ = ob.add_session(make_session(env.kiosk_keys["kiosk-1"]))
    # as an older kiosk stored it from an unsigned rejection: a forged log line and a
    # terminal escape sequence
    ob.park(h1, "revoked\n2026-12-01 INFO all receipts verified\x1b[2J")
    assert main(["outbox", "--config", str(cfg_path)]) == 1
    out = capsys.readouterr().out
    assert "revoked\\n2026-12-01 INFO all receipts verified\\x1b[2J" in out
    assert "\x1b" not in out and "\nall receipts" not in out


def test_clear_alarm_keeps_the_evidence_and_logs_the_clearing(env: Env, capsys) -> None:
    from kiosk.protocol import entry

    cfg_path = env.write_cfg("kiosk-1")
    cfg = env.cfg("kiosk-1")
    ob = Outbox(cfg.state_path(cfg.outbox.path))
    alarm = ob.raise_alarm("log-inconsistent", "entry abcd: two checkpoints of size 7 differ",
                           [b"note a", b"note b"])
    assert main(["outbox", "--config", str(cfg_path)]) == 1
    assert f"kiosk outbox clear-alarm {alarm}" in capsys.readouterr().out
    assert main(["outbox", "--config", str(cfg_path), "clear-alarm", str(alarm),
                 "--reason", "reviewed: a test gateway on the clinic network"]) == 0
    assert "cleared" in capsys.readouterr().out
    assert ob.alarms() == [] and ob.alarm(alarm).evidence == (b"note a", b"note b")
    (rec,) = ob.pending(10)
    env_, _ = entry.decode_leaf(rec.leaf)
    body = entry.decode_body(rec.body)
    assert env_.type == "kiosk-event" and entry.body_hash_of(rec.body) == env_.body_hash
    assert body["event"] == "alarm-cleared" and body["alarm_id"] == alarm
    assert body["reason"].startswith("reviewed")
    assert main(["outbox", "--config", str(cfg_path)]) == 0  # healthy again
    capsys.readouterr()
    assert main(["outbox", "--config", str(cfg_path), "clear-alarm", str(alarm),
                 "--reason", "again"]) == 66  # nothing left to clear: one clear line
    assert main(["outbox", "clear-alarm", "1", "--reason", "x\ny",
                 "--config", str(cfg_path)]) == 64
