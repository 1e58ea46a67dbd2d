"""The EHR link against real peers: a FHIR R4 server (sekmet-fhir, SQLite, its simulator off,
SMART Backend Services on) started by the test, and an MLLP listener from the `hl7` package.

A check-in in the log becomes: the day's booked Appointment "arrived" (If-Match; a stale
version is re-read, never overwritten), an Encounter referring to it, and an `ehr-update`
ledger entry referring to the check-in. Failures (server down, token refused, no
appointment) wait and are retried; nothing of the patient reaches the logs.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("sekmet", reason="sekmet-fhir (test extra) is not installed")
hl7 = pytest.importorskip("hl7")

import contextlib

from kiosk.gateway.ehr import smart  # noqa: E402
from kiosk.gateway.ehr.connector import Arrival, EhrAnswer  # noqa: E402
from kiosk.gateway.ehr.fhir import FhirConnector  # noqa: E402
from kiosk.gateway.ehr.hl7v2 import MllpConnector, adt_a04, escape  # noqa: E402
from kiosk.gateway.ehr.sandbox import FhirSandbox  # noqa: E402
from kiosk.gateway.ehr.state import EhrState  # noqa: E402
from kiosk.gateway.ehr.worker import EhrWorker  # noqa: E402
from kiosk.ledger.audit import verify_log  # noqa: E402
from kiosk.ledger.sqlite_store import SqliteLogStore  # noqa: E402
from kiosk.protocol import entry, keys  # noqa: E402

MRN_SYSTEM = "urn:oid:1.2.3.4.5.1"
MRN = "MRN-4711"
PATIENT = "p-" + "ab" * 10
CLIENT = "kiosk-gateway"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smart_key(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "smart.key"
    smart.new_key(path)
    return path


@pytest.fixture
def fhir(tmp_path: Path, smart_key: Path):
    server = FhirSandbox(tmp_path / "fhir", smart_key=smart_key).start()
    yield server
    server.stop()


class World:
    """A log with one check-in by a kiosk, the EHR state, and a worker over a connector."""

    def __init__(self, tmp: Path, connector) -> None:
        self.store = SqliteLogStore(tmp / "ledger.sqlite3")
        self.state = EhrState(tmp / "ehr.sqlite3")
        self.kiosk_key = keys.new_signing_key(tmp / "kiosk.key")
        self.entry_key = keys.new_signing_key(tmp / "gateway-entry.key")
        self.log_key = keys.new_signing_key(tmp / "log.key")
        self.now = time.time()
        self.worker = EhrWorker(store=self.store, state=self.state, connector=connector, site="clinic",
                                signer_id="gateway-1", entry_key=self.entry_key, log_key=self.log_key,
                                log_name="clinic.example/log", retry_min_s=5, clock=lambda: self.now)

    def check_in(self, patient: str = PATIENT) -> bytes:
        body, bh = entry.make_body({"ticket": "A-17"})
        env = entry.new_envelope("check-in", site="clinic", kiosk="kiosk-1", body_hash=bh,
                                 created_ms=int(self.now * 1000), patient=patient,
                                 captured_ms=int(self.now * 1000))
        leaf = entry.sign_leaf(env, self.kiosk_key)
        self.store.put_body(bh, body)
        self.store.append([leaf])
        return entry.entry_hash(leaf)

    def updates(self) -> list[tuple[entry.Envelope, dict]]:
        out = []
        for _, leaf in self.store.iter_leaves(0):
            env, _ = entry.decode_leaf(leaf)
            if env.type == "ehr-update":
                out.append((env, entry.decode_body(self.store.get_body(env.body_hash))))
        return out

    def close(self) -> None:
        self.state.close()
        self.store.close()


def _connector(fhir: FhirSandbox, key: Path) -> FhirConnector:
    return FhirConnector(fhir.base, smart_client_id=CLIENT, smart_key=key)


def _patient(fhir: FhirSandbox) -> str:
    return fhir.call("POST", "/Patient", {"resourceType": "Patient",
                                           "identifier": [{"system": MRN_SYSTEM, "value": MRN}]})["id"]


@pytest.mark.timeout(120)
def test_check_in_marks_the_appointment_arrived_and_opens_an_encounter(tmp_path, fhir, smart_key, caplog):
    caplog.set_level(logging.DEBUG)
    pid = _patient(fhir)
    appt = fhir.appointment(pid, dt.datetime.now().astimezone().replace(microsecond=0))
    w = World(tmp_path, _connector(fhir, smart_key))
    w.state.map_patient(PATIENT, MRN_SYSTEM, MRN)
    eh = w.check_in()
    assert w.worker.step() == 1
    assert fhir.call("GET", f"/Appointment/{appt['id']}")["status"] == "arrived"
    enc = fhir.call("GET", f"/Encounter?appointment=Appointment/{appt['id']}")["entry"]
    assert len(enc) == 1 and enc[0]["resource"]["subject"]["reference"] == f"Patient/{pid}"
    (env, body), = w.updates()
    assert env.refs == (eh,) and env.kiosk == "gateway-1" and body["status"] == "arrived"
    assert body["refs"]["appointment"] == f"Appointment/{appt['id']}"
    # a second step (or a restart) reports nothing twice
    assert w.worker.step() == 0 and len(w.updates()) == 1
    # the audit checks the gateway's own entry like any leaf
    reg = {"kiosk-1": {keys.kid(w.kiosk_key.verify_key): w.kiosk_key.verify_key},
           "gateway-1": {keys.kid(w.entry_key.verify_key): w.entry_key.verify_key}}
    report = verify_log(w.store, check_leaves=True, kiosk_keys=reg.get)
    assert report.ok, report.findings
    assert MRN not in caplog.text and pid not in caplog.text  # no PHI in the gateway's logs
    w.close()


@pytest.mark.timeout(120)
def test_a_stale_version_is_reread_and_never_overwritten(tmp_path, fhir, smart_key):
    pid = _patient(fhir)
    appt = fhir.appointment(pid, dt.datetime.now().astimezone().replace(microsecond=0))
    connector = _connector(fhir, smart_key)
    original = connector._call
    edits = {"n": 0}

    def racing_call(method, path, body=None, headers=None):
        if method == "PUT" and edits["n"] == 0:  # the front desk edits it between our read and write
            edits["n"] += 1
            fresh = fhir.call("GET", f"/Appointment/{appt['id']}")
            fhir.call("PUT", f"/Appointment/{appt['id']}", {**fresh, "comment": "wheelchair"})
        return original(method, path, body, headers)

    connector._call = racing_call  # type: ignore[method-assign]
    w = World(tmp_path, connector)
    w.state.map_patient(PATIENT, MRN_SYSTEM, MRN)
    w.check_in()
    assert w.worker.step() == 1
    now = fhir.call("GET", f"/Appointment/{appt['id']}")
    assert now["status"] == "arrived" and now["comment"] == "wheelchair"  # the desk's edit kept
    assert now["meta"]["versionId"] == "3"

    # cancelled meanwhile: left cancelled, staff told
    appt2 = fhir.appointment(pid, dt.datetime.now().astimezone().replace(microsecond=0))
    edits["n"] = 0

    def cancelling_call(method, path, body=None, headers=None):
        if method == "PUT" and edits["n"] == 0:
            edits["n"] += 1
            fresh = fhir.call("GET", f"/Appointment/{appt2['id']}")
            fhir.call("PUT", f"/Appointment/{appt2['id']}", {**fresh, "status": "cancelled"})
        return original(method, path, body, headers)

    connector._call = cancelling_call  # type: ignore[method-assign]
    answer = connector.notify(Arrival(os.urandom(32), MRN_SYSTEM, MRN, int(time.time() * 1000), "kiosk-1"))
    assert answer.status == "conflict"
    assert fhir.call("GET", f"/Appointment/{appt2['id']}")["status"] == "cancelled"
    w.close()


@pytest.mark.timeout(120)
def test_missing_appointment_waits_and_staff_see_it(tmp_path, fhir, smart_key):
    _patient(fhir)
    w = World(tmp_path, _connector(fhir, smart_key))
    w.state.map_patient(PATIENT, MRN_SYSTEM, MRN)
    w.check_in()
    assert w.worker.step() == 0
    (job,) = w.state.all()
    assert job.state == "pending" and job.answer == "no-appointment" and job.attempts == 1
    assert job.next_at > w.now  # backoff
    assert w.updates() == []
    w.close()


@pytest.mark.timeout(180)
def test_server_down_then_back_nothing_lost(tmp_path, fhir, smart_key):
    pid = _patient(fhir)
    appt = fhir.appointment(pid, dt.datetime.now().astimezone().replace(microsecond=0))
    connector = _connector(fhir, smart_key)
    w = World(tmp_path, connector)
    w.state.map_patient(PATIENT, MRN_SYSTEM, MRN)
    w.check_in()
    fhir.stop()
    assert w.worker.step() == 0
    (job,) = w.state.all()
    assert job.answer == "unavailable" and job.state == "pending"
    fhir.start()
    connector.token.forget()  # the restarted server signs tokens with a secret of its own
    w.now = job.next_at + 1
    assert w.worker.step() == 1
    assert fhir.call("GET", f"/Appointment/{appt['id']}")["status"] == "arrived"
    w.close()


@pytest.mark.timeout(120)
def test_a_refused_token_waits_for_it(tmp_path, fhir):
    other = tmp_path / "other.key"
    smart.new_key(other)  # a key the EHR never registered
    w = World(tmp_path, FhirConnector(fhir.base, smart_client_id=CLIENT, smart_key=other))
    w.state.map_patient(PATIENT, MRN_SYSTEM, MRN)
    w.check_in()
    assert w.worker.step() == 0
    (job,) = w.state.all()
    assert job.answer == "auth-refused" and job.state == "pending"
    w.close()


def test_an_unmapped_patient_is_recorded_for_staff(tmp_path):
    class Never:
        kind = "fhir"

        def notify(self, arrival):  # pragma: no cover - must not be reached
            raise AssertionError("no EHR call without a mapping")

    w = World(tmp_path, Never())
    w.check_in()
    assert w.worker.step() == 1
    (env, body), = w.updates()
    assert body["status"] == "no-mapping"
    assert oct((tmp_path / "ehr.sqlite3").stat().st_mode & 0o777) == "0o600"
    w.close()


def test_a_kiosk_cannot_write_an_ehr_update(world, gateway):
    from kiosk.errors import Reason

    payload, _ = world.record("ehr-update")
    (outcome,) = gateway.handle_batch([("kiosk-1", payload)])
    assert outcome.receipt.status == "rejected" and outcome.receipt.reason == Reason.WRONG_ENTRY.value


# ---------------------------------------------------------------------------- HL7 v2 / MLLP

class Mllp:
    """An MLLP listener (hl7.mllp) answering with the ack code it is told to."""

    def __init__(self, code: str) -> None:
        self.code, self.port = code, _free_port()
        self.received: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        import hl7.mllp

        async def handle(reader, writer) -> None:
            try:
                while not writer.is_closing():
                    msg = await reader.readmessage()
                    self.received.append(str(msg))
                    writer.writemessage(msg.create_ack(ack_code=self.code))
                    await writer.drain()
            except asyncio.IncompleteReadError:
                pass
            finally:
                writer.close()

        async def main() -> None:
            self.server = await hl7.mllp.start_hl7_server(handle, host="127.0.0.1", port=self.port)
            self.ready.set()
            await self.server.serve_forever()

        asyncio.set_event_loop(self.loop)
        with contextlib.suppress(asyncio.CancelledError, RuntimeError):
            self.loop.run_until_complete(main())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)


@pytest.mark.parametrize("code, status", [("AA", "arrived"), ("AE", "error"), ("AR", "refused")])
@pytest.mark.timeout(60)
def test_adt_a04_over_mllp(code, status):
    listener = Mllp(code)
    try:
        c = MllpConnector("127.0.0.1", listener.port, sending_facility="CLINIC")
        eh = os.urandom(32)
        answer = c.notify(Arrival(eh, "MRN", MRN, int(time.time() * 1000), "kiosk-1"))
        assert answer.status == status, answer
        assert answer.retry == (code == "AE")
        msg = hl7.parse(listener.received[0])
        assert str(msg.segment("MSH")[9]) == "ADT^A04^ADT_A01" and str(msg.segment("MSH")[12]) == "2.5"
        assert str(msg.segment("MSH")[10]) == eh.hex()[:20]
        assert str(msg.segment("PID")[3][0][0]) == MRN
    finally:
        listener.close()


def test_mllp_listener_down_is_retried():
    c = MllpConnector("127.0.0.1", _free_port(), sending_facility="CLINIC", timeout_s=2)
    answer = c.notify(Arrival(os.urandom(32), "MRN", MRN, 0, "kiosk-1"))
    assert answer.status == "unavailable" and answer.retry


def test_hl7_fields_are_escaped():
    assert escape("a|b^c~d\\e&f\rg") == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\fg"
    msg = adt_a04(Arrival(b"\0" * 32, "MR|N", "x^y", 0, "k"), sending_facility="C", receiving_app="E",
                  receiving_facility="F", control_id="c1")
    assert hl7.parse(msg).segment("PID")[3][0][0][0] == "x\\S\\y" or "x^y" not in msg


def test_smart_client_assertion_verifies_with_its_jwk(tmp_path, smart_key):
    jwt = pytest.importorskip("jwt")
    key = smart.load_key(smart_key)
    token = smart.client_assertion(key, CLIENT, "https://ehr.example/token")
    pub = jwt.PyJWK(smart.public_jwk(key)).key
    claims = jwt.decode(token, pub, algorithms=["ES384"], audience="https://ehr.example/token")
    assert claims["iss"] == claims["sub"] == CLIENT and claims["exp"] - claims["iat"] <= 300
    assert jwt.get_unverified_header(token)["kid"] == smart.public_jwk(key)["kid"]
    assert EhrAnswer("unavailable").retry and not EhrAnswer("refused").retry


@pytest.mark.timeout(240)
def test_demo_with_ehr_shows_appointments_arrive():
    from kiosk.app.demo import run_demo

    lines: list[str] = []
    result = run_demo(out=lines.append, ehr=True)
    assert result.ok, "\n".join(lines)
    text = "\n".join(lines)
    assert "status booked" in text and "booked -> arrived" in text and "3/3 check-ins reported" in text
    assert sum(1 for e in result.ledger if e[1] == "ehr-update") == 3


def test_ehr_cli_init_map_status(tmp_path, capsys):
    from kiosk import cli, config
    from kiosk.gateway.registry import open_registry

    toml = tmp_path / "kiosk.toml"
    toml.write_text(f'''schema_version = 1
[paths]
state_dir = "{tmp_path / 'state'}"
[ehr]
kind = "fhir"
fhir_base = "http://127.0.0.1:9/fhir"
smart_client_id = "kiosk-gateway"
entry_key = "keys/gateway-entry.key"
smart_key = "keys/smart.key"
''')
    assert cli.main(["gateway", "ehr", "init", "--config", str(toml)]) == 0
    assert oct((tmp_path / "keys" / "smart.key").stat().st_mode & 0o777) == "0o600"
    with open_registry(config.load(toml)) as reg:
        assert reg.get("gateway-1") is not None  # registered as a service: audits check its entries
    assert cli.main(["gateway", "ehr", "jwks", "--config", str(toml)]) == 0
    assert '"ES384"' in capsys.readouterr().out
    assert cli.main(["gateway", "ehr", "map", "add", PATIENT, MRN_SYSTEM, MRN, "--config", str(toml)]) == 0
    assert cli.main(["gateway", "ehr", "map", "add", "bob", MRN_SYSTEM, MRN, "--config", str(toml)]) == 64
    bad = tmp_path / "map.csv"
    bad.write_text(f"{PATIENT},{MRN_SYSTEM}\n")
    assert cli.main(["gateway", "ehr", "map", "import", str(bad), "--config", str(toml)]) == 65
    assert MRN not in capsys.readouterr().err  # a mistake names the row, not its content
    capsys.readouterr()
    assert cli.main(["gateway", "ehr", "status", "--json", "--config", str(toml)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["mapped_patients"] == 1 and status["waiting"] == 0
    assert oct((tmp_path / "state" / "ehr.sqlite3").stat().st_mode & 0o777) == "0o600"
