"""A patient's consent trail and the consent check (the brochure's "smart contract").

`history(store, patient)` lists every entry whose leaf names the patient (check-in, consent,
consent-withdrawal, staff-override), in log order, with what the consent bodies still say.
A body erased under the retention policy is reported as such: its leaf and proofs still
stand, only the terms are gone.

`consent_check(store, patient, actor, action, at)` decides permit or deny:

1. Candidates are the patient's consent entries created at or before `at`, newest first
   (by `created`, then log index: entries that waited out an outage sit later in the log
   than their time says).
2. The first candidate whose Consent is `active`, whose provision names the actor and the
   action (and the purpose, when one is asked), and whose period covers `at` decides:
   `permit` permits, `deny` denies. As in FHIR, a provision without actors / actions /
   purposes applies to all of them.
3. A consent-withdrawal entry for the patient, created at or before `at`, that names the
   deciding consent in `refs` or comes after it, turns the answer into deny ("withdrawn").
4. No deciding consent: deny ("no-consent").
5. Fail closed: a candidate newer than any decider whose body is erased or does not match
   its leaf's body_hash could have said anything, so the answer is deny ("body-erased" /
   "body-altered") naming that entry.

Every deciding entry comes with its RFC 9162 inclusion proof against the current tree head,
and, when the store holds a signed checkpoint, a consistency proof from that checkpoint; all
of it is verified before a Decision is returned (LogIntegrityError otherwise). With
`kiosk_key_for` the kiosk signature of every leaf of the patient is checked as well.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nacl.signing import VerifyKey

from kiosk.errors import FormatError, LogIntegrityError, UsageError, VerificationError
from kiosk.ledger import merkle
from kiosk.ledger.audit import EntryProof, iter_entries, prove_entry
from kiosk.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint, parse_note
from kiosk.ledger.store import LogStore
from kiosk.protocol import cbor, cose
from kiosk.protocol.consent import PATIENT_ID_SYSTEM
from kiosk.protocol.entry import body_hash_of, decode_body, decode_leaf, entry_hash

PATIENT_TYPES = ("check-in", "consent", "consent-withdrawal", "staff-override")

# body states in a HistoryItem
BODY_STORED, BODY_ERASED, BODY_ALTERED, BODY_UNREADABLE = "stored", "erased", "altered", "unreadable"

# Decision reasons (stable: they go into JSON)
PERMIT, DENY = "permit", "deny"
R_PERMIT = "consent-permit"
R_DENY = "consent-deny"
R_WITHDRAWN = "withdrawn"
R_NO_CONSENT = "no-consent"
R_BODY_ERASED = "body-erased"
R_BODY_ALTERED = "body-altered"

KioskKeyFor = Callable[[str], VerifyKey | Mapping[bytes, VerifyKey] | None]  # one key or by kid


# ---------------------------------------------------------------------------- time

def iso_ms(ms: int) -> str:
    """An entry's `created` as ISO 8601 UTC."""
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    """ISO 8601 (a trailing Z allowed); without an offset it is UTC. FormatError if not a time."""
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError):
        raise FormatError("not an ISO 8601 date-time") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def _fhir_time(text: Any, what: str) -> dt.datetime | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise FormatError(f"consent: {what} is not a date-time")
    if len(text) == 10:  # a FHIR date: the whole day, UTC (the kiosk writes date-times)
        text += "T00:00:00Z"
    return parse_time(text)


# ---------------------------------------------------------------------------- the terms

@dataclass(frozen=True)
class ConsentProvision:
    """What one stored Consent says, as far as the check needs it."""

    decision: str  # permit | deny
    status: str  # FHIR Consent.status: only "active" takes part in a check
    start: dt.datetime | None
    end: dt.datetime | None
    actors: tuple[str, ...]
    actions: tuple[str, ...]
    purposes: tuple[str, ...]
    patient: str | None  # the pseudonymous identifier the Consent names

    def covers(self, at: dt.datetime) -> bool:
        """Is `at` inside the period (both ends inclusive; a missing end is open)?"""
        return (self.start is None or self.start <= at) and (self.end is None or at <= self.end)

    def names(self, actor: str, action: str, purpose: str | None = None) -> bool:
        """Does the provision name this actor, action (and purpose)? Empty lists mean all."""
        return ((not self.actors or actor in self.actors)
                and (not self.actions or action in self.actions)
                and (purpose is None or not self.purposes or purpose in self.purposes))

    def as_json(self) -> dict[str, Any]:
        def t(x: dt.datetime | None) -> str | None:
            return None if x is None else x.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        return {"decision": self.decision, "status": self.status,
                "period": {"start": t(self.start), "end": t(self.end)},
                "actors": list(self.actors), "actions": list(self.actions),
                "purposes": list(self.purposes)}


