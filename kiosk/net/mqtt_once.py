"""One-shot MQTT 5 exchanges for tools: publish one retained message (issuer), read one
retained message (doctor). Long-running clients live in publisher.py and gateway_mqtt.py."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from kiosk.errors import TransportError
from kiosk.net.tls import apply_client_tls


def _client(client_id: str, tls: tuple[Path | None, Path | None, Path | None] = (None, None, None)) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    ca, cert, key = tls
    if ca or cert:
        apply_client_tls(client, ca, cert, key)
    return client


def publish_retained(host: str, port: int, topic: str, payload: bytes, *, client_id: str,
                     timeout_s: float = 10.0, tls: tuple = (None, None, None)) -> None:
    """Connect, publish retained at QoS 1, wait for PUBACK, disconnect."""
    client = _client(client_id, tls)
    try:
        client.connect(host, port, keepalive=30)
        client.loop_start()
        info = client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise TransportError(f"broker {host}:{port} did not acknowledge the publication")
    except (OSError, ValueError, RuntimeError) as e:
        raise TransportError(f"cannot publish to {host}:{port}: {e}") from None
    finally:
        client.loop_stop()
        client.disconnect()


def read_retained(host: str, port: int, topic: str, *, client_id: str, timeout_s: float = 5.0,
                  tls: tuple = (None, None, None)) -> bytes | None:
    """The retained message on `topic`, or None if there is none within `timeout_s`."""
    got: list[bytes] = []
    done = threading.Event()

    def on_connect(c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            done.set()
        else:
            c.subscribe(topic, qos=1)

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        if msg.retain:
            got.append(bytes(msg.payload))
            done.set()

    client = _client(client_id, tls)
    client.on_connect, client.on_message = on_connect, on_message
    try:
        client.connect(host, port, keepalive=30)
        client.loop_start()
        done.wait(timeout_s)
    except (OSError, ValueError, RuntimeError) as e:
        raise TransportError(f"cannot read from {host}:{port}: {e}") from None
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0] if got else None


def read_retained_all(host: str, port: int, topic_filter: str, *, client_id: str,
                      quiet_s: float = 1.0, timeout_s: float = 10.0,
                      tls: tuple = (None, None, None)) -> dict[str, bytes]:
    """Every retained message under `topic_filter` (topic -> payload).

    The broker sends the retained messages right after the subscription; we stop once none
    came for `quiet_s` after the subscription was granted. TransportError if it never is.
    """
    import time

    got: dict[str, bytes] = {}
    subscribed = threading.Event()
    last = [0.0]

    def on_connect(c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            c.subscribe(topic_filter, qos=1)

    def on_subscribe(_c: Any, _u: Any, _mid: Any, codes: Any, _p: Any) -> None:
        if not any(rc.is_failure for rc in codes):
            last[0] = time.monotonic()
            subscribed.set()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        if msg.retain:
            got[msg.topic] = bytes(msg.payload)
            last[0] = time.monotonic()

    client = _client(client_id, tls)
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    try:
        client.connect(host, port, keepalive=30)
        client.loop_start()
        if not subscribed.wait(timeout_s):
            raise TransportError(f"broker {host}:{port} did not grant the subscription")
        while time.monotonic() - last[0] < quiet_s:
            time.sleep(0.05)
    except (OSError, ValueError, RuntimeError) as e:
        raise TransportError(f"cannot read from {host}:{port}: {e}") from None
    finally:
        client.loop_stop()
        client.disconnect()
    return got
