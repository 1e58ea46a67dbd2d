"""The one typed configuration every part reads (`/etc/kiosk/kiosk.toml` by default).

One table per part. An unknown or misspelt key, or a value of the wrong type, is refused at
start-up with the file and the dotted key named — never a silent default (frigate's rule).
Validation is strict: nothing is converted (`port = "1883"` and `port = true` are refused,
not read as 1883 and 1), and every error of a file is reported at once, not the first only.
TOML has no path type, so the file is validated the way JSON is (a path is a string); a
table added here needs nothing more than `_Table` to get the same rules.
"""
from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from kiosk.errors import ConfigError, MissingConfigError
from kiosk.ids import ID_RE as KIOSK_ID_RE

DEFAULT_PATH = Path("/etc/kiosk/kiosk.toml")
SCHEMA_VERSION = 1
# the deepest a valid file nests is a table holding a list or an inline table: any deeper
# is a mistake (or an attack on the parser), refused before pydantic walks it
MAX_DEPTH = 6
MAX_ERRORS_LISTED = 20


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class KioskTable(_Table):
    """Who this kiosk is: its site and id (MQTT client id, TLS CN and registry key)."""

    site: str = "clinic"
    id: str = "kiosk-1"
    language: str = "en"
    languages: list[str] = ["en", "es"]

    @field_validator("id", "site")
    @classmethod
    def _id_syntax(cls, v: str) -> str:
        if not KIOSK_ID_RE.match(v):
            raise ValueError("must match [a-z0-9-]{1,32}")
        return v


class PathsTable(_Table):
    """Where state lives. Relative paths are resolved against the config file's folder."""

    state_dir: Path = Path("/var/lib/kiosk")
    models_dir: Path = Path("/opt/kiosk/models")


class KeysTable(_Table):
    """Key files (PKCS#8 / SubjectPublicKeyInfo PEM). Private keys must be mode 0600."""

    kiosk_key: Path = Path("/etc/kiosk/keys/kiosk.key")
    sealing_key: Path = Path("/etc/kiosk/keys/sealing.key")
    issuer_public: list[Path] = [Path("/etc/kiosk/keys/issuer.pub")]
    log_public: Path = Path("/etc/kiosk/keys/log.pub")
    # the checkpoint origin and note key name; left out, it is derived from the site, so a
    # kiosk and a gateway of one site agree by construction (Config fills it in)
    log_name: str = "clinic.clinic/log"
    # the log's gateway sealing key (X25519): record bodies and presentations travel sealed to it
    gateway_sealing_public: Path = Path("/etc/kiosk/keys/gateway-sealing.pub")


