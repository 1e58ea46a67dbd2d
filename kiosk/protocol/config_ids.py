"""Identifier syntax shared by config, entries and topics: `[a-z0-9-]{1,32}` (DESIGN §7)."""
from __future__ import annotations

import re

from kiosk.errors import ConfigError

ID_RE = re.compile(r"[a-z0-9-]{1,32}\Z")  # \Z, not $: "$" also matches before a final newline


def check_id(value: str, what: str) -> str:
    """Return `value` if it is a valid site/kiosk id, else raise ConfigError naming `what`."""
    if not isinstance(value, str) or not ID_RE.match(value):
        raise ConfigError(f"{what} must match [a-z0-9-]{{1,32}}")
    return value
