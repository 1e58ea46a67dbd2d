"""NFC benchmark: read a realistic pass and get a challenge signed, through the emulator.

Prints, per run, the wall time of `wait_for_credential` + `sign_presentation` at the given
baud rate beside the UART's physical floor for the same bytes (bytes on both wires x 10
bits / baud: the PN532 link is half-duplex in practice, so the two directions add up), and
the ratio. The emulator paces both directions at the baud rate (its output as it writes,
the host's bytes as it reads them), so the floor is what the wire itself costs and the
rest is protocol turnaround, Python and the pty.

    .venv/bin/python benchmarks/nfc_bench.py [--baud 115200] [--size 800] [--runs 10]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kiosk.hardware.nfc.emulator import Pn532Emulator, phone_card, type4_card  # noqa: E402
from kiosk.hardware.nfc.reader import NfcReader  # noqa: E402
from kiosk.protocol import patient_pass  # noqa: E402
from kiosk.wallet.wallet import Wallet  # noqa: E402


def real_wallet(size: int) -> Wallet:
    """A wallet holding a real signed pass (with a sealed template), padded to `size` bytes
    of issuer name only if a larger pass is asked for."""
    from nacl.public import PrivateKey
    from nacl.signing import SigningKey

    wallet = Wallet.create()
    issuer, sealing = SigningKey.generate(), PrivateKey.generate()
    name = "clinic-issuer"
    for _ in range(2):
        raw = patient_pass.issue(issuer, issuer=name, site="clinic", patient=patient_pass.new_patient_id(),
                                 patient_key=wallet.public_key, template=os.urandom(256),
                                 sealing_keys=[sealing.public_key], now=int(time.time()), valid_s=86400)
        if len(raw) >= size:
            break
        name += "x" * (size - len(raw))
    wallet.store_pass(raw)
    return wallet


def run(baud: int, size: int, runs: int, kind: str) -> None:
    wallet = real_wallet(size)
    with Pn532Emulator(baud) as emu:
        emu.place(phone_card(wallet) if kind == "phone" else type4_card(wallet.pass_bytes))
        with NfcReader(emu.path, baud, timeout=2.0) as reader:
            reader.wait_for_credential(5)  # warm-up
            times, floors = [], []
            for _ in range(runs):
                before = emu.counters.bytes_in + emu.counters.bytes_out
                t0 = time.perf_counter()
                cred = reader.wait_for_credential(5)
                assert cred is not None and cred.pass_bytes == wallet.pass_bytes
                if kind == "phone":
                    cred.sign_presentation("clinic", "kiosk-1", os.urandom(16))
                elapsed = time.perf_counter() - t0
                wire = emu.counters.bytes_in + emu.counters.bytes_out - before
                times.append(elapsed)
                floors.append(wire * 10 / baud)
    med, floor = statistics.median(times), statistics.median(floors)
    what = "read pass + sign challenge" if kind == "phone" else "read pass (Type 4 NDEF)"
    print(f"{kind:5} {what:28} pass={len(wallet.pass_bytes)} B  baud={baud}  runs={runs}")
    print(f"      wire bytes/run={int(floor * baud / 10)}  UART floor={floor * 1000:7.1f} ms  "
          f"measured median={med * 1000:7.1f} ms (min {min(times) * 1000:.1f}, "
          f"max {max(times) * 1000:.1f})  ratio={med / floor:.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--size", type=int, default=0, help="pad the real pass to at least this many bytes")
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    for kind in ("phone", "card"):
        run(a.baud, a.size, a.runs, kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
