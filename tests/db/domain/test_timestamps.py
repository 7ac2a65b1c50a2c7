"""Timestamps: the text stored in SQLite and the ISO 8601 the API answers.

The text codec is db/engines/base/operations.py's (what crosses the
engine interface as text); aware() is the domain's, for entity values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pony.orm import db_session

from db.database import Database
from db.domain.timestamps import aware
from db.engines.base.operations import parse_timestamp as from_stored
from db.engines.base.operations import timestamp_text as to_stored
from service.params import utc_iso

PLUS_TWO = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("moment", "stored", "api"),
    [
        (
            datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            "2026-01-02 03:04:05.000006",
            "2026-01-02T03:04:05.000006Z",
        ),
        (
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            "2026-01-02 03:04:05.000000",
            "2026-01-02T03:04:05.000000Z",
        ),
        (
            datetime(2026, 1, 2, 5, 4, 5, 7, tzinfo=PLUS_TWO),
            "2026-01-02 03:04:05.000007",
            "2026-01-02T03:04:05.000007Z",
        ),
    ],
)
def test_aware_moments_are_stored_and_shown_in_utc(
    moment: datetime, stored: str, api: str
) -> None:
    """Any aware datetime is stored as naive UTC text and shown as ISO 8601 with Z."""
    assert to_stored(moment) == stored
    assert utc_iso(moment) == api
    back = from_stored(stored)
    assert back == moment
    assert back.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02 03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02 05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=UTC)),
    ],
)
def test_stored_text_not_written_by_us_still_reads_as_utc(
    text: str, expected: datetime
) -> None:
    """Text without a fraction, with its own offset, or a bare date reads as aware UTC."""
    moment = from_stored(text)
    assert moment == expected
    assert moment.tzinfo is UTC


def test_entities_and_raw_rows_agree_on_stored_timestamps(database: Database) -> None:
    """What an entity writes, a raw db.select row reads as the same moment, and back."""
    with database.writing():
        written, _ = database.metadata.put("k", "v")
        entity = database.orm.entities["AppMetadata"]
        pony_moment = datetime(2026, 5, 6, 7, 8, 9)  # Pony stores naive datetimes
        entity(key="p", value="v", updated_at=pony_moment)
    with db_session:
        via_entity = database.metadata.get("k").updated_at
        (raw,) = database.orm.select(
            "SELECT updated_at FROM app_metadata WHERE key = 'k'"
        )
        assert database.metadata.get("p").updated_at == pony_moment.replace(tzinfo=UTC)
    assert via_entity == database.engine.dialect.timestamp(raw) == written.updated_at
    assert aware(pony_moment) == pony_moment.replace(tzinfo=UTC)
    assert via_entity.tzinfo is UTC


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),  # room for any offset on either side
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, PLUS_TWO, timezone(timedelta(hours=-11))]),
    )
)
def test_fast_paths_agree_with_the_plain_conversions(moment: datetime) -> None:
    """For any aware moment, the fast formatting equals isoformat's, and storage round-trips."""
    in_utc = moment.astimezone(UTC)
    assert utc_iso(moment) == in_utc.isoformat(timespec="microseconds").replace(
        "+00:00", "Z"
    )
    assert to_stored(moment) == in_utc.replace(tzinfo=None).isoformat(
        sep=" ", timespec="microseconds"
    )
    assert from_stored(to_stored(moment)) == moment
