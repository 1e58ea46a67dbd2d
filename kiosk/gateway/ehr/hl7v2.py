"""HL7 v2.5 ADT^A04 (register a patient visit; the ADT_A01 structure) over MLLP.

MLLP frames a message as 0x0B ... 0x1C 0x0D. The receiver must answer MSA|AA with our
control id (the first 20 hex digits of the check-in's entry hash, so a resend is
recognisable); AE (application error) is retried, AR (reject) is not.
"""
from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

import hl7

from kiosk.gateway.ehr.connector import Arrival, EhrAnswer

START, END = b"\x0b", b"\x1c\r"
MAX_ANSWER = 64 * 1024


def escape(value: str) -> str:
    """HL7 v2 escape sequences for the delimiters (\\ first)."""
    out = value.replace("\\", "\\E\\")
    for ch, esc in (("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\")):
        out = out.replace(ch, esc)
    return "".join(c for c in out if c >= " ")


def adt_a04(arrival: Arrival, *, sending_facility: str, receiving_app: str, receiving_facility: str,
            control_id: str) -> str:
    at = dt.datetime.fromtimestamp(arrival.arrived_ms / 1000).astimezone()
    ts = at.strftime("%Y%m%d%H%M%S%z")
    segments = [
        f"MSH|^~\\&|KIOSK|{escape(sending_facility)}|{escape(receiving_app)}|{escape(receiving_facility)}|"
        f"{ts}||ADT^A04^ADT_A01|{control_id}|P|2.5",
        f"EVN|A04|{ts}",
        f"PID|1||{escape(arrival.ehr_value)}^^^{escape(arrival.ehr_system)}^MR",
        f"PV1|1|O|||||||||||||||||{control_id}|||||||||||||||||||||||||{ts}",
    ]
    return "\r".join(segments) + "\r"


class MllpConnector:
    kind = "hl7v2"

    def __init__(self, host: str, port: int, *, sending_facility: str, receiving_app: str = "EHR",
                 receiving_facility: str = "CLINIC", tls_ca: Path | None = None, timeout_s: float = 10.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.sending_facility, self.receiving_app = sending_facility, receiving_app
        self.receiving_facility = receiving_facility
        self._ssl = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca else None

    def _exchange(self, message: str) -> bytes:
        with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as raw:
            sock = self._ssl.wrap_socket(raw, server_hostname=self.host) if self._ssl else raw
            sock.sendall(START + message.encode("utf-8") + END)
            buf = b""
            while END not in buf:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > MAX_ANSWER:
                    break
        start = buf.find(START)
        end = buf.find(END)
        if start < 0 or end < start:
            raise ValueError("no MLLP frame in the answer")
        return buf[start + 1:end]

    def notify(self, arrival: Arrival) -> EhrAnswer:
        control = arrival.entry_hash.hex()[:20]
        msg = adt_a04(arrival, sending_facility=self.sending_facility, receiving_app=self.receiving_app,
                      receiving_facility=self.receiving_facility, control_id=control)
        try:
            answer = self._exchange(msg)
        except OSError as e:
            return EhrAnswer("unavailable", f"the MLLP listener is unreachable ({type(e).__name__})")
        except ValueError as e:
            return EhrAnswer("error", str(e))
        try:
            parsed = hl7.parse(answer.decode("utf-8", "replace"))
            msa = parsed.segment("MSA")
            code, acked = str(msa[1]), str(msa[2])
        except Exception:  # the hl7 library raises several types for a malformed answer
            return EhrAnswer("error", "the answer is not an HL7 v2 acknowledgement")
        if acked != control:
            return EhrAnswer("error", "the acknowledgement names another message")
        if code in ("AA", "CA"):
            return EhrAnswer("arrived", "", {"ack": control})
        if code in ("AR", "CR"):
            return EhrAnswer("refused", f"the EHR rejected the ADT^A04 ({code})")
        return EhrAnswer("error", f"the EHR answered {code:.4}")
