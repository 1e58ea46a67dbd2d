"""`history` and `consent_check` over a real SQLite log of signed leaves and consent bodies."""
from __future__ import annotations

import datetime as dt
import json

import nacl.signing
import pytest

from kiosk.cli import main
from kiosk.errors import KioskError, LogIntegrityError
from kiosk.ledger import audit
from kiosk.ledger.checkpoint import NoteVerifier, verifier_key_text
from kiosk.ledger.consent_check import ConsentProvision, consent_check, history, parse_time, read_provision
from kiosk.ledger.sqlite_store import SqliteLogStore
from kiosk.protocol import entry
from kiosk.protocol.consent import ConsentTerms, build_consent, consent_body

SITE, KIOSK = "clinic-a", "kiosk-1"
KIOSK_KEY = nacl.signing.SigningKey(bytes([11]) * 32)
LOG = "clinic.example/log"
LOG_KEY = nacl.signing.SigningKey(bytes([12]) * 32)
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
ALICE, BOB = "p-alice-7f3a", "p-bob-91c2"
CLINIC = "Organization/clinic-a"
LAB = "Organization/lab-b"
TERMS = ConsentTerms(document_id="privacy-notice", version="3", organization=CLINIC,
                     purposes=("TREAT",), actions=("access", "collect"), actors=(CLINIC,),
                     valid_days=365)


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


class Log:
    """A SQLite log the way the gateway fills it: leaves appended, bodies stored beside."""

    def __init__(self, path) -> None:
        self.path = path
        self.store = SqliteLogStore(path)

    def _add(self, type_: str, patient: str | None, content: dict, when: dt.datetime,
             refs: tuple[bytes, ...] = (), key=KIOSK_KEY) -> bytes:
        body, bh = entry.make_body(content)
        env = entry.new_envelope(type_, site=SITE, kiosk=KIOSK, body_hash=bh,
                                 created_ms=ms(when), refs=refs, patient=patient)
        leaf = entry.sign_leaf(env, key)
        self.store.append([leaf])
        self.store.put_body(bh, body)
        return entry.entry_hash(leaf)

    def check_in(self, patient: str, when: dt.datetime) -> bytes:
        return self._add("check-in", patient, {"method": "nfc"}, when)

    def consent(self, patient: str, when: dt.datetime, *, permit: bool = True,
                terms: ConsentTerms = TERMS, refs: tuple[bytes, ...] = ()) -> bytes:
        c = build_consent(terms, patient=patient, permit=permit, when=when, language="en",
                          text="We keep your records private ...")
        content = consent_body(c, document_id=terms.document_id, version=terms.version,
                               language="en", text="We keep your records private ...",
                               strokes=[[[1, 2, 0], [3, 4, 16]]], signature_png=b"\x89PNG...")
        return self._add("consent", patient, content, when, refs)

    def withdraw(self, patient: str, when: dt.datetime, refs: tuple[bytes, ...] = ()) -> bytes:
        return self._add("consent-withdrawal", patient, {"reason": "patient-request"}, when, refs)

    def index_of(self, eh: bytes) -> int:
        i = self.store.find(eh)
        assert i is not None
        return i


@pytest.fixture
def log(tmp_path):
    lg = Log(tmp_path / "ledger.sqlite3")
    yield lg
    lg.store.close()


def check(log: Log, at: dt.datetime, actor: str = CLINIC, action: str = "access",
          purpose: str | None = None, patient: str = ALICE, **kw):
    return consent_check(log.store, patient, actor, action, at, purpose, **kw)


def deciders(d) -> list[tuple[str, int]]:
    return [(e.role, e.item.index) for e in d.entries]


# ------------------------------------------------------------------ the decision