def read_provision(consent_json: str) -> ConsentProvision:
    """Read the provision of a Consent (RFC 8785 JSON text); FormatError if it is not one."""
    try:
        c = json.loads(consent_json)
    except (ValueError, TypeError):
        raise FormatError("consent: not JSON") from None
    if not isinstance(c, dict) or c.get("resourceType") != "Consent":
        raise FormatError("consent: not a FHIR Consent")
    prov = c.get("provision")
    if not isinstance(prov, dict) or prov.get("type") not in (PERMIT, DENY):
        raise FormatError("consent: provision.type must be permit or deny")
    period = prov.get("period") or {}
    if not isinstance(period, dict):
        raise FormatError("consent: bad provision.period")

    def strings(items: Any, pick: Callable[[dict], list[Any]], what: str) -> tuple[str, ...]:
        if items is None:
            return ()
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise FormatError(f"consent: bad provision.{what}")
        out = [v for i in items for v in pick(i)]
        if not all(isinstance(v, str) for v in out):
            raise FormatError(f"consent: bad provision.{what}")
        return tuple(out)

    def actor_ref(a: dict) -> list[Any]:
        ref = a.get("reference")
        return [ref.get("reference")] if isinstance(ref, dict) and "reference" in ref else []

    def action_codes(a: dict) -> list[Any]:
        coding = a.get("coding") or []
        return [x.get("code") for x in coding if isinstance(x, dict) and "code" in x] \
            if isinstance(coding, list) else [None]

    def purpose_code(p: dict) -> list[Any]:
        return [p["code"]] if "code" in p else []

    patient = None
    ident = (c.get("patient") or {}).get("identifier") if isinstance(c.get("patient"), dict) else None
    if isinstance(ident, dict) and ident.get("system") == PATIENT_ID_SYSTEM:
        patient = ident.get("value")
    return ConsentProvision(
        decision=prov["type"], status=str(c.get("status", "")),
        start=_fhir_time(period.get("start"), "period.start"),
        end=_fhir_time(period.get("end"), "period.end"),
        actors=strings(prov.get("actor"), actor_ref, "actor"),
        actions=strings(prov.get("action"), action_codes, "action"),
        purposes=strings(prov.get("purpose"), purpose_code, "purpose"),
        patient=patient if isinstance(patient, str) else None)


# ---------------------------------------------------------------------------- history

@dataclass(frozen=True)
class HistoryItem:
    """One entry of a patient's trail. `consent` is set for a consent entry whose body is
    stored and readable; `body` says stored | erased | altered | unreadable."""

    index: int
    type: str
    created: int  # Unix ms, as the kiosk signed it
    kiosk: str
    site: str
    entry_hash: bytes
    leaf_hash: bytes  # RFC 9162 leaf hash (what the inclusion proof starts from)
    refs: tuple[bytes, ...]
    body: str
    consent: ConsentProvision | None = None
    signature: str = "unchecked"  # unchecked | ok (with kiosk_key_for)

    @property
    def created_iso(self) -> str:
        return iso_ms(self.created)

    @property
    def order(self) -> tuple[int, int]:
        """Sort key "newest last": time as signed, then position in the log."""
        return (self.created, self.index)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index, "type": self.type, "created": self.created_iso,
            "created_ms": self.created, "kiosk": self.kiosk, "site": self.site,
            "entry_hash": self.entry_hash.hex(), "refs": [r.hex() for r in self.refs],
            "body": self.body, "signature": self.signature}
        if self.consent is not None:
            out["consent"] = self.consent.as_json()
        return out


def _read_body(store: LogStore, body_hash: bytes, is_consent: bool,
               patient: str) -> tuple[str, ConsentProvision | None]:
    body = store.get_body(body_hash)
    if body is None:
        return BODY_ERASED, None
    try:
        if body_hash_of(body) != body_hash:
            return BODY_ALTERED, None
        if not is_consent:
            return BODY_STORED, None
        content = decode_body(body)
        text = content.get("consent")
        if not isinstance(text, str):
            return BODY_UNREADABLE, None
        prov = read_provision(text)
    except FormatError:
        return BODY_UNREADABLE, None
    if prov.patient is not None and prov.patient != patient:
        return BODY_ALTERED, None  # a Consent for someone else under this patient's leaf
    return BODY_STORED, prov


