"""The settings of live delivery (GET /v1/events), a part of service.config.Settings.

Declared here to keep config.py to one idea; read with every other
setting by Settings (SERVICE_EVENTS_*), which is still the only reader
of the environment.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

from db.target import POSTGRES_SCHEMES


class EventSettings(BaseModel):
    """How event streams are kept, limited and fed."""

    events_retention_hours: float = Field(
        24.0,
        gt=0,
        description="Hours events are kept for streams to resume from "
        "(Last-Event-ID); a stream resuming from an older one starts with a "
        "reset event",
    )
    events_heartbeat: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="Seconds between heartbeat comments on a quiet event stream "
        "(proxies close silent connections)",
    )
    events_streams_per_token: int = Field(
        8,
        ge=1,
        description="Event streams one API token may hold open on one process "
        "(429 past it)",
    )
    events_max_streams: int = Field(
        10_000,
        ge=1,
        description="Event streams one process holds at most (503 past it); each "
        "is an open file, counted in the open-file limit",
    )
    events_buffer_bytes: int = Field(
        262_144,
        ge=4096,
        description="Bytes an event stream may have unsent before it is closed as "
        "too slow (the client resumes from its last id)",
    )
    events_poll_interval: float = Field(
        0.025,
        gt=0,
        le=10,
        description="Seconds between checks for events other processes committed "
        "(SQLite's data_version; PostgreSQL without SERVICE_EVENTS_LISTEN_URL)",
    )
    events_listen_url: SecretStr | None = Field(
        None,
        description="PostgreSQL only: a direct URL (not through a transaction "
        "pooler) on which each process LISTENs, so that other replicas' events "
        "arrive at once; unset: poll every SERVICE_EVENTS_POLL_INTERVAL",
    )

    @field_validator("events_listen_url")
    @classmethod
    def _listen_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        if value.get_secret_value().partition("://")[0] not in POSTGRES_SCHEMES:
            raise ValueError("must be a postgresql:// URL")  # never the value
        return value
