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

from kiosk.hardware.nfc.demo_wallet import DemoWallet  # noqa: E402
from kiosk.hardware.nfc.emulator import Pn532Emulator, phone_card, type4_card  # noqa: E402
from kiosk.hardware.nfc.reader import NfcReader  # noqa: E402


def run(baud: int, size: int, runs: int, kind: str) -> None:
    wallet = DemoWallet(os.urandom(size))
    with Pn532Emulator(baud) as emu:
        emu.place(phone_card(wallet) if kind == "phone" else type4_card(wallet.pass_bytes))
        with NfcReader(emu.path, baud, timeout=2.0) as reader:
            reader.wait_for_credential(5)  # warm-up
            times, floors = [], []
            for _ in range(runs):
                before = emu.counters.bytes_in + emu.counters.bytes_out
                t0 = time.perf_counter()
                cred = reader.wait_for_credential(5)
                assert cred is not None and len(cred.pass_bytes) == size
                if kind == "phone":
                    cred.sign_presentation("clinic", "kiosk-1", os.urandom(16))
                elapsed = time.perf_counter() - t0
                wire = emu.counters.bytes_in + emu.counters.bytes_out - before
                times.append(elapsed)
                floors.append(wire * 10 / baud)
    med, floor = statistics.median(times), statistics.median(floors)
    what = "read pass + sign challenge" if kind == "phone" else "read pass (Type 4 NDEF)"
    print(f"{kind:5} {what:28} pass={size} B  baud={baud}  runs={runs}")
    print(f"      wire bytes/run={int(floor * baud / 10)}  UART floor={floor * 1000:7.1f} ms  "
          f"measured median={med * 1000:7.1f} ms (min {min(times) * 1000:.1f}, "
          f"max {max(times) * 1000:.1f})  ratio={med / floor:.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--size", type=int, default=800, help="pass size in bytes (COSE)")
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    for kind in ("phone", "card"):
        run(a.baud, a.size, a.runs, kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
