"""The kiosk registry and `kiosk gateway kiosk add|list|revoke`."""
from __future__ import annotations

import json

import pytest
from nacl.signing import SigningKey

from kiosk import cli
from kiosk.errors import CannotCreateError, FormatError, NoInputError, StoreError
from kiosk.gateway.registry import PostgresRegistry, SqliteRegistry
from kiosk.protocol import keys

from .conftest import PG_DSN


def _exercise(reg):
    k1, k2 = SigningKey.generate(), SigningKey.generate()
    rec = reg.add("kiosk-1", k1.verify_key)
    assert rec.active and rec.public_key == bytes(k1.verify_key)
    with pytest.raises(CannotCreateError):
        reg.add("kiosk-1", k2.verify_key)
    with pytest.raises(FormatError):
        reg.add("Kiosk 1", k2.verify_key)
    assert reg.key_for("kiosk-1") == k1.verify_key
    assert reg.key_for("kiosk-9") is None
    assert reg.revoke("kiosk-1").status == "revoked"
    assert reg.key_for("kiosk-1") is None
    with pytest.raises(NoInputError):
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
                     "--config", str(conf)]) == CannotCreateError.exit_code
    assert cli.main(["gateway", "kiosk", "revoke", "kiosk-3", "--config", str(conf)]) == 0
    capsys.readouterr()
    assert cli.main(["gateway", "kiosk", "list", "--json", "--config", str(conf)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["kiosk"] == "kiosk-3" and listed[0]["status"] == "revoked"
    assert listed[0]["kid"] == keys.kid(key.verify_key).hex()
    assert (tmp_path / "reg.sqlite3").exists()


def _refusals(reg):
    """Reserved ids (the broker's services) and one key under two ids are refused."""
    k1, k2, k3 = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    for reserved in ("gateway", "gateway-1", "gateway-7", "issuer"):
        with pytest.raises(FormatError, match="reserved"):
            reg.add(reserved, k1.verify_key)
    reg.add("kiosk-1", k1.verify_key)
    with pytest.raises(StoreError, match="kiosk-1"):
        reg.add("kiosk-2", k1.verify_key)
    with pytest.raises(StoreError, match="kiosk-1"):  # nor by re-keying another kiosk to it
        reg.add("kiosk-2", k2.verify_key)
        reg.add("kiosk-2", k1.verify_key, replace=True)
    reg.add("kiosk-1", k3.verify_key, replace=True)
    with pytest.raises(StoreError, match="kiosk-1"):  # a retired key stays kiosk-1's
        reg.add("kiosk-3", k1.verify_key)
    reg.add("kiosk-1", k1.verify_key, replace=True)  # a kiosk may go back to its own old key
    assert [r.kiosk_id for r in reg.list()] == ["kiosk-1", "kiosk-2"]


def test_sqlite_registry_refusals(tmp_path):
    with SqliteRegistry(tmp_path / "r.sqlite3") as reg:
        _refusals(reg)


@pytest.mark.postgres
def test_postgres_registry_refusals(pg_schema):
    with PostgresRegistry(PG_DSN, pg_schema) as reg:
        _refusals(reg)


def test_gateway_init_makes_the_log_and_sealing_keys_once(tmp_path, capsys):
    conf = tmp_path / "kiosk.toml"
    conf.write_text('[gateway]\nlog_key = "k/log.key"\nsealing_key = "k/gateway-sealing.key"\n')
    assert cli.main(["gateway", "init", "--config", str(conf)]) == 0
    log_key = keys.load_signing_key(tmp_path / "k" / "log.key")
    seal = keys.load_sealing_key(tmp_path / "k" / "gateway-sealing.key")
    assert keys.load_verify_key(tmp_path / "k" / "log.pub") == log_key.verify_key
    assert keys.load_sealing_public(tmp_path / "k" / "gateway-sealing.pub") == seal.public_key
    assert cli.main(["gateway", "init", "--config", str(conf)]) == 0  # kept, never overwritten
    assert keys.load_signing_key(tmp_path / "k" / "log.key") == log_key
    assert "kept" in capsys.readouterr().out


@pytest.mark.parametrize("reserved", ["gateway-1", "issuer"])
def test_provision_refuses_a_reserved_id(tmp_path, capsys, reserved):
    assert cli.main(["provision", "--site", "clinic", "--id", reserved, "--dir", str(tmp_path / "etc"),
                     "--state-dir", str(tmp_path / "state")]) == 64  # usage: a bad --id
    assert "reserved" in capsys.readouterr().err
    assert not (tmp_path / "etc").exists()


def test_gateway_run_without_its_sealing_key_says_how_to_make_it(tmp_path, capsys):
    k = tmp_path / "k"
    keys.new_signing_key(k / "log.key", k / "log.pub")
    keys.new_signing_key(k / "issuer.key", k / "issuer.pub")
    conf = tmp_path / "kiosk.toml"
    conf.write_text(f'[paths]\nstate_dir = "{tmp_path}"\n[keys]\nissuer_public = ["k/issuer.pub"]\n'
                    '[gateway]\nlog_key = "k/log.key"\nsealing_key = "k/gateway-sealing.key"\n')
    assert cli.main(["gateway", "run", "--config", str(conf)]) == 77
    assert "kiosk gateway init" in capsys.readouterr().err