class BrokerTable(_Table):
    """The MQTT 5 broker. TLS files are optional on loopback, required elsewhere by policy."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    keepalive: int = Field(30, ge=5, le=3600)
    session_expiry: int = Field(7 * 24 * 3600, ge=0)
    max_inflight: int = Field(20, ge=1, le=65535)
    reconnect_min_s: float = Field(0.5, gt=0, le=60)  # kiosk publisher backoff, doubled per
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)  # failure up to the cap, with jitter


class CameraTable(_Table):
    """The camera backend and its mode."""

    backend: Literal["auto", "picamera2", "opencv", "files", "synthetic"] = "auto"
    device: str = "0"
    source: Path | None = None  # folder or video for the "files" backend
    width: int = Field(640, ge=160, le=4096)
    height: int = Field(480, ge=120, le=4096)
    fps: float = Field(15.0, gt=0, le=120)
    loop: bool = True  # files/synthetic: start again at the end
    realtime: bool = True  # synthetic: pace frames at `fps` (tests turn it off)


class NfcTable(_Table):
    """The PN532 reader on a serial port (HSU)."""

    backend: Literal["pn532", "none"] = "pn532"
    port: str = "/dev/serial0"
    baudrate: int = 115200
    timeout_s: float = Field(1.0, gt=0, le=30)


class VisionTable(_Table):
    """Face detection, tracking and verification (threshold measured: docs/face-evaluation.md)."""

    # one threshold for passes enrolled from one photo or several (chip + mirror templates), chosen
    # with a margin on held-out people: per check-in FMR 0.031 % / 0.040 % (CI to 0.046 %);
    # docs/face-evaluation.md
    match_threshold: float = Field(0.5000, gt=0, lt=2)
    detect_every: int = Field(5, ge=1, le=100)  # full-frame detection every N frames; ROI re-detect between
    min_face_px: int = Field(110, ge=20)  # quality gate: narrower faces get "face.come_closer"
    detect_min_face_px: int = Field(100, ge=20)  # smallest face the full-frame detector looks for
    # good frames of one tracked face fused into one decision (one attempt); docs/face-evaluation.md
    session_frames: int = Field(3, ge=1, le=30)


class PassTable(_Table):
    """How the kiosk judges passes and presentations."""

    qr_window_s: int = Field(30, ge=5, le=300)
    qr_windows_accepted: int = Field(1, ge=0, le=4)  # neighbours either side
    revocation_grace_s: int = Field(24 * 3600, ge=0)
    clock_skew_s: int = Field(120, ge=0)


class CredentialsTable(_Table):
    """Credentials of other issuers (EU DCC, SMART Health Cards): the trust folder IT updates
    offline (kiosk/protocol/credentials/trust.py). Unset: such credentials are refused."""

    trust_dir: Path | None = None


class OutboxTable(_Table):
    """The kiosk's durable outbox."""

    path: Path = Path("outbox.sqlite3")  # under paths.state_dir unless absolute
    resend_after_s: float = Field(10.0, gt=0)
    # records sent and awaiting their receipts, at most (beyond broker.max_inflight, paho
    # holds them until the broker acknowledges earlier ones): a wide window lets the gateway
    # fill its batches under a burst
    window: int = Field(256, ge=1, le=10_000)


class GatewayTable(_Table):
    """The ledger gateway: its log store and acceptance bounds."""

    store: Literal["sqlite", "postgres"] = "sqlite"
    sqlite_path: Path = Path("ledger.sqlite3")
    postgres_dsn: str = "postgresql://127.0.0.1/test"
    postgres_schema: str = "kiosk_ledger"
    log_key: Path = Path("/etc/kiosk/keys/log.key")
    sealing_key: Path = Path("/etc/kiosk/keys/gateway-sealing.key")  # opens sealed records
    registry_path: Path = Path("registry.sqlite3")
    # the last valid revocation list the gateway adopted: it starts from it after a restart
    revocations_path: Path = Path("revocations.cose")
    client_id: str = "gateway-1"
    share_group: str = "gateways"
    max_message_bytes: int = Field(256 * 1024, ge=1024)
    max_skew_s: int = Field(300, ge=0)
    # oldest `created` accepted: a kiosk key can backdate no further than this, and a long
    # weekend's outage (Friday evening to Tuesday morning, ~88 h) still lands
    max_age_s: int = Field(96 * 3600, ge=60)
    # a presentation read at `captured` must be written (`created`) within this: long enough
    # for a slow face match and consent, short enough to bound a kiosk key's backdating
    max_capture_age_s: int = Field(600, ge=10)
    # a consent joins its check-in's session only if created this soon after it
    session_window_s: int = Field(300, ge=1)
    batch_size: int = Field(32, ge=1, le=1000)  # records appended per transaction, at most
    # a consent whose check-in is still being appended (by another gateway of the shared
    # subscription) waits this long for it before it is rejected
    ref_wait_s: float = Field(10.0, ge=0, le=600)


