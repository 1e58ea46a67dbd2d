"""`kiosk staff add|list|disable|enable|reset`: who may use staff mode on this kiosk.

Run on the kiosk by an administrator (root or the kiosk user). PINs are read from standard
input (one line) or asked for twice on a terminal; they are never arguments (shell history).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from kiosk.errors import UsageError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "staff",
        help="staff members of this kiosk: add, list, disable, reset",
        description="Manage who may sign in to staff mode (badge + PIN).",
    )
    p.add_argument("--config", type=Path, default=None, help="config file (default /etc/kiosk/kiosk.toml)")
    sub = p.add_subparsers(dest="staff_command", metavar="SUBCOMMAND", required=True)
    a = sub.add_parser("add", help="add a staff member (PIN from stdin or asked twice)")
    a.add_argument("staff_id", help="pseudonymous id the ledger names, e.g. s-0042 (no names)")
    a.add_argument("--badge", required=True, help="the badge's UID in hex (as `kiosk nfc probe` shows it)")
    a.add_argument("--name", default="", help="display name, kept on this kiosk only")
    a.add_argument("--admin", action="store_true", help="an administrator")
    a.set_defaults(func=cmd_add)
    ls = sub.add_parser("list", help="list staff members and lock-outs")
    ls.add_argument("--json", action="store_true", help="as JSON")
    ls.set_defaults(func=cmd_list)
    for name, helptext in (("disable", "stop a member signing in"), ("enable", "allow a member again")):
        d = sub.add_parser(name, help=helptext)
        d.add_argument("staff_id")
        d.set_defaults(func=cmd_flag, flag=name)
    r = sub.add_parser("reset", help="administrator reset: lift a lock-out (and optionally set a new PIN)")
    r.add_argument("staff_id")
    r.add_argument("--new-pin", action="store_true", help="also set a new PIN (stdin or asked twice)")
    r.set_defaults(func=cmd_reset)


def _store(args: argparse.Namespace) -> Any:
    from kiosk import config
    from kiosk.staff.store import LockoutPolicy, StaffStore

    cfg = config.load(args.config)
    st = cfg.staff
    return StaffStore(
        cfg.state_path(st.path), LockoutPolicy(st.free_tries, st.lockout_base_s, st.lockout_max_s)
    )


def _read_pin() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    a = getpass.getpass("PIN (4-8 digits): ")
    if getpass.getpass("PIN again: ") != a:
        raise UsageError("the two PINs differ")
    return a


def cmd_add(args: argparse.Namespace) -> int:
    try:
        uid = bytes.fromhex(args.badge.replace(":", ""))
    except ValueError:
        raise UsageError("--badge: expected the UID in hex, e.g. 04a1b2c3d4e5f6") from None
    store = _store(args)
    try:
        store.add(args.staff_id, args.name, uid, _read_pin(), "admin" if args.admin else "staff")
    finally:
        store.close()
    print(f"staff member {args.staff_id} added")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    import time

    store = _store(args)
    try:
        members = store.members()
    finally:
        store.close()
    now = time.time()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "staff_id": m.staff_id,
                        "name": m.name,
                        "role": m.role,
                        "active": m.active,
                        "failures": m.failures,
                        "locked_s": max(0, round(m.locked_until - now)),
                    }
                    for m in members
                ]
            )
        )
        return 0
    for m in members:
        lock = f", locked {int(m.locked_until - now)} s more" if m.locked_until > now else ""
        print(
            f"{m.staff_id}  {m.role:5s}  {'active' if m.active else 'disabled'}  "
            f"{m.failures} wrong PINs{lock}  {m.name}"
        )
    if not members:
        print("no staff members")
    return 0


def cmd_flag(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        (store.disable if args.flag == "disable" else store.enable)(args.staff_id)
    finally:
        store.close()
    print(f"staff member {args.staff_id} {args.flag}d")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        store.reset(args.staff_id, _read_pin() if args.new_pin else None)
    finally:
        store.close()
    print(f"staff member {args.staff_id}: lock-out lifted" + (", new PIN set" if args.new_pin else ""))
    return 0
