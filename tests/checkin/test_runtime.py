"""`build_runtime`: a kiosk assembled from a config file, with a device that will not open."""
from __future__ import annotations

from pathlib import Path

from kiosk import config
from kiosk.app.runtime import build_runtime
from kiosk.checkin import engine as EN
from kiosk.checkin import events as E
from kiosk.checkin.headless import HeadlessDriver
from kiosk.protocol import keys


def _cfg(tmp: Path, nfc_port: str) -> config.Config:
    keys.new_signing_key(tmp / "kiosk.key")
    keys.new_sealing_key(tmp / "sealing.key")
    keys.new_signing_key(tmp / "issuer.key", tmp / "issuer.pub")
    return config.from_dict({
        "paths": {"state_dir": str(tmp / "state")},
        "keys": {"kiosk_key": str(tmp / "kiosk.key"), "sealing_key": str(tmp / "sealing.key"),
                 "issuer_public": [str(tmp / "issuer.pub")]},
        "camera": {"backend": "synthetic", "realtime": False},
        "nfc": {"port": nfc_port, "timeout_s": 0.2},
        "engine": {"credential_timeout_s": 0.3, "poll_interval_s": 0.05},
    })


def test_missing_reader_alerts_staff_and_qr_goes_on(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, str(tmp_path / "no-such-serial-port"))
    ui = HeadlessDriver()
    rt = build_runtime(cfg, ui=ui, start_publisher=False, listen_revocations=False)
    try:
        assert {"kind": "nfc-failure"} in [e.params for e in ui.events if e.id == E.STAFF_ALERT]
        assert [s.name for s in rt.engine.sources] == ["qr"]
        assert rt.engine.run_once().status == EN.NO_CREDENTIAL
        assert [e.params for e in ui.events if e.id == E.TAP_OR_SHOW_QR] == [{"channels": ["qr"]}]
    finally:
        rt.close()
