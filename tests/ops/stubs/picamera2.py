"""Test stand-in for python3-picamera2 (Raspberry Pi archive): importable, with no camera."""


class Picamera2:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("picamera2 stub: no camera in this test root")

    @staticmethod
    def global_camera_info():
        return []
