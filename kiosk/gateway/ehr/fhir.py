"""FHIR R4: the day's booked Appointment becomes "arrived" (If-Match), an Encounter opens.

The Appointment is updated with `If-Match: W/"version"`: when the EHR answers 412 (someone
changed it meanwhile) it is read again and, if it is still booked, updated on the new
version; if it was cancelled or moved meanwhile it is left alone (never overwritten) and
staff are told. The Encounter is a conditional create keyed by the check-in's entry hash, so
a retry after a lost answer never opens a second one.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from kiosk.gateway.ehr.connector import Arrival, EhrAnswer
from kiosk.gateway.ehr.smart import AuthRefused, SmartToken, load_key

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
ENTRY_SYSTEM = "urn:ietf:rfc:3986"
MAX_CONFLICT_RETRIES = 3


class _Unavailable(Exception):
    pass


class _Unauthorised(Exception):
    pass


class FhirConnector:
    kind = "fhir"

    def __init__(self, base_url: str, *, smart_client_id: str | None = None, smart_key: Path | None = None,
                 token_url: str | None = None, scope: str = "system/Patient.read system/Appointment.*"
                 " system/Encounter.*", ca_file: Path | None = None, timeout_s: float = 10.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._ssl = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
        self.token: SmartToken | None = None
        if smart_client_id:
            if smart_key is None:
                raise ValueError("SMART needs a client key")
            url = token_url or self._discover_token_url()
            self.token = SmartToken(load_key(smart_key), smart_client_id, url, scope, self._post_form)

    # ---------------------------------------------------------------- HTTP
    def _open(self, req: urllib.request.Request) -> tuple[int, dict[str, str], Any]:
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=self._ssl) as resp:
                status, headers, raw = resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, dict(e.headers or {}), e.read()
        except (urllib.error.URLError, OSError) as e:
            raise _Unavailable(type(e).__name__) from None
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return status, {k.lower(): v for k, v in headers.items()}, body

    def _post_form(self, url: str, form: bytes) -> tuple[int, Any]:
        req = urllib.request.Request(url, data=form, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "Accept": "application/json"})
        status, _, body = self._open(req)
        return status, body

    def _discover_token_url(self) -> str:
        req = urllib.request.Request(self.base + "/.well-known/smart-configuration",
                                     headers={"Accept": "application/json"})
        try:
            status, _, body = self._open(req)
        except _Unavailable:
            status, body = 0, None
        if status != 200 or not isinstance(body, dict) or "token_endpoint" not in body:
            raise ValueError(f"{self.base}: no SMART configuration; set [ehr] smart_token_url")
        return str(body["token_endpoint"])

    def _call(self, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        h = {"Accept": FHIR_JSON, **(headers or {})}
        if self.token is not None:
            h["Authorization"] = "Bearer " + self.token.get()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = FHIR_JSON
        status, rh, rb = self._open(urllib.request.Request(self.base + path, data=data, method=method, headers=h))
        if status == 401:
            if self.token is not None:
                self.token.forget()
            raise _Unauthorised()
        if status >= 500:
            raise _Unavailable(f"HTTP {status}")
        return status, rh, rb

    def _search(self, rtype: str, params: dict[str, str]) -> list[dict]:
        status, _, bundle = self._call("GET", f"/{rtype}?" + urllib.parse.urlencode(params))
        if status != 200 or not isinstance(bundle, dict):
            raise _Unavailable(f"search answered {status}")
        return [e["resource"] for e in bundle.get("entry", []) if isinstance(e, dict) and "resource" in e]

    # ---------------------------------------------------------------- the job
    def notify(self, arrival: Arrival) -> EhrAnswer:
        try:
            return self._notify(arrival)
        except AuthRefused as e:
            return EhrAnswer("auth-refused", e.message)
        except _Unauthorised:
            return EhrAnswer("auth-refused", "the EHR refused the access token")
        except _Unavailable as e:
            return EhrAnswer("unavailable", f"the EHR is unreachable ({e})")

    def _notify(self, arrival: Arrival) -> EhrAnswer:
        patients = self._search("Patient", {"identifier": f"{arrival.ehr_system}|{arrival.ehr_value}"})
        if len(patients) != 1:
            return EhrAnswer("no-mapping", f"{len(patients)} EHR patients have the mapped identifier")
        patient_ref = f"Patient/{patients[0]['id']}"
        at = dt.datetime.fromtimestamp(arrival.arrived_ms / 1000).astimezone()
        # "arrived" too: a retry after an answer that was lost finds its own earlier update
        today = self._search("Appointment", {"patient": patient_ref, "date": at.date().isoformat(),
                                             "status": "booked,arrived"})
        if not today:
            return EhrAnswer("no-appointment", "no booked appointment today")
        appt = min(today, key=lambda a: (a.get("status") != "booked", str(a.get("start", ""))))
        if appt.get("status") == "arrived":
            # arrived already: a second check-in of the same visit, or a retry after a lost
            # answer; the visit's Encounter is not opened twice
            status, _, found = self._call("GET", f"/Encounter?appointment=Appointment/{appt['id']}")
            enc = [e["resource"] for e in (found or {}).get("entry", []) if "resource" in e] \
                if status == 200 and isinstance(found, dict) else []
            if enc:
                return EhrAnswer("arrived", "already arrived", {"appointment": f"Appointment/{appt['id']}",
                                                                "encounter": f"Encounter/{enc[0].get('id', '')}"})
        for _ in range(MAX_CONFLICT_RETRIES):
            if appt.get("status") == "arrived":
                break
            version = str(appt.get("meta", {}).get("versionId", ""))
            status, _, _ = self._call("PUT", f"/Appointment/{appt['id']}", {**appt, "status": "arrived"},
                                      {"If-Match": f'W/"{version}"'})
            if status in (200, 201):
                break
            if status not in (409, 412):
                return EhrAnswer("refused", f"the EHR answered {status} to the appointment update")
            # stale: read it again; update only if it is still the booked appointment we meant
            status, _, fresh = self._call("GET", f"/Appointment/{appt['id']}")
            if status != 200 or not isinstance(fresh, dict):
                return EhrAnswer("error", f"re-reading the appointment answered {status}")
            if fresh.get("status") == "arrived":
                break
            if fresh.get("status") != "booked":
                return EhrAnswer("conflict", f"the appointment changed to {fresh.get('status')!s:.20} meanwhile")
            appt = fresh
        else:
            return EhrAnswer("conflict", "the appointment kept changing")
        encounter = {
            "resourceType": "Encounter", "status": "arrived",
            "identifier": [{"system": ENTRY_SYSTEM, "value": "urn:kiosk:entry:" + arrival.entry_hash.hex()}],
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": patient_ref},
            "appointment": [{"reference": f"Appointment/{appt['id']}"}],
            "period": {"start": at.isoformat(timespec="seconds")},
        }
        status, _, created = self._call(
            "POST", "/Encounter", encounter,
            {"If-None-Exist": f"identifier={ENTRY_SYSTEM}|urn:kiosk:entry:{arrival.entry_hash.hex()}",
             "Prefer": "return=representation"})
        if status not in (200, 201) or not isinstance(created, dict):
            return EhrAnswer("refused", f"the EHR answered {status} to the encounter")
        return EhrAnswer("arrived", "", {"appointment": f"Appointment/{appt['id']}",
                                         "encounter": f"Encounter/{created.get('id', '')}"})
