"""The doctor's frame: what a check is, what it returns, how the results are shown.

A check is a function `(ctx) -> Result`, registered with `@check(name, ...)`. It never
prints and never raises for a finding: a problem is a `Result` with status WARN or FAIL, a
one-line summary and a `fix` (the command or setting that mends it). An exception escaping a
check is shown as that check's FAIL, so one broken check never hides the others.
"""
from __future__ import annotations

import argparse
import enum
import grp
import importlib
import json
import os
import pwd
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError, KioskError

# modules that register checks, in the order the screen lists them
CHECK_MODULES = ["kiosk.doctor.files", "kiosk.doctor.network", "kiosk.doctor.hardware"]
SERVICE_USER = "kiosk"
EXIT_FAILED = 1  # at least one check failed (0: everything OK or only warnings)


class Status(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Result:
    """What one check found. `fix` is required for WARN and FAIL: IT reads it, not a manual."""

    status: Status
    summary: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, summary: str, **data: Any) -> Result:
        return cls(Status.OK, summary, "", data)

    @classmethod
    def warn(cls, summary: str, fix: str, **data: Any) -> Result:
        return cls(Status.WARN, summary, fix, data)

    @classmethod
    def fail(cls, summary: str, fix: str, **data: Any) -> Result:
        return cls(Status.FAIL, summary, fix, data)

    @classmethod
    def skip(cls, summary: str) -> Result:
        return cls(Status.SKIP, summary)


@dataclass(frozen=True)
class ServiceUser:
    """The account the kiosk service runs as: the owner its files must have."""

    name: str
    uid: int
    gids: frozenset[int]
    exists: bool  # False on a development machine without the `kiosk` user

    @classmethod
    def lookup(cls, name: str) -> ServiceUser:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            pw = pwd.getpwuid(os.getuid())
            return cls(pw.pw_name, pw.pw_uid, frozenset(os.getgroups()) | {pw.pw_gid}, False)
        gids = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
        return cls(name, pw.pw_uid, frozenset(gids), True)

    def can(self, path: Path, want: int) -> bool:
        """Whether this user may `want` (os.R_OK / os.W_OK) `path`, by its mode bits and
        every folder on the way (which needs search permission). Root may everything."""
        if self.uid == 0:
            return True
        p = Path(os.path.abspath(path))
        for d in reversed(p.parents):
            if not self._bits(d, os.X_OK):
                return False
        return self._bits(p, want)

    def _bits(self, p: Path, want: int) -> bool:
        st = p.stat()
        if st.st_uid == self.uid:
            mode = st.st_mode >> 6
        elif st.st_gid in self.gids:
            mode = st.st_mode >> 3
        else:
            mode = st.st_mode
        return bool(mode & want)


@dataclass
class Context:
    """What every check may use. `cfg` is None when the config could not be read."""

    config_path: Path
    cfg: Any  # kiosk.config.Config | None (imported lazily: `kiosk --help` stays fast)
    config_error: str | None
    user: ServiceUser
    skip: frozenset[str] = frozenset()
    measure_s: float = 2.0  # how long the frame-rate check watches the camera
    found: dict[str, Any] = field(default_factory=dict)  # what a check learnt that a later one uses


@dataclass(frozen=True)
class Check:
    name: str
    func: Callable[[Context], Result]
    needs_config: bool
    area: str  # the --skip group: its module's area, or a device ("camera", "nfc", ...)


CHECKS: list[Check] = []


def check(name: str, *, needs_config: bool = True, area: str | None = None
          ) -> Callable[[Callable[[Context], Result]], Callable[[Context], Result]]:
    """Register a check under `name`. `--skip NAME` or `--skip AREA` leaves it out."""
    def deco(func: Callable[[Context], Result]) -> Callable[[Context], Result]:
        if any(c.name == name for c in CHECKS):
            raise ValueError(f"doctor check {name!r} registered twice")
        CHECKS.append(Check(name, func, needs_config, area or name))
        return func
    return deco


def _load_checks() -> list[Check]:
    for m in CHECK_MODULES:
        importlib.import_module(m)
    # the screen's order is CHECK_MODULES' order, whichever module was imported first
    rank = {m: i for i, m in enumerate(CHECK_MODULES)}
    return sorted(CHECKS, key=lambda c: rank.get(c.func.__module__, len(rank)))


def load_context(config_path: Path | None, user: str = SERVICE_USER,
                 skip: frozenset[str] = frozenset()) -> Context:
    from kiosk import config

    path = config_path or config.DEFAULT_PATH
    try:
        cfg, err = config.load(path), None
    except ConfigError as e:
        cfg, err = None, e.message
    return Context(path, cfg, err, ServiceUser.lookup(user), skip)


