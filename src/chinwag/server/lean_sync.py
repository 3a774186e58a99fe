"""Small stand-ins for the ``asyncio.Queue`` and ``asyncio.Event`` that uvicorn's
WebSocket protocol keeps per connection.

An idle server holds thousands of sockets, and each of those asyncio objects carries
its own deques (an empty ``collections.deque`` is ~600 bytes; a Queue has three and
an Event one), which are ~3 KB of every idle connection. These keep the same
semantics for the one consumer and the callers uvicorn has, with slots and a waiter
future created only while someone waits."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class ReceiveQueue(Generic[T]):
    """An unbounded FIFO with ``put_nowait``/``get``/``empty``/``qsize``, for one
    consumer at a time (the ASGI app's ``receive``)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> T:
        while not self._items:
            if self._waiter is not None and not self._waiter.done():
                raise RuntimeError("ReceiveQueue.get is already awaited")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if not self._items:
            self._items = None  # an idle connection keeps no deque
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0


class Flag:
    """``asyncio.Event``'s ``set``/``clear``/``is_set``/``wait``; waiters are kept
    only while the flag is clear and someone waits (flow control: rare)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._set = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True
