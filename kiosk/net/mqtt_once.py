"""Publish one retained message and wait for the broker's acknowledgement (issuer, tools)."""
from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from kiosk.errors import TransportError


def publish_retained(host: str, port: int, topic: str, payload: bytes, *, client_id: str,
                     timeout_s: float = 10.0) -> None:
    """Connect (MQTT 5), publish retained at QoS 1, wait for PUBACK, disconnect."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
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
