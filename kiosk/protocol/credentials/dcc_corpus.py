"""Run the EU DCC test-data corpus (eu-digital-green-certificates/dgc-testdata) through `dcc`.

Each case file holds one HC1 payload at every layer (PREFIX, BASE45, COMPRESSED, COSE,
CBOR, JSON, 2DCODE), the signer certificate, a VALIDATIONCLOCK and EXPECTEDRESULTS flags,
one per step; an absent flag means "do not test this step". Every step runs on the case's
own input for that layer where the case carries it, else on what the previous layer of our
chain produced, and its outcome is compared with the flag. Steps outside the reader's
scope are counted as skipped with the reason; so is a flagged step whose input is missing.
"""
from __future__ import annotations

import base64
import binascii
import collections
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError, FormatError, KioskError
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
}
OUT_OF_SCOPE = {
    "EXPECTEDSCHEMAVALIDATION": "out of scope: DGC JSON-schema validation",
    "EXPECTEDKEYUSAGE": "out of scope: signer certificate key usage (EKU) per entry type",
    "EXPECTEDVALIDOBJECT": "generation side: not a reader step",
    "EXPECTEDENCODE": "generation side: not a reader step",
}
STEPS = ("picture", "prefix", "base45", "zlib", "cbor", "signature", "expiry", "json")


class _Skip(Exception):
    """The step cannot run on this case (its input is missing)."""


@dataclass
class CaseResult:
    """One case: per step "agree", "disagree" or "skip: reason"."""

    name: str
    steps: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v != "disagree" for v in self.steps.values())


@dataclass
class Report:
    """Counts per step over the corpus: agreed, disagreed, skipped (by reason)."""

    cases: list[CaseResult] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for c in self.cases:
            for step, v in c.steps.items():
                out[step]["agree" if v == "agree" else "disagree" if v == "disagree" else "skipped"] += 1
        order = list(STEPS) + sorted(s for s in out if s not in STEPS)
        return {s: {k: out[s][k] for k in ("agree", "disagree", "skipped")} for s in order if s in out}

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
        return [(c.name, s) for c in self.cases for s, v in c.steps.items() if v == "disagree"]


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
        if not isinstance(png, str) or self.picture is None:
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

    def step_expiry(self) -> bool:
        dcc.check_expiry(dcc.decode_claims(dcc.parse_cose(self.cose())), self.clock())
        return True

    def step_json(self) -> bool:
        want = self.case.get("JSON")
        if want is None:
            raise _Skip
        return _json_equal(dcc.decode_claims(dcc.parse_cose(self.cose())).dgc, want)


def _json_equal(a: Any, b: Any) -> bool:
    """Semantic equality of a decoded DGC and its JSON form (numbers compare by value)."""
    return json.loads(json.dumps(a, sort_keys=True, default=str)) == b


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
        except _Skip:
            result.steps[step] = "skip: input for this step missing in the case"
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
        raise ConfigError(f"{root}: DCC corpus folder not found")
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
