"""MQTT topic names (docs/design-notes.md).

Every part builds its topics here, so kiosk, gateway, issuer and the broker's ACL file agree.
Topics carry ids only (site, kiosk), never personal data.

    clinic/{site}/kiosk/{kiosk}/records     kiosk → gateway, QoS 1
    clinic/{site}/kiosk/{kiosk}/receipts    gateway → kiosk, QoS 1
    clinic/{site}/kiosk/{kiosk}/status      kiosk, retained, last will "offline"
    clinic/{site}/kiosk/{kiosk}/witness     kiosk, retained: its latest cosigned checkpoint
    clinic/{site}/ledger/checkpoint         gateway, retained
    clinic/{site}/ledger/witnessed          gateway, retained: a checkpoint with kiosks' cosignatures
    clinic/{site}/issuer/revocations        issuer, retained
"""
from __future__ import annotations

import re

from kiosk.errors import FormatError
from kiosk.ids import ID_RE

_ID = ID_RE
_RECORDS = re.compile(r"clinic/([a-z0-9-]{1,32})/kiosk/([a-z0-9-]{1,32})/records\Z")
_WITNESS = re.compile(r"clinic/([a-z0-9-]{1,32})/kiosk/([a-z0-9-]{1,32})/witness\Z")


def _check(what: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise FormatError(f"topic: {what} id must match [a-z0-9-]{{1,32}}")
    return value


def kiosk_base(site: str, kiosk: str) -> str:
    return f"clinic/{_check('site', site)}/kiosk/{_check('kiosk', kiosk)}"


def records(site: str, kiosk: str) -> str:
    """Where a kiosk publishes its record messages."""
    return kiosk_base(site, kiosk) + "/records"


def receipts(site: str, kiosk: str) -> str:
    """Where the gateway answers a kiosk."""
    return kiosk_base(site, kiosk) + "/receipts"


def status(site: str, kiosk: str) -> str:
    """A kiosk's retained status (last will "offline")."""
    return kiosk_base(site, kiosk) + "/status"


def witness(site: str, kiosk: str) -> str:
    """A kiosk's latest cosigned checkpoint (C2SP tlog-cosignature), retained."""
    return kiosk_base(site, kiosk) + "/witness"


def all_witness(site: str) -> str:
    """Filter matching every kiosk's witness topic (gateway, audits)."""
    return f"clinic/{_check('site', site)}/kiosk/+/witness"


def witnessed(site: str) -> str:
    """The newest checkpoint the gateway holds cosignatures for, with them, retained."""
    return f"clinic/{_check('site', site)}/ledger/witnessed"


def kiosk_of_witness(topic: str, site: str | None = None) -> str | None:
    """The kiosk id named by a witness topic, or None if `topic` is not one (of `site`)."""
    m = _WITNESS.match(topic) if isinstance(topic, str) else None
    if m is None or (site is not None and m.group(1) != site):
        return None
    return m.group(2)


def checkpoint(site: str) -> str:
    """The log's latest signed checkpoint, retained."""
    return f"clinic/{_check('site', site)}/ledger/checkpoint"


def revocations(site: str) -> str:
    """The issuer's signed revocation list, retained."""
    return f"clinic/{_check('site', site)}/issuer/revocations"


def all_records(site: str) -> str:
    """Filter matching every kiosk's records topic (ACLs, monitoring)."""
    return f"clinic/{_check('site', site)}/kiosk/+/records"


def all_receipts(site: str) -> str:
    """Filter matching every kiosk's receipts topic."""
    return f"clinic/{_check('site', site)}/kiosk/+/receipts"


def shared_records(site: str, group: str) -> str:
    """The gateways' shared subscription: each record goes to one member of `group`."""
    return f"$share/{_check('share group', group)}/{all_records(site)}"


def kiosk_of_records(topic: str, site: str | None = None) -> str | None:
    """The kiosk id named by a records topic, or None if `topic` is not one (of `site`)."""
    m = _RECORDS.match(topic) if isinstance(topic, str) else None
    if m is None or (site is not None and m.group(1) != site):
        return None
    return m.group(2)
