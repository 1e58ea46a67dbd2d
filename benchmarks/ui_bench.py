"""Touchscreen speed: frame time and CPU per frame of the busiest screens, and time from a touch
to the next screen on the display — against a blank-frame fill + flip measured in the same run.

    .venv/bin/python benchmarks/ui_bench.py [--frames 200] [--size 800x480]

SDL's dummy driver (no GPU, no vsync), so the numbers are the CPU cost of drawing; a Pi adds
the KMSDRM page flip. Every screen redraws only when it changed; these force a redraw.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--size", default="800x480")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))

    import pygame

    from kiosk.checkin.ports import SystemClock
    from kiosk.config import ConsentTable
    from kiosk.staff.desk import Desk
    from kiosk.staff.store import StaffStore
    from kiosk.ui import gallery
    from kiosk.ui.app import PygameUi
    from kiosk.ui.model import UiModel, UiSettings
    from kiosk.ui.robot import tap

    consent = ConsentTable()
    tmp = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    desk = gallery.gallery_desk(tmp)
    ui = PygameUi(UiModel(UiSettings(), consent.text, SystemClock(), consent, desk), (w, h), fps=0).open()

    def timed(draw, n: int) -> tuple[float, float, float]:
        walls, cpu0 = [], time.process_time()
        for _ in range(n):
            t = time.perf_counter()
            draw()
            walls.append(time.perf_counter() - t)
        cpu = (time.process_time() - cpu0) / n
        walls.sort()
        return statistics.fmean(walls) * 1e3, walls[int(0.95 * (n - 1))] * 1e3, cpu * 1e3

    def blank() -> None:
        ui.surface.fill((250, 250, 247))
        pygame.display.flip()

    base = timed(blank, args.frames)
    print(
        f"{w}x{h}, {args.frames} frames each, SDL {'.'.join(map(str, pygame.get_sdl_version()))} "
        f"driver {pygame.display.get_driver()}"
    )
    # the ratio is of CPU per frame: wall time on a shared machine mostly measures the neighbours
    print(f"{'screen':22s} {'mean ms':>8s} {'p95 ms':>8s} {'CPU ms':>8s} {'CPU × blank':>12s}")
    print(f"{'blank fill + flip':22s} {base[0]:8.2f} {base[1]:8.2f} {base[2]:8.2f} {1.0:12.1f}")
    scenes = dict(gallery.scenes(consent))
    for name in ("welcome", "face", "consent", "consent-full-text", "staff-health", "staff-alerts", "done"):
        ui.model = UiModel(UiSettings(), consent.text, SystemClock(), consent, desk)
        scenes[name](ui)
        r = timed(ui.draw, args.frames)
        print(f"{name:22s} {r[0]:8.2f} {r[1]:8.2f} {r[2]:8.2f} {r[2] / max(base[2], 1e-6):12.1f}")

    # touch → next screen: post the mouse events, step the loop until the new screen is drawn
    print("\ntouch → next screen drawn (event queue → model → layout → draw → flip)")
    print(f"{'touch':34s} {'median ms':>10s} {'max ms':>8s}")

    def touch_case(label: str, setup, action: str, done, n: int = 50) -> None:
        times = []
        for _ in range(n):
            ui.model = UiModel(UiSettings(), consent.text, SystemClock(), consent, desk)
            setup(ui)
            ui.draw()
            t = time.perf_counter()
            tap(ui, action)
            while True:
                ui.step()
                if done(ui) and ui.current:
                    break
            times.append(time.perf_counter() - t)
        times.sort()
        print(f"{label:34s} {statistics.median(times) * 1e3:10.2f} {times[-1] * 1e3:8.2f}")

    touch_case(
        "refused: OK → welcome", scenes["refused-revoked"], "result:ok", lambda u: u.model.screen == "welcome"
    )
    touch_case("consent: Español (re-layout)", scenes["consent"], "lang:es", lambda u: u.model.lang == "es")
    touch_case(
        "staff: tab Queue → Health",
        scenes["staff-queue"],
        "tab:health",
        lambda u: u.model.staff.tab == "health",
    )

    # PIN OK → signed in: argon2id runs in a thread; the loop keeps drawing meanwhile
    store = StaffStore(tmp / "bench-staff.sqlite3")
    store.add("s-1", "", b"\x01\x02\x03\x04", "2468")
    pin_desk = Desk(store, site="clinic", kiosk="kiosk-1")
    times, stalls = [], []
    for _ in range(10):
        ui.model = UiModel(UiSettings(), consent.text, SystemClock(), consent, pin_desk)
        ui.model.press("staff:open")
        ui.model.staff.step, ui.model.staff.staff_id, ui.model.staff.pin = "pin", "s-1", "2468"
        ui.draw()
        t = time.perf_counter()
        tap(ui, "key:ok")
        while True:
            s = time.perf_counter()
            ui.step()
            stalls.append(time.perf_counter() - s)
            if ui.model.staff.step == "tabs" and ui.current:
                break
            ui.model.changed()  # force a frame each turn, as a busy screen would
        times.append(time.perf_counter() - t)
    times.sort()
    stalls.sort()
    print(
        f"{'PIN OK → signed in (argon2id)':34s} {statistics.median(times) * 1e3:10.2f} {times[-1] * 1e3:8.2f}"
        f"   loop turns meanwhile: median {statistics.median(stalls) * 1e3:.1f} ms, "
        f"p95 {stalls[int(0.95 * (len(stalls) - 1))] * 1e3:.1f} ms (the hash runs in a thread)"
    )
    store.close()
    desk.store.close()
    ui.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
