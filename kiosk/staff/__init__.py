"""Staff on the kiosk: who may sign in (badge + PIN), lock-outs, and the front desk's view.

store    staff members (pseudonymous id, badge hash, argon2id PIN hash), lock-outs, the
         day's ticket queue — one SQLite file that survives restarts
pin      PIN hashing (argon2id via PyNaCl) with parameters chosen for a Raspberry Pi
desk     what the staff screens show and do: queue, alerts, health, parked records, override
cli      `kiosk staff add|list|disable|reset`
"""
