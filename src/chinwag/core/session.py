"""One WebSocket connection as the domain sees it: identity, bounded outbox, rate
limiter and, per room, a ``RoomSequence`` (core/sequencer.py) that decides what of
each stored event to send; the session only sends what it is told to."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from chinwag.core.outbox import Kind, Outbox, OutFrame
from chinwag.core.ratelimit import SlidingWindow
from chinwag.core.sequencer import DELIVER, FILL_GAP, RoomSequence
from chinwag.protocol.codec import encode
from chinwag.protocol.codes import CloseCode


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: int
    username: str
    is_admin: bool = False


class Session:
    def __init__(
        self,
        identity: Identity,
        *,
        outbox_capacity: int,
        limiter: SlidingWindow,
        token_expires_at: float,
    ) -> None:
        self.id = str(uuid.uuid4())
        self.identity = identity
        self.username = identity.username  # read once per recipient of every event
        self.outbox = Outbox(outbox_capacity)
        self.limiter = limiter
        self.token_expires_at = token_expires_at
        self.rooms: dict[str, RoomSequence] = {}
        self.close_code: int | None = None
        self.close_reason = ""
        self.tasks: set[asyncio.Task[None]] = set()
        self.flushed: dict[str, int] = {}  # delivered cursors last written to the store
        # AI replies that have reached this connection whole so far, from their first
        # chunk: their completion may come with content "" (``heard_whole``).
        self.streams_heard: set[object] = set()
        # Synchronous write to the socket, set by the transport when it has one; used
        # only while nothing is queued, so frames never overtake each other.
        self.direct: Callable[[OutFrame], bool] | None = None
        self.writing = False  # the writer holds a frame it has not finished sending
        self.sent = 0  # frames written to the socket, directly or by the writer (stats)
        # Transport hooks: start a writer for queued frames; act on a close request.
        self.on_queued: Callable[[], None] = _nothing
        self.on_close: Callable[[], None] = _nothing

    # ---- sending ---------------------------------------------------------

    def send(self, event: dict[str, object], kind: Kind = Kind.STORED) -> None:
        """Queue an event for this connection only (answers, confirmations, errors)."""
        self.send_text(encode(event), kind)

    def send_text(
        self,
        text: str,
        kind: Kind = Kind.STORED,
        frame: OutFrame | None = None,
        tag: tuple[str, int] | None = None,
    ) -> None:
        if not self._wrote_directly(text, frame):
            self._queued(self.outbox.put(text, kind, tag))

    def _wrote_directly(self, text: str, frame: OutFrame | None) -> bool:
        # Straight to the socket only while nothing waits, so frames keep their order.
        direct = self.direct
        if (
            direct is not None
            and not self.writing
            and not self.outbox
            and direct(frame or OutFrame(text))
        ):
            self.sent += 1
            return True
        return False

    def _queued(self, accepted: bool) -> None:
        if accepted:
            self.on_queued()
        elif self.outbox.overflowed:
            self.request_close(CloseCode.SLOW_CONSUMER, self._slow_reason())

    async def send_paced(self, text: str, tag: tuple[str, int] | None = None) -> None:
        """Queue a replayed frame, first waiting while the outbox is over half full:
        a backlog of any length reaches a reader that keeps reading."""
        if len(self.outbox) > self.outbox.capacity // 2:
            await self.outbox.wait_for_space()
        self.send_text(text, tag=tag)

    def send_chunk(
        self, key: object, text: str, frame: OutFrame | None = None, *, first: bool = False
    ) -> None:
        """A piece of AI reply ``key`` (``first``: the reply's first piece)."""
        if first:
            self.streams_heard.add(key)
        if not self._wrote_directly(text, frame):
            self._queued(self.outbox.put_chunk(key, text))

    def skip_chunk(self, key: object) -> None:
        """A piece of reply ``key`` this connection does not get: it has not heard it whole."""
        self.streams_heard.discard(key)

    def heard_whole(self, key: object) -> bool:
        """Whether reply ``key`` reached this connection whole, from its first piece
        (asked once, at its completion)."""
        if key in self.streams_heard:
            self.streams_heard.remove(key)
            return True
        return False

    def offer_stored(
        self, room_id: str, seq: int, text: str | None, frame: OutFrame | None = None
    ) -> bool:
        """Hand over stored event ``seq`` of ``room_id`` (``text`` None: advance the
        cursor without sending, for events this user must not see). Returns True
        when a gap was found and the caller must fill it from the store."""
        sequence = self.rooms.get(room_id)
        if sequence is None:
            return False
        verdict = sequence.offer(seq, text)
        if verdict != DELIVER:
            return verdict == FILL_GAP
        if text:
            # send_text inlined: this runs once per recipient of every room event.
            direct = self.direct
            if (
                direct is None
                or self.writing
                or self.outbox.items
                or not direct(frame or OutFrame(text))
            ):
                self._queued(self.outbox.put(text, Kind.STORED, (room_id, seq)))
            else:
                self.sent += 1
        return False

    def send_released(self, room_id: str, released: list[tuple[int, str]]) -> None:
        """Send held events the room's sequence released, in order."""
        for seq, text in released:
            self.send_text(text, tag=(room_id, seq))

    def take_pending(self, room_id: str) -> bool:
        """Release held events of ``room_id`` now in order; True when its gap is
        closed (catch-up finished)."""
        sequence = self.rooms.get(room_id)
        if sequence is None:
            return True
        released, closed = sequence.release()
        self.send_released(room_id, released)
        return closed

    # ---- life cycle -------------------------------------------------------

    def request_close(self, code: int, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason[:120]
            self.on_close()

    def _slow_reason(self) -> str:
        # The last seq that really left (or will leave) for the client, per room.
        lost = self.outbox.lost_from
        last = {room: s.resume_after(lost.get(room)) for room, s in self.rooms.items()}
        reason = encode({"reason": "slow consumer", "last_seq": last})
        return reason if len(reason.encode()) <= 120 else "slow consumer: resume with sync"

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a task owned by this session: cancelled when the session ends."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def cancel_tasks(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except BaseException:
                pass


def _nothing() -> None:
    pass
