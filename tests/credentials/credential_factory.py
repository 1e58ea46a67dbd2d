"""Foreign credentials signed by keys made in the test: an EU DCC and a SMART Health Card.

Built from the specs' layering with `cryptography` and `cbor2` directly (not with the
reader's own helpers), so a reader bug is not mirrored in what it reads.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import zlib
from dataclasses import dataclass

import base45
import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ISS = "https://issuer.example/shc"
DGC = {"ver": "1.3.0", "nam": {"fn": "Testfamily", "fnt": "TESTFAMILY", "gn": "Tess", "gnt": "TESS"},
       "dob": "1980-01-02",
       "v": [{"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215", "dn": 2,
              "sd": 2, "dt": "2021-06-01", "co": "AT", "is": "Test issuer", "ci": "URN:UVCI:01:AT:TEST#X"}]}


@dataclass
class DccSigner:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    der: bytes

    @property
    def kid(self) -> bytes:
        return hashlib.sha256(self.der).digest()[:8]

    def pem(self) -> bytes:
        return x509.load_der_x509_certificate(self.der).public_bytes(serialization.Encoding.PEM)


def dcc_signer(rsa_key: bool = False, *, eku: list[str] | None = None,
               valid: tuple[int, int] | None = None) -> DccSigner:
    """A self-signed DSC; `eku` its extended key usage OIDs, `valid` (notBefore, notAfter)."""
    key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "AT"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "DSC")])
    start = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    nb, na = (start, start + dt.timedelta(days=3650)) if valid is None else \
        (dt.datetime.fromtimestamp(valid[0], dt.UTC), dt.datetime.fromtimestamp(valid[1], dt.UTC))
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(1).not_valid_before(nb).not_valid_after(na))
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) for o in eku]),
                                        critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return DccSigner(key, cert.public_bytes(serialization.Encoding.DER))


def dcc_cose(signer: DccSigner, *, iat: int, exp: int, dgc: dict | None = None,
             kid_unprotected: bool = False, kid: bytes | None = None) -> bytes:
    """`kid`: the header's, when a trust list names the signer by another than its own."""
    rsa_key = isinstance(signer.key, rsa.RSAPrivateKey)
    kid = signer.kid if kid is None else kid
    prot_map = {1: -37 if rsa_key else -7} | ({} if kid_unprotected else {4: kid})
    prot = cbor2.dumps(prot_map)
    payload = cbor2.dumps({1: "AT", 4: exp, 6: iat, -260: {1: dgc or DGC}})
    tbs = cbor2.dumps(["Signature1", prot, b"", payload])
    if rsa_key:
        sig = signer.key.sign(tbs, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    else:
        r, s = decode_dss_signature(signer.key.sign(tbs, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    unprot = {4: kid} if kid_unprotected else {}
    return cbor2.dumps(cbor2.CBORTag(18, [prot, unprot, payload, sig]))


def dcc_text(signer: DccSigner, **kw: object) -> str:
    return "HC1:" + base45.b45encode(zlib.compress(dcc_cose(signer, **kw))).decode()  # type: ignore[arg-type]


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


@dataclass
class ShcIssuer:
    key: ec.EllipticCurvePrivateKey
    iss: str = ISS

    @property
    def jwk(self) -> dict:
        n = self.key.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": _b64(n.x.to_bytes(32, "big")),
                "y": _b64(n.y.to_bytes(32, "big"))}

    @property
    def kid(self) -> str:  # RFC 7638 thumbprint
        j = self.jwk
        canon = json.dumps({k: j[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        return _b64(hashlib.sha256(canon.encode()).digest())

    def jwks(self, crl_version: int | None = None) -> dict:
        k = {**self.jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}
        if crl_version is not None:
            k["crlVersion"] = crl_version
        return {"keys": [k]}


def shc_issuer() -> ShcIssuer:
    return ShcIssuer(ec.generate_private_key(ec.SECP256R1()))


def shc_payload(iss: str, nbf: float, rid: str | None = None) -> dict:
    patient = {"resourceType": "Patient", "name": [{"family": "Anyperson", "given": ["John", "B."]}],
               "birthDate": "1951-01-20"}
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"fullUrl": "resource:0", "resource": patient},
                        {"fullUrl": "resource:1",
                         "resource": {"resourceType": "Immunization", "status": "completed"}}]}
    vc: dict = {"type": ["https://smarthealth.cards#health-card"],
                "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": bundle}}
    if rid:
        vc["rid"] = rid
    return {"iss": iss, "nbf": nbf, "vc": vc}


def shc_jws(issuer: ShcIssuer, payload: dict, *, header: dict | None = None) -> str:
    header = header or {"zip": "DEF", "alg": "ES256", "kid": issuer.kid}
    h = _b64(json.dumps(header, separators=(",", ":")).encode())
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = c.compress(json.dumps(payload, separators=(",", ":")).encode()) + c.flush()
    p = _b64(body)
    r, s = decode_dss_signature(issuer.key.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{h}.{p}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def shc_qr(jws: str, chunks: int = 1) -> list[str]:
    digits = "".join(f"{ord(ch) - 45:02d}" for ch in jws)
    if chunks == 1:
        return ["shc:/" + digits]
    size = -(-len(jws) // chunks) * 2
    parts = [digits[i:i + size] for i in range(0, len(digits), size)]
    return [f"shc:/{i}/{len(parts)}/{p}" for i, p in enumerate(parts, 1)]
