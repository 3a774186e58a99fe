"""Ephemeral states that end even when the process that set them dies.

A typing indicator is set by one process and shown by every process with a
connection in the room. Its origin ends it (``is_typing:false``) on expiry, chat or
disconnect, but a SIGKILLed origin ends nothing. So the origin publishes the state
as a *lease*: the frame that starts it, a frame that ends it, and how long it holds
unless renewed. Each receiving process remembers the leases it has shown and, when
one lapses without a renewal or an end from its origin, sends the end frame to its
own connections. Renewals are not shown again; an end that arrives after the lease
lapsed here is not shown twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Sends a lapsed lease's end frame to this process's connections of the room,
#: except ``exclude``: (room_id, end text, exclude).
Lapse = Callable[[str, str, str | None], None]


@dataclass(frozen=True, slots=True)
class Lease:
    """What travels with a leased ephemeral frame (the envelope's ``key``)."""

    name: str  # unique within the room, e.g. "typing:alice"
    on: bool  # True starts or renews, False ends
    ttl: float  # seconds it holds after this frame unless renewed
    end: str  # the frame to show when it lapses

    def pack(self) -> list[Any]:
        return [self.name, self.on, self.ttl, self.end]

    @classmethod
    def unpack(cls, key: Any) -> Lease | None:
        if not isinstance(key, list) or len(key) != 4:
            return None
        name, on, ttl, end = key
        return cls(str(name), bool(on), float(ttl), str(end))


class Leases:
    """The leases this process has shown, per room, each with its lapse timer."""

    def __init__(self, lapse: Lapse) -> None:
        self._lapse = lapse
        self._rooms: dict[str, dict[str, asyncio.TimerHandle]] = {}

    def offer(self, room_id: str, lease: Lease, exclude: str | None) -> bool:
        """Record ``lease``; True when its frame must be shown (a start not already
        shown, or an end of one still shown)."""
        shown = self._rooms.get(room_id)
        handle = shown.pop(lease.name, None) if shown is not None else None
        if handle is not None:
            handle.cancel()
        if lease.on:
            timer = asyncio.get_running_loop().call_later(
                lease.ttl, self._lapsed, room_id, lease.name, lease.end, exclude
            )
            self._rooms.setdefault(room_id, {})[lease.name] = timer
        elif shown is not None and not shown:
            del self._rooms[room_id]
        return (handle is None) == lease.on

    def forget_room(self, room_id: str) -> None:
        """No connection here is in the room any more: nobody to tell."""
        for handle in self._rooms.pop(room_id, {}).values():
            handle.cancel()

    def close(self) -> None:
        for room_id in list(self._rooms):
            self.forget_room(room_id)

    def _lapsed(self, room_id: str, name: str, end: str, exclude: str | None) -> None:
        shown = self._rooms.get(room_id)
        if shown is None or shown.pop(name, None) is None:
            return
        if not shown:
            del self._rooms[room_id]
        self._lapse(room_id, end, exclude)
