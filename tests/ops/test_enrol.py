"""First boot with an enrolment token: `kiosk ca token` on the gateway host, `kiosk ca serve`
(real HTTPS, the clinic CA's broker certificate) and `kiosk provision --from` a file that holds
no private key. The kiosk comes out with a certificate that chains to the CA, its key in the
gateway's registry, and the public files; a token works once, for its kiosk, before it expires,
and the kiosk trusts only a server the clinic CA certified."""
from __future__ import annotations

import getpass
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.cli import main
from kiosk.config import from_dict, load, to_toml
from kiosk.errors import PermissionDeniedError
from kiosk.gateway.registry import open_registry
from kiosk.net.broker import free_port
from kiosk.net.ca import ClinicCA
from kiosk.net.enrol import TokenStore
from kiosk.protocol import keys

REPO = Path(__file__).resolve().parents[2]
SITE = "clinic"


@pytest.fixture
def gateway_host(tmp_path):
    """A CA, a gateway config with its keys and registry, and `kiosk ca serve` on a free port."""
    ca = ClinicCA.init(tmp_path / "ca")
    srv = tmp_path / "srv"
    crt, key = ca.issue("broker", "localhost", srv, hosts=["localhost", "127.0.0.1"])
    gw = tmp_path / "gw"
    keys.new_signing_key(gw / "log.key", gw / "log.pub")
    keys.new_sealing_key(gw / "gateway-sealing.key", gw / "gateway-sealing.pub")
    keys.new_signing_key(gw / "issuer.key", gw / "issuer.pub")
    keys.new_sealing_key(tmp_path / "desk-sealing.key")  # the desk's for-kiosks/sealing.key
    cfg = from_dict({"kiosk": {"site": SITE}, "paths": {"state_dir": str(tmp_path / "gwstate")},
                     "keys": {"issuer_public": [str(gw / "issuer.pub")], "log_public": str(gw / "log.pub")},
                     "gateway": {"log_key": str(gw / "log.key"), "sealing_key": str(gw / "gateway-sealing.key")}},
                    source="test")
    conf = tmp_path / "gateway.toml"
    conf.write_text(to_toml(cfg))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "ca", "serve", "--dir", str(ca.dir),
                             "--listen", f"127.0.0.1:{port}", "--config", str(conf), "--cert", str(crt),
                             "--key", str(key), "--sealing-key", str(tmp_path / "desk-sealing.key"),
                             # registered by a child as the gateway's user, as on the host (here: us)
                             "--gateway-user", getpass.getuser()],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-2000:]
            time.sleep(0.2)
    yield {"ca": ca, "conf": conf, "url": f"https://localhost:{port}", "dir": tmp_path, "gw": gw}
    proc.terminate()
    out = proc.communicate(timeout=30)[0].decode()
    assert "Traceback" not in out, out[-3000:]


def _token(capsys, ca: ClinicCA, kiosk_id: str, *extra: str) -> str:
    capsys.readouterr()
    assert main(["ca", "token", kiosk_id, "--dir", str(ca.dir), *extra]) == 0
    return capsys.readouterr().out.strip()


def _file(path: Path, kiosk_id: str, url: str, token: str, ca_pem: str) -> Path:
    path.write_text(f'site = "{SITE}"\nid = "{kiosk_id}"\nbroker = "gw.clinic.lan:8883"\n'
                    f'enrol = "{url}"\ntoken = "{token}"\nca = """\n{ca_pem}"""\n')
    return path


def _provision(f: Path, out: Path) -> int:
    return main(["provision", "--from", str(f), "--dir", str(out / "etc"), "--state-dir", str(out / "state"),
                 "--user", "no-such-user"])


