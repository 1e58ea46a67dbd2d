"""`kiosk doctor`: one screen that tells IT what works on this kiosk and, for what does not,
the command or setting that fixes it.

Checks live in small modules by area (`files`, `network`, `hardware`); each registers its
checks with the `@check` decorator from `kiosk.doctor.core`. To add a check, write a function
`(ctx: Context) -> Result` in the module of its area (or a new module listed in
`core.CHECK_MODULES`) and decorate it: the screen, `--json`, `--skip` and the exit code pick
it up.
"""
from kiosk.doctor.core import Check, Context, Result, Status, check, register, run_checks

__all__ = ["Check", "Context", "Result", "Status", "check", "register", "run_checks"]
