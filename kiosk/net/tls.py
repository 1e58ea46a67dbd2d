"""TLS material for the broker: a clinic CA, the broker's server certificate, and one client
certificate per kiosk (CN = kiosk id) or service (gateway, issuer). Tests and provisioning.

Mosquitto maps the client certificate's CN to the MQTT username (`use_identity_as_username`)
and the username to the client id (`use_username_as_clientid`), so a certificate can only
ever be its own client: a kiosk cannot take the gateway's or another kiosk's client id and
knock it off. The ACL file's `%u` patterns, written for one site, give each kiosk its own
topics only (docs/design-notes.md, "Broker identity"). Revoked certificates are listed in
the CA's CRL, which the broker reads (`crlfile`). Keys are ECDSA P-256 (fast to make,
accepted by every OpenSSL that Mosquitto links against), written as PKCS#8 PEM, mode 0600.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kiosk.config import KIOSK_ID_RE
from kiosk.errors import ConfigError, FormatError
from kiosk.protocol.keys import write_atomic


@dataclass(frozen=True)
class CertPair:
    """A certificate and its private key on disk."""

    cert: Path
    key: Path


def _save(pair: CertPair, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> CertPair:
    write_atomic(pair.key, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    write_atomic(pair.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return pair


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CertificateAuthority:
    """A self-signed CA that issues the broker's and the clients' certificates."""

    def __init__(self, directory: Path | str, name: str = "clinic kiosk CA",
                 days: int = 3650) -> None:
        self.directory = Path(directory)
        self.pair = CertPair(self.directory / "ca.crt", self.directory / "ca.key")
        self.crl_path = self.directory / "ca.crl"
        self.days = days
        if self.pair.cert.exists() and self.pair.key.exists():
            key = serialization.load_pem_private_key(self.pair.key.read_bytes(), None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ConfigError(f"{self.pair.key}: the CA key must be an EC key")
            self._key = key
            self._cert = x509.load_pem_x509_certificate(self.pair.cert.read_bytes())
            if not self.crl_path.exists():
                self.write_crl()
            return
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(self._key, hashes.SHA256()))
        _save(self.pair, self._cert, self._key)
        self.write_crl()

    @property
    def cert_path(self) -> Path:
        return self.pair.cert

    def _revoked(self) -> list[x509.RevokedCertificate]:
        if not self.crl_path.exists():
            return []
        return list(x509.load_pem_x509_crl(self.crl_path.read_bytes()))

    def write_crl(self, revoked: list[x509.RevokedCertificate] | None = None, days: int = 30) -> Path:
        """(Re)sign the CRL (`ca.crl`, PEM) with the revoked certificates kept so far.

        Mosquitto reads it at start (restart the broker after a revocation); `days` is its
        nextUpdate, so sign it again before then (a stale CRL makes OpenSSL refuse everyone).
        """
        now = dt.datetime.now(dt.UTC)
        b = (x509.CertificateRevocationListBuilder().issuer_name(self._cert.subject)
             .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=days)))
        for r in self._revoked() if revoked is None else revoked:
            b = b.add_revoked_certificate(r)
        crl = b.sign(self._key, hashes.SHA256())
        write_atomic(self.crl_path, crl.public_bytes(serialization.Encoding.PEM), 0o644)
        return self.crl_path

    def revoke(self, cert_path: Path | str) -> Path:
        """Add a certificate this CA issued to the CRL (a stolen kiosk); return the CRL path."""
        try:
            cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        except (OSError, ValueError):
            raise FormatError(f"{cert_path}: not a PEM certificate") from None
        if cert.issuer != self._cert.subject:
            raise FormatError(f"{cert_path}: not issued by this CA")
        revoked = self._revoked()
        if all(r.serial_number != cert.serial_number for r in revoked):
            revoked.append(x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
                           .revocation_date(dt.datetime.now(dt.UTC)).build())
        return self.write_crl(revoked)

    def _issue(self, cn: str, out: CertPair, *, server_hosts: list[str] | None) -> CertPair:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self._cert.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(days=min(self.days, 825)))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if server_hosts is not None:
            sans: list[x509.GeneralName] = []
            for h in server_hosts:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(h)))
                except ValueError:
                    sans.append(x509.DNSName(h))
            b = (b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
                 .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                critical=False))
        else:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                                critical=False)
        return _save(out, b.sign(self._key, hashes.SHA256()), key)

    def issue_server(self, hosts: list[str], directory: Path | str | None = None,
                     name: str = "broker") -> CertPair:
        """The broker's certificate, valid for `hosts` (IP addresses or DNS names)."""
        d = Path(directory) if directory else self.directory
        return self._issue(hosts[0], CertPair(d / f"{name}.crt", d / f"{name}.key"),
                           server_hosts=hosts)

    def issue_client(self, identity: str, directory: Path | str | None = None) -> CertPair:
        """A client certificate whose CN is `identity` (a kiosk id, or `gateway-1`, ...)."""
        if not KIOSK_ID_RE.match(identity):
            raise ConfigError("client identity must match [a-z0-9-]{1,32}")
        d = Path(directory) if directory else self.directory
        return self._issue(identity, CertPair(d / f"{identity}.crt", d / f"{identity}.key"),
                           server_hosts=None)


