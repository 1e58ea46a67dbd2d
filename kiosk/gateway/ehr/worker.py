"""The EHR worker: from the log to the EHR, durably, and back into the log.

Each step: (1) read log entries past the cursor and queue the check-ins that name a patient
(queue and cursor in one transaction); (2) record answers that were received but not yet
logged (a crash between the two); (3) tell the EHR about due jobs; a retryable failure waits
with exponential backoff, a final answer is written to the ledger as an `ehr-update` entry
that refers to the check-in, signed with the gateway's entry key (registered in the kiosk
registry under the gateway's id, so `kiosk ledger verify` checks it like any leaf).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from nacl.signing import SigningKey

from kiosk.config import Config
from kiosk.errors import ConfigError, FormatError, KioskError
from kiosk.gateway.ehr.connector import Arrival, EhrAnswer, EhrConnector
from kiosk.gateway.ehr.state import EhrState, Job
from kiosk.ledger.audit import make_checkpoint
from kiosk.ledger.store import LogStore
from kiosk.protocol import entry

log = logging.getLogger(__name__)

EHR_TYPE = "ehr-update"


class EhrWorker:
    def __init__(self, *, store: LogStore, state: EhrState, connector: EhrConnector, site: str,
                 signer_id: str, entry_key: SigningKey, log_key: SigningKey, log_name: str,
                 retry_min_s: float = 10.0, retry_max_s: float = 900.0, max_attempts: int = 50,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.state, self.connector = store, state, connector
        self.site, self.signer_id, self.entry_key = site, signer_id, entry_key
        self.log_key, self.log_name = log_key, log_name
        self.retry_min_s, self.retry_max_s, self.max_attempts = retry_min_s, retry_max_s, max_attempts
        self.clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.progress = 0  # steps completed (feeds the service watchdog)

    # ------------------------------------------------------------------ one pass
    def scan(self) -> int:
        """Queue the check-ins appended since the cursor; return how many."""
        cursor = self.state.cursor()
        jobs: list[tuple[bytes, int, str, str, int]] = []
        last = cursor - 1
        for index, leaf in self.store.iter_leaves(cursor):
            last = index
            try:
                env, _ = entry.decode_leaf(leaf)
            except FormatError:
                continue  # the audit's business; the EHR has nothing to learn from it
            if env.type == "check-in" and env.patient:
                jobs.append((entry.entry_hash(leaf), index, env.patient, env.kiosk, env.created))
        if last >= cursor:
            self.state.add_jobs(jobs, last + 1)
        return len(jobs)

    def _backoff(self, attempts: int) -> float:
        return min(self.retry_max_s, self.retry_min_s * (2 ** min(attempts, 20)))

    def step(self) -> int:
        """Scan, record, notify what is due; return how many jobs reached a final answer."""
        self.scan()
        done = 0
        for job in self.state.answered():
            self._record(job)
            done += 1
        for job in self.state.due(self.clock()):
            answer = self._notify(job)
            if answer.retry and job.attempts + 1 < self.max_attempts:
                self.state.retry_later(job.entry_hash, answer.status, answer.detail,
                                       self.clock() + self._backoff(job.attempts))
                log.warning("ehr: check-in %s not yet reported: %s (attempt %d)", job.entry_hash.hex()[:12],
                            answer.status, job.attempts + 1)
                continue
            self.state.set_answer(job.entry_hash, answer.status, answer.detail, json.dumps(answer.refs))
            fresh = next(j for j in self.state.answered() if j.entry_hash == job.entry_hash)
            self._record(fresh)
            done += 1
        self.progress += 1
        return done

    def _notify(self, job: Job) -> EhrAnswer:
        mapped = self.state.lookup(job.patient)
        if mapped is None:
            return EhrAnswer("no-mapping", "the patient has no EHR identifier in the gateway's map")
        arrival = Arrival(job.entry_hash, mapped[0], mapped[1], job.created_ms, job.kiosk)
        try:
            return self.connector.notify(arrival)
        except Exception as e:  # a connector bug must not stop the worker; the job waits
            log.error("ehr: connector failed with %s", type(e).__name__)
            return EhrAnswer("error", f"connector failed ({type(e).__name__})")

    def _record(self, job: Job) -> None:
        """The EHR's answer as a ledger entry referring to the check-in (then the job is done)."""
        body, body_hash = entry.make_body({"check_in": job.entry_hash, "ehr": self.connector.kind,
                                           "status": job.answer, "detail": job.detail,
                                           "refs": json.loads(job.refs), "attempts": job.attempts})
        env = entry.new_envelope(EHR_TYPE, site=self.site, kiosk=self.signer_id, body_hash=body_hash,
                                 created_ms=int(self.clock() * 1000), refs=(job.entry_hash,),
                                 patient=job.patient)
        leaf = entry.sign_leaf(env, self.entry_key)
        self.store.put_body(body_hash, body)
        self.store.append([leaf])
        make_checkpoint(self.store, self.log_name, self.log_name, self.log_key)
        self.state.set_done(job.entry_hash)
        log.info("ehr: check-in %s reported: %s", job.entry_hash.hex()[:12], job.answer)

    # ------------------------------------------------------------------ thread
    def start(self, interval_s: float = 2.0) -> None:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    self.step()
                except KioskError as e:
                    log.error("ehr: %s", e.message)
                self._wake.wait(interval_s)
                self._wake.clear()

        self._thread = threading.Thread(target=run, name="ehr-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.state.close()
        self.store.close()


def connector_from_config(cfg: Config) -> EhrConnector:
    """The connector the `[ehr]` table names."""
    e = cfg.ehr
    if e.kind == "fhir":
        from kiosk.gateway.ehr.fhir import FhirConnector

        if not e.fhir_base:
            raise ConfigError("[ehr] kind = \"fhir\" needs fhir_base (the EHR's FHIR R4 base URL)")
        try:
            return FhirConnector(e.fhir_base, smart_client_id=e.smart_client_id or None,
                                 smart_key=e.smart_key if e.smart_client_id else None,
                                 token_url=e.smart_token_url or None, ca_file=e.fhir_ca)
        except ValueError as err:
            raise ConfigError(f"[ehr] {err}") from None
    if e.kind == "hl7v2":
        from kiosk.gateway.ehr.hl7v2 import MllpConnector

        return MllpConnector(e.mllp_host, e.mllp_port, sending_facility=e.sending_facility,
                             receiving_app=e.receiving_app, receiving_facility=e.receiving_facility,
                             tls_ca=e.mllp_ca)
    raise ConfigError("[ehr] kind is \"none\": no EHR link is configured")


def worker_from_config(cfg: Config) -> EhrWorker | None:
    """The EHR worker for a gateway, or None where `[ehr] kind = "none"`."""
    if cfg.ehr.kind == "none":
        return None
    from kiosk.ledger.backends import open_store
    from kiosk.protocol import keys

    gw = cfg.gateway
    # its own store connection: appends serialise in the store, as for several gateways
    store = open_store(gw, sqlite_path=str(cfg.state_path(gw.sqlite_path)))
    return EhrWorker(store=store, state=EhrState(cfg.state_path(cfg.ehr.state_path)),
                     connector=connector_from_config(cfg), site=cfg.kiosk.site, signer_id=gw.client_id,
                     entry_key=keys.load_signing_key(cfg.ehr.entry_key),
                     log_key=keys.load_signing_key(gw.log_key), log_name=cfg.keys.log_name,
                     retry_min_s=cfg.ehr.retry_min_s, retry_max_s=cfg.ehr.retry_max_s,
                     max_attempts=cfg.ehr.max_attempts)
