"""Fuzz targets: each decoder of hostile input, fed arbitrary bytes, must answer with a
KioskError or a Verdict — never another exception, never a hang.

Used by atheris (tests/fuzz/run_atheris.py, coverage-guided) and by hypothesis
(tests/fuzz/test_fuzz.py). The first byte of an input picks a mode, so the fuzzer also reaches
what lies behind a signature or a sealed box: the rest of the input is signed (or sealed) with
the test keys first, and the decoder then works on content it cannot reject as forged.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import base45
import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from kiosk import config
from kiosk.errors import KioskError
from kiosk.hardware.nfc import pass_app, type2, type4
from kiosk.ledger import checkpoint, merkle
from kiosk.net import receipt as net_receipt
from kiosk.protocol import cose, credentials, entry, keys, patient_pass, presentation, revocation
from kiosk.protocol import qr_text as qr_layer
from kiosk.protocol.credentials.trust import TrustStore, shc_snapshot
from kiosk.protocol.presentation import Freshness
from kiosk.wallet.wallet import Wallet

SITE, KIOSK, LOG_NAME = "clinic", "kiosk-1", "clinic.example/log"
NOW = 1_790_000_000
CONFIG_PATH = Path("/nonexistent-kiosk-fuzz/kiosk.toml")


class _World:
    """Fixed keys (seeded, so a crash found once reproduces) and one valid object of each kind."""

    def __init__(self) -> None:
        self.issuer = SigningKey(bytes(range(32)))
        self.issuers = {keys.kid(self.issuer.verify_key): self.issuer.verify_key}
        self.kiosk_key = SigningKey(bytes(range(1, 33)))
        self.log_key = SigningKey(bytes(range(2, 34)))
        self.verifier = checkpoint.NoteVerifier(LOG_NAME, self.log_key.verify_key)
        self.gateway = PrivateKey(bytes(range(3, 35)))
        self.gateway_keys = {keys.kid(self.gateway.public_key): self.gateway}
        self.wallet = Wallet.create()
        self.pass_bytes = patient_pass.issue(
            self.issuer, issuer="issuer", site=SITE, patient="p-0011", patient_key=self.wallet.public_key,
            template=os.urandom(256), sealing_keys=[PrivateKey.generate().public_key], now=NOW - 86400,
            valid_s=365 * 86400, pass_id=bytes(16))
        self.wallet.store_pass(self.pass_bytes)
        self.card_pass = patient_pass.issue(
            self.issuer, issuer="issuer", site=SITE, patient="p-0012", patient_key=None,
            template=bytes(130), sealing_keys=[PrivateKey.generate().public_key], now=NOW - 86400,
            valid_s=365 * 86400, pass_id=bytes(range(16)))
        self.rl_bytes = revocation.sign(self.issuer, site=SITE, revoked={b"r" * 16: NOW - 10},
                                        issued=NOW - 60, next_update=NOW + 3600, seq=1)
        self.rl = revocation.verify(self.rl_bytes, self.issuers, site=SITE)
        body, bh = entry.make_body({"kind": "check-in"}, salt=bytes(16))
        env = entry.Envelope("check-in", bytes(16), SITE, KIOSK, NOW * 1000, bh, (), "p-0011")
        self.leaf = entry.sign_leaf(env, self.kiosk_key)
        self.body = body
        pres = presentation.from_qr_text(self.wallet.qr_text(NOW))
        self.record = entry.Record(self.leaf, body, pres.to_map(), 0).seal(self.gateway.public_key)
        self.note = checkpoint.sign_checkpoint(
            checkpoint.Checkpoint(LOG_NAME, 1, merkle.leaf_hash(self.leaf)), LOG_NAME, self.log_key)
        self.receipt = entry.Receipt(entry.entry_hash(self.leaf), entry.STATUS_ACCEPTED, "", 0, self.note,
                                     ()).signed(self.log_key).to_cbor()


W = _World()
FRESH = Freshness(site=SITE)


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class _Foreign:
    """Another issuer's keys, fixed like W's: an EU DCC signer (P-256 DSC with the
    vaccination key usage) and a SMART Health Cards issuer, both in one trust store."""

    SHC_ISS = "https://issuer.example/shc"

    def __init__(self) -> None:
        self.dsc_key = ec.derive_private_key(0xD5C, ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "AT")])
        start = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.dsc_key.public_key()).serial_number(1).not_valid_before(start)
                .not_valid_after(start + dt.timedelta(days=3650))
                .add_extension(x509.ExtendedKeyUsage([x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.2")]),
                               critical=False)
                .sign(self.dsc_key, hashes.SHA256()))
        self.trust = TrustStore()
        self.dsc_kid = self.trust.add_dcc_certificate(cert.public_bytes(serialization.Encoding.DER))
        self.shc_key = ec.derive_private_key(0x5C, ec.SECP256R1())
        n = self.shc_key.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": _b64url(n.x.to_bytes(32, "big")),
               "y": _b64url(n.y.to_bytes(32, "big"))}
        canon = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        self.shc_kid = _b64url(hashlib.sha256(canon.encode()).digest())
        self.trust.add_shc_snapshot(json.dumps(shc_snapshot(self.SHC_ISS, {"keys": [
            {**jwk, "kid": self.shc_kid, "use": "sig", "alg": "ES256", "crlVersion": 1}]}, [
            {"kid": self.shc_kid, "method": "rid", "ctr": 1, "rids": ["r1", "r2.1000"]}])).encode())

    def _es256(self, key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
        r, s_ = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s_.to_bytes(32, "big")

    def dcc_cose(self, payload: bytes) -> bytes:
        """A COSE_Sign1 the DSC signed over `payload` (any bytes: the CWT claims to fuzz)."""
        prot = cbor2.dumps({1: -7, 4: self.dsc_kid})
        sig = self._es256(self.dsc_key, cbor2.dumps(["Signature1", prot, b"", payload]))
        return cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sig]))

    def dcc_text(self, cose_bytes: bytes) -> str:
        return "HC1:" + base45.b45encode(zlib.compress(cose_bytes)).decode()

    def shc_jws(self, payload_json: bytes, header: bytes | None = None) -> str:
        """A compact JWS the SHC issuer signed, its payload `payload_json` DEFLATEd."""
        h = _b64url(header or json.dumps({"zip": "DEF", "alg": "ES256", "kid": self.shc_kid}).encode())
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        p = _b64url(c.compress(payload_json) + c.flush())
        return f"{h}.{p}.{_b64url(self._es256(self.shc_key, f'{h}.{p}'.encode()))}"

    def claims(self) -> bytes:
        dgc = {"ver": "1.3.0", "nam": {"fn": "F", "fnt": "F", "gn": "G", "gnt": "G"}, "dob": "1980-01-02",
               "v": [{"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
                      "dn": 2, "sd": 2, "dt": "2021-06-01", "co": "AT", "is": "I", "ci": "URN:UVCI:01:AT:X"}]}
        return cbor2.dumps({1: "AT", 4: NOW + 86400, 6: NOW - 86400, -260: {1: dgc}})

    def shc_payload(self) -> bytes:
        patient = {"resourceType": "Patient", "name": [{"family": "F", "given": ["G"]}], "birthDate": "1951-01-20"}
        vc = {"type": ["https://smarthealth.cards#health-card"], "rid": "r3",
              "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": {
                  "resourceType": "Bundle", "type": "collection",
                  "entry": [{"fullUrl": "resource:0", "resource": patient}]}}}
        return json.dumps({"iss": self.SHC_ISS, "nbf": NOW - 60, "vc": vc}, separators=(",", ":")).encode()


F = _Foreign()


def _numeric(jws: str) -> str:
    return "shc:/" + "".join(f"{ord(ch) - 45:02d}" for ch in jws)


def _pass_verdict(raw: bytes) -> None:
    patient_pass.verify(raw, W.issuers, now=NOW, revocations=W.rl, site=SITE)


def _mode(data: bytes) -> tuple[int, bytes]:
    return (data[0], data[1:]) if data else (0, b"")


# ------------------------------------------------------------------------------- targets

def record(data: bytes) -> None:
    """A record message as the gateway receives it: decoded, opened, its parts checked."""
    mode, rest = _mode(data)
    if mode & 1:  # the rest is the sealed content: seal it so the inner decoder sees it
        from nacl.public import SealedBox

        sealed = SealedBox(W.gateway.public_key).encrypt(rest)
        data = entry.cbor.dumps({"entry_hash": entry.entry_hash(W.leaf), "sealed": sealed,
                                 "kid": keys.kid(W.gateway.public_key), "last_size": 0})
    rec = entry.decode_record(data)
    opened = rec.open(W.gateway_keys)
    entry.decode_leaf(opened.leaf)
    entry.body_hash_of(opened.body)
    entry.decode_body(opened.body)
    if opened.presentation is not None:
        pres = presentation.Presentation.from_map(opened.presentation)
        presentation.verify(pres, W.issuers, now=NOW, revocations=W.rl, fresh=FRESH, live=False)


def receipt(data: bytes) -> None:
    """A receipt as the kiosk receives it: decoded, signature, proofs (re-signed in mode 1)."""
    mode, rest = _mode(data)
    r = entry.decode_receipt(rest if mode & 1 else data)
    if mode & 1:
        r = r.signed(W.log_key)
    r.verify_signature(W.log_key.verify_key)
    if r.accepted:
        net_receipt.verify_receipt(W.leaf, r, W.verifier, origin=LOG_NAME)


def revocation_list(data: bytes) -> None:
    """The revocation topic's message (mode 1: the rest is a payload the issuer signed)."""
    mode, rest = _mode(data)
    if mode & 1:
        data = cose.sign1(rest, W.issuer)
    revocation.verify(data, W.issuers, site=SITE)


