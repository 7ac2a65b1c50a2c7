"""Settings: the only place that reads the environment."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from db.target import POSTGRES_SCHEMES, DatabaseTarget, PostgresTarget, SqliteTarget
from service.cors import parse_origins
from service.event_settings import EventSettings
from service.secret_files import SecretFileError, read_secret_file

ENV_PREFIX = "SERVICE_"
IMAGE_DEFAULT_PATH = "SERVICE_DEFAULT_DATABASE_PATH"
MIN_ADMIN_TOKEN_LENGTH = 16
# Secrets that may come from a file instead (Docker and Kubernetes secrets):
# SERVICE_<NAME>_FILE holds the path; one of the two may be set, not both.
FILE_FIELDS = (
    "admin_token",
    "database_url",
    "direct_database_url",
    "events_listen_url",
)
POSTGRES_EXTRA = "pip install 'service-foundation[postgres]'"


def variable(field: str) -> str:
    """The environment variable of a setting: SERVICE_<FIELD>."""
    return f"{ENV_PREFIX}{field.upper()}"


def file_variable(field: str) -> str:
    """The variable naming a file that holds the setting: SERVICE_<FIELD>_FILE."""
    return f"{variable(field)}_FILE"


def _environ(name: str) -> str | None:
    """A variable's value; empty counts as unset, as for every setting."""
    return os.environ.get(name) or None


class SecretFiles(PydanticBaseSettingsSource):
    """The SERVICE_*_FILE secrets (FILE_FIELDS), read once."""

    def get_field_value(
        self, field: FieldInfo, field_name: str
    ) -> tuple[Any, str, bool]:
        """Unused: __call__ reads every file field at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The values of the files named, by field."""
        values: dict[str, Any] = {}
        for field in FILE_FIELDS:
            path = _environ(file_variable(field))
            if path is None:
                continue
            if _environ(variable(field)) is not None:
                raise ConfigError(
                    f"{variable(field)} and {file_variable(field)} are both set; "
                    "set one (the value, or the file that holds it)"
                )
            try:
                values[field] = read_secret_file(path)
            except SecretFileError as ex:
                raise ConfigError(f"{file_variable(field)}: {ex}") from ex
        return values


