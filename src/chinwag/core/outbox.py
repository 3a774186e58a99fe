"""A connection's bounded outgoing queue.

Invariant: only the connection's writer takes from it; anyone may put. When it is
full, ephemeral frames (typing, presence, heartbeats) are dropped first, AI chunks
of one stream are merged into one, and stored events are never dropped: a reader
that is still too far behind is marked ``overflowed`` and must be disconnected
(close 4008) to recover with ``sync``."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import orjson

from chinwag.protocol.codec import encode


class OutFrame:
    """A frame on its way to one or more connections. ``wire`` caches the transport's
    encoding of ``text`` (filled by the first connection that writes it directly),
    so a broadcast is framed once, not once per recipient."""

    __slots__ = ("text", "wire")

    def __init__(self, text: str) -> None:
        self.text = text
        self.wire: bytes | None = None


class Kind(Enum):
    STORED = "stored"  # never dropped: room events, answers to this client
    EPHEMERAL = "ephemeral"  # may be dropped under pressure
    CHUNK = "chunk"  # AI stream piece: may be merged with the next piece of its stream


@dataclass(slots=True)
class _Chunk:
    key: object
    texts: list[str] = field(default_factory=list)

    def render(self) -> str:
        if len(self.texts) == 1:
            return self.texts[0]
        # Merged under pressure: one frame carrying the pieces' text in order.
        events = [orjson.loads(t) for t in self.texts]
        first = events[0]
        data = dict(first["data"])
        data["content"] = "".join(e["data"]["content"] for e in events)
        return encode({**first, "data": data})


Item = tuple[Kind, "str | _Chunk", "tuple[str, int] | None"]
_EMPTY: deque[Item] = deque(maxlen=0)  # shared by every empty outbox


class Outbox:
    """Frames waiting for a connection's writer. Holds no task of its own: the
    transport starts a writer when something is queued and the writer stops when
    the outbox is empty, so an idle connection costs no task here."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # Falsy while empty; read (never changed) by Session's per-recipient fast path.
        self.items: deque[Item] = _EMPTY  # replaced on first put
        # Per room, the first stored seq an overflow threw away: where to resume.
        self.lost_from: dict[str, int] = {}
        self._space: asyncio.Event | None = None
        self.overflowed = False
        self.closed = False
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.items)

    def put(self, text: str, kind: Kind = Kind.STORED, tag: tuple[str, int] | None = None) -> bool:
        """Queue an encoded frame (``tag``: room and seq of a stored room event). False
        when it was dropped (ephemeral, or overflow)."""
        if self.closed or self.overflowed:
            return False
        if len(self.items) >= self.capacity:
            if kind is Kind.EPHEMERAL:
                self.dropped += 1
                return False
            if not self._shed():
                self._overflow(tag)
                return False
        if self.items is _EMPTY:
            self.items = deque()
        self.items.append((kind, text, tag))
        return True

    def put_chunk(self, key: object, text: str) -> bool:
        """Queue an AI chunk event; under pressure it is merged into the queued chunk
        of the same stream instead of taking a slot."""
        if self.closed or self.overflowed:
            return False
        if len(self.items) >= self.capacity:
            for kind, item, _ in reversed(self.items):
                if kind is Kind.CHUNK and isinstance(item, _Chunk) and item.key == key:
                    item.texts.append(text)
                    return True
            if not self._shed():
                self._overflow()
                return False
        if self.items is _EMPTY:
            self.items = deque()
        self.items.append((Kind.CHUNK, _Chunk(key, [text]), None))
        return True

    def _shed(self) -> bool:
        """Drop queued ephemeral frames to make room; True if any slot was freed."""
        before = len(self.items)
        kept = deque(item for item in self.items if item[0] is not Kind.EPHEMERAL)
        self.dropped += before - len(kept)
        self.items = kept
        return len(kept) < before

    def _overflow(self, tag: tuple[str, int] | None = None) -> None:
        for _, _, queued in [*self.items, (Kind.STORED, "", tag)]:
            if queued is not None:
                room, seq = queued
                self.lost_from[room] = min(seq, self.lost_from.get(room, seq))
        self.overflowed = True
        self.items = _EMPTY
        self._release()

    def pop(self) -> str | None:
        """The next frame to write, or None (empty, or overflowed: stop writing)."""
        if self.overflowed or not self.items:
            return None
        _, item, _ = self.items.popleft()
        if not self.items:
            self.items = _EMPTY
        if len(self.items) <= self.capacity // 2:
            self._release()
        return item if isinstance(item, str) else item.render()

    async def wait_for_space(self) -> None:
        """Wait until the outbox is at most half full (used by bulk replays so a
        backlog never overflows a healthy reader)."""
        while len(self.items) > self.capacity // 2 and not (self.closed or self.overflowed):
            if self._space is None:
                self._space = asyncio.Event()
            self._space.clear()
            await self._space.wait()

    def _release(self) -> None:
        if self._space is not None:
            self._space.set()

    def close(self) -> None:
        """Accept nothing more; what is queued may still be popped."""
        self.closed = True
        self._release()
