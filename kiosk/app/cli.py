"""`kiosk run` (the engine on the configured hardware) and `kiosk demo` (everything on one machine)."""
from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add `run` and `demo` to the `kiosk` parser."""
    p = subparsers.add_parser(
        "run", help="run the check-in engine on the hardware named in the config",
        description="Run the check-in engine on the camera and NFC reader the config names, with "
                    "the touchscreen where a display exists ([ui] mode: auto, pygame, headless). "
                    "Headless, events are logged (message ids only) and no patient input arrives, "
                    "so sessions end at the consent screen's timeout.")
    p.add_argument("--config", type=Path, default=None, help="config file (default /etc/kiosk/kiosk.toml)")
    p.add_argument("--sessions", type=int, default=0, help="stop after N sessions (0 = run until stopped)")
    p.set_defaults(func=cmd_run)

    d = subparsers.add_parser(
        "demo", help="the whole system on one machine: broker, gateway, kiosk, patients",
        description="Bring up Mosquitto, the ledger gateway, an issuer and a kiosk with an emulated "
                    "PN532 and a camera fed from two public-domain portraits, run five scripted "
                    "check-ins, print outcomes and receipts, and verify the log. Exit 0 only if "
                    "every outcome was as expected.")
    d.add_argument("--faces", type=Path, default=None, help="folder with two photos to use as the patients")
    d.add_argument("--keep", type=Path, default=None, help="keep all state (keys, log, outbox) in this folder")
    d.add_argument("--ui", nargs="?", const=Path("demo-screens"), type=Path, default=None, metavar="DIR",
                   help="run with the touchscreen UI on SDL's dummy driver, a robot tapping the answers; "
                        "save every screen shown to DIR (default ./demo-screens) and add a staff override")
    d.add_argument("--ehr", action="store_true",
                   help="also run a FHIR R4 server (sekmet-fhir) and show each appointment go to arrived")
    d.set_defaults(func=cmd_demo)


def cmd_run(args: argparse.Namespace) -> int:
    """Run sessions until SIGTERM/SIGINT (or --sessions)."""
    from kiosk import config
    from kiosk.app.runtime import build_runtime
    from kiosk.checkin.headless import HeadlessDriver
    from kiosk.sd_notify import sd_notify
    from kiosk.ui import shell

    cfg = config.load(args.config)
    screen = shell.choose(cfg)
    ui: Any = screen.ui if screen is not None else HeadlessDriver(
        echo=lambda ev: log.info("event %s %s", ev.id, ev.params))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        rt = build_runtime(cfg, ui=ui)
    except BaseException:
        if screen is not None:
            screen.close()
        raise
    if screen is not None:
        screen.attach(cfg, rt)
    sd_notify("READY=1")  # Type=notify: systemd counts the kiosk as started from here
    count = 0

    def on_outcome(out: Any) -> None:
        nonlocal count
        if out.status != "no-credential":
            count += 1
            log.info("session ended: %s %s", out.status, out.reason)
        if args.sessions and count >= args.sessions:
            stop.set()

    try:
        if screen is None:
            rt.engine.run_forever(stop, on_outcome, heartbeat=watchdog_beat())
        else:
            # pygame keeps the main thread (KMSDRM wants it); the engine gets its own
            engine = threading.Thread(target=rt.engine.run_forever, args=(stop, on_outcome),
                                      kwargs={"heartbeat": watchdog_beat()}, name="engine", daemon=True)
            engine.start()
            try:
                screen.run(stop)
            finally:
                stop.set()
                engine.join(30)
    finally:
        sd_notify("STOPPING=1")
        rt.close()
        if screen is not None:
            screen.close()
    return 0


def watchdog_beat(monotonic: Callable[[], float] = time.monotonic) -> Callable[[], None]:
    """A heartbeat for the engine: WATCHDOG=1 to systemd, at most every quarter of the
    watchdog period (WATCHDOG_USEC; 30 s → every 7.5 s), so a missed beat or two is harmless.

    The engine calls it from every waiting loop; a kiosk stuck anywhere stops beating and
    systemd restarts it. Without a watchdog (not under systemd) it does nothing.
    """
    from kiosk.sd_notify import sd_notify, watchdog_period_s

    every = (watchdog_period_s() or 0.0) / 4
    last = float("-inf")

    def beat() -> None:
        nonlocal last
        now = monotonic()
        if every > 0 and now - last >= every:
            last = now
            sd_notify("WATCHDOG=1")

    return beat


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the scripted demo; exit 0 only when every outcome was as expected."""
    from kiosk.app.demo import run_demo

    if not args.verbose:  # a clean transcript; -v shows every part's log lines
        logging.getLogger().setLevel(logging.WARNING)

    result = run_demo(args.faces, args.keep, out=lambda line: print(line, flush=True), ui_dir=args.ui,
                      ehr=args.ehr)
    if args.ui is not None:
        print(f"screens: {len(result.screens)} PNGs in {args.ui}", flush=True)
    return 0 if result.ok else 1
