"""`kiosk demo --ehr`: a real FHIR R4 server (sekmet-fhir, SQLite, its simulator off, SMART
Backend Services on) beside the demo's gateway, with an appointment booked today for each
demo patient, so the demo shows it go from booked to arrived. Needs the `sekmet-fhir`
package (`setup.sh --dev` installs it)."""
from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError
from kiosk.gateway.ehr import smart

MRN_SYSTEM = "urn:oid:1.2.3.4.5.1"
CLIENT_ID = "kiosk-gateway"


class FhirSandbox:
    def __init__(self, folder: Path, smart_key: Path | None = None) -> None:
        """`smart_key`: the gateway's ES384 key to register as the SMART client (default: a new one)."""
        try:
            import sekmet  # noqa: F401
        except ImportError:
            raise ConfigError("kiosk demo --ehr needs the sekmet-fhir package (setup.sh --dev installs it)") from None
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        if smart_key is None:
            smart_key = self.folder / "smart-es384.key"
            smart.new_key(smart_key)
        self.smart_key = smart_key
        self._admin = secrets.token_urlsafe(24)  # the demo's own view of the EHR (setup, status)
        self.appointments: dict[str, str] = {}  # demo patient name -> Appointment id
        self.proc: subprocess.Popen | None = None

    def start(self) -> FhirSandbox:
        settings = self.folder / "sekmet.json"
        jwks = {"keys": [smart.public_jwk(smart.load_key(self.smart_key))]}
        settings.write_text(json.dumps({  # JSON is YAML
            "base_url": self.base, "host": "127.0.0.1", "port": self.port, "data_dir": str(self.folder),
            "db_path": str(self.folder / "ehr.db"), "simulator": {"enabled": False},
            "validation": {"inbound": "warn"}, "log_inbound": False,
            "server_auth": {"types": ["smart", "bearer"], "tokens": [self._admin],
                            "smart_clients": [{"client_id": CLIENT_ID, "scopes": "system/*.*",
                                               "jwks": jwks}]}}))
        self.proc = subprocess.Popen([sys.executable, "-c", "from sekmet.cli import app; app()", "serve",
                                      "--config", str(settings)], cwd=self.folder,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.call("GET", "/metadata")
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise ConfigError("the demo's FHIR server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def call(self, method: str, path: str, body: dict | None = None) -> Any:
        req = urllib.request.Request(self.base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self._admin}",
                                              "Content-Type": "application/fhir+json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def book(self, name: str) -> str:
        """An EHR patient with a (made-up) MRN and an appointment booked now; returns the MRN."""
        mrn = "MRN-" + os.urandom(4).hex().upper()
        pid = self.call("POST", "/Patient", {"resourceType": "Patient",
                                             "identifier": [{"system": MRN_SYSTEM, "value": mrn}]})["id"]
        appt = self.appointment(pid, dt.datetime.now().astimezone().replace(microsecond=0))
        self.appointments[name] = appt["id"]
        return mrn

    def appointment(self, patient_id: str, start: dt.datetime) -> dict[str, Any]:
        """A 20-minute appointment booked for the EHR patient `patient_id`."""
        return dict(self.call("POST", "/Appointment", {
            "resourceType": "Appointment", "status": "booked", "start": start.isoformat(timespec="seconds"),
            "end": (start + dt.timedelta(minutes=20)).isoformat(timespec="seconds"),
            "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}]}))

    def status(self, name: str) -> str:
        return str(self.call("GET", f"/Appointment/{self.appointments[name]}")["status"])

    def encounters(self, name: str) -> list[str]:
        b = self.call("GET", f"/Encounter?appointment=Appointment/{self.appointments[name]}")
        return [f"Encounter/{e['resource']['id']}" for e in b.get("entry", [])]

    def table(self, entry_key: Path) -> dict[str, Any]:
        """The demo gateway's `[ehr]` table."""
        return {"kind": "fhir", "fhir_base": self.base, "smart_client_id": CLIENT_ID,
                "smart_key": str(self.smart_key), "entry_key": str(entry_key), "retry_min_s": 1.0}
