"""The kiosk's PassChecker: `presentation.verify` with this kiosk's configuration and state.

State that changes at run time comes in through callables: the current revocation list
(updated from the retained MQTT topic) and whether the clock is synchronised (the Pi has no
RTC; QR time windows are refused until it is — docs/design-notes.md).

A credential of another issuer (presentation kind "foreign": an EU DCC or a SMART Health
Card) is judged by `kiosk.protocol.credentials` against the trust folder; its verdict
carries `data["foreign"]`, never a pass. Without a trust folder it is "unsupported-format".
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from nacl.signing import VerifyKey

from kiosk.checkin.ports import Clock, Credential, SystemClock
from kiosk.config import PassTable
from kiosk.errors import Reason, Verdict
from kiosk.protocol import credentials, presentation
from kiosk.protocol.revocation import RevocationList


class ProtocolPassChecker:
    """Verifies presentations for one kiosk; one replay cache across all sessions."""

    def __init__(self, *, site: str, kiosk: str, issuers: Mapping[bytes, VerifyKey], passes: PassTable,
                 revocations: Callable[[], RevocationList | None],
                 clock_synced: Callable[[], bool] = lambda: True, clock: Clock | None = None,
                 replay: presentation.ReplayCache | None = None,
                 trust: credentials.TrustStore | None = None) -> None:
        self.site, self.kiosk = site, kiosk
        self.issuers = dict(issuers)
        self.passes = passes
        self.revocations = revocations
        self.clock_synced = clock_synced
        self.clock = clock or SystemClock()
        self.replay = replay if replay is not None else presentation.ReplayCache()
        self.trust = trust

    def check(self, credential: Credential) -> Verdict:
        """Verify at the current wall time; `data["pass"]` holds the PatientPass on success."""
        now = int(self.clock.time())
        if credential.presentation.kind == presentation.KIND_FOREIGN:
            return self._foreign(credential, now)
        rl = self.revocations()
        # a revocation list signed "in the future" proves this clock is behind, whatever NTP
        # says: QR time windows cannot be judged (refused, and staff alerted), while pass
        # validity is judged at the list's time at least (presentation.verify, live)
        behind = rl is not None and rl.issued > now + self.passes.clock_skew_s
        fresh = presentation.Freshness(
            site=self.site, kiosk=self.kiosk, nonce=credential.nonce, window_s=self.passes.qr_window_s,
            windows_accepted=self.passes.qr_windows_accepted,
            clock_synced=bool(self.clock_synced()) and not behind)
        return presentation.verify(
            credential.presentation, self.issuers, now=now, revocations=rl,
            fresh=fresh, revocation_grace_s=self.passes.revocation_grace_s, skew_s=self.passes.clock_skew_s,
            replay=self.replay)

    def _foreign(self, credential: Credential, now: int) -> Verdict:
        if self.trust is None:
            return Verdict.bad(Reason.UNSUPPORTED, "no trust folder for foreign credentials is configured")
        if not self.clock_synced():  # expiry and revocation times need a real clock
            return Verdict.bad(Reason.CLOCK_UNSYNCED, "the clock is not synchronised")
        texts = credential.presentation.pass_bytes.decode("utf-8", "replace").split("\n")
        v = credentials.read(texts, self.trust, now)
        return Verdict.good(v.detail, foreign=v.data["credential"]) if v.ok else v
