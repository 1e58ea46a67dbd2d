"""Doctor checks on the devices: the NFC reader's firmware, the camera and its measured frame
rate, the display (KMS/DRM, what SDL's kmsdrm driver draws on), and the Pi's throttling."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from kiosk.doctor.core import Context, Result, check
from kiosk.errors import KioskError

DRM = Path("/sys/class/drm")
# `vcgencmd get_throttled` bits (Raspberry Pi firmware documentation)
THROTTLE_BITS = {0: "under-voltage now", 1: "ARM frequency capped now", 2: "throttled now",
                 3: "soft temperature limit now", 16: "under-voltage since boot",
                 17: "frequency capped since boot", 18: "throttled since boot",
                 19: "soft temperature limit since boot"}


@check("reader", area="nfc")
def reader(ctx: Context) -> Result:
    cfg = ctx.cfg
    if cfg.nfc.backend == "none":
        return Result.warn("NFC disabled in config (nfc.backend = \"none\")",
                           f"set nfc.backend = \"pn532\" in {ctx.config_path} once the reader is fitted")
    from kiosk.hardware.nfc.reader import NfcReader

    port = cfg.nfc.port
    try:
        with NfcReader.from_config(cfg.nfc) as r:
            fw = r.firmware_version()
    except KioskError as e:
        fix = ("the reader's port is missing: check the wiring (TX/RX to GPIO 15/14), that the PN532's "
               "switches select HSU, and that setup.sh enabled the UART (reboot after it)"
               if not os.path.exists(port) else
               "is kiosk.service holding the port? stop it first (sudo systemctl stop kiosk); "
               "else check the PN532's HSU switches and the baud rate")
        return Result.fail(f"NFC reader on {port}: {e.message}", fix)
    return Result.ok(f"PN532 on {port}: firmware {fw}", firmware=fw, port=port)


def _open(ctx: Context):
    from kiosk.hardware.camera import open_camera

    return open_camera(ctx.cfg.camera)


def _camera_fix(ctx: Context) -> str:
    b = ctx.cfg.camera.backend
    if b in ("auto", "picamera2"):
        return ("check the ribbon cable and `rpicam-hello --list-cameras`; camera_auto_detect=1 must be "
                "in config.txt (setup.sh adds it); is kiosk.service holding the camera?")
    return f"check camera.backend = \"{b}\" and camera.device / camera.source in {ctx.config_path}"


@check("camera", area="camera")
def camera(ctx: Context) -> Result:
    try:
        cam = _open(ctx)
        try:
            f = cam.read()
        finally:
            cam.close()
    except KioskError as e:
        return Result.fail(f"camera: {e.message}", _camera_fix(ctx))
    h, w = f.image.shape[:2]
    return Result.ok(f"camera ({ctx.cfg.camera.backend}) gives {w}x{h} frames", width=w, height=h)


@check("frame rate", area="camera")
def frame_rate(ctx: Context) -> Result:
    """Frames actually delivered per second over `ctx.measure_s`, against camera.fps."""
    want = ctx.cfg.camera.fps
    try:
        cam = _open(ctx)
        try:
            cam.read()  # the first frame pays for start-up; measure the steady state
            n, t0 = 0, time.monotonic()
            while time.monotonic() - t0 < ctx.measure_s:
                cam.read()
                n += 1
            fps = n / (time.monotonic() - t0)
        finally:
            cam.close()
    except KioskError as e:
        return Result.fail(f"camera: {e.message}", _camera_fix(ctx))
    data = {"fps": round(fps, 1), "configured": want}
    line = f"{fps:.1f} frames/s measured over {ctx.measure_s:g} s (configured {want:g})"
    if fps < 0.8 * want:
        return Result.warn(line, "lower camera.width/height or camera.fps; see the throttling check "
                                 "(an under-powered Pi slows down)", **data)
    return Result.ok(line, **data)


@check("display", needs_config=False)
def display(ctx: Context) -> Result:
    """A KMS card with a connected screen: what SDL's kmsdrm driver opens without a desktop."""
    driver = os.environ.get("SDL_VIDEODRIVER", "kmsdrm")
    cards = sorted(p for p in DRM.glob("card*") if "-" not in p.name) if DRM.is_dir() else []
    connected = []
    for conn in sorted(DRM.glob("card*-*")) if DRM.is_dir() else []:
        try:
            if (conn / "status").read_text().strip() == "connected":
                modes = (conn / "modes").read_text().split()
                connected.append((conn.name, modes[0] if modes else "?"))
        except OSError:
            continue
    if driver in ("dummy", "offscreen"):
        return Result.ok(f"simulated display (SDL_VIDEODRIVER={driver}); {len(connected)} screen(s) seen",
                         driver=driver, simulated=True)
    if not cards:
        return Result.fail("no DRM/KMS card: SDL's kmsdrm driver has nothing to draw on",
                           "config.txt needs dtoverlay=vc4-kms-v3d (setup.sh adds it); reboot")
    if not connected:
        return Result.fail(f"{len(cards)} DRM card(s), no screen connected",
                           "check the display cable (DSI ribbon or HDMI 0) and its power; reboot")
    node = Path("/dev/dri") / cards[0].name
    if node.exists():
        try:
            if ctx.user.exists and not ctx.user.can(node, os.W_OK):
                return Result.fail(f"{node} is not writable by {ctx.user.name}",
                                   f"sudo usermod -aG video,render {ctx.user.name} (setup.sh does it)")
        except PermissionError:
            pass
    name, mode = connected[0]
    return Result.ok(f"screen on {name} at {mode} (SDL {driver})", connector=name, mode=mode)


