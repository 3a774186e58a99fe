"""Chat messages as things people act on (edit, delete, react, reply, mention) and
the full-text index over them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chinwag.store.base import EventRecord


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A room event to append (its seq is assigned when it is stored)."""

    type: str
    data: dict[str, Any]
    sender: str | None = None
    client_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Changed:
    """The outcome of ``MessageStore.change``."""

    message: EventRecord  # the message as it is now stored
    event: EventRecord | None  # the event recording the change; None: nothing changed
    duplicate: bool = False  # the client id was used before: ``event`` is that first one


@dataclass(frozen=True, slots=True)
class MentionRecord:
    room_id: str
    seq: int
    message_id: int
    by: str
    unread: bool  # beyond the member's read cursor


#: Computes a message's new payload from its stored one; None leaves it as it is.
#: Runs inside the change's transaction, so it sees the latest state; it may raise a
#: ChatError (the message was deleted meanwhile, say) to abandon the change.
Rewrite = Callable[[dict[str, Any]], dict[str, Any] | None]


class MessageStore(Protocol):
    """Chat messages as things people act on: edit, delete, react, reply, mention."""

    async def get(self, room_id: str, message_id: int) -> EventRecord | None:
        """The chat event with that server id in that room, or None."""

    async def change(
        self,
        room_id: str,
        message_id: int,
        rewrite: Rewrite,
        event: NewEvent,
        *,
        erase: bool = False,
    ) -> Changed:
        """In one transaction: rewrite the message and, if it changed, append ``event``
        under the room's next seq. A conversation turn holding the old text follows
        it. With ``erase`` nothing of the old text stays: earlier edit events lose
        their content, the message's mentions go, its search entry goes (the index
        follows the stored content). Raises NotFound for an unknown message."""

    async def replies(
        self, room_id: str, message_id: int, before_seq: int | None, limit: int, after_seq: int = 0
    ) -> list[EventRecord]:
        """The ``limit`` newest chats with after_seq < seq < before_seq whose
        ``reply_to`` is that message, oldest first."""

    async def add_mentions(self, message: EventRecord, usernames: list[str], by: str) -> None: ...
    async def mentions(self, username: str, limit: int) -> list[MentionRecord]:
        """The newest mentions of ``username`` in rooms they belong to, newest first."""

    async def unread_mentions(self, username: str) -> dict[str, int]:
        """Per room, mentions of ``username`` beyond their read cursor."""


class SearchIndex(Protocol):
    async def search(
        self,
        username: str,
        words: list[str],
        room_id: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[EventRecord]:
        """Chats containing every word (whole words, case-insensitive) in the rooms
        ``username`` is a member of (or only ``room_id``), newest first, with ids
        below ``before_id``."""
