"""The bounded queue between the connection and ``events()``.

Invariants:
- at most ``limit`` events wait for the application. When a stored room event
  finds the queue full, it is not queued and the room falls *behind*: its cursor
  (``order.last``) stays at the last event queued, and every later stored event
  of the room is let go until the application has read the queue down to half;
  then one ``sync`` from that cursor brings the rest again. Nothing stored is
  lost, the socket keeps being read (answers to requests still arrive), and
  memory stays bounded however slowly the application reads;
- an ephemeral event (typing, presence, receipts) that finds the queue full is
  dropped and counted in ``dropped``, as the server itself drops ephemeral
  events first for a slow reader;
- a ``sync`` answer that was under way when its room fell behind says nothing
  about what was queued, so it is ignored (``_distrust``)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

from chinwag_client.errors import ClientClosed
from chinwag_client.models import Event
from chinwag_client.ordering import RoomOrder

log = logging.getLogger("chinwag_client")
DEFAULT_LIMIT = 1000


class Inbox:
    def __init__(self, limit: int, resume: Callable[[dict[str, int]], None]) -> None:
        if limit < 2:
            raise ValueError("the event queue holds at least 2 events")
        self.limit = limit
        self.order = RoomOrder()
        self.behind: set[str] = set()
        self.dropped = 0  # ephemeral events dropped because the queue was full
        self.fell_behind = 0  # how often a room fell behind (each resumed by a sync)
        self.most_queued = 0
        self.syncing: set[str] = set()  # rooms with a sync under way
        self._resume = resume
        self._queue: deque[Event] = deque()
        self._arrived = asyncio.Event()
        self._closed = False
        self._failure: BaseException | None = None
        self._inflight: dict[str, int] = {}
        self._distrust: dict[str, int] = {}

    # ---- from the connection --------------------------------------------------------

    def offer(self, event: Event) -> None:
        """A stored room event arrived."""
        room = event.room_id
        assert room is not None
        if room not in self.behind:
            self._queue_stored(room, self.order.offer(event))

    def offer_after(self, event: Event, seq: int) -> None:
        self._queue_stored(str(event.room_id), self.order.offer_after(event, seq))

    def put(self, event: Event) -> None:
        """An ephemeral event arrived."""
        if len(self._queue) >= self.limit:
            self.dropped += 1
            log.warning("events() is read too slowly: a %s event was dropped", event.type)
            return
        self._push(event)

    def sent_sync(self, rooms: dict[str, int]) -> None:
        for room in rooms:
            self.syncing.add(room)
            self._inflight[room] = self._inflight.get(room, 0) + 1

    def synced(self, room: str, upto: int) -> None:
        """A ``sync`` replay of ``room`` ended at ``upto``."""
        self._inflight[room] = max(0, self._inflight.get(room, 0) - 1)
        if not self._inflight[room]:
            self.syncing.discard(room)
        if self._distrust.get(room):
            self._distrust[room] -= 1
            return
        if room not in self.behind:
            self._queue_stored(room, self.order.synced(room, upto))

    def connection_closed(self) -> None:
        """Syncs under way on a closed connection never end."""
        self.syncing.clear()
        self._inflight.clear()
        self._distrust.clear()

    def close(self, failure: BaseException | None = None) -> None:
        self._closed = True
        self._failure = self._failure or failure
        self._arrived.set()

    # ---- to the application ----------------------------------------------------------

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            while not self._queue:
                if self._closed:
                    if self._failure is not None:
                        raise ClientClosed(
                            f"the client gave up: {self._failure}"
                        ) from self._failure
                    return
                self._arrived.clear()
                await self._arrived.wait()
            event = self._queue.popleft()
            if self.behind and len(self._queue) <= self.limit // 2:
                rooms = {room: self.order.last.get(room, 0) for room in self.behind}
                self.behind.clear()
                self._resume(rooms)
            yield event

    # ---- internals ---------------------------------------------------------------------

    def _queue_stored(self, room: str, ready: list[Event]) -> None:
        for i, event in enumerate(ready):
            if event.stored and len(self._queue) >= self.limit:
                self._fall_behind(room, event, ready[i + 1 :])
                return
            self._push(event)

    def _fall_behind(self, room: str, first: Event, rest: list[Event]) -> None:
        assert first.seq is not None
        self.behind.add(room)
        self.fell_behind += 1
        self.order.last[room] = first.seq - 1
        self.order.early.pop(room, None)
        self._distrust[room] = self._inflight.get(room, 0)
        for event in rest:  # a mention waits again for its chat, replayed later
            if not event.stored and event.mention_seq is not None:
                self.order.after.setdefault(room, []).append((event.mention_seq, event))

    def _push(self, event: Event) -> None:
        self._queue.append(event)
        self.most_queued = max(self.most_queued, len(self._queue))
        self._arrived.set()
