"""`kiosk doctor` on a provisioned-looking config, and the clock-sync gate for QR passes."""
from __future__ import annotations

import socket

from kiosk.cli import main
from kiosk.clock_sync import ClockSyncState
from kiosk.config import from_dict, to_toml
from kiosk.protocol import keys


def _config(tmp_path, broker_port: int) -> str:
    k = tmp_path / "keys"
    keys.new_signing_key(k / "kiosk.key", k / "kiosk.pub")
    keys.new_sealing_key(k / "sealing.key")
    keys.new_signing_key(k / "issuer.key", k / "issuer.pub")
    keys.new_signing_key(k / "log.key", k / "log.pub")
    cfg = from_dict({"kiosk": {"site": "clinic", "id": "kiosk-7"},
                     "paths": {"state_dir": str(tmp_path / "state")},
                     "keys": {"kiosk_key": str(k / "kiosk.key"), "sealing_key": str(k / "sealing.key"),
                              "issuer_public": [str(k / "issuer.pub")], "log_public": str(k / "log.pub")},
                     "broker": {"port": broker_port}})
    f = tmp_path / "kiosk.toml"
    f.write_text(to_toml(cfg))
    return str(f)


def test_doctor_reports_each_part(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        cfg = _config(tmp_path, s.getsockname()[1])
        code = main(["doctor", "--config", cfg, "--skip", "nfc", "--skip", "camera"])
    out = capsys.readouterr().out
    assert "OK    keys" in out and "OK    broker" in out and "models" in out
    assert code in (0, 1)


def test_doctor_names_a_missing_key_and_a_dead_broker(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # bound, never listening: connection refused
        cfg = _config(tmp_path, dead)
        (tmp_path / "keys" / "kiosk.key").unlink()
        code = main(["doctor", "--config", cfg, "--skip", "nfc", "--skip", "camera"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  keys" in out and "kiosk key" in out
    assert "FAIL  broker" in out


def test_clock_state_refuses_until_synchronised_then_stays():
    answers = iter([False, True, False])
    state = ClockSyncState(probe=lambda: next(answers), recheck_s=0.0)
    assert state() is False
    assert state() is True
    assert state() is True  # once synchronised, not asked again


def test_unknown_clock_state_is_trusted():
    assert ClockSyncState(probe=lambda: None)() is True


def test_provision_writes_a_config_that_loads_and_refuses_to_overwrite(tmp_path, capsys):
    import stat

    from kiosk.config import load
    d = tmp_path / "etc"
    assert main(["provision", "--site", "clinic", "--id", "kiosk-3", "--broker", "gw.local:8883",
                 "--dir", str(d), "--state-dir", str(tmp_path / "state")]) == 0
    cfg = load(d / "kiosk.toml")
    assert (cfg.kiosk.id, cfg.broker.host, cfg.broker.port) == ("kiosk-3", "gw.local", 8883)
    assert cfg.consent.text["es"].startswith("Acepto")  # inline tables survive the round trip
    assert stat.S_IMODE((d / "keys" / "kiosk.key").stat().st_mode) == 0o600
    assert "kiosk gateway kiosk add kiosk-3" in capsys.readouterr().out
    assert main(["provision", "--site", "clinic", "--id", "kiosk-3", "--dir", str(d)]) == 78


def test_doctor_verifies_the_gateways_retained_checkpoint(tmp_path, capsys):
    from kiosk.ledger.checkpoint import Checkpoint, sign_checkpoint
    from kiosk.net import topics
    from kiosk.net.broker import MosquittoBroker
    from kiosk.net.mqtt_once import publish_retained

    with MosquittoBroker() as broker:
        cfg = _config(tmp_path, broker.port)
        main(["doctor", "--config", cfg, "--skip", "nfc", "--skip", "camera"])
        assert "WARN  gateway no checkpoint" in capsys.readouterr().out
        log_key = keys.load_signing_key(tmp_path / "keys" / "log.key")
        from kiosk.config import load
        name = load(cfg).keys.log_name
        note = sign_checkpoint(Checkpoint(name, 6, b"\x01" * 32), name, log_key)
        publish_retained("127.0.0.1", broker.port, topics.checkpoint("clinic"), note, client_id="gw-test")
        main(["doctor", "--config", cfg, "--skip", "nfc", "--skip", "camera"])
        assert "OK    gateway gateway checkpoint verified: log size 6" in capsys.readouterr().out
