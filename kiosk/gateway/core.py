"""The ledger gateway's core: validate record messages, append them, answer with receipts.

No MQTT here (gateway_mqtt.py is the shell): `Gateway.handle_batch` takes (topic kiosk id,
payload) pairs and returns one outcome each, so every rule is testable with a store in a
temporary directory. The checks, in order (docs/design-notes.md):

  size cap → record decodes → sealed part opens with the gateway sealing key and holds the
  leaf it names → leaf decodes → leaf kiosk = topic kiosk → kiosk registered and active →
  kiosk signature → *already in the log?* (a resend gets the existing entry's receipt,
  before any rule that time or state could change) → body hash → site → created time within
  [now - max_age, now + max_skew] → captured within max_capture_age before created →
  presentation valid at its judging time (issuer signature, expiry, revocation, patient
  signature, freshness) → leaf patient = pass patient → session rule (replay; a consent
  joins within its session's window, once).

Judging time (docs/design-notes.md, "Time"): a QR presentation at `captured`, which must
fall in the 30-second window the phone signed; an NFC presentation whose nonce commits to
a checkpoint at max(captured, the time this log signed that checkpoint); a presentation
that proves no time (a card, an NFC nonce without a checkpoint) when it arrives. So a
kiosk key cannot move a presentation to before a revocation it provably postdates.

Session rule: see sessions.py. Entries of type staff-override and kiosk-event may carry no
presentation. A consent must name, in `refs`, the entry that owns its presentation (a
check-in already in the log, or earlier in the same batch). When the owner is not in the
log yet — a check-in still being appended by the other gateway of the shared subscription —
the shell may *defer* the consent and retry it for `ref_wait_s` before rejecting it.

Accepted entries of one batch, their bodies and the one checkpoint signed for the batch are
written in one transaction (one commit); every receipt of the batch is proven from it. The
registry is read once per kiosk and batch. Nothing about a message's content is logged:
kiosk id, entry hash prefix and reason only.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey, VerifyKey

from kiosk.config import KIOSK_ID_RE, Config, GatewayTable, PassTable
from kiosk.errors import FormatError, KeyFileError, KioskError, Reason
from kiosk.gateway.registry import KioskRecord, KioskRegistry
from kiosk.gateway.sessions import SessionTable
from kiosk.ids import reserved_id
from kiosk.ledger.checkpoint import Checkpoint, sign_checkpoint
from kiosk.ledger.store import LogStore
from kiosk.protocol import consent as consent_format
from kiosk.protocol import cose, entry, presentation, revocation
from kiosk.protocol.entry import Envelope, Receipt, Record
from kiosk.protocol.keys import write_atomic
from kiosk.protocol.patient_pass import PatientPass

log = logging.getLogger(__name__)

NO_PRESENTATION_TYPES = ("staff-override", "kiosk-event")
JOINING_TYPES = ("consent",)  # may never start a session of their own


class _Reject(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class _Missing(Exception):
    """The entry's session owner is not in the log (yet)."""


@dataclass(frozen=True)
class Outcome:
    """What became of one message: a receipt for `kiosk`, nothing (dropped), or deferred."""

    kiosk: str | None
    receipt: Receipt | None
    deferred: bool = False


@dataclass
class _Candidate:
    pos: int
    kiosk: str
    record: Record
    env: Envelope
    eh: bytes
    pres_hash: bytes | None  # the session key of its presentation (see _check_presentation)
    duplicate_index: int | None = None


def _hex8(h: bytes) -> str:
    return h.hex()[:8]