def history(store: LogStore, patient: str, *, size: int | None = None,
            kiosk_key_for: KioskKeyFor | None = None) -> list[HistoryItem]:
    """The patient's consent trail in log order, over the first `size` entries (default: all).

    With `kiosk_key_for` (kiosk id → Ed25519 key) every listed leaf's kiosk signature is
    checked; a leaf that fails raises LogIntegrityError (the gateway checked it on append).
    """
    if not isinstance(patient, str) or not patient:
        raise UsageError("a patient id is required")
    size = store.size() if size is None else size
    needle = cbor.dumps(patient)  # the id as CBOR text: a cheap filter before decoding
    items: list[HistoryItem] = []
    for index, leaf in iter_entries(store):
        if index >= size:
            break
        if needle not in leaf:
            continue
        try:
            env, _ = decode_leaf(leaf)
        except FormatError as e:
            raise LogIntegrityError(f"entry {index} does not decode as a leaf: {e.message}",
                                    reason="leaf-malformed") from None
        if env.patient != patient or env.type not in PATIENT_TYPES:
            continue
        signature = "unchecked"
        if kiosk_key_for is not None:
            key = kiosk_key_for(env.kiosk)
            try:
                if key is None:
                    raise VerificationError("kiosk is not in the registry")
                cose.verify_sign1(leaf, key, "leaf")
            except (VerificationError, FormatError):
                raise LogIntegrityError(f"entry {index}: its kiosk signature does not verify",
                                        reason="bad-signature") from None
            signature = "ok"
        state, prov = _read_body(store, env.body_hash, env.type == "consent", patient)
        items.append(HistoryItem(index, env.type, env.created, env.kiosk, env.site,
                                 entry_hash(leaf), merkle.leaf_hash(leaf), env.refs, state, prov,
                                 signature))
    return items


# ---------------------------------------------------------------------------- the check

@dataclass(frozen=True)
class DecidingEntry:
    """An entry that decided, and its proofs (already verified)."""

    role: str  # consent | withdrawal
    item: HistoryItem
    proof: EntryProof

    def as_json(self) -> dict[str, Any]:
        p = self.proof
        out = {"role": self.role, **self.item.as_json(),
               "proof": {"index": p.index, "size": p.size, "leaf_hash": p.leaf_hash.hex(),
                         "root": p.root.hex(), "inclusion": [h.hex() for h in p.inclusion]}}
        if p.from_size is not None:
            out["proof"].update(from_size=p.from_size, from_root=(p.from_root or b"").hex(),
                                consistency=[h.hex() for h in p.consistency or []])
        return out


@dataclass(frozen=True)
class Decision:
    """permit or deny, why, and the entries (with verified proofs) that decided it."""

    verdict: str  # permit | deny
    reason: str  # consent-permit | consent-deny | withdrawn | no-consent | body-erased | body-altered
    detail: str
    patient: str
    actor: str
    action: str
    purpose: str | None
    at: dt.datetime
    tree_size: int
    root: bytes
    entries: tuple[DecidingEntry, ...] = ()
    checkpoint_size: int | None = None  # the signed checkpoint the proofs are anchored to
    checkpoint_verified: bool = False  # its signature checked against the log key
    considered: int = 0  # consent + withdrawal entries of the patient up to `at`

    @property
    def permitted(self) -> bool:
        return self.verdict == PERMIT

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "detail": self.detail,
                "patient": self.patient, "actor": self.actor, "action": self.action,
                "purpose": self.purpose,
                "at": self.at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                "tree_size": self.tree_size, "root": self.root.hex(),
                "checkpoint_size": self.checkpoint_size,
                "checkpoint_verified": self.checkpoint_verified,
                "considered": self.considered,
                "entries": [e.as_json() for e in self.entries]}


def _anchor(store: LogStore, size: int, verifier: NoteVerifier | None,
            origin: str | None) -> tuple[Checkpoint | None, bool]:
    """The latest saved checkpoint (signature checked with `verifier`), if it is usable."""
    latest = store.latest_checkpoint()
    if latest is None:
        return None, False
    note = latest[1]
    try:
        if verifier is not None:
            return _within(open_checkpoint(note, verifier, origin), size), True
        return _within(Checkpoint.from_text(parse_note(note)[0]), size), False
    except (FormatError, VerificationError) as e:
        raise LogIntegrityError(f"latest checkpoint: {e.message}",
                                reason="checkpoint-signature") from None


