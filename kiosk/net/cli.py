"""`kiosk outbox`: what the kiosk's outbox holds, for staff and IT — counts, ages, hash
prefixes and reasons only, never a body or a presentation (no PHI)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add `outbox` to the `kiosk` parser."""
    p = subparsers.add_parser("outbox", help="outbox depth, parked entries, trust state, alarms")
    p.add_argument("--config", type=Path, default=None, help="config file (default /etc/kiosk/kiosk.toml)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--retry-parked", action="store_true",
                   help="send the parked records again (once the cause, e.g. registration, is fixed)")
    p.set_defaults(func=cmd_outbox)


def outbox_report(outbox: "object", now: float | None = None) -> dict[str, Any]:
    """The PHI-free summary `kiosk outbox` prints (also for `kiosk doctor`)."""
    from kiosk.net.outbox import Outbox

    assert isinstance(outbox, Outbox)
    now = now or time.time()
    cp = outbox.last_checkpoint()
    return {
        "depth": outbox.depth(),
        "oldest_age_s": outbox.oldest_age_s(now),
        "parked": [{"entry": p.entry_hash[:8].hex(), "reason": p.reason,
                    "age_s": round(now - p.created, 1), "attempts": p.attempts}
                   for p in outbox.parked()],
        "last_checkpoint_size": cp.size if cp else None,
        "alarms": [{"kind": a.kind, "detail": a.detail, "age_s": round(now - a.at, 1)}
                   for a in outbox.alarms()],
    }


def cmd_outbox(args: argparse.Namespace) -> int:
    """Print the report; exit 0 when healthy, 1 with parked entries or alarms."""
    from kiosk import config
    from kiosk.net.outbox import Outbox

    cfg = config.load(args.config)
    path = cfg.state_path(cfg.outbox.path)
    if not path.exists():
        from kiosk.errors import StoreError

        raise StoreError(f"outbox {path}: not found")
    with Outbox(path) as ob:
        if args.retry_parked:
            print(f"{ob.unpark()} parked records queued again; the running kiosk sends them")
        rep = outbox_report(ob)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        age = rep["oldest_age_s"]
        print(f"outbox {path}")
        print(f"  waiting for a receipt: {rep['depth']}"
              + (f" (oldest {_age(age)})" if age is not None else ""))
        cp = rep["last_checkpoint_size"]
        print(f"  last accepted checkpoint: {'none yet' if cp is None else f'size {cp}'}")
        print(f"  parked (rejected by the gateway): {len(rep['parked'])}")
        for p in rep["parked"]:
            print(f"    {p['entry']}  {p['reason']}  {_age(p['age_s'])} old, {p['attempts']} sends")
        print(f"  alarms: {len(rep['alarms'])}")
        for a in rep["alarms"][-10:]:
            print(f"    {a['kind']}: {a['detail']} ({_age(a['age_s'])} ago)")
    return 1 if rep["parked"] or rep["alarms"] else 0


def _age(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
