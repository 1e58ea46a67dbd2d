"""At debug level the gateway logs counts and types of hostile input, never its text (#12 item 7)."""
from __future__ import annotations

import logging

from kiosk.protocol import cbor

from .conftest import build_gateway
from .factories import KIOSK

MARK = "Jane Doe 1970-01-01"


def test_the_gateway_logs_no_text_of_a_hostile_record_at_debug_level(world, tmp_path, clock, caplog):
    gw = build_gateway(world, tmp_path, clock)
    try:
        caplog.set_level(logging.DEBUG)
        for rec in ({"entry_hash": b"e" * 32, "kid": b"k" * 8, "sealed": b"", "last_size": 0, MARK: "x"},
                    {MARK: 1}, {"leaf": MARK}, [MARK], {"leaf": b"", "body": b"", "last_size": 0,
                                                        "presentation": {MARK: MARK}}):
            r = gw.handle_record(KIOSK, cbor.dumps(rec))
            assert r is not None and not r.accepted
        assert caplog.text and "rejection detail" in caplog.text
        assert "Jane" not in caplog.text
    finally:
        gw.close()
