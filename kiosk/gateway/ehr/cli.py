"""`kiosk gateway ehr init | jwks | map add|import|remove | status | retry` (on the gateway host)."""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def register(gateway_sub: argparse._SubParsersAction) -> None:
    p = gateway_sub.add_parser("ehr", help="the EHR link: keys, the patient identifier map, the retry queue")
    sub = p.add_subparsers(dest="ehr_command", metavar="ACTION", required=True)

    def cmd(name: str, help: str, func, *, json_out: bool = False) -> argparse.ArgumentParser:
        a = sub.add_parser(name, help=help)
        a.add_argument("--config", type=Path, default=None, help="config file (default /etc/kiosk/kiosk.toml)")
        if json_out:
            a.add_argument("--json", action="store_true", help="print JSON")
        a.set_defaults(func=func)
        return a

    cmd("init", "make the gateway's entry key and SMART ES384 key; register the entry key", _init)
    cmd("jwks", "print the SMART client's public JWK Set (register it with the EHR)", _jwks)
    m = sub.add_parser("map", help="the pseudonymous-id -> EHR-identifier map (0600; PHI)")
    msub = m.add_subparsers(dest="map_command", metavar="ACTION", required=True)
    for name, help_, func in (("add", "map one patient", _map_add),
                              ("import", "map patients from a CSV file", _map_import),
                              ("remove", "forget one patient's mapping", _map_remove)):
        a = msub.add_parser(name, help=help_)
        a.add_argument("--config", type=Path, default=None)
        a.set_defaults(func=func)
        if name == "import":
            a.add_argument("csv", type=Path, help="rows: patient id, identifier system, identifier value")
        else:
            a.add_argument("patient", help="the pass's pseudonymous patient id (p-...)")
        if name == "add":
            a.add_argument("system", help="identifier system, e.g. urn:oid:1.2.3.4.5.1 (the MRN's)")
            a.add_argument("value", help="the patient's identifier in the EHR")
    cmd("status", "the queue: what waits for the EHR, and why (no patient data)", _status, json_out=True)
    cmd("retry", "make every waiting report due now", _retry)


def _cfg(args: argparse.Namespace):
    from kiosk import config

    return config.load(args.config)


def _state(args: argparse.Namespace):
    from kiosk.gateway.ehr.state import EhrState

    cfg = _cfg(args)
    return EhrState(cfg.state_path(cfg.ehr.state_path))


def _init(args: argparse.Namespace) -> int:
    from kiosk.gateway.ehr import smart
    from kiosk.gateway.registry import open_registry
    from kiosk.protocol import keys

    cfg = _cfg(args)
    made = []
    if not cfg.ehr.entry_key.exists():
        keys.new_signing_key(cfg.ehr.entry_key)
        made.append(str(cfg.ehr.entry_key))
    if cfg.ehr.kind == "fhir" and cfg.ehr.smart_client_id and not cfg.ehr.smart_key.exists():
        smart.new_key(cfg.ehr.smart_key)
        made.append(str(cfg.ehr.smart_key))
    with open_registry(cfg) as reg:
        key = keys.load_signing_key(cfg.ehr.entry_key).verify_key
        current = reg.key_for(cfg.gateway.client_id)
        if current is None or bytes(current) != bytes(key):
            reg.add(cfg.gateway.client_id, key, replace=current is not None, service=True)
    print(json.dumps({"made": made, "registered": cfg.gateway.client_id}))
    return 0


def _jwks(args: argparse.Namespace) -> int:
    from kiosk.gateway.ehr import smart

    print(json.dumps({"keys": [smart.public_jwk(smart.load_key(_cfg(args).ehr.smart_key))]}, indent=2))
    return 0


def _map_add(args: argparse.Namespace) -> int:
    from kiosk.errors import UsageError
    from kiosk.protocol.patient_pass import PATIENT_ID_RE

    if not PATIENT_ID_RE.match(args.patient):
        raise UsageError("a patient id looks like p- and 20 hex digits")
    st = _state(args)
    st.map_patient(args.patient, args.system, args.value)
    st.close()
    print("mapped 1 patient")
    return 0


def _map_import(args: argparse.Namespace) -> int:
    from kiosk.errors import FormatError, from_os_error
    from kiosk.protocol.patient_pass import PATIENT_ID_RE

    try:
        with open(args.csv, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    except OSError as e:
        raise from_os_error(e, str(args.csv)) from None
    for n, r in enumerate(rows, 1):
        if len(r) != 3 or not PATIENT_ID_RE.match(r[0].strip()):
            raise FormatError(f"{args.csv}: row {n} is not 'patient id, system, value'")  # row content not shown
    st = _state(args)
    for patient, system, value in rows:
        st.map_patient(patient.strip(), system.strip(), value.strip())
    st.close()
    print(f"mapped {len(rows)} patients")
    return 0


def _map_remove(args: argparse.Namespace) -> int:
    st = _state(args)
    gone = st.unmap_patient(args.patient)
    st.close()
    print("removed" if gone else "not mapped")
    return 0 if gone else 1


def _status(args: argparse.Namespace) -> int:
    st = _state(args)
    jobs = st.all()
    rows = [{"entry": j.entry_hash.hex()[:12], "state": j.state, "answer": j.answer, "attempts": j.attempts,
             "next_retry": j.next_at if j.state == "pending" and j.attempts else None, "detail": j.detail}
            for j in jobs if j.state != "done" or j.answer != "arrived"]
    summary = {"mapped_patients": st.mapped_count(), "reported": sum(j.answer == "arrived" and j.state == "done"
                                                                      for j in jobs),
               "waiting": sum(j.state == "pending" for j in jobs), "problems": rows}
    st.close()
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"EHR link: {summary['reported']} check-ins reported, {summary['waiting']} waiting, "
              f"{summary['mapped_patients']} patients mapped")
        for r in rows:
            print(f"  {r['entry']}  {r['state']:<8} {r['answer'] or '-':<15} attempts {r['attempts']}  {r['detail']}")
    return 0


def _retry(args: argparse.Namespace) -> int:
    st = _state(args)
    n = st.retry_now()
    st.close()
    print(f"{n} waiting reports are due now (the running gateway picks them up)")
    return 0
