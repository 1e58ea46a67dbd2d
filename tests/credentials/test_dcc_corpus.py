"""The public EU DCC corpus (dgc-testdata) through the DCC reader, each case at its own clock."""
from __future__ import annotations

import json

import cbor2
import pytest

from kiosk.cli import main
from kiosk.passcheck import dcc_corpus

STEPS = ("prefix", "base45", "zlib", "cbor", "signature", "keyusage", "expiry")


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
    assert by_name["common/CO15.json"]["keyusage"] == "agree"  # an empty EKU names no OID
    wrong_key = [c for c in report.cases if c.name.endswith("NL-test+wrong_key.json")]
    assert len(wrong_key) == 72 and all(c.steps["keyusage"] == "agree" and c.steps["signature"] == "agree"
                                        for c in wrong_key)  # a vaccination-only DSC signed tests


def test_pictures_and_json_agree_and_the_case_that_contradicts_itself_is_named(report) -> None:
    # FR/test_pcr_ok.json: its JSON's test times (sc, dr) are two hours off its own CBOR's,
    # which is what the signature covers ("12:34:56Z" against "14:34:56Z"), though
    # EXPECTEDVALIDJSON is true. Found by the rule, not by its name: counted, not failed.
    counts = report.counts()
    assert counts["picture"]["disagree"] == 0
    assert report.disagreements == []
    assert report.upstream == [("FR/test_pcr_ok.json", "json",
                                "JSON differs from the case's signed CBOR at t[0].dr, t[0].sc")]
    assert (counts["json"]["disagree"], counts["json"]["upstream"]) == (1, 1)


def test_out_of_scope_steps_are_skipped_with_the_reason(report) -> None:
    skipped = report.skipped()
    assert skipped["out of scope: DGC JSON-schema validation"] > 0
    assert all(v != "agree" for c in report.cases for k, v in c.steps.items() if k == "schemavalidation")


def _json_case(json_value: dict, cbor_dgc: dict | None, flag: bool = True) -> dict:
    """A case with the corpus's layout around a DCC signed here (the JSON step's inputs only)."""
    import binascii

    from .credential_factory import DGC, dcc_cose, dcc_signer

    cose = dcc_cose(dcc_signer(), iat=1, exp=2, dgc=DGC)
    case = {"COSE": binascii.hexlify(cose).decode(), "JSON": json_value,
            "EXPECTEDRESULTS": {"EXPECTEDVALIDJSON": flag}}
    if cbor_dgc is not None:
        case["CBOR"] = cbor2.dumps(cbor_dgc).hex()
    return case


def test_json_step_tells_a_reader_slip_from_a_case_that_contradicts_itself(tmp_path) -> None:
    from .credential_factory import DGC

    moved = json.loads(json.dumps(DGC))
    moved["v"][0]["dt"] = "2021-06-02"
    # the JSON differs from the signed content and the case's CBOR is that content: upstream
    r = dcc_corpus.run_case(_json_case(moved, DGC))
    assert r.steps["json"] == dcc_corpus.UPSTREAM + "JSON differs from the case's signed CBOR at v[0].dt"
    assert r.ok
    # the case's CBOR agrees with its JSON, so the reader is the odd one out: ours, fails the run
    r = dcc_corpus.run_case(_json_case(moved, moved))
    assert r.steps["json"] == "disagree" and not r.ok
    r = dcc_corpus.run_case(_json_case(moved, None))  # nothing to tell them apart by
    assert r.steps["json"] == "disagree"
    assert dcc_corpus.run_case(_json_case(moved, DGC, flag=False)).steps["json"] == "agree"
    # RFC 3339: one instant in two spellings is the same content
    assert not dcc_corpus._differences({"sc": "2021-05-16T14:34:56Z"}, {"sc": "2021-05-16T16:34:56+02:00"})
    assert dcc_corpus._differences({"sc": "2021-05-16T14:34:56Z"}, {"sc": "2021-05-16T12:34:56Z"}) == ["sc"]
    assert dcc_corpus._differences({"dn": 1}, {"dn": True}) == ["dn"]


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
    assert out["disagreements"] == [] and out["upstream"] == []
    assert main(["pass", "dcc-corpus", str(root / "nonexistent")]) == 66  # a missing input (README)


def test_command_exit_code_fails_only_on_the_readers_disagreements(shared_data, tmp_path, capsys) -> None:
    root = shared_data / "credentials" / "dcc"
    if not root.is_dir():
        pytest.skip(f"DCC corpus not found at {root}")
    assert main(["pass", "dcc-corpus", str(root / "FR"), "--no-pictures"]) == 0  # test_pcr_ok listed
    assert "the case contradicts itself: test_pcr_ok.json (json)" in capsys.readouterr().out
    case = json.loads((root / "common" / "CO1.json").read_text())
    case["EXPECTEDRESULTS"] = {"EXPECTEDVERIFY": False}  # CO1 verifies: the flag now says otherwise
    (tmp_path / "CO1.json").write_text(json.dumps(case))
    assert main(["pass", "dcc-corpus", str(tmp_path), "--no-pictures"]) == 1
    assert "disagrees: CO1.json (signature)" in capsys.readouterr().out
