"""The card side of ISO/IEC 14443-4 (ISO-DEP) block framing, for the emulator.

Used when the host drives ISO-DEP itself through InCommunicateThru (nfcpy does: it turns
the PN532's automatic RATS off). Our own driver lets the (emulated) PN532 handle ISO-DEP
and uses InDataExchange, which bypasses this module. CRC_A is the CIU's job and not
modelled. Block formats: ISO/IEC 14443-4 §7.1 (PCB of I-, R- and S-blocks), RATS §5.6.1.
"""
from __future__ import annotations

from collections.abc import Callable

FSD_TABLE = (16, 24, 32, 40, 48, 64, 96, 128, 256)  # ISO/IEC 14443-4 §5.1, FSDI -> FSD


class IsoDepCard:
    """ISO-DEP PICC state for one activated card. `process` maps a PCD block to a PICC block."""

    def __init__(self, ats: bytes, apdu_handler: Callable[[bytes], bytes]) -> None:
        self.ats = ats
        self.handler = apdu_handler
        self.active = False
        self.hung = False  # the emulator gave up on it: silent past its waiting time
        self.fsd = 256
        self._rx = bytearray()  # command being received in chained I-blocks
        self._tx = b""  # response not yet sent (chaining)
        self._last = b""  # last block sent, for retransmission

    def process(self, block: bytes) -> bytes | None:
        """One exchange; None means "no answer" (the PCD times out)."""
        if not block:
            return None
        pcb = block[0]
        if not self.active:
            if pcb == 0xE0 and len(block) == 2:  # RATS (§5.6.1): FSDI in the high nibble
                self.fsd = FSD_TABLE[min(block[1] >> 4, 8)]
                self.active = True
                self._rx.clear()
                self._tx = b""
                return self.ats
            return None
        if pcb & 0xE2 == 0x02:  # I-block (§7.1.1.1): 0 0 0 chaining CID NAD 1 bn
            return self._i_block(pcb, block[1:])
        if pcb & 0xE6 == 0xA2:  # R-block: 1 0 1 NAK 0 0 1 bn
            bn = pcb & 1
            if self._tx and not pcb & 0x10:  # R(ACK): send the next chained part
                return self._send_part(bn)
            if pcb & 0x10:  # R(NAK): presence check / lost block
                return self._last or bytes([0xA2 | bn])
            return self._last or None
        if pcb & 0xF7 == 0xC2:  # S(DESELECT) (§7.1.1.3)
            self.active = False
            return bytes([pcb])
        return None

    def _i_block(self, pcb: int, inf: bytes) -> bytes:
        bn = pcb & 1
        self._rx += inf
        if pcb & 0x10:  # PCD chaining: acknowledge and wait for more
            self._last = bytes([0xA2 | bn])
            return self._last
        command, self._rx = bytes(self._rx), bytearray()
        self._tx = self.handler(command)
        return self._send_part(bn)

    def _send_part(self, bn: int) -> bytes:
        room = self.fsd - 3  # PCB + CRC_A (§7.1.1)
        part, self._tx = self._tx[:room], self._tx[room:]
        self._last = bytes([(0x12 if self._tx else 0x02) | bn]) + part
        return self._last
