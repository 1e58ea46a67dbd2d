"""`kiosk staff add|list|disable|enable|reset` on a staff file named by the config."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiosk.cli import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def test_staff_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def _kiosk(cfg: Path, *args: str, stdin: str = "") -> Result:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["staff", "--config", str(cfg), *args])
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'schema_version = 1\n[paths]\nstate_dir = "{tmp_path}"\n')
    r = _kiosk(cfg, "add", "s-0042", "--badge", "04:a1:b2:c3", "--name", "Alex", stdin="2468\n")
    assert r.returncode == 0, r.stderr
    r = _kiosk(cfg, "add", "s-0043", "--badge", "04a1b2c3", stdin="1357\n")
    assert r.returncode == 73 and "already registered" in r.stderr  # the same badge twice
    r = _kiosk(cfg, "add", "Alex Smith", "--badge", "0102", stdin="1357\n")
    assert r.returncode != 0 and "pseudonymous" in r.stderr
    r = _kiosk(cfg, "add", "s-0044", "--badge", "0102", stdin="12\n")
    assert r.returncode == 64 and "4 to 8 digits" in r.stderr
    assert _kiosk(cfg, "disable", "s-0042").returncode == 0
    (m,) = json.loads(_kiosk(cfg, "list", "--json").stdout)
    assert m["staff_id"] == "s-0042" and m["active"] is False and m["locked_s"] == 0
    assert _kiosk(cfg, "enable", "s-0042").returncode == 0
    assert _kiosk(cfg, "reset", "s-0042", "--new-pin", stdin="8642\n").returncode == 0
    assert _kiosk(cfg, "disable", "s-9999").returncode == 66

    from kiosk.staff.store import StaffStore

    store = StaffStore(tmp_path / "staff.sqlite3")
    try:
        assert store.verify("s-0042", "8642").ok and not store.verify("s-0042", "2468").ok
    finally:
        store.close()