def test_permit_with_verified_proof(log):
    ci = log.check_in(ALICE, T0)
    c = log.consent(ALICE, T0 + dt.timedelta(seconds=30), refs=(ci,))
    log.check_in(BOB, T0 + dt.timedelta(minutes=5))
    d = check(log, T0 + dt.timedelta(days=10), purpose="TREAT")
    assert d.permitted and d.verdict == "permit" and d.reason == "consent-permit"
    assert deciders(d) == [("consent", log.index_of(c))]
    p = d.entries[0].proof
    assert p.size == log.store.size() == 3 and p.root == log.store.root_hash()
    p.verify()  # the proof stands on its own
    assert d.entries[0].item.entry_hash == c
    assert d.checkpoint_size is None


def test_declined_consent_denies(log):
    c = log.consent(ALICE, T0, permit=False)
    d = check(log, T0 + dt.timedelta(hours=1))
    assert not d.permitted and d.reason == "consent-deny"
    assert deciders(d) == [("consent", log.index_of(c))]


def test_no_consent_denies(log):
    log.check_in(ALICE, T0)
    d = check(log, T0 + dt.timedelta(hours=1))
    assert d.verdict == "deny" and d.reason == "no-consent" and d.entries == ()


def test_consent_before_it_was_given_does_not_count(log):
    log.consent(ALICE, T0)
    d = check(log, T0 - dt.timedelta(minutes=1))
    assert d.reason == "no-consent"


def test_withdrawal_naming_the_consent_denies(log):
    c = log.consent(ALICE, T0)
    w = log.withdraw(ALICE, T0 + dt.timedelta(days=2), refs=(c,))
    before = check(log, T0 + dt.timedelta(days=1))
    assert before.permitted
    after = check(log, T0 + dt.timedelta(days=3))
    assert after.reason == "withdrawn"
    assert deciders(after) == [("consent", log.index_of(c)), ("withdrawal", log.index_of(w))]
    for e in after.entries:
        e.proof.verify()


def test_any_later_withdrawal_of_the_patient_denies(log):
    log.consent(ALICE, T0)
    log.withdraw(ALICE, T0 + dt.timedelta(days=2))  # names no entry
    assert check(log, T0 + dt.timedelta(days=3)).reason == "withdrawn"


def test_consent_after_a_withdrawal_permits_again(log):
    c1 = log.consent(ALICE, T0)
    log.withdraw(ALICE, T0 + dt.timedelta(days=1), refs=(c1,))
    c2 = log.consent(ALICE, T0 + dt.timedelta(days=2))
    d = check(log, T0 + dt.timedelta(days=3))
    assert d.permitted and deciders(d) == [("consent", log.index_of(c2))]


def test_expired_consent_denies(log):
    short = ConsentTerms(**{**TERMS.__dict__, "valid_days": 30})
    log.consent(ALICE, T0, terms=short)
    assert check(log, T0 + dt.timedelta(days=29)).permitted
    d = check(log, T0 + dt.timedelta(days=31))
    assert d.reason == "no-consent" and "ended" in d.detail


def test_other_actor_action_or_purpose_is_denied(log):
    log.consent(ALICE, T0)
    at = T0 + dt.timedelta(days=1)
    assert check(log, at, actor=LAB).reason == "no-consent"
    assert check(log, at, action="disclose").reason == "no-consent"
    assert check(log, at, purpose="HMARKT").reason == "no-consent"
    assert check(log, at, action="collect", purpose="TREAT").permitted


def test_later_consent_overrides_earlier(log):
    c1 = log.consent(ALICE, T0)
    c2 = log.consent(ALICE, T0 + dt.timedelta(days=5), permit=False)
    c3 = log.consent(ALICE, T0 + dt.timedelta(days=9))
    assert deciders(check(log, T0 + dt.timedelta(days=1))) == [("consent", log.index_of(c1))]
    d = check(log, T0 + dt.timedelta(days=6))
    assert d.reason == "consent-deny" and deciders(d) == [("consent", log.index_of(c2))]
    d = check(log, T0 + dt.timedelta(days=10))
    assert d.permitted and deciders(d) == [("consent", log.index_of(c3))]


