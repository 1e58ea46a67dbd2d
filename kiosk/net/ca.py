"""The clinic's small certificate authority (`kiosk ca`): the TLS identities of the broker,
the gateways, the enrolment desk (issuer) and every kiosk, and the CRL Mosquitto checks.

It lives on the gateway host, in one folder (default /etc/kiosk/ca, 0700):

    ca.key ca.crt   the CA (ECDSA P-256; the key never leaves this folder)
    index.json      every certificate issued: serial, CN, kind, expiry, revocation time
    crl.pem         the signed revocation list, for Mosquitto's `crlfile`
    issued/         certificates issued (and the keys of those made here)

A kiosk makes its own TLS key and sends a certificate request (`kiosk provision`); its
private key never travels. Service identities (broker, gateway, issuer, auditor) get their key made
here. The CN is the MQTT username (`use_identity_as_username`), so the ACL gives each
client exactly its topics: a kiosk certificate is never named like a service.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kiosk.errors import (
    CannotCreateError,
    ConfigError,
    FormatError,
    NoInputError,
    PermissionDeniedError,
    VerificationError,
)
from kiosk.ids import check_id, reserved_id
from kiosk.protocol.keys import make_dir, write_atomic

DEFAULT_DIR = Path("/etc/kiosk/ca")
CA_DAYS = 3650
LEAF_DAYS = 825  # what browsers and OpenSSL defaults accept for a leaf
CRL_DAYS = 365  # Mosquitto refuses every client once the CRL is past next_update: re-sign yearly
KINDS = ("kiosk", "gateway", "issuer", "auditor", "broker")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def check_identity(kind: str, cn: str) -> str:
    """The CN rules by kind: kiosks never take a service's name (the ACL grants by name)."""
    if kind not in KINDS:
        raise ConfigError(f"certificate kind must be one of {', '.join(KINDS)}")
    if kind == "broker":
        return cn
    check_id(cn, f"{kind} name")
    if kind == "kiosk" and reserved_id(cn):
        raise ConfigError(f"kiosk id {cn!r} is reserved for a service (gateway-*, issuer)")
    if kind == "gateway" and not cn.startswith("gateway-"):
        raise ConfigError("a gateway's name must start with 'gateway-' (e.g. gateway-1), as the ACL says")
    if kind == "issuer" and cn != "issuer":
        raise ConfigError("the enrolment desk's certificate is named 'issuer', as the ACL says")
    if kind == "auditor" and cn != "auditor":
        raise ConfigError("the audit certificate (kiosk ledger verify --witnesses broker) is named 'auditor', "
                          "as the ACL says")
    return cn


def kind_for(cn: str) -> str:
    """The kind of client certificate a name gets by the ACL's rules (gateway-*, issuer, auditor,
    else a kiosk)."""
    if cn.startswith("gateway-"):
        return "gateway"
    return cn if cn in ("issuer", "auditor") else "kiosk"


