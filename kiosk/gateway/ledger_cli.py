"""`kiosk ledger verify|prove|checkpoint`: audit a log store from the command line.

The store comes from `--db FILE` (a SQLite log) or from `--config FILE` (`[gateway]` table);
the log's verifier key from `--vkey TEXT`, or from the config's `keys.log_public` and
`keys.log_name`. `history` and `consent-check` (kiosk.ledger.consent_check) read one
patient's trail; with `--config` they also check the leaves' kiosk signatures against the
kiosk registry. `consent-check` exits 0 for permit and 3 for deny.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.errors import (
    EXIT_VERIFICATION_FAILED,
    FormatError,
    KioskError,
    NoInputError,
    UsageError,
    from_os_error,
)

if TYPE_CHECKING:
    from kiosk.ledger.store import LogStore


def register(subparsers: Any) -> None:
    """Add `ledger` and its subcommands to the `kiosk` parser."""
    ledger = subparsers.add_parser(
        "ledger", help="audit the Merkle log (verify, prove, checkpoint, history, consent-check)")
    sub = ledger.add_subparsers(dest="ledger_command", metavar="SUBCOMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        src = p.add_mutually_exclusive_group()
        src.add_argument("--config", type=Path, help="kiosk.toml ([gateway] names the store)")
        src.add_argument("--db", type=Path, help="a SQLite log file, instead of --config")
        p.add_argument("--vkey", help="log verifier key text name+keyid+base64key")
        p.add_argument("--origin", help="expected checkpoint origin (default: keys.log_name)")
        p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("verify", help="check leaves, signatures, bodies and every checkpoint; "
                                      "compare with witnessed checkpoints; name any change "
                                      "(exit 0 intact, 1 tampering found)")
    common(p)
    p.add_argument("--witnesses", action="append", metavar="SOURCE", default=[],
                   help="checkpoints cosigned by kiosks: 'broker' (their retained witness "
                        "topics, via [broker]) or a file or folder of cosigned notes; repeatable")
    p.add_argument("--cosigner", action="append", metavar="VKEY", default=[],
                   help="a witness key name+keyid+base64(0x04||key), besides the registry's kiosks")
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

    p = sub.add_parser("history", help="one patient's consent trail, in log order")
    common(p)
    p.add_argument("--patient", required=True, help="pseudonymous patient id (as in the leaves)")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("consent-check",
                       help="permit or deny from the patient's consent entries, with proofs "
                            "(exit 0 permit, 3 deny)")
    common(p)
    p.add_argument("--patient", required=True, help="pseudonymous patient id")
    p.add_argument("--actor", required=True, help="actor reference, e.g. Organization/clinic")
    p.add_argument("--action", required=True, help="consent action code, e.g. access")
    p.add_argument("--at", help="ISO 8601 time (default: now; without an offset: UTC)")
    p.add_argument("--purpose", help="purpose of use code, e.g. TREAT")
    p.set_defaults(func=cmd_consent_check)
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
                raise NoInputError(f"no log store at {args.db}")
            from kiosk.ledger.sqlite_store import SqliteLogStore

            self.store: LogStore = SqliteLogStore(args.db)
        else:
            from kiosk import config
            from kiosk.ledger.backends import open_store

            self.cfg = config.load(args.config)
            gw = self.cfg.gateway
            path = self.cfg.state_path(gw.sqlite_path)
            if gw.store == "sqlite" and not path.is_file():
                raise NoInputError(f"no log store at {path}")
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

EXIT_TAMPERED = EXIT_VERIFICATION_FAILED


def cmd_verify(args: argparse.Namespace) -> int:
    """`kiosk ledger verify`: exit 0 if the log is intact, 1 naming every problem otherwise.

    With --json the output is JSON whatever happens, errors included.
    """
    try:
        report, notes = _verify(args)
    except KioskError as e:
        if not args.json:
            raise
        print(json.dumps({"ok": False, "error": e.message, "reason": e.reason}, indent=2))
        return e.exit_code
    cp = report.checkpoint
    unc = report.uncovered
    if args.json:
        print(json.dumps({
            "ok": report.ok, "entries": report.entries, "root": _b64(report.root),
            "checkpoint_size": cp.size if cp else None,
            "checkpoint_verified": report.checkpoint_verified,
            "checkpoints_checked": report.checkpoints_checked,
            "leaves_checked": report.leaves_checked,
            "signatures_checked": report.signatures_checked,
            "bodies": {"ok": report.bodies_ok, "erased": report.erased_count,
                       "erased_indexes": report.bodies_erased},
            "uncovered": {"first": unc[0], "last": unc[1]} if unc else None,
            "witnesses": report.witnesses,
            "findings": [f.__dict__ for f in report.findings],
            "suppressed": report.suppressed, "notes": notes}, indent=2))
        return 0 if report.ok else EXIT_TAMPERED
    for f in report.findings:
        print(f"FAIL {f.kind}: {f.detail}")
    for kind, n in report.suppressed.items():
        print(f"FAIL {kind}: ... and {n} more")
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    if report.erased_count:
        shown = ", ".join(str(i) for i in report.bodies_erased[:10])
        more = "" if report.erased_count <= 10 else ", ..."
        print(f"erased: {report.erased_count} bodies erased under the retention policy "
              f"(leaves {shown}{more}); their leaves and proofs still stand")
    if unc:
        print(f"WARN uncovered: leaves {unc[0]}..{unc[1]} are under no signed checkpoint "
              "the store or a witness holds; nothing here can tell a rewritten tail from an "
              "honest one (use --witnesses)")
    for w in report.witnesses:
        print(f"witness {w['witness']}: size {w['size']} {w['state']}")
    if report.ok:
        what = [f"{report.entries} entries"]
        if report.leaves_checked:
            what.append("leaves canonical" + (", kiosk signatures verified"
                                              if report.signatures_checked else ""))
            what.append(f"{report.bodies_ok} bodies match")
        if cp:
            what.append(f"{report.checkpoints_checked} checkpoints consistent, newest at size "
                        f"{cp.size} matches" + (" (signatures verified)"
                                                if report.checkpoint_verified else ""))
        if report.witnesses:
            what.append(f"{len(report.witnesses)} witnessed checkpoints agree")
        print("ok: " + ", ".join(what) + f"; root {_b64(report.root)}")
    else:
        print(f"log verification failed: {len(report.findings)} problem(s), "
              f"first: {report.findings[0].kind}", file=sys.stderr)
    return 0 if report.ok else EXIT_TAMPERED


def _verify(args: argparse.Namespace):
    """Run the audit the arguments ask for; (report, notes for people)."""
    from kiosk.ledger.audit import verify_log

    ctx = _Context(args)
    notes: list[str] = []
    key_for, registry = _kiosk_keys(ctx)
    try:
        cosigners = _cosigners(ctx, args, registry)
        witnessed = _witnessed(ctx, args, cosigners, notes) if args.witnesses else []
        report = verify_log(ctx.store, ctx.verifier, ctx.origin, check_leaves=True,
                            kiosk_keys=key_for, witnessed=witnessed)
    finally:
        ctx.store.close()
        if registry is not None:
            registry.close()
    if report.checkpoint is None and report.checkpoints_checked == 0:
        notes.append("no checkpoint saved yet")
    elif ctx.verifier is None:
        notes.append("no log key given; checkpoint signatures not checked")
    if key_for is None:
        notes.append("no kiosk registry (--config with one); leaf signatures not checked")
    if not args.witnesses:
        notes.append("no witnesses given (--witnesses broker|PATH); a rolled-back store "
                     "shows only as uncovered leaves")
    return report, notes


def _cosigners(ctx: _Context, args: argparse.Namespace, registry) -> list:
    from kiosk.ledger.witness import Cosigner, parse_cosigner_key, witness_name

    out = [parse_cosigner_key(t) for t in args.cosigner]
    if registry is not None and ctx.origin:
        for rec in registry.list():
            name = witness_name(ctx.origin, rec.kiosk_id)
            out += [Cosigner(name, k) for k in registry.keys_for(rec.kiosk_id).values()]
    return out


def _witnessed(ctx: _Context, args: argparse.Namespace, cosigners: list, notes: list[str]):
    """The verified cosigned checkpoints the --witnesses sources hold."""
    from kiosk.errors import FormatError, VerificationError
    from kiosk.ledger.witness import open_witnessed

    if not cosigners:
        raise UsageError("--witnesses needs witness keys: --config (the kiosk registry) or "
                         "--cosigner VKEY")
    found: list[tuple[str, bytes]] = []
    for src in args.witnesses:
        if src == "broker":
            found += _witness_notes_from_broker(ctx)
            continue
        path = Path(src)
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for f in files:
            try:
                found.append((str(f), f.read_bytes()))
            except OSError as e:
                raise from_os_error(e, f"witness file {f}") from None
    out = []
    for where, note in found:
        try:
            got = open_witnessed(note, ctx.verifier, cosigners, ctx.origin)
        except (FormatError, VerificationError) as e:
            raise VerificationError(f"witnessed checkpoint from {where}: {e.message}") from None
        if not got:
            notes.append(f"{where}: no cosignature by a known witness")
        out += got
    if not out:
        raise VerificationError("no witnessed checkpoint found in the given sources")
    return out


def _witness_notes_from_broker(ctx: _Context) -> list[tuple[str, bytes]]:
    if ctx.cfg is None:
        raise UsageError("--witnesses broker needs --config ([broker] and [kiosk] site)")
    from kiosk.net import topics
    from kiosk.net.mqtt_once import read_retained_all

    b = ctx.cfg.broker
    got = read_retained_all(b.host, b.port, topics.all_witness(ctx.cfg.kiosk.site),
                            client_id=ctx.cfg.gateway.client_id + "-audit",
                            tls=(b.tls_ca, b.tls_cert, b.tls_key))
    return sorted(got.items())


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
                raise UsageError("--entry-hash must be hex") from None
            index = ctx.store.find(entry_hash)
            if index is None:
                raise NoInputError("no entry with that hash in the log")
        # what the user named and the log does not hold is a missing input (66), not an I/O error
        have = ctx.store.size()
        size = have if args.size is None else args.size
        if args.size is not None and not 0 < args.size <= have:
            raise NoInputError(f"--size {args.size}: the log holds {have} entries")
        if not 0 <= index < size:
            raise NoInputError(f"no entry at index {index} in a tree of {size} entries")
        if args.from_size is not None and not 0 < args.from_size <= size:
            raise NoInputError(f"--from {args.from_size}: no tree of that size before {size}")
        proof = prove_entry(ctx.store, index, size, args.from_size)
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
                raise UsageError("--sign needs --key or a --config with gateway.log_key")
            name = ctx.cfg.keys.log_name if ctx.cfg else (ctx.verifier.name if ctx.verifier else None)
            if name is None:
                raise UsageError("--sign needs the log's name: --config or --vkey")
            _, note = make_checkpoint(ctx.store, ctx.origin or name, name, load_signing_key(key_path))
        else:
            latest = ctx.store.latest_checkpoint()
            if latest is None:
                raise NoInputError("no checkpoint saved yet (kiosk ledger checkpoint --sign makes one)")
            note = latest[1]
            if ctx.verifier is not None:
                from kiosk.ledger.checkpoint import open_checkpoint

                open_checkpoint(note, ctx.verifier, ctx.origin)
    finally:
        ctx.store.close()
    sys.stdout.write(note.decode("utf-8"))
    return 0


# ---------------------------------------------------------------------------- consent trail

EXIT_DENY = 3


def _kiosk_keys(ctx: _Context):
    """kiosk id -> key from the registry the config names, or None (no --config / registry)."""
    if ctx.cfg is None:
        return None, None
    from kiosk.gateway.registry import open_registry

    gw = ctx.cfg.gateway
    if gw.store != "postgres" and not ctx.cfg.state_path(gw.registry_path).is_file():
        return None, None
    registry = open_registry(ctx.cfg)

    def key_for(kiosk_id: str):
        # every key the kiosk ever had: revoked kiosks' and re-keyed kiosks' old leaves stand
        return registry.keys_for(kiosk_id) or None
    return key_for, registry


def cmd_history(args: argparse.Namespace) -> int:
    """`kiosk ledger history --patient ID`: the patient's trail, in log order."""
    from kiosk.ledger.consent_check import history

    ctx = _Context(args)
    key_for, registry = _kiosk_keys(ctx)
    try:
        items = history(ctx.store, args.patient, kiosk_key_for=key_for)
        size = ctx.store.size()
    finally:
        ctx.store.close()
        if registry is not None:
            registry.close()
    if args.json:
        print(json.dumps({"patient": args.patient, "tree_size": size,
                          "entries": [i.as_json() for i in items]}, indent=2))
        return 0
    if not items:
        print(f"no entries for this patient in {size} entries")
    for i in items:
        line = f"#{i.index:<6} {i.created_iso}  {i.type:<18} {i.kiosk:<12} {i.entry_hash.hex()[:16]}"
        if i.consent is not None:
            c = i.consent
            period = f"{_iso(c.start)}..{_iso(c.end)}"
            line += (f"  {c.decision} {period} actors={','.join(c.actors) or '*'} "
                     f"actions={','.join(c.actions) or '*'} purposes={','.join(c.purposes) or '*'}"
                     + ("" if c.status == "active" else f" status={c.status}"))
        elif i.body == "erased":
            line += "  body erased (leaf and proofs still stand)"
        elif i.body != "stored":
            line += f"  body {i.body}"
        if i.refs:
            line += "  refs=" + ",".join(r.hex()[:16] for r in i.refs)
        print(line)
    if key_for is None:
        print("note: no kiosk registry given (--config); leaf signatures not checked",
              file=sys.stderr)
    return 0


