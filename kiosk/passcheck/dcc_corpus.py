"""Run the EU DCC test-data corpus (eu-digital-green-certificates/dgc-testdata) through `dcc`.

Each case file holds one HC1 payload at every layer (PREFIX, BASE45, COMPRESSED, COSE,
CBOR, JSON, 2DCODE), the signer certificate, a VALIDATIONCLOCK and EXPECTEDRESULTS flags,
one per step; an absent flag means "do not test this step". Every step runs on the case's
own input for that layer where the case carries it, else on what the previous layer of our
chain produced, and its outcome is compared with the flag. Steps outside the reader's
scope are counted as skipped with the reason; so is a flagged step whose input is missing.

A disagreement is ours unless the case contradicts itself: when our decoding equals the
case's own signed CBOR and the case's JSON differs from that CBOR, the JSON (unsigned, made
beside the certificate) is wrong, not the reader. Such a disagreement is counted and listed
with the fields that differ (`upstream`), and does not fail the run; any other fails it.
Date-times compare as instants (RFC 3339: "Z" and "+00:00" are one time).
"""
from __future__ import annotations

import base64
import binascii
import collections
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError, FormatError, KioskError, NoInputError
from kiosk.protocol import cbor
from kiosk.protocol.credentials import dcc
from kiosk.protocol.credentials.base import parse_instant
from kiosk.protocol.credentials.trust import TrustStore

# flag -> step, in chain order
STEP_OF_FLAG = {
    "EXPECTEDPICTUREDECODE": "picture",
    "EXPECTEDUNPREFIX": "prefix",
    "EXPECTEDB45DECODE": "base45",
    "EXPECTEDCOMPRESSION": "zlib",
    "EXPECTEDDECODE": "cbor",
    "EXPECTEDVERIFY": "signature",
    "EXPECTEDEXPIRATIONCHECK": "expiry",
    "EXPTECTEDEXPIRED": "expiry",  # upstream's misspelling in some country folders
    "EXPECTEDVALIDJSON": "json",
    "EXPECTEDKEYUSAGE": "keyusage",
}
OUT_OF_SCOPE = {
    "EXPECTEDSCHEMAVALIDATION": "out of scope: DGC JSON-schema validation",
    "EXPECTEDVALIDOBJECT": "generation side: not a reader step",
    "EXPECTEDENCODE": "generation side: not a reader step",
}
STEPS = ("picture", "prefix", "base45", "zlib", "cbor", "signature", "keyusage", "expiry", "json")
UPSTREAM = "disagree: case contradicts itself: "


class _Skip(Exception):
    """The step cannot run on this case (its input is missing)."""


class _Contradiction(Exception):
    """The case's own fields disagree with each other (the message names the fields)."""


@dataclass
class CaseResult:
    """One case: per step "agree", "disagree", UPSTREAM + fields, or "skip: reason"."""

    name: str
    steps: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v != "disagree" for v in self.steps.values())


@dataclass
class Report:
    """Counts per step over the corpus: agreed, disagreed (of which upstream), skipped (by reason)."""

    cases: list[CaseResult] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for c in self.cases:
            for step, v in c.steps.items():
                if v.startswith(UPSTREAM):
                    out[step]["upstream"] += 1
                out[step]["agree" if v == "agree" else "disagree" if v.startswith("disagree") else "skipped"] += 1
        order = list(STEPS) + sorted(s for s in out if s not in STEPS)
        return {s: {k: out[s][k] for k in ("agree", "disagree", "upstream", "skipped")}
                for s in order if s in out}

    def skipped(self) -> dict[str, int]:
        """How many flags were skipped, by reason."""
        c: collections.Counter = collections.Counter()
        for case in self.cases:
            for v in case.steps.values():
                if v.startswith("skip"):
                    c[v[len("skip: "):]] += 1
        return dict(c)

    @property
    def disagreements(self) -> list[tuple[str, str]]:
        """(case, step) where the reader disagrees with the case: these fail the run."""
        return [(c.name, s) for c in self.cases for s, v in c.steps.items() if v == "disagree"]

    @property
    def upstream(self) -> list[tuple[str, str, str]]:
        """(case, step, fields) where the case contradicts itself: counted, listed, not failed."""
        return [(c.name, s, v[len(UPSTREAM):]) for c in self.cases for s, v in c.steps.items()
                if v.startswith(UPSTREAM)]


