"""`build_runtime` closes what it opened when a later step fails, and names a bad TLS file."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kiosk import config
from kiosk.app import runtime
from kiosk.checkin.headless import HeadlessDriver
from kiosk.errors import StoreError, TransportError
from kiosk.protocol import keys
from kiosk.vision.models import ModelError

from .test_runtime import _cfg


class _Device:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1

    def read(self):  # pragma: no cover - never reached
        raise AssertionError


@pytest.fixture
def devices(monkeypatch: pytest.MonkeyPatch) -> tuple[_Device, _Device]:
    """The configured camera and NFC reader, opened by build_runtime itself."""
    import kiosk.hardware.camera as camera_mod
    from kiosk.hardware.nfc.reader import NfcReader

    cam, reader = _Device(), _Device()
    monkeypatch.setattr(camera_mod, "open_camera", lambda cfg: cam)
    monkeypatch.setattr(NfcReader, "from_config", classmethod(lambda cls, nfc: reader))
    return cam, reader


def _with(cfg: config.Config, section: str, **values: Path) -> config.Config:
    data = cfg.model_dump(mode="json")
    data[section].update({k: str(v) for k, v in values.items()})
    return config.from_dict(data)


def _with_tls(cfg: config.Config, **tls: Path) -> config.Config:
    return _with(cfg, "broker", **tls)


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


@pytest.mark.parametrize("module, name, error", [
    ("kiosk.vision.pipeline", "FacePipeline", ModelError("models/shape_predictor_5_face_landmarks.dat: missing")),
    ("kiosk.net.outbox", "Outbox", StoreError("outbox: disk I/O error")),
])
def test_a_start_up_failure_closes_reader_and_camera(tmp_path: Path, devices, monkeypatch: pytest.MonkeyPatch,
                                                     module: str, name: str, error: Exception) -> None:
    import importlib

    def broken(*a, **k):
        raise error

    monkeypatch.setattr(importlib.import_module(module), name, broken)
    cam, reader = devices
    with pytest.raises(type(error)):
        runtime.build_runtime(_cfg(tmp_path, "/dev/null"), ui=HeadlessDriver(), start_publisher=False,
                              listen_revocations=False)
    assert (cam.closed, reader.closed) == (1, 1)


def test_publisher_error_closes_everything(tmp_path: Path, devices, monkeypatch: pytest.MonkeyPatch) -> None:
    import kiosk.net.outbox as outbox_mod
    from kiosk.net.publisher import Publisher

    closed_outboxes: list = []
    real_close = outbox_mod.Outbox.close

    def spy_close(self) -> None:
        closed_outboxes.append(self)
        real_close(self)

    def broken_start(self):
        raise TransportError("broker: tls_cert needs tls_key and tls_ca")

    monkeypatch.setattr(outbox_mod.Outbox, "close", spy_close)
    monkeypatch.setattr(Publisher, "start", broken_start)
    cam, reader = devices
    keys.new_signing_key(tmp_path / "log.key", tmp_path / "log.pub")
    keys.new_sealing_key(tmp_path / "gw-sealing.key", tmp_path / "gw-sealing.pub")
    cfg = _with(_cfg(tmp_path, "/dev/null"), "keys", log_public=tmp_path / "log.pub",
                gateway_sealing_public=tmp_path / "gw-sealing.pub")
    with pytest.raises(TransportError):
        runtime.build_runtime(cfg, ui=HeadlessDriver(), listen_revocations=False)
    assert (cam.closed, reader.closed, len(closed_outboxes)) == (1, 1, 1)


def test_interrupt_during_build_closes_too(tmp_path: Path, devices, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or SIGTERM turned into an exception) while models load: BaseException too."""
    import kiosk.vision.pipeline as pipeline

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "FacePipeline", interrupted)
    cam, reader = devices
    with pytest.raises(KeyboardInterrupt):
        runtime.build_runtime(_cfg(tmp_path, "/dev/null"), ui=HeadlessDriver(), start_publisher=False,
                              listen_revocations=False)
    assert (cam.closed, reader.closed) == (1, 1)


def test_a_failing_closer_does_not_stop_the_others(tmp_path: Path, devices, monkeypatch: pytest.MonkeyPatch) -> None:
    import kiosk.net.outbox as outbox_mod

    cam, reader = devices

    def bad_close() -> None:
        raise OSError("already gone")

    cam.close = bad_close  # type: ignore[method-assign]
    monkeypatch.setattr(outbox_mod, "Outbox", lambda *a, **k: (_ for _ in ()).throw(StoreError("x")))
    with pytest.raises(StoreError):
        runtime.build_runtime(_cfg(tmp_path, "/dev/null"), ui=HeadlessDriver(), start_publisher=False,
                              listen_revocations=False)
    assert reader.closed == 1


def test_missing_tls_file_is_a_transport_error_naming_it(tmp_path: Path) -> None:
    cfg = _with_tls(_cfg(tmp_path, "/dev/null"), tls_ca=tmp_path / "no-ca.pem")
    rl = runtime.RevocationState({}, cfg.kiosk.site)
    with pytest.raises(TransportError, match="no-ca.pem"):
        rl.listen(cfg)
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    cfg = _with_tls(cfg, tls_ca=ca, tls_cert=tmp_path / "no-cert.pem", tls_key=tmp_path / "no-key.pem")
    with pytest.raises(TransportError, match="tls_cert .*no-cert.pem"):
        rl.listen(cfg)


def test_unreadable_tls_file_is_a_transport_error(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    cfg = _with_tls(_cfg(tmp_path, "/dev/null"), tls_ca=ca)
    with pytest.raises(TransportError, match="ca.pem"):
        runtime.RevocationState({}, cfg.kiosk.site).listen(cfg)


def test_bad_tls_closes_the_runtime_built_so_far(tmp_path: Path, devices) -> None:
    cfg = _with_tls(_cfg(tmp_path, "/dev/null"), tls_ca=tmp_path / "no-ca.pem")
    cam, reader = devices
    before = _threads()
    with pytest.raises(TransportError, match="no-ca.pem"):
        runtime.build_runtime(cfg, ui=HeadlessDriver(), start_publisher=False)
    assert (cam.closed, reader.closed) == (1, 1)
    assert _threads() <= before
