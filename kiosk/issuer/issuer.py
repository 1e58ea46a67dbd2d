"""The clinic's enrolment desk: keys, passes, and the signed revocation list.

An issuer folder holds:
  issuer.key / issuer.pub       Ed25519: signs passes and revocation lists
  sealing.pub [sealing-next.pub] X25519 public keys templates are sealed to
  for-kiosks/sealing.key        the sealing private key, to install on kiosks at provisioning
                                and then remove from this host (docs/design-notes.md)
  issuer.json                   site and issuer name
  revoked.json                  pass id (hex) → revocation time, and the list's sequence number
The issuer keeps neither the photo nor the clear template.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nacl.public import PublicKey
from nacl.signing import SigningKey, VerifyKey

from kiosk.errors import CannotCreateError, ConfigError, UsageError
from kiosk.ids import check_id
from kiosk.protocol import keys, patient_pass, qr_text, revocation

DEFAULT_VALID_DAYS = 365


@dataclass
class EnrolledPass:
    """What enrolment produced (no biometric data)."""

    pass_bytes: bytes
    patient: str
    pass_id: bytes


class Issuer:
    """An issuer folder, opened."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        meta = self.folder / "issuer.json"
        if not meta.exists():
            raise ConfigError(f"{self.folder}: not an issuer folder (run `kiosk issuer init` first)")
        info = json.loads(meta.read_text())
        self.site: str = info["site"]
        self.name: str = info["issuer"]

    @classmethod
    def init(cls, folder: Path, site: str, name: str | None = None) -> Issuer:
        """Create the issuer key and the sealing key pair; refuse to overwrite."""
        folder = Path(folder)
        check_id(site, "site")
        if (folder / "issuer.json").exists():
            raise CannotCreateError(f"{folder}: an issuer already exists there; refusing to overwrite it")
        keys.make_dir(folder, 0o700)
        keys.new_signing_key(folder / "issuer.key", folder / "issuer.pub")
        keys.new_sealing_key(folder / "for-kiosks" / "sealing.key", folder / "sealing.pub")
        (folder / "issuer.json").write_text(json.dumps({"site": site, "issuer": name or f"{site}-issuer"}))
        (folder / "revoked.json").write_text(json.dumps({"seq": 0, "revoked": {}}))
        return cls(folder)

    @property
    def signing_key(self) -> SigningKey:
        return keys.load_signing_key(self.folder / "issuer.key")

    @property
    def public_key(self) -> VerifyKey:
        return keys.load_verify_key(self.folder / "issuer.pub")

    def sealing_public_keys(self) -> list[PublicKey]:
        """The current sealing key, and the next one during a rotation."""
        out = [keys.load_sealing_public(self.folder / "sealing.pub")]
        nxt = self.folder / "sealing-next.pub"
        if nxt.exists():
            out.append(keys.load_sealing_public(nxt))
        return out

    def enroll(self, patient_key: VerifyKey | None, template: bytes | None, *, now: int | None = None,
               valid_days: int = DEFAULT_VALID_DAYS) -> EnrolledPass:
        """Issue a pass certifying the wallet's key; `template` None = no biometric consent.

        `patient_key` None issues a card pass, which only the face match binds: it must
        carry a template, given like a phone pass's (256 bytes) and sealed in the card
        encoding (130 bytes)."""
        if patient_key is None and template is None:
            raise UsageError("a card pass needs a face template: the face match alone binds it")
        if valid_days < 1:  # a pass valid for less would be issued (all but) expired
            raise UsageError("a pass must be valid for at least 1 day")
        if patient_key is None and template is not None:
            # a card pass carries the compact encoding, so it fits an NTAG215 (design notes)
            from kiosk.vision.template import template_from_bytes, template_to_card_bytes

            template = template_to_card_bytes(template_from_bytes(template))
        now = int(time.time()) if now is None else now
        patient = patient_pass.new_patient_id()
        raw = patient_pass.issue(self.signing_key, issuer=self.name, site=self.site, patient=patient,
                                 patient_key=patient_key, template=template,
                                 sealing_keys=self.sealing_public_keys(), now=now, valid_s=valid_days * 86400)
        return EnrolledPass(raw, patient, patient_pass.decode(raw).pass_id)

    def _state(self) -> dict:
        return json.loads((self.folder / "revoked.json").read_text())

    def revoke(self, pass_id: bytes, now: int | None = None) -> None:
        """Add a pass id to the revocation list (idempotent)."""
        state = self._state()
        state["revoked"].setdefault(pass_id.hex(), int(time.time()) if now is None else now)
        state["seq"] += 1
        tmp = self.folder / "revoked.json.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.folder / "revoked.json")

    def revocation_seq(self) -> int:
        """The revocation list's sequence number (it grows with every revocation)."""
        return int(self._state()["seq"])

    def revocation_list(self, now: int | None = None, next_update_s: int = 24 * 3600) -> bytes:
        """Sign the current revocation list, valid until `now + next_update_s`."""
        now = int(time.time()) if now is None else now
        state = self._state()
        revoked = {bytes.fromhex(k): v for k, v in state["revoked"].items()}
        return revocation.sign(self.signing_key, site=self.site, revoked=revoked, issued=now,
                               next_update=now + next_update_s, seq=state["seq"])


def write_pass_files(folder: Path, pass_bytes: bytes) -> list[Path]:
    """Write the pass as the patient carries it: COSE file, QR text and QR PNG."""
    import segno

    folder = Path(folder)
    text = qr_text.encode(pass_bytes)
    paths = [folder / "pass.cose", folder / "pass.qr.txt", folder / "pass.qr.png"]
    paths[0].write_bytes(pass_bytes)
    paths[1].write_text(text + "\n")
    segno.make(text, error="m").save(str(paths[2]), scale=6, border=4)
    return paths
