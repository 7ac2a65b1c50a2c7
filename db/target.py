"""Which database to open: an SQLite file (the default) or a PostgreSQL server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")
# Query parameters of a libpq URL that hold a secret.
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


@dataclass(frozen=True)
class SqliteTarget:
    """An SQLite database file (absolute path)."""

    path: Path
    dialect: Literal["sqlite"] = field(default="sqlite", init=False)

    def describe(self) -> str:
        """What to call it in logs and errors."""
        return str(self.path)


@dataclass(frozen=True)
class PostgresTarget:
    """A PostgreSQL database named by a libpq URL (which may hold a password).

    The URL goes to psycopg2 as it is (sslmode and every other libpq
    parameter pass through); describe() is the only form that may be
    printed: the password is replaced by ***. direct_url, when given, is
    the same database reached without a connection pooler in between:
    what needs a database session of its own (the migration runner, the
    tooling, LISTEN) connects there (direct()); the request path always
    uses url.
    """

    url: str = field(repr=False)
    direct_url: str | None = field(default=None, repr=False)
    dialect: Literal["postgres"] = field(default="postgres", init=False)

    def __post_init__(self) -> None:
        for url in (self.url, self.direct_url):
            parts = urlsplit(url or "postgresql://")
            if parts.scheme not in POSTGRES_SCHEMES:
                raise ValueError(
                    f"a PostgreSQL URL starts with postgresql:// (got {parts.scheme or 'no'} scheme)"
                )

    def direct(self) -> PostgresTarget:
        """The target for work that needs a session of its own: direct_url, else url."""
        if self.direct_url is None:
            return self
        return PostgresTarget(self.direct_url)

    def describe(self) -> str:
        """The URL with its password (in the userinfo or the query) hidden."""
        return redact(self.url)

    def __repr__(self) -> str:
        return f"PostgresTarget({self.describe()!r})"

    @property
    def database(self) -> str:
        """The database name the URL names ('' when it leaves it to libpq)."""
        return urlsplit(self.url).path.lstrip("/")


DatabaseTarget = SqliteTarget | PostgresTarget


def redact(url: str) -> str:
    """A libpq URL safe to print: any password becomes ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}{':***' if sep else ''}@{hostport}"
    query = parts.query
    if query:
        pairs = [
            (k, "***" if k.lower() in _SECRET_PARAMETERS else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
