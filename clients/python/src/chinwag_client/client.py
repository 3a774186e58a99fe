"""``Client``: a chinwag connection that survives the network.

Invariants, for a reader of this module:
- one task (``_run``) owns the WebSocket: it connects, reads, and reconnects; every
  other coroutine only sends through ``_transmit`` and waits on futures;
- a request (chat, join, upload step …) waits in ``Requests`` until its answer
  arrives; after a reconnect every one marked ``resend`` is sent again, unchanged,
  after the ``sync`` that resumes the rooms;
- every room joined is resumed: from the last seq handed over, or from 0 when
  none was yet (a join whose answer was lost in a drop included);
- stored room events reach the application only through the ``Inbox`` and its
  ``RoomOrder``, so each is handed over once, in seq order, whatever was replayed
  twice, and the queue stays bounded however slowly the application reads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
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
from chinwag_client.errors import ChinwagError, ClientClosed, SignInError
from chinwag_client.inbox import DEFAULT_LIMIT, Inbox
from chinwag_client.messages import MessageOps
from chinwag_client.models import (
    Event,
    Frame,
    Reply,
    Room,
    SearchResult,
    UploadedFile,
)
from chinwag_client.pending import Dropped, Requests, new_message_id

log = logging.getLogger("chinwag_client")
WS_PATH = "/api/v1/ws/ws"
_INTERNAL = frozenset({"connect", "pong", "system", "refresh_token"})


class Client(MessageOps):
    """Sign in, connect, and stay connected until the ``async with`` block ends.

    ``backoff`` sets the reconnect delays; ``open_timeout`` bounds each connection
    attempt and the first connection of ``async with``; ``queue_limit`` bounds the
    events waiting for ``events()`` (see ``Inbox``)."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        backoff: Backoff | None = None,
        open_timeout: float = 10,
        queue_limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.backoff = backoff or Backoff()
        self.open_timeout = open_timeout
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=30)
        self.credentials = Credentials(self.http, username, password)
        self.inbox = Inbox(queue_limit, self._resume)
        self.order = self.inbox.order
        self.requests = Requests(self._transmit)
        self.rooms: set[str] = set()
        self.connections = 0  # how many times a connection was opened (1 = never dropped)
        self.close_codes: list[int | None] = []  # how each connection attempt ended
        self._listeners: list[Callable[[Frame], bool]] = []
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._rejoining: set[str] = set()  # joins pending when the connection dropped
        self._run_task: asyncio.Task[None] | None = None
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
        await self.requests.cancel_background()
        self.requests.fail_all(ClientClosed("the client is closed"), everything=True)
        self.inbox.close()
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
        seq order per room; the iterator ends when the client closes. At most
        ``queue_limit`` events wait: see ``Inbox`` for what a slow reader gets."""
        return aiter(self.inbox)

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
        return await self.requests.request(
            frame, is_answer, resend=resend, timeout=timeout, connected=self._ws is not None
        )

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
            self.requests.fail_all(ClientClosed(f"the client gave up: {exc}"), everything=True)
            self.inbox.close(exc)

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
        """Resume: sync every room joined from the last seq handed over (0 if none
        was yet: its first events may have been lost in the drop), then resend."""
        self._ws = ws
        self.connections += 1
        for room in self.rooms - self.inbox.behind:
            self.order.last.setdefault(room, 0)
        rooms = {r: seq for r, seq in self.order.last.items() if r not in self.inbox.behind}
        if rooms:
            await self._sync(rooms)
        for room in self.requests.joining():
            # Its join may have been carried out, the answer lost: an event of the
            # room arriving first (the offline queue) must not set its start.
            self.order.last.setdefault(room, 0)
        for frame in self.requests.to_resend():
            await ws.send(dumps(frame))
        self._connected.set()

    def _closed_connection(self) -> None:
        self._ws = None
        self._connected.clear()
        self._rejoining |= self.requests.joining()
        self.inbox.connection_closed()
        self.requests.fail_all(Dropped("the connection dropped"), everything=False)

    async def _sync(self, rooms: dict[str, int]) -> None:
        """Ask for every stored event of ``rooms`` after the given seqs again."""
        if self._ws is None:
            return  # the next connection syncs every room
        self.inbox.sent_sync(rooms)
        await self._transmit({"type": "sync", "data": {"rooms": rooms}})

    def _resume(self, rooms: dict[str, int]) -> None:
        """The application caught up with rooms that fell behind: replay the rest."""
        self.requests.spawn(self._sync(rooms))

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
        if kind == "join_room" and "joined_at" in data and frame.get("room_id"):
            await self._joined(str(frame["room_id"]))
        answered = self.requests.answer(frame, kind, data) or claimed
        if kind in _INTERNAL:
            return
        if kind == "sync" and data.get("complete"):
            for room, upto in (data.get("rooms") or {}).items():
                self.inbox.synced(room, int(upto))
            return
        event = Event.from_frame(frame)
        if event.stored:
            room = event.room_id
            assert room is not None
            self.inbox.offer(event)
            if self.order.has_gap(room) and room not in self.inbox.syncing:
                await self._sync({room: self.order.last[room]})
        elif kind == "mention" and event.room_id and event.mention_seq is not None:
            # The mention may overtake its chat (another channel): it waits for it.
            self.inbox.offer_after(event, event.mention_seq)
        elif not answered:
            if kind in ("leave_room", "room_deleted") and event.room_id:
                self.rooms.discard(event.room_id)
                self.order.forget(event.room_id)
            self.inbox.put(event)

    async def _joined(self, room: str) -> None:
        """The server confirmed a join. If its request was pending when a connection
        dropped, the first answer (and the room's first events) may have been lost
        with it: the room is replayed from its cursor, 0 if it had none."""
        self.rooms.add(room)
        if room in self._rejoining:
            self._rejoining.discard(room)
            if room not in self.inbox.behind:
                await self._sync({room: self.order.last.setdefault(room, 0)})


__all__ = ["Client", "Dropped", "SignInError", "new_message_id"]