def throttle_flags(value: int) -> list[str]:
    """The named conditions of a `get_throttled` bit field."""
    return [text for bit, text in THROTTLE_BITS.items() if value & (1 << bit)]


@check("throttling", needs_config=False)
def throttling(ctx: Context) -> Result:
    exe = shutil.which("vcgencmd")
    if exe is None:
        return Result.skip("no vcgencmd (not a Raspberry Pi)")
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=5)
        value = int(out.stdout.strip().split("=", 1)[1], 16)
    except (OSError, subprocess.TimeoutExpired, IndexError, ValueError):
        return Result.warn("vcgencmd get_throttled gave no answer",
                           f"is {ctx.user.name} in the video group? (vcgencmd needs /dev/vcio)")
    flags = throttle_flags(value)
    data = {"throttled": hex(value), "flags": flags}
    if value & 0xF:
        return Result.fail(f"throttled={value:#x}: {', '.join(flags)}",
                           "use the official power supply (5 V 3 A Pi 4, 5 V 5 A Pi 5) and a cooler", **data)
    if value:
        return Result.warn(f"throttled={value:#x}: {', '.join(flags)}",
                           "it happened since boot: check the power supply and cooling", **data)
    return Result.ok("no under-voltage or throttling since boot", **data)


@check("liveness", area="camera")
def liveness(ctx: Context) -> Result:
    """Liveness is required by default; turned off, every entry says so and this check warns."""
    if ctx.cfg.engine.liveness == "none":
        return Result.warn("liveness is OFF (engine.liveness = \"none\"): photos and screens are not refused; "
                           "every check-in records liveness not-configured",
                           f"set engine.liveness = \"screen-light\" in {ctx.config_path}")
    from kiosk.vision.liveness.mesh import FACE_MESH_MODEL, IRIS_MODEL
    from kiosk.vision.models import find_model

    try:
        for name in (FACE_MESH_MODEL, IRIS_MODEL):
            find_model(name, ctx.cfg.paths.models_dir if ctx.cfg.paths.models_dir.is_dir() else None)
        import ai_edge_litert  # noqa: F401
    except (KioskError, ImportError) as e:
        return Result.fail(f"liveness models: {getattr(e, 'message', e)}", "run ./setup.sh")
    return Result.ok(f"liveness required ({ctx.cfg.engine.liveness}); face-mesh and iris models found")
