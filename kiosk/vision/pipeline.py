"""The face pipeline the check-in engine drives: frame in, observation out.

Per frame: track or detect the faces, pick the subject, find their five landmarks, run
the quality gates and, when asked and the quality is good, compute the template. The
observation carries a message id for the UI; frames and templates stay in memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk.config import VisionTable
from kiosk.hardware.camera.base import Frame
from kiosk.vision.detect import Box, to_grey
from kiosk.vision.landmarks import FaceLandmarks, find_landmarks
from kiosk.vision.models import load_face_net, load_shape_predictor
from kiosk.vision.quality import QualityLimits, QualityVerdict, assess, pick_subject
from kiosk.vision.template import compute_template
from kiosk.vision.track import FaceTracker


@dataclass(frozen=True, eq=False)
class FaceObservation:
    """What the pipeline saw in one frame.

    box/landmarks: the subject's (None when there is no single subject). quality: the
    verdict and its message id. template: only when asked for and the quality is ok.
    """

    index: int
    t_ns: int
    faces: int
    box: Box | None
    landmarks: FaceLandmarks | None
    quality: QualityVerdict
    template: np.ndarray | None = None
    full_detection: bool = True

    @property
    def message_id(self) -> str:
        return self.quality.message_id

    @property
    def ok(self) -> bool:
        return self.quality.ok


class FacePipeline:
    """Stateful across frames (tracking, motion); call `reset()` between people."""

    def __init__(self, vision: VisionTable | None = None, limits: QualityLimits | None = None,
                 models_dir: Path | None = None) -> None:
        vision = vision or VisionTable()
        self.limits = limits or QualityLimits(min_face_px=vision.min_face_px)
        self.models_dir = models_dir
        self.tracker = FaceTracker(vision.detect_every, vision.detect_min_face_px)
        # load both models now, so a missing model fails at start-up, not with a patient waiting
        load_shape_predictor(models_dir)
        load_face_net(models_dir)
        self._prev_box: Box | None = None

    def reset(self) -> None:
        """Forget tracked faces and motion history."""
        self.tracker.reset()
        self._prev_box = None

    def process(self, frame: Frame | np.ndarray, want_template: bool = False) -> FaceObservation:
        """Observe one frame (a camera Frame or an RGB array)."""
        if isinstance(frame, Frame):
            image, index, t_ns = frame.image, frame.index, frame.t_ns
        else:
            image, index, t_ns = frame, -1, 0
        grey = to_grey(image)
        tracked = self.tracker.update(grey)
        boxes = list(tracked.boxes)
        idx, _ = pick_subject(boxes, self.limits.crowd_ratio)
        box = boxes[idx] if idx is not None else None
        lm = find_landmarks(grey, box, self.models_dir) if box is not None else None
        verdict = assess(grey, boxes, lm, self._prev_box, self.limits)
        self._prev_box = box
        template = None
        if want_template and verdict.ok and lm is not None:
            template = compute_template(image, lm, self.models_dir)
        return FaceObservation(index, t_ns, len(boxes), box, lm, verdict, template, tracked.full_detection)
