"""`kiosk pass verify`: check a pass or presentation given as QR text, a COSE file or a QR image."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pass", help="inspect and verify patient passes")
    s = p.add_subparsers(dest="pass_cmd", metavar="ACTION", required=True)
    v = s.add_parser("verify", help="verify a pass or presentation; prints a JSON verdict")
    v.add_argument("input", help="QR text, a file (COSE, QR text, or PNG/JPEG of a QR code), or - for stdin")
    v.add_argument("--issuer-pub", type=Path, action="append", help="trusted issuer public key (PEM)")
    v.add_argument("--revocations", type=Path, help="signed revocation list file")
    v.add_argument("--no-revocation-check", action="store_true", help="say so instead of refusing")
    v.add_argument("--config", type=Path, help="kiosk config (issuer keys, site)")
    v.add_argument("--at", type=int, help="judge at this Unix time instead of now")
    v.set_defaults(func=_verify)


def _read_input(arg: str) -> tuple[str, bytes | str]:
    """Classify the input: ("qr", text) or ("cose", bytes)."""
    from kiosk.errors import FormatError
    from kiosk.protocol.qr_text import PREFIX

    if arg == "-":
        data = sys.stdin.buffer.read()
    elif arg.startswith(PREFIX):
        return "qr", arg
    else:
        path = Path(arg)
        if not path.is_file():
            raise FormatError(f"{arg}: neither QR text nor a readable file")
        data = path.read_bytes()
    if data[:8] == b"\x89PNG\r\n\x1a\n" or data[:3] == b"\xff\xd8\xff":
        return "qr", _decode_image(data)
    stripped = data.strip()
    if stripped.startswith(PREFIX.encode()):
        return "qr", stripped.decode("ascii", "replace")
    return "cose", data


def _decode_image(data: bytes) -> str:
    import io

    import numpy as np
    from PIL import Image

    from kiosk.errors import FormatError
    from kiosk.vision.qr import decode_pass_qr

    try:
        img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except Exception:
        raise FormatError("image could not be read") from None
    texts = decode_pass_qr(img)
    if not texts:
        raise FormatError("no patient-pass QR code found in the image")
    return texts[0]


def _verify(args: argparse.Namespace) -> int:
    from kiosk import config as cfgmod
    from kiosk.errors import KioskError, Reason, Verdict
    from kiosk.protocol import keys, patient_pass, presentation, revocation

    issuer_paths = list(args.issuer_pub or [])
    cfg = cfgmod.load(args.config) if args.config else None
    if cfg and not issuer_paths:
        issuer_paths = list(cfg.keys.issuer_public)
    if not issuer_paths:
        raise KioskError("no trusted issuer key: give --issuer-pub or --config")
    issuers = {keys.kid(k): k for k in (keys.load_verify_key(p) for p in issuer_paths)}
    now = args.at if args.at is not None else int(time.time())
    kind, data = _read_input(args.input)
    out: dict = {}
    try:
        if kind == "qr":
            pres = presentation.from_qr_text(data)
        else:
            pres = presentation.Presentation("card", bytes(data))  # a bare pass
        p = patient_pass.decode(pres.pass_bytes)
    except KioskError as e:
        verdict = Verdict.bad(Reason.MALFORMED, e.message)
        print(json.dumps({**verdict.as_json(), "kind": kind}, indent=2))
        return 1
    if args.revocations:
        rl = revocation.verify(args.revocations.read_bytes(), issuers, site=p.site)
    elif args.no_revocation_check:
        rl = revocation.RevocationList(p.site, now, now + 1, 0, {})
        out["revocation"] = "not checked"
    else:
        rl = None
    grace = cfg.passes.revocation_grace_s if cfg else 86400
    fresh = presentation.Freshness(site=cfg.kiosk.site if cfg else p.site)
    verdict = presentation.verify(pres, issuers, now=now, revocations=rl, fresh=fresh, revocation_grace_s=grace,
                                  live=args.at is None)
    out = {**verdict.as_json(), "kind": pres.kind, **out}
    if verdict.ok:
        out.update(site=p.site, patient=p.patient, pass_id=p.pass_id.hex(), expires_at=p.expires_at,
                   has_template=p.has_template)
    print(json.dumps(out, indent=2))
    return 0 if verdict.ok else 1
