"""The real gateway core and the real kiosk outbox, with the message interleavings of the
review's finding 4 played deterministically: pipelined sends across gateway batches, a lost
receipt and a timeout resend whose answer overtakes the original's, a gateway restart with
records in flight. Each must end with every record completed once and no alarm."""
from __future__ import annotations

from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from kiosk.config import GatewayTable
from kiosk.gateway.core import Gateway
from kiosk.gateway.registry import SqliteRegistry
from kiosk.gateway.sessions import SqliteSessions
from kiosk.ledger.checkpoint import NoteVerifier
from kiosk.ledger.sqlite_store import SqliteLogStore
from kiosk.net.outbox import Outbox
from kiosk.net.receipt import Outcome, process_receipts
from kiosk.protocol.entry import Record, decode_record

from .helpers import make_event_session

LOG = "test.example/log"
LOG_KEY = SigningKey.generate()
VERIFIER = NoteVerifier(LOG, LOG_KEY.verify_key)
KIOSK_KEY = SigningKey.generate()
SEAL_KEY = PrivateKey.generate()


def gateway(tmp_path: Path) -> Gateway:
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    if registry.get("kiosk-1") is None:
        registry.add("kiosk-1", KIOSK_KEY.verify_key)
    return Gateway(store=SqliteLogStore(tmp_path / "ledger.sqlite3"), registry=registry,
                   sessions=SqliteSessions(tmp_path / "ledger.sqlite3"), log_key=LOG_KEY,
                   log_name=LOG, site="clinic", issuers={}, sealing_keys=[SEAL_KEY],
                   settings=GatewayTable())


class Kiosk:
    """The publisher's send/receive rules without MQTT: what goes out, what comes back."""

    def __init__(self, tmp_path: Path) -> None:
        self.ob = Outbox(tmp_path / "outbox.sqlite3")
        self.sends = 0
        self.outcomes: list[Outcome] = []

    def add(self, sessions: int) -> list[bytes]:
        out = []
        for _ in range(sessions):
            out += self.ob.add_session(make_event_session(KIOSK_KEY))
        return out

    def send(self, hashes: list[bytes]) -> list[bytes]:
        """Record messages for these records, each naming the kiosk's head now."""
        head = self.ob.last_checkpoint()
        base = head.size if head else 0
        self.ob.mark_sent_many(hashes, base)
        self.sends += len(hashes)
        return [Record(e.leaf, e.body, e.presentation, base).seal(SEAL_KEY.public_key)
                for e in (self.ob.get(h) for h in hashes)]

    def receive(self, receipts: list[bytes]) -> list[Outcome]:
        got = [r.outcome for r in process_receipts(self.ob, receipts, VERIFIER, LOG)]
        self.outcomes += got
        return got


def answer(gw: Gateway, messages: list[bytes], batch: int) -> list[bytes]:
    """The gateway's receipts, judged `batch` messages per transaction."""
    out = []
    for i in range(0, len(messages), batch):
        items = [("kiosk-1", m) for m in messages[i:i + batch]]
        out += [o.receipt.to_cbor() for o in gw.handle_batch(items)]
    return out


def test_pipelined_sends_across_gateway_batches_need_one_send_each(tmp_path):
    gw, k = gateway(tmp_path), Kiosk(tmp_path)
    hashes = k.add(30)
    msgs = k.send(hashes[:20])            # a window of 20 in flight, all with base 0
    receipts = answer(gw, msgs, batch=3)  # answered over seven gateway batches
    msgs = k.send(hashes[20:40])          # the next window leaves before those are read
    assert set(k.receive(receipts)) == {Outcome.ACCEPTED}
    assert set(k.receive(answer(gw, msgs, batch=7))) == {Outcome.ACCEPTED}
    msgs = k.send(hashes[40:])
    assert set(k.receive(answer(gw, msgs, batch=32))) == {Outcome.ACCEPTED}
    assert k.ob.depth() == 0 and k.sends == 60 and k.ob.alarms() == []
    assert k.ob.last_checkpoint().size == gw.store.size() == 60


def test_lost_receipt_timeout_resend_and_the_late_original_raise_no_alarm(tmp_path):
    gw, k = gateway(tmp_path), Kiosk(tmp_path)
    a, b, c, d = k.add(2)
    first = answer(gw, k.send([a, b]), batch=1)   # the receipt for b goes astray
    k.receive(first[:1])
    later = answer(gw, k.send([c, d]), batch=2)
    # proven from b's checkpoint, which the kiosk never saw: sent again, no alarm
    assert k.receive(later) == [Outcome.STALE_BASE] * 2
    assert k.receive(answer(gw, k.send([c, d]), batch=2)) == [Outcome.ACCEPTED] * 2
    resend = k.send([b])                          # b timed out: out again with the new base
    assert decode_record(resend[0]).last_size == k.ob.last_checkpoint().size
    again = answer(gw, resend, batch=1)
    assert k.receive(again) == [Outcome.ACCEPTED]  # the duplicate is proven from that base
    assert k.receive(first[1:]) == [Outcome.UNKNOWN]  # the original's answer, late: ignored
    assert k.ob.depth() == 0 and k.ob.alarms() == [] and k.ob.refusals() == []
    # the resend's answer overtaking the original's is just as calm
    e, f = k.add(1)
    orig = answer(gw, k.send([e, f]), batch=2)
    dup = answer(gw, k.send([e, f]), batch=2)
    assert k.receive(dup) == [Outcome.ACCEPTED] * 2
    assert k.receive(orig) == [Outcome.UNKNOWN] * 2
    assert k.ob.depth() == 0 and k.ob.alarms() == [] and k.ob.refusals() == []


def test_gateway_restart_with_records_in_flight(tmp_path):
    gw, k = gateway(tmp_path), Kiosk(tmp_path)
    hashes = k.add(10)
    k.receive(answer(gw, k.send(hashes[:4]), batch=4))
    inflight = k.send(hashes[4:12])
    gw.close()
    gw = gateway(tmp_path)                # a new process: it knows nothing of what it sent
    k.receive(answer(gw, inflight[:3], batch=3))
    k.receive(answer(gw, inflight[3:], batch=2))
    left = [h for h in hashes if k.ob.get(h) is not None]
    k.receive(answer(gw, k.send(left), batch=32))  # at most one resend each
    assert k.ob.depth() == 0 and k.ob.alarms() == [] and k.ob.refusals() == []
    assert k.sends <= 20 + len(left) and gw.store.size() == 20
