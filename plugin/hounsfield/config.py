"""The plugin's settings: the ``Hounsfield`` section of Orthanc's configuration.

Orthanc has already merged its configuration (the launcher applied the
``ORTHANC__...`` environment overrides); this module validates our section, so a
typo in a key or a wrong type stops start-up with a message naming the key.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_pascal

SECTION = "Hounsfield"
Section = TypeVar("Section", bound=BaseModel)
ADMIN_PASSWORD_VARIABLE = "HOUNSFIELD_ADMIN_PASSWORD"
DICOMWEB_ROOT = "/dicom-web/"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


class AuthSection(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid", frozen=True)

    enabled: bool = True
    access_token_minutes: int = Field(15, ge=1, le=24 * 60)
    session_hours: int = Field(12, ge=1, le=24 * 30)
    max_failed_logins: int = Field(5, ge=1, le=100)
    lockout_minutes: int = Field(15, ge=1)
    min_password_length: int = Field(12, ge=8, le=128)
    secure_cookies: bool = False
    token_key_file: str | None = None
    # HTTP Basic over plain HTTP while RemoteAccessAllowed is on (README, "Scripts").
    basic_over_plain_http: bool = False


class LimitsSection(BaseModel):
    """What a sender may send (README, "Input limits"). Each bound is checked before the
    input is parsed; a refusal names its key (``Limits.JsonDepth``...)."""

    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid", frozen=True)

    request_bytes: int = Field(1 << 20, ge=1024)  # a JSON body of our API
    upload_bytes: int = Field(
        4 << 30, ge=1 << 20
    )  # an upload: DICOM, STOW-RS, an extension's files
    json_depth: int = Field(32, ge=2, le=200)
    multipart_parts: int = Field(10_000, ge=1)
    archive_members: int = Field(100_000, ge=1)  # files in a ZIP upload
    multipart_header_bytes: int = Field(8192, ge=256, le=1 << 20)
    xml_bytes: int = Field(1 << 20, ge=1024)
    xml_depth: int = Field(32, ge=2, le=200)
    dicom_depth: int = Field(32, ge=1, le=200)  # nested sequences in an incoming object
    token_bytes: int = Field(4096, ge=256, le=65536)  # a bearer token or session cookie


class DatabaseSection(BaseModel):
    """Where the plugin's tables live. Without ``Backend``: PostgreSQL when Orthanc's index
    is there (``PostgreSQL.EnableIndex``), in the same database (our tables in their own
    schema), else SQLite in the data directory."""

    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid", frozen=True)

    backend: Literal["sqlite", "postgresql"] | None = None
    # libpq's "key=value" or "postgresql://..." (default: Orthanc's PostgreSQL section)
    url: str | None = None
    schema_name: str = Field("hounsfield_plugin", alias="Schema", pattern=r"^[a-z_][a-z0-9_]*$")
    pool_size: int = Field(16, ge=2, le=500)


@dataclass(frozen=True)
class DatabaseLocation:
    """The database to open: a SQLite file, or a PostgreSQL connection and schema."""

    backend: str
    path: Path
    conninfo: str = ""
    schema: str = "hounsfield_plugin"
    pool_size: int = 16


class PluginSection(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid", frozen=True)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, entries: list[str]) -> list[str]:
        for entry in entries:  # an address or a network each, or the key is named at start
            ipaddress.ip_network(entry, strict=False)
        return entries

    data_directory: str | None = None
    workers: int = Field(1, ge=0, le=64)
    max_attempts: int = Field(3, ge=1, le=100)
    worker_niceness: int = Field(10, ge=0, le=19)  # the workers yield the CPU to Orthanc
    cancel_grace_seconds: float = Field(10.0, gt=0)
    minimum_free_space_mb: int = Field(500, ge=0, alias="MinimumFreeSpaceMB")
    # Series metadata kept for the viewer (dicomweb/series_metadata.py); 0: none kept.
    viewer_cache_mb: int = Field(1024, ge=0, alias="ViewerCacheMB")
    extensions: list[str] = Field(default_factory=list)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    # This instance's name in the shared tables (runs, jobs, events); default: host:HttpPort,
    # so that two instances on one machine are two nodes.
    node_name: str | None = Field(None, min_length=1)
    # A peer whose heartbeat (every 2 s) is older than this is taken for dead: its running
    # jobs go back to the queue for the others. Hosts must keep their clocks in step (NTP).
    peer_timeout_seconds: float = Field(30.0, ge=5.0)
    # Reverse proxies in front (addresses or CIDR networks): behind them, the client's address
    # is read from X-Forwarded-For (hounsfield.web.clients), for the audit trail.
    trusted_proxies: list[str] = Field(default_factory=list)
    auth: AuthSection = Field(default_factory=AuthSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)


@dataclass(frozen=True)
class Settings:
    storage_directory: Path
    data_directory: Path
    http_port: int
    stable_age_seconds: float
    remote_access_allowed: bool
    initial_admin_password: str | None
    plugin: PluginSection
    orthanc_config: Mapping[str, Any]  # the whole of it, for extensions' own sections

    @property
    def node_name(self) -> str:
        return self.plugin.node_name or f"{socket.gethostname()}:{self.http_port}"

    @property
    def database(self) -> DatabaseLocation:
        section = self.plugin.database
        orthanc_pg = self.orthanc_config.get("PostgreSQL", {})
        backend = section.backend or (
            "postgresql" if orthanc_pg.get("EnableIndex", False) else "sqlite"
        )
        return DatabaseLocation(
            backend=backend,
            path=self.data_directory / "hounsfield.db",
            conninfo=(section.url or _libpq_conninfo(orthanc_pg)) if backend != "sqlite" else "",
            schema=section.schema_name,
            pool_size=section.pool_size,
        )


def _libpq_conninfo(orthanc_pg: Mapping[str, Any]) -> str:
    """Orthanc's PostgreSQL section (its plugin's keys and defaults) as a libpq string."""
    from psycopg.conninfo import make_conninfo  # only where PostgreSQL is used

    if orthanc_pg.get("ConnectionUri"):
        return str(orthanc_pg["ConnectionUri"])
    values = {
        "host": orthanc_pg.get("Host", "localhost"),
        "port": orthanc_pg.get("Port", 5432),
        "dbname": orthanc_pg.get("Database", ""),
        "user": orthanc_pg.get("Username", ""),
        "password": orthanc_pg.get("Password", ""),
        "sslmode": "require" if orthanc_pg.get("EnableSsl", False) else "prefer",
    }
    return make_conninfo(**{key: value for key, value in values.items() if value != ""})


def load_section(model: type[Section], orthanc_config: Mapping[str, Any], name: str) -> Section:
    """Section ``name`` of Orthanc's configuration, validated; ConfigError names each key."""
    try:
        return model.model_validate(orthanc_config.get(name, {}))
    except ValidationError as error:
        problems = "; ".join(
            f"{name}.{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from error


def load_settings(
    orthanc_config: dict[str, Any], environ: Mapping[str, str] | None = None
) -> Settings:
    plugin = load_section(PluginSection, orthanc_config, SECTION)
    storage = Path(orthanc_config.get("StorageDirectory", "OrthancStorage")).resolve()
    data = (
        Path(plugin.data_directory).resolve() if plugin.data_directory else storage / "hounsfield"
    )
    dicomweb_root = orthanc_config.get("DicomWeb", {}).get("Root", DICOMWEB_ROOT)
    if dicomweb_root != DICOMWEB_ROOT:
        raise ConfigError(
            f"DicomWeb.Root is {dicomweb_root!r}: the gate's rules and the routes the plugin "
            f"answers (STOW-RS) are those of {DICOMWEB_ROOT!r}"
        )
    if not plugin.auth.enabled and orthanc_config.get("RemoteAccessAllowed", False):
        raise ConfigError(
            "Hounsfield.Auth.Enabled is false while RemoteAccessAllowed is true: "
            "that would open patient data to the network without authentication"
        )
    return Settings(
        storage_directory=storage,
        data_directory=data,
        http_port=int(orthanc_config.get("HttpPort", 8042)),
        stable_age_seconds=float(orthanc_config.get("StableAge", 60)),
        remote_access_allowed=bool(orthanc_config.get("RemoteAccessAllowed", False)),
        initial_admin_password=(environ or {}).get(ADMIN_PASSWORD_VARIABLE) or None,
        plugin=plugin,
        orthanc_config=orthanc_config,
    )
