"""The `kiosk` command line: one command, a subcommand per job.

Each subcommand lives beside the code it drives, in a module with
`register(subparsers) -> None` that adds its parser and sets `func=handler(args) -> int`.
Modules import heavy libraries (dlib, cv2, paho) inside their handlers so `kiosk --help`
stays fast. A KioskError becomes one line on stderr and its exit code; a traceback is
only for bugs.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from kiosk.errors import KioskError

# subcommand module paths, in the order `kiosk --help` lists them
COMMAND_MODULES = [
    "kiosk.checkin.cli",      # run, demo
    "kiosk.doctor",           # doctor
    "kiosk.provision",        # provision
    "kiosk.issuer.cli",       # issuer init|enroll|revoke
    "kiosk.wallet.cli",       # wallet
    "kiosk.protocol.cli",     # pass verify
    "kiosk.gateway.ledger_cli",       # ledger verify|prove|checkpoint|history|consent-check
    "kiosk.gateway.cli",  # gateway run|kiosk add|list|revoke
    "kiosk.net.cli",          # outbox
    "kiosk.hardware.nfc.cli",  # nfc (emulator, probe)
    "kiosk.vision.cli",       # face compare|enroll|evaluate
    "kiosk.ui.cli",           # ui screens|audio
    "kiosk.staff.cli",        # staff add|list|disable|enable|reset
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Clinic check-in kiosk")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # a part not built yet; its siblings still work
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 64  # EX_USAGE
    from kiosk.log import setup_logging

    setup_logging(verbose=args.verbose)
    try:
        return int(args.func(args) or 0)
    except KioskError as e:
        print(f"kiosk: {e.message}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