class EhrTable(_Table):
    """The EHR link on the gateway host: FHIR R4 or HL7 v2 (see docs/design-notes.md "EHR link")."""

    kind: Literal["none", "fhir", "hl7v2"] = "none"
    state_path: Path = Path("ehr.sqlite3")  # identifier map + retry queue (0600), under state_dir
    entry_key: Path = Path("/etc/kiosk/keys/gateway-entry.key")  # signs the ledger's ehr-update entries
    fhir_base: str = ""
    fhir_ca: Path | None = None
    smart_client_id: str = ""  # empty: no SMART authorisation
    smart_key: Path = Path("/etc/kiosk/keys/smart-es384.key")
    smart_token_url: str = ""  # empty: discovered from .well-known/smart-configuration
    mllp_host: str = "127.0.0.1"
    mllp_port: int = Field(2575, ge=1, le=65535)
    mllp_ca: Path | None = None  # MLLP over TLS when set
    sending_facility: str = "CLINIC"
    receiving_app: str = "EHR"
    receiving_facility: str = "CLINIC"
    retry_min_s: float = Field(10.0, gt=0)
    retry_max_s: float = Field(900.0, gt=0)
    max_attempts: int = Field(50, ge=1)


class ConsentTable(_Table):
    """The clinic's consent template: what the patient is asked to agree to today."""

    document_id: str = "clinic-consent"
    version: str = "1"
    organization: str = "Organization/clinic"
    purpose: list[str] = ["TREAT"]
    actions: list[str] = ["access"]
    actors: list[str] = ["Practitioner/care-team"]
    valid_days: int = Field(365, ge=1)
    # the clinic's web wallet (`kiosk issuer serve`): the done screen offers the consent's
    # receipt as a QR link to it; empty: no receipt offered
    wallet_url: str = ""
    text: dict[str, str] = {
        "en": "I agree that the care team of this clinic may access my records to treat me.",
        "es": "Acepto que el equipo de esta clínica acceda a mis datos para atenderme.",
    }


class EngineTable(_Table):
    """Check-in state machine timeouts and retries."""

    credential_timeout_s: float = Field(60.0, gt=0)
    face_timeout_s: float = Field(20.0, gt=0)
    consent_timeout_s: float = Field(90.0, gt=0)
    done_display_s: float = Field(5.0, ge=0)
    max_face_attempts: int = Field(3, ge=1, le=10)
    # failed face comparisons count per pass across sessions for this long: a stranger
    # holding a stolen phone gets max_face_attempts comparisons per window, not per tap
    face_lockout_s: float = Field(900.0, ge=0)
    # a face seen and then gone this long means the patient walked away
    absent_timeout_s: float = Field(5.0, gt=0)
    # the optional second tap (patient-key consent signature); "skip" ends it early
    consent_tap_timeout_s: float = Field(10.0, ge=0)
    # pause after a failed face attempt, so the next attempt sees a new pose
    retry_pause_s: float = Field(1.0, ge=0)
    # how often a failed reader or camera is tried again
    hardware_retry_s: float = Field(30.0, gt=0)
    poll_interval_s: float = Field(0.1, gt=0, le=5)
    # a session whose credential was read longer ago than this writes nothing (the patient is
    # sent to the front desk instead of being told "checked in"): keep it below the gateway's
    # max_capture_age_s, which refuses such records
    max_capture_age_s: float = Field(540.0, gt=0)
    # the liveness step (required by default): "screen-light" runs the screen-light challenge
    # and head turn; "none" turns it off explicitly, which every check-in record states and
    # `kiosk doctor` flags
    liveness: Literal["screen-light", "none"] = "screen-light"


class LivenessTable(_Table):
    """The screen-light liveness challenge (kiosk.vision.liveness). Decision thresholds are fixed
    in kiosk/vision/liveness/decide.py (measured and documented in the README)."""

    field_s: float = Field(0.34, ge=0.34, le=2.0)      # per field: under 3 changes/s (WCAG 2.3.1)
    latency_s: float = Field(0.1, ge=0, le=1.0)        # camera delay skipped after each change
    turn_s: float = Field(2.0, gt=0, le=10.0)          # the head turn is filmed at most this long after the prompt
    template_every: int = Field(8, ge=1, le=60)        # keep one frame in this many for the match