def test_consent_for_another_actor_does_not_override(log):
    log.consent(ALICE, T0)
    lab_only = ConsentTerms(**{**TERMS.__dict__, "actors": (LAB,)})
    log.consent(ALICE, T0 + dt.timedelta(days=1), permit=False, terms=lab_only)
    at = T0 + dt.timedelta(days=2)
    assert check(log, at).permitted
    assert check(log, at, actor=LAB).reason == "consent-deny"


def test_time_order_wins_over_log_order(log):
    # an entry that waited out an outage lands later in the log than a newer one
    c_new = log.consent(ALICE, T0 + dt.timedelta(days=2), permit=False)
    log.consent(ALICE, T0)
    d = check(log, T0 + dt.timedelta(days=3))
    assert d.reason == "consent-deny" and deciders(d) == [("consent", log.index_of(c_new))]


def test_erased_body_fails_closed_and_history_says_so(log):
    c1 = log.consent(ALICE, T0)
    c2 = log.consent(ALICE, T0 + dt.timedelta(days=1))
    old_body = log.store.get_body(entry.decode_leaf(log.store.get_leaf(0))[0].body_hash)
    assert old_body is not None
    # the older body erased under retention: the newer consent still decides
    log.store.delete_body(entry.decode_leaf(log.store.get_leaf(0))[0].body_hash)
    d = check(log, T0 + dt.timedelta(days=2))
    assert d.permitted and deciders(d) == [("consent", log.index_of(c2))]
    items = history(log.store, ALICE)
    assert [i.body for i in items] == ["erased", "stored"]
    assert items[0].consent is None and items[0].entry_hash == c1
    audit.prove_entry(log.store, items[0].index).verify()  # the leaf still stands
    # the newest erased too: its terms are unknown, so the check denies and names it
    log.store.delete_body(entry.decode_leaf(log.store.get_leaf(1))[0].body_hash)
    d = check(log, T0 + dt.timedelta(days=2))
    assert d.reason == "body-erased" and deciders(d) == [("consent", log.index_of(c2))]


def test_altered_body_is_not_trusted(log):
    log.consent(ALICE, T0)
    bh = entry.decode_leaf(log.store.get_leaf(0))[0].body_hash
    forged, _ = entry.make_body({"consent": "{}"})
    log.store._conn.execute("UPDATE bodies SET body = ? WHERE body_hash = ?", (forged, bh))
    assert history(log.store, ALICE)[0].body == "altered"
    assert check(log, T0 + dt.timedelta(days=1)).reason == "body-altered"


def test_two_patients_are_not_mixed(log):
    log.consent(ALICE, T0)
    log.consent(BOB, T0, permit=False)
    log.withdraw(BOB, T0 + dt.timedelta(days=1))
    at = T0 + dt.timedelta(days=2)
    assert check(log, at).permitted
    d = check(log, at, patient=BOB)
    assert d.reason == "withdrawn"
    assert check(log, at, patient="p-nobody").reason == "no-consent"
    a = history(log.store, ALICE)
    b = history(log.store, BOB)
    assert [i.type for i in a] == ["consent"] and [i.type for i in b] == ["consent", "consent-withdrawal"]
    assert {i.index for i in a}.isdisjoint(i.index for i in b)


