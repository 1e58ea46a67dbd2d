"""`kiosk doctor`: every check reports with a fix, on the screen and as JSON, against real
files, a real socket and a real Mosquitto."""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import from_dict, load, to_toml
from kiosk.doctor import Context, Result, Status, check, run_checks
from kiosk.doctor.core import CHECKS, ServiceUser, load_context
from kiosk.doctor.hardware import throttle_flags
from kiosk.protocol import keys

DEVICES = ["--skip", "nfc", "--skip", "camera"]


def _config(tmp_path, broker_port: int, **tables) -> str:
    k = tmp_path / "keys"
    keys.new_signing_key(k / "kiosk.key", k / "kiosk.pub")
    keys.new_sealing_key(k / "sealing.key")
    keys.new_signing_key(k / "issuer.key", k / "issuer.pub")
    keys.new_signing_key(k / "log.key", k / "log.pub")
    keys.new_sealing_key(k / "gateway-sealing.key", k / "gateway-sealing.pub")
    (tmp_path / "state").mkdir(exist_ok=True)
    data = {"kiosk": {"site": "clinic", "id": "kiosk-7"},
            "paths": {"state_dir": str(tmp_path / "state")},
            "keys": {"kiosk_key": str(k / "kiosk.key"), "sealing_key": str(k / "sealing.key"),
                     "issuer_public": [str(k / "issuer.pub")], "log_public": str(k / "log.pub"),
                     "gateway_sealing_public": str(k / "gateway-sealing.pub")},
            "broker": {"port": broker_port}}
    for name, table in tables.items():
        data.setdefault(name, {}).update(table)
    f = tmp_path / "kiosk.toml"
    f.write_text(to_toml(from_dict(data)))
    return str(f)


def _doctor_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["doctor", "--json", *args])
    doc = json.loads(capsys.readouterr().out)
    return code, {c["name"]: c for c in doc["checks"]} | {"_": doc}


def test_every_problem_comes_with_its_fix(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # bound, never listening: connection refused
        cfg = _config(tmp_path, dead)
        (tmp_path / "keys" / "kiosk.key").unlink()
        code, checks = _doctor_json(capsys, "--config", cfg, *DEVICES)
    assert code == 1 and checks["_"]["status"] == "fail"
    assert checks["keys"]["status"] == "fail" and "kiosk key" in checks["keys"]["summary"]
    assert "kiosk provision" in checks["keys"]["fix"]
    assert checks["broker"]["status"] == "fail" and "mosquitto" in checks["broker"]["fix"]
    for c in checks["_"]["checks"]:
        if c["status"] in ("warn", "fail"):
            assert c["fix"], f"{c['name']} reports a problem without a fix"
    assert checks["camera"]["status"] == "skip" and checks["reader"]["status"] == "skip"


def test_the_screen_shows_each_check_and_its_fix(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        cfg = _config(tmp_path, s.getsockname()[1])
        (tmp_path / "keys" / "sealing.key").chmod(0o644)
        code = main(["doctor", "--config", cfg, *DEVICES])
    out = capsys.readouterr().out
    assert code == 1
    assert "kiosk kiosk-7 at site clinic" in out.splitlines()[0]
    assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("  OK")][:1] == ["config"], out
    assert "FAIL  keys" in out and f"fix: sudo chmod 0600 {tmp_path}/keys/sealing.key" in out
    assert "OK    broker" in out
    assert out.splitlines()[-1].endswith("skipped")


def test_keys_owned_by_another_user_fail_with_the_chown_that_fixes_them(tmp_path, capsys):
    # the classic: `sudo kiosk provision` left the keys to root, the service runs as `kiosk`
    # (here `nobody`, a user every Debian has, plays the service user)
    cfg = _config(tmp_path, 1)
    code, checks = _doctor_json(capsys, "--config", cfg, "--user", "nobody", *DEVICES, "--skip", "broker")
    k = checks["keys"]
    assert os.getuid() == 0 or k["status"] == "fail"
    if os.getuid() == 0:
        assert k["status"] == "fail" and "not owned by nobody" in k["summary"]
        assert f"sudo chown nobody:nobody {tmp_path}/keys/kiosk.key" in k["fix"].splitlines()
        assert checks["config"]["status"] == "fail" and "nobody cannot read" in checks["config"]["summary"]
        ob = checks["outbox"]
        assert ob["status"] == "fail" and "not writable by nobody" in ob["summary"]


def test_service_user_access_follows_mode_bits_and_every_folder():
    import tempfile

    me = ServiceUser("someone", 4242, frozenset({4242}), True)
    top = tempfile.TemporaryDirectory(dir="/tmp")  # pytest's tmp_path sits in a 0700 folder
    os.chmod(top.name, 0o755)
    d = Path(top.name) / "d"
    d.mkdir()
    f = d / "f"
    f.write_text("x")
    f.chmod(0o644)
    d.chmod(0o755)
    assert me.can(f, os.R_OK) and not me.can(f, os.W_OK)
    d.chmod(0o700)
    assert not me.can(f, os.R_OK)  # the folder closes the way
    d.chmod(0o755)
    f.chmod(0o600)
    assert not me.can(f, os.R_OK)
    assert ServiceUser("root", 0, frozenset({0}), True).can(f, os.W_OK)
    top.cleanup()


def test_unreadable_config_is_one_check_with_its_fix_not_a_crash(tmp_path, capsys, monkeypatch):
    from kiosk import config

    # a --config that is not there is a typo: one line, no input (66), no report
    assert main(["doctor", "--json", "--config", str(tmp_path / "missing.toml"), *DEVICES]) == 66
    out, err = capsys.readouterr()
    assert not out and len(err.strip().splitlines()) == 1 and "missing.toml" in err
    # the default config missing is an unprovisioned kiosk: the report says how to provision it
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "missing.toml")
    code, checks = _doctor_json(capsys, *DEVICES)
    assert code == 1
    assert checks["config"]["status"] == "fail" and "kiosk provision" in checks["config"]["fix"]
    assert checks["keys"]["status"] == "skip"
    bad = tmp_path / "bad.toml"
    bad.write_text("[broker]\nprot = 1\n")
    code, checks = _doctor_json(capsys, "--config", str(bad), *DEVICES)
    assert "unknown key 'broker.prot'" in checks["config"]["summary"]


