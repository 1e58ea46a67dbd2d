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

    emu = sub.add_parser("emulate", help="run a PN532 emulator on a pseudo-terminal (stops on SIGTERM "
                                         "or Ctrl-C, removing its --link)")
    emu.add_argument("--baudrate", type=int, default=115200)
    emu.add_argument("--card", choices=("phone", "tag", "type2", "none"), default="phone",
                     help="what sits in the field: a phone (the wallet), a Type 4 tag or an NTAG Type 2 "
                          "tag with the pass (a blank NTAG without --pass/--wallet, for write-card)")
    emu.add_argument("--wallet", help="an enrolled wallet folder (kiosk wallet create + issuer enroll)")
    emu.add_argument("--pass", dest="pass_file", help="a card pass (pass.cose from issuer enroll --card) "
                                                      "for --card tag|type2")
    emu.add_argument("--model", choices=("NTAG213", "NTAG215", "NTAG216"), default="NTAG216", help="with --card type2")
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
    import signal
    import threading
    from pathlib import Path

    from kiosk.errors import KioskError, from_os_error
    from kiosk.hardware.nfc.emulator import Pn532Emulator, phone_card, type2_card, type4_card
    from kiosk.protocol import patient_pass
    from kiosk.wallet.wallet import Wallet

    pass_bytes: bytes | None = None
    wallet = None
    if args.pass_file:
        try:
            pass_bytes = Path(args.pass_file).read_bytes()
        except OSError as e:
            raise from_os_error(e, str(args.pass_file)) from None
        patient_pass.decode(pass_bytes)  # FormatError names what is wrong
    elif args.wallet:
        wallet = Wallet.load(Path(args.wallet))
        pass_bytes = wallet.pass_bytes  # an unenrolled wallet is refused here, before the emulator starts
    if args.card == "phone" and wallet is None:
        raise KioskError("--card phone needs --wallet")
    if args.card == "tag" and pass_bytes is None:
        raise KioskError("--card tag needs --pass (a card pass) or --wallet")
    stop = threading.Event()
    # SIGTERM (systemd, a test harness) ends it like Ctrl-C: the pty closes and the link goes
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    emu = Pn532Emulator(args.baudrate, link=args.link)
    path = emu.start()
    try:
        if args.card == "phone":
            emu.place(phone_card(wallet))
        elif args.card == "tag":
            emu.place(type4_card(pass_bytes))  # type: ignore[arg-type]
        elif args.card == "type2":
            emu.place(type2_card(pass_bytes, args.model))
        print(path, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0