def test_history_lists_the_trail_in_log_order(log):
    ci = log.check_in(ALICE, T0)
    c = log.consent(ALICE, T0 + dt.timedelta(seconds=20), refs=(ci,))
    log.check_in(BOB, T0 + dt.timedelta(minutes=1))
    log._add("kiosk-event", None, {"event": "boot"}, T0 + dt.timedelta(minutes=2))
    log._add("staff-override", ALICE, {"staff": "s-1", "why": "no-biometrics"},
             T0 + dt.timedelta(minutes=3))
    w = log.withdraw(ALICE, T0 + dt.timedelta(days=4), refs=(c,))
    items = history(log.store, ALICE)
    assert [(i.index, i.type) for i in items] == [
        (0, "check-in"), (1, "consent"), (4, "staff-override"), (5, "consent-withdrawal")]
    consent = items[1]
    assert consent.refs == (ci,) and consent.kiosk == KIOSK and consent.created == ms(T0) + 20_000
    p = consent.consent
    assert isinstance(p, ConsentProvision)
    assert (p.decision, p.actors, p.actions, p.purposes) == ("permit", (CLINIC,), ("access", "collect"),
                                                            ("TREAT",))
    assert p.start == T0 + dt.timedelta(seconds=20)
    assert p.end == T0 + dt.timedelta(seconds=20, days=365)
    assert items[3].entry_hash == w and items[3].refs == (c,)
    assert json.loads(json.dumps([i.as_json() for i in items]))[1]["consent"]["decision"] == "permit"


def test_proofs_are_anchored_to_the_signed_checkpoint(log):
    log.consent(ALICE, T0)
    audit.make_checkpoint(log.store, LOG, LOG, LOG_KEY)
    log.check_in(BOB, T0 + dt.timedelta(hours=1))
    d = check(log, T0 + dt.timedelta(days=1), verifier=NoteVerifier(LOG, LOG_KEY.verify_key),
              origin=LOG)
    assert d.permitted and d.checkpoint_size == 1 and d.checkpoint_verified
    p = d.entries[0].proof
    assert p.from_size == 1 and p.size == 2 and p.from_root == log.store.root_hash(1)
    other = nacl.signing.SigningKey(bytes([13]) * 32)
    with pytest.raises(LogIntegrityError):
        check(log, T0 + dt.timedelta(days=1), verifier=NoteVerifier(LOG, other.verify_key))


def test_tampered_log_is_an_alarm_not_an_answer(log):
    log.consent(ALICE, T0)
    log.check_in(BOB, T0)
    # replace the consent leaf by another validly signed one, leaving the tree as it was
    body, bh = entry.make_body({"consent": "{}"})
    env = entry.new_envelope("consent", site=SITE, kiosk=KIOSK, body_hash=bh, created_ms=ms(T0),
                             patient=ALICE)
    leaf = entry.sign_leaf(env, KIOSK_KEY)
    log.store._conn.execute("UPDATE leaves SET leaf = ? WHERE idx = 0", (leaf,))
    with pytest.raises(LogIntegrityError) as e:
        check(log, T0 + dt.timedelta(days=1))
    assert e.value.reason == "bad-proof"


def test_kiosk_signatures_checked_when_keys_given(log):
    log.consent(ALICE, T0)
    log._add("consent-withdrawal", ALICE, {}, T0 + dt.timedelta(days=1),
             key=nacl.signing.SigningKey(bytes([14]) * 32))  # not this kiosk's key
    keys = {KIOSK: KIOSK_KEY.verify_key}
    assert check(log, T0 + dt.timedelta(hours=1)).permitted  # unchecked: no keys given
    with pytest.raises(LogIntegrityError) as e:
        check(log, T0 + dt.timedelta(hours=1), kiosk_key_for=keys.get)
    assert e.value.reason == "bad-signature"
    good = history(log.store, ALICE, size=1, kiosk_key_for=keys.get)
    assert good[0].signature == "ok"


def test_naive_times_are_utc_and_bad_input_is_refused(log):
    log.consent(ALICE, T0)
    assert check(log, (T0 + dt.timedelta(days=1)).replace(tzinfo=None)).permitted
    assert parse_time("2025-03-04T10:00:00Z") == dt.datetime(2025, 3, 4, 10, tzinfo=dt.UTC)
    assert parse_time("2025-03-04T11:00:00+01:00") == parse_time("2025-03-04T10:00:00")
    with pytest.raises(KioskError):
        parse_time("yesterday")
    with pytest.raises(KioskError):
        check(log, T0, actor="")


