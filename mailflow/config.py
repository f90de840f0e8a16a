"""Settings: a TOML file, overridden by ``MAILFLOW_<SECTION>__<KEY>`` environment variables.

Settings are loaded once by the command that starts a process and passed down; nothing reads
them at import time. With no configuration file at all, mailflow runs on development defaults:
a SQLite file, the embedded SMTP inbox, and a secret key and API token generated once and kept
in the data folder. With a configuration file, the secret must be given and be real.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_FILE = Path("mailflow.toml")
ENV_PREFIX = "MAILFLOW_"
PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "replace-me", "placeholder")
MIN_SECRET_LENGTH = 32


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key at fault."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    base_url: str = ""
    """The public address in links; empty: the address served (``http://host:port``)."""
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    timezone: str = "Europe/Paris"
    data_dir: str = ".mailflow"
    threads: int = Field(4, ge=1, le=256)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    """A request body larger than this is answered 413 before it is read in full."""
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _follow_address(self) -> ServerSettings:
        """Without a ``base_url``, links point at the host and port served."""
        if not self.base_url:
            object.__setattr__(self, "base_url", served_url(self.host, self.port))
            self._base_url_follows = True
        return self

    _base_url_follows: bool = PrivateAttr(False)

    @property
    def base_url_follows(self) -> bool:
        """Whether ``base_url`` was not set, and so follows ``host`` and ``port``."""
        return self._base_url_follows

    def listening_on(self, host: str | None, port: int | None) -> ServerSettings:
        """These settings with another host and/or port (``serve --host/--port``); a derived
        ``base_url`` follows them."""
        data = self.model_dump()
        if self.base_url_follows:
            data["base_url"] = ""
        if host is not None:
            data["host"] = host
        if port is not None:
            data["port"] = port
        return ServerSettings.model_validate(data)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def served_url(host: str, port: int) -> str:
    """The address a browser on this machine reaches a server listening on ``host:port``."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class DatabaseSettings(_Section):
    url: str = "sqlite:///./mailflow.db"

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value


class SmtpSettings(_Section):
    mode: Literal["embedded", "relay"] = "embedded"
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    tls: Literal["starttls", "implicit", "none"] = "none"
    """How the connection to the relay is encrypted: ``"starttls"`` (plain, then the STARTTLS
    command, required), ``"implicit"`` (TLS from the first byte, usually port 465) or
    ``"none"``."""
    starttls: bool | None = None
    """The older spelling: ``true`` is ``tls = "starttls"``, ``false`` is ``tls = "none"``."""
    tls_ca_file: str = ""
    """A PEM file of the certificates the relay's is checked against, instead of the system's."""
    username: str = ""
    password: str = ""
    embedded_port: int = Field(8025, ge=1, le=65535)
    from_address: str = "Marketplace <no-reply@marketplace.example>"
    support_address: str = "service-client@marketplace.example"
    seller_support_address: str = "Accompagnement vendeurs <vendeurs@marketplace.example>"
    concurrency: int = Field(8, ge=1, le=256)
    retry_base_seconds: float = Field(30, gt=0)
    give_up_after_hours: float = Field(96, gt=0)
    lease_seconds: float = Field(120, gt=0)
    timeout_seconds: float = Field(30, gt=0)
    dkim_domain: str = ""
    """With ``dkim_selector`` and ``dkim_private_key_file``: every email is DKIM-signed for
    this domain (``d=``); all three or none."""
    dkim_selector: str = ""
    dkim_private_key_file: str = ""
    """A PEM private key (RSA of 1024 bits or more, or Ed25519), read once at start-up."""
    embedded_bounce_pattern: str = "*@bounce.example"
    """Embedded mode: mail to a matching address (``fnmatch``, case-insensitive) is refused by
    the inbox the way a relay would, with a DSN sent back to the VERP address; empty: none."""

    @model_validator(mode="before")
    @classmethod
    def _starttls_means_tls(cls, data: Any) -> Any:
        """``starttls = true`` (the older key) is ``tls = "starttls"``; both given must agree."""
        if not isinstance(data, dict) or not isinstance(data.get("starttls"), bool):
            return data  # a starttls that is not a boolean is reported by the field itself
        starttls = data["starttls"]
        if "tls" not in data:
            return {**data, "tls": "starttls" if starttls else "none"}
        if (data["tls"] == "starttls") != starttls:
            raise ValueError(
                f"smtp.starttls = {str(starttls).lower()} contradicts smtp.tls = "
                f"{data['tls']!r}; set smtp.tls alone (it replaces smtp.starttls)"
            )
        return data

    @field_validator("tls_ca_file")
    @classmethod
    def _ca_file(cls, value: str) -> str:
        if value and not Path(value).is_file():
            raise ValueError(f"no such file: {value!r}")
        return value

    @model_validator(mode="after")
    def _dkim_all_or_none(self) -> SmtpSettings:
        given = {
            name: getattr(self, name)
            for name in ("dkim_domain", "dkim_selector", "dkim_private_key_file")
        }
        missing = [f"smtp.{name}" for name, value in given.items() if not value]
        if missing and len(missing) < len(given):
            raise ValueError(
                "DKIM signing needs smtp.dkim_domain, smtp.dkim_selector and "
                f"smtp.dkim_private_key_file together; missing: {', '.join(missing)}"
            )
        return self

    @property
    def dkim(self) -> bool:
        """Whether outgoing email is DKIM-signed."""
        return bool(self.dkim_private_key_file)

    @field_validator("from_address", "support_address", "seller_support_address")
    @classmethod
    def _address(cls, value: str) -> str:
        addr = parseaddr(value)[1]
        if "@" not in addr or any(c in value for c in "\r\n"):
            raise ValueError(f"not an email address: {value!r}")
        return value

    @field_validator("support_address")
    @classmethod
    def _bare(cls, value: str) -> str:
        return parseaddr(value)[1]


class SecuritySettings(_Section):
    secret_keys: list[str] = Field(default_factory=list)
    link_max_age_hours: float = Field(336, gt=0)


class ApiSettings(_Section):
    tokens: list[str] = Field(default_factory=list)


class PolicySettings(_Section):
    window_days: float = Field(30, gt=0)
    min_sales: int = Field(20, ge=0)
    threshold: float = Field(0.05, gt=0, le=1)
    warning_ratio: float = Field(0.8, gt=0, le=1)
    grace_days: float = Field(7, ge=0)
    suspension_days: float = Field(14, gt=0)
    count_refusals: bool = False
    acceptance_deadline_hours: float = Field(48, gt=0)
    reminder_before_hours: float = Field(12, ge=0)
    commission_rate: float = Field(0.10, ge=0, le=1)
    sweep_every_seconds: float = Field(60, gt=0)


class InboundSettings(_Section):
    """The inbound SMTP server (bounces, and replies): ``[inbound]``."""

    enabled: bool = False
    """``true`` in the development defaults (no file), ``false`` in a file that does not say."""
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=1, le=65535)
    domain: str = "mailflow.localhost"
    max_message_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    trusted_relays: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    authserv_id: str = ""
    require_dmarc: bool = False
    max_sessions: int = Field(100, ge=1, le=10_000)
    """SMTP sessions served at once; one more is answered ``421`` and closed."""
    max_recipients: int = Field(50, ge=1, le=1000)
    """``RCPT TO`` per message; beyond, ``452 4.5.3``."""
    timeout_seconds: float = Field(60, gt=0, le=3600)
    """A client silent this long (between commands, or inside DATA) is disconnected."""

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        labels = value.split(".")
        if (
            not value
            or len(value) > 253
            or not all(
                label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
                for label in labels
            )
        ):
            raise ValueError(f"not a domain name: {value!r}")
        return value

    @field_validator("trusted_relays")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an IP network: {item!r}") from exc
        return value

    @model_validator(mode="after")
    def _dmarc_needs_an_authserv_id(self) -> InboundSettings:
        # Only headers with authserv_id are read: without one, every reply would be refused.
        if self.require_dmarc and not self.authserv_id.strip():
            raise ValueError(
                "require_dmarc = true needs authserv_id (the authserv-id your trusted relays "
                "write in Authentication-Results); without it every reply would be rejected"
            )
        return self


class WebhookSettings(_Section):
    """Deliveries to the marketplace's endpoints (``docs/webhooks.md``)."""

    allow_http: bool = False
    """``http://`` endpoints are refused unless this is true (development, tests)."""
    allow_private_networks: bool = False
    """Endpoints whose host resolves to a loopback, private, link-local or metadata address are
    refused (at registration and at every connection) unless this is true."""
    timeout_seconds: float = Field(10, gt=0, le=300)
    retry_base_seconds: float = Field(30, gt=0)
    give_up_after_hours: float = Field(72, gt=0)
    disable_after_hours: float = Field(120, gt=0)
    secret_overlap_hours: float = Field(24, ge=0)
    concurrency: int = Field(8, ge=1, le=256)
    lease_seconds: float = Field(60, gt=0)

    @model_validator(mode="after")
    def _lease_outlasts_a_request(self) -> WebhookSettings:
        if self.lease_seconds <= self.timeout_seconds:
            raise ValueError(
                "webhooks.lease_seconds must be longer than webhooks.timeout_seconds "
                "(a delivery in flight would be claimed again)"
            )
        return self


class Settings(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    inbound: InboundSettings = Field(default_factory=InboundSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    @property
    def smtp_target(self) -> tuple[str, int]:
        """Where the delivery worker connects: the embedded inbox or the relay."""
        if self.smtp.mode == "embedded":
            return "127.0.0.1", self.smtp.embedded_port
        return self.smtp.host, self.smtp.port


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    source: Path | None
    """The file the settings came from, or None for the development defaults."""


def _env_value(raw: str) -> Any:
    """Parse an environment value as TOML would (``true``, ``0.05``, ``["a","b"]``)."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].partition("__")
        data.setdefault(section.lower(), {})
        if not isinstance(data[section.lower()], dict):
            raise ConfigError(f"{name}: [{section.lower()}] is not a section")
        data[section.lower()][key.lower()] = _env_value(raw)


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)


def _is_placeholder(secret: str) -> bool:
    lowered = secret.lower()
    return len(secret) < MIN_SECRET_LENGTH or any(m in lowered for m in PLACEHOLDER_MARKERS)


def _dev_secret(data_dir: Path, name: str) -> str:
    """A random value generated once and kept in the data folder (development defaults)."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for another database or one in memory)."""
    if not url.startswith("sqlite:///"):
        return None
    name = url.removeprefix("sqlite:///").split("?")[0]
    return None if name in ("", ":memory:") else Path(name)


def missing_database(
    path: str | Path | None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """With no configuration file (``path`` None, no ``./mailflow.toml``), the SQLite file the
    settings name when it does not exist: a command that only reads data has nothing to read.
    Reads the environment only: nothing is created."""
    if path is not None or DEFAULT_CONFIG_FILE.is_file():
        return None
    data: dict[str, Any] = {}
    try:
        _apply_env(data, os.environ if environ is None else environ)
        url = DatabaseSettings.model_validate(data.get("database", {})).url
    except (ConfigError, ValidationError):
        return None  # reported by ``load`` itself
    file = sqlite_file(url)
    return file if file is not None and not file.exists() else None


def load(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    create_dev_secrets: bool = True,
) -> Loaded:
    """Load settings from ``path`` (default ``./mailflow.toml`` if present) and the environment.

    Raises ConfigError with a message naming the key at fault.
    """
    environ = os.environ if environ is None else environ
    source: Path | None = None
    data: dict[str, Any] = {}
    if path is not None:
        source = Path(path)
        if not source.is_file():
            raise ConfigError(f"{source}: no such configuration file")
    elif DEFAULT_CONFIG_FILE.is_file():
        source = DEFAULT_CONFIG_FILE
    if source is not None:
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text") from exc
    _apply_env(data, environ)
    if source is None:
        # The development defaults receive bounces too; a file turns it on by saying so.
        inbound = data.setdefault("inbound", {})
        if isinstance(inbound, dict):
            inbound.setdefault("enabled", True)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc

    keys = settings.security.secret_keys
    if source is None and not keys and create_dev_secrets:
        data_dir = Path(settings.server.data_dir)
        security = settings.security.model_copy(
            update={"secret_keys": [_dev_secret(data_dir, "secret_key")]}
        )
        api = settings.api
        if not api.tokens:
            api = api.model_copy(update={"tokens": [_dev_secret(data_dir, "api_token")]})
        settings = settings.model_copy(update={"security": security, "api": api})
    elif not keys:
        raise ConfigError(
            "security.secret_keys: no secret key is set; add one of at least "
            f"{MIN_SECRET_LENGTH} random characters, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    else:
        for index, key in enumerate(keys):
            if _is_placeholder(key):
                raise ConfigError(
                    f"security.secret_keys[{index}]: looks like a placeholder or is shorter than "
                    f"{MIN_SECRET_LENGTH} characters; use a long random value"
                )
    return Loaded(settings=settings, source=source)
