"""The `kiosk` command line: one command, a subcommand per job.

Each subcommand lives beside the code it drives, in a module with
`register(subparsers) -> None` that adds its parser and sets `func=handler(args) -> int`.
Modules import heavy libraries (dlib, cv2, paho) inside their handlers so `kiosk --help`
stays fast.

Conventions every subcommand gets from here (README.md, "Exit codes"):
  - a KioskError becomes one line on stderr (`kiosk: ...`) and its sysexits code; an
    OSError on a file the user named is translated the same way; a usage mistake is one
    line and 64; anything else is a bug: one line and 70 (`-v` shows the traceback);
  - `--version` and `-v` work on every subcommand, and an option of a command group
    (`kiosk issuer --dir D`) is accepted after its subcommands too (`kiosk issuer enroll --dir D`).
"""
from __future__ import annotations

import argparse
import copy
import importlib
import sys
import traceback
from typing import NoReturn

from kiosk import __version__
from kiosk.errors import KioskError, UsageError, from_os_error

SOFTWARE_ERROR = 70  # EX_SOFTWARE: a bug, not the user's mistake

# subcommand module paths, in the order `kiosk --help` lists them
COMMAND_MODULES = [
    "kiosk.app.cli",      # run, demo
    "kiosk.doctor",           # doctor
    "kiosk.provision",        # provision
    "kiosk.issuer.cli",       # issuer init|enroll|revoke
    "kiosk.wallet.cli",       # wallet
    "kiosk.passcheck.cli",    # pass verify
    "kiosk.gateway.ledger_cli",       # ledger verify|prove|checkpoint|history|consent-check
    "kiosk.gateway.cli",  # gateway run|kiosk add|list|revoke
    "kiosk.net.cli",          # outbox
    "kiosk.net.ca_cli",       # ca init|issue|revoke|crl|list
    "kiosk.hardware.nfc.cli",  # nfc (emulator, probe)
    "kiosk.vision.cli",       # face compare|enroll|evaluate
    "kiosk.vision.liveness.cli",  # liveness eval
    "kiosk.ui.cli",           # ui screens|audio
    "kiosk.staff.cli",        # staff add|list|disable|enable|reset
]


class _Parser(argparse.ArgumentParser):
    """argparse with the project's convention for usage errors: one line, exit 64 (EX_USAGE)."""

    def error(self, message: str) -> NoReturn:
        self.exit(UsageError.exit_code, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kiosk", description="Clinic check-in kiosk")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # a part not built yet; its siblings still work
                continue
            raise
        module.register(sub)
    _inherit_options(parser, [])
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.extend(dict.fromkeys(action.choices.values()))  # aliases share a parser
    return out


def _inherit_options(parser: argparse.ArgumentParser, inherited: list[argparse.Action]) -> None:
    """Give every subcommand its ancestors' options, so each is accepted in one place: after
    the last subcommand. The copies default to SUPPRESS, so an option given earlier on the
    line is not overwritten by the subcommand's default."""
    own = {s for a in parser._actions for s in a.option_strings}
    for action in inherited:
        if own.isdisjoint(action.option_strings):
            twin = copy.copy(action)
            twin.default = argparse.SUPPRESS
            twin.required = False
            parser._add_action(twin)
            own.update(action.option_strings)
    passed = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    for child in _subparsers(parser):
        _inherit_options(child, passed)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version (0) and usage errors (64): a code, not an exit
        return e.code if isinstance(e.code, int) else UsageError.exit_code
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return UsageError.exit_code
    from kiosk.log import setup_logging

    verbose = bool(getattr(args, "verbose", False))
    setup_logging(verbose=verbose)
    try:
        return int(args.func(args) or 0)
    except KioskError as e:
        return _fail(e)
    except OSError as e:  # a file the user named: missing, unreadable, not creatable
        return _fail(from_os_error(e))
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - a bug: say so in one line; -v shows where
        if verbose:
            traceback.print_exc()
        print(f"kiosk: internal error ({type(e).__name__}); this is a bug — run with -v for the "
              "traceback", file=sys.stderr)
        return SOFTWARE_ERROR


def _fail(e: KioskError) -> int:
    print(f"kiosk: {_one_line(e.message)}", file=sys.stderr)
    return e.exit_code


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