def _within(cp: Checkpoint, size: int) -> Checkpoint | None:
    if cp.size > size:
        raise LogIntegrityError(f"the log holds {size} entries but a signed checkpoint "
                                f"commits to {cp.size} (rolled back?)", reason="checkpoint-size")
    return cp if cp.size > 0 else None


def _prove(store: LogStore, item: HistoryItem, size: int, cp: Checkpoint | None) -> EntryProof:
    try:
        proof = prove_entry(store, item.index, size, cp.size if cp else None)
        if proof.leaf_hash != item.leaf_hash:
            raise VerificationError("the leaf changed while it was being proved")
        if cp is not None and proof.from_root != cp.root_hash:
            raise VerificationError("the log's tree at the checkpoint's size is not the one "
                                    "the checkpoint signed")
        proof.verify()
    except VerificationError as e:
        raise LogIntegrityError(f"entry {item.index}: {e.message}",
                                reason="bad-proof") from None
    return proof


def consent_check(store: LogStore, patient: str, actor: str, action: str, at: dt.datetime,
                  purpose: str | None = None, *, verifier: NoteVerifier | None = None,
                  origin: str | None = None,
                  kiosk_key_for: KioskKeyFor | None = None) -> Decision:
    """May `actor` do `action` (for `purpose`) on the patient's records at time `at`?

    See the module docstring for the rules. `verifier`/`origin` check the signed checkpoint
    the proofs are anchored to; `kiosk_key_for` checks the leaves' kiosk signatures.
    """
    for name, value in (("actor", actor), ("action", action)):
        if not isinstance(value, str) or not value:
            raise UsageError(f"consent check: {name} is required")
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    at_ms = int(at.timestamp() * 1000)
    size = store.size()
    cp, cp_verified = _anchor(store, size, verifier, origin)
    root = store.root_hash(size)
    trail = history(store, patient, size=size, kiosk_key_for=kiosk_key_for)
    consents = sorted((i for i in trail if i.type == "consent" and i.created <= at_ms),
                      key=lambda i: i.order, reverse=True)
    withdrawals = sorted((i for i in trail if i.type == "consent-withdrawal"
                          and i.created <= at_ms), key=lambda i: i.order)

    decider: HistoryItem | None = None
    blocker: HistoryItem | None = None
    lapsed: HistoryItem | None = None  # the newest consent that names them but not at `at`
    for item in consents:
        prov = item.consent
        if prov is None:
            blocker = item
            break
        if prov.status != "active" or not prov.names(actor, action, purpose):
            continue
        if not prov.covers(at):
            lapsed = lapsed or item
            continue
        decider = item
        break

    def decide(verdict: str, reason: str, detail: str,
               roles: list[tuple[str, HistoryItem]]) -> Decision:
        entries = tuple(DecidingEntry(role, it, _prove(store, it, size, cp)) for role, it in roles)
        return Decision(verdict, reason, detail, patient, actor, action, purpose, at, size, root,
                        entries, cp.size if cp else None, cp_verified,
                        len(consents) + len(withdrawals))

    if blocker is not None:
        reason = R_BODY_ERASED if blocker.body == BODY_ERASED else R_BODY_ALTERED
        return decide(DENY, reason, f"consent entry {blocker.index} is the newest candidate but "
                      f"its body is {blocker.body}: its terms cannot be read",
                      [("consent", blocker)])
    if decider is None:
        if lapsed is not None:
            assert lapsed.consent is not None
            when = "ended" if lapsed.consent.end is not None and lapsed.consent.end < at \
                else "not begun"
            detail = f"the newest matching consent (entry {lapsed.index}) has {when} at that time"
        else:
            detail = "no consent entry names this actor and action at that time"
        return decide(DENY, R_NO_CONSENT, detail, [])
    naming = [w for w in withdrawals if decider.entry_hash in w.refs]
    after = [w for w in withdrawals if w.order > decider.order]
    withdrawal = (naming or after)[0] if (naming or after) else None
    if withdrawal is not None:
        return decide(DENY, R_WITHDRAWN, f"consent entry {decider.index} was withdrawn by "
                      f"entry {withdrawal.index}", [("consent", decider), ("withdrawal", withdrawal)])
    assert decider.consent is not None
    if decider.consent.decision == PERMIT:
        return decide(PERMIT, R_PERMIT, f"consent entry {decider.index} permits it",
                      [("consent", decider)])
    return decide(DENY, R_DENY, f"consent entry {decider.index} denies it", [("consent", decider)])
