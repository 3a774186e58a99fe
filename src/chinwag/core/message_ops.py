"""What people do to messages (SPEC §14): edit, delete, react, reply, mention, search.

Every change is a stored room event with a seq (``message_edited``,
``message_deleted``, ``reaction``) that refers to the message by its server id, so
the offline queue, ``sync``, history and other processes carry it like any chat.
The message itself is rewritten in the same transaction: history and replay show
its latest content with ``edited_at``, its ``reactions``, or a tombstone
(``deleted:true``) whose text is gone from the database and the search index."""

from __future__ import annotations

import re
from typing import Any

from chinwag.core.events import Events, confirmation, render
from chinwag.core.session import Identity, Session
from chinwag.protocol import frames
from chinwag.protocol import messages as m
from chinwag.protocol.codec import encode
from chinwag.protocol.errors import Forbidden, InvalidMessage, NotFound, NotInRoom
from chinwag.protocol.frames import iso, utc_now
from chinwag.store.base import EventRecord, Store
from chinwag.store.messages import Changed, NewEvent, Rewrite

ASSISTANT = "assistant"
MAX_EMOJIS = 50  # distinct reactions on one message
MAX_SEARCH_WORDS = 16
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_.:-]{1,64})")
_WORD = re.compile(r"\w+")
# What a tombstone keeps: who wrote it when, and where it sat in a thread.
_TOMBSTONE_KEEPS = (
    "role",
    "username",
    "user_id",
    "client_message_id",
    "conversation_id",
    "timestamp",
    "reply_to",
    "done",
)


def mentioned(text: str) -> list[str]:
    """The names written as ``@name`` in ``text``, in order, each once. A name that
    ends a sentence (``@bob.``) is also tried without the trailing punctuation."""
    names: list[str] = []
    for match in _MENTION.finditer(text):
        for name in (match.group(1), match.group(1).rstrip(".:-")):
            if name and name not in names:
                names.append(name)
    return names


def asks_assistant(data: m.ChatData) -> m.ChatData:
    """``@assistant`` in a chat sent with ``ai:false`` asks the AI after all."""
    if not data.ai and ASSISTANT in mentioned(data.message):
        return data.model_copy(update={"ai": True})
    return data


def search_words(query: str) -> list[str]:
    words = _WORD.findall(query.lower())[:MAX_SEARCH_WORDS]
    if not words:
        raise InvalidMessage(
            "q must contain at least one word", details=[{"field": "q", "error": "no words"}]
        )
    return words


def history_item(record: EventRecord) -> dict[str, Any]:
    """A stored event as history lists it: chats always carry ``reactions``."""
    item = render(record)
    if record.type == "chat" and not record.data.get("deleted"):
        item["data"].setdefault("reactions", {})
    return item


