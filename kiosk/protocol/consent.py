"""The consent record: an HL7 FHIR R4 Consent (as RFC 8785 JSON text) inside an entry body.

The body of a consent entry is
  {"consent": JCS JSON text of the Consent, "document": {id, version, language, text_sha256},
   "signature": {"strokes": [[[x, y, t_ms], ...], ...], "png": bytes}, "patient_sig"?: {...}}
The Consent names the patient only by the pass's pseudonymous identifier.

The optional patient signature (a second tap) cannot cover a body that contains it, so it
covers `signed_body_hash`: SHA-256(salt ‖ the body re-encoded without `patient_sig`), the
same salt kept. Kiosk, gateway and auditors all use this one function.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kiosk.errors import FormatError
from kiosk.protocol import cbor

PATIENT_ID_SYSTEM = "urn:kiosk:patient-pseudonym"
_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
_ROLE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_LOINC = "http://loinc.org"


def canonical_json(value: Any) -> str:
    """RFC 8785 (JCS) text for our value domain: strings, integers, bools, lists, maps.

    JCS orders keys by UTF-16 code units; our keys are ASCII, where that equals code points.
    Floats are refused rather than risk a number serialisation JCS would spell differently.
    """
    def check(v: Any) -> None:
        if isinstance(v, float):
            raise TypeError("floats are not used in consent records")
        if isinstance(v, dict):
            for k, x in v.items():
                if not isinstance(k, str):
                    raise TypeError("JSON keys must be strings")
                check(x)
        elif isinstance(v, list):
            for x in v:
                check(x)
    check(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def text_sha256(text: str) -> bytes:
    """The hash of the consent text shown, kept with the record."""
    return hashlib.sha256(text.encode("utf-8")).digest()


@dataclass(frozen=True)
class ConsentTerms:
    """What the clinic asks today (from the [consent] config table)."""

    document_id: str
    version: str
    organization: str
    purposes: tuple[str, ...]
    actions: tuple[str, ...]
    actors: tuple[str, ...]
    valid_days: int


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def build_consent(terms: ConsentTerms, *, patient: str, permit: bool, when: dt.datetime,
                  language: str, text: str) -> dict:
    """An R4 Consent resource: permit (accepted) or deny (declined) for the terms' period."""
    end = when + dt.timedelta(days=terms.valid_days)
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": _SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": _LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"identifier": {"system": PATIENT_ID_SYSTEM, "value": patient}},
        "dateTime": _iso(when),
        "organization": [{"reference": terms.organization}],
        "policyRule": {"coding": [{"system": _ACT, "code": "OPTIN" if permit else "OPTOUT"}]},
        "sourceAttachment": {"contentType": "text/plain", "language": language,
                             "title": f"{terms.document_id} v{terms.version}",
                             "hash": _b64(text_sha256(text))},
        "provision": {
            "type": "permit" if permit else "deny",
            "period": {"start": _iso(when), "end": _iso(end)},
            "actor": [{"role": {"coding": [{"system": _ROLE, "code": "PRCP"}]}, "reference": {"reference": a}}
                      for a in terms.actors],
            "action": [{"coding": [{"system": _ACTION, "code": a}]} for a in terms.actions],
            "purpose": [{"system": _ACT, "code": p} for p in terms.purposes],
        },
    }


def _b64(b: bytes) -> str:
    import base64
    return base64.b64encode(b).decode("ascii")


def consent_body(consent: dict, *, document_id: str, version: str, language: str, text: str,
                 strokes: list[list[list[int]]], signature_png: bytes,
                 patient_sig: dict | None = None, signer: dict | None = None) -> dict:
    """The body content of a consent entry (entry.make_body adds the salt).

    `signer` says how the signer was identified and how they showed intent (ESIGN/UETA):
    {"identified_by": binding, "channel": nfc|qr, "intent": "sign-button"}.
    """
    signature: dict = {"strokes": strokes, "png": signature_png}
    if signer is not None:
        signature["signer"] = signer
    body: dict = {
        "consent": canonical_json(consent),
        "document": {"id": document_id, "version": version, "language": language,
                     "text_sha256": text_sha256(text)},
        "signature": signature,
    }
    if patient_sig is not None:
        body["patient_sig"] = patient_sig
    return body


def signed_body_hash(body: bytes) -> bytes:
    """The hash a patient's consent signature covers: the body without `patient_sig`."""
    m = cbor.loads(body, "consent body")
    if not isinstance(m, dict) or not isinstance(m.get("salt"), bytes):
        raise FormatError("consent body: missing its salt")
    salt = m["salt"]
    m.pop("patient_sig", None)
    return hashlib.sha256(salt + cbor.dumps(m)).digest()


def with_patient_sig(body: bytes, statement: bytes, signature: bytes) -> bytes:
    """The consent body with the patient's signature added (same salt, so same signed hash)."""
    m = cbor.loads(body, "consent body")
    m["patient_sig"] = {"statement": statement, "sig": signature}
    return cbor.dumps(m)
