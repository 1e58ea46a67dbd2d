"""`kiosk nfc probe` (used by `kiosk doctor`) and `kiosk nfc emulate`."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `nfc probe` and `nfc emulate`."""
    nfc = subparsers.add_parser("nfc", help="NFC reader: probe a PN532, run the emulator")
    sub = nfc.add_subparsers(dest="nfc_command", metavar="ACTION", required=True)

    probe = sub.add_parser("probe", help="print the PN532's firmware version (refused while "
                                         "another process, e.g. kiosk.service, holds the port)")
    probe.add_argument("--port", default=None, help="serial port (default: config nfc.port)")
    probe.add_argument("--baudrate", type=int, default=None)
    probe.add_argument("--timeout", type=float, default=None)
    probe.add_argument("--config", default=None, help="config file (default /etc/kiosk/kiosk.toml)")
    probe.set_defaults(func=_probe)

    emu = sub.add_parser("emulate", help="run a PN532 emulator on a pseudo-terminal")
    emu.add_argument("--baudrate", type=int, default=115200)
    emu.add_argument("--card", choices=("phone", "tag", "none"), default="phone",
                     help="what sits in the field: a phone (the wallet) or a Type 4 tag with its pass")
    emu.add_argument("--wallet", required=True, help="an enrolled wallet folder (kiosk wallet create + issuer enroll)")
    emu.add_argument("--link", default=None, help="also make this symlink to the pty")
    emu.set_defaults(func=_emulate)


def _probe(args: argparse.Namespace) -> int:
    from kiosk.hardware.nfc.reader import NfcReader

    port, baud, timeout = args.port, args.baudrate, args.timeout
    if port is None or baud is None or timeout is None:
        from kiosk import config

        cfg = config.load(args.config) if (args.config or port is None) else None
        nfc = cfg.nfc if cfg else config.NfcTable()
        port = port or nfc.port
        baud = baud or nfc.baudrate
        timeout = timeout or nfc.timeout_s
    with NfcReader(port, baud, timeout) as reader:
        print(f"{port}: {reader.firmware_version()}")
    return 0


def _emulate(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from kiosk.hardware.nfc.emulator import Pn532Emulator, phone_card, type4_card
    from kiosk.wallet.wallet import Wallet

    wallet = Wallet.load(Path(args.wallet))
    wallet.pass_bytes  # an unenrolled wallet is refused here, before the emulator starts
    emu = Pn532Emulator(args.baudrate, link=args.link)
    path = emu.start()
    if args.card == "phone":
        emu.place(phone_card(wallet))
    elif args.card == "tag":
        emu.place(type4_card(wallet.pass_bytes))
    print(path, flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        emu.stop()
