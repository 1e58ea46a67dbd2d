"""Face templates sealed to the clinic's X25519 sealing key (libsodium sealed box).

A photographed QR therefore leaks no biometric: only a kiosk holding the sealing private key
opens it. Each sealed copy is labelled with the sealing key's kid, so rotation can seal to
both the current and the next key (docs/design-notes.md).
"""
from __future__ import annotations

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from kiosk.errors import Reason, VerificationError
from kiosk.protocol.keys import kid as key_id

TEMPLATE_BYTES = 256  # 128 × float16 (the shared template encoding)
CARD_TEMPLATE_BYTES = 130  # float16 scale + 128 int8 (card passes: kiosk.vision.template)
TEMPLATE_SIZES = (TEMPLATE_BYTES, CARD_TEMPLATE_BYTES)


def seal(template: bytes, recipients: list[PublicKey]) -> list[list[bytes]]:
    """Seal the template bytes to every recipient key: [[kid, sealed box], ...]."""
    if len(template) not in TEMPLATE_SIZES:
        raise ValueError(f"a template is {TEMPLATE_BYTES} bytes ({CARD_TEMPLATE_BYTES} on a card)")
    return [[key_id(pk), SealedBox(pk).encrypt(template)] for pk in recipients]


def open_sealed(sealed: list[list[bytes]], keys: list[PrivateKey]) -> bytes:
    """Open the copy sealed to one of our keys; VerificationError when none opens."""
    ours = {key_id(k.public_key): k for k in keys}
    for kid, box in sealed:
        key = ours.get(kid)
        if key is None:
            continue
        try:
            out = SealedBox(key).decrypt(box)
        except CryptoError:
            break
        if len(out) in TEMPLATE_SIZES:
            return out
        break
    raise VerificationError("sealed template does not open with this kiosk's sealing key",
                            reason=Reason.BAD_SIGNATURE.value)