def make_test_pki(directory: Path | str, clients: list[str],
                  hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
                  ) -> tuple[CertificateAuthority, CertPair, dict[str, CertPair]]:
    """A CA, a server certificate for `hosts` and a client certificate per identity."""
    ca = CertificateAuthority(directory)
    server = ca.issue_server(list(hosts))
    return ca, server, {c: ca.issue_client(c) for c in clients}


BROKER_TEMPLATES = Path(__file__).resolve().parents[2] / "firmware_configs" / "mosquitto"


def render_broker_conf(out_dir: Path | str, *, site: str, cafile: Path, certfile: Path, keyfile: Path,
                       crlfile: Path, templates: Path | None = None, port: int | None = None,
                       host: str | None = None, directory: Path | None = None) -> str:
    """Render `kiosk-broker.conf` and `acl` from the templates for one site; write the ACL
    into `out_dir`.

    Returns the configuration text. Placeholders left as None (`{port}`, `{host}`, `{dir}`)
    stay in the text for `MosquittoBroker`, which fills them when it picks a port.
    """
    if not isinstance(site, str) or not KIOSK_ID_RE.match(site):
        raise ConfigError("site id must match [a-z0-9-]{1,32}")
    src = Path(templates) if templates else BROKER_TEMPLATES
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    acl = out / "acl"
    write_atomic(acl, (src / "acl").read_text().replace("{site}", site).encode(), 0o644)
    text = (src / "kiosk-broker.conf").read_text()
    values = {"{cafile}": cafile, "{certfile}": certfile, "{keyfile}": keyfile, "{aclfile}": acl,
              "{crlfile}": crlfile, "{port}": port, "{host}": host, "{dir}": directory}
    for k, v in values.items():
        if v is not None:
            text = text.replace(k, str(v))
    return text


def apply_client_tls(client: Any, ca: Path | None, cert: Path | None, key: Path | None) -> None:
    """Load broker TLS files into a paho client (server verified against `ca`; client
    identity from cert/key). TransportError names the file at fault, so a wrong path in
    kiosk.toml is one clear line at start-up, not a traceback in a network thread."""
    import os

    from kiosk.errors import TransportError

    files = [("tls_ca", ca), ("tls_cert", cert), ("tls_key", key)]
    if cert is not None and (key is None or ca is None):
        raise TransportError("broker: tls_cert needs tls_key and tls_ca")
    for name, path in files:
        if path is not None and not os.access(path, os.R_OK):
            raise TransportError(f"broker {name} {path} is missing or unreadable")
    try:
        client.tls_set(ca_certs=str(ca) if ca else None, certfile=str(cert) if cert else None,
                       keyfile=str(key) if key else None)
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError: a file that is not PEM
        named = ", ".join(f"{name} {path}" for name, path in files if path is not None)
        raise TransportError(f"broker TLS files refused ({named}): {e}") from None


def set_no_delay(client: Any) -> None:
    """Turn Nagle off on a connected paho client's socket (plain or TLS).

    Records, receipts and acknowledgements are small packets, one after another: with Nagle
    each waits for the ACK of the one before, which Linux may delay up to 40 ms, on every
    hop. The broker does the same (`set_tcp_nodelay true`).
    """
    import contextlib
    import socket

    sock = client.socket()
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not a TCP socket (a unix socket)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
