"""Migration files: names, checksums, headers, and the folder as versions.

One folder, one numbering. `NNNN_slug.sql` applies on every engine;
`NNNN_slug.sqlite.sql` and `NNNN_slug.postgres.sql` are the two halves of
one version where the SQL differs. Checksums ignore line endings and a BOM.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path

from db import engines
from db.engines.base.migration import Migration as Migration
from db.engines.base.migration import stem_of as stem_of
from db.engines.base.sql import DIALECTS as DIALECTS
from db.engines.base.sql import Dialect
from db.errors import MigrationError
from db.migrations.headers import parse_header

FILE_PATTERN = re.compile(
    r"^(?P<version>\d{4,})_(?P<slug>[a-z0-9][a-z0-9_]*)"
    r"(?:\.(?P<dialect>sqlite|postgres))?\.sql$"
)
CHECKSUM_ALGORITHM = "sha256-lf"


def default_source() -> Traversable:
    """The migrations shipped as package data (the repo's schema_migrations/)."""
    return importlib.resources.files("schema_migrations")


def normalise(raw: bytes) -> str:
    """Decode a file and normalise what editors change silently."""
    text = raw.decode("utf-8-sig")  # drops a BOM
    return text.replace("\r\n", "\n").replace("\r", "\n")


def checksum(text: str) -> str:
    """Checksum of normalised text, tagged with its algorithm."""
    return f"{CHECKSUM_ALGORITHM}:{hashlib.sha256(text.encode()).hexdigest()}"


def read_migration(
    version: int,
    name: str,
    raw: bytes,
    dialect: Dialect = "sqlite",
    file_dialect: Dialect | None = None,
) -> Migration:
    """Parse one file and lint it for dialect; raise MigrationError naming the file."""
    try:
        text = normalise(raw)
    except UnicodeDecodeError as ex:
        raise MigrationError(f"{name}: not valid UTF-8 ({ex.reason})") from ex
    header = parse_header(name, text)
    statements = tuple(engines.rules_for(dialect).check(name, text, header))
    return Migration(
        version, name, text, checksum(text), header, statements, dialect, file_dialect
    )


@dataclass
class VersionFiles:
    """The files of one version: one shared file, or a half per dialect."""

    version: int
    files: dict[Dialect | None, Traversable] = field(default_factory=dict)

    def names(self) -> list[str]:
        """The file names, sorted."""
        return sorted(entry.name for entry in self.files.values())

    def file_for(self, dialect: Dialect) -> Traversable | None:
        """The file that runs on dialect: its half, or the shared file."""
        return self.files.get(dialect) or self.files.get(None)

    def missing_half(self) -> str | None:
        """What is wrong when only one half exists (None when complete)."""
        if None in self.files or not self.files:
            return None
        missing = [d for d in DIALECTS if d not in self.files]
        if not missing:
            return None
        (present,) = self.files.values()
        return (
            f"{present.name} has no {stem_of(present.name)}.{missing[0]}.sql half: "
            f"version {self.version} needs both halves (or one shared "
            f"{stem_of(present.name)}.sql)"
        )


def catalog(source: Traversable | Path | None = None) -> list[VersionFiles]:
    """The folder's files grouped by version; refuse ambiguous folders."""
    folder = source if source is not None else default_source()
    if not folder.is_dir():
        raise MigrationError(f"migrations folder not found: {folder}")
    by_version: dict[int, VersionFiles] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue  # __init__.py, README and the like
        match = FILE_PATTERN.match(entry.name)
        if not match:
            raise MigrationError(
                f"{entry.name}: migration files are named NNNN_slug.sql or "
                "NNNN_slug.sqlite.sql / NNNN_slug.postgres.sql (digits, underscore, "
                "lower-case letters, digits and underscores)"
            )
        version = int(match["version"])
        dialect: Dialect | None = match["dialect"]  # type: ignore[assignment]
        group = by_version.setdefault(version, VersionFiles(version))
        clash = group.files.get(dialect)
        if clash is not None:
            raise MigrationError(
                f"two migrations share version {version}: {clash.name} and {entry.name}"
            )
        others = [e.name for e in group.files.values()]
        if others and (dialect is None or None in group.files):
            raise MigrationError(
                f"two migrations share version {version}: {others[0]} and "
                f"{entry.name} (one NNNN_slug.sql for every engine, or the "
                ".sqlite.sql and .postgres.sql halves, not both)"
            )
        if others and stem_of(others[0]) != stem_of(entry.name):
            raise MigrationError(
                f"two migrations share version {version}: {others[0]} and "
                f"{entry.name} (the two halves of a version have the same name)"
            )
        group.files[dialect] = entry
    return [by_version[v] for v in sorted(by_version)]


def discover(
    source: Traversable | Path | None = None, dialect: str = "sqlite"
) -> list[Migration]:
    """Read the files that run on dialect ('sqlite' or 'postgres'), in version order."""
    if dialect not in DIALECTS:
        raise ValueError(
            f"no migrations for the engine {dialect!r} (known: {DIALECTS})"
        )
    engine: Dialect = "postgres" if dialect == "postgres" else "sqlite"
    found: list[Migration] = []
    for group in catalog(source):
        entry = group.file_for(engine)
        if entry is None:
            raise MigrationError(str(group.missing_half()))
        file_dialect = None if None in group.files else engine
        found.append(
            read_migration(
                group.version, entry.name, entry.read_bytes(), engine, file_dialect
            )
        )
    return found


def clean_slug(slug: str) -> str:
    """A migration name as the file name's slug: lower-case words joined by _."""
    clean = re.sub(r"[^a-z0-9]+", "_", slug.lower()).strip("_")
    if not clean:
        raise MigrationError(f"migration name {slug!r} has no letters or digits")
    return clean


def next_stem(source: Traversable | Path | None, slug: str) -> str:
    """NNNN_slug for the next version of the folder (any engine's files count)."""
    version = max((group.version for group in catalog(source)), default=0) + 1
    return f"{version:04d}_{clean_slug(slug)}"
