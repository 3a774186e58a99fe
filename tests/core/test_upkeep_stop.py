"""Shutdown never waits on a periodic job that lost its cancellation."""

from __future__ import annotations

import asyncio

from chinwag.core.upkeep import Upkeep


async def test_stop_ends_a_timer_whose_job_swallowed_the_cancellation() -> None:
    upkeep = Upkeep.__new__(Upkeep)  # only the timers are under test
    running = asyncio.Event()
    swallowed = 0

    async def job() -> None:
        nonlocal swallowed
        running.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            swallowed += 1  # as a library may: the cancellation becomes its own error
            raise RuntimeError("connection reset during the call") from None

    timer = asyncio.create_task(upkeep._every(0, job))
    upkeep._tasks = [timer]
    await asyncio.wait_for(running.wait(), 5)
    await asyncio.wait_for(upkeep.stop(), 5)
    assert timer.done() and swallowed == 1
