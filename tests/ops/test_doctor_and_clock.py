"""The clock-sync gate for QR passes, and `kiosk provision`."""
from __future__ import annotations

from kiosk.cli import main
from kiosk.clock_sync import ClockSyncState


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
