"""Argument types shared by the subcommands: a malformed value is a usage error (exit 64, one
line naming the option), caught by argparse before any work starts; and reading the files
the user named, with the error translated the same way."""
from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

from kiosk.errors import from_os_error
from kiosk.ids import ID_RE


def positive_int(text: str) -> int:
    """An integer >= 1 (days of validity, worker counts)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def valid_days(text: str) -> int:
    """Days a pass is valid: at least one, so no pass is issued already expired."""
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r}: a pass must be valid for at least 1 day") from None


def positive_float(text: str) -> float:
    """A number > 0 (hours until the next revocation list, timeouts)."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError("must be a number greater than 0")
    return x


def port_number(text: str) -> int:
    """A TCP port, 1..65535."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1..65535)")
    return int(text)


def host_port(text: str) -> tuple[str, int]:
    """HOST:PORT with a port in 1..65535."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def entity_id(text: str) -> str:
    """A site or kiosk id: [a-z0-9-]{1,32} (the MQTT client id and certificate CN)."""
    if not ID_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} must match [a-z0-9-]{{1,32}}")
    return text


def hex_id(text: str) -> bytes:
    """A pass id: 8 to 32 bytes in hex (what `kiosk wallet show` prints)."""
    try:
        b = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hex") from None
    if not 8 <= len(b) <= 32:
        raise argparse.ArgumentTypeError("a pass id is 8 to 32 bytes (16 to 64 hex digits)")
    return b


def read_input_file(path: Path) -> bytes:
    """The bytes of a file the user named; missing or unreadable is one line and its code."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise from_os_error(e, str(path)) from None


@contextlib.contextmanager
def output_file(path: Path) -> Iterator[None]:
    """Around writing a file the user named: a failure is one line, 73 (cannot create) or 77."""
    try:
        yield
    except OSError as e:
        raise from_os_error(e, str(path), output=True) from None
