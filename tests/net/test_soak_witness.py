"""The honest-alarm soak (marker `soak`, not in the default run: `pytest -m soak`).

Phase 1: >= 200 records while the kiosk's publisher process, the broker and the gateway are
SIGKILLed at random moments, plus one 30 s gateway outage: nothing lost, nothing twice,
nothing parked and not one alarm. Phase 2: a real fork — a second gateway holding a copy of
the log key signs a different tree that agrees with the kiosk's history only up to two
leaves before its head: exactly one alarm, with both signed checkpoints kept as evidence.
Between the phases the kiosk's retained cosigned checkpoint lets `ledger verify
--witnesses broker` tell the honest store from the forked one.
"""
from __future__ import annotations

import os
import random
import signal
import time

import pytest

from kiosk.cli import main
from kiosk.ledger.checkpoint import Checkpoint, open_checkpoint, parse_note
from kiosk.ledger.sqlite_store import SqliteLogStore
from kiosk.net.outbox import Outbox
from kiosk.net.receipt import load_verifier

from .conftest import Env, GatewayProcess, wait_for
from .helpers import ledger_hashes, make_event_session, make_leaf
from .test_soak import PublisherProcess

pytestmark = [pytest.mark.soak, pytest.mark.mosquitto]

SESSIONS = 110  # two records each: 220 records
OUTAGE_S = 30


def test_soak_with_kills_and_an_outage_then_a_real_fork(env: Env, broker, gateway, capsys) -> None:
    seed = int(os.environ.get("KIOSK_SOAK_SEED", random.randrange(1 << 32)))
    print(f"soak seed {seed} (KIOSK_SOAK_SEED={seed} repeats the kill schedule)")
    rng = random.Random(seed)
    cfg_path = env.write_cfg("kiosk-1")
    cfg = env.cfg("kiosk-1")
    ob = Outbox(cfg.state_path(cfg.outbox.path))
    pub = PublisherProcess(cfg_path, env.root / "publisher.log")
    pub.start()
    written: list[bytes] = []
    events = {"publisher-kill": 0, "broker-kill": 0, "gateway-kill": 0, "gateway-outage": 0}
    outage_at = rng.randrange(20, SESSIONS - 20)
    try:
        for i in range(SESSIONS):
            written += ob.add_session(make_event_session(env.kiosk_keys["kiosk-1"]))
            time.sleep(rng.uniform(0.0, 0.05))
            if i == outage_at:
                events["gateway-outage"] += 1
                gateway.stop()
                for _ in range(10):  # records keep coming while the gateway is away
                    written += ob.add_session(make_event_session(env.kiosk_keys["kiosk-1"]))
                    time.sleep(OUTAGE_S / 10)
                gateway.start()
            elif i % 9 == 8:
                what = rng.choice(["publisher-kill", "broker-kill", "gateway-kill"])
                events[what] += 1
                time.sleep(rng.uniform(0.0, 0.3))
                if what == "publisher-kill":
                    pub.kill()
                    pub.start()
                elif what == "broker-kill":
                    broker.kill()
                    time.sleep(rng.uniform(0.1, 1.0))
                    broker.start()
                else:
                    gateway.restart(signal.SIGKILL)
        wait_for(lambda: ob.depth() == 0, 240, interval_s=0.25, what="outbox to empty")
        print("chaos events:", events, "seed", seed)
        in_log = ledger_hashes(env.root / "gw" / "ledger.sqlite3")
        assert len(written) >= 200
        assert len(in_log) == len(set(in_log)) == len(written), f"seed {seed}"  # 0 lost, 0 twice
        assert set(in_log) == set(written)
        assert ob.parked() == [], f"seed {seed}"
        assert ob.alarms() == [], [a.detail for a in ob.alarms()]
        head = ob.last_checkpoint()
        assert head.size == len(written)

        # the kiosk's cosigned head is retained on its witness topic: an audit from the
        # broker finds the honest store consistent with it
        gw_cfg = env.root / "gateway.toml"
        wait_for(lambda: _audit(gw_cfg, capsys)[0] == 0, 30, interval_s=1.0,
                 what="the witnessed checkpoint to reach the broker")

        # phase 2: the fork. The real gateway is gone; another one holds a copy of the log
        # key and a tree that differs from the kiosk's history two leaves before its head.
        gateway.stop()
        fork_db = env.root / "fork" / "ledger.sqlite3"
        fork_db.parent.mkdir()
        fork = SqliteLogStore(fork_db)
        real = [leaf for _, leaf in SqliteLogStore(env.root / "gw" / "ledger.sqlite3").iter_leaves()]
        fork.append(real[:head.size - 2])
        fork.append([make_leaf(env.kiosk_keys["kiosk-1"], type="kiosk-event")[0] for _ in range(2)])
        fork.close()
        fork_cfg = env.root / "fork.toml"
        d = env.cfg_dict("kiosk-1")
        d["gateway"]["sqlite_path"] = str(fork_db)
        d["gateway"]["client_id"] = "gateway-2"
        from kiosk import config

        fork_cfg.write_text(config.to_toml(config.from_dict(d)))
        forker = GatewayProcess(fork_cfg, env.root / "fork.log").start()
        try:
            written += ob.add_session(make_event_session(env.kiosk_keys["kiosk-1"]))
            wait_for(lambda: ob.alarms(), 60, interval_s=0.25, what="the fork's alarm")
            time.sleep(2 * cfg.outbox.resend_after_s + 1)  # resends meet the fork again
            alarms = ob.alarms()
            assert len(alarms) == 1, [a.detail for a in alarms]
            (alarm,) = alarms
            assert alarm.kind == "log-inconsistent" and len(alarm.evidence) == 2
            verifier = load_verifier(cfg.keys.log_public, cfg.keys.log_name)
            mine, theirs = (open_checkpoint(n, verifier, cfg.keys.log_name) for n in alarm.evidence)
            assert mine == Checkpoint.from_text(parse_note(head.note)[0])
            assert theirs.size > mine.size  # both signed by the log key: they cannot both be true
            assert ob.last_checkpoint() == head  # trust did not move onto the fork
            assert ob.depth() == 2  # the new records wait for an honest log
            # an audit of the forked store against the kiosk's witnessed checkpoint fails
            code, out = _audit(fork_cfg, capsys)
            assert code == 1 and "witness-inconsistent" in out, out
        finally:
            forker.stop()
    finally:
        pub.stop()


def _audit(cfg_path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["ledger", "verify", "--config", str(cfg_path), "--witnesses", "broker"])
    got = capsys.readouterr()
    return code, got.out + got.err