def _hex(case: dict, key: str) -> bytes | None:
    v = case.get(key)
    if not isinstance(v, str):
        return None
    try:
        return binascii.unhexlify(v)
    except (binascii.Error, ValueError):
        return None


class _Case:
    """Lazily computed layers of one case: the case's own value first, else our chain's."""

    def __init__(self, case: dict, picture: Callable[[bytes], list[str]] | None) -> None:
        self.case, self.picture = case, picture
        ctx = case.get("TESTCTX") or {}
        self.ctx = ctx if isinstance(ctx, dict) else {}

    def base45(self) -> str:
        if isinstance(self.case.get("BASE45"), str):
            return self.case["BASE45"]
        if isinstance(self.case.get("PREFIX"), str):
            return dcc.unprefix(self.case["PREFIX"])
        raise _Skip

    def compressed(self) -> bytes:
        got = _hex(self.case, "COMPRESSED")
        return got if got is not None else dcc.base45_decode(self.base45())

    def cose(self) -> bytes:
        got = _hex(self.case, "COSE")
        return got if got is not None else dcc.decompress(self.compressed())

    def signers(self) -> TrustStore:
        store = TrustStore()
        cert = self.ctx.get("CERTIFICATE")
        if not isinstance(cert, str):
            raise _Skip
        try:
            store.add_dcc_certificate(base64.b64decode(cert), where="TESTCTX.CERTIFICATE")
        except (ConfigError, binascii.Error, ValueError):
            raise _Skip from None
        return store

    def clock(self) -> float:
        v = self.ctx.get("VALIDATIONCLOCK")
        if not isinstance(v, str):
            raise _Skip
        return parse_instant(v)

    # --- steps: True (the step succeeded) or False; _Skip when it cannot run ---------
    def step_picture(self) -> bool:
        png, prefix = self.case.get("2DCODE"), self.case.get("PREFIX")
        if self.picture is None:
            raise _Skip("not run: QR pictures not decoded (--no-pictures)")
        if not isinstance(png, str):
            raise _Skip
        try:
            texts = self.picture(base64.b64decode(png))
        except (binascii.Error, ValueError, KioskError):
            return False
        return prefix in texts

    def step_prefix(self) -> bool:
        text = self.case.get("PREFIX")
        if not isinstance(text, str):
            raise _Skip
        got = dcc.unprefix(text)
        want = self.case.get("BASE45")
        return want is None or got == want

    def step_base45(self) -> bool:
        got = dcc.base45_decode(self.base45())
        want = _hex(self.case, "COMPRESSED")
        return want is None or got == want

    def step_zlib(self) -> bool:
        got = dcc.decompress(self.compressed())
        want = _hex(self.case, "COSE")
        return want is None or got == want

    def step_cbor(self) -> bool:
        claims = dcc.decode_claims(dcc.parse_cose(self.cose()))
        want = _hex(self.case, "CBOR")
        if want is None:
            return True
        expected = cbor.loads(want, "case CBOR", deterministic=False)
        # the CBOR field is the bare DGC in some folders and the whole claims map in others
        return expected in (claims.dgc, claims.claims)

    def step_signature(self) -> bool:
        dcc.verify_signature(dcc.parse_cose(self.cose()), self.signers().dcc)
        return True

    def step_keyusage(self) -> bool:
        # the case's one DSC, whatever kid the COSE names
        (signer,) = [s for same_kid in self.signers().dcc.values() for s in same_kid]
        dcc.check_key_usage(signer, dcc.decode_claims(dcc.parse_cose(self.cose())).dgc)
        return True

    def step_expiry(self) -> bool:
        dcc.check_expiry(dcc.decode_claims(dcc.parse_cose(self.cose())), self.clock())
        return True

    def step_json(self) -> bool:
        want = self.case.get("JSON")
        if want is None:
            raise _Skip
        got = dcc.decode_claims(dcc.parse_cose(self.cose())).dgc
        if _differences(got, want):
            signed = self._case_dgc()
            if signed is not None and not _differences(got, signed):
                raise _Contradiction("JSON differs from the case's signed CBOR at "
                                     + ", ".join(_differences(signed, want)))
            return False
        return True

    def _case_dgc(self) -> Any:
        """The DGC in the case's own CBOR field (bare or inside the claims), or None."""
        raw = _hex(self.case, "CBOR")
        if raw is None:
            return None
        try:
            v = cbor.loads(raw, "case CBOR", deterministic=False)
        except FormatError:
            return None
        hcert = v.get(dcc.C_HCERT) if isinstance(v, dict) else None
        return hcert.get(1) if isinstance(hcert, dict) else v


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where a decoded DGC and its JSON form differ (paths, never values): numbers compare
    by value, RFC 3339 date-times as instants."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in (_differences(a[k], b[k], f"{path}.{k}" if path else str(k))
                          if k in a and k in b else [f"{path}.{k}" if path else str(k)])]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [path or "(root)"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, str) and isinstance(b, str) and a != b and _DATETIME.match(a) and _DATETIME.match(b):
        try:
            return [] if parse_instant(a) == parse_instant(b) else [path]
        except FormatError:
            return [path]
    plain = json.loads(json.dumps(a, default=str))
    same = plain == b and (isinstance(plain, bool) == isinstance(b, bool))
    return [] if same else [path or "(root)"]


