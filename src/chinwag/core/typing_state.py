"""Typing indicators: ephemeral, never echoed, expiring after ``TYPING_TIMEOUT``.

State lives in the process that received the ``typing`` frame; it ends on
``is_typing:false``, on the user's chat in the room, on expiry (the server sends
``false`` itself) and when the user's last connection here closes. It is published
as a lease (``leases.py``), renewed while the user keeps typing, so the processes
that show it end it themselves if this one dies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from chinwag.core.leases import Lease
from chinwag.protocol import frames
from chinwag.protocol.codec import encode

#: Broadcasts a typing change: (room_id, username, user_id, is_typing).
Announce = Callable[[str, str, int | str, bool], Awaitable[None]]


def lease_ttl(timeout: float) -> float:
    """How long others hold a typing start: 1.5 timeouts, so the last renewal (every
    third of a timeout) always outlives the origin's own expiry."""
    return timeout * 1.5


def typing_lease(
    room_id: str, username: str, user_id: int | str, on: bool, name: str, ttl: float
) -> tuple[str, Lease]:
    """The encoded ``typing`` frame and the lease it travels with (``name`` unique in
    the room); the lease's end frame is the same indicator switched off."""
    text = encode(frames.typing(room_id, username, user_id, on))
    end = text if not on else encode(frames.typing(room_id, username, user_id, False))
    return text, Lease(name, on, ttl, end)


class TypingTracker:
    def __init__(self, timeout: float, announce: Announce) -> None:
        self.timeout = timeout
        # A start is announced again (a renewal, not shown twice) once a third of the
        # timeout passed since the last announcement.
        self.renew_after = timeout / 3
        self.lease_ttl = lease_ttl(timeout)
        self._announce = announce
        # (room, user) -> (expiry timer, user id, when last announced)
        self._timers: dict[tuple[str, str], tuple[asyncio.TimerHandle, int | str, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def is_typing(self, room_id: str, username: str) -> bool:
        return (room_id, username) in self._timers

    async def start(self, room_id: str, username: str, user_id: int | str) -> None:
        key = (room_id, username)
        was = self._timers.pop(key, None)
        if was is not None:
            was[0].cancel()
        handle = asyncio.get_running_loop().call_later(self.timeout, self._expire, key)
        now = time.monotonic()
        if was is not None and now - was[2] < self.renew_after:
            self._timers[key] = (handle, user_id, was[2])
            return
        self._timers[key] = (handle, user_id, now)
        await self._announce(room_id, username, user_id, True)

    async def stop(self, room_id: str, username: str) -> None:
        entry = self._timers.pop((room_id, username), None)
        if entry is not None:
            entry[0].cancel()
            await self._announce(room_id, username, entry[1], False)

    async def stop_user(self, username: str) -> None:
        for room_id, name in [k for k in self._timers if k[1] == username]:
            await self.stop(room_id, name)

    def _expire(self, key: tuple[str, str]) -> None:
        entry = self._timers.pop(key, None)
        if entry is None:
            return
        task = asyncio.ensure_future(self._announce(key[0], key[1], entry[1], False))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for handle, _, _ in self._timers.values():
            handle.cancel()
        self._timers.clear()
