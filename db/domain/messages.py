"""Messages: post, page and delete, through the Message entity."""

from __future__ import annotations

from typing import Any

from pony import orm

from db.domain import search_index
from db.domain.conversations import MAX_ID, Conversations
from db.domain.events import Events
from db.domain.records import MessagePage, MessageRecord, UserRecord
from db.domain.timestamps import aware
from db.engines.base.operations import Dialect
from db.errors import ForbiddenError, NotFoundError


class Messages:
    """Messages of the conversations a user is a member of; records only."""

    def __init__(
        self,
        orm_db: orm.Database,
        entities: dict[str, Any],
        conversations: Conversations,
        dialect: Dialect,
        events: Events,
    ) -> None:
        self._db = orm_db
        self._message = entities["Message"]
        self._conversations = conversations
        self._dialect = dialect
        self._events = events

    def post(
        self, author: UserRecord, conversation_id: int, body: str
    ) -> MessageRecord:
        """Add a message to a conversation the author is a member of."""
        # The conversation's lock, then the membership check: a removal
        # answered 204 is final. Posters to one conversation take turns
        # before the database's clock is read (in the lock's own round
        # trip), so stamps (and ids) follow commit order whichever host
        # posts, and the conversation's last_message_at is its newest
        # message's, never an older one's written last.
        stamp = self._conversations.lock_as_member(author.id, conversation_id)
        message = self._message(
            conversation=conversation_id, author=author.id, body=body, created_at=stamp
        )
        # Created from its id, message.conversation is a seed Pony has not
        # loaded: setting an attribute on it is one UPDATE, with no SELECT
        # (and no optimistic check, since nothing was read).
        message.conversation.last_message_at = stamp
        message.flush()
        search_index.write(self._db, conversation_id, message.id, body)
        record = MessageRecord(
            message.id, conversation_id, author.handle, body, aware(stamp)
        )
        self._events.message_posted(record)  # same transaction: committed together
        return record

    def page(
        self,
        user_id: int,
        conversation_id: int,
        limit: int,
        *,
        before: int | None = None,
        after: int | None = None,
    ) -> MessagePage:
        """A page of messages: newest first, or oldest first when after is given.

        A read-only page, so raw rows (db.select), not entities: 50
        entities cost Pony about 15 times the query.
        """
        self._conversations.require_member(user_id, conversation_id)
        if after is not None:
            condition, order, cursor = "m.id > $cursor", "ASC", after
        else:
            condition, order = "m.id < $cursor", "DESC"
            cursor = before if before is not None else MAX_ID
        n = limit + 1
        rows = self._db.select(
            "SELECT m.id, u.handle, m.body, m.created_at FROM messages m "
            "JOIN users u ON u.id = m.author_id "
            f"WHERE m.conversation_id = $conversation_id AND {condition} "
            f"ORDER BY m.id {order} LIMIT $n",
            {"conversation_id": conversation_id, "cursor": cursor, "n": n},
        )
        timestamp = self._dialect.timestamp
        items = [
            MessageRecord(r[0], conversation_id, r[1], r[2], timestamp(r[3]))
            for r in rows[:limit]
        ]
        return MessagePage(items, items[-1].id if len(rows) > limit else None)

    def delete(self, user_id: int, conversation_id: int, message_id: int) -> None:
        """Delete the user's own message; ForbiddenError for someone else's."""
        # The conversation's lock, then the checks: of two concurrent
        # deletes the second finds the row gone (404, on both engines), and
        # a member removed meanwhile deletes nothing.
        self._conversations.lock_as_member(user_id, conversation_id)
        message = self._message.get_for_update(
            id=message_id, conversation=conversation_id
        )
        if message is None:
            raise NotFoundError(f"no message {message_id} in this conversation")
        if message.author.id != user_id:
            raise ForbiddenError("only the author may delete a message")
        # Its terms first, in one statement: Pony's cascade would load them.
        search_index.delete(self._db, message.id)
        message.delete()
        self._events.message_deleted(conversation_id, message_id)
