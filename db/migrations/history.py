"""The files against the history: pending, unknown and edited versions.

"Applied" is set membership on the version, never a high-water mark, so
a file numbered below the newest applied one is pending, not skipped.
"""

from __future__ import annotations

import logging

from db.errors import MigrationError
from db.migrations.files import Migration
from db.records import AppliedMigration, SchemaState

log = logging.getLogger("db.migrate")


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


def mismatch_message(migration: Migration, stored: AppliedMigration) -> str:
    """Why an applied version's file no longer matches, and what to do."""
    return (
        f"{migration.name} was edited after it was applied "
        f"(stored {stored.checksum[-12:]}, file {migration.checksum[-12:]}); "
        "restore the file, or accept the change with "
        f"`python -m service accept-checksum {migration.version}`"
    )


def check_history(
    migrations: list[Migration], applied: dict[int, AppliedMigration]
) -> SchemaState:
    """The state, or MigrationError for an applied file that no longer matches."""
    current = state(migrations, checksums(applied))
    files = {m.version: m for m in migrations}
    for version in current.edited:
        raise MigrationError(mismatch_message(files[version], applied[version]))
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
