"""The clinic CA (`kiosk ca`) and `kiosk provision`, checked with OpenSSL (an independent
verifier) and against a real Mosquitto with TLS, client certificates and the CA's CRL."""
from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kiosk.cli import main
from kiosk.config import load
from kiosk.errors import CannotCreateError, ConfigError, NoInputError, VerificationError
from kiosk.net.ca import ClinicCA, make_request
from kiosk.protocol import keys

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl binary not installed")


def _openssl_verify(ca: Path, cert: Path, crl: Path | None = None) -> subprocess.CompletedProcess:
    cmd = ["openssl", "verify", "-CAfile", str(ca)]
    if crl is not None:
        cmd += ["-crl_check", "-CRLfile", str(crl)]
    return subprocess.run(cmd + [str(cert)], capture_output=True, text=True)


@pytest.fixture(autouse=True)
def _no_systemd(monkeypatch, tmp_path):
    """`kiosk ca revoke` restarts mosquitto as root on a systemd host: never this machine's."""
    import kiosk.net.ca_cli as ca_cli

    monkeypatch.setattr(ca_cli, "SYSTEMD_RUNNING", tmp_path / "no-systemd-here")


@needs_openssl
def test_ca_issues_every_kind_and_its_crl_revokes_as_openssl_reads_it(tmp_path, capsys):
    d = tmp_path / "ca"
    assert main(["ca", "init", "--dir", str(d)]) == 0
    assert stat.S_IMODE((d / "ca.key").stat().st_mode) == 0o600
    assert main(["ca", "issue", "broker", "gw.clinic.lan", "10.0.0.5", "--dir", str(d)]) == 0
    assert main(["ca", "issue", "gateway", "gateway-1", "--dir", str(d)]) == 0
    assert main(["ca", "issue", "issuer", "issuer", "--dir", str(d)]) == 0
    make_request(tmp_path / "tls.key", tmp_path / "kiosk.csr", "kiosk-4")
    assert main(["ca", "issue", "kiosk", "kiosk-4", "--csr", str(tmp_path / "kiosk.csr"),
                 "--dir", str(d), "--out", str(tmp_path / "kiosk.crt")]) == 0
    issued = d / "issued"
    ca, crl = d / "ca.crt", d / "crl.pem"
    made = [issued / "broker.crt", issued / "gateway-1.crt", issued / "issuer.crt", tmp_path / "kiosk.crt"]
    for cert in made:
        r = _openssl_verify(ca, cert, crl)
        assert r.returncode == 0, r.stdout + r.stderr
    broker = x509.load_pem_x509_certificate((issued / "broker.crt").read_bytes())
    sans = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "gw.clinic.lan" in sans.get_values_for_type(x509.DNSName)

    capsys.readouterr()
    assert main(["ca", "revoke", "kiosk-4", "--dir", str(d)]) == 0
    assert "revoked kiosk kiosk-4" in capsys.readouterr().out
    r = _openssl_verify(ca, tmp_path / "kiosk.crt", crl)
    assert r.returncode != 0 and "revoked" in (r.stdout + r.stderr)
    assert _openssl_verify(ca, issued / "gateway-1.crt", crl).returncode == 0
    assert main(["ca", "list", "--json", "--dir", str(d)]) == 0
    assert '"revoked_at": null' in capsys.readouterr().out  # the others stay valid
    capsys.readouterr()
    # revoking twice is done, not an error; a name the CA never issued is (a typo must not pass)
    assert main(["ca", "revoke", "kiosk-4", "--dir", str(d)]) == 0
    assert "revoked already" in capsys.readouterr().out
    assert main(["ca", "revoke", "kiosk-44", "--dir", str(d)]) == 66
    assert "kiosk-44" in capsys.readouterr().err