def run_checks(ctx: Context) -> list[tuple[Check, Result]]:
    """Every registered check, in order; skipped ones are reported as SKIP, not left out."""
    checks = _load_checks()
    out = []
    for c in checks:
        if c.name in ctx.skip or c.area in ctx.skip:
            res = Result.skip("skipped (--skip)")
        elif c.needs_config and ctx.cfg is None:
            res = Result.skip("needs the config (see the config check)")
        else:
            try:
                res = c.func(ctx)
            except KioskError as e:
                res = Result.fail(e.message, "see the message; `kiosk -v doctor` shows more")
            except Exception as e:  # a doctor reports, it does not crash
                res = Result.fail(f"check failed unexpectedly ({type(e).__name__}: {e})",
                                  "a bug in this check: report it with `kiosk -v doctor` output")
        out.append((c, res))
    return out


def worst(results: list[tuple[Check, Result]]) -> Status:
    states = {r.status for _, r in results}
    return Status.FAIL if Status.FAIL in states else Status.WARN if Status.WARN in states else Status.OK


def render_text(ctx: Context, results: list[tuple[Check, Result]]) -> str:
    cfg = ctx.cfg
    who = f"kiosk {cfg.kiosk.id} at site {cfg.kiosk.site}" if cfg else "kiosk (config unreadable)"
    user = ctx.user.name + ("" if ctx.user.exists else f" (no '{SERVICE_USER}' user here)")
    lines = [f"{who} -- config {ctx.config_path}, service user {user}"]
    width = max((len(c.name) for c, _ in results), default=8)
    for c, r in results:
        lines.append(f"  {r.status.value.upper():<4}  {c.name:<{width}}  {r.summary}")
        for fx in r.fix.splitlines() if r.status in (Status.WARN, Status.FAIL) else []:
            lines.append(f"        {'':<{width}}  fix: {fx}")
    n = {s: sum(1 for _, r in results if r.status == s) for s in Status}
    lines.append(f"{n[Status.OK]} ok, {n[Status.WARN]} warnings, {n[Status.FAIL]} failed, "
                 f"{n[Status.SKIP]} skipped")
    return "\n".join(lines)


def render_json(ctx: Context, results: list[tuple[Check, Result]]) -> str:
    cfg = ctx.cfg
    doc = {
        "kiosk": cfg.kiosk.id if cfg else None, "site": cfg.kiosk.site if cfg else None,
        "config": str(ctx.config_path), "service_user": ctx.user.name,
        "status": worst(results).value,
        "checks": [{"name": c.name, "status": r.status.value, "summary": r.summary,
                    "fix": r.fix, "data": r.data} for c, r in results],
    }
    return json.dumps(doc, indent=2, default=str)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check this kiosk (camera, reader, display, models, keys, clock, "
                                      "broker, TLS, gateway, revocations, outbox) and say how to fix it")
    p.add_argument("--config", type=Path, default=None, help="config file (default /etc/kiosk/kiosk.toml)")
    p.add_argument("--skip", action="append", default=[], metavar="CHECK",
                   help="leave out a check or an area (e.g. nfc, camera, broker on a desk without them)")
    p.add_argument("--user", default=None,
                   help=f"the service user whose access to the files is checked (default {SERVICE_USER}, "
                        "else whoever runs this)")
    p.add_argument("--json", action="store_true", help="the results as JSON")
    p.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    names = {c.name for c in _load_checks()} | {c.area for c in CHECKS}
    unknown = sorted(set(args.skip) - names)
    if unknown:
        print(f"kiosk doctor: --skip {unknown[0]}: no such check (checks: {', '.join(sorted(names))})",
              file=sys.stderr)
        return 64  # EX_USAGE
    if args.config is not None and not args.config.exists():
        # a file named on the command line that is not there is a typo, not a kiosk to check;
        # the default one missing is an unprovisioned kiosk, which the config check explains
        from kiosk.errors import NoInputError

        raise NoInputError(f"--config {args.config}: no such file")
    if args.user is not None:  # named on the command line: a typo must not check another user
        try:
            pwd.getpwnam(args.user)
        except KeyError:
            from kiosk.errors import NoUserError

            raise NoUserError(f"--user {args.user}: no such user") from None
    ctx = load_context(args.config, args.user or SERVICE_USER, frozenset(args.skip))
    results = run_checks(ctx)
    print(render_json(ctx, results) if args.json else render_text(ctx, results))
    return EXIT_FAILED if worst(results) == Status.FAIL else 0