class MessageOps:
    def __init__(self, store: Store, events: Events) -> None:
        self.store = store
        self.events = events

    # ---- frames -------------------------------------------------------------------

    async def edit(self, session: Session, msg: m.EditMessage) -> None:
        who, data, room_id = session.identity, msg.data, _room(msg)
        if await self._answered_before(session, room_id, msg.message_id):
            return
        original = await self._message(who, room_id, data.message_id)
        if original.sender != who.username:
            raise Forbidden("only its author may edit a message")
        edited_at = utc_now()

        def rewrite(current: dict[str, Any]) -> dict[str, Any] | None:
            _not_deleted(current, data.message_id)
            if current.get("content") == data.content:
                return None
            return {**current, "content": data.content, "edited_at": edited_at}

        await self._change(
            session,
            room_id,
            data.message_id,
            rewrite,
            NewEvent(
                "message_edited",
                {
                    "message_id": data.message_id,
                    "content": data.content,
                    "edited_at": edited_at,
                    "username": who.username,
                },
                who.username,
                msg.message_id,
            ),
        )

    async def delete(self, session: Session, msg: m.DeleteMessage) -> None:
        who, data, room_id = session.identity, msg.data, _room(msg)
        if await self._answered_before(session, room_id, msg.message_id):
            return
        original = await self._message(who, room_id, data.message_id, admin_may=True)
        if original.sender != who.username and not who.is_admin:
            room = await self.store.rooms.get(room_id)
            if room is None or room.owner != who.username:
                raise Forbidden(
                    "only its author, the room's owner or an admin may delete a message"
                )
        deleted_at = utc_now()

        def rewrite(current: dict[str, Any]) -> dict[str, Any]:
            _not_deleted(current, data.message_id)
            kept = {k: current[k] for k in _TOMBSTONE_KEEPS if k in current}
            return {**kept, "deleted": True, "deleted_at": deleted_at}

        await self._change(
            session,
            room_id,
            data.message_id,
            rewrite,
            NewEvent(
                "message_deleted",
                {"message_id": data.message_id, "username": who.username},
                who.username,
                msg.message_id,
            ),
            erase=True,
        )

    async def react(self, session: Session, msg: m.React) -> None:
        who, data, room_id = session.identity, msg.data, _room(msg)
        if await self._answered_before(session, room_id, msg.message_id):
            return
        await self._message(who, room_id, data.message_id)

        def rewrite(current: dict[str, Any]) -> dict[str, Any] | None:
            _not_deleted(current, data.message_id)
            reactions = {k: list(v) for k, v in current.get("reactions", {}).items()}
            users = reactions.setdefault(data.emoji, [])
            if data.on == (who.username in users):
                return None  # one per user and emoji: already so
            if data.on:
                if len(reactions) > MAX_EMOJIS:
                    raise InvalidMessage(
                        f"a message holds at most {MAX_EMOJIS} different reactions",
                        details=[{"field": "data.emoji", "error": "too many"}],
                    )
                users.append(who.username)
            else:
                users.remove(who.username)
            return {**current, "reactions": {k: v for k, v in reactions.items() if v}}

        await self._change(
            session,
            room_id,
            data.message_id,
            rewrite,
            NewEvent(
                "reaction",
                {
                    "message_id": data.message_id,
                    "emoji": data.emoji,
                    "username": who.username,
                    "on": data.on,
                },
                who.username,
                msg.message_id,
            ),
        )

    # ---- hooks of a chat ----------------------------------------------------------

    async def reply_fields(self, room_id: str, reply_to: int | None) -> dict[str, Any]:
        """``{"reply_to": id}`` for the stored chat, once the id is known to be a
        message of the same room that is still there."""
        if reply_to is None:
            return {}
        original = await self.store.messages.get(room_id, reply_to)
        if original is None or original.data.get("deleted"):
            raise NotFound(f"no message {reply_to} in room '{room_id}' to reply to")
        return {"reply_to": reply_to}

    async def notify_mentions(self, record: EventRecord, members: list[str]) -> None:
        """Tell each member named ``@name`` in a stored chat (never its sender), and
        keep it for their unread mentions."""
        sender = record.sender or ""
        names = [
            n
            for n in mentioned(str(record.data.get("content", "")))
            if n in members and n != sender
        ]
        if not names:
            return
        await self.store.messages.add_mentions(record, names, sender)
        text = encode(frames.mention(record.room_id, record.id, record.seq, sender))
        for name in names:
            await self.events.hub.send_user(name, text)

    # ---- reads --------------------------------------------------------------------

    async def history(
        self,
        room_id: str,
        before_seq: int | None,
        limit: int,
        after_seq: int = 0,
        reply_to: int | None = None,
    ) -> list[dict[str, Any]]:
        """A page of the room's history after ``after_seq`` (the reader's history
        floor), oldest first; with ``reply_to``, of the replies to that message."""
        if reply_to is None:
            records = await self.store.events.before(room_id, before_seq, limit, after_seq)
        elif await self.store.messages.get(room_id, reply_to) is None:
            raise NotFound(f"no message {reply_to} in room '{room_id}'")
        else:
            records = await self.store.messages.replies(
                room_id, reply_to, before_seq, limit, after_seq
            )
        return [history_item(r) for r in records]

    async def search(
        self, who: Identity, query: str, room_id: str | None, before_id: int | None, limit: int
    ) -> list[dict[str, Any]]:
        words = search_words(query)
        if room_id is not None and await self.store.rooms.member(room_id, who.username) is None:
            if await self.store.rooms.get(room_id) is None:
                raise NotFound(f"room '{room_id}' does not exist")
            raise Forbidden(f"you are not a member of room '{room_id}'")
        hits = await self.store.search.search(who.username, words, room_id, before_id, limit)
        return [
            {
                "room_id": r.room_id,
                "seq": r.seq,
                "message_id": r.id,
                "username": r.data.get("username"),
                "content": r.data.get("content"),
                "timestamp": r.data.get("timestamp") or iso(r.created_at),
            }
            for r in hits
        ]

    async def mentions(self, who: Identity, limit: int) -> dict[str, Any]:
        found = await self.store.messages.mentions(who.username, limit)
        return {
            "mentions": [
                {
                    "room_id": r.room_id,
                    "seq": r.seq,
                    "message_id": r.message_id,
                    "by": r.by,
                    "unread": r.unread,
                }
                for r in found
            ],
            "unread": await self.store.messages.unread_mentions(who.username),
        }

    # ---- the common path ----------------------------------------------------------

    async def _message(
        self, who: Identity, room_id: str, message_id: int, *, admin_may: bool = False
    ) -> EventRecord:
        if not (admin_may and who.is_admin) and (
            await self.store.rooms.member(room_id, who.username) is None
        ):
            raise NotInRoom(f"you are not a member of room '{room_id}'")
        record = await self.store.messages.get(room_id, message_id)
        if record is None:
            raise NotFound(f"no message {message_id} in room '{room_id}'")
        _not_deleted(record.data, message_id)
        return record

    async def _answered_before(self, session: Session, room_id: str, client_id: str | None) -> bool:
        """A retried frame (same client ``message_id``) gets its first answer again."""
        if client_id is None:
            return False
        prior = await self.store.events.find(room_id, session.username, client_id)
        if prior is None:
            return False
        session.send(confirmation(prior, "delivered", duplicate=True))
        return True

    async def _change(
        self,
        session: Session,
        room_id: str,
        message_id: int,
        rewrite: Rewrite,
        change: NewEvent,
        *,
        erase: bool = False,
    ) -> None:
        changed: Changed = await self.store.messages.change(
            room_id, message_id, rewrite, change, erase=erase
        )
        record = changed.event
        if record is None:  # nothing to change: answered, nothing stored
            session.send(frames.unchanged_confirmation(change.client_message_id, room_id))
            return
        if not changed.duplicate:
            await self.events.hub.publish_stored(room_id, record.seq, encode(render(record)))
        session.send(confirmation(record, "delivered", **_duplicate(changed.duplicate)))


def _duplicate(duplicate: bool) -> dict[str, Any]:
    return {"duplicate": True} if duplicate else {}


def _room(msg: m.EditMessage | m.DeleteMessage | m.React) -> str:
    assert msg.room_id is not None  # the codec requires it for these types
    return msg.room_id


def _not_deleted(data: dict[str, Any], message_id: int) -> None:
    if data.get("deleted"):
        raise NotFound(f"message {message_id} was deleted")