def qr_text(data: bytes) -> None:
    """What the camera's QR decoder hands the kiosk: text, then the presentation's checks
    (mode 1: the rest is the CBOR inside, put through base45 and zlib first)."""
    mode, rest = _mode(data)
    text = qr_layer.encode(rest) if mode == 1 else data.decode("latin-1")
    pres = presentation.from_qr_text(text)
    presentation.verify(pres, W.issuers, now=NOW, revocations=W.rl, fresh=FRESH)


def nfc_pass(data: bytes) -> None:
    """What NFC brings: a Type 4 tag's NDEF message, a pass read from a phone, a phone's
    SIGN request (the wallet side), or claims the issuer signed (mode 3)."""
    mode, rest = _mode(data)
    kind = mode % 4
    if kind == 0:
        found = type4.extract_pass(rest)
        if found is not None:
            _pass_verdict(found)
    elif kind == 1:
        _pass_verdict(rest)
    elif kind == 2:
        pass_app._parse_sign_data(rest, consent=bool(mode & 4))
    else:
        _pass_verdict(cose.sign1(rest, W.issuer))


def checkpoint_note(data: bytes) -> None:
    """A signed checkpoint note (retained topic, receipts): parsed, verified, opened."""
    mode, rest = _mode(data)
    if mode & 1:  # the rest is a checkpoint body the log key signed
        try:
            text = rest.decode("utf-8")
        except UnicodeDecodeError:
            return
        if not text or "\n\n" in text or not text.endswith("\n"):
            return
        data = checkpoint.sign_note(text, LOG_NAME, W.log_key)
    checkpoint.parse_note(data)
    checkpoint.open_checkpoint(data, W.verifier, LOG_NAME)