class Settings(BaseSettings, EventSettings):
    """Everything the service reads from its environment (prefix SERVICE_)."""

    # An empty variable counts as unset (compose passes ${VAR:-} on as "").
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", env_ignore_empty=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment, then the SERVICE_*_FILE secrets (no .env file)."""
        return (init_settings, env_settings, SecretFiles(settings_cls))

    database_path: Path = Field(
        default_factory=lambda: Path(
            # An image's own default (the Dockerfile's /data/service.sqlite3):
            # unlike SERVICE_DATABASE_PATH it does not count as "set", so
            # SERVICE_DATABASE_URL alone switches the image to PostgreSQL.
            os.environ.get(IMAGE_DEFAULT_PATH) or "var/service.sqlite3"
        ),
        validate_default=True,
        description="SQLite file; relative paths are taken from the working directory",
    )
    database_url: SecretStr | None = Field(
        None,
        description="postgresql://user:password@host:port/dbname (libpq parameters such "
        "as ?sslmode= pass through): run on PostgreSQL instead of the SQLite file",
    )
    direct_database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL: the same database as SERVICE_DATABASE_URL without a "
        "connection pooler in between, for what needs a session of its own (the "
        "migration runner, the tooling); unset: SERVICE_DATABASE_URL",
    )
    host: str = Field("127.0.0.1", min_length=1, description="Interface to bind")
    port: int = Field(8080, ge=0, le=65535, description="TCP port (0 picks a free one)")
    threads: int = Field(
        8, ge=1, le=256, description="waitress worker threads (in each worker process)"
    )
    workers: int | Literal["auto"] = Field(
        1,
        description="Processes serving HTTP (auto: one per usable core); above 1 a "
        "supervisor migrates once, binds once and restarts workers that die",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level logged; access lines are INFO"
    )
    migrate: Literal["apply", "verify", "off"] = Field(
        "apply",
        description="apply pending migrations at start, refuse to start with any pending "
        "(verify), or leave the schema alone (off)",
    )
    migrations_path: Path | None = Field(
        None, description="Folder of NNNN_slug.sql files; default: the packaged ones"
    )
    synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="SQLite synchronous mode: NORMAL survives app crashes, FULL also "
        "power loss, at a write-speed cost",
    )
    max_body_bytes: int = Field(
        262_144, ge=1024, description="Largest request body accepted (413 above)"
    )
    write_lock_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds a request waits for the write lock (shared by every "
        "worker) before a 503",
    )
    statement_timeout: float = Field(
        30.0,
        gt=0,
        description="PostgreSQL: seconds one statement of a write may run before a "
        "503 (the write transaction's statement_timeout)",
    )
    search_budget: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Seconds one search may run before it is stopped with a 503",
    )
    search_rate: int = Field(
        60,
        ge=1,
        le=100_000,
        description="Searches one API token may start per minute, counted in the "
        "database across every process and host (429 with Retry-After above)",
    )
    channel_timeout: int = Field(
        30, ge=1, description="Seconds a connection may stay idle before it is closed"
    )
    connection_limit: int = Field(
        1000, ge=1, description="Open connections accepted at once (waitress)"
    )
    shutdown_timeout: float = Field(
        8.0, gt=0, description="Seconds in-flight requests get to finish on SIGTERM"
    )
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token for the admin routes and /v1/metadata; unset: "
        "admin routes answer 404 and /v1/metadata is open",
    )
    # NoDecode: a comma-separated list, not the JSON pydantic-settings expects.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Origins (https://app.example.com, comma-separated, or *) whose "
        "browser scripts may call the API (CORS); unset: none",
    )

    @field_validator("database_path", "migrations_path")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        # Pony resolves a relative SQLite path against the calling module.
        return None if value is None else value.expanduser().absolute()

    @field_validator("admin_token")
    @classmethod
    def _usable_token(cls, value: SecretStr | None) -> SecretStr | None:
        # The messages never include the value: it is a secret.
        if value is None:
            return None
        token = value.get_secret_value()
        if token.strip() != token:
            # A bearer token is never sent with it, so it could never match.
            raise ValueError(
                "starts or ends with whitespace (a pasted newline or space?); "
                "no client could send it: remove it"
            )
        if not all("!" <= c <= "~" for c in token):
            # An Authorization header carries ASCII; a proxy may drop others.
            raise ValueError(
                "must be visible ASCII characters only (letters, digits, "
                "punctuation; no spaces or control characters): no client could "
                "send anything else in an Authorization header"
            )
        if len(token) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                f"must be at least {MIN_ADMIN_TOKEN_LENGTH} characters; make one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("database_url", "direct_database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        scheme = value.get_secret_value().partition("://")[0]
        if scheme not in POSTGRES_SCHEMES:
            # The value may hold a password: name the scheme only.
            raise ValueError(
                f"must be a postgresql:// URL (scheme {scheme!r} is not supported)"
                if "://" in value.get_secret_value()
                else "must be a postgresql:// URL"
            )
        return value

    @field_validator("database_url", "direct_database_url")
    @classmethod
    def _driver_installed(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked here, so that the line names the setting; importing it waits.
        if value is not None and importlib.util.find_spec("psycopg2") is None:
            raise ValueError(
                "selects PostgreSQL, whose driver (psycopg2) is not installed: "
                f"{POSTGRES_EXTRA}, or unset it to run on SQLite"
            )
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return parse_origins(value)

    @model_validator(mode="after")
    def _one_database(self) -> Settings:
        if self.database_url is not None and "database_path" in self.model_fields_set:
            raise ValueError(
                "SERVICE_DATABASE_URL and SERVICE_DATABASE_PATH are both set; "
                "set one (URL: PostgreSQL, path: SQLite)"
            )
        if self.direct_database_url is not None and self.database_url is None:
            raise ValueError(
                "SERVICE_DIRECT_DATABASE_URL is set without SERVICE_DATABASE_URL: "
                "set SERVICE_DATABASE_URL to the URL the service's requests use "
                "(the pooler's), or unset it"
            )
        if self.events_listen_url is not None and self.database_url is None:
            raise ValueError(
                "SERVICE_EVENTS_LISTEN_URL is for PostgreSQL (LISTEN); it needs "
                "SERVICE_DATABASE_URL"
            )
        return self

    @property
    def target(self) -> DatabaseTarget:
        """The database to open: PostgreSQL when a URL is set, else the SQLite file."""
        if self.database_url is not None:
            direct = self.direct_database_url
            return PostgresTarget(
                self.database_url.get_secret_value(),
                None if direct is None else direct.get_secret_value(),
            )
        return SqliteTarget(self.database_path)

    @field_validator("log_level", "synchronous", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("workers", mode="before")
    @classmethod
    def _worker_count(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if value == "auto":
                return value
            value = int(value) if value.isdigit() else value
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= 256
        ):
            raise ValueError("must be a whole number from 1 to 256, or auto")
        return value

    @field_validator("migrate", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class ConfigError(Exception):
    """A setting has an invalid value; str() is one line naming the variable."""


def _source(field: str) -> str:
    """Where a field's value came from: its variable, or its file's."""
    if field in FILE_FIELDS and _environ(file_variable(field)) is not None:
        return f"{file_variable(field)} (the file's content)"
    return variable(field)


def load_settings() -> Settings:
    """Read the environment once; ConfigError names the first bad variable."""
    try:
        return Settings()
    except ValidationError as ex:
        error = ex.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        given = error.get("input")
        shown = (
            f" (got {given!r})"
            if isinstance(given, str | int | float) and field not in _SECRET_FIELDS
            else ""
        )
        more = f"; {ex.error_count() - 1} more" if ex.error_count() > 1 else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        where = f"{_source(field)}: " if field else ""
        raise ConfigError(f"{where}{message}{shown}{more}") from ex


# Never echoed in an error, whatever is wrong with them.
_SECRET_FIELDS = frozenset(
    {"admin_token", "database_url", "direct_database_url", "events_listen_url"}
)
