"""The gateway collects kiosks' cosigned checkpoints and serves its checkpoint with them."""
from __future__ import annotations

from nacl.signing import SigningKey

from kiosk.gateway.witnesses import WitnessCollector
from kiosk.ledger.witness import Cosigner, cosign, open_witnessed, witness_name


def test_collects_checks_against_the_store_and_merges(world, gateway):
    k2 = world.kiosk_key("kiosk-2")
    gateway.registry.add("kiosk-2", k2.verify_key)
    for sess in [world.session(world.patient()) for _ in range(2)]:
        for payload, _ in sess:
            gateway.handle_record("kiosk-1", payload)
    size, note = gateway.store.latest_checkpoint()
    wc = WitnessCollector(world.log_name, world.log_key.verify_key, gateway.registry, gateway.store)
    k1 = world.kiosk_key("kiosk-1")
    w1 = Cosigner(witness_name(world.log_name, "kiosk-1"), k1.verify_key)
    w2 = Cosigner(witness_name(world.log_name, "kiosk-2"), k2.verify_key)
    served = wc.add("kiosk-1", cosign(note, w1.name, k1, 100))
    assert served is not None
    served = wc.add("kiosk-2", cosign(note, w2.name, k2, 101))
    got = open_witnessed(served, world.verifier, [w1, w2], world.log_name)
    assert {w.witness for w in got} == {w1.name, w2.name} and got[0].checkpoint.size == size
    # a cosignature by a key the registry does not hold for that kiosk: refused
    assert wc.add("kiosk-2", cosign(note, w2.name, SigningKey.generate(), 102)) is None
    # a checkpoint this store contradicts (signed by the log key over another tree)
    from kiosk.ledger.checkpoint import Checkpoint, sign_checkpoint

    forked = sign_checkpoint(Checkpoint(world.log_name, size, bytes(32)), world.log_name, world.log_key)
    assert wc.add("kiosk-1", cosign(forked, w1.name, k1, 103)) is None
    assert wc.counts["witness-contradicts-store"] == 1 and wc.counts["witness-refused"] == 1
    assert wc.witnesses() == {"kiosk-1": size, "kiosk-2": size}
