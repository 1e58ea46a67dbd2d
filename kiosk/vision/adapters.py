"""Vision's side of the engine's ports: passes read from QR codes the camera sees, faces from the
camera through the face pipeline, and the 1:1 match against the sealed template.

Kept out of `kiosk.checkin` so that the state machine imports no vision library.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nacl.public import PrivateKey

from kiosk.checkin.ports import Credential, FaceReading, MatchResult
from kiosk.errors import FormatError
from kiosk.protocol import credentials, presentation, sealing
from kiosk.protocol.credentials import shc


class QrAdapter:
    """QR codes the camera sees, as a CredentialSource ("qr").

    With `foreign`, credentials of other issuers (EU DCC "HC1:", SMART Health Card "shc:/")
    are read too, as presentation kind "foreign"; the chunks of a chunked health card
    ("shc:/C/N/...", shown one after another or side by side) are collected until all N
    are seen. Chunks of another card, or more than one card can have, start over.
    """

    name = "qr"

    def __init__(self, camera: Any, qr_reader: Any | None = None, *, foreign: bool = False) -> None:
        if qr_reader is None:
            from kiosk.vision.qr import PASS_PREFIX, QrReader

            qr_reader = QrReader((PASS_PREFIX, *credentials.PREFIXES) if foreign else PASS_PREFIX)
        self.camera, self.qr = camera, qr_reader
        self._chunks: dict[int, str] = {}
        self._of = 0

    def poll(self, timeout_s: float) -> Credential | None:
        """Look at one frame; a new pass QR in it becomes a credential (FormatError if bad)."""
        frame = self.camera.read()  # CameraError is a HardwareError: the engine tells staff
        for text in self.qr.read(frame.image):
            if credentials.detect(text) is None:
                return Credential("qr", presentation.from_qr_text(text))
            texts = self._collect(text)
            if texts:
                return Credential("qr", presentation.Presentation(presentation.KIND_FOREIGN,
                                                                  "\n".join(texts).encode("utf-8")))
        return None

    def _collect(self, text: str) -> list[str] | None:
        """The texts of one whole credential once every chunk has been seen, else None."""
        index = shc.chunk_index(text)
        if index is None:
            return [text]
        c, n = index
        if n != self._of or not 1 <= c <= n or n > shc.MAX_CHUNKS:
            self._chunks, self._of = {}, n
        self._chunks[c] = text
        if len(self._chunks) < n:
            return None
        texts = [self._chunks[i] for i in sorted(self._chunks)]
        self._chunks, self._of = {}, 0
        return texts


class FaceAdapter:
    """Camera + FacePipeline as the engine's FaceSource."""

    def __init__(self, camera: Any, pipeline: Any) -> None:
        self.camera, self.pipeline = camera, pipeline
        # the UI's live preview: called with each RGB frame (kept in memory by the UI only)
        self.preview: Any = None

    def read(self, want_template: bool = True) -> FaceReading:
        frame = self.camera.read()
        if self.preview is not None:
            self.preview(frame.image)
        obs = self.pipeline.process(frame, want_template=want_template)
        if obs.ok:
            return FaceReading(True, None, obs.template, obs.t_ns, frame, obs.landmarks, obs.faces)
        return FaceReading(obs.faces > 0, obs.message_id, None, obs.t_ns, frame, obs.landmarks, obs.faces)

    def reset(self) -> None:
        self.pipeline.reset()


class TemplateMatcher:
    """Opens the sealed template with the kiosk's sealing key(s); decides with FaceVerifier.

    `frames`: good frames of one track fused into one decision (`vision.session_frames`).
    """

    def __init__(self, sealing_keys: list[PrivateKey], threshold: float, frames: int = 1) -> None:
        from kiosk.vision.verify import FaceVerifier

        self.sealing_keys = list(sealing_keys)
        self.verifier = FaceVerifier(threshold, frames)
        self.frames_per_decision = self.verifier.frames

    def enrolled_template(self, sealed: tuple[tuple[bytes, bytes], ...]) -> Any:
        from kiosk.vision.template import template_from_bytes

        raw = sealing.open_sealed([list(x) for x in sealed], self.sealing_keys)
        return template_from_bytes(raw)

    def decide(self, enrolled: Any, lives: Sequence[Any]) -> MatchResult:
        try:
            d = self.verifier.verify_session(enrolled, lives)
        except (FormatError, ValueError):
            return MatchResult(False, float("inf"))
        return MatchResult(d.match, d.distance)