def make_request(key_path: Path, csr_path: Path, cn: str) -> x509.CertificateSigningRequest:
    """A new P-256 TLS key (0600) and a certificate request for `cn` (`kiosk provision`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name(cn)).sign(key, hashes.SHA256())
    write_atomic(key_path, _pem_key(key), 0o600)
    write_atomic(csr_path, csr.public_bytes(serialization.Encoding.PEM), 0o644)
    return csr


@dataclass
class Issued:
    serial: str
    cn: str
    kind: str
    not_after: str
    revoked_at: str | None = None


class ClinicCA:
    """An initialised CA folder. `ClinicCA.init(dir)` makes one; `ClinicCA(dir)` opens it."""

    def __init__(self, directory: Path | str = DEFAULT_DIR) -> None:
        self.dir = Path(directory)
        try:
            self.cert = x509.load_pem_x509_certificate((self.dir / "ca.crt").read_bytes())
            key = serialization.load_pem_private_key((self.dir / "ca.key").read_bytes(), None)
        except FileNotFoundError:
            raise NoInputError(f"{self.dir}: no clinic CA here; make one with `kiosk ca init --dir {self.dir}`"
                               ) from None
        except PermissionError:
            raise PermissionDeniedError(f"{self.dir}: the CA key is readable by root only: use sudo") from None
        except ValueError as e:
            raise FormatError(f"{self.dir}: ca.crt/ca.key are not PEM ({e})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise FormatError(f"{self.dir}/ca.key: not an EC key")
        self._key = key

    # ------------------------------------------------------------------ set-up
    @classmethod
    def init(cls, directory: Path | str = DEFAULT_DIR, name: str = "clinic kiosk CA",
             days: int = CA_DAYS) -> ClinicCA:
        d = Path(directory)
        if (d / "ca.key").exists():
            raise CannotCreateError(f"{d}: a CA exists already; refusing to replace it (every "
                                    f"certificate it issued would stop working)")
        make_dir(d, 0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        now = _utcnow()
        cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                               critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        write_atomic(d / "ca.key", _pem_key(key), 0o600)
        write_atomic(d / "ca.crt", cert.public_bytes(serialization.Encoding.PEM), 0o644)
        ca = cls(d)
        ca._save_index([])
        ca.write_crl()
        return ca

    @property
    def cert_path(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def crl_path(self) -> Path:
        return self.dir / "crl.pem"

    # ------------------------------------------------------------------ the index
    @property
    def index_path(self) -> Path:
        return self.dir / "index.json"

    def entries(self) -> list[Issued]:
        try:
            return [Issued(**e) for e in json.loads(self.index_path.read_text())]
        except FileNotFoundError:
            return []

    def _save_index(self, entries: list[Issued]) -> None:
        write_atomic(self.index_path, json.dumps([asdict(e) for e in entries], indent=1).encode(), 0o600)

    # ------------------------------------------------------------------ issuing
    def _sign(self, kind: str, cn: str, public_key: CertificatePublicKeyTypes, hosts: list[str] | None = None,
              days: int = LEAF_DAYS) -> x509.Certificate:
        now = _utcnow()
        days = min(days, LEAF_DAYS, (self.cert.not_valid_after_utc - now).days)
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
             .public_key(public_key).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(days=days))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(True, False, True, False, True, False, False, False, False),
                            critical=True)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                            critical=False))
        if kind == "broker":
            sans: list[x509.GeneralName] = []
            for h in hosts or [cn]:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(h)))
                except ValueError:
                    sans.append(x509.DNSName(h))
            b = (b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
                 .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        else:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        cert = b.sign(self._key, hashes.SHA256())
        entries = self.entries()
        entries.append(Issued(f"{cert.serial_number:x}", cn, kind, cert.not_valid_after_utc.isoformat()))
        self._save_index(entries)
        return cert

    def sign_request(self, kind: str, cn: str, csr_pem: bytes, days: int = LEAF_DAYS) -> x509.Certificate:
        """Certify a request made elsewhere (a kiosk's): its CN must be `cn`, its signature good."""
        check_identity(kind, cn)
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as e:
            raise FormatError(f"certificate request is not PEM ({e})") from None
        if not csr.is_signature_valid:
            raise VerificationError("certificate request: its signature does not verify")
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        got = str(names[0].value) if names else ""
        if got != cn:
            raise VerificationError(f"certificate request is for {got!r}, not {cn!r}")
        if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey):
            raise FormatError("certificate request: the key must be ECDSA P-256")
        return self._sign(kind, cn, csr.public_key(), days=days)

    def issue(self, kind: str, cn: str, out_dir: Path, hosts: list[str] | None = None,
              days: int = LEAF_DAYS) -> tuple[Path, Path]:
        """Make a key here and certify it (broker, gateway, issuer): (cert path, key path)."""
        check_identity(kind, cn)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(kind, cn, key.public_key(), hosts, days)
        stem = "broker" if kind == "broker" else cn
        crt, kp = out_dir / f"{stem}.crt", out_dir / f"{stem}.key"
        write_atomic(kp, _pem_key(key), 0o600)
        write_atomic(crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return crt, kp

    # ------------------------------------------------------------------ revocation
    def revoke(self, what: str) -> list[Issued]:
        """Revoke every unrevoked certificate whose CN or serial (hex) is `what`; re-sign the CRL.
        Returns what was revoked now: empty when all of them were revoked before (revoking twice
        is done, not an error; the CRL is re-signed all the same). A `what` the CA never issued
        is NoInputError (66): a typo must not look like a revocation."""
        entries = self.entries()
        now = _utcnow().isoformat()
        named = [e for e in entries if what in (e.cn, e.serial)]
        if not named:
            raise NoInputError(f"no certificate named or numbered {what!r} was issued by this CA (kiosk ca list)")
        hit = [e for e in named if e.revoked_at is None]
        for e in hit:
            e.revoked_at = now
        self._save_index(entries)
        self.write_crl()
        return hit

    def write_crl(self) -> Path:
        """Sign the CRL of every revoked certificate, valid for CRL_DAYS, into crl.pem."""
        now = _utcnow()
        b = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
             .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=CRL_DAYS)))
        for e in self.entries():
            if e.revoked_at is not None:
                b = b.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(int(e.serial, 16))
                    .revocation_date(dt.datetime.fromisoformat(e.revoked_at)).build())
        crl = b.sign(self._key, hashes.SHA256())
        path = self.crl_path
        write_atomic(path, crl.public_bytes(serialization.Encoding.PEM), 0o644)
        return path
