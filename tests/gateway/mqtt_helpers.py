"""A test MQTT client playing kiosks: publishes records, collects receipts and retained messages."""
from __future__ import annotations

import queue
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from kiosk.protocol import entry


class TestClient:
    __test__ = False  # not a test class

    def __init__(self, port: int, subscriptions: list[str], host: str = "127.0.0.1") -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:10]}",
                        protocol=mqtt.MQTTv5)
        c.on_connect = lambda cl, u, f, rc, p: self._connected.set()
        c.on_subscribe = lambda cl, u, mid, rcs, p: self._subscribed.set()
        c.on_message = lambda cl, u, m: self.messages.put((m.topic, bytes(m.payload), bool(m.retain)))
        c.connect(host, port)
        c.loop_start()
        assert self._connected.wait(20), "test client could not connect"
        if subscriptions:
            c.subscribe([(t, 1) for t in subscriptions])
            assert self._subscribed.wait(20), "test client could not subscribe"
        self.client = c

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(20)

    def receipts(self, want: int, timeout_s: float = 60) -> dict[bytes, list[entry.Receipt]]:
        """Collect `want` receipt messages (by entry hash); fail after `timeout_s`."""
        got: dict[bytes, list[entry.Receipt]] = {}
        n = 0
        deadline = time.monotonic() + timeout_s
        while n < want:
            left = deadline - time.monotonic()
            assert left > 0, f"only {n} of {want} receipts arrived"
            try:
                topic, payload, _ = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if not topic.endswith("/receipts"):
                continue
            r = entry.decode_receipt(payload)
            got.setdefault(r.entry_hash, []).append(r)
            n += 1
        return got

    def receipt_for(self, entry_hash: bytes, timeout_s: float = 60) -> entry.Receipt:
        """The first receipt naming `entry_hash` (others are skipped)."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.receipts(1, max(0.01, deadline - time.monotonic()))
            if entry_hash in got:
                return got[entry_hash][0]

    def retained(self, topic: str, timeout_s: float = 20) -> bytes:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no retained message on {topic}"
            try:
                t, payload, retain = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if t == topic and retain:
                return payload

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(pred, timeout_s: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