class Gateway:
    """Validation, append and receipts over a LogStore, a kiosk registry and a session table."""

    def __init__(self, *, store: LogStore, registry: KioskRegistry, sessions: SessionTable,
                 log_key: SigningKey, log_name: str, site: str,
                 issuers: Mapping[bytes, VerifyKey], sealing_keys: Sequence[PrivateKey],
                 settings: GatewayTable | None = None,
                 passes: PassTable | None = None, clock: Callable[[], float] = time.time) -> None:
        from kiosk.protocol.keys import kid

        self.store, self.registry, self.sessions = store, registry, sessions
        self.log_key, self.log_name, self.site = log_key, log_name, site
        self.sealing_keys = {kid(k.public_key): k for k in sealing_keys}
        self.issuers = dict(issuers)
        self.settings = settings or GatewayTable()
        self.passes = passes or PassTable()
        self.clock = clock
        self._revocations: revocation.RevocationList | None = None
        self._revocations_path: Path | None = None
        self._counts: collections.Counter[str] = collections.Counter()
        self._sent: dict[str, int] = {}  # kiosk -> checkpoint size of the last receipt sent
        self._lock = threading.Lock()  # one batch at a time per gateway
        self._unnoted: tuple[int, bytes] | None = None  # checkpoint whose time note_signed() keeps
        self._unsynced: bytes | None = None  # a checkpoint time kept without an fsync yet

    @classmethod
    def from_config(cls, cfg: Config) -> Gateway:
        """Open store, registry, session table and keys as the configuration says."""
        from kiosk.gateway.registry import open_registry
        from kiosk.gateway.sessions import open_sessions
        from kiosk.ledger.backends import open_store
        from kiosk.protocol import keys

        gw = cfg.gateway
        issuers = {}
        for p in cfg.keys.issuer_public:
            k = keys.load_verify_key(p)
            issuers[keys.kid(k)] = k
        log_key = keys.load_signing_key(gw.log_key)
        try:
            sealing_key = keys.load_sealing_key(gw.sealing_key)
        except KeyFileError as e:
            if gw.sealing_key.exists():
                raise
            raise KeyFileError(f"{e.message}; `kiosk gateway init` makes the gateway sealing key") from None
        store = open_store(gw, sqlite_path=str(cfg.state_path(gw.sqlite_path)))
        g = cls(store=store, registry=open_registry(cfg), sessions=open_sessions(cfg),
                log_key=log_key, log_name=cfg.keys.log_name, site=cfg.kiosk.site,
                issuers=issuers, sealing_keys=[sealing_key], settings=gw, passes=cfg.passes)
        g.persist_revocations_at(cfg.state_path(gw.revocations_path))
        return g

    def close(self) -> None:
        for part in (self.sessions, self.registry, self.store):
            with contextlib.suppress(KioskError):
                part.close()

    # ------------------------------------------------------------------ revocations
    def persist_revocations_at(self, path: Path) -> bool:
        """Keep every list adopted from now on at `path`, and start from the one there.

        The broker's retained copy alone does not survive a broker crash within its autosave
        interval; without a list every pass is refused. True if a valid list was loaded.
        """
        self._revocations_path = path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as e:
            log.warning("saved revocation list unreadable (%s)", e.strerror)
            return False
        return self.set_revocations(data, persist=False)

    def set_revocations(self, data: bytes, *, persist: bool = True) -> bool:
        """Adopt a signed revocation list for this site unless an equal or newer one is held;
        save it (atomically) where `persist_revocations_at` said."""
        try:
            rl = revocation.verify(data, self.issuers, site=self.site)
        except KioskError as e:
            self._count("revocations-rejected")
            log.warning("revocation list refused: %s", e.reason)
            return False
        current = self._revocations
        if current is not None and (rl.seq, rl.issued) <= (current.seq, current.issued):
            return False
        self._revocations = rl
        log.info("revocation list seq %d adopted (%d entries)", rl.seq, len(rl.revoked))
        if persist and self._revocations_path is not None:
            try:
                write_atomic(self._revocations_path, bytes(data), 0o644)
            except KioskError as e:  # write_atomic names the file and why
                self._count("revocations-not-saved")
                log.error("revocation list not saved (%s)", e.message)
        return True

    @property
    def revocations(self) -> revocation.RevocationList | None:
        return self._revocations

    # ------------------------------------------------------------------ stats
    def _count(self, key: str) -> None:
        self._counts[key] += 1

    def stats(self) -> dict[str, int]:
        """Messages counted by outcome: accepted, duplicate, dropped, deferred, and each reason."""
        return dict(self._counts)

    # ------------------------------------------------------------------ entry points
    def handle_record(self, topic_kiosk: str | None, payload: bytes) -> Receipt | None:
        """One message, judged with no deferral. None: dropped (no kiosk to answer)."""
        return self.handle_batch([(topic_kiosk, payload)])[0].receipt

    def handle_batch(self, items: Sequence[tuple[str | None, bytes]], *,
                     may_defer: Sequence[bool] | None = None,
                     note_later: bool = False) -> list[Outcome]:
        """Judge, append and answer a batch; one Outcome per item, in order.

        `may_defer[i]` lets item i wait for its session's owner instead of being rejected.
        A store failure raises StoreError with nothing answered (the kiosks resend).
        `note_later`: the caller sends the receipts first and then calls `note_signed()`,
        which keeps when the batch's checkpoint was signed (a durable write of its own, off
        the receipts' path; an NFC nonce can commit to that checkpoint only after a kiosk
        got it, seconds later).
        """
        may_defer = list(may_defer) if may_defer is not None else [False] * len(items)
        with self._lock:
            out = self._batch(list(items), may_defer)
        if not note_later:
            self.note_signed()
        return out

    def note_signed(self, *, durable: bool = True) -> None:
        """Keep the signing time of the checkpoints signed since the last call.

        `durable=False` (the MQTT shell, after every batch) writes it without an fsync of its
        own; the next batch's append syncs it, and `sync_notes` does when no batch follows."""
        with self._lock:
            pending, self._unnoted = self._unnoted, None
            if pending is not None:
                try:
                    self._note_time(*pending, durable=durable)
                except KioskError:
                    self._unnoted = self._unnoted or pending  # the next call tries again
                    raise
                if not durable:
                    self._unsynced = presentation.checkpoint_hash(pending[1])

    def sync_notes(self) -> bool:
        """Make the checkpoint times kept with `durable=False` durable; True if there were any."""
        with self._lock:
            note_hash, self._unsynced = self._unsynced, None
            if note_hash is None:
                return False
            try:
                self.sessions.sync(note_hash)
            except KioskError:
                self._unsynced = self._unsynced or note_hash
                raise
            return True

    # ------------------------------------------------------------------ the batch
    def _batch(self, items: list[tuple[str | None, bytes]], may_defer: list[bool]) -> list[Outcome]:
        out: list[Outcome | None] = [None] * len(items)
        cands: list[_Candidate] = []
        now_ms = int(self.clock() * 1000)
        registered: dict[str, KioskRecord | None] = {}  # the registry as of this batch
        for pos, (kiosk, payload) in enumerate(items):
            if not isinstance(kiosk, str) or not KIOSK_ID_RE.match(kiosk):
                self._count("dropped")
                log.warning("record dropped: its topic names no valid kiosk")
                out[pos] = Outcome(None, None)
                continue
            try:
                cands.append(self._check(pos, kiosk, payload, now_ms, registered))
            except _Reject as r:
                out[pos] = self._reject(kiosk, self._payload_hash(payload), r)
            except KioskError:
                raise  # the store or registry failed: nothing is answered, kiosks resend
            except Exception as e:  # a decoder bug must not stop the gateway: refuse the message
                log.error("unexpected %s while checking a record from kiosk=%s", type(e).__name__, kiosk)
                out[pos] = self._reject(kiosk, self._payload_hash(payload),
                                        _Reject(Reason.MALFORMED, "record could not be checked"))
        accepted: list[_Candidate] = []
        in_batch: dict[bytes, _Candidate] = {}
        for c in cands:
            if c.duplicate_index is not None:
                continue
            if c.eh in in_batch:  # the same leaf twice in one batch: the second is a resend
                continue
            try:
                self._session_rule(c, in_batch)
            except _Reject as r:
                out[c.pos] = self._reject(c.kiosk, c.eh, r)
                continue
            except _Missing:
                if may_defer[c.pos]:
                    self._count("deferred")
                    out[c.pos] = Outcome(c.kiosk, None, deferred=True)
                    continue
                out[c.pos] = self._reject(c.kiosk, c.eh, _Reject(
                    Reason.WRONG_ENTRY, "the session this entry refers to is not in the log"))
                continue
            in_batch[c.eh] = c
            accepted.append(c)
        answer = [c for c in cands if out[c.pos] is None]
        if not answer:
            return [o for o in out if o is not None]
        # bodies, entries and the checkpoint over them in one transaction: one commit per
        # batch (no entry without its body, no committed entry without a checkpoint)
        appended, (size, note) = self.store.append_batch(
            [c.record.leaf for c in accepted], [(c.env.body_hash, c.record.body) for c in accepted],
            self._sign_checkpoint)
        self._unnoted = (size, note)
        results = {r.entry_hash: r for r in appended}
        placed: list[tuple[int, str]] = []
        for c in answer:
            if c.duplicate_index is not None:
                placed.append((c.duplicate_index, entry.STATUS_DUPLICATE))
                continue
            done = results[c.eh]
            first = in_batch.get(c.eh)
            dup = done.duplicate or (first is not None and first.pos != c.pos)
            placed.append((done.index, entry.STATUS_DUPLICATE if dup else entry.STATUS_ACCEPTED))
        inclusions = self.store.inclusion_proofs([index for index, _ in placed], size)
        consistency: dict[int, list[bytes]] = {}  # by base: most of a batch shares one
        for c, (index, status), inclusion in zip(answer, placed, inclusions, strict=True):
            base = self._proof_base(c.kiosk, c.record.last_size, size, status)
            if 0 < base < size and base not in consistency:
                consistency[base] = self.store.consistency_proof(base, size)
            receipt = Receipt(c.eh, status, "", index, note, tuple(inclusion),
                              tuple(consistency.get(base, ())), base).signed(self.log_key)
            self._sent[c.kiosk] = size
            self._count(status)
            log.info("%s kiosk=%s entry=%s index=%d size=%d", status, c.kiosk, _hex8(c.eh), index, size)
            out[c.pos] = Outcome(c.kiosk, receipt)
        return out  # type: ignore[return-value]

    def _proof_base(self, kiosk: str, last_size: int, size: int, status: str) -> int:
        """The tree size a receipt's consistency proof starts from (named in the receipt).

        A kiosk checks a proof only from the head of its chain of accepted checkpoints. For a
        first send that head is, in the normal course, the checkpoint of the receipt this
        gateway sent the kiosk last (receipts on one topic arrive in order), not the older
        `last_size` the record carried when it left: proving from there spares the kiosk a
        rebase and a resend at every batch boundary. A resend (duplicate) carries the kiosk's
        head as it was at that send, so it is proven from its `last_size`.
        """
        base = last_size if 0 <= last_size <= size else 0
        sent = self._sent.get(kiosk)
        if status == entry.STATUS_ACCEPTED and sent is not None and base <= sent <= size:
            base = sent
        return base

    def _sign_checkpoint(self, size: int, root: bytes) -> bytes:
        return sign_checkpoint(Checkpoint(self.log_name, size, root), self.log_name, self.log_key)

    def _note_time(self, size: int, note: bytes, durable: bool = True) -> None:
        """Keep when a checkpoint went out, for the NFC nonces that will commit to it."""
        self.sessions.note_checkpoint(presentation.checkpoint_hash(note), size, int(self.clock()),
                                      durable=durable)

    def latest_checkpoint(self) -> bytes | None:
        """The newest saved checkpoint note (to publish retained at start-up)."""
        latest = self.store.latest_checkpoint()
        if latest is None:
            return None
        self._note_time(*latest)
        return latest[1]

    def _reject(self, kiosk: str, eh: bytes, r: _Reject) -> Outcome:
        self._count(r.reason.value)
        log.warning("rejected kiosk=%s entry=%s reason=%s", kiosk, _hex8(eh), r.reason.value)
        log.debug("rejection detail: %s", r.detail)
        return Outcome(kiosk, Receipt(eh, entry.STATUS_REJECTED, r.reason.value).signed(self.log_key))

    @staticmethod
    def _payload_hash(payload: object) -> bytes:
        """The entry hash a record message names, else SHA-256 of the payload."""
        data = bytes(payload) if isinstance(payload, (bytes, bytearray, memoryview)) else b""
        try:
            return entry.decode_record(data).entry_hash
        except Exception:  # not a record: name the payload itself
            return hashlib.sha256(data).digest()

    # ------------------------------------------------------------------ stateless checks
    def _check(self, pos: int, kiosk: str, payload: bytes, now_ms: int,
               registered: dict[str, KioskRecord | None]) -> _Candidate:
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise _Reject(Reason.MALFORMED, "payload is not bytes")
        if len(payload) > self.settings.max_message_bytes:
            raise _Reject(Reason.TOO_LARGE, "message is larger than the gateway accepts")
        try:
            record = entry.decode_record(bytes(payload)).open(self.sealing_keys)
            env, signed = entry.decode_leaf_message(record.leaf)
        except FormatError as e:
            raise _Reject(_reason(e, Reason.MALFORMED), e.message) from None
        eh = entry.entry_hash(record.leaf)
        if env.kiosk != kiosk:
            raise _Reject(Reason.WRONG_KIOSK, "leaf names another kiosk than the topic")
        if env.type in entry.GATEWAY_TYPES:
            raise _Reject(Reason.WRONG_ENTRY, "only the gateway writes this entry type")
        if reserved_id(kiosk):  # a gateway's own signing id is in the registry for audits only
            raise _Reject(Reason.UNKNOWN_KIOSK, "records come from kiosks only")
        if kiosk not in registered:  # one lookup per kiosk and batch
            registered[kiosk] = self.registry.get(kiosk)
        reg = registered[kiosk]
        if reg is None:
            raise _Reject(Reason.UNKNOWN_KIOSK, "kiosk is not in the registry")
        if not reg.active:
            raise _Reject(Reason.REVOKED, "kiosk has been revoked")
        try:
            cose.verify_decoded(signed, reg.verify_key, "leaf")  # decoded above already
        except FormatError as e:
            raise _Reject(Reason.MALFORMED, e.message) from None
        except KioskError as e:  # another key's kid or a bad signature: not this kiosk's leaf
            raise _Reject(Reason.BAD_SIGNATURE, e.message) from None
        c = _Candidate(pos, kiosk, record, env, eh, None)
        c.duplicate_index = self.store.find(eh)
        if c.duplicate_index is not None:
            return c  # a resend: answered with the entry already in the log
        try:
            if entry.body_hash_of(record.body) != env.body_hash:
                raise _Reject(Reason.MALFORMED, "body does not match the leaf's body_hash")
        except FormatError as e:
            raise _Reject(Reason.MALFORMED, e.message) from None
        if env.site != self.site:
            raise _Reject(Reason.WRONG_SITE, "leaf names another site")
        if env.created > now_ms + self.settings.max_skew_s * 1000:
            raise _Reject(Reason.FUTURE, "entry was created in the future")
        if env.created < now_ms - self.settings.max_age_s * 1000:
            raise _Reject(Reason.TOO_OLD, "entry is older than the gateway accepts")
        c.pres_hash, pass_ = self._check_presentation(env, eh, record.presentation, now_ms)
        if env.type == "consent" and pass_ is not None:
            self._check_patient_consent_sig(env, record.body, pass_)
        return c

    def _check_patient_consent_sig(self, env: Envelope, body: bytes, pass_: PatientPass) -> None:
        """The optional second-tap signature: if a body carries one, it must verify."""
        try:
            content = entry.decode_body(body)
            sig = content.get("patient_sig")
            if sig is None:
                return
            if not isinstance(sig, dict) or not isinstance(sig.get("statement"), bytes) \
                    or not isinstance(sig.get("sig"), bytes):
                raise _Reject(Reason.MALFORMED, "patient consent signature is malformed")
            v = presentation.verify_consent_signature(
                pass_, sig["statement"], sig["sig"], site=self.site, kiosk=env.kiosk,
                body_hash=consent_format.signed_body_hash(body))
        except FormatError as e:
            raise _Reject(Reason.MALFORMED, e.message) from None
        if not v.ok:
            raise _Reject(v.reason, v.detail)

    def _judging_time_ms(self, env: Envelope, pres: presentation.Presentation, now_ms: int) -> int:
        """When to judge a presentation: the latest time it provably is not older than.

        `captured` is the kiosk's word (its key signs it). A QR statement pins it to the
        phone's 30-second window (checked by presentation.verify at this time); an NFC nonce
        committed to a checkpoint pins it to after that checkpoint; anything else proves no
        time and is judged on arrival.
        """
        captured = env.captured
        if captured is None:
            raise _Reject(Reason.MALFORMED, "an entry with a presentation needs its capture time")
        skew_ms = self.settings.max_skew_s * 1000
        if captured > env.created + skew_ms:
            raise _Reject(Reason.MALFORMED, "presentation captured after its entry was created")
        if env.created - captured > self.settings.max_capture_age_s * 1000:
            raise _Reject(Reason.STALE, "presentation read too long before its entry was written")
        if pres.kind == "qr":
            return captured
        if pres.kind == "nfc" and pres.anchor is not None:
            signed_at = self.sessions.checkpoint_time(pres.anchor[1])
            if signed_at is None:
                raise _Reject(Reason.STALE, "the NFC nonce commits to a checkpoint this log did not sign")
            if captured < signed_at * 1000 - skew_ms:
                raise _Reject(Reason.STALE, "presentation claims to predate the checkpoint its nonce names")
            return max(captured, signed_at * 1000)
        return max(captured, now_ms)

    def _check_presentation(self, env: Envelope, eh: bytes, pres_map: dict | None, now_ms: int
                            ) -> tuple[bytes | None, PatientPass | None]:
        """Verify the presentation at its judging time; return (its session key, its pass)."""
        if pres_map is None:
            if env.type in NO_PRESENTATION_TYPES:
                return None, None
            raise _Reject(Reason.MALFORMED, "this entry type needs a presentation")
        try:
            pres = presentation.Presentation.from_map(pres_map)
        except KioskError as e:
            raise _Reject(Reason.MALFORMED, e.message) from None
        at_ms = self._judging_time_ms(env, pres, now_ms)
        v = presentation.verify(
            pres, self.issuers, now=at_ms // 1000, revocations=self._revocations,
            fresh=presentation.Freshness(self.site, kiosk=env.kiosk,
                                         window_s=self.passes.qr_window_s,
                                         windows_accepted=self.passes.qr_windows_accepted),
            revocation_grace_s=self.passes.revocation_grace_s, skew_s=self.passes.clock_skew_s,
            live=False)
        if not v.ok:
            raise _Reject(v.reason, v.detail)
        if env.patient != v.data["pass"].patient:
            raise _Reject(Reason.MALFORMED, "leaf patient does not match the pass")
        key = pres.presentation_hash
        if pres.kind == "card":
            # a card shows the same bytes at every visit (it cannot sign a fresh statement), so
            # its sessions are told apart by the check-in that opens them, which a consent names
            anchor = eh if env.type not in JOINING_TYPES else (env.refs[0] if env.refs else b"")
            key = hashlib.sha256(b"kiosk-card-session\0" + key + anchor).digest()
        return key, v.data["pass"]

    # ------------------------------------------------------------------ sessions
    def _session_rule(self, c: _Candidate, in_batch: Mapping[bytes, _Candidate]) -> None:
        """Raise _Reject for a replay, _Missing when the session's owner is not in the log.

        A presentation opens one session; only a consent may join it, by naming the entry
        that opened it in `refs`, from the same kiosk. Anything else showing a presentation
        already used is a replay.
        """
        if c.pres_hash is None:
            return
        owner = self.sessions.owner(c.pres_hash)
        if owner is None:
            if c.env.type in JOINING_TYPES:
                raise _Missing()
            owner = self.sessions.claim(c.pres_hash, c.eh)
        if owner == c.eh:
            return  # this entry opened the session (or a resend whose first append did not happen)
        if c.env.type not in JOINING_TYPES or owner not in c.env.refs:
            raise _Reject(Reason.REPLAYED, "presentation was used in another session")
        owner_entry = in_batch.get(owner)
        if owner_entry is not None:
            owner_env = owner_entry.env
        else:
            index = self.store.find(owner)
            if index is None:
                raise _Missing()
            owner_env = entry.decode_leaf(self.store.get_leaf(index))[0]
        if owner_env.kiosk != c.env.kiosk:
            raise _Reject(Reason.REPLAYED, "presentation belongs to a session at another kiosk")
        # a kiosk key must not append a consent to a past session (the latest consent decides)
        window_ms = self.settings.session_window_s * 1000
        if owner_env.captured != c.env.captured or not (
                owner_env.created <= c.env.created <= owner_env.created + window_ms):
            raise _Reject(Reason.STALE, "consent falls outside its session's window")
        joined = hashlib.sha256(b"kiosk-session-consent\0" + owner).digest()
        if self.sessions.claim(joined, c.eh) != c.eh:
            raise _Reject(Reason.REPLAYED, "this session already has its consent")


def _reason(e: KioskError, default: Reason) -> Reason:
    try:
        return Reason(e.reason)
    except ValueError:
        return default
