"""Trust lists for foreign credentials: one folder that IT updates offline.

    TRUST_DIR/
      dcc/   EU DCC document signer certificates (DSC), PEM or DER, any number per file
             (*.pem, *.crt, *.cer, *.der); a DSC's kid is SHA-256(DER)[:8] (eHealth
             Network, "Technical Specifications for Digital Green Certificates", vol. 1 §3.3.1);
             or trust lists as the DCC gateway serves them (*.json: a list, or {"certificates":
             [...]}, of {"kid": base64, "rawData": base64 DER, ...}), which name each kid.
             A kid is 8 bytes and not unique: several DSCs may carry one, and a DCC is
             tried against each of them (dcc.verify_signature)
      shc/   SMART Health Card issuers as VCI directory snapshots (*.json):
             {"issuerInfo": [{"issuer": {"iss": URL, "name": ...}, "keys": [JWK, ...],
                              "crls": [{"kid", "method": "rid", "ctr", "rids": [...]}]}]}

Nothing is fetched at check-in time: a kiosk judges with what the folder held when it was
loaded. A file that does not parse is a ConfigError naming the file (never skipped
silently: a missing issuer would look like a forgery to the patient).
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kiosk.errors import ConfigError, FormatError
from kiosk.protocol.credentials.base import strict_json

CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")
MAX_FILE = 8 * 1024 * 1024


def dsc_kid(der: bytes) -> bytes:
    """The DCC key identifier of a document signer certificate."""
    return hashlib.sha256(der).digest()[:8]


@dataclass(frozen=True)
class Signer:
    """A DCC document signer: its certificate and public key (EC P-256 or RSA)."""

    kid: bytes
    certificate: x509.Certificate
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class ShcCrl:
    """A SMART Health Cards revocation list for one key (method "rid")."""

    kid: str
    ctr: int
    rids: dict[str, float | None]  # rid -> revoke cards with nbf before this time (None: all)


@dataclass
class ShcIssuer:
    """A trusted SMART Health Cards issuer: its `iss`, keys by kid, CRLs by kid. A kid may
    have several JWK entries: the spec gives an issuer one entry per X.509 certificate of a
    key, identical but for `x5c`."""

    iss: str
    name: str = ""
    keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    crls: dict[str, ShcCrl] = field(default_factory=dict)


@dataclass
class TrustStore:
    """What this kiosk trusts: DCC signers by kid (every certificate carrying that kid), SHC
    issuers by `iss`."""

    dcc: dict[bytes, list[Signer]] = field(default_factory=dict)
    shc: dict[str, ShcIssuer] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def load(cls, folder: str | Path) -> TrustStore:
        """Read TRUST_DIR (see the module doc); ConfigError names any file that is wrong."""
        root = Path(folder)
        if not root.is_dir():
            raise ConfigError(f"{root}: credential trust folder not found")
        store = cls(source=str(root))
        dcc_dir, shc_dir = root / "dcc", root / "shc"
        if dcc_dir.is_dir():
            for path in sorted(dcc_dir.iterdir()):
                if path.suffix.lower() in CERT_SUFFIXES and path.is_file():
                    for cert in _read_certificates(path):
                        store.add_dcc_certificate(cert, where=str(path))
                elif path.suffix.lower() == ".json" and path.is_file():
                    for kid, der in _read_dcc_trust_list(path):
                        store.add_dcc_certificate(der, where=str(path), kid=kid)
        if shc_dir.is_dir():
            for path in sorted(shc_dir.iterdir()):
                if path.suffix.lower() == ".json" and path.is_file():
                    store.add_shc_snapshot(_read(path), where=str(path))
        return store

    def add_dcc_certificate(self, cert: x509.Certificate | bytes, where: str = "certificate",
                            kid: bytes | None = None) -> bytes:
        """Trust one DSC (a Certificate or its DER) under `kid` (default: the one computed from
        the certificate); returns the kid. A second certificate under a kid is kept beside
        the first, never in its place."""
        if isinstance(cert, bytes):
            try:
                cert = x509.load_der_x509_certificate(cert)
            except ValueError:
                raise ConfigError(f"{where}: not a DER X.509 certificate") from None
        from cryptography.hazmat.primitives.serialization import Encoding

        key = cert.public_key()
        if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
            raise ConfigError(f"{where}: DSC key is neither EC nor RSA")
        if kid is None:
            kid = dsc_kid(cert.public_bytes(Encoding.DER))
        same_kid = self.dcc.setdefault(kid, [])
        if all(s.certificate != cert for s in same_kid):
            same_kid.append(Signer(kid, cert, key))
        return kid

    def add_shc_snapshot(self, raw: bytes, where: str = "snapshot") -> None:
        """Trust the issuers of one VCI directory snapshot (JSON bytes)."""
        try:
            snap = strict_json(raw, where)
            infos = snap["issuerInfo"]
            if not isinstance(infos, list):
                raise TypeError
            for info in infos:
                iss = info["issuer"]["iss"]
                if not isinstance(iss, str) or not iss.startswith("https://"):
                    raise ConfigError(f"{where}: issuer `iss` must be an https URL")
                issuer = self.shc.setdefault(iss, ShcIssuer(iss, str(info["issuer"].get("name", ""))))
                for jwk in info.get("keys", []):
                    if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                        raise ConfigError(f"{where}: a key of {iss} has no kid")
                    issuer.keys.setdefault(jwk["kid"], []).append(jwk)
                for crl in info.get("crls", []) or []:
                    c = _crl(crl, where)
                    issuer.crls[c.kid] = c
        except FormatError as e:
            raise ConfigError(f"{where}: {e.message}") from None
        except (KeyError, TypeError, AttributeError):
            raise ConfigError(f"{where}: not a VCI directory snapshot "
                              "(issuerInfo[].issuer.iss, keys)") from None


def shc_snapshot(iss: str, jwks: dict[str, Any], crls: list[dict[str, Any]] | None = None,
                 name: str = "") -> dict[str, Any]:
    """One issuer as a VCI directory snapshot (what `TrustStore` reads from shc/*.json)."""
    return {"issuerInfo": [{"issuer": {"iss": iss, "name": name}, "keys": list(jwks.get("keys", [])),
                            "crls": list(crls or [])}]}


def _crl(raw: Any, where: str) -> ShcCrl:
    if not isinstance(raw, dict) or raw.get("method") != "rid" or not isinstance(raw.get("kid"), str) \
            or not isinstance(raw.get("ctr"), int) or not isinstance(raw.get("rids"), list):
        raise ConfigError(f"{where}: a CRL is not {{kid, method: \"rid\", ctr, rids}}")
    rids: dict[str, float | None] = {}
    for entry in raw["rids"]:
        if not isinstance(entry, str) or not entry:
            raise ConfigError(f"{where}: a CRL rid is not a string")
        rid, _, when = entry.partition(".")
        try:
            rids[rid] = float(when) if when else None
        except ValueError:
            raise ConfigError(f"{where}: CRL entry with a bad timestamp suffix") from None
    return ShcCrl(raw["kid"], raw["ctr"], rids)


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_FILE:
            raise ConfigError(f"{path}: larger than a trust list file can be")
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None


def _read_dcc_trust_list(path: Path) -> list[tuple[bytes, bytes]]:
    """(kid, DER) of each entry of a DCC gateway trust list file."""
    try:
        data = strict_json(_read(path), str(path))
        items = data.get("certificates") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise TypeError
        out = []
        for item in items:
            kid = base64.b64decode(item["kid"], validate=True)
            der = base64.b64decode(item["rawData"], validate=True)
            if not kid or not der:
                raise ValueError
            out.append((kid, der))
        return out
    except FormatError as e:
        raise ConfigError(f"{path}: {e.message}") from None
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ConfigError(f"{path}: not a DCC trust list (a list of {{\"kid\", \"rawData\"}}, base64)") from None


def _read_certificates(path: Path) -> list[x509.Certificate]:
    data = _read(path)
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificates(data)
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:  # a bare base64 DER, as trust list JSON and test corpora carry it
            return [x509.load_der_x509_certificate(base64.b64decode(data, validate=False))]
    except ValueError:
        raise ConfigError(f"{path}: not an X.509 certificate (PEM or DER)") from None
