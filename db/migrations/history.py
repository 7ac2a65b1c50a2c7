"""The files against the history: pending, unknown and edited versions.

"Applied" is set membership on the version, never a high-water mark, so
a file numbered below the newest applied one is pending, not skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from db.engines.base.migration import AppliedMigration
from db.errors import MigrationError
from db.migrations.files import Migration, stem_of

log = logging.getLogger("db.migrate")


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where the database stands against the migration files."""

    version: int | None
    applied: list[int]
    pending: list[int]
    unknown: list[int]
    edited: list[int]

    @property
    def clean(self) -> bool:
        """True when nothing is pending or edited."""
        return not self.pending and not self.edited


def state(migrations: list[Migration], applied: dict[int, str]) -> SchemaState:
    """Compare files with applied versions and their checksums.

    Gives the pending, unknown (no file) and edited (checksum differs) versions.
    """
    files = {m.version: m for m in migrations}
    return SchemaState(
        version=max(applied) if applied else None,
        applied=sorted(applied),
        pending=sorted(set(files) - set(applied)),
        unknown=sorted(set(applied) - set(files)),
        edited=sorted(
            v for v in applied if v in files and applied[v] != files[v].checksum
        ),
    )


def checksums(applied: dict[int, AppliedMigration]) -> dict[int, str]:
    """Version -> stored checksum."""
    return {version: row.checksum for version, row in applied.items()}


def is_conflict(migration: Migration, stored: AppliedMigration) -> bool:
    """Whether the applied file was another one (not this file, edited).

    Names that differ only by a dialect suffix are the same file
    (0001_x.sql applied, 0001_x.sqlite.sql now).
    """
    return stem_of(stored.name) != migration.stem


def mismatch_message(
    migration: Migration, stored: AppliedMigration, others: Sequence[Migration] = ()
) -> str:
    """Why an applied version's file no longer matches, and what to do."""
    version = migration.version
    if is_conflict(migration, stored):
        return (
            f"version {version} of this database was applied from {stored.name}, but "
            f"this code's version {version} is {migration.name}: two branches both "
            f"added version {version}. Renumber {migration.name} to the next free "
            f"version (`python -m service new` shows it) and bring {stored.name} in "
            "from the branch that has it; accept-checksum would wrongly mark "
            f"{migration.name} as applied"
        )
    moved = [
        m for m in others if m.version != version and m.checksum == stored.checksum
    ]
    if moved:
        return (
            f"{migration.name} is not the file applied as version {version}: what was "
            f"applied is now {moved[0].name} (renumbered after it was applied). Give "
            f"it back version {version} and renumber {migration.name}"
        )
    return (
        f"{migration.name} was edited after it was applied "
        f"(stored {stored.checksum[-12:]}, file {migration.checksum[-12:]}); "
        "restore the file, or accept the change with "
        f"`python -m service accept-checksum {version}`"
    )


def empty_message(migration: Migration) -> str:
    """The refusal for a pending file that holds only comments."""
    return (
        f"{migration.name} has no SQL yet (only comments): write its statements, "
        "or delete the file"
    )


def marks(
    migrations: list[Migration], applied: dict[int, AppliedMigration]
) -> dict[int, str]:
    """Version -> what it is: applied, pending, edited, conflict, no file."""
    files = {m.version: m for m in migrations}
    found: dict[int, str] = {}
    for version in sorted(set(files) | set(applied)):
        migration, stored = files.get(version), applied.get(version)
        if stored is None and migration is not None:
            found[version] = "pending, no SQL yet" if migration.empty else "pending"
        elif migration is None:
            found[version] = "applied, no file"
        elif stored is not None and stored.checksum == migration.checksum:
            found[version] = stored.how
        elif stored is not None and is_conflict(migration, stored):
            found[version] = "CONFLICT"
        else:
            found[version] = "EDITED"
    return found


def history_problems(
    migrations: list[Migration], applied: dict[int, AppliedMigration]
) -> list[str]:
    """Every applied version whose file no longer matches, explained."""
    files = {m.version: m for m in migrations}
    return [
        mismatch_message(files[v], applied[v], migrations)
        for v in sorted(applied)
        if v in files and applied[v].checksum != files[v].checksum
    ]


def check_history(
    migrations: list[Migration], applied: dict[int, AppliedMigration]
) -> SchemaState:
    """The state, or MigrationError for an applied file that no longer matches."""
    current = state(migrations, checksums(applied))
    problems = history_problems(migrations, applied)
    if problems:
        raise MigrationError(problems[0])
    for version in current.unknown:
        log.warning(
            "database has migration %s (%s) that this code does not ship; "
            "starting anyway (an older release on a newer database)",
            version,
            applied[version].name,
        )
    return current


def untracked_error(tables: list[str]) -> MigrationError:
    """The refusal for a database these migrations did not create."""
    return MigrationError(
        "database has tables but no migration history "
        f"({', '.join(tables[:5])}); it was not created by these migrations: "
        "if its schema is what files 1..N create, adopt it with "
        "`python -m service baseline N`"
    )
