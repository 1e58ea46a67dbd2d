"""`kiosk issuer revocations --refresh-before-hours H` (run hourly by
systemd/kiosk-revocations-refresh.timer): re-sign only when needed, well before next_update."""
from __future__ import annotations

from pathlib import Path

from kiosk.cli import main
from kiosk.issuer.issuer import Issuer
from kiosk.protocol import keys, revocation


def _list(d: Path) -> revocation.RevocationList:
    iss = Issuer(d)
    vk = iss.signing_key.verify_key
    return revocation.verify((d / "revocations.cose").read_bytes(), {keys.kid(vk): vk}, site="clinic")


def test_refresh_resigns_only_when_needed(tmp_path, capsys):
    d = tmp_path / "issuer"
    assert main(["issuer", "--dir", str(d), "init", "--site", "clinic"]) == 0
    assert main(["issuer", "--dir", str(d), "revocations", "--refresh-before-hours", "12"]) == 0
    first = (d / "revocations.cose").read_bytes()  # none yet: signed
    assert "signed revocation list written" in capsys.readouterr().out
    assert main(["issuer", "--dir", str(d), "revocations", "--refresh-before-hours", "12"]) == 0
    assert (d / "revocations.cose").read_bytes() == first  # 24 h left: left alone
    assert "not re-signed" in capsys.readouterr().out
    # less than 12 h left: re-signed with a fresh next_update
    assert main(["issuer", "--dir", str(d), "revocations", "--next-update-hours", "6"]) == 0
    short = _list(d)
    assert main(["issuer", "--dir", str(d), "revocations", "--refresh-before-hours", "12"]) == 0
    fresh = _list(d)
    assert fresh.next_update - short.next_update > 17 * 3600 and fresh.issued >= short.issued
    # a revocation since the last signature: re-signed at once, whatever the time left
    assert main(["issuer", "--dir", str(d), "revoke", "00" * 16]) == 0
    assert main(["issuer", "--dir", str(d), "revocations", "--refresh-before-hours", "1"]) == 0
    assert bytes(16) in _list(d).revoked
    # a damaged file is re-signed, never republished
    (d / "revocations.cose").write_bytes(b"junk")
    assert main(["issuer", "--dir", str(d), "revocations", "--refresh-before-hours", "1"]) == 0
    assert _list(d).seq == Issuer(d).revocation_seq()


def test_timer_units_are_valid_systemd(tmp_path):
    import shutil
    import subprocess

    import pytest

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    repo = Path(__file__).resolve().parents[2]
    for name in ("kiosk-revocations-refresh.service", "kiosk-revocations-refresh.timer"):
        import sys
        kiosk = Path(sys.executable).with_name("kiosk")  # the units run /opt/kiosk's; test this one
        text = (repo / "systemd" / name).read_text().replace("/opt/kiosk/.venv/bin/kiosk", str(kiosk))
        (tmp_path / name).write_text(text.replace("EnvironmentFile=/etc/kiosk/issuer/refresh.env",
                                                  "EnvironmentFile=-/etc/kiosk/issuer/refresh.env"))
    r = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "kiosk-revocations-refresh.timer")],
                       capture_output=True, text=True, timeout=60)
    bad = [ln for ln in (r.stdout + r.stderr).splitlines()
           if "kiosk-revocations-refresh" in ln and "User" not in ln]
    assert not bad, bad
