"""The WebSocket endpoint: transport only. Authenticates, then moves frames between
the socket and the chat service. Each connection has one reader (this coroutine),
one writer task draining the session's bounded outbox, and a heartbeat task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from chinwag.core.chat_frames import runs_alongside
from chinwag.core.session import Session
from chinwag.protocol import codec, frames
from chinwag.protocol.codes import CloseCode, ErrorCode
from chinwag.protocol.errors import (
    AuthFailed,
    ChatError,
    InvalidMessage,
    RateLimited,
    TooManyConnections,
)
from chinwag.protocol.messages import FileUpload, JoinRoom, RefreshToken, UploadChunk
from chinwag.server.auth import WEBSOCKET
from chinwag.server.deps import Runtime
from chinwag.server.direct_write import DIRECT_EXTENSION

log = logging.getLogger(__name__)
#: Room chats of one connection handled at once at most: read on while they wait
#: for the store, so a burst from one sender is committed and fanned out in batches.
CHATS_IN_FLIGHT = 64
CHATS_FINISH_SECONDS = 5.0
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def origin_allowed(origin: str | None, host: str | None, secure: bool, allowed: list[str]) -> bool:
    """Same origin as the request's Host, or listed in WS_ALLOWED_ORIGINS; requests
    without Origin (non-browser clients) are allowed."""
    if not origin:
        return True
    origin = origin.rstrip("/")
    if origin in allowed or "*" in allowed:
        return True
    parts = urlsplit(origin)
    if not parts.hostname or parts.scheme not in ("http", "https") or not host:
        return False
    if (parts.scheme == "https") != secure:
        return False
    want = urlsplit(("https://" if secure else "http://") + host)
    return parts.hostname == want.hostname and (parts.port or _DEFAULT_PORTS[parts.scheme]) == (
        want.port or _DEFAULT_PORTS[parts.scheme]
    )


async def websocket_endpoint(ws: WebSocket) -> None:
    rt: Runtime = ws.app.state.runtime
    secure = ws.url.scheme == "wss"
    if not origin_allowed(
        ws.headers.get("origin"), ws.headers.get("host"), secure, rt.settings.ws_allowed_origins
    ):
        await ws.close(code=CloseCode.FORBIDDEN_ORIGIN)  # before accept: HTTP 403
        return
    await ws.accept()
    try:
        claims = rt.tokens.verify(ws.query_params.get("token"), WEBSOCKET)
        user = await rt.store.users.get(claims.identity.username)
        if user is None:
            raise AuthFailed("the user no longer exists")
        if user.disabled:
            raise AuthFailed("this account has been disabled")
        session = await rt.service.open(claims.identity, claims.expires_at)
    except AuthFailed as exc:
        await _refuse(ws, exc, CloseCode.AUTH_FAILED)
        return
    except TooManyConnections as exc:
        await _refuse(ws, exc, CloseCode.TRY_AGAIN_LATER)
        return
    connection = Connection(ws, rt, session)
    try:
        auto_join = _auto_join(ws)
    except InvalidMessage as exc:  # a bad room in the query: say so after connect
        auto_join, connection.query_error = None, exc
    _forget_handshake(ws)
    await connection.run(auto_join)


def _auto_join(ws: WebSocket) -> JoinRoom | None:
    q = ws.query_params
    if not q.get("room_id"):
        return None
    data = {k: q[k] for k in ("room_name", "room_type") if q.get(k)}
    message = codec.decode(
        codec.encode({"type": "join_room", "room_id": q["room_id"], "data": data})
    )
    assert isinstance(message, JoinRoom)
    return message


def _forget_handshake(ws: WebSocket) -> None:
    """Headers and query (with its token) are not needed after admission; dropping
    them keeps an idle socket small and the token out of memory."""
    ws.scope["headers"] = []
    ws.scope["query_string"] = b""
    for cached in ("_headers", "_query_params", "_url"):
        ws.__dict__.pop(cached, None)


async def _writes_a_chunk(frame: object, session: Session, rt: Runtime) -> bool:
    """An upload chunk not received before: the only frame free of the rate limit."""
    return (
        isinstance(frame, FileUpload)
        and isinstance(frame.data, UploadChunk)
        and await rt.service.uploads.is_new_chunk(
            session.username, frame.data.file_id, frame.data.chunk_index
        )
    )


async def _refuse(ws: WebSocket, exc: ChatError, code: int) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(codec.encode(frames.error(exc.code.value, exc.message)))
        await ws.close(code=code, reason=exc.message[:120])


class Connection:
    """One accepted WebSocket. An idle connection costs one task (the ASGI task that
    reads); a writer task exists only while frames wait in the outbox, and token
    expiry is a timer. Heartbeats come from the service, for every session at once."""

    def __init__(self, ws: WebSocket, rt: Runtime, session: Session) -> None:
        self.ws = ws
        self.rt = rt
        self.session = session
        # Room chats being handled, oldest first (see runs_alongside).
        self._chats: deque[asyncio.Task[None]] = deque()
        self._main: asyncio.Task[Any] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._reading = False
        self._interrupted = False
        self.query_error: ChatError | None = None
        extensions = ws.scope.get("extensions", {})
        session.direct = extensions.get(DIRECT_EXTENSION)
        session.on_queued = self._start_writer
        session.on_close = self._interrupt

    async def run(self, auto_join: JoinRoom | None) -> None:
        session, service = self.session, self.rt.service
        self._main = asyncio.current_task()
        self.rt.sockets.add(self)
        self._arm_expiry()
        try:
            await service.attach(session, auto_join)
            if self.query_error is not None:
                self._send_error(self.query_error, None)
            await self._read()
        except asyncio.CancelledError:
            if not self._interrupted:
                raise  # cancelled from outside (server stopping): let it propagate
            assert self._main is not None
            self._main.uncancel()
        except ChatError as exc:
            self._send_error(exc, None)
        except Exception:
            log.exception("connection of %s failed", session.username)
            session.request_close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            if self._expiry is not None:
                self._expiry.cancel()
            await self._finish_chats()
            await service.close(session)
            await self._close_socket()
            service.upkeep.sent_by_closed += session.sent
            self.rt.sockets.discard(self)
            self.rt.sockets_closed.set()

    async def _finish_chats(self) -> None:
        """The chats read before the socket closed are still stored and confirmed
        (bounded: past the deadline they are cancelled, unconfirmed, for the client
        to send again)."""
        if not self._chats:
            return
        try:
            async with asyncio.timeout(CHATS_FINISH_SECONDS):
                await asyncio.shield(self._settle_chats())
        except TimeoutError:
            for chat in self._chats:
                chat.cancel()
            await asyncio.wait(list(self._chats))
        self._chats.clear()

    def _interrupt(self) -> None:
        """A close was requested (slow reader, token expiry, shutdown): stop reading.
        Only a pending ``receive`` is cancelled; a frame being handled finishes and
        the read loop then sees the close code."""
        if self._reading and self._main is not None and not self._interrupted:
            self._interrupted = True
            self._main.cancel()

    async def _close_socket(self) -> None:
        session = self.session
        session.outbox.close()
        self._start_writer()  # flush what is still queued (bounded below)
        writer = self._writer
        if writer is not None and not writer.done():
            try:
                async with asyncio.timeout(2):
                    await asyncio.shield(writer)
            except TimeoutError:
                writer.cancel()
        if session.close_code is not None and self.ws.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.close(code=session.close_code, reason=session.close_reason)

    def _start_writer(self) -> None:
        if (self._writer is None or self._writer.done()) and len(self.session.outbox):
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        session, ws = self.session, self.ws
        try:
            while (text := session.outbox.pop()) is not None:
                session.writing = True
                await ws.send_text(text)
                session.sent += 1
                session.writing = False
        except Exception:  # the peer went away: the reader sees the disconnect
            session.outbox.close()
        finally:
            session.writing = False

    async def _read(self) -> None:
        ws, session = self.ws, self.session
        while session.close_code is None:
            self._reading = True
            try:
                message = await ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            finally:
                self._reading = False
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            try:
                if raw is None:  # a binary frame: the protocol is JSON text
                    raise InvalidMessage(
                        "text frames only", details=[{"field": "", "error": "binary frame"}]
                    )
                frame = codec.decode(raw)
            except ChatError as exc:
                if self._limited(None):
                    continue
                self._send_error(exc, None)
                continue
            free = await _writes_a_chunk(frame, session, self.rt)
            if not free and self._limited(frame):
                continue
            if runs_alongside(frame):
                self._chats.append(asyncio.ensure_future(self._handle(frame, free)))
                if len(self._chats) >= CHATS_IN_FLIGHT:
                    await asyncio.wait([self._chats.popleft()])
                continue
            await self._settle_chats()  # the chats read before this frame act first
            await self._handle(frame, free)

    async def _handle(self, frame: Any, free: bool) -> None:
        session = self.session
        try:
            if isinstance(frame, RefreshToken):
                self._refresh(frame)
            else:
                await self.rt.service.handle(session, frame)
        except ChatError as exc:
            # New upload chunks skip the rate limit only while they are useful: a
            # failing one counts, so a flood of bad chunks is limited too.
            if free and (retry := session.limiter.check()):
                self._send_error(
                    RateLimited("rate limit exceeded", retry_after=retry), frame.message_id
                )
                return
            self._send_error(exc, frame.message_id)
        except Exception:
            log.exception("handling %s from %s failed", frame.type, session.username)
            self._send_error(ChatError("internal error"), frame.message_id)

    async def _settle_chats(self) -> None:
        """Wait for the chats in flight (each answers its own errors)."""
        chats = self._chats
        while chats:
            await asyncio.wait(list(chats))
            while chats and chats[0].done():
                chats.popleft()

    def _limited(self, frame: object) -> bool:
        """Apply the frame rate limit."""
        retry = self.session.limiter.check()
        if retry == 0:
            return False
        self.rt.service.stats.rejected_frames += 1
        message_id = getattr(frame, "message_id", None)
        self.session.send(
            frames.error(
                ErrorCode.RATE_LIMIT.value,
                "rate limit exceeded",
                message_id=message_id,
                retry_after=retry,
            )
        )
        return True

    def _send_error(self, exc: ChatError, message_id: str | None) -> None:
        message_id = message_id or exc.message_id
        self.session.send(
            frames.error(
                exc.code.value, exc.message, message_id=message_id, details=exc.details, **exc.extra
            )
        )

    def _refresh(self, frame: RefreshToken) -> None:
        claims = self.rt.tokens.verify(frame.data.token, WEBSOCKET)
        if claims.identity.username != self.session.username:
            raise AuthFailed("the token belongs to another user")
        self.session.token_expires_at = claims.expires_at
        self._arm_expiry()
        self.session.send(frames.token_refreshed(claims.expires_at))

    def _arm_expiry(self) -> None:
        """Close with 4401 when the token expires (re-armed by refresh_token)."""
        if self._expiry is not None:
            self._expiry.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.session.token_expires_at - time.time())
        self._expiry = loop.call_at(loop.time() + delay, self._expired)

    def _expired(self) -> None:
        session = self.session
        session.send(
            frames.error(
                ErrorCode.AUTH_FAILED.value, "the token has expired; reconnect with a new one"
            )
        )
        session.request_close(CloseCode.AUTH_FAILED, "token expired")
