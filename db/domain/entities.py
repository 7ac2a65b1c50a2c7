"""Pony entities mirroring the SQL schema; every name is pinned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pony import orm

from db.domain.timestamps import now  # noqa: F401 - a default for new entities' timestamps

# ON DELETE rules, deliberately (Pony derives them from the reverse Set:
# cascade_delete=True -> CASCADE, False -> none, i.e. SQLite's NO ACTION,
# which refuses the parent's delete while children exist):
# - a user's tokens and memberships go with the user (CASCADE);
# - a user who authored messages or created conversations cannot be
#   deleted until those are dealt with (NO ACTION): history is never
#   erased as a side effect;
# - a conversation's memberships and messages go with it (CASCADE).


def define_entities(db: orm.Database) -> dict[str, Any]:
    """Declare the entities on db and return them by name."""

    class AppMetadata(db.Entity):
        _table_ = "app_metadata"
        key = orm.PrimaryKey(str, column="key", autostrip=False)
        # Optional(str) is NOT NULL in SQL and, unlike Required, accepts "".
        value = orm.Optional(str, column="value", autostrip=False)
        # Naive UTC: Pony reads aware datetimes back naive on SQLite.
        updated_at = orm.Required(datetime, column="updated_at")

    class User(db.Entity):
        _table_ = "users"
        id = orm.PrimaryKey(int, size=64, auto=True, column="id")
        # 3-32 of [a-z0-9_], checked by the HTTP schema; unique: lookups by handle.
        handle = orm.Required(
            str, 32, unique=True, column="handle", index="unq_users_handle"
        )
        display_name = orm.Required(str, 100, column="display_name", autostrip=False)
        created_at = orm.Required(datetime, column="created_at")
        tokens = orm.Set("ApiToken", cascade_delete=True)
        memberships = orm.Set("Membership", cascade_delete=True)
        membership_periods = orm.Set("MembershipPeriod", cascade_delete=True)
        messages = orm.Set("Message", cascade_delete=False)
        created_conversations = orm.Set(
            "Conversation", reverse="created_by", cascade_delete=False
        )
        owned_conversations = orm.Set(
            "Conversation", reverse="owner", cascade_delete=False
        )

    class ApiToken(db.Entity):
        _table_ = "api_tokens"
        id = orm.PrimaryKey(int, size=64, auto=True, column="id")
        user = orm.Required(User, column="user_id", index="ix_api_tokens_user")
        # sha256 of the token; the token itself is never stored.
        token_hash = orm.Required(
            bytes, unique=True, column="token_hash", index="unq_api_tokens_hash"
        )
        created_at = orm.Required(datetime, column="created_at")
        last_used_at = orm.Optional(datetime, column="last_used_at", nullable=True)
        revoked_at = orm.Optional(datetime, column="revoked_at", nullable=True)
        search_quota = orm.Optional("SearchQuota", cascade_delete=True)

    class Conversation(db.Entity):
        _table_ = "conversations"
        id = orm.PrimaryKey(int, size=64, auto=True, column="id")
        title = orm.Required(str, 200, column="title", autostrip=False)
        created_by = orm.Required(
            User,
            column="created_by",
            index="ix_conversations_created_by",
            reverse="created_conversations",
        )
        # The member who adds and removes others (db/conversations.py); None
        # only once nobody is left in the conversation.
        owner = orm.Optional(
            User,
            column="owner_id",
            index="ix_conversations_owner",
            reverse="owned_conversations",
        )
        created_at = orm.Required(datetime, column="created_at")
        # Equals created_at until the first message: "most recent activity".
        last_message_at = orm.Required(datetime, column="last_message_at")
        memberships = orm.Set("Membership", cascade_delete=True)
        messages = orm.Set("Message", cascade_delete=True)
        events = orm.Set("Event", cascade_delete=True)
        membership_periods = orm.Set("MembershipPeriod", cascade_delete=True)
        search_terms = orm.Set("SearchTerm", cascade_delete=True)

    class Membership(db.Entity):
        _table_ = "memberships"
        conversation = orm.Required(Conversation, column="conversation_id")
        user = orm.Required(User, column="user_id")
        joined_at = orm.Required(datetime, column="joined_at")
        # Is X a member of C: the primary key; C's members: its prefix.
        orm.PrimaryKey(conversation, user)
        # X's conversations, covering (no lookup into the table).
        orm.composite_index(user, conversation)

    class Message(db.Entity):
        _table_ = "messages"
        id = orm.PrimaryKey(int, size=64, auto=True, column="id")
        conversation = orm.Required(Conversation, column="conversation_id")
        author = orm.Required(User, column="author_id", index="ix_messages_author")
        body = orm.Required(str, column="body", autostrip=False)
        created_at = orm.Required(datetime, column="created_at")
        # Paging a conversation's messages by id, either direction.
        orm.composite_index(conversation, id)
        search_terms = orm.Set("SearchTerm", cascade_delete=True)

    class SearchTerm(db.Entity):
        # The search index (db/domain/search.py): one row per distinct term
        # of a message (db/domain/tokens.py), written in Python so both
        # engines hold the same terms. The conversation leads the key: a
        # search seeks the caller's conversations and never reads others'.
        # A message without any word holds the term " " (never a word), so
        # "has this message been indexed" is one index lookup.
        _table_ = "search_terms"
        conversation = orm.Required(Conversation, column="conversation_id")
        term = orm.Required(str, 64, column="term", autostrip=False)
        message = orm.Required(
            Message, column="message_id", index="ix_search_terms_message"
        )
        orm.PrimaryKey(conversation, term, message)

    class SearchQuota(db.Entity):
        # A token's search rate (db/domain/search_quota.py, GCRA): the
        # moment, in seconds since the epoch on the database's clock, its
        # next search is due. Shared by every process and host.
        _table_ = "search_quotas"
        token = orm.PrimaryKey(ApiToken, column="token_id")
        due_at = orm.Required(float, column="due_at")

    class Event(db.Entity):
        """What happened, in the order it committed (db/domain/events.py).

        Written in the transaction of the change it tells of; the id is the
        position every stream resumes from (Last-Event-ID).
        """

        _table_ = "events"
        id = orm.PrimaryKey(int, size=64, auto=True, column="id")
        # None for an event about no conversation (a token revoked).
        conversation = orm.Optional(Conversation, column="conversation_id")
        kind = orm.Required(str, 32, column="kind")
        # The JSON the stream sends as `data:`, rendered when it happened.
        data = orm.Required(str, column="data", autostrip=False)
        created_at = orm.Required(datetime, column="created_at")
        # A conversation's events after an id: the resuming reader's query.
        orm.composite_index(conversation, id)

    class MembershipPeriod(db.Entity):
        """A stretch of membership in event ids: who may see which events.

        since_event is the event that made the user a member (0: before
        events were kept), until_event the one that removed them (None:
        still a member); both inclusive.
        """

        _table_ = "membership_periods"
        conversation = orm.Required(Conversation, column="conversation_id")
        user = orm.Required(User, column="user_id")
        since_event = orm.Required(int, size=64, column="since_event")
        until_event = orm.Optional(int, size=64, column="until_event", nullable=True)
        # A conversation's members at an event: the primary key's prefix.
        orm.PrimaryKey(conversation, user, since_event)
        # A user's periods: the resuming reader's starting point.
        orm.composite_index(user, conversation)

    class EventRetention(db.Entity):
        """One row: the newest event id the retention window removed."""

        _table_ = "event_retention"
        id = orm.PrimaryKey(int, column="id")
        pruned_through = orm.Required(int, size=64, column="pruned_through")

    # Every entity declared above, by name: a new one needs no other line.
    return dict(db.entities)
