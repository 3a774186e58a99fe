"""Group commit: writes that arrive while a transaction of their lane is in flight
wait for the next one and go to the database together, one transaction and one
commit for as many as waited (up to ``limit``). An idle lane writes at once, alone,
on the caller's own task, so a lone writer pays nothing for the batching.

A lane is what must be written in order: SQLite has one writer, so one lane for
all; PostgreSQL orders appends by the room row's lock, so one lane per room and
different rooms commit side by side."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Ask = TypeVar("Ask")
Result = TypeVar("Result")

One = Callable[[Ask], Awaitable[Result]]
# The answers of a batch, in the asks' order: a result, or the error of that ask
# alone (the others are stored). Raising fails the batch: each ask is retried alone.
Many = Callable[[list[Ask]], Awaitable[list[Result | Exception]]]


class _Lane(Generic[Ask, Result]):
    __slots__ = ("drain", "waiting")

    def __init__(self) -> None:
        self.waiting: list[tuple[Ask, asyncio.Future[Result]]] = []
        self.drain: asyncio.Task[None] | None = None


class GroupCommit(Generic[Ask, Result]):
    def __init__(self, one: One[Ask, Result], many: Many[Ask, Result], limit: int = 256) -> None:
        self._one = one
        self._many = many
        self._limit = limit
        self._lanes: dict[Hashable, _Lane[Ask, Result]] = {}

    async def submit(self, lane_key: Hashable, ask: Ask) -> Result:
        lane = self._lanes.get(lane_key)
        if lane is not None:
            answer: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
            lane.waiting.append((ask, answer))
            return await answer
        lane = self._lanes[lane_key] = _Lane()
        try:
            return await self._one(ask)
        finally:
            if lane.waiting:
                lane.drain = asyncio.create_task(self._drain(lane_key, lane))
            else:
                del self._lanes[lane_key]

    async def _drain(self, lane_key: Hashable, lane: _Lane[Ask, Result]) -> None:
        taken: list[tuple[Ask, asyncio.Future[Result]]] = []
        try:
            while lane.waiting:
                taken = lane.waiting[: self._limit]
                del lane.waiting[: self._limit]
                # A caller that gave up (its connection closed) is not written: it got
                # no confirmation, and a retry carries the same client_message_id.
                taken = [(ask, answer) for ask, answer in taken if not answer.done()]
                if taken:
                    await self._write(taken)
                    # One loop turn: the callers just answered queue their next asks
                    # here, so a steady set of writers keeps filling whole batches
                    # instead of one of them finding the lane idle and going alone.
                    await asyncio.sleep(0)
        except BaseException:
            for _, answer in taken + lane.waiting:
                answer.cancel()
            raise
        finally:
            del self._lanes[lane_key]

    async def _write(self, taken: list[tuple[Ask, asyncio.Future[Result]]]) -> None:
        answers: list[Result | Exception]
        if len(taken) == 1:
            answers = [await self._alone(taken[0][0])]
        else:
            try:
                answers = await self._many([ask for ask, _ in taken])
            except Exception:
                answers = [await self._alone(ask) for ask, _ in taken]
        for (_, answer), got in zip(taken, answers, strict=True):
            if answer.done():
                continue
            if isinstance(got, Exception):
                answer.set_exception(got)
            else:
                answer.set_result(got)

    async def _alone(self, ask: Ask) -> Result | Exception:
        try:
            return await self._one(ask)
        except Exception as e:
            return e
