"""The ``chat`` frame: a room chat (stored, fanned out, maybe an AI question) or a
roomless question for the AI."""

from __future__ import annotations

from typing import Any

from chinwag.core.ai_admission import Plan
from chinwag.core.assistant import Assistant
from chinwag.core.events import Events, confirmation
from chinwag.core.message_ops import MessageOps, asks_assistant
from chinwag.core.presence import Presence
from chinwag.core.rooms import Rooms
from chinwag.core.session import Identity, Session
from chinwag.core.typing_state import TypingTracker
from chinwag.protocol import frames
from chinwag.protocol import messages as m
from chinwag.protocol.errors import InvalidMessage
from chinwag.store.base import EventRecord, Store


def runs_alongside(frame: object) -> bool:
    """A room chat that goes straight to its store append, awaiting nothing before
    it (no reply to look up, no AI question to admit). A connection may have many
    such chats in flight: they reach the store in the order they were read, and the
    store's group commit gives them seqs in that order. Any other frame waits until
    the chats read before it are done."""
    return (
        isinstance(frame, m.Chat)
        and frame.room_id is not None
        and frame.data.reply_to is None
        and not asks_assistant(frame.data).ai
    )


class ChatFrames:
    def __init__(
        self,
        store: Store,
        events: Events,
        rooms: Rooms,
        presence: Presence,
        typing: TypingTracker,
        message_ops: MessageOps,
        assistant: Assistant,
    ) -> None:
        self.store = store
        self.events = events
        self.rooms = rooms
        self.presence = presence
        self.typing = typing
        self.message_ops = message_ops
        self.assistant = assistant

    async def handle(self, session: Session, msg: m.Chat) -> None:
        if msg.room_id is None and not msg.data.ai:
            raise InvalidMessage(
                "a chat without room_id is for the AI: set room_id or ai:true",
                details=[{"field": "room_id", "error": "missing"}],
            )
        if msg.room_id is not None:
            await self._room_chat(session, msg)
        else:
            await self._ai_chat(session, msg)

    async def _room_chat(self, session: Session, msg: m.Chat) -> None:
        who, data, room_id = session.identity, asks_assistant(msg.data), msg.room_id
        assert room_id is not None
        reply = await self.message_ops.reply_fields(room_id, data.reply_to)
        plan = None
        if data.ai and msg.message_id is not None:
            # Checked first so a retry does not open a second conversation.
            prior = await self._prior(room_id, who.username, msg.message_id)
            if prior is not None:
                session.send(confirmation(prior, "delivered", queued_for=[], duplicate=True))
                return
        if data.ai:
            await self.rooms.require_member(room_id, who.username)
            plan = await self.assistant.admit(
                who, data, data.message, data.conversation_id, room_id
            )
        try:
            await self._room_chat_store(session, msg, plan, reply)
        except BaseException:
            if plan is not None:
                await self.assistant.release(plan)
            raise

    async def _room_chat_store(
        self, session: Session, msg: m.Chat, plan: Plan | None, reply: dict[str, Any]
    ) -> None:
        who, data, room_id = session.identity, msg.data, msg.room_id
        assert room_id is not None
        payload = {
            "role": "user",
            "content": data.message,
            "username": who.username,
            "user_id": who.user_id,
            "client_message_id": msg.message_id,
            "conversation_id": plan.conv.id if plan else data.conversation_id,
            "timestamp": frames.utc_now(),
            **reply,
        }
        appended = await self.events.append(
            room_id,
            "chat",
            payload,
            sender=who.username,
            client_message_id=msg.message_id,
            require_member=True,
        )
        record = appended.event
        if appended.duplicate:
            session.send(confirmation(record, "delivered", queued_for=[], duplicate=True))
            if plan is not None and self.assistant is not None:
                await self.assistant.release(plan)
            return
        if self.typing.is_typing(room_id, who.username):
            await self.typing.stop(room_id, who.username)
        online = await self.presence.here(room_id)
        members = await self.events.members(room_id, appended.members_version)
        queued = [u for u in members if u not in online]
        session.send(confirmation(record, "delivered", queued_for=queued))
        await self.message_ops.notify_mentions(record, members)
        if plan is not None:
            await self._add_question(plan, who, data.message, msg.message_id)
            self.assistant.start(plan)

    async def _add_question(
        self, plan: Plan, who: Identity, text: str, message_id: str | None
    ) -> int:
        """Store the user's turn the planned reply answers; its id."""
        turn = await self.store.conversations.add_turn(
            plan.conv.id,
            "user",
            text,
            username=who.username,
            client_message_id=message_id,
            parent_id=plan.parent_id,
        )
        plan.answer_to = turn.id
        return turn.id

    async def _prior(self, room_id: str, username: str, client_id: str) -> EventRecord | None:
        return await self.store.events.find(room_id, username, client_id)

    async def _ai_chat(self, session: Session, msg: m.Chat) -> None:
        who, data = session.identity, msg.data
        if msg.message_id is not None:
            prior = await self.store.conversations.find_turn(who.username, msg.message_id)
            if prior is not None:
                session.send(
                    frames.ai_confirmation(
                        msg.message_id, prior.id, prior.conversation_id, duplicate=True
                    )
                )
                return
        plan = await self.assistant.admit(who, data, data.message, data.conversation_id, None)
        try:
            turn_id = await self._add_question(plan, who, data.message, msg.message_id)
        except BaseException:
            await self.assistant.release(plan)
            raise
        session.send(frames.ai_confirmation(msg.message_id, turn_id, plan.conv.id))
        self.assistant.start(plan)