def test_ca_refuses_what_would_break_the_acl_or_the_chain(tmp_path):
    ca = ClinicCA.init(tmp_path / "ca")
    with pytest.raises(CannotCreateError, match="exists already"):
        ClinicCA.init(tmp_path / "ca")
    for name in ("gateway-1", "issuer"):
        make_request(tmp_path / "k.key", tmp_path / "k.csr", name)
        with pytest.raises(ConfigError, match="reserved"):
            ca.sign_request("kiosk", name, (tmp_path / "k.csr").read_bytes())
    make_request(tmp_path / "k.key", tmp_path / "k.csr", "kiosk-1")
    with pytest.raises(VerificationError, match="is for 'kiosk-1', not 'kiosk-2'"):
        ca.sign_request("kiosk", "kiosk-2", (tmp_path / "k.csr").read_bytes())
    with pytest.raises(ConfigError, match="gateway-"):
        ca.issue("gateway", "gw1", tmp_path)
    with pytest.raises(NoInputError, match="no clinic CA"):
        ClinicCA(tmp_path / "nowhere")


def test_provision_refuses_a_remote_broker_without_tls(tmp_path, capsys):
    d = tmp_path / "etc"
    base = ["provision", "--site", "clinic", "--id", "kiosk-3", "--dir", str(d),
            "--state-dir", str(tmp_path / "state"), "--user", "no-such-user"]
    # on the command line a usage error (64); in IT's first-boot file a configuration one (78)
    assert main(base + ["--broker", "gw.local:1883"]) == 64
    assert "--ca ca.crt" in capsys.readouterr().err and not d.exists()
    first_boot = tmp_path / "kiosk-provision.toml"
    first_boot.write_text('site = "clinic"\nid = "kiosk-3"\nbroker = "gw.local:1883"\n')
    assert main(["provision", "--from", str(first_boot), *base[5:]]) == 78
    assert "kiosk-provision.toml" in capsys.readouterr().err and not d.exists()
    # a CA file that is not there is a missing input (66); one that is not a certificate, bad data (65)
    assert main(base + ["--broker", "gw.local:8883", "--ca", str(tmp_path / "MISSING.crt")]) == 66
    (tmp_path / "not-a-cert.crt").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert main(base + ["--broker", "gw.local:8883", "--ca", str(tmp_path / "not-a-cert.crt")]) == 65
    assert "not a PEM certificate" in capsys.readouterr().err and not d.exists()
    assert main(base + ["--broker", "gw.local:1883", "--insecure"]) == 0
    cfg = load(d / "kiosk.toml")
    assert (cfg.kiosk.id, cfg.broker.host, cfg.broker.tls_ca) == ("kiosk-3", "gw.local", None)
    assert cfg.keys.log_name == "clinic.clinic/log"  # what the gateway of site "clinic" derives too
    assert stat.S_IMODE((d / "keys" / "kiosk.key").stat().st_mode) == 0o600
    assert main(base + ["--broker", "gw.local:1883", "--insecure"]) == 73  # never overwrites
    assert main(["provision", "--site", "clinic", "--id", "gateway-2", "--dir", str(tmp_path / "x")]) == 64


