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