def test_a_token_enrols_its_kiosk_once_and_the_kiosk_comes_up_complete(gateway_host, tmp_path, capsys):
    ca, url = gateway_host["ca"], gateway_host["url"]
    token = _token(capsys, ca, "kiosk-7")
    f = _file(tmp_path / "kiosk-provision.toml", "kiosk-7", url, token, ca.cert_path.read_text())
    assert "PRIVATE KEY" not in f.read_text()
    assert _provision(f, tmp_path / "k") == 0, capsys.readouterr().err
    assert "enrolled at" in capsys.readouterr().out

    kdir = tmp_path / "k" / "etc" / "keys"
    cfg = load(tmp_path / "k" / "etc" / "kiosk.toml")
    assert (cfg.kiosk.id, cfg.broker.host, cfg.broker.tls_cert) == ("kiosk-7", "gw.clinic.lan", kdir / "kiosk.crt")
    # the certificate: kiosk-7, signed by the clinic CA, for the TLS key made on the kiosk
    cert = x509.load_pem_x509_certificate((kdir / "kiosk.crt").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kiosk-7"
    ca.cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    tls_key = keys._load_private(kdir / "tls.key")
    assert cert.public_key().public_numbers() == tls_key.public_key().public_numbers()
    # the kiosk key in the gateway's registry, and the public files as the gateway host has them
    gw_cfg = load(gateway_host["conf"])
    with open_registry(gw_cfg) as reg:
        rec = reg.get("kiosk-7")
    assert rec is not None and rec.status == "active"
    assert rec.public_key == bytes(keys.load_verify_key(kdir / "kiosk.pub"))
    for name, src in (("log.pub", "log.pub"), ("gateway-sealing.pub", "gateway-sealing.pub"),
                      ("issuer.pub", "issuer.pub")):
        assert (kdir / name).read_text() == (gateway_host["gw"] / src).read_text()
    assert (kdir / "sealing.key").read_text() == (gateway_host["dir"] / "desk-sealing.key").read_text()
    assert keys.load_sealing_key(cfg.keys.sealing_key)  # 0600, loads
    # the CA keeps only the token's hash, and it is spent
    stored = (ca.dir / "tokens.json").read_text()
    assert token not in stored and json.loads(stored)[0]["used_at"] is not None

    # the same file again (a copied SD card): refused, nothing registered twice
    assert _provision(f, tmp_path / "again") == 77
    assert "used already" in capsys.readouterr().err


def test_a_token_is_for_its_kiosk_and_a_server_the_ca_did_not_certify_is_not_trusted(gateway_host, tmp_path,
                                                                                       capsys):
    ca, url = gateway_host["ca"], gateway_host["url"]
    token = _token(capsys, ca, "kiosk-8")
    pem = ca.cert_path.read_text()
    assert _provision(_file(tmp_path / "a.toml", "kiosk-9", url, token, pem), tmp_path / "a") == 77
    assert "another kiosk" in capsys.readouterr().err
    assert _provision(_file(tmp_path / "b.toml", "kiosk-8", url, "x" * 43, pem), tmp_path / "b") == 77
    assert "unknown enrolment token" in capsys.readouterr().err
    # the kiosk checks the server against the CA in its file: another CA's file does not enrol
    other = ClinicCA.init(tmp_path / "other-ca").cert_path.read_text()
    assert _provision(_file(tmp_path / "c.toml", "kiosk-8", url, token, other), tmp_path / "c") == 69
    assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
    assert not (tmp_path / "c" / "etc" / "kiosk.toml").exists()
    # a failed attempt leaves no config, so a retry (the server up now, the right CA) enrols
    assert _provision(_file(tmp_path / "c.toml", "kiosk-8", url, token, pem), tmp_path / "c") == 0
    # the token never goes in the clear
    f = _file(tmp_path / "d.toml", "kiosk-8", url.replace("https", "http"), token, pem)
    assert _provision(f, tmp_path / "d") == 78
    assert "https://" in capsys.readouterr().err


def test_tokens_expire_and_a_new_one_replaces_the_old(tmp_path):
    ca = ClinicCA.init(tmp_path / "ca")
    store = TokenStore(ca.dir)
    t1 = store.issue("kiosk-1", hours=1, now=1000)
    assert store.check(t1, "kiosk-1", now=1000 + 3599).kiosk_id == "kiosk-1"
    with pytest.raises(PermissionDeniedError, match="expired"):
        store.check(t1, "kiosk-1", now=1000 + 3601)
    t2 = store.issue("kiosk-1", hours=1, now=2000)
    with pytest.raises(PermissionDeniedError, match="unknown"):
        store.check(t1, "kiosk-1", now=2000)
    store.check(t2, "kiosk-1", now=2000)
    with pytest.raises(Exception, match="reserved"):
        store.issue("gateway-1")


def test_the_provisioning_file_says_what_a_token_needs(tmp_path, capsys):
    base = f'site = "{SITE}"\nid = "kiosk-1"\nbroker = "gw:8883"\n'
    for extra, why in (('token = "t"\n', "go together"),
                       ('token = "t"\nenrol = "https://gw:8443"\n', "needs 'ca'"),
                       ('token = "t"\nenrol = "https://gw:8443"\nca = """\n-----BEGIN CERTIFICATE-----\n"""\n'
                        'kiosk_key = """\n-----BEGIN PRIVATE KEY-----\n"""\n', "one or the other")):
        f = tmp_path / "p.toml"
        f.write_text(base + extra)
        assert _provision(f, tmp_path / "k") == 78
        assert why in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_a_client_that_connects_and_stalls_does_not_hold_the_server(gateway_host, tmp_path, capsys):
    """One request at a time (tokens are spent in turn), so a stalled connection must time out
    (its TLS handshake included) rather than block every kiosk behind it."""
    import threading

    from kiosk.net.enrol import Enroller, make_server

    ca = gateway_host["ca"]
    srv = gateway_host["dir"] / "srv"
    server = make_server(Enroller(ca.dir, gateway_host["conf"]), "127.0.0.1", 0, srv / "broker.crt",
                         srv / "broker.key", timeout_s=2)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stalled = socket.create_connection(("127.0.0.1", port))  # no ClientHello, ever
    try:
        token = _token(capsys, ca, "kiosk-5")
        f = _file(tmp_path / "p.toml", "kiosk-5", f"https://localhost:{port}", token, ca.cert_path.read_text())
        # held behind the stalled client, the kiosk would time out (30 s) and exit 69
        assert _provision(f, tmp_path / "k") == 0, capsys.readouterr().err
    finally:
        stalled.close()  # first: a server stuck on it could not shut down
        server.shutdown()
        server.server_close()
