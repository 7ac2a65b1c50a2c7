"""Who is in a conversation and who owns it: add, remove, leave, hand over.

The rules (docs/api.md, "Members and owners"):

- the creator owns a conversation; only the owner adds members and removes
  others; anyone may leave (remove themselves);
- nobody removes the owner but the owner (by leaving) or the operator;
- when the owner goes, the longest-standing member owns the conversation
  (earliest joined, then lowest user id); once nobody is left, nobody does;
- the owner may hand ownership to another member;
- the operator (the admin token; actor None here) adds and removes anyone.

Every method takes the conversation's lock first and checks after it
(Conversations.lock_as_member), so a removal or hand-over answered 2xx is
final: an add or removal that waited for it is judged by the new state.
Each change appends its events (db/domain/events.py) in the same
transaction: member.added, member.removed, owner.changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pony import orm

from db.domain.conversations import Conversations
from db.domain.events import Events
from db.domain.records import ConversationRecord, MemberRecord
from db.domain.timestamps import aware
from db.errors import ForbiddenError, NotFoundError


class Members:
    """Change a conversation's members and owner; records only."""

    def __init__(
        self, entities: dict[str, Any], conversations: Conversations, events: Events
    ) -> None:
        self._conversation = entities["Conversation"]
        self._membership = entities["Membership"]
        self._user = entities["User"]
        self._conversations = conversations
        self._events = events

    def add(
        self, actor: int | None, conversation_id: int, handle: str
    ) -> tuple[MemberRecord, bool]:
        """Add handle (by the owner, or the operator); returns it and whether new.

        NotFoundError for a conversation the actor is not in and for an
        unknown handle; ForbiddenError for a member who is not the owner.
        """
        conversation, stamp = self._locked(actor, conversation_id, "adds members")
        user = self._user.get(handle=handle)
        if user is None:
            raise NotFoundError(f"no user with handle {handle!r}")
        membership = self._membership.get(conversation=conversation, user=user)
        added = membership is None
        if membership is None:
            # The database's clock, read once the lock was held: members join
            # in the order their adds took the lock (the longest-standing
            # member inherits the conversation), whichever host added them.
            membership = self._membership(
                conversation=conversation, user=user, joined_at=stamp
            )
        record = MemberRecord(
            user.handle, user.display_name, aware(membership.joined_at)
        )
        if added:
            by = self._handle(actor)
            self._events.member_added(conversation_id, user.id, record, by)
            if conversation.owner is None:  # the operator refills an empty one
                conversation.owner = user
                self._events.owner_changed(conversation_id, user.handle)
        return record, added

    def remove(self, actor: int | None, conversation_id: int, handle: str) -> None:
        """Remove handle: oneself (leave), or anyone when the owner or the operator.

        NotFoundError when the actor or handle is not a member;
        ForbiddenError when a member other than the owner removes someone
        else. When the owner goes, the longest-standing member owns it.
        """
        conversation, _ = self._conversation_for(actor, conversation_id)
        membership = orm.select(
            mb
            for mb in self._membership
            if mb.conversation == conversation and mb.user.handle == handle
        ).first()
        if membership is None:
            raise NotFoundError(f"{handle!r} is not a member of this conversation")
        leaving = membership.user
        owner = conversation.owner
        if actor is not None and actor not in (leaving.id, owner and owner.id):
            raise ForbiddenError(
                "only the conversation's owner removes others; anyone may leave"
            )
        record = MemberRecord(
            leaving.handle, leaving.display_name, aware(membership.joined_at)
        )
        membership.delete()
        # Their last event: the removal itself; the hand-over after it is not theirs.
        self._events.member_removed(
            conversation_id, leaving.id, record, self._handle(actor)
        )
        if owner is not None and owner.id == leaving.id:
            orm.flush()  # the departed member is not a candidate
            successor = self._longest_standing(conversation)
            conversation.owner = successor
            self._events.owner_changed(
                conversation_id, successor.handle if successor is not None else None
            )

    def hand_over(
        self, actor: int, conversation_id: int, handle: str
    ) -> ConversationRecord:
        """Make handle, a member, the owner; only the owner may.

        NotFoundError when the actor or handle is not a member;
        ForbiddenError when the actor is not the owner.
        """
        conversation, _ = self._locked(actor, conversation_id, "hands ownership over")
        membership = orm.select(
            mb
            for mb in self._membership
            if mb.conversation == conversation and mb.user.handle == handle
        ).first()
        if membership is None:
            raise NotFoundError(f"{handle!r} is not a member of this conversation")
        if conversation.owner.id != membership.user.id:
            conversation.owner = membership.user
            self._events.owner_changed(conversation_id, handle)
        return self._conversations.record(conversation_id)

    def _handle(self, actor: int | None) -> str | None:
        """The actor's handle (None: the operator)."""
        return None if actor is None else str(self._user[actor].handle)

    def _locked(
        self, actor: int | None, conversation_id: int, does: str
    ) -> tuple[Any, datetime]:
        """The locked conversation and its stamp, when actor is its owner (or the operator)."""
        conversation, stamp = self._conversation_for(actor, conversation_id)
        if actor is not None and conversation.owner.id != actor:
            raise ForbiddenError(f"only the conversation's owner {does}")
        return conversation, stamp

    def _conversation_for(
        self, actor: int | None, conversation_id: int
    ) -> tuple[Any, datetime]:
        """Lock the conversation, check actor is in it; the entity and the lock's stamp."""
        if actor is None:
            stamp = self._conversations.lock(conversation_id)
        else:
            stamp = self._conversations.lock_as_member(actor, conversation_id)
        conversation = self._conversation.get(id=conversation_id)
        if conversation is None:
            raise NotFoundError(f"no conversation {conversation_id}")
        return conversation, stamp

    def _longest_standing(self, conversation: Any) -> Any:
        """The member who joined first (then the lowest id), or None."""
        first = (
            orm.select(mb for mb in self._membership if mb.conversation == conversation)
            .order_by(lambda mb: (mb.joined_at, mb.user.id))
            .first()
        )
        return first.user if first is not None else None
