"""The two ledger entries of a check-in session: check-in and consent (docs/design-notes.md).

Both leaves are signed by the kiosk key and written in ONE outbox transaction; the consent
leaf's `refs` names the check-in leaf's entry hash. Both records carry the session's
presentation, and both leaves its capture time (`captured`), so the gateway judges the pass
at the time it was shown, however long the consent took.

The optional patient-key consent signature covers `kiosk.protocol.consent.signed_body_hash`.
"""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from nacl.signing import SigningKey

from kiosk.protocol import entry
from kiosk.protocol.consent import ConsentTerms, build_consent, consent_body
from kiosk.protocol.patient_pass import PatientPass
from kiosk.protocol.presentation import Presentation

BINDING_PATIENT_KEY = "patient-key+face"  # a phone signed the presentation; the face matched
BINDING_FACE_ONLY = "face-only"           # a Type 4 card has no patient key (docs/design-notes.md)


@dataclass(frozen=True)
class SessionFacts:
    """What the session established, PHI-free except the pseudonymous patient id."""

    site: str
    kiosk: str
    channel: str                 # nfc | qr
    presentation: Presentation
    pass_: PatientPass
    face_attempts: int
    liveness_status: str
    liveness_method: str
    created_ms: int
    captured_ms: int             # when the credential was read
    liveness_required: bool = True   # False only where the config turned liveness off
    liveness_attempts: int = 0


def checkin_content(f: SessionFacts) -> dict:
    """The check-in body: how the patient was bound to the pass. No distance, no template."""
    return {
        "kind": "check-in",
        "channel": f.channel,
        "presentation_kind": f.presentation.kind,
        "presentation_hash": f.presentation.presentation_hash,
        "pass_id": f.pass_.pass_id,
        "binding": binding_of(f.presentation),
        "face": {"verified": True, "attempts": f.face_attempts},
        # the liveness mode and result, in every entry: "required": False is the explicit
        # `engine.liveness = "none"` setting, never a silent default
        "liveness": {"status": f.liveness_status, "method": f.liveness_method, "required": f.liveness_required,
                     "attempts": f.liveness_attempts},
    }


def binding_of(presentation: Presentation) -> str:
    """How a session's patient was identified: patient key + face, or the face alone (card)."""
    return BINDING_FACE_ONLY if presentation.kind == "card" else BINDING_PATIENT_KEY


def signer_of(channel: str, presentation: Presentation, permit: bool) -> dict:
    """The consent signature's signer: how identified, by which channel, how intent was shown."""
    return {"identified_by": binding_of(presentation), "channel": channel,
            "intent": "sign-button" if permit else "decline-button"}


def consent_content(terms: ConsentTerms, *, patient: str, permit: bool, when: dt.datetime,
                    language: str, text: str, strokes: list, signature_png: bytes,
                    signer: dict | None = None) -> dict:
    """The consent body content (FHIR R4 Consent inside) before any patient signature."""
    resource = build_consent(terms, patient=patient, permit=permit, when=when, language=language, text=text)
    return consent_body(resource, document_id=terms.document_id, version=terms.version, language=language,
                        text=text, strokes=strokes, signature_png=signature_png, signer=signer)


def make_session_records(f: SessionFacts, kiosk_key: SigningKey, consent_body_bytes: bytes,
                         ) -> tuple[list[tuple[bytes, bytes, dict | None]], list[bytes]]:
    """Sign the check-in and consent leaves; return (outbox records, entry hashes)."""
    ci_body, ci_hash = entry.make_body(checkin_content(f))
    ci_env = entry.new_envelope("check-in", site=f.site, kiosk=f.kiosk, body_hash=ci_hash,
                                created_ms=f.created_ms, patient=f.pass_.patient, captured_ms=f.captured_ms)
    ci_leaf = entry.sign_leaf(ci_env, kiosk_key)
    ci_entry = entry.entry_hash(ci_leaf)
    co_hash = entry.body_hash_of(consent_body_bytes)
    co_env = entry.new_envelope("consent", site=f.site, kiosk=f.kiosk, body_hash=co_hash,
                                created_ms=f.created_ms, refs=(ci_entry,), patient=f.pass_.patient,
                                captured_ms=f.captured_ms)
    co_leaf = entry.sign_leaf(co_env, kiosk_key)
    pres = f.presentation.to_map()
    records: list[tuple[bytes, bytes, dict | None]] = [(ci_leaf, ci_body, pres), (co_leaf, consent_body_bytes, pres)]
    return records, [ci_entry, entry.entry_hash(co_leaf)]


def signature_png(strokes: list, size: tuple[int, int] = (600, 200)) -> bytes:
    """Render finger strokes to a small black-on-white PNG kept with the consent (docs/design-notes.md).

    Strokes are [[x, y, t_ms], ...] in any pixel frame; they are fitted into `size`.
    """
    from PIL import Image, ImageDraw

    img = Image.new("L", size, 255)
    pts = [(p[0], p[1]) for s in strokes for p in s]
    if pts:
        x0, y0 = min(p[0] for p in pts), min(p[1] for p in pts)
        x1, y1 = max(p[0] for p in pts), max(p[1] for p in pts)
        pad = 10
        sx = (size[0] - 2 * pad) / max(1, x1 - x0)
        sy = (size[1] - 2 * pad) / max(1, y1 - y0)
        s = min(sx, sy)
        draw = ImageDraw.Draw(img)
        for stroke in strokes:
            line = [(pad + (p[0] - x0) * s, pad + (p[1] - y0) * s) for p in stroke]
            if len(line) == 1:
                line = line * 2
            draw.line(line, fill=0, width=3)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def override_content(*, staff_id: str, reason: str, ticket: str, action: str = "check-in") -> dict:
    """A staff override's body: who (the pseudonymous staff id, never a name), why, and what.

    The patient was identified at the desk, not by a pass, so the entry names no patient:
    the ticket links it to the queue of the day.
    """
    return {"kind": "staff-override", "action": action, "staff_id": staff_id, "reason": reason,
            "ticket": ticket}


def make_override_record(*, site: str, kiosk: str, kiosk_key: SigningKey, staff_id: str, reason: str,
                         ticket: str, created_ms: int) -> tuple[tuple[bytes, bytes, dict | None], bytes]:
    """Sign a staff-override leaf (kiosk key); return (outbox record, entry hash).

    It carries no presentation: the gateway accepts staff-override entries without one.
    """
    body, body_hash = entry.make_body(override_content(staff_id=staff_id, reason=reason, ticket=ticket))
    env = entry.new_envelope("staff-override", site=site, kiosk=kiosk, body_hash=body_hash,
                             created_ms=created_ms)
    leaf = entry.sign_leaf(env, kiosk_key)
    return (leaf, body, None), entry.entry_hash(leaf)