def test_read_provision_treats_missing_lists_as_all():
    c = build_consent(TERMS, patient=ALICE, permit=False, when=T0, language="en", text="x")
    del c["provision"]["actor"], c["provision"]["purpose"]
    p = read_provision(json.dumps(c))
    assert p.decision == "deny" and p.actors == () and p.names("Practitioner/9", "access", "ETREAT")
    assert not p.names("Practitioner/9", "disclose")


def test_generated_consent_is_a_valid_r4_consent():
    """An independent model library accepts what build_consent writes and what we read."""
    from fhir.resources.R4B.consent import Consent

    c = build_consent(TERMS, patient=ALICE, permit=True, when=T0, language="en", text="x")
    model = Consent.parse_obj(c) if not hasattr(Consent, "model_validate") \
        else Consent.model_validate(c)
    assert model.provision.type == "permit"
    assert [a.reference.reference for a in model.provision.actor] == [CLINIC]
    assert [cd.code for a in model.provision.action for cd in a.coding] == ["access", "collect"]
    assert [p.code for p in model.provision.purpose] == ["TREAT"]
    assert model.policyRule.coding[0].code == "OPTIN"
    ours = read_provision(json.dumps(c))
    assert ours.start == model.provision.period.start
    assert ours.end == model.provision.period.end


# ------------------------------------------------------------------ the command line

def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_history_and_consent_check(log, capsys):
    ci = log.check_in(ALICE, T0)
    c = log.consent(ALICE, T0 + dt.timedelta(seconds=20), refs=(ci,))
    log.withdraw(ALICE, T0 + dt.timedelta(days=3), refs=(c,))
    log.consent(BOB, T0)
    audit.make_checkpoint(log.store, LOG, LOG, LOG_KEY)
    db = str(log.path)
    vkey = verifier_key_text(LOG, LOG_KEY.verify_key)

    code, out, _ = _run(capsys, "ledger", "history", "--db", db, "--patient", ALICE)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3 and "check-in" in lines[0] and "withdrawal" in lines[2]
    assert "permit" in lines[1] and CLINIC in lines[1]
    code, out, _ = _run(capsys, "ledger", "history", "--db", db, "--patient", ALICE, "--json")
    got = json.loads(out)
    assert [e["index"] for e in got["entries"]] == [0, 1, 2] and got["tree_size"] == 4

    base = ["ledger", "consent-check", "--db", db, "--vkey", vkey, "--origin", LOG,
            "--patient", ALICE, "--actor", CLINIC, "--action", "access"]
    code, out, _ = _run(capsys, *base, "--at", "2025-03-04T09:00:00Z", "--purpose", "TREAT")
    assert code == 0, out
    assert out.startswith("PERMIT (consent-permit)") and "signature verified" in out
    code, out, _ = _run(capsys, *base, "--at", "2025-03-07T09:00:00Z", "--json")
    assert code == 3
    got = json.loads(out)
    assert got["verdict"] == "deny" and got["reason"] == "withdrawn"
    assert [e["role"] for e in got["entries"]] == ["consent", "withdrawal"]
    assert got["entries"][0]["entry_hash"] == c.hex() and got["checkpoint_verified"]
    code, out, _ = _run(capsys, *base[:-4], "--actor", LAB, "--action", "access",
                        "--at", "2025-03-04T09:00:00Z")
    assert code == 3 and out.startswith("DENY (no-consent)")


def test_cli_errors_are_one_line(log, capsys):
    code, _, err = _run(capsys, "ledger", "consent-check", "--db", str(log.path), "--patient",
                        ALICE, "--actor", CLINIC, "--action", "access", "--at", "soon")
    assert code == 64 and err.startswith("kiosk: --at: not an ISO 8601")
    code, _, err = _run(capsys, "ledger", "history", "--db", str(log.path.parent / "none.db"),
                        "--patient", ALICE)
    assert code == 66 and "no log store" in err