def dcc(data: bytes) -> None:
    """An EU DCC: QR text (mode 0), COSE under valid zlib/base45/HC1 layers (1), or CWT
    claims the trusted DSC signed (2), so claims, DGC and key-usage checks are reached."""
    mode, rest = _mode(data)
    kind = mode % 3
    if kind == 0:
        text = rest.decode("latin-1")
    elif kind == 1:
        text = F.dcc_text(rest)
    else:
        text = F.dcc_text(F.dcc_cose(rest))
    v = credentials.read(text, F.trust, NOW)
    if v.ok:  # nothing verifies that the trusted DSC did not sign
        assert v.data["credential"].key_id == F.dsc_kid.hex()


def shc(data: bytes) -> None:
    """A SMART Health Card: text (mode 0: numeric QR chunks split on newlines, a JWS or a
    .smart-health-card file), or a JWS payload (1) / header (2) the trusted issuer signed."""
    mode, rest = _mode(data)
    kind = mode % 3
    if kind == 0:
        texts = rest.decode("latin-1").split("\n")
    elif kind == 1:
        texts = [_numeric(F.shc_jws(rest))]
    else:
        texts = [F.shc_jws(F.shc_payload(), header=rest)]
    v = credentials.read(texts, F.trust, NOW)
    if v.ok:
        assert v.data["credential"].key_id == F.shc_kid


