"""The CLI's log handler follows sys.stderr: an in-process caller that closes its stderr does
not break every later log record ("--- Logging error ---" in other tests' output)."""
from __future__ import annotations

import io
import logging
import sys

from kiosk.log import setup_logging


def test_records_go_to_the_current_stderr_after_the_old_one_closed(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging()
    logging.getLogger("kiosk.test").info("one")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("kiosk.test").info("two")
    assert "INFO kiosk.test: two" in second.getvalue()
    assert "Logging error" not in second.getvalue()
