"""Group commit: who writes alone, who waits for the next batch, and what a failure
costs (the lanes and batches, with writers that record what they were given)."""

from __future__ import annotations

import asyncio

import pytest

from chinwag.store.sql.group_commit import GroupCommit


class Writer:
    """Records every write; a write blocks until ``release`` while ``hold`` is set."""

    def __init__(self) -> None:
        self.alone: list[str] = []
        self.batches: list[list[str]] = []
        self.hold = asyncio.Event()
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.failing: set[str] = set()  # asks whose write raises (alone or in a batch)
        self.refused: set[str] = set()  # asks a batch answers with their own error
        self.inside = 0
        self.most_inside = 0  # writes in flight at once

    async def _gate(self) -> None:
        self.entered.set()
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            if self.hold.is_set():
                await asyncio.wait_for(self.release.wait(), 5)
        finally:
            self.inside -= 1

    async def one(self, ask: str) -> str:
        await self._gate()
        self.alone.append(ask)
        if ask in self.failing:
            raise ValueError(f"cannot store {ask}")
        return f"stored {ask}"

    async def many(self, asks: list[str]) -> list[str | Exception]:
        await self._gate()
        self.batches.append(asks)
        if self.failing & set(asks):
            raise ValueError("the batch failed")
        return [ValueError(f"refused {a}") if a in self.refused else f"stored {a}" for a in asks]


async def started_behind_one_in_flight(
    writer: Writer, group: GroupCommit[str, str], asks: list[str], lane: str = "room"
) -> tuple[asyncio.Task[str], list[asyncio.Task[str]]]:
    """The first ask in flight (held), the others submitted behind it."""
    writer.hold.set()
    first = asyncio.create_task(group.submit(lane, "first"))
    await asyncio.wait_for(writer.entered.wait(), 5)
    waiting = [asyncio.create_task(group.submit(lane, a)) for a in asks]
    await asyncio.sleep(0)  # let each reach its place in the lane
    return first, waiting


async def test_an_idle_lane_writes_at_once_alone() -> None:
    writer = Writer()
    group = GroupCommit(writer.one, writer.many)
    assert await group.submit("room", "a") == "stored a"
    assert await group.submit("room", "b") == "stored b"
    assert writer.alone == ["a", "b"] and writer.batches == []


async def test_asks_arriving_during_a_write_go_together_in_arrival_order() -> None:
    writer = Writer()
    group = GroupCommit(writer.one, writer.many)
    first, waiting = await started_behind_one_in_flight(writer, group, ["a", "b", "c"])
    writer.release.set()
    assert await asyncio.wait_for(first, 5) == "stored first"
    assert await asyncio.wait_for(asyncio.gather(*waiting), 5) == [
        "stored a",
        "stored b",
        "stored c",
    ]
    assert writer.alone == ["first"] and writer.batches == [["a", "b", "c"]]


async def test_a_lone_waiter_is_written_alone() -> None:
    writer = Writer()
    group = GroupCommit(writer.one, writer.many)
    first, waiting = await started_behind_one_in_flight(writer, group, ["a"])
    writer.release.set()
    await asyncio.wait_for(asyncio.gather(first, *waiting), 5)
    assert writer.alone == ["first", "a"] and writer.batches == []


async def test_a_refusal_inside_a_batch_reaches_only_its_own_caller() -> None:
    writer = Writer()
    writer.refused = {"b"}
    group = GroupCommit(writer.one, writer.many)
    first, waiting = await started_behind_one_in_flight(writer, group, ["a", "b", "c"])
    writer.release.set()
    answers = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 5)
    assert answers[0] == "stored a" and answers[2] == "stored c"
    assert isinstance(answers[1], ValueError) and str(answers[1]) == "refused b"
    await first


async def test_a_failed_batch_is_retried_one_by_one_and_fails_only_its_culprit() -> None:
    writer = Writer()
    writer.failing = {"b"}
    group = GroupCommit(writer.one, writer.many)
    first, waiting = await started_behind_one_in_flight(writer, group, ["a", "b", "c"])
    writer.release.set()
    answers = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 5)
    assert answers[0] == "stored a" and answers[2] == "stored c"
    assert isinstance(answers[1], ValueError) and str(answers[1]) == "cannot store b"
    assert writer.batches == [["a", "b", "c"]] and writer.alone == ["first", "a", "b", "c"]
    await first


async def test_lanes_write_side_by_side() -> None:
    writer = Writer()
    group = GroupCommit(writer.one, writer.many)
    first, _ = await started_behind_one_in_flight(writer, group, [], lane="room-1")
    # room-1 is held in its write; room-2's lane is idle, so its ask goes in at once.
    other = asyncio.create_task(group.submit("room-2", "x"))
    for _ in range(100):  # a few loop turns: room-2's write starts without waiting
        if writer.most_inside == 2:
            break
        await asyncio.sleep(0)
    assert writer.most_inside == 2
    writer.release.set()
    assert list(await asyncio.wait_for(asyncio.gather(first, other), 5)) == [
        "stored first",
        "stored x",
    ]
    assert writer.batches == []


async def test_a_caller_that_gave_up_while_waiting_is_not_written() -> None:
    writer = Writer()
    group = GroupCommit(writer.one, writer.many)
    first, waiting = await started_behind_one_in_flight(writer, group, ["a", "gone", "c"])
    waiting[1].cancel()
    writer.release.set()
    assert list(await asyncio.wait_for(asyncio.gather(waiting[0], waiting[2]), 5)) == [
        "stored a",
        "stored c",
    ]
    with pytest.raises(asyncio.CancelledError):
        await waiting[1]
    assert writer.batches == [["a", "c"]]
    await first


async def test_batches_hold_at_most_the_limit() -> None:
    writer = Writer()
    group = GroupCommit(writer.one, writer.many, limit=4)
    asks = [f"m{i}" for i in range(10)]
    first, waiting = await started_behind_one_in_flight(writer, group, asks)
    writer.release.set()
    assert await asyncio.wait_for(asyncio.gather(*waiting), 5) == [f"stored {a}" for a in asks]
    assert [len(b) for b in writer.batches] == [4, 4, 2]
    assert [a for b in writer.batches for a in b] == asks
    await first