def _iso(t) -> str:
    return "-" if t is None else t.isoformat().replace("+00:00", "Z")


def cmd_consent_check(args: argparse.Namespace) -> int:
    """`kiosk ledger consent-check`: permit (exit 0) or deny (exit 3), with verified proofs."""
    import datetime as dt

    from kiosk.ledger.consent_check import consent_check, parse_time

    try:
        at = parse_time(args.at) if args.at else dt.datetime.now(dt.UTC)
    except FormatError as e:  # a malformed option value: a usage error, like argparse's own
        raise UsageError(f"--at: {e.message}") from None
    ctx = _Context(args)
    key_for, registry = _kiosk_keys(ctx)
    try:
        d = consent_check(ctx.store, args.patient, args.actor, args.action, at, args.purpose,
                          verifier=ctx.verifier, origin=ctx.origin, kiosk_key_for=key_for)
    finally:
        ctx.store.close()
        if registry is not None:
            registry.close()
    if args.json:
        print(json.dumps(d.as_json(), indent=2))
    else:
        print(f"{d.verdict.upper()} ({d.reason}): {d.detail}")
        for item in d.entries:
            p = item.proof
            print(f"  {item.role:<10} #{item.item.index} {item.item.created_iso} {item.item.type} "
                  f"entry {item.item.entry_hash.hex()}")
            print(f"             inclusion proof ({len(p.inclusion)} hashes) in tree size {p.size}"
                  + (f", consistent with checkpoint size {p.from_size}" if p.from_size else "")
                  + ": verified")
        anchor = ("no signed checkpoint saved" if d.checkpoint_size is None else
                  f"checkpoint at size {d.checkpoint_size}"
                  + (" (signature verified)" if d.checkpoint_verified else
                     " (signature not checked: no log key given)"))
        print(f"tree size {d.tree_size}, root {_b64(d.root)}; {anchor}")
    return 0 if d.permitted else EXIT_DENY
