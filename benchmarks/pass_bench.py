"""Pass verifications per second, and the QR text length of a real pass.

    .venv/bin/python benchmarks/pass_bench.py [--seconds 3]

Baseline in the same run: a bare Ed25519 verification (PyNaCl) of the same signed bytes,
which is the floor any pass verification pays.
"""
from __future__ import annotations

import argparse
import os
import time

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from kiosk.protocol import cose, keys, patient_pass, presentation, qr_text, revocation
from kiosk.wallet.wallet import Wallet


def rate(fn, seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(50):
            fn()
        n += 50
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    now = int(time.time())
    issuer, sealing, wallet = SigningKey.generate(), PrivateKey.generate(), Wallet.create()
    raw = patient_pass.issue(issuer, issuer="clinic-issuer", site="clinic", patient=patient_pass.new_patient_id(),
                             patient_key=wallet.public_key, template=os.urandom(256),
                             sealing_keys=[sealing.public_key], now=now, valid_s=365 * 86400)
    wallet.store_pass(raw)
    issuers = {keys.kid(issuer.verify_key): issuer.verify_key}
    rl = revocation.verify(revocation.sign(issuer, site="clinic", revoked={os.urandom(16): now for _ in range(100)},
                                           issued=now, next_update=now + 3600, seq=1), issuers)
    msg = cose.decode_sign1(raw)
    import cbor2
    tbs = cbor2.dumps(["Signature1", msg.protected_bytes, b"", msg.payload])
    vk = issuer.verify_key

    base = rate(lambda: vk.verify(tbs, msg.signature), args.seconds)
    pv = rate(lambda: patient_pass.verify(raw, issuers, now=now, revocations=rl), args.seconds)
    fresh = presentation.Freshness(site="clinic")
    qr = wallet.qr_text(now)
    qv = rate(lambda: presentation.verify(presentation.from_qr_text(qr), issuers, now=now, revocations=rl,
                                          fresh=fresh), args.seconds)
    print(f"pass COSE bytes               {len(raw)}")
    print(f"pass QR text length           {len(qr_text.encode(raw))} chars")
    print(f"QR presentation text length   {len(qr)} chars")
    print(f"bare Ed25519 verify (baseline) {base:10.0f} /s")
    print(f"pass verify                    {pv:10.0f} /s   ratio to baseline {pv / base:.2f}")
    print(f"QR presentation decode+verify  {qv:10.0f} /s   ratio to baseline {qv / base:.2f}")


if __name__ == "__main__":
    main()
