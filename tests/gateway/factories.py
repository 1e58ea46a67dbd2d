"""Test objects for the gateway: keys, patients with passes, presentations, record messages."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from kiosk.ledger.checkpoint import NoteVerifier
from kiosk.protocol import entry, keys, patient_pass, presentation, revocation

SITE = "clinic-a"
KIOSK = "kiosk-1"
LOG_NAME = "clinic-a.example/log"
NOW = 1_790_000_000  # a fixed "now" for unit tests (Unix seconds)


@dataclass
class Patient:
    patient_id: str
    key: SigningKey
    pass_bytes: bytes

    @property
    def pass_id(self) -> bytes:
        return patient_pass.decode(self.pass_bytes).pass_id

    @property
    def pass_hash(self) -> bytes:
        return patient_pass.decode(self.pass_bytes).pass_hash


@dataclass
class World:
    """An issuer, a log key and kiosk keys for one site."""

    site: str = SITE
    issuer_key: SigningKey = field(default_factory=SigningKey.generate)
    log_key: SigningKey = field(default_factory=SigningKey.generate)
    log_name: str = LOG_NAME
    kiosk_keys: dict[str, SigningKey] = field(default_factory=dict)
    seal_key: PrivateKey = field(default_factory=PrivateKey.generate)  # the gateway sealing key

    @property
    def issuers(self) -> dict:
        return {keys.kid(self.issuer_key.verify_key): self.issuer_key.verify_key}

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.log_name, self.log_key.verify_key)

    def kiosk_key(self, kiosk: str = KIOSK) -> SigningKey:
        return self.kiosk_keys.setdefault(kiosk, SigningKey.generate())

    def patient(self, *, now: int = NOW, valid_s: int = 365 * 86400, issued: int | None = None,
                card: bool = False) -> Patient:
        """A patient with a phone pass, or with `card` a clinic-issued card pass (no key)."""
        key = SigningKey.generate()
        pid = patient_pass.new_patient_id()
        raw = patient_pass.issue(self.issuer_key, issuer="clinic-a-issuer", site=self.site, patient=pid,
                                 patient_key=None if card else key.verify_key,
                                 template=os.urandom(130) if card else None,  # the card encoding's size
                                 sealing_keys=[PrivateKey.generate().public_key] if card else [],
                                 now=issued if issued is not None else now - 86400, valid_s=valid_s)
        return Patient(pid, key, raw)

    def nfc(self, p: Patient, kiosk: str = KIOSK, nonce: bytes | None = None,
            anchor: bytes | None = None) -> dict:
        """An NFC presentation; `anchor` (a checkpoint note) makes the nonce commit to it."""
        pair = None
        if anchor is not None:
            pair = (os.urandom(16), presentation.checkpoint_hash(anchor))
            nonce = presentation.anchored_nonce(*pair)
        stmt = presentation.nfc_statement(self.site, kiosk, nonce or os.urandom(16), p.pass_hash)
        return presentation.Presentation("nfc", p.pass_bytes, stmt,
                                         presentation.sign_statement(p.key, stmt), pair).to_map()

    def qr(self, p: Patient, t: float) -> dict:
        stmt = presentation.qr_statement(self.site, presentation.window_of(t), p.pass_hash)
        return presentation.Presentation("qr", p.pass_bytes, stmt,
                                         presentation.sign_statement(p.key, stmt)).to_map()

    def card(self, p: Patient) -> dict:
        return presentation.Presentation("card", p.pass_bytes).to_map()

    def revocations(self, revoked: dict | None = None, *, issued: int = NOW - 3600,
                    next_update: int = NOW + 7 * 86400, seq: int = 1) -> bytes:
        return revocation.sign(self.issuer_key, site=self.site, revoked=revoked or {}, issued=issued,
                               next_update=next_update, seq=seq)

    def leaf(self, type: str = "check-in", *, kiosk: str = KIOSK, site: str | None = None,
             created_ms: int = NOW * 1000, patient: str | None = None, refs: tuple = (),
             key: SigningKey | None = None, content: dict | None = None,
             captured_ms: int | None = None) -> tuple[bytes, bytes]:
        """(leaf, body) of a signed entry."""
        body, bh = entry.make_body(content or {"kind": type})
        env = entry.new_envelope(type, site=site or self.site, kiosk=kiosk, body_hash=bh,
                                 created_ms=created_ms, refs=refs, patient=patient, captured_ms=captured_ms)
        return entry.sign_leaf(env, key or self.kiosk_key(kiosk)), body

    def record(self, type: str = "check-in", *, pres: dict | None = None, last_size: int = 0,
               body: bytes | None = None, **leaf_args) -> tuple[bytes, bytes]:
        """(payload, leaf) of a record message; an entry with a presentation was captured when
        it was created unless `captured_ms` says otherwise."""
        if pres is not None and "captured_ms" not in leaf_args:
            leaf_args["captured_ms"] = leaf_args.get("created_ms", NOW * 1000)
        leaf, b = self.leaf(type, **leaf_args)
        return self.seal(entry.Record(leaf, body if body is not None else b, pres, last_size)), leaf

    def seal(self, record: entry.Record) -> bytes:
        """The record message as a kiosk sends it: sealed to the gateway sealing key."""
        return record.seal(self.seal_key.public_key)

    def session(self, p: Patient, *, kiosk: str = KIOSK, created_ms: int = NOW * 1000,
                pres: dict | None = None, last_size: int = 0,
                captured_ms: int | None = None) -> list[tuple[bytes, bytes]]:
        """A check-in and its consent (refs the check-in), sharing one NFC presentation."""
        pres = pres or self.nfc(p, kiosk)
        captured_ms = created_ms if captured_ms is None else captured_ms
        c1, l1 = self.record("check-in", pres=pres, kiosk=kiosk, created_ms=created_ms,
                             patient=p.patient_id, last_size=last_size, captured_ms=captured_ms)
        c2, l2 = self.record("consent", pres=pres, kiosk=kiosk, created_ms=created_ms + 1,
                             patient=p.patient_id, refs=(entry.entry_hash(l1),), last_size=last_size,
                             captured_ms=captured_ms)
        return [(c1, l1), (c2, l2)]