class UiTable(_Table):
    """The touchscreen (kiosk.ui). mode "auto": pygame where a display exists, else headless."""

    mode: Literal["auto", "pygame", "headless"] = "auto"
    width: int = Field(800, ge=320, le=4096)   # the panel's native size: 800×480 or 720×1280
    height: int = Field(480, ge=240, le=4096)
    dpi: float = Field(0.0, ge=0, le=1000)     # 0: the known panel's DPI (133 for the 7" 800×480)
    fullscreen: bool = True
    fps: int = Field(30, ge=1, le=60)
    font: Path | None = None                   # default DejaVu Sans (fonts-dejavu-core)
    audio_dir: Path = Path("/var/lib/kiosk/audio")  # WAV prompts rendered at install (espeak-ng)
    result_s: float = Field(8.0, ge=0, le=120)  # how long a result screen stays up
    idle_warning_s: float = Field(45.0, gt=0)  # consent untouched this long: "are you still there?"
    idle_countdown_s: float = Field(15.0, gt=0)
    ticket_prefix: str = Field("A", pattern=r"^[A-Z]{1,2}$")


class StaffTable(_Table):
    """Staff mode (kiosk.staff): the staff file, lock-out and auto log-off."""

    path: Path = Path("staff.sqlite3")         # under paths.state_dir unless absolute
    idle_logoff_s: float = Field(120.0, gt=0)
    free_tries: int = Field(3, ge=1, le=10)    # wrong PINs before the first lock
    lockout_base_s: float = Field(30.0, gt=0)  # doubled at each further wrong PIN
    lockout_max_s: float = Field(3600.0, gt=0)


class Config(_Table):
    """The whole configuration file."""

    schema_version: int = SCHEMA_VERSION
    kiosk: KioskTable = KioskTable()
    paths: PathsTable = PathsTable()
    keys: KeysTable = KeysTable()
    broker: BrokerTable = BrokerTable()
    camera: CameraTable = CameraTable()
    nfc: NfcTable = NfcTable()
    vision: VisionTable = VisionTable()
    liveness: LivenessTable = LivenessTable()
    passes: PassTable = PassTable()
    credentials: CredentialsTable = CredentialsTable()
    outbox: OutboxTable = OutboxTable()
    gateway: GatewayTable = GatewayTable()
    consent: ConsentTable = ConsentTable()
    engine: EngineTable = EngineTable()
    ui: UiTable = UiTable()
    staff: StaffTable = StaffTable()
    ehr: EhrTable = EhrTable()

    @model_validator(mode="before")
    @classmethod
    def _derive_log_name(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("keys", {}), dict) \
                and "log_name" not in data.get("keys", {}):
            kiosk = data.get("kiosk")
            site = kiosk.get("site") if isinstance(kiosk, dict) else None
            if isinstance(site, str):
                data = {**data, "keys": {**data.get("keys", {}), "log_name": default_log_name(site)}}
        return data

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"this kiosk understands schema_version {SCHEMA_VERSION}")
        return v

    def state_path(self, p: Path) -> Path:
        """`p` resolved against the state directory unless it is absolute."""
        return p if p.is_absolute() else self.paths.state_dir / p


def default_log_name(site: str) -> str:
    """The log a site's kiosks and gateways use unless `keys.log_name` says otherwise."""
    return f"{site}.clinic/log"


def _resolve(data: dict, base: Path) -> dict:
    """Resolve relative paths in the file against the file's own folder."""
    paths = data.get("paths")
    if isinstance(paths, dict):
        for k, v in paths.items():
            if isinstance(v, str) and not Path(v).is_absolute():
                paths[k] = str(base / v)
    keys = data.get("keys")
    if isinstance(keys, dict):
        for k, v in keys.items():
            if isinstance(v, str) and not Path(v).is_absolute():
                keys[k] = str(base / v) if k != "log_name" else v
            elif isinstance(v, list):
                keys[k] = [str(base / x) if isinstance(x, str) and not Path(x).is_absolute() else x for x in v]
    creds = data.get("credentials")
    if isinstance(creds, dict) and isinstance(creds.get("trust_dir"), str) \
            and not Path(creds["trust_dir"]).is_absolute():
        creds["trust_dir"] = str(base / creds["trust_dir"])
    gw = data.get("gateway")
    if isinstance(gw, dict):
        for k in ("log_key", "sealing_key"):
            if isinstance(gw.get(k), str) and not Path(gw[k]).is_absolute():
                gw[k] = str(base / gw[k])
    ehr = data.get("ehr")
    if isinstance(ehr, dict):
        for k in ("entry_key", "smart_key", "fhir_ca", "mllp_ca"):
            if isinstance(ehr.get(k), str) and not Path(ehr[k]).is_absolute():
                ehr[k] = str(base / ehr[k])
    return data


