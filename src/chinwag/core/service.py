"""The chat service: a connection's life cycle and one handler per message type.

The WebSocket endpoint authenticates, calls ``open``/``attach``, feeds every decoded
frame to ``handle`` and calls ``close`` at the end; everything in between is here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from chinwag.broker.base import ExpiringState, PubSub
from chinwag.core import ai_branches
from chinwag.core.ai_admission import Admission
from chinwag.core.assistant import Assistant
from chinwag.core.chat_frames import ChatFrames
from chinwag.core.events import Events
from chinwag.core.hub import Hub
from chinwag.core.message_ops import MessageOps
from chinwag.core.presence import Presence
from chinwag.core.ratelimit import SlidingWindow
from chinwag.core.rooms import Joined, Rooms
from chinwag.core.session import Identity, Session
from chinwag.core.stats import NodeStats
from chinwag.core.typing_state import TypingTracker, typing_lease
from chinwag.core.upkeep import Upkeep
from chinwag.core.upload_frames import UploadFrames
from chinwag.core.uploads import UploadManager
from chinwag.core.wiring import AISetup, Limits
from chinwag.protocol import frames
from chinwag.protocol import messages as m
from chinwag.protocol.codec import encode
from chinwag.protocol.codes import CloseCode, ErrorCode
from chinwag.protocol.errors import (
    ChatError,
    NotFound,
    NotImplementedYet,
    NotInRoom,
    TooManyConnections,
)
from chinwag.store.base import Store

log = logging.getLogger(__name__)
SIGN_OUT = "sign_out"  # control command: close the user's connections (no room)


class ChatService:
    """Built in one step with everything it serves; it is also the hub's delegate
    (store reads for gap filling, membership commands from a user's channel)."""

    def __init__(
        self,
        store: Store,
        pubsub: PubSub,
        state: ExpiringState,
        limits: Limits,
        node_id: str,
        *,
        ai: AISetup,
        uploads: UploadManager,
    ) -> None:
        self.store = store
        self.pubsub = pubsub
        self.state = state
        self.limits = limits
        self.node_id = node_id
        self.stats = NodeStats()
        self.hub = Hub(pubsub, self)
        self.publisher = self.hub.publisher
        self.presence = Presence(state, self.hub, limits.presence_ttl, limits.single_process)
        self.events = Events(store, self.hub, self.presence)
        self.rooms = Rooms(store, self.events, uploads.delete_published, limits.max_rooms_per_user)
        self.message_ops = MessageOps(store, self.events)
        self.typing = TypingTracker(limits.typing_timeout, self._announce_typing)
        self.assistant = Assistant(
            Admission(ai.catalog, store, ai.admission), store, self.events, self.stats, ai.config
        )
        self.chat = ChatFrames(
            store,
            self.events,
            self.rooms,
            self.presence,
            self.typing,
            self.message_ops,
            self.assistant,
        )
        self.uploads = uploads
        self._upload_frames = UploadFrames(uploads, self.rooms, self.events, store, self.stats)
        self.upkeep = Upkeep(
            pubsub,
            state,
            self.hub,
            self.presence,
            self.events,
            uploads,
            self.stats,
            limits,
            node_id,
        )
        self._handlers: dict[str, Callable[[Session, Any], Awaitable[None]]] = {
            "ping": self._ping,
            "chat": self.chat.handle,
            "join_room": self._join_room,
            "leave_room": self._leave_room,
            "delete_room": self._delete_room,
            "typing": self._typing,
            "read_receipt": self._read_receipt,
            "sync": self._sync,
            "cancel": self._cancel,
            "file_upload": self._upload_frames.handle,
            "regenerate": self._ai_branch,
            "edit": self._ai_branch,
            "edit_message": self.message_ops.edit,
            "delete_message": self.message_ops.delete,
            "react": self.message_ops.react,
        }

    # ---- service life cycle -------------------------------------------------

    async def start(self) -> None:
        await self.upkeep.start()

    async def stop(self) -> None:
        await self.upkeep.stop()
        await self.assistant.close()
        self.typing.close()
        self.hub.leases.close()

    async def close_all(self, timeout: float = 5.0) -> None:
        """Close every connection with 1012 (service restart) and wait for them."""
        for session in list(self.hub.sessions.values()):
            session.request_close(CloseCode.SERVICE_RESTART, "server restarting")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.hub.sessions:
                    self.hub.emptied.clear()
                    await self.hub.emptied.wait()

    # ---- connection life cycle ---------------------------------------------

    async def open(self, identity: Identity, token_expires_at: float) -> Session:
        """A new session for an authenticated user, or TooManyConnections."""
        if len(self.hub.sessions) >= self.limits.max_connections:
            raise TooManyConnections("the server is at its connection limit; retry later")
        if (
            await self.presence.connections_of(identity.username)
            >= self.limits.max_connections_per_user
        ):
            raise TooManyConnections(
                f"at most {self.limits.max_connections_per_user} connections per user"
            )
        limiter = SlidingWindow(self.limits.rate_limit_requests, self.limits.rate_limit_window)
        return Session(
            identity,
            outbox_capacity=self.limits.outbox_size,
            limiter=limiter,
            token_expires_at=token_expires_at,
        )

    async def attach(self, session: Session, auto_join: m.JoinRoom | None) -> None:
        """Join the room from the query (so it exists once the client hears of the
        connection), send ``connect``, subscribe the session to its rooms with
        everything it missed, announce it online, then answer the query's join."""
        self.stats.total_connections += 1
        joined: Joined | None = None
        refused: ChatError | None = None
        if auto_join is not None:
            self.stats.messages_received += 1
            try:
                joined = await self._join(session, auto_join)
            except ChatError as exc:  # answered like a join_room frame; the socket stays
                refused = exc
        session.send(frames.connect(session.id, session.identity.user_id, session.username))
        await self.hub.add(session)
        first = await self.presence.connect(session)
        new_room = joined.room.room_id if joined is not None and joined.new_member else None
        for room, member in await self.store.rooms.rooms_of(session.username):
            if room.room_id == new_room:
                continue  # subscribed below, as a join_room frame would
            await self._subscribe(session, room.room_id, member.delivered_seq, report=True)
            if first:
                await self._announce_presence(room.room_id, session.username, "online")
        if refused is not None:
            session.send(frames.error(refused.code.value, refused.message, details=refused.details))
        elif auto_join is not None and joined is not None:
            await self._joined(session, auto_join, joined)

    async def close(self, session: Session) -> None:
        await session.cancel_tasks()
        await self.events.flush_cursors(session)
        rooms = list(session.rooms)
        for room_id in rooms:
            await self.presence.exit(room_id, session)
        await self.hub.remove(session)
        if session.username not in self.hub.by_user:
            await self.typing.stop_user(session.username)
        if await self.presence.disconnect(session):
            for room_id in rooms:
                await self._announce_presence(room_id, session.username, "offline")

    async def _subscribe(
        self, session: Session, room_id: str, after_seq: int, *, report: bool
    ) -> None:
        last = await self.hub.join(session, room_id, after_seq)
        await self.presence.enter(room_id, session)
        session.flushed[room_id] = after_seq
        if last > after_seq:
            await self.events.mark_delivered(session.username, room_id, last, report=report)
            session.flushed[room_id] = last

    async def _unsubscribe(self, session: Session, room_id: str) -> None:
        await self.hub.leave(session, room_id)
        await self.presence.exit(room_id, session)
        session.flushed.pop(room_id, None)

    async def sign_out(self, username: str, reason: str) -> None:
        """Close every connection of ``username``, on every process, with 4401
        (an admin disabled the account: its tokens no longer work)."""
        await self.publisher.control_user(username, SIGN_OUT, "", 0)
        log.info("signed out every connection of '%s': %s", username, reason)

    # ---- the hub's delegate ---------------------------------------------------

    async def control(self, session: Session, command: str, room_id: str, seq: int) -> None:
        if command == SIGN_OUT:
            session.send(
                frames.error(ErrorCode.AUTH_FAILED.value, "this account has been disabled")
            )
            session.request_close(CloseCode.AUTH_FAILED, "account disabled")
        elif command == "subscribe" and room_id not in session.rooms:
            await self._subscribe(session, room_id, seq, report=False)
        elif command == "unsubscribe" and room_id in session.rooms:
            await self._unsubscribe(session, room_id)
            if session.username not in self.hub.room_users.get(room_id, {}):
                await self.typing.stop(room_id, session.username)

    async def fetch_after(
        self, session: Session, room_id: str, after_seq: int
    ) -> list[tuple[int, str | None]]:
        return await self.events.fetch_after(session, room_id, after_seq)

    # ---- frames ---------------------------------------------------------------

    async def handle(self, session: Session, message: Any) -> None:
        """Act on one decoded client frame. Raises ChatError for the client to see."""
        self.stats.messages_received += 1
        handler = self._handlers.get(message.type)
        if handler is None:
            raise NotImplementedYet(f"'{message.type}' is not handled here")
        await handler(session, message)

    async def _ping(self, session: Session, msg: m.Ping) -> None:
        session.send(frames.pong())

    async def _join_room(self, session: Session, msg: m.JoinRoom) -> None:
        await self._joined(session, msg, await self._join(session, msg))

    async def _join(self, session: Session, msg: m.JoinRoom) -> Joined:
        assert msg.room_id is not None
        return await self.rooms.join(
            session.identity,
            msg.room_id,
            msg.data.room_name,
            msg.data.room_type,
            msg.data.history_visibility,
        )

    async def _joined(self, session: Session, msg: m.JoinRoom, joined: Joined) -> None:
        """Subscribe the user's connections here to the room just joined, tell its
        connections elsewhere, answer the join."""
        assert msg.room_id is not None
        if joined.new_member:
            for s in list(self.hub.by_user.get(session.username, ())):
                if msg.room_id not in s.rooms:
                    await self._subscribe(s, msg.room_id, joined.seq, report=False)
        elif msg.room_id not in session.rooms:
            # A member's connections are subscribed to the room when they open (or
            # when the membership began): only this one may be missing it (e.g. it
            # opened while the membership was being added).
            await self._subscribe(
                session,
                msg.room_id,
                await self._member_seq(msg.room_id, session.username),
                report=False,
            )
        if joined.new_member:  # the user's connections on other processes follow
            await self.publisher.control_user(
                session.username, "subscribe", msg.room_id, joined.seq
            )
        room = joined.room
        session.send(
            frames.joined_room(
                room.room_id,
                room.room_name,
                room.room_type,
                await self.presence.participants(room.room_id, joined.members),
                joined.members,
            )
        )

    async def _member_seq(self, room_id: str, username: str) -> int:
        member = await self.store.rooms.member(room_id, username)
        return member.delivered_seq if member else 0

    async def _leave_room(self, session: Session, msg: m.LeaveRoom) -> None:
        assert msg.room_id is not None
        await self.typing.stop(msg.room_id, session.username)
        await self.rooms.leave(session.identity, msg.room_id)
        for s in list(self.hub.by_user.get(session.username, ())):
            await self._unsubscribe(s, msg.room_id)
        session.send(frames.left_room(msg.room_id))

    async def _delete_room(self, session: Session, msg: m.DeleteRoom) -> None:
        assert msg.room_id is not None
        await self.rooms.delete(session.identity, msg.room_id)
        if msg.room_id not in session.rooms:  # not a participant: answer directly
            session.send(frames.room_deleted(msg.room_id))

    async def _typing(self, session: Session, msg: m.Typing) -> None:
        assert msg.room_id is not None
        if msg.room_id not in session.rooms:
            raise NotInRoom(f"you are not in room '{msg.room_id}'")
        if msg.data.is_typing:
            await self.typing.start(msg.room_id, session.username, session.identity.user_id)
        else:
            await self.typing.stop(msg.room_id, session.username)

    async def _announce_typing(
        self, room_id: str, username: str, user_id: int | str, on: bool
    ) -> None:
        name, ttl = f"typing:{username}", self.typing.lease_ttl
        text, lease = typing_lease(room_id, username, user_id, on, name, ttl)
        await self.publisher.publish_ephemeral(room_id, text, exclude=username, lease=lease)

    async def _announce_presence(
        self, room_id: str, username: str, status: frames.PresenceStatus
    ) -> None:
        text = encode(frames.presence(room_id, username, status))
        await self.publisher.publish_ephemeral(room_id, text, exclude=username)

    async def _read_receipt(self, session: Session, msg: m.ReadReceipt) -> None:
        assert msg.room_id is not None
        await self.rooms.require_member(msg.room_id, session.username)
        await self.events.mark_read(session.username, msg.room_id, msg.data.seq)

    async def _sync(self, session: Session, msg: m.Sync) -> None:
        for room_id in msg.data.rooms:
            await self.rooms.require_member(room_id, session.username, room_id=room_id)
        done = await self.events.sync(session, dict(msg.data.rooms))
        session.send(frames.synced(done))

    async def _cancel(self, session: Session, msg: m.Cancel) -> None:
        if not await self.assistant.cancel(session.identity, msg.data.conversation_id):
            raise NotFound(
                f"no reply is being written in conversation {msg.data.conversation_id}",
                conversation_id=msg.data.conversation_id,
            )

    async def _ai_branch(self, session: Session, msg: m.Regenerate | m.Edit) -> None:
        if isinstance(msg, m.Regenerate):
            await ai_branches.regenerate(self.assistant, self.store, session, msg)
        else:
            await ai_branches.edit(self.assistant, self.store, session, msg)
