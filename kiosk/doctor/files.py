"""Doctor checks on this machine's files: the config, the models, the keys and who owns
them, the state folder and the outbox (depth, parked records, alarms)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from kiosk.doctor.core import Context, Result, check
from kiosk.errors import KioskError


def _sudo_doctor(ctx: Context) -> str:
    return f"run it as the service user: sudo -u {ctx.user.name} kiosk doctor (or sudo kiosk doctor)"


@check("config", needs_config=False)
def config_file(ctx: Context) -> Result:
    path = ctx.config_path
    if ctx.cfg is None:
        err = ctx.config_error or "unreadable"
        if not path.exists():
            return Result.fail(err, "provision this kiosk: sudo kiosk provision --site SITE --id ID "
                                    "--broker HOST:8883 --ca ca.crt")
        if not os.access(path, os.R_OK):
            me = os.environ.get("USER") or str(os.getuid())
            return Result.fail(f"{path} is not readable by {me}", _sudo_doctor(ctx))
        return Result.fail(err, f"edit {path}: the key named above")
    try:
        readable = ctx.user.can(path, os.R_OK)
    except PermissionError:
        return Result.warn(f"{path} loads, but its folders cannot be inspected", _sudo_doctor(ctx))
    if not readable:
        return Result.fail(f"{path} loads, but the service user {ctx.user.name} cannot read it",
                           f"sudo chgrp {ctx.user.name} {path.parent} {path} && "
                           f"sudo chmod g+rx {path.parent} && sudo chmod g+r {path}")
    return Result.ok(f"{path} loads (schema {ctx.cfg.schema_version})")


@check("models")
def models(ctx: Context) -> Result:
    from kiosk.vision.models import candidate_dirs, verify_models

    tried = []
    for d in candidate_dirs(ctx.cfg.paths.models_dir):
        tried.append(str(d))
        if d.is_dir() and not verify_models(d):
            return Result.ok(f"dlib models verified in {d}", dir=str(d))
    return Result.fail(f"dlib models missing or corrupt (looked in {', '.join(tried)})",
                       "re-run ./setup.sh (it installs and verifies models/)")


def _key_files(cfg) -> list[tuple[str, Path, bool, object]]:
    """(what, path, private, loader) for every key and TLS file the kiosk reads."""
    from kiosk.protocol import keys

    files: list[tuple[str, Path, bool, object]] = [
        ("kiosk key", cfg.keys.kiosk_key, True, keys.load_signing_key),
        ("sealing key", cfg.keys.sealing_key, True, keys.load_sealing_key),
        ("log public key", cfg.keys.log_public, False, keys.load_verify_key),
        ("gateway sealing public key", cfg.keys.gateway_sealing_public, False, keys.load_sealing_public),
    ]
    files += [("issuer public key", p, False, keys.load_verify_key) for p in cfg.keys.issuer_public]
    b = cfg.broker
    files += [(what, p, private, None) for what, p, private in
              (("TLS key", b.tls_key, True), ("TLS certificate", b.tls_cert, False),
               ("clinic CA", b.tls_ca, False)) if p is not None]
    return files


@check("keys")
def key_files(ctx: Context) -> Result:
    """Each key loads, private ones are 0600 and owned by the service user (the classic
    failure: `sudo kiosk provision` leaves them to root and the service restarts forever)."""
    user = ctx.user.name
    problems: list[tuple[str, str]] = []
    for what, path, private, loader in _key_files(ctx.cfg):
        try:
            st = path.stat()
        except FileNotFoundError:
            hint = ("kiosk provision makes it" if what == "kiosk key" else
                    "copy it from the enrolment desk (kiosk issuer init made it)" if what == "sealing key"
                    else "copy it from the gateway host (/etc/kiosk/keys/log.pub)" if what == "log public key"
                    else "copy it from the gateway host (kiosk gateway init made it)"
                    if "gateway sealing" in what
                    else "copy it from the enrolment desk (issuer.pub)" if "issuer" in what
                    else "kiosk ca issue on the gateway host makes it")
            problems.append((f"{what} {path} missing", hint))
            continue
        except PermissionError:
            problems.append((f"{what} {path} cannot be inspected", _sudo_doctor(ctx)))
            continue
        if private:
            if stat.S_IMODE(st.st_mode) & 0o077:
                problems.append((f"{what} {path} is mode {stat.S_IMODE(st.st_mode):04o}",
                                 f"sudo chmod 0600 {path}"))
                continue  # the loader refuses it for the same reason
            if ctx.user.exists and st.st_uid != ctx.user.uid:
                problems.append((f"{what} {path} is not owned by {user}: the service cannot read it",
                                 f"sudo chown {user}:{user} {path}"))
                continue
        try:
            if not ctx.user.can(path, os.R_OK):
                problems.append((f"{what} {path} is not readable by {user}",
                                 f"sudo chgrp {user} {path.parent} && sudo chmod g+rx {path.parent}"))
                continue
        except PermissionError:
            problems.append((f"{what} {path} cannot be inspected", _sudo_doctor(ctx)))
            continue
        if loader is not None and os.access(path, os.R_OK):
            try:
                loader(path)  # type: ignore[operator]
            except KioskError as e:
                problems.append((f"{what}: {e.message}", f"replace {path} with the right PEM file"))
    if problems:
        fixes = "\n".join(dict.fromkeys(f for _, f in problems))
        return Result.fail("; ".join(p for p, _ in problems), fixes, problems=[p for p, _ in problems])
    return Result.ok(f"kiosk, sealing, log, gateway sealing and issuer keys load; private ones 0600, "
                     f"owned by {user}")


@check("outbox")
def outbox(ctx: Context) -> Result:
    from kiosk.net.outbox import Outbox

    cfg = ctx.cfg
    state = cfg.paths.state_dir
    user = ctx.user.name
    if not state.is_dir():
        return Result.fail(f"state folder {state} missing",
                           f"sudo install -d -m 0700 -o {user} -g {user} {state}")
    try:
        if not ctx.user.can(state, os.W_OK):
            return Result.fail(f"state folder {state} is not writable by {user}",
                               f"sudo chown -R {user}:{user} {state}")
    except PermissionError:
        return Result.warn(f"state folder {state} cannot be inspected", _sudo_doctor(ctx))
    path = cfg.state_path(cfg.outbox.path)
    if not path.exists():
        return Result.ok(f"no outbox yet at {path} (made at the first check-in)", depth=0)
    with Outbox(path) as ob:
        depth, parked, alarms = ob.depth(), len(ob.parked()), len(ob.alarms())
        age = ob.oldest_age_s() or 0.0
    data = {"depth": depth, "parked": parked, "alarms": alarms, "oldest_s": round(age, 1)}
    line = f"outbox: {depth} waiting (oldest {age:.0f} s), {parked} parked, {alarms} alarms"
    if alarms:
        return Result.fail(line, "two signed checkpoints disagree: keep this kiosk's state, "
                                 "run `kiosk outbox --json` and call the ledger's operator", **data)
    if parked:
        return Result.warn(line, "`kiosk outbox` lists them with the gateway's reason; fix it, then "
                                   "`kiosk outbox --retry-parked`", **data)
    if age > 600:
        return Result.warn(line, "records wait for receipts: see the broker and gateway checks", **data)
    return Result.ok(line, **data)
