"""The EHR link: after a check-in is in the log, the clinic's system learns it.

Kiosks never talk to the EHR; the gateway does, from the log. A worker reads new check-in
entries from the store (a cursor, so nothing appended is missed across restarts), looks up
the patient's EHR identifier in a gateway-only table (the pass carries only a pseudonymous
id), and tells the EHR through one connector: FHIR R4 (the day's Appointment PUT as arrived
with If-Match, an Encounter created; SMART Backend Services authorisation) or HL7 v2
(ADT^A04 over MLLP, MSA|AA required). Failures wait in a durable queue and are retried with
backoff; staff see them. Each final answer becomes a ledger entry that refers to the check-in,
so an audit shows both sides. See docs/design-notes.md ("EHR link").
"""
