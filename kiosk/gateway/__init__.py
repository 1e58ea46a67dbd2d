"""The ledger gateway service: MQTT intake, validation, kiosk registry, sessions, receipts.

Imports run one way: gateway -> ledger -> protocol.
"""
