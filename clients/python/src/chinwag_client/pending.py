"""Requests waiting for their answer, across reconnects.

Invariant: a request stays in ``pending`` until its answer arrives; after a
reconnect every pending request marked ``resend`` is sent again, unchanged (same
``message_id``), so the server, which keys on it, carries it out once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from chinwag_client.connection import Frame
from chinwag_client.errors import RequestError


class Dropped(Exception):
    """The connection dropped before a request that is not resent was answered."""


@dataclass(eq=False)
class Pending:
    frame: Frame
    is_answer: Callable[[Frame], bool]
    future: asyncio.Future[Frame]
    resend: bool


class Requests:
    def __init__(self, transmit: Callable[[Frame], Awaitable[None]]) -> None:
        self._transmit = transmit
        self.pending: dict[str, Pending] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def request(
        self,
        frame: Frame,
        is_answer: Callable[[Frame], bool],
        *,
        resend: bool,
        timeout: float | None,
        connected: bool,
    ) -> Frame:
        mid = frame.setdefault("message_id", new_message_id())
        pending = Pending(frame, is_answer, asyncio.get_running_loop().create_future(), resend)
        self.pending[mid] = pending
        try:
            if connected:
                await self._transmit(frame)
            elif not resend:
                raise Dropped("not connected")
            async with asyncio.timeout(timeout):
                return await pending.future
        finally:
            self.pending.pop(mid, None)

    def to_resend(self) -> list[Frame]:
        return [p.frame for p in list(self.pending.values()) if p.resend and not p.future.done()]

    def joining(self) -> set[str]:
        """The rooms a pending ``join_room`` asks for."""
        return {
            str(p.frame["data"]["room_id"])
            for p in self.pending.values()
            if p.frame.get("type") == "join_room" and not p.future.done()
        }

    def fail_all(self, exc: Exception, *, everything: bool) -> None:
        for pending in list(self.pending.values()):
            if (everything or not pending.resend) and not pending.future.done():
                pending.future.set_exception(exc)

    def answer(self, frame: Frame, kind: object, data: dict[str, Any]) -> bool:
        """Resolve the pending request this frame answers; True if it was one."""
        if kind == "error":
            pending = self.pending.get(str(data.get("message_id")))
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
        for pending in list(self.pending.values()):
            if not pending.future.done() and pending.is_answer(frame):
                pending.future.set_result(frame)
                return True
        return False

    def _resend_later(self, pending: Pending, delay: float) -> None:
        """The server refused the frame for the rate limit: send it again after the
        wait it asked for (unless answered or given up by then)."""

        async def resend() -> None:
            await asyncio.sleep(delay)
            if not pending.future.done():
                await self._transmit(pending.frame)

        self.spawn(resend())

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def cancel_background(self) -> None:
        for task in list(self._background):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def new_message_id() -> str:
    return uuid.uuid4().hex
