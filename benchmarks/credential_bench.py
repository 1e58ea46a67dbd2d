"""Foreign-credential verifications per second, per format, against bare signature checks.

    .venv/bin/python benchmarks/credential_bench.py [--seconds 2]

Each format goes through the whole reader (`kiosk.protocol.credentials.read`: prefix,
base45/numeric, inflate, CBOR/JSON, signature, expiry, revocation) on a credential signed
here. Baselines in the same run: the bare signature verification each one pays (ES256 with
`cryptography`, RSA-PSS 2048 for PS256) over the same signed bytes.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import time
import zlib

import base45
import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID

from kiosk.protocol import credentials
from kiosk.protocol.credentials import TrustStore
from kiosk.protocol.credentials.trust import shc_snapshot

NOW = 1_700_000_000
ISS = "https://issuer.example/shc"
DGC = {"ver": "1.3.0", "nam": {"fn": "Bench", "fnt": "BENCH", "gn": "Mark", "gnt": "MARK"},
       "dob": "1980-01-02",
       "v": [{"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215", "dn": 2,
              "sd": 2, "dt": "2021-06-01", "co": "AT", "is": "Bench", "ci": "URN:UVCI:01:AT:BENCH#X"}]}


def rate(fn, seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(20):
            fn()
        n += 20
    return n / (time.perf_counter() - t0)


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def dcc(trust: TrustStore, rsa_key: bool):
    key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DSC")])
    t = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(t).not_valid_after(t + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    trust.add_dcc_certificate(der)
    prot = cbor2.dumps({1: -37 if rsa_key else -7, 4: hashlib.sha256(der).digest()[:8]})
    payload = cbor2.dumps({1: "AT", 4: NOW + 3600, 6: NOW - 3600, -260: {1: DGC}})
    tbs = cbor2.dumps(["Signature1", prot, b"", payload])
    if rsa_key:
        sig = key.sign(tbs, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        pub = key.public_key()

        def bare() -> None:
            pub.verify(sig, tbs, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        pub = key.public_key()

        def bare() -> None:
            pub.verify(encode_dss_signature(r, s), tbs, ec.ECDSA(hashes.SHA256()))
    cose = cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sig]))
    return "HC1:" + base45.b45encode(zlib.compress(cose, 9)).decode(), bare


def shc(trust: TrustStore, bundle_entries: int):
    key = ec.generate_private_key(ec.SECP256R1())
    n = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": _b64(n.x.to_bytes(32, "big")),
           "y": _b64(n.y.to_bytes(32, "big"))}
    kid = _b64(hashlib.sha256(json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")},
                                         separators=(",", ":")).encode()).digest())
    trust.add_shc_snapshot(json.dumps(shc_snapshot(ISS, {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "ES256",
                                                               "crlVersion": 1}]}, [
        {"kid": kid, "method": "rid", "ctr": 1, "rids": [f"r{i}" for i in range(100)]}])).encode())
    patient = {"resourceType": "Patient", "birthDate": "1951-01-20", "name": [{"family": "Bench"}]}
    entries = [{"fullUrl": "resource:0", "resource": patient}]
    entries += [{"fullUrl": f"resource:{i}", "resource": {"resourceType": "Observation", "status": "final",
                                                          "valueQuantity": {"value": i}}}
                for i in range(1, bundle_entries)]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    vc = {"type": ["https://smarthealth.cards#health-card"], "rid": "x",
          "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": bundle}}
    payload = {"iss": ISS, "nbf": NOW - 60, "vc": vc}
    h = _b64(json.dumps({"zip": "DEF", "alg": "ES256", "kid": kid}, separators=(",", ":")).encode())
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    p = _b64(c.compress(json.dumps(payload, separators=(",", ":")).encode()) + c.flush())
    r, s = decode_dss_signature(key.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256())))
    jws = f"{h}.{p}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    pub, signing_input, der = key.public_key(), f"{h}.{p}".encode(), encode_dss_signature(r, s)

    def bare() -> None:
        pub.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    return "shc:/" + "".join(f"{ord(ch) - 45:02d}" for ch in jws), bare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    trust = TrustStore()
    cases = [("EU DCC, ES256", *dcc(trust, False)), ("EU DCC, PS256 (RSA 2048)", *dcc(trust, True)),
             ("SHC, ES256, 2 resources", *shc(trust, 2)), ("SHC, ES256, 50 resources", *shc(trust, 50))]
    print(f"{'format':<28}{'QR chars':>9}{'verify/s':>11}{'bare sig/s':>12}{'ratio':>8}")
    for name, text, bare in cases:
        v = credentials.read(text, trust, NOW)
        assert v.ok, (name, v.detail)
        full = rate(lambda text=text: credentials.read(text, trust, NOW), args.seconds)
        base = rate(bare, args.seconds)
        print(f"{name:<28}{len(text):>9}{full:>11,.0f}{base:>12,.0f}{full / base:>7.2f}x")


if __name__ == "__main__":
    main()
