"""The per-connection queue and flag that stand in for asyncio's in uvicorn's
WebSocket protocol: same behaviour for the callers uvicorn has."""

from __future__ import annotations

import asyncio

import pytest

from chinwag.server.lean_sync import Flag, ReceiveQueue


async def test_the_queue_hands_items_out_in_the_order_they_were_put() -> None:
    queue: ReceiveQueue[int] = ReceiveQueue()
    assert queue.empty() and queue.qsize() == 0
    for i in range(3):
        queue.put_nowait(i)
    assert queue.qsize() == 3
    assert [await queue.get() for _ in range(3)] == [0, 1, 2]
    assert queue.empty()


async def test_a_waiting_get_wakes_when_an_item_is_put() -> None:
    queue: ReceiveQueue[str] = ReceiveQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait("connect")
    assert await asyncio.wait_for(getter, 1) == "connect"


async def test_a_cancelled_get_loses_no_item() -> None:
    queue: ReceiveQueue[str] = ReceiveQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("frame")
    getter.cancel()  # woken and cancelled in the same tick
    with pytest.raises(asyncio.CancelledError):
        await getter
    assert await asyncio.wait_for(queue.get(), 1) == "frame"


async def test_a_second_concurrent_get_is_refused() -> None:
    queue: ReceiveQueue[int] = ReceiveQueue()
    first = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="already awaited"):
        await queue.get()
    queue.put_nowait(1)
    assert await asyncio.wait_for(first, 1) == 1


async def test_the_flag_blocks_waiters_while_clear_and_releases_them_all_when_set() -> None:
    flag = Flag(True)
    assert flag.is_set() and await flag.wait()
    flag.clear()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]


async def test_a_cancelled_flag_waiter_is_forgotten() -> None:
    flag = Flag()
    waiter = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    flag.set()  # nothing left to wake
    assert flag.is_set()
