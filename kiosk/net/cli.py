"""`kiosk outbox`: what the kiosk's outbox holds, for staff and IT — counts, ages, hash
prefixes and reasons only, never a body or a presentation (no PHI). Every text that came
from the network is printed with its control characters escaped.

`kiosk outbox clear-alarm ID --reason TEXT`: IT reviewed an alarm. It is marked cleared (its
evidence is kept) and the clearing is itself a kiosk-event entry, signed by the kiosk key and
queued for the log in the same transaction, so the log shows who cleared what and why.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.config import Config
    from kiosk.net.outbox import Outbox


def register(subparsers: Any) -> None:
    """Add `outbox` to the `kiosk` parser."""
    p = subparsers.add_parser("outbox", help="outbox depth, parked entries, trust state, alarms")
    p.add_argument("--config", type=Path, default=None, help="config file (default /etc/kiosk/kiosk.toml)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--retry-parked", action="store_true",
                   help="send the parked records again (once the cause, e.g. registration, is fixed)")
    p.add_argument("--witness-note", type=Path, metavar="FILE",
                   help="write this kiosk's newest accepted checkpoint, cosigned by it, to FILE "
                        "(for kiosk ledger verify --witnesses FILE)")
    p.set_defaults(func=cmd_outbox)
    sub = p.add_subparsers(dest="outbox_command", metavar="ACTION")
    c = sub.add_parser("clear-alarm", help="clear a reviewed alarm; the clearing is logged as a "
                                           "kiosk-event entry")
    c.add_argument("alarm_id", type=int, metavar="ID", help="the alarm's id (kiosk outbox lists it)")
    c.add_argument("--reason", required=True, help="what the review found (no personal data)")
    # SUPPRESS: given before or after the action, the parent's value is not overwritten
    c.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")
    c.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    c.set_defaults(func=cmd_clear_alarm)


def outbox_report(outbox: object, now: float | None = None) -> dict[str, Any]:
    """The PHI-free summary `kiosk outbox` prints (also for `kiosk doctor`)."""
    from kiosk.net.outbox import Outbox
    from kiosk.net.receipt import escape

    assert isinstance(outbox, Outbox)
    now = now or time.time()
    cp = outbox.last_checkpoint()
    refused = outbox.refusals()
    return {
        "depth": outbox.depth(),
        "oldest_age_s": outbox.oldest_age_s(now),
        "parked": [{"entry": p.entry_hash[:8].hex(), "reason": escape(p.reason or ""),
                    "age_s": round(now - p.created, 1), "attempts": p.attempts}
                   for p in outbox.parked()],
        "last_checkpoint_size": cp.size if cp else None,
        "alarms": [{"id": a.id, "kind": a.kind, "detail": escape(a.detail, 500),
                    "age_s": round(now - a.at, 1), "repeats": a.repeats,
                    "evidence": len(a.evidence)}
                   for a in outbox.alarms()],
        "refused_receipts": len(refused),
        "last_refused": ({"kind": refused[-1].kind, "detail": escape(refused[-1].detail),
                          "age_s": round(now - refused[-1].at, 1)} if refused else None),
    }


def _open(args: argparse.Namespace) -> tuple[Config, Path, Outbox]:
    from kiosk import config
    from kiosk.errors import NoInputError
    from kiosk.net.outbox import Outbox

    cfg = config.load(args.config)
    path = cfg.state_path(cfg.outbox.path)
    if not path.exists():  # as `ledger verify` with no log store: the input is not there (66)
        raise NoInputError(f"outbox {path}: not found (the kiosk has not run with this config yet)")
    return cfg, path, Outbox(path)


def cmd_outbox(args: argparse.Namespace) -> int:
    """Print the report; exit 0 when healthy, 1 with parked entries or alarms."""
    cfg, path, ob = _open(args)
    with ob:
        if args.retry_parked:
            print(f"{ob.unpark()} parked records queued again; the running kiosk sends them")
        if args.witness_note is not None:
            _write_witness_note(cfg, ob, args.witness_note)
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
            extra = f", seen {a['repeats']} more times" if a["repeats"] else ""
            print(f"    #{a['id']} {a['kind']}: {a['detail']} ({_age(a['age_s'])} ago, "
                  f"{a['evidence']} signed checkpoints kept{extra}); after review: "
                  f"kiosk outbox clear-alarm {a['id']} --reason ...")
        if rep["refused_receipts"]:
            last = rep["last_refused"]
            print(f"  refused receipts (forged or malformed): {rep['refused_receipts']}, newest "
                  f"{last['kind']}: {last['detail']} ({_age(last['age_s'])} ago)")
    return 1 if rep["parked"] or rep["alarms"] else 0


def _write_witness_note(cfg: Any, ob: Any, out: Path) -> None:
    from kiosk.errors import CannotCreateError, StoreError
    from kiosk.ledger.witness import cosign, witness_name
    from kiosk.protocol.keys import load_signing_key

    head = ob.last_checkpoint()
    if head is None:
        raise StoreError("no accepted checkpoint yet: nothing to cosign")
    note = cosign(head.note, witness_name(cfg.keys.log_name, cfg.kiosk.id),
                  load_signing_key(cfg.keys.kiosk_key), int(time.time()))
    try:
        out.write_bytes(note)
    except OSError as e:
        raise CannotCreateError(f"cannot write {out}: {e.strerror}") from None
    print(f"cosigned checkpoint of size {head.size} written to {out}")


def clearing_record(cfg: Any, alarm: Any, reason: str) -> tuple[bytes, bytes, None]:
    """The kiosk-event entry that logs an alarm's clearing: (leaf, body, no presentation)."""
    import hashlib

    from kiosk.protocol import entry
    from kiosk.protocol.keys import load_signing_key

    key = load_signing_key(cfg.keys.kiosk_key)
    body, bh = entry.make_body({
        "event": "alarm-cleared", "alarm": alarm.kind, "alarm_id": alarm.id,
        "raised_at": int(alarm.at), "reason": reason,
        "evidence": [hashlib.sha256(n).digest() for n in alarm.evidence]})
    env = entry.new_envelope("kiosk-event", site=cfg.kiosk.site, kiosk=cfg.kiosk.id,
                             body_hash=bh, created_ms=int(time.time() * 1000))
    return entry.sign_leaf(env, key), body, None


def cmd_clear_alarm(args: argparse.Namespace) -> int:
    """`kiosk outbox clear-alarm ID --reason TEXT`."""
    from kiosk.errors import NoInputError, UsageError
    from kiosk.protocol.entry import entry_hash

    reason = args.reason.strip()
    if not reason or not reason.isprintable():
        raise UsageError("--reason must be one line of printable text")
    cfg, _, ob = _open(args)
    with ob:
        alarm = ob.alarm(args.alarm_id)
        if alarm is None or alarm.cleared_at is not None:
            raise NoInputError(f"no alarm {args.alarm_id} waiting to be cleared (kiosk outbox lists them)")
        record = clearing_record(cfg, alarm, reason)
        ob.clear_alarm(alarm.id, reason, record)
    h = entry_hash(record[0])
    if args.json:
        print(json.dumps({"cleared": alarm.id, "kind": alarm.kind, "entry": h.hex()}, indent=2))
    else:
        print(f"alarm #{alarm.id} ({alarm.kind}) cleared; evidence kept; the clearing goes to "
              f"the log as kiosk-event entry {h[:8].hex()}")
    return 0


def _age(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
