"""Publisher against a real Mosquitto and the real gateway process."""
from __future__ import annotations

import time

import pytest

from kiosk.net.outbox import Outbox
from kiosk.net.publisher import Publisher, backoff_delay
from kiosk.protocol import entry

from .conftest import Env, wait_for
from .helpers import ledger_hashes, make_event_session

pytestmark = pytest.mark.mosquitto


def test_backoff_is_capped_and_jittered() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff_delay(a, 0.2, 30.0, rng) for a in range(40)]
    assert all(0.1 <= d <= 30.0 for d in delays)
    assert max(delays[20:]) <= 30.0 and min(delays[20:]) >= 15.0
    assert len({round(d, 6) for d in delays[20:]}) > 1  # jitter


def test_entries_arrive_and_outbox_empties(env: Env, broker, gateway) -> None:
    cfg = env.cfg("kiosk-1")
    ob = Outbox(cfg.state_path(cfg.outbox.path))
    pub = Publisher.from_config(cfg, ob).start()
    try:
        hashes = []
        for _ in range(10):
            hashes += ob.add_session(make_event_session(env.kiosk_keys["kiosk-1"]))
            pub.wake()
        wait_for(lambda: ob.depth() == 0, 60, what="outbox to empty")
        h = pub.health()
        assert h.connected and h.depth == 0 and h.alarms == 0 and h.parked == 0
        assert h.last_checkpoint_size == 20
        assert sorted(ledger_hashes(env.root / "gw" / "ledger.sqlite3")) == sorted(hashes)
        assert all(ob.receipt(x) is not None for x in hashes)
    finally:
        pub.stop()


def test_unregistered_kiosk_is_rejected_and_parked(env: Env, broker, gateway) -> None:
    key = env.add_kiosk("kiosk-9", register=False)
    cfg = env.cfg("kiosk-9")
    ob = Outbox(cfg.state_path(cfg.outbox.path))
    with Publisher.from_config(cfg, ob) as pub:
        hashes = ob.add_session(make_event_session(key, kiosk="kiosk-9"))
        pub.wake()
        wait_for(lambda: len(ob.parked()) == 2, 60, what="both entries parked")
        assert {p.reason for p in ob.parked()} == {"unknown-kiosk"}
        assert ob.depth() == 0 and pub.health().parked == 2
    assert ledger_hashes(env.root / "gw" / "ledger.sqlite3") == []
    assert all(ob.get(h) is not None for h in hashes)  # kept for staff, not dropped


def test_broker_down_for_a_while(env: Env, broker, gateway) -> None:
    cfg = env.cfg("kiosk-1")
    ob = Outbox(cfg.state_path(cfg.outbox.path))
    with Publisher.from_config(cfg, ob) as pub:
        wait_for(lambda: pub.connected, 30, what="publisher to connect")
        broker.stop()
        wait_for(lambda: not pub.connected, 30, what="publisher to notice")
        hashes = []
        for _ in range(5):
            hashes += ob.add_session(make_event_session(env.kiosk_keys["kiosk-1"]))
            pub.wake()
        time.sleep(2.0)
        assert ob.depth() == 10 and not pub.health().connected  # they wait
        broker.start()
        wait_for(lambda: ob.depth() == 0, 90, what="outbox to empty after the outage")
    assert sorted(ledger_hashes(env.root / "gw" / "ledger.sqlite3")) == sorted(hashes)


def test_a_missing_tls_file_is_one_clear_error_at_start(tmp_path) -> None:
    """A wrong path in kiosk.toml fails in the caller's thread, naming the file."""
    import pytest
    from nacl.public import PrivateKey
    from nacl.signing import SigningKey

    from kiosk.errors import TransportError
    from kiosk.ledger.checkpoint import NoteVerifier
    from kiosk.net.outbox import Outbox
    from kiosk.net.publisher import Publisher, PublisherSettings

    settings = PublisherSettings(site="clinic", kiosk_id="kiosk-1", host="127.0.0.1", port=1,
                                 tls_ca=tmp_path / "nope-ca.pem")
    pub = Publisher(settings, Outbox(tmp_path / "o.sqlite3"),
                    NoteVerifier("log", SigningKey.generate().verify_key),
                    seal_to=PrivateKey.generate().public_key)
    with pytest.raises(TransportError, match="nope-ca.pem"):
        pub.start()


