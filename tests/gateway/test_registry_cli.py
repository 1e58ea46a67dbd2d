"""The kiosk registry and `kiosk gateway kiosk add|list|revoke`."""
from __future__ import annotations

import json

import pytest
from nacl.signing import SigningKey

from kiosk import cli
from kiosk.errors import FormatError, StoreError
from kiosk.gateway.registry import PostgresRegistry, SqliteRegistry
from kiosk.protocol import keys

from .conftest import PG_DSN


def _exercise(reg):
    k1, k2 = SigningKey.generate(), SigningKey.generate()
    rec = reg.add("kiosk-1", k1.verify_key)
    assert rec.active and rec.public_key == bytes(k1.verify_key)
    with pytest.raises(StoreError):
        reg.add("kiosk-1", k2.verify_key)
    with pytest.raises(FormatError):
        reg.add("Kiosk 1", k2.verify_key)
    assert reg.key_for("kiosk-1") == k1.verify_key
    assert reg.key_for("kiosk-9") is None
    assert reg.revoke("kiosk-1").status == "revoked"
    assert reg.key_for("kiosk-1") is None
    with pytest.raises(StoreError):
        reg.revoke("kiosk-9")
    reg.add("kiosk-1", k2.verify_key, replace=True)  # re-keyed and active again
    assert reg.key_for("kiosk-1") == k2.verify_key
    assert [r.kiosk_id for r in reg.list()] == ["kiosk-1"]
    # audits still verify what the old key signed; live acceptance takes only the new key
    assert reg.keys_for("kiosk-1") == {keys.kid(k.verify_key): k.verify_key for k in (k1, k2)}
    assert reg.keys_for("kiosk-9") == {}


def test_sqlite_registry(tmp_path):
    with SqliteRegistry(tmp_path / "r.sqlite3") as reg:
        _exercise(reg)


@pytest.mark.postgres
def test_postgres_registry(pg_schema):
    with PostgresRegistry(PG_DSN, pg_schema) as reg:
        _exercise(reg)


def test_cli_add_list_revoke(tmp_path, capsys):
    conf = tmp_path / "kiosk.toml"
    conf.write_text(f'[paths]\nstate_dir = "{tmp_path}"\n[gateway]\nregistry_path = "reg.sqlite3"\n')
    key = SigningKey.generate()
    keys.save_public_key(tmp_path / "k.pub", key.verify_key)
    assert cli.main(["gateway", "kiosk", "add", "kiosk-3", "--key", str(tmp_path / "k.pub"),
                     "--config", str(conf)]) == 0
    assert cli.main(["gateway", "kiosk", "add", "kiosk-3", "--key", str(tmp_path / "k.pub"),
                     "--config", str(conf)]) == StoreError.exit_code
    assert cli.main(["gateway", "kiosk", "revoke", "kiosk-3", "--config", str(conf)]) == 0
    capsys.readouterr()
    assert cli.main(["gateway", "kiosk", "list", "--json", "--config", str(conf)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["kiosk"] == "kiosk-3" and listed[0]["status"] == "revoked"
    assert listed[0]["kid"] == keys.kid(key.verify_key).hex()
    assert (tmp_path / "reg.sqlite3").exists()
