"""The outbox as the engine's RecordSink."""
from __future__ import annotations

from typing import Any


class OutboxSink:
    """The outbox as the RecordSink: one transaction per session, then wake the publisher."""

    def __init__(self, outbox: Any, publisher: Any | None = None) -> None:
        self.outbox, self.publisher = outbox, publisher

    def write_session(self, records: list[tuple[bytes, bytes, dict | None]]) -> None:
        # the publisher sends while the outbox syncs the session (see Outbox.add_session)
        self.outbox.add_session(records, on_committed=self.publisher.wake
                                if self.publisher is not None else None)