def test_a_remote_broker_without_tls_fails_the_tls_check(tmp_path, capsys):
    cfg = _config(tmp_path, 8883, broker={"host": "gateway.clinic.lan"})
    _, checks = _doctor_json(capsys, "--config", cfg, *DEVICES, "--skip", "broker")
    assert checks["tls"]["status"] == "skip"  # --skip broker covers the whole area
    ctx = load_context(Path(cfg))
    tls = dict((c.name, r) for c, r in run_checks(ctx))["tls"]
    assert tls.status == Status.FAIL and "no TLS" in tls.summary and "--ca" in tls.fix


def test_unknown_skip_is_a_usage_error(tmp_path, capsys):
    assert main(["doctor", "--skip", "nosuch"]) == 64
    assert "no such check" in capsys.readouterr().err


def test_a_check_that_crashes_is_reported_and_the_others_still_run(tmp_path):
    @check("test-crash", needs_config=False)
    def _boom(ctx: Context) -> Result:
        raise RuntimeError("boom")
    try:
        ctx = load_context(tmp_path / "none.toml", skip=frozenset({"nfc", "camera", "display"}))
        res = {c.name: r for c, r in run_checks(ctx)}
        assert res["test-crash"].status == Status.FAIL and "boom" in res["test-crash"].summary
        assert res["config"].status == Status.FAIL
    finally:
        del CHECKS[[c.name for c in CHECKS].index("test-crash")]


def test_throttling_bits_are_named():
    assert throttle_flags(0) == []
    assert throttle_flags(0x50005) == ["under-voltage now", "throttled now", "under-voltage since boot",
                                       "throttled since boot"]


def test_camera_and_frame_rate_are_measured_on_the_synthetic_camera(tmp_path):
    cfg = _config(tmp_path, 1, camera={"backend": "synthetic", "fps": 20.0})
    ctx = load_context(Path(cfg), skip=frozenset({"nfc", "broker"}))
    ctx.measure_s = 0.5
    res = {c.name: r for c, r in run_checks(ctx)}
    assert res["camera"].status == Status.OK and "640x480" in res["camera"].summary
    fr = res["frame rate"]
    assert fr.status in (Status.OK, Status.WARN) and fr.data["fps"] > 0  # speed is not asserted


@pytest.mark.mosquitto
def test_gateway_checkpoint_log_name_and_revocation_list_over_the_broker(tmp_path, capsys):
    from kiosk.ledger.checkpoint import Checkpoint, sign_checkpoint
    from kiosk.net import topics
    from kiosk.net.broker import MosquittoBroker
    from kiosk.net.mqtt_once import publish_retained
    from kiosk.protocol import revocation

    with MosquittoBroker() as broker:
        cfg = _config(tmp_path, broker.port)
        _, checks = _doctor_json(capsys, "--config", cfg, *DEVICES)
        assert checks["gateway"]["status"] == "warn" and "no checkpoint" in checks["gateway"]["summary"]
        assert checks["revocations"]["status"] == "warn"
        log_key = keys.load_signing_key(tmp_path / "keys" / "log.key")
        name = load(cfg).keys.log_name
        other = "elsewhere.example/log"
        note = sign_checkpoint(Checkpoint(other, 3, b"\x02" * 32), other, log_key)
        publish_retained("127.0.0.1", broker.port, topics.checkpoint("clinic"), note, client_id="gw-test")
        _, checks = _doctor_json(capsys, "--config", cfg, *DEVICES)
        gw = checks["gateway"]
        assert gw["status"] == "fail" and other in gw["summary"] and name in gw["summary"]
        assert f'keys.log_name = "{other}"' in gw["fix"]

        note = sign_checkpoint(Checkpoint(name, 6, b"\x01" * 32), name, log_key)
        publish_retained("127.0.0.1", broker.port, topics.checkpoint("clinic"), note, client_id="gw-test")
        issuer = keys.load_signing_key(tmp_path / "keys" / "issuer.key")
        now = int(time.time())
        rl = revocation.sign(issuer, site="clinic", revoked={}, issued=now - 7200,
                             next_update=now + 3600, seq=4)
        publish_retained("127.0.0.1", broker.port, topics.revocations("clinic"), rl, client_id="issuer-test")
        code, checks = _doctor_json(capsys, "--config", cfg, *DEVICES)
        assert checks["gateway"]["status"] == "ok" and checks["gateway"]["data"]["size"] == 6
        rv = checks["revocations"]
        assert rv["status"] == "ok" and rv["data"]["seq"] == 4 and "2.0 h ago" in rv["summary"]

        old = revocation.sign(issuer, site="clinic", revoked={}, issued=now - 9 * 86400,
                              next_update=now - 8 * 86400, seq=5)
        publish_retained("127.0.0.1", broker.port, topics.revocations("clinic"), old,
                         client_id="issuer-test")
        code, checks = _doctor_json(capsys, "--config", cfg, *DEVICES)
        assert checks["revocations"]["status"] == "fail" and "refused" in checks["revocations"]["summary"]
        assert code == 1
