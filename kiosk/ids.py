"""Identifier syntax shared by config, entries and topics: `[a-z0-9-]{1,32}` (docs/design-notes.md)."""
from __future__ import annotations

import re

from kiosk.errors import ConfigError

ID_RE = re.compile(r"[a-z0-9-]{1,32}\Z")  # \Z, not $: "$" also matches before a final newline


def check_id(value: str, what: str) -> str:
    """Return `value` if it is a valid site/kiosk id, else raise ConfigError naming `what`."""
    if not isinstance(value, str) or not ID_RE.match(value):
        raise ConfigError(f"{what} must match [a-z0-9-]{{1,32}}")
    return value


def reserved_id(value: str) -> bool:
    """Kiosk ids share the broker's namespace with its services (the certificate's CN is the
    MQTT username and client id): `gateway`, `gateway-*`, `issuer` and `auditor` are never
    kiosks."""
    return value in ("gateway", "issuer", "auditor") or value.startswith("gateway-")
