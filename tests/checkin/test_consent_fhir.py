"""The Consent resources the engine writes validate against an independent FHIR R4 model."""
from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.consent import Consent

from kiosk.checkin import engine as EN
from kiosk.checkin.headless import ScriptedPatient
from kiosk.protocol import entry, patient_pass
from kiosk.protocol.consent import PATIENT_ID_SYSTEM, text_sha256

from .fakes import FakeFaces, Rig, good_face


@pytest.mark.parametrize("decision,language", [("accept", None), ("decline", None), ("accept", "es")])
def test_engine_consent_is_valid_fhir_r4(decision: str, language: str | None) -> None:
    rig = Rig()
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]),
                               patient=ScriptedPatient(decision=decision, language=language))
    out = eng.run_once()
    assert out.status == (EN.CHECKED_IN if decision == "accept" else EN.CONSENT_DECLINED)
    body = entry.decode_body(sink.sessions[0][1][1])
    resource = json.loads(body["consent"])
    c = Consent.model_validate(resource)  # raises on any schema violation
    assert c.provision.type == ("permit" if decision == "accept" else "deny")
    assert c.patient.identifier.system == PATIENT_ID_SYSTEM
    assert c.patient.identifier.value == patient_pass.decode(w.pass_bytes).patient
    lang = language or "en"
    assert c.sourceAttachment.language == lang
    assert body["document"]["text_sha256"] == text_sha256(eng.consent_cfg.text[lang])
    # round trip: what the model serialises is the resource we wrote
    again = json.loads(c.model_dump_json(exclude_none=True))
    assert again["provision"]["type"] == resource["provision"]["type"]
    assert again["dateTime"].startswith(resource["dateTime"][:19])
