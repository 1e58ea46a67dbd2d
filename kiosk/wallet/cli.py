"""`kiosk wallet`: the patient's phone for demos and tests."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("wallet", help="wallet simulator (the patient's phone)")
    ws = p.add_subparsers(dest="wallet_cmd", metavar="ACTION", required=True)
    c = ws.add_parser("create", help="make a wallet folder with the patient's own key")
    c.add_argument("folder", type=Path)
    c.set_defaults(func=_create)
    q = ws.add_parser("qr", help="show a fresh QR presentation (text, terminal, PNG)")
    q.add_argument("folder", type=Path)
    q.add_argument("--png", type=Path, help="write the QR code as a PNG")
    q.add_argument("--terminal", action="store_true", help="draw the QR code in the terminal")
    q.set_defaults(func=_qr)
    s = ws.add_parser("show", help="what the wallet holds (no secrets)")
    s.add_argument("folder", type=Path)
    s.set_defaults(func=_show)


def _create(args: argparse.Namespace) -> int:
    from kiosk.protocol.keys import make_dir
    from kiosk.wallet.wallet import Wallet

    make_dir(args.folder)
    Wallet.create(args.folder)
    print(f"wallet created in {args.folder}; enrol it with: kiosk issuer enroll --wallet {args.folder} PHOTO PHOTO")
    return 0


def _qr(args: argparse.Namespace) -> int:
    from kiosk.wallet.wallet import Wallet

    w = Wallet.load(args.folder)
    now = time.time()
    text = w.qr_text(now)
    if args.png:
        from kiosk.cli_args import output_file

        with output_file(args.png):
            w.qr_png(args.png, now)
    if args.terminal:
        import segno

        segno.make(text, error="m").terminal(compact=True)
    print(text)
    return 0


def _show(args: argparse.Namespace) -> int:
    from kiosk.protocol import keys, patient_pass
    from kiosk.wallet.wallet import Wallet

    w = Wallet.load(args.folder)
    out: dict = {"patient_key_kid": keys.kid(w.public_key).hex()}
    if (args.folder / "pass.cose").exists():
        p = patient_pass.decode(w.pass_bytes)
        out.update(site=p.site, patient=p.patient, pass_id=p.pass_id.hex(), expires_at=p.expires_at,
                   has_template=p.has_template)
    print(json.dumps(out, indent=2))
    return 0
