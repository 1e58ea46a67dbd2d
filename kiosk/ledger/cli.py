"""`kiosk ledger verify|prove|checkpoint`: audit a log store from the command line.

The store comes from `--db FILE` (a SQLite log) or from `--config FILE` (`[gateway]` table);
the log's verifier key from `--vkey TEXT`, or from the config's `keys.log_public` and
`keys.log_name`. (`history` and `consent-check` come later, built on kiosk.ledger.audit.)
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError, LogIntegrityError, StoreError


def register(subparsers: Any) -> None:
    """Add `ledger` and its subcommands to the `kiosk` parser."""
    ledger = subparsers.add_parser("ledger", help="audit the Merkle log (verify, prove, checkpoint)")
    sub = ledger.add_subparsers(dest="ledger_command", metavar="SUBCOMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        src = p.add_mutually_exclusive_group()
        src.add_argument("--config", type=Path, help="kiosk.toml ([gateway] names the store)")
        src.add_argument("--db", type=Path, help="a SQLite log file, instead of --config")
        p.add_argument("--vkey", help="log verifier key text name+keyid+base64key")
        p.add_argument("--origin", help="expected checkpoint origin (default: keys.log_name)")
        p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("verify", help="recompute the tree from the stored leaves; name any change")
    common(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("prove", help="inclusion (and consistency) proof for one entry")
    common(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=int, help="leaf index")
    which.add_argument("--entry-hash", help="hex SHA-256 of the leaf bytes")
    p.add_argument("--size", type=int, help="tree size (default: now)")
    p.add_argument("--from", dest="from_size", type=int, help="also prove consistency from this size")
    p.set_defaults(func=cmd_prove)

    p = sub.add_parser("checkpoint", help="print the latest checkpoint, or sign a new one")
    common(p)
    p.add_argument("--sign", action="store_true", help="sign and save a checkpoint for the current size")
    p.add_argument("--key", type=Path, help="log private key (PKCS#8 PEM; default gateway.log_key)")
    p.set_defaults(func=cmd_checkpoint)
    ledger.set_defaults(func=lambda args: (ledger.print_help(), 64)[1])


# ---------------------------------------------------------------------------- resolving

class _Context:
    """The store, verifier and origin the arguments name."""

    def __init__(self, args: argparse.Namespace) -> None:
        from kiosk.ledger.checkpoint import parse_verifier_key

        self.cfg = None
        self.verifier = None
        self.origin = args.origin
        if args.db is not None:
            if not args.db.is_file():
                raise StoreError(f"no log store at {args.db}")
            from kiosk.ledger.sqlite_store import SqliteLogStore

            self.store = SqliteLogStore(args.db)
        else:
            from kiosk import config
            from kiosk.ledger.store import open_store

            self.cfg = config.load(args.config)
            gw = self.cfg.gateway
            path = self.cfg.state_path(gw.sqlite_path)
            if gw.store == "sqlite" and not path.is_file():
                raise StoreError(f"no log store at {path}")
            self.store = open_store(gw, sqlite_path=str(path))
            if self.origin is None:
                self.origin = self.cfg.keys.log_name
            if args.vkey is None and self.cfg.keys.log_public.is_file():
                from kiosk.ledger.checkpoint import NoteVerifier
                from kiosk.protocol.keys import load_verify_key

                self.verifier = NoteVerifier(self.cfg.keys.log_name,
                                             load_verify_key(self.cfg.keys.log_public))
        if args.vkey is not None:
            self.verifier = parse_verifier_key(args.vkey)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


# ---------------------------------------------------------------------------- handlers

def cmd_verify(args: argparse.Namespace) -> int:
    """`kiosk ledger verify`: exit 0 if the log is intact, else name every problem and fail."""
    from kiosk.ledger.audit import verify_log

    ctx = _Context(args)
    try:
        report = verify_log(ctx.store, ctx.verifier, ctx.origin)
    finally:
        ctx.store.close()
    cp = report.checkpoint
    if args.json:
        print(json.dumps({
            "ok": report.ok, "entries": report.entries, "root": _b64(report.root),
            "checkpoint_size": cp.size if cp else None,
            "checkpoint_verified": report.checkpoint_verified,
            "findings": [f.__dict__ for f in report.findings],
            "suppressed": report.suppressed}, indent=2))
    else:
        for f in report.findings:
            print(f"FAIL {f.kind}: {f.detail}")
        for kind, n in report.suppressed.items():
            print(f"FAIL {kind}: ... and {n} more")
        if cp is None:
            print("note: no checkpoint saved yet", file=sys.stderr)
        elif not report.checkpoint_verified and report.ok:
            print("note: no log key given; checkpoint signature not checked", file=sys.stderr)
        if report.ok:
            print(f"ok: {report.entries} entries, root {_b64(report.root)}"
                  + (f", checkpoint at size {cp.size} matches" if cp else ""))
    if not report.ok:
        raise LogIntegrityError(f"log verification failed: {len(report.findings)} problem(s), "
                                f"first: {report.findings[0].kind}",
                                reason=report.findings[0].kind)
    return 0


def cmd_prove(args: argparse.Namespace) -> int:
    """`kiosk ledger prove`: print an entry's proofs as JSON (base64 hashes)."""
    from kiosk.ledger.audit import prove_entry

    ctx = _Context(args)
    try:
        index = args.index
        if index is None:
            try:
                entry_hash = bytes.fromhex(args.entry_hash)
            except ValueError:
                raise KioskError("--entry-hash must be hex") from None
            index = ctx.store.find(entry_hash)
            if index is None:
                raise StoreError("no entry with that hash in the log")
        proof = prove_entry(ctx.store, index, args.size, args.from_size)
    finally:
        ctx.store.close()
    proof.verify()  # never hand out a proof that does not hold
    out = {"index": proof.index, "size": proof.size, "leaf_hash": _b64(proof.leaf_hash),
           "root": _b64(proof.root), "inclusion": [_b64(h) for h in proof.inclusion]}
    if proof.from_size is not None:
        out.update(from_size=proof.from_size, from_root=_b64(proof.from_root or b""),
                   consistency=[_b64(h) for h in proof.consistency or []])
    print(json.dumps(out, indent=2))
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    """`kiosk ledger checkpoint [--sign]`: print the latest signed checkpoint, or make one."""
    ctx = _Context(args)
    try:
        if args.sign:
            from kiosk.ledger.audit import make_checkpoint
            from kiosk.protocol.keys import load_signing_key

            key_path = args.key or (ctx.cfg.gateway.log_key if ctx.cfg else None)
            if key_path is None:
                raise KioskError("--sign needs --key or a --config with gateway.log_key")
            name = ctx.cfg.keys.log_name if ctx.cfg else (ctx.verifier.name if ctx.verifier else None)
            if name is None:
                raise KioskError("--sign needs the log's name: --config or --vkey")
            _, note = make_checkpoint(ctx.store, ctx.origin or name, name, load_signing_key(key_path))
        else:
            latest = ctx.store.latest_checkpoint()
            if latest is None:
                raise StoreError("no checkpoint saved yet")
            note = latest[1]
            if ctx.verifier is not None:
                from kiosk.ledger.checkpoint import open_checkpoint

                open_checkpoint(note, ctx.verifier, ctx.origin)
    finally:
        ctx.store.close()
    sys.stdout.write(note.decode("utf-8"))
    return 0
