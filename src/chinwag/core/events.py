"""Stored room events: persist, then publish; replay from the store.

"History after seq N" is the one mechanism behind the offline queue, ``sync``,
gap filling and recovery after a lost broker message."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from chinwag.core.hub import Hub
from chinwag.core.presence import Presence
from chinwag.core.sequencer import PAGE
from chinwag.core.session import Session
from chinwag.core.visibility import visible_after
from chinwag.protocol import frames
from chinwag.protocol.codec import encode
from chinwag.store.base import Appended, EventRecord, Store


def render(record: EventRecord) -> dict[str, Any]:
    """The wire form of a stored event, the same live and replayed."""
    data = record.data
    if record.type == "chat":
        data = {**data, "message_id": record.id}
    return frames.stored(record.type, data, record.room_id, record.seq)


def hidden_from(record: EventRecord, username: str) -> bool:
    """A user is not told of their own membership changes (they got the answer)."""
    return record.type == "presence" and record.data.get("username") == username


class Events:
    def __init__(self, store: Store, hub: Hub, presence: Presence) -> None:
        self.store = store
        self.hub = hub
        self.publisher = hub.publisher
        self.presence = presence
        # room -> (membership version, members): re-read only when the version the
        # store returns (with each append, with each room row) differs, so it is right
        # across processes. A room created again under a deleted one's name never
        # repeats its versions (the store's ``first_members_version``).
        self._members: dict[str, tuple[int, list[str]]] = {}
        # room -> the member read in flight: a connect storm's joins share it.
        self._members_reading: dict[str, asyncio.Future[tuple[int, list[str]]]] = {}
        # (room, after seq) -> the store read in flight: sessions of one room that
        # catch up from the same seq (all of them, after a broker outage) share it.
        self._reading: dict[tuple[str, int], asyncio.Future[list[EventRecord]]] = {}

    async def members(self, room_id: str, version: int | None) -> list[str]:
        cached = self._members.get(room_id)
        if cached is not None and version is not None and cached[0] == version:
            return cached[1]
        fresh = None
        reading = self._members_reading.get(room_id)
        if reading is not None and version is not None:
            # A connect storm's joins share one read; one started before the version
            # this caller saw is of no use to it.
            fresh = await asyncio.shield(reading)
            if fresh[0] != version:
                fresh = None
        if fresh is None:
            reading = asyncio.ensure_future(self.store.rooms.members_versioned(room_id))
            self._members_reading[room_id] = reading
            reading.add_done_callback(partial(_forget, self._members_reading, room_id))
            fresh = await asyncio.shield(reading)
        if len(self._members) > 10_000:
            self._members.clear()
        self._members[room_id] = fresh
        return fresh[1]

    async def append(
        self,
        room_id: str,
        type: str,
        data: dict[str, Any],
        *,
        sender: str | None = None,
        client_message_id: str | None = None,
        require_member: bool = False,
        exclude: str | None = None,
    ) -> Appended:
        """Store, then publish (unless it was a duplicate)."""
        appended = await self.store.events.append(
            room_id,
            type,
            data,
            sender=sender,
            client_message_id=client_message_id,
            require_member=require_member,
        )
        if not appended.duplicate:
            await self.publisher.publish_stored(
                room_id, appended.event.seq, encode(render(appended.event)), exclude
            )
        return appended

    async def append_ai(self, room_id: str, data: dict[str, Any]) -> EventRecord:
        """Store an AI completion. Live, participants who heard the reply from its first
        chunk get it with ``content:""`` (the hub strips it); replayed, or to anyone who
        came in mid-reply, it carries the whole answer."""
        appended = await self.store.events.append(room_id, "chat", data, sender=None)
        record = appended.event
        text, stream = encode(render(record)), data["conversation_id"]
        await self.publisher.publish_stored(room_id, record.seq, text, stream=stream)
        return record

    async def membership(self, room_id: str, username: str, status: frames.PresenceStatus) -> int:
        appended = await self.append(
            room_id, "presence", frames.presence_data(room_id, username, status), exclude=username
        )
        return appended.event.seq

    async def room_deleted(self, room_id: str) -> None:
        text = encode(frames.room_deleted(room_id))
        await self.publisher.control_room(room_id, "deleted", text)

    async def fetch_after(
        self, session: Session, room_id: str, after_seq: int
    ) -> list[tuple[int, str | None]]:
        records = await self._after(room_id, after_seq)
        return [
            (r.seq, None if hidden_from(r, session.username) else encode(render(r)))
            for r in records
        ]

    async def _after(self, room_id: str, after_seq: int) -> list[EventRecord]:
        key = (room_id, after_seq)
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self.store.events.after(room_id, after_seq, PAGE))
            self._reading[key] = reading
            reading.add_done_callback(partial(_forget, self._reading, key))
        # shielded: one reader leaving (its session closed) does not cancel the others'
        return await asyncio.shield(reading)

    async def flush_cursors(self, session: Session) -> None:
        """Persist how far ``session`` has been delivered in each of its rooms."""
        for room_id, cursor in list(session.rooms.items()):
            # A room still being subscribed has no entry yet: its subscription reports
            # the offline queue's receipts itself once the catch-up is done.
            flushed = session.flushed.get(room_id)
            if flushed is not None and cursor.seq > flushed:
                await self.mark_delivered(session.username, room_id, cursor.seq, report=False)
                session.flushed[room_id] = cursor.seq

    async def replay(self, session: Session, room_id: str, after_seq: int) -> int:
        """Send ``session`` every stored event after ``after_seq``; the last seq sent."""
        last = after_seq
        while True:
            batch = await self.fetch_after(session, room_id, last)
            for seq, text in batch:
                last = seq
                if text is not None:
                    await session.send_paced(text, (room_id, seq))
            if len(batch) < PAGE:
                return last

    async def sync(self, session: Session, rooms: dict[str, int]) -> dict[str, int]:
        """Replay each named room after the given seq (duplicates carry their seq),
        never before what the room's history visibility lets the user read; the
        caller has checked the membership of each."""
        done: dict[str, int] = {}
        floors: dict[str, int] = {}
        for room_id in rooms:
            room = await self.store.rooms.get(room_id)
            member = await self.store.rooms.member(room_id, session.username)
            floors[room_id] = (
                0 if room is None else visible_after(room, member, session.identity.is_admin)
            )
        for room_id, after in rooms.items():
            done[room_id] = await self.replay(session, room_id, max(after, floors[room_id]))
        return done

    async def mark_delivered(self, username: str, room_id: str, upto: int, *, report: bool) -> None:
        """Persist how far ``username`` got; with ``report``, tell each sender of a
        chat now delivered (queued while the user was offline) with a receipt."""
        old = await self.store.rooms.advance_delivered(room_id, username, upto)
        if old is None or not report:
            return
        await self._receipts(room_id, old, upto, "delivered", username)

    async def mark_read(self, username: str, room_id: str, upto: int) -> None:
        """``username`` (a member) has read up to ``upto``: receipts to the senders."""
        old = await self.store.rooms.advance_read(room_id, username, upto)
        if old is None:
            return
        await self._receipts(room_id, old, upto, "read", username)

    async def _receipts(
        self, room_id: str, old: int, upto: int, status: frames.ConfirmationStatus, recipient: str
    ) -> None:
        """Receipts for the chats in (old, upto], read PAGE seqs at a time: an offline
        backlog of any length never becomes one unbounded query."""
        for start in range(old, upto, PAGE):
            for chat in await self.store.events.chats_between(
                room_id, start, min(start + PAGE, upto), recipient
            ):
                await self._receipt(chat, status, recipient)

    async def _receipt(
        self, chat: EventRecord, status: frames.ConfirmationStatus, recipient: str
    ) -> None:
        if chat.sender is None or chat.data.get("role") != "user":
            return
        await self.publisher.send_user(
            chat.sender, encode(confirmation(chat, status, recipient=recipient))
        )

    async def history(
        self, room_id: str, before_seq: int | None, limit: int, after_seq: int = 0
    ) -> list[dict[str, Any]]:
        """Stored events before ``before_seq`` and after ``after_seq`` (the reader's
        history floor, see visibility.py), oldest first."""
        return [
            render(r) for r in await self.store.events.before(room_id, before_seq, limit, after_seq)
        ]


def confirmation(
    chat: EventRecord, status: frames.ConfirmationStatus, **extra: Any
) -> frames.Frame:
    """The delivery confirmation of a stored room chat."""
    return frames.room_confirmation(
        chat.client_message_id, chat.id, chat.room_id, chat.seq, status, **extra
    )


def _forget(reads: dict[Any, asyncio.Future[Any]], key: Any, reading: asyncio.Future[Any]) -> None:
    """A shared read is done: later callers start their own."""
    if reads.get(key) is reading:
        del reads[key]
    if not reading.cancelled():
        reading.exception()  # retrieved: every waiter may have gone