@needs_openssl
def test_provision_with_the_ca_makes_a_request_the_ca_certifies_and_doctor_accepts(tmp_path, capsys):
    ca = ClinicCA.init(tmp_path / "ca")
    d = tmp_path / "etc"
    assert main(["provision", "--site", "north", "--id", "kiosk-5", "--broker", "gw.clinic.lan:8883",
                 "--ca", str(ca.dir / "ca.crt"), "--dir", str(d), "--state-dir", str(tmp_path / "state"),
                 "--user", "no-such-user"]) == 0
    out = capsys.readouterr().out
    assert "kiosk ca issue kiosk kiosk-5 --csr" in out
    k = d / "keys"
    assert stat.S_IMODE((k / "tls.key").stat().st_mode) == 0o600
    cfg = load(d / "kiosk.toml")
    assert (cfg.broker.tls_ca, cfg.broker.tls_cert, cfg.broker.tls_key) == (k / "ca.crt", k / "kiosk.crt",
                                                                          k / "tls.key")
    assert cfg.keys.log_name == "north.clinic/log" and cfg.nfc.port == "/dev/pn532"
    r = subprocess.run(["openssl", "req", "-in", str(k / "kiosk.csr"), "-noout", "-verify", "-subject"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "CN = kiosk-5" in r.stdout + r.stderr
    assert main(["ca", "issue", "kiosk", "kiosk-5", "--csr", str(k / "kiosk.csr"), "--dir", str(ca.dir),
                 "--out", str(k / "kiosk.crt")]) == 0
    from kiosk.doctor.core import load_context, run_checks
    ctx = load_context(d / "kiosk.toml", skip=frozenset({"camera", "nfc"}))
    res = {c.name: r for c, r in run_checks(ctx)}
    assert res["tls"].status.value == "ok" and "CN kiosk-5" in res["tls"].summary


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to the service user needs root")
def test_provision_as_root_hands_the_keys_to_the_service_user(tmp_path):
    # `nobody` plays the service user: the keys must be its own, not root's
    ca = ClinicCA.init(tmp_path / "ca")
    d = tmp_path / "etc"
    assert main(["provision", "--site", "clinic", "--id", "kiosk-6", "--broker", "127.0.0.1:8883",
                 "--ca", str(ca.dir / "ca.crt"), "--dir", str(d), "--state-dir", str(tmp_path / "state"),
                 "--user", "nobody"]) == 0
    nobody = pwd.getpwnam("nobody")
    k = d / "keys"
    for private in ("kiosk.key", "tls.key"):
        st = (k / private).stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (nobody.pw_uid, 0o600)
    for public in ("kiosk.pub", "ca.crt", "kiosk.csr"):
        assert (k / public).stat().st_uid == 0
    conf = (d / "kiosk.toml").stat()
    assert (conf.st_uid, conf.st_gid, stat.S_IMODE(conf.st_mode)) == (0, nobody.pw_gid, 0o640)
    assert stat.S_IMODE(k.stat().st_mode) == 0o750 and k.stat().st_gid == nobody.pw_gid
    assert (tmp_path / "state").stat().st_uid == nobody.pw_uid


def test_provision_from_a_first_boot_file_installs_every_file(tmp_path, capsys):
    ca = ClinicCA.init(tmp_path / "ca")
    crt, key = tmp_path / "kiosk-8.crt", tmp_path / "kiosk-8.key"
    make_request(key, tmp_path / "kiosk-8.csr", "kiosk-8")
    cert = ca.sign_request("kiosk", "kiosk-8", (tmp_path / "kiosk-8.csr").read_bytes())
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keys.new_sealing_key(tmp_path / "sealing.key")
    keys.new_signing_key(tmp_path / "issuer.key", tmp_path / "issuer.pub")
    keys.new_signing_key(tmp_path / "log.key", tmp_path / "log.pub")
    keys.new_sealing_key(tmp_path / "gw-sealing.key", tmp_path / "gw-sealing.pub")

    def pem(p: Path) -> str:
        return '"""\n' + p.read_text() + '"""'
    f = tmp_path / "kiosk-provision.toml"
    f.write_text(f'site = "clinic"\nid = "kiosk-8"\nbroker = "gw.clinic.lan:8883"\n'
                 f"ca = {pem(ca.dir / 'ca.crt')}\ntls_cert = {pem(crt)}\ntls_key = {pem(key)}\n"
                 f"sealing_key = {pem(tmp_path / 'sealing.key')}\n"
                 f"issuer_pub = {pem(tmp_path / 'issuer.pub')}\n"
                 f"log_pub = {pem(tmp_path / 'log.pub')}\n"
                 f"gateway_sealing_pub = {pem(tmp_path / 'gw-sealing.pub')}\n")
    d = tmp_path / "etc"
    assert main(["provision", "--from", str(f), "--dir", str(d), "--state-dir", str(tmp_path / "state"),
                 "--user", "no-such-user"]) == 0
    assert "copy in" not in capsys.readouterr().out  # nothing left to copy by hand
    from kiosk.doctor.core import load_context, run_checks
    res = {c.name: r for c, r in run_checks(load_context(d / "kiosk.toml",
                                                         skip=frozenset({"camera", "nfc", "broker"})))}
    assert res["keys"].status.value == "ok", res["keys"]
    assert keys.load_sealing_key(d / "keys" / "sealing.key")
    bad = tmp_path / "bad.toml"
    bad.write_text('site = "clinic"\nid = "kiosk-9"\nbroker = "x:1"\nsealing_key = "not pem"\n')
    assert main(["provision", "--from", str(bad), "--dir", str(tmp_path / "e2")]) == 78
    assert "must be PEM" in capsys.readouterr().err


def _mqtt_connects(port: int, ca: Path, cert: Path, key: Path, client_id: str) -> bool:
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    ok, done = [], threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key))
    c.on_connect = lambda _c, _u, _f, rc, _p: (ok.append(not rc.is_failure), done.set())
    c.on_disconnect = lambda *_a: done.set()
    try:
        c.connect("127.0.0.1", port, keepalive=10)
    except OSError:
        return False
    c.loop_start()
    done.wait(10)
    c.loop_stop()
    c.disconnect()
    return ok == [True]


