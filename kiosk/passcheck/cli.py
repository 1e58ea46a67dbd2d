"""`kiosk pass verify`: check a pass or presentation given as QR text, a COSE file or a QR image,
or a credential another issuer signed (EU DCC "HC1:", SMART Health Card "shc:/" or its file),
judged against the trust folder (`--trust-dir` or `[credentials] trust_dir`)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kiosk.cli_args import read_input_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pass", help="inspect and verify patient passes")
    s = p.add_subparsers(dest="pass_cmd", metavar="ACTION", required=True)
    v = s.add_parser("verify", help="verify a pass, presentation or foreign credential; "
                                    "prints a JSON verdict")
    v.add_argument("input", nargs="+",
                   help="QR text, a file (COSE, QR text, .smart-health-card, or PNG/JPEG of a QR code), "
                        "or - for stdin; the chunks of a chunked shc:/C/N/ card as several arguments")
    v.add_argument("--issuer-pub", type=Path, action="append", help="trusted issuer public key (PEM)")
    v.add_argument("--revocations", type=Path, help="signed revocation list file")
    v.add_argument("--no-revocation-check", action="store_true", help="say so instead of refusing")
    v.add_argument("--config", type=Path, help="kiosk config (issuer keys, site)")
    v.add_argument("--at", type=_instant, help="judge at this time (Unix seconds or ISO 8601) instead of now")
    v.add_argument("--trust-dir", type=Path, help="trust folder for EU DCC / SMART Health Cards "
                                                  "(default: the config's [credentials] trust_dir)")
    v.add_argument("--show-identity", action="store_true",
                   help="also print the name and birth date a foreign credential claims")
    v.set_defaults(func=_verify)
    c = s.add_parser("dcc-corpus", help="run the EU DCC test-data corpus (dgc-testdata raw JSON cases) "
                                        "through the DCC reader; prints agreements per step")
    c.add_argument("folder", type=Path, help="folder of case files (e.g. ../shared/data/credentials/dcc)")
    c.add_argument("--json", action="store_true", help="counts, skips and disagreements as JSON")
    c.add_argument("--no-pictures", action="store_true", help="skip decoding the 2DCODE QR images")
    c.set_defaults(func=_dcc_corpus)


def _instant(text: str) -> int:
    from kiosk.protocol.credentials.base import parse_instant

    try:
        return int(text) if text.lstrip("-").isdigit() else int(parse_instant(text))
    except Exception:  # argparse turns this into one usage line
        raise argparse.ArgumentTypeError(f"not a Unix time or ISO 8601 instant: {text!r}") from None


def _read_input(arg: str) -> tuple[str, bytes | str]:
    """Classify the input: ("qr", text), ("foreign", text) or ("cose", bytes)."""
    from kiosk.errors import NoInputError
    from kiosk.protocol import credentials
    from kiosk.protocol.qr_text import PREFIX

    if arg == "-":
        data = sys.stdin.buffer.read()
    elif arg.startswith(PREFIX):
        return "qr", arg
    elif credentials.detect(arg):
        return "foreign", arg
    else:
        path = Path(arg)
        if not path.is_file():
            raise NoInputError(f"{arg}: neither QR text nor a readable file")
        data = read_input_file(path)
    if data[:8] == b"\x89PNG\r\n\x1a\n" or data[:3] == b"\xff\xd8\xff":
        text = _decode_image(data)
        return ("qr" if text.startswith(PREFIX) else "foreign"), text
    stripped = data.strip()
    if stripped.startswith(PREFIX.encode()):
        return "qr", stripped.decode("ascii", "replace")
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError:
        return "cose", data
    if credentials.detect(text):
        return "foreign", text
    return "cose", data


def _decode_image(data: bytes) -> str:
    import io

    import numpy as np
    from PIL import Image

    from kiosk.errors import FormatError
    from kiosk.protocol.credentials import PREFIXES
    from kiosk.protocol.qr_text import PREFIX
    from kiosk.vision.qr import decode_qr_texts, select_prefixed

    try:
        img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except Exception:
        raise FormatError("image could not be read") from None
    texts = select_prefixed(decode_qr_texts(img), (PREFIX, *PREFIXES))
    if not texts:
        raise FormatError("no patient-pass or credential QR code found in the image")
    return texts[0]


def _verify(args: argparse.Namespace) -> int:
    from kiosk import config as cfgmod
    from kiosk.errors import KioskError, Reason, UsageError, Verdict
    from kiosk.protocol import keys, patient_pass, presentation, revocation

    cfg = cfgmod.load(args.config) if args.config else None
    now = args.at if args.at is not None else int(time.time())
    inputs = [_read_input(a) for a in args.input]
    if any(kind == "foreign" for kind, _ in inputs):
        if any(kind != "foreign" for kind, _ in inputs):
            raise UsageError("give one patient pass, or the QR text(s) of one foreign credential")
        return _verify_foreign([str(text) for _, text in inputs], args, cfg, now)
    if len(inputs) != 1:
        raise UsageError("give one patient pass or presentation")
    issuer_paths = list(args.issuer_pub or [])
    if cfg and not issuer_paths:
        issuer_paths = list(cfg.keys.issuer_public)
    if not issuer_paths:
        raise UsageError("no trusted issuer key: give --issuer-pub or --config")
    issuers = {keys.kid(k): k for k in (keys.load_verify_key(p) for p in issuer_paths)}
    kind, data = inputs[0]
    # read the list before judging the pass, so a missing file is named whatever the pass holds
    rl_bytes = read_input_file(args.revocations) if args.revocations else None
    out: dict = {}
    try:
        pres = (presentation.from_qr_text(data) if kind == "qr"  # else a bare pass
                else presentation.Presentation("card", data if isinstance(data, bytes) else data.encode()))
        p = patient_pass.decode(pres.pass_bytes)
    except KioskError as e:
        verdict = Verdict.bad(Reason.MALFORMED, e.message)
        print(json.dumps({**verdict.as_json(), "kind": kind}, indent=2))
        return 1
    if rl_bytes is not None:
        rl = revocation.verify(rl_bytes, issuers, site=p.site)
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


def _verify_foreign(texts: list[str], args: argparse.Namespace, cfg: object, now: int) -> int:
    from kiosk.errors import ConfigError, NoInputError
    from kiosk.protocol import credentials

    trust_dir = args.trust_dir or (cfg.credentials.trust_dir if cfg else None)  # type: ignore[attr-defined]
    if trust_dir is None:
        raise ConfigError("no credential trust folder: give --trust-dir or [credentials] trust_dir")
    if args.trust_dir is not None and not args.trust_dir.is_dir():  # the config's is judged as config (78)
        raise NoInputError(f"--trust-dir {args.trust_dir}: no such folder")
    verdict = credentials.read(texts, credentials.TrustStore.load(trust_dir), now)
    out: dict = {**verdict.as_json(), "kind": "foreign", "format": credentials.detect(texts[0])}
    if verdict.ok:
        cred = verdict.data["credential"]
        out.update(cred.summary())
        if args.show_identity:
            out["claimed_identity"] = {"family": cred.subject.family, "given": cred.subject.given,
                                       "birth_date": cred.subject.birth_date}
    print(json.dumps(out, indent=2))
    return 0 if verdict.ok else 1


def _dcc_corpus(args: argparse.Namespace) -> int:
    from kiosk.passcheck import dcc_corpus

    report = dcc_corpus.run(args.folder, pictures=not args.no_pictures)
    counts, skipped, bad, upstream = report.counts(), report.skipped(), report.disagreements, report.upstream
    if args.json:
        print(json.dumps({"cases": len(report.cases), "steps": counts, "skipped": skipped,
                          "disagreements": [f"{n}: {s}" for n, s in bad],
                          "upstream": [f"{n}: {s}: {why}" for n, s, why in upstream]}, indent=2))
    else:
        print(f"{len(report.cases)} cases from {args.folder}")
        print(f"{'step':<18}{'agree':>7}{'disagree':>10}{'upstream':>10}{'skipped':>9}")
        for step, c in counts.items():
            print(f"{step:<18}{c['agree']:>7}{c['disagree']:>10}{c['upstream']:>10}{c['skipped']:>9}")
        for reason, n in sorted(skipped.items()):
            print(f"skipped {n}: {reason}")
        for name, step, why in upstream:
            print(f"disagrees, the case contradicts itself: {name} ({step}): {why}")
        for name, step in bad:
            print(f"disagrees: {name} ({step})")
    # 1 only for the reader's own disagreements: a case that contradicts itself is listed
    # and counted, but the same corpus gives the same exit code whatever its upstream slips
    return 0 if not bad else 1
