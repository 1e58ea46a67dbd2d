"""Fuzz targets: each decoder of hostile input, fed arbitrary bytes, must answer with a
KioskError or a Verdict — never another exception, never a hang.

Used by atheris (tests/fuzz/run_atheris.py, coverage-guided) and by hypothesis
(tests/fuzz/test_fuzz.py). The first byte of an input picks a mode, so the fuzzer also reaches
what lies behind a signature or a sealed box: the rest of the input is signed (or sealed) with
the test keys first, and the decoder then works on content it cannot reject as forged.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from kiosk import config
from kiosk.errors import KioskError
from kiosk.hardware.nfc import pass_app, type4
from kiosk.ledger import checkpoint, merkle
from kiosk.net import receipt as net_receipt
from kiosk.protocol import cose, entry, keys, patient_pass, presentation, revocation
from kiosk.protocol import qr_text as qr_layer
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
}


def one_input(name: str, data: bytes) -> None:
    """Run a target; a KioskError is a clean refusal, anything else propagates (a finding)."""
    with contextlib.suppress(KioskError):
        TARGETS[name].run(data)
