"""Shared objects for protocol tests: an issuer, a wallet, a pass, a revocation list."""
from __future__ import annotations

import os
from dataclasses import dataclass

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from kiosk.protocol import keys, patient_pass, revocation
from kiosk.wallet.wallet import Wallet

SITE = "clinic-a"
NOW = 1_790_000_000


@dataclass
class World:
    issuer: SigningKey
    sealing: PrivateKey
    wallet: Wallet
    template: bytes
    pass_bytes: bytes
    issuers: dict

    def revocations(self, revoked: dict | None = None, issued: int = NOW - 60, next_update: int = NOW + 3600):
        raw = revocation.sign(self.issuer, site=SITE, revoked=revoked or {}, issued=issued,
                              next_update=next_update, seq=1)
        return revocation.verify(raw, self.issuers, site=SITE)



def make_world() -> World:
    issuer = SigningKey.generate()
    sealing = PrivateKey.generate()
    wallet = Wallet.create()
    template = os.urandom(256)
    raw = patient_pass.issue(issuer, issuer="clinic-a-issuer", site=SITE, patient="p-0011",
                             patient_key=wallet.public_key, template=template,
                             sealing_keys=[sealing.public_key], now=NOW - 86400, valid_s=365 * 86400)
    wallet.store_pass(raw)
    return World(issuer, sealing, wallet, template, raw, {keys.kid(issuer.verify_key): issuer.verify_key})
