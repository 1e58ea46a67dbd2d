"""The public EU DCC corpus (dgc-testdata) through the DCC reader, each case at its own clock."""
from __future__ import annotations

import json

import pytest

from kiosk.cli import main
from kiosk.protocol.credentials import dcc_corpus

STEPS = ("prefix", "base45", "zlib", "cbor", "signature", "expiry")
# FR/test_pcr_ok.json: its JSON's test times (sc, dr) are two hours off the signed CBOR's
# ("12:34:56Z" against "14:34:56Z") though EXPECTEDVALIDJSON is true: an upstream slip
KNOWN_JSON_MISMATCH = {("FR/test_pcr_ok.json", "json")}


@pytest.fixture(scope="module")
def report(shared_data):
    root = shared_data / "credentials" / "dcc"
    if not root.is_dir():
        pytest.skip(f"DCC corpus not found at {root}")
    return dcc_corpus.run(root)


def test_every_reader_step_agrees_with_the_corpus(report) -> None:
    counts = report.counts()
    for step in STEPS:
        assert counts[step]["disagree"] == 0, [d for d in report.disagreements if d[1] == step]
        assert counts[step]["agree"] > 0
    # the negative cases are among them: each fails at its own step, as flagged
    by_name = {c.name: c.steps for c in report.cases}
    assert by_name["common/H1.json"]["prefix"] == "agree"      # HL0: context
    assert by_name["common/B1.json"]["base45"] == "agree"      # invalid characters
    assert by_name["common/Z2.json"]["zlib"] == "agree"        # not compressed
    assert by_name["common/CBO1.json"]["cbor"] == "agree"      # broken CBOR
    assert by_name["common/CO23.json"]["signature"] == "agree"  # unprotected kid names no key
    assert by_name["common/CO16.json"]["expiry"] == "agree"    # clock before iat
    assert by_name["common/CO1.json"]["signature"] == "agree"  # PS256, RSA 2048


def test_pictures_and_json_agree_but_for_one_upstream_slip(report) -> None:
    assert report.counts()["picture"]["disagree"] == 0
    assert set(report.disagreements) <= KNOWN_JSON_MISMATCH


def test_out_of_scope_steps_are_skipped_with_the_reason(report) -> None:
    skipped = report.skipped()
    assert skipped["out of scope: DGC JSON-schema validation"] > 0
    assert skipped["out of scope: signer certificate key usage (EKU) per entry type"] > 0
    assert all(v != "agree" for c in report.cases for k, v in c.steps.items()
               if k in ("schemavalidation", "keyusage"))


def test_unknown_and_misspelt_flags_do_not_crash() -> None:
    case = {"PREFIX": "HL0:X", "EXPECTEDRESULTS": {"EXPECTEDUNPREFIX": False, "EXPTECTEDEXPIRED": False,
                                                   "EXPECTEDSOMETHINGNEW": True}}
    r = dcc_corpus.run_case(case)
    assert r.steps["prefix"] == "agree"
    assert r.steps["expiry"] == "agree"  # upstream's misspelling maps to the expiry step
    assert r.steps["expectedsomethingnew"] == "skip: unknown flag"


def test_command_prints_the_counts(shared_data, capsys) -> None:
    root = shared_data / "credentials" / "dcc"
    if not root.is_dir():
        pytest.skip(f"DCC corpus not found at {root}")
    main(["pass", "dcc-corpus", str(root / "common"), "--json", "--no-pictures"])
    out = json.loads(capsys.readouterr().out)
    assert out["steps"]["signature"]["disagree"] == 0 and out["steps"]["signature"]["agree"] >= 10
    assert out["disagreements"] == []
    assert main(["pass", "dcc-corpus", str(root / "nonexistent")]) == 78