def load(path: Path | str | None = None) -> Config:
    """Read and validate a config file; raise ConfigError naming the file and every bad key."""
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError) as e:
        hint = " (not provisioned yet? kiosk provision)" if path == DEFAULT_PATH else ""
        raise MissingConfigError(f"{path}: cannot read config ({e.strerror}){hint}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror or type(e).__name__})") from None
    return parse(raw, path)


def parse(raw: bytes, path: Path) -> Config:
    """Validate the bytes of a config file found at `path` (relative paths resolve against
    its folder); ConfigError naming the file and every bad key."""
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except RecursionError:  # tomllib recurses per nested array or inline table
        raise ConfigError(f"{path}: not valid TOML (nested deeper than a config can be)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    _check_depth(data, str(path))
    return from_dict(_resolve(data, path.parent.resolve()), source=str(path))


def _check_depth(data: dict, source: str) -> None:
    """Refuse nesting deeper than any config has, without recursing (a 3,000-deep file)."""
    stack: list[tuple[object, int]] = [(data, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source}: nested deeper than a config can be ({MAX_DEPTH} levels)")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)


def _to_json_data(data: dict, errors: list[str]) -> dict:
    """The file's values as JSON types; TOML dates and times (no key takes one) become errors."""
    def conv(v: object, loc: tuple[str, ...]) -> object:
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                y = conv(x, (*loc, str(k)))
                if y is not _DROP:
                    out[k] = y
            return out
        if isinstance(v, (list, tuple)):
            return [y for i, x in enumerate(v) if (y := conv(x, (*loc, str(i)))) is not _DROP]
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (dt.datetime, dt.date, dt.time)):
            errors.append(f"bad value for '{'.'.join(loc)}': a TOML date or time is not valid here")
            return _DROP
        return v

    out = conv(data, ())
    assert isinstance(out, dict)
    return out


_DROP = object()


def _describe(err: ErrorDetails) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    # pydantic's message names the expected type; the value itself is never echoed
    return f"bad value for '{key}': {err['msg']}"


def from_dict(data: dict, source: str = "<config>") -> Config:
    """Validate a config given as a dict (tests, demo, provisioning), strictly; every error at once."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table of settings")
    _check_depth(data, source)
    errors: list[str] = []
    payload = json.dumps(_to_json_data(data, errors))
    try:
        cfg: Config | None = Config.model_validate_json(payload)
    except ValidationError as e:
        cfg = None
        errors.extend(_describe(err) for err in e.errors(include_url=False, include_input=False))
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS_LISTED])
        more = f"; and {len(errors) - MAX_ERRORS_LISTED} more" if len(errors) > MAX_ERRORS_LISTED else ""
        count = f"{len(errors)} errors: " if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {count}{shown}{more}")
    assert cfg is not None
    return cfg
def to_toml(cfg: Config) -> str:
    """Render a config as TOML (for `kiosk provision` and the demo). Flat tables only."""
    def val(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, Path):
            return _q(str(v))
        if isinstance(v, str):
            return _q(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{_q(k)} = {val(x)}" for k, x in v.items()) + " }"
        raise TypeError(type(v))

    lines = [f"schema_version = {cfg.schema_version}"]
    for name in type(cfg).model_fields:
        table = getattr(cfg, name)
        if not isinstance(table, BaseModel):
            continue
        lines.append(f"\n[{name}]")
        for k in type(table).model_fields:
            v = getattr(table, k)
            if v is not None:
                lines.append(f"{k} = {val(v)}")
    return "\n".join(lines) + "\n"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