@pytest.mark.mosquitto
def test_mosquitto_takes_the_ca_certificates_and_refuses_a_revoked_kiosk(tmp_path):
    from kiosk.net.broker import MosquittoBroker
    from kiosk.net.tls import render_broker_conf

    ca = ClinicCA.init(tmp_path / "ca")
    crt, key = ca.issue("broker", "localhost", tmp_path / "broker", hosts=["localhost", "127.0.0.1"])
    conf = render_broker_conf(tmp_path / "conf", site="clinic", cafile=ca.dir / "ca.crt", certfile=crt, keyfile=key,
                              crlfile=ca.dir / "crl.pem")
    make_request(tmp_path / "k.key", tmp_path / "k.csr", "kiosk-1")
    (tmp_path / "k.crt").write_bytes(ca.sign_request("kiosk", "kiosk-1", (tmp_path / "k.csr").read_bytes())
                                     .public_bytes(serialization.Encoding.PEM))
    with MosquittoBroker(conf, directory=tmp_path / "broker-state") as broker:
        files = (ca.dir / "ca.crt", tmp_path / "k.crt", tmp_path / "k.key")
        assert _mqtt_connects(broker.port, *files, "kiosk-1")
        ca.revoke("kiosk-1")
        broker.restart()  # Mosquitto reads the CRL at start (and on SIGHUP)
        assert not _mqtt_connects(broker.port, *files, "kiosk-1")


def test_ca_revoke_restarts_the_broker_where_it_can(tmp_path, monkeypatch, capsys):
    """A reload keeps the revoked certificate's open connection (tests/net/test_broker_crl_reload.py):
    as root on a systemd host, `kiosk ca revoke` restarts mosquitto; a failed restart is 69 and
    says what to do; --no-broker-restart, or no systemd, prints the step instead."""
    import kiosk.net.ca_cli as ca_cli

    ClinicCA.init(tmp_path / "ca")
    ca = ClinicCA(tmp_path / "ca")
    for n in ("kiosk-1", "kiosk-2", "kiosk-3"):
        make_request(tmp_path / f"{n}.key", tmp_path / f"{n}.csr", n)
        ca.sign_request("kiosk", n, (tmp_path / f"{n}.csr").read_bytes())
    calls = tmp_path / "calls"
    fake = tmp_path / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n[ "$FAIL_RESTART" = 1 ] && {{ echo boom >&2; exit 1; }}\n'
                    'exit 0\n')
    fake.chmod(0o755)
    (tmp_path / "run-systemd").mkdir()
    monkeypatch.setattr(ca_cli, "SYSTEMCTL", str(fake))
    monkeypatch.setattr(ca_cli, "SYSTEMD_RUNNING", tmp_path / "run-systemd")
    monkeypatch.setattr(ca_cli.os, "geteuid", lambda: 0)
    base = ["ca", "revoke", "--dir", str(tmp_path / "ca")]

    assert main([*base, "kiosk-1"]) == 0
    assert calls.read_text() == "try-restart mosquitto.service\n"
    assert "mosquitto restarted" in capsys.readouterr().out
    assert main([*base, "kiosk-2", "--no-broker-restart"]) == 0
    assert calls.read_text().count("\n") == 1 and "systemctl restart mosquitto" in capsys.readouterr().out
    monkeypatch.setenv("FAIL_RESTART", "1")
    assert main([*base, "kiosk-3"]) == 69
    err = capsys.readouterr().err
    assert "boom" in err and "systemctl restart mosquitto" in err
    assert [e.cn for e in ca.entries() if e.revoked_at] == ["kiosk-1", "kiosk-2", "kiosk-3"]  # revoked all the same