KIOSK_KILLED_WHILE_SYNCING = """
import os, signal, sys, time
from kiosk import config
from kiosk.net.outbox import Outbox
from kiosk.net.publisher import Publisher
from tests.net.helpers import ledger_hashes

cfg = config.load(sys.argv[1])
records = [(bytes.fromhex(leaf), bytes.fromhex(body), None)
           for leaf, body in (line.split() for line in open(sys.argv[2]))]
ob = Outbox(cfg.state_path(cfg.outbox.path))
pub = Publisher.from_config(cfg, ob).start()
deadline = time.monotonic() + 60
while not pub.connected and time.monotonic() < deadline:
    time.sleep(0.05)

def sent_then_killed():
    pub.wake()
    # the gateway logs the records while this process has not synced them yet
    while len(ledger_hashes(sys.argv[3])) < len(records) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)

ob.add_session(records, on_committed=sent_then_killed)
print("not reached", flush=True)
"""


def test_kiosk_killed_after_sending_before_its_outbox_fsync(env: Env, broker, gateway) -> None:
    """The window Outbox.add_session opens: records out on the wire, the commit not yet
    synced. Killed there, the kiosk keeps the commit, sends again, gets the entries the log
    already has: nothing lost, nothing twice, no alarm."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    cfg_path = env.write_cfg("kiosk-1")
    cfg = env.cfg("kiosk-1")
    records = make_event_session(env.kiosk_keys["kiosk-1"])
    rec_file = env.root / "records.txt"
    rec_file.write_text("".join(f"{leaf.hex()} {body.hex()}\n" for leaf, body, _ in records))
    ledger = env.root / "gw" / "ledger.sqlite3"
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", KIOSK_KILLED_WHILE_SYNCING, str(cfg_path),
                           str(rec_file), str(ledger)], cwd=repo, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    hashes = [entry.entry_hash(leaf) for leaf, _, _ in records]
    assert ledger_hashes(ledger) == hashes  # in the log before the kiosk synced them
    ob = Outbox(cfg.state_path(cfg.outbox.path))
    assert ob.depth() + sum(ob.receipt(h) is not None for h in hashes) == 2  # kept: the commit survived
    with Publisher.from_config(cfg, ob) as pub:
        wait_for(lambda: ob.depth() == 0, 60, what="the resent records answered")
        h = pub.health()
        assert h.alarms == 0 and h.parked == 0
    assert ledger_hashes(ledger) == hashes  # once each
    assert all(ob.receipt(x) is not None for x in hashes)


def test_the_kiosk_cosigns_its_new_head_and_reads_it_only_when_it_moved(env: Env, broker, gateway) -> None:
    cfg = env.cfg("kiosk-1")
    ob = Outbox(cfg.state_path(cfg.outbox.path))
    reads: list[int] = []
    last = ob.last_checkpoint

    def counted():
        reads.append(1)
        return last()

    ob.last_checkpoint = counted  # type: ignore[method-assign]
    with Publisher.from_config(cfg, ob) as pub:
        ob.add_session(make_event_session(env.kiosk_keys["kiosk-1"]), on_committed=pub.wake)
        wait_for(lambda: pub.counts["cosigned"] >= 1 and ob.depth() == 0, 60, what="a cosigned head")
        wait_for(lambda: pub.counts["cosigned"] >= 1 and not pub._head_moved, 10, what="the head witnessed")
        before = len(reads)
        time.sleep(1.5)  # several rounds of the loop, and the witness interval, with no receipt
        assert len(reads) == before
        ob.add_session(make_event_session(env.kiosk_keys["kiosk-1"]), on_committed=pub.wake)
        wait_for(lambda: pub.counts["cosigned"] >= 2, 60, what="the new head cosigned")
    assert ob.last_checkpoint().size == 4


def test_a_pump_of_several_records_is_corked_into_one_write() -> None:
    import socket

    from kiosk.net.tls import corked

    if not hasattr(socket, "TCP_CORK"):
        pytest.skip("TCP_CORK is Linux's")
    srv = socket.create_server(("127.0.0.1", 0))
    c = socket.create_connection(srv.getsockname())
    s, _ = srv.accept()

    class Client:
        def socket(self):
            return c

    try:
        with corked(Client()):
            assert c.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 1
            c.sendall(b"record 1")
            c.sendall(b"record 2")
        assert c.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0
        s.settimeout(10)
        got = b""
        while len(got) < 16:
            got += s.recv(100)
        assert got == b"record 1record 2"  # held, then sent together when the block ended

        class Gone:
            def socket(self):
                return None

        with corked(Gone()):
            pass  # no socket (disconnected): the block just runs
    finally:
        for x in (c, s, srv):
            x.close()
