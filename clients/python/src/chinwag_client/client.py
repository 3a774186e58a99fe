"""``Client``: a chinwag connection that survives the network.

Invariants, for a reader of this module:
- one task (``_run``) owns the WebSocket: it connects, reads, and reconnects; every
  other coroutine only sends through ``_transmit`` and waits on futures;
- a request (chat, join, upload step …) stays in ``_pending`` until its answer
  arrives; after a reconnect every pending request marked ``resend`` is sent again,
  unchanged (same ``message_id``), after the ``sync`` that resumes the rooms;
- stored room events reach the application only through ``RoomOrder``, so each is
  handed over once, in seq order, whatever was replayed twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.protocol import State

from chinwag_client import ai, rest, uploads
from chinwag_client.auth import Credentials
from chinwag_client.backoff import AUTH_FAILED, Backoff
from chinwag_client.connection import dumps, loads
from chinwag_client.errors import ChinwagError, ClientClosed, RequestError, SignInError
from chinwag_client.models import (
    Change,
    Confirmation,
    Event,
    Frame,
    Reply,
    Room,
    SearchResult,
    UploadedFile,
)
from chinwag_client.ordering import RoomOrder

log = logging.getLogger("chinwag_client")
WS_PATH = "/api/v1/ws/ws"
_INTERNAL = frozenset({"connect", "pong", "system", "refresh_token"})
_CLOSED = object()


class Dropped(Exception):
    """The connection dropped before a request that is not resent was answered."""


@dataclass(eq=False)
class _Pending:
    frame: Frame
    is_answer: Callable[[Frame], bool]
    future: asyncio.Future[Frame]
    resend: bool


class Client:
    """Sign in, connect, and stay connected until the ``async with`` block ends.

    ``backoff`` sets the reconnect delays; ``open_timeout`` bounds each connection
    attempt and the first connection of ``async with``."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        backoff: Backoff | None = None,
        open_timeout: float = 10,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.backoff = backoff or Backoff()
        self.open_timeout = open_timeout
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=30)
        self.credentials = Credentials(self.http, username, password)
        self.order = RoomOrder()
        self.rooms: set[str] = set()
        self.connections = 0  # how many times a connection was opened (1 = never dropped)
        self.close_codes: list[int | None] = []  # how each connection attempt ended
        self._pending: dict[str, _Pending] = {}
        self._listeners: list[Callable[[Frame], bool]] = []
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._syncing: set[str] = set()
        self._run_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._closing = False
        self.user_id: int | None = None

    # ---- lifetime ------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Sign in and wait for the first connection (``SignInError`` if refused)."""
        await self.credentials.sign_in()
        self._run_task = asyncio.create_task(self._run(), name=f"chinwag-client-{self.username}")
        try:
            await self.wait_connected(self.open_timeout)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._closing = True
        if self._run_task is not None:
            self._run_task.cancel()
            with contextlib.suppress(BaseException):
                await self._run_task
        for task in list(self._background):
            task.cancel()
        self._fail_all(ClientClosed("the client is closed"), everything=True)
        self._events.put_nowait(_CLOSED)
        await self.http.aclose()

    async def wait_connected(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            while not self._connected.is_set():
                self._raise_if_failed()
                waiter = asyncio.ensure_future(self._connected.wait())
                assert self._run_task is not None
                await asyncio.wait({waiter, self._run_task}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
        self._raise_if_failed()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise ClientClosed(f"the client gave up: {self._failure}") from self._failure
        if self._closing:
            raise ClientClosed("the client is closed")

    # ---- what the application calls -------------------------------------------------

    def events(self) -> AsyncIterator[Event]:
        """Every event for the application. Stored room events come exactly once, in
        seq order per room; the iterator ends when the client closes."""
        return self._iterate_events()

    async def _iterate_events(self) -> AsyncIterator[Event]:
        while True:
            item = await self._events.get()
            if item is _CLOSED:
                self._events.put_nowait(_CLOSED)  # for any other iterator
                if self._failure is not None:
                    raise ClientClosed(f"the client gave up: {self._failure}") from self._failure
                return
            yield item

    async def join(
        self, room_id: str, room_type: str = "shared", room_name: str | None = None
    ) -> Room:
        data = {"room_id": room_id, "room_type": room_type}
        if room_name is not None:
            data["room_name"] = room_name
        answer = await self.request(
            {"type": "join_room", "data": data},
            lambda f: (
                f["type"] == "join_room"
                and f.get("room_id") == room_id
                and "joined_at" in f.get("data", {})
            ),
        )
        self.rooms.add(room_id)
        return Room.from_data(answer["data"])

    async def leave(self, room_id: str) -> None:
        await self.request(
            {"type": "leave_room", "data": {"room_id": room_id}},
            lambda f: f["type"] == "leave_room" and f.get("room_id") == room_id,
        )
        self.rooms.discard(room_id)
        self.order.forget(room_id)

    async def send(
        self,
        room_id: str,
        text: str,
        ai: bool = False,
        reply_to: int | None = None,
        *,
        message_id: str | None = None,
        **options: Any,
    ) -> Confirmation:
        """Store ``text`` in the room. Resent with the same ``message_id`` after a
        drop until the server confirms it (a resend is never stored twice).
        ``reply_to``: the server id of the message (same room) this one answers."""
        if reply_to is not None:
            options["reply_to"] = reply_to
        mid = message_id or new_message_id()
        frame = {
            "type": "chat",
            "room_id": room_id,
            "message_id": mid,
            "data": {"message": text, "ai": ai, **options},
        }
        answer = await self.request(frame, lambda f: _confirms(f, mid))
        return Confirmation.from_data(answer["data"])

    async def edit(self, room_id: str, message_id: int, text: str) -> Change:
        """Replace the text of one's own message (``message_id``: its server id);
        every participant gets a stored ``message_edited``. ``FORBIDDEN`` for
        someone else's message, ``NOT_FOUND`` for an unknown or deleted one."""
        return await self._change(
            room_id, "edit_message", {"message_id": message_id, "content": text}
        )

    async def delete(self, room_id: str, message_id: int) -> Change:
        """Delete a message (its author, the room's owner or an admin): its text is
        gone from the server; every participant gets a stored ``message_deleted``."""
        return await self._change(room_id, "delete_message", {"message_id": message_id})

    async def react(self, room_id: str, message_id: int, emoji: str, on: bool = True) -> Change:
        """Give (``on``) or take back a reaction; every participant gets a stored
        ``reaction``. One per user and emoji: a repeat is answered ``unchanged``."""
        return await self._change(
            room_id, "react", {"message_id": message_id, "emoji": emoji, "on": on}
        )

    async def _change(self, room_id: str, kind: str, data: dict[str, Any]) -> Change:
        """Like ``send``: resent with the same ``message_id`` after a drop until
        confirmed; the server carries it out once (a resend answers ``duplicate``)."""
        mid = new_message_id()
        frame = {"type": kind, "room_id": room_id, "message_id": mid, "data": data}
        answer = await self.request(frame, lambda f: _confirms(f, mid))
        return Change.from_data(answer["data"])

    async def search(
        self, q: str, room_id: str | None = None, limit: int | None = None
    ) -> list[SearchResult]:
        """Chats containing every word of ``q``, newest first, in the rooms the user
        belongs to (or only ``room_id``: ``FORBIDDEN`` if not a member). ``limit``:
        1 to 100, the server's default 20."""
        return await rest.search(self, q, room_id, limit)

    async def history(
        self, room_id: str, before_seq: int | None = None, limit: int | None = None
    ) -> list[Event]:
        """A page of the room's stored events before ``before_seq`` (default: the
        newest), oldest first: chats with their latest text, ``edited_at``,
        ``reactions``, or as tombstones (``deleted``). ``limit``: 1 to 500, default 50."""
        return await rest.history(self, room_id, before_seq, limit)

    async def ask(
        self,
        text: str,
        conversation_id: int | None = None,
        model: str | None = None,
        room_id: str | None = None,
        **options: Any,
    ) -> Reply:
        """Ask the AI and wait for the whole reply."""
        stream = ai.AskStream(self, text, conversation_id, model, room_id, options)
        async for _ in stream:
            pass
        assert stream.reply is not None
        return stream.reply

    def ask_stream(
        self,
        text: str,
        conversation_id: int | None = None,
        model: str | None = None,
        room_id: str | None = None,
        **options: Any,
    ) -> ai.AskStream:
        """Ask the AI; iterate to get the text chunks as they come (``.reply`` holds
        the whole reply once the iteration ends)."""
        return ai.AskStream(self, text, conversation_id, model, room_id, options)

    async def upload(
        self,
        path: str,
        room_id: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> UploadedFile:
        """Upload a file; after a drop, asks ``status`` and sends only what is missing."""
        return await uploads.upload(self, path, room_id, progress)

    async def my_rooms(self) -> list[str]:
        """The rooms the user belongs to (from the server when it lists them)."""
        r = await self.http.get(
            "/api/v1/ws/rooms",
            params={"scope": "mine"},
            headers=await self.credentials.auth_headers(),
        )
        if r.status_code == 200:
            body = r.json()
            items = body.get("rooms", body) if isinstance(body, dict) else body
            return sorted(str(item["room_id"]) for item in items)
        return sorted(self.rooms | set(self.order.last))

    # ---- requests ---------------------------------------------------------------------

    async def request(
        self,
        frame: Frame,
        is_answer: Callable[[Frame], bool],
        *,
        resend: bool = True,
        timeout: float | None = None,
    ) -> Frame:
        """Send ``frame`` and wait for the first frame ``is_answer`` accepts; an
        ``error`` echoing its ``message_id`` raises ``RequestError``. With ``resend``
        the frame is sent again after each reconnect until answered; without, a drop
        raises ``Dropped``."""
        self._raise_if_failed()
        mid = frame.setdefault("message_id", new_message_id())
        pending = _Pending(frame, is_answer, asyncio.get_running_loop().create_future(), resend)
        self._pending[mid] = pending
        try:
            if self._ws is not None:
                await self._transmit(frame)
            elif not resend:
                raise Dropped("not connected")
            async with asyncio.timeout(timeout):
                return await pending.future
        finally:
            self._pending.pop(mid, None)

    def listen(self, listener: Callable[[Frame], bool]) -> Callable[[], None]:
        """Call ``listener`` with every frame received (before ordering); a frame it
        returns True for is its own and not handed to ``events()`` (unless stored).
        Returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def _transmit(self, frame: Frame) -> None:
        ws = self._ws
        if ws is None or ws.state is not State.OPEN:
            return  # sent again (or failed) when the next connection opens
        with contextlib.suppress(ConnectionClosed):
            await ws.send(dumps(frame))

    # ---- the connection task -----------------------------------------------------------

    async def _run(self) -> None:
        attempt, code = 0, None
        try:
            while True:
                code, was_open = await self._connect_once(sign_in=code == AUTH_FAILED)
                self.close_codes.append(code)
                attempt = self.backoff.next_attempt(attempt, code, was_open)
                delay = 0.0 if was_open and attempt == 0 else self.backoff.delay(attempt)
                log.info("chinwag connection ended (%s); reconnecting in %.2f s", code, delay)
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise
        except SignInError as exc:  # a refused password: reconnecting cannot help
            self._failure = exc
            self._fail_all(ClientClosed(f"the client gave up: {exc}"), everything=True)
            self._events.put_nowait(_CLOSED)

    async def _connect_once(self, sign_in: bool) -> tuple[int | None, bool]:
        """One connection, from opening to its end: (close code, whether it opened).
        ``sign_in``: the last one was refused for its token (4401)."""
        try:
            if sign_in:
                await self.credentials.sign_in()
            token = await self.credentials.ws_token()
            ws = await connect(
                self._url(token),
                open_timeout=self.open_timeout,
                max_size=16 * 2**20,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
            )
        except InvalidStatus as exc:
            return (4401 if exc.response.status_code == 401 else None), False
        except SignInError:
            raise
        except (
            OSError,
            TimeoutError,
            InvalidHandshake,
            httpx.TransportError,
            ChinwagError,
        ) as exc:  # the server is down or busy: try again later
            log.debug("connecting failed: %r", exc)
            return None, False
        try:
            first = loads(await asyncio.wait_for(ws.recv(), self.open_timeout))
            if first.get("type") != "connect":  # refused: an error, then the close
                await asyncio.wait_for(ws.wait_closed(), self.open_timeout)
                return ws.close_code, False
            self.user_id = first["data"].get("user_id")
            await self._opened(ws)
            refresher = asyncio.create_task(self._refresh_tokens(ws))
            try:
                async for raw in ws:
                    await self._dispatch(loads(raw))
            finally:
                refresher.cancel()
        except (ConnectionClosed, TimeoutError, OSError):
            pass
        finally:
            self._closed_connection()
            with contextlib.suppress(Exception):
                await ws.close()
        return ws.close_code, True

    def _url(self, token: str) -> str:
        scheme, rest = self.base_url.split("://", 1)
        ws_scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
        return f"{ws_scheme}://{rest}{WS_PATH}?{urlencode({'token': token})}"

    async def _opened(self, ws: ClientConnection) -> None:
        """Resume: sync every room from the last seq handed over, then resend."""
        self._ws = ws
        self.connections += 1
        self._syncing.clear()
        if self.order.last:
            self._syncing.update(self.order.last)
            await ws.send(dumps({"type": "sync", "data": {"rooms": dict(self.order.last)}}))
        for pending in list(self._pending.values()):
            if pending.resend and not pending.future.done():
                await ws.send(dumps(pending.frame))
        self._connected.set()

    def _closed_connection(self) -> None:
        self._ws = None
        self._connected.clear()
        self._fail_all(Dropped("the connection dropped"), everything=False)

    def _fail_all(self, exc: Exception, *, everything: bool) -> None:
        for pending in list(self._pending.values()):
            if (everything or not pending.resend) and not pending.future.done():
                pending.future.set_exception(exc)

    async def _refresh_tokens(self, ws: ClientConnection) -> None:
        """Give the connection a new token before the current one expires."""
        while True:
            await asyncio.sleep(max(0.0, self.credentials.ws_renew_at - time.time()))
            try:
                token = await self.credentials.ws_token(renew=True)
                await ws.send(dumps({"type": "refresh_token", "data": {"token": token}}))
            except (httpx.TransportError, ChinwagError, ConnectionClosed) as exc:
                # Try again shortly; if the token runs out first, the server closes
                # with 4401 and the next connection signs in again.
                log.info("token refresh failed (%r); retrying", exc)
                await asyncio.sleep(1)

    # ---- incoming frames ---------------------------------------------------------------

    async def _dispatch(self, frame: Frame) -> None:
        kind = frame.get("type")
        raw_data = frame.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        claimed = False
        for listener in list(self._listeners):
            claimed = listener(frame) or claimed
        answered = await self._answer(frame, kind, data) or claimed
        if kind in _INTERNAL:
            return
        if kind == "sync" and data.get("complete"):
            for room, upto in (data.get("rooms") or {}).items():
                self._syncing.discard(room)
                self._hand_over(self.order.synced(room, int(upto)))
            return
        event = Event.from_frame(frame)
        if event.stored:
            assert event.room_id is not None
            self._hand_over(self.order.offer(event))
            if self.order.has_gap(event.room_id) and event.room_id not in self._syncing:
                self._syncing.add(event.room_id)
                await self._transmit(
                    {
                        "type": "sync",
                        "data": {"rooms": {event.room_id: self.order.last[event.room_id]}},
                    }
                )
        elif kind == "mention" and event.room_id and event.mention_seq is not None:
            # The mention may overtake its chat (another channel): it waits for it.
            self._hand_over(self.order.offer_after(event, event.mention_seq))
        elif not answered:
            if kind in ("leave_room", "room_deleted") and event.room_id:
                self.rooms.discard(event.room_id)
                self.order.forget(event.room_id)
            self._events.put_nowait(event)

    async def _answer(self, frame: Frame, kind: object, data: dict[str, Any]) -> bool:
        """Resolve the pending request this frame answers; True if it was one."""
        if kind == "error":
            pending = self._pending.get(str(data.get("message_id")))
            if pending is None or pending.future.done():
                return False
            if data.get("code") == "RATE_LIMIT" and pending.resend:
                self._resend_later(pending, float(data.get("retry_after") or 1))
                return True
            pending.future.set_exception(
                RequestError(
                    str(data.get("code")), str(data.get("error", "")), data.get("details"), data
                )
            )
            return True
        for pending in list(self._pending.values()):
            if not pending.future.done() and pending.is_answer(frame):
                pending.future.set_result(frame)
                return True
        return False

    def _resend_later(self, pending: _Pending, delay: float) -> None:
        """The server refused the frame for the rate limit: send it again after the
        wait it asked for (unless answered or given up by then)."""

        async def resend() -> None:
            await asyncio.sleep(delay)
            if not pending.future.done():
                await self._transmit(pending.frame)

        task = asyncio.create_task(resend())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _hand_over(self, events: list[Event]) -> None:
        for event in events:
            self._events.put_nowait(event)


def new_message_id() -> str:
    return uuid.uuid4().hex


def _confirms(frame: Frame, message_id: str) -> bool:
    data = frame.get("data") or {}
    return (
        frame.get("type") == "delivery_confirmation"
        and data.get("message_id") == message_id
        and data.get("status") == "delivered"
        and "recipient" not in data
    )


__all__ = ["Client", "Dropped", "SignInError", "new_message_id"]