_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def run_case(case: dict, name: str = "case",
             picture: Callable[[bytes], list[str]] | None = None) -> CaseResult:
    """Every flagged step of one case, compared with its flag."""
    result = CaseResult(name)
    flags_v = case.get("EXPECTEDRESULTS")
    flags: dict = flags_v if isinstance(flags_v, dict) else {}
    c = _Case(case, picture)
    for flag, expected in flags.items():
        if flag in OUT_OF_SCOPE:
            result.steps[flag.removeprefix("EXPECTED").lower()] = f"skip: {OUT_OF_SCOPE[flag]}"
            continue
        step = STEP_OF_FLAG.get(flag)
        if step is None:
            result.steps[flag.lower()] = "skip: unknown flag"
            continue
        try:
            ok = getattr(c, f"step_{step}")()
        except _Skip as e:
            result.steps[step] = f"skip: {e.args[0] if e.args else 'input for this step missing in the case'}"
            continue
        except _Contradiction as e:
            result.steps[step] = UPSTREAM + str(e) if expected else "agree"
            continue
        except (FormatError, KioskError):
            ok = False
        result.steps[step] = "agree" if ok == bool(expected) else "disagree"
    return result


def iter_cases(root: Path) -> Iterator[tuple[str, dict]]:
    """(relative name, case) for every *.json under `root` except manifests; FormatError on bad JSON."""
    for path in sorted(root.rglob("*.json")):
        try:
            case = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise FormatError(f"{path}: not a readable JSON test case") from None
        if isinstance(case, dict) and "EXPECTEDRESULTS" in case:
            yield str(path.relative_to(root)), case


def run(root: str | Path, *, pictures: bool = True) -> Report:
    """The whole corpus under `root`; `pictures` also decodes each 2DCODE PNG (zxing-cpp)."""
    root = Path(root)
    if not root.is_dir():
        raise NoInputError(f"{root}: DCC corpus folder not found")
    picture = _png_texts if pictures else None
    report = Report()
    for name, case in iter_cases(root):
        report.cases.append(run_case(case, name, picture))
    return report


def _png_texts(png: bytes) -> list[str]:
    import io

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from kiosk.vision.qr import decode_qr_texts

    try:
        img = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    except (UnidentifiedImageError, OSError, ValueError):
        raise FormatError("2DCODE is not an image") from None
    return decode_qr_texts(img)
