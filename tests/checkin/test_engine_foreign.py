"""A credential of another issuer: identity claimed, not bound to a face, sent to the front desk."""
from __future__ import annotations

import json

import numpy as np
from credentials.credential_factory import ISS, dcc_signer, dcc_text, shc_issuer, shc_jws, shc_payload, shc_qr

from kiosk.checkin import engine as EN
from kiosk.checkin import events as E
from kiosk.checkin.ports import Credential
from kiosk.protocol import presentation
from kiosk.protocol.credentials import TrustStore
from kiosk.protocol.credentials.trust import shc_snapshot
from kiosk.vision.adapters import QrAdapter

from .fakes import Rig


def foreign(text: str) -> Credential:
    return Credential("qr", presentation.Presentation(presentation.KIND_FOREIGN, text.encode()))


def test_a_verified_dcc_goes_to_the_front_desk_and_records_nothing() -> None:
    rig = Rig()
    signer = dcc_signer()
    now = int(rig.clock.time())
    eng, ui, sink = rig.engine(qr=[foreign(dcc_text(signer, iat=now - 60, exp=now + 3600))])
    eng.checker.trust = TrustStore()
    eng.checker.trust.add_dcc_certificate(signer.der)
    out = eng.run_once()
    assert (out.status, out.reason, out.channel) == (EN.FOREIGN_CREDENTIAL, "eu-dcc", "qr")
    assert sink.sessions == []  # never recorded as our pass
    (confirm,) = [e for e in ui.events if e.id == E.STAFF_CONFIRM_IDENTITY]
    assert confirm.params["format"] == "eu-dcc" and confirm.params["content"] == ["vaccination"]
    assert confirm.params["claimed"].family == "Testfamily"  # for the staff screen only
    assert "Testfamily" not in repr(ui.events)
    assert [e.params for e in ui.events if e.id == E.SEE_FRONT_DESK] == [{"reason": EN.FOREIGN_CREDENTIAL}]


def test_foreign_credential_refusals() -> None:
    rig = Rig()
    signer = dcc_signer()
    now = int(rig.clock.time())
    text = dcc_text(signer, iat=now - 60, exp=now + 3600)
    eng, ui, sink = rig.engine(qr=[foreign(text)])
    out = eng.run_once()  # no trust folder configured
    assert (out.status, out.reason) == (EN.PASS_REFUSED, "unsupported-format")
    eng, ui, sink = rig.engine(qr=[foreign(text)])
    eng.checker.trust = TrustStore()  # a trust folder without this signer
    assert eng.run_once().reason == "unknown-issuer"
    eng, ui, sink = rig.engine(qr=[foreign(text)])
    eng.checker.trust = TrustStore()
    eng.checker.clock_synced = lambda: False
    assert eng.run_once().reason == "clock-unsynced"
    assert sink.sessions == []


class _Frames:
    def read(self):
        return type("F", (), {"image": np.zeros((4, 4, 3), np.uint8)})()


class _Qr:
    def __init__(self, frames: list[list[str]]) -> None:
        self.frames = frames

    def read(self, image) -> list[str]:
        return self.frames.pop(0) if self.frames else []


def test_qr_adapter_collects_the_chunks_of_a_health_card() -> None:
    iss = shc_issuer()
    chunks = shc_qr(shc_jws(iss, shc_payload(ISS, 1_700_000_000)), chunks=3)
    stray = shc_qr(shc_jws(iss, shc_payload(ISS, 1_700_000_001)), chunks=2)[0]
    qr = QrAdapter(_Frames(), _Qr([[chunks[1]], [stray], [chunks[1]], [chunks[2], chunks[0]]]), foreign=True)
    got = [qr.poll(0.1) for _ in range(4)]
    assert got[:3] == [None, None, None]  # a chunk of another card started over
    pres = got[3].presentation
    assert pres.kind == "foreign" and pres.pass_bytes.decode().split("\n") == chunks
    trust = TrustStore()
    trust.add_shc_snapshot(json.dumps(shc_snapshot(ISS, iss.jwks())).encode())
    rig = Rig()
    eng, ui, sink = rig.engine(qr=[got[3]])
    eng.checker.trust = trust
    assert eng.run_once().status == EN.FOREIGN_CREDENTIAL