def type2_tag(data: bytes) -> None:
    """An NTAG's memory as a card presents it: the rest is the user memory from page 3 (the
    CC) on, read by FAST_READ (mode bit 0) or READ, then the pass in its NDEF message."""
    mode, rest = _mode(data)
    tag = type2.Type2Tag(bytes.fromhex("04000000000001"), type2.NTAG216 if mode & 2 else type2.NTAG215)
    tag.memory[12:12 + len(rest)] = rest[: len(tag.memory) - 12]

    def exchange(c: bytes) -> bytes:
        a = tag.command(c)
        return b"" if a is None or isinstance(a, int) else a

    found = type4.extract_pass(type2.read_ndef(exchange, exchange if mode & 1 else None))
    if found is not None:
        _pass_verdict(found)


def config_file(data: bytes) -> None:
    """A kiosk.toml."""
    config.parse(data, CONFIG_PATH)  # relative paths resolve against a folder that need not exist


@dataclass(frozen=True)
class Target:
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]


def _config_seed() -> bytes:
    return config.to_toml(config.from_dict({"kiosk": {"site": SITE, "id": KIOSK}})).encode()


TARGETS: dict[str, Target] = {
    "record": Target(record, lambda: [W.record, b"\x01" + entry.cbor.dumps(
        {"leaf": W.leaf, "body": W.body, "presentation": None})]),
    "receipt": Target(receipt, lambda: [W.receipt, b"\x01" + W.receipt]),
    "revocation": Target(revocation_list,
                         lambda: [W.rl_bytes, b"\x01" + cose.decode_sign1(W.rl_bytes).payload]),
    "qr": Target(qr_text, lambda: [W.wallet.qr_text(NOW).encode(), qr_layer.encode(W.pass_bytes).encode(),
                                   b"\x01" + qr_layer.decode(W.wallet.qr_text(NOW))]),
    "nfc": Target(nfc_pass, lambda: [b"\x00" + type4.pass_message(W.pass_bytes), b"\x01" + W.pass_bytes,
                                     b"\x02" + pass_app.encode_sign_data(SITE, KIOSK, bytes(16)),
                                     b"\x03" + cose.decode_sign1(W.pass_bytes).payload]),
    "checkpoint": Target(checkpoint_note,
                         lambda: [W.note, b"\x01" + checkpoint.parse_note(W.note)[0].encode()]),
    "config": Target(config_file, lambda: [_config_seed()]),
    "dcc": Target(dcc, lambda: [F.dcc_text(F.dcc_cose(F.claims())).encode(), b"\x01" + F.dcc_cose(F.claims()),
                                b"\x02" + F.claims()]),
    "shc": Target(shc, lambda: [_numeric(F.shc_jws(F.shc_payload())).encode(), b"\x01" + F.shc_payload(),
                                b"\x02" + json.dumps({"zip": "DEF", "alg": "ES256", "kid": F.shc_kid}).encode(),
                                json.dumps({"verifiableCredential": [F.shc_jws(F.shc_payload())]}).encode()]),
    "type2": Target(type2_tag, lambda: [bytes([m]) + _type2_seed(m) for m in range(4)]),
}


def _type2_seed(mode: int) -> bytes:
    tag = type2.Type2Tag(bytes(7), type2.NTAG216 if mode & 2 else type2.NTAG215)
    tag.write_ndef_message(type4.pass_message(W.card_pass))
    return bytes(tag.memory[12:12 + 16 + len(type4.pass_message(W.card_pass)) + 8])


def one_input(name: str, data: bytes) -> None:
    """Run a target; a KioskError is a clean refusal, anything else propagates (a finding)."""
    with contextlib.suppress(KioskError):
        TARGETS[name].run(data)
