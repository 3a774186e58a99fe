"""Hub gap filling (SPEC §4): events from several processes arrive out of order; the
hub waits briefly for the broker before it reads the store, and reads it when the
gap stays open or the broker says it lost messages. Memory broker, fake store."""

from __future__ import annotations

import asyncio
import time

from chinwag.broker.memory import MemoryBroker
from chinwag.core.envelope import STORED, Envelope, room_channel
from chinwag.core.hub import Hub
from chinwag.core.ratelimit import SlidingWindow
from chinwag.core.session import Identity, Session

ROOM = "r"


class Store:
    """Stored events of ROOM and every read the hub made."""

    def __init__(self) -> None:
        self.events: dict[int, str] = {}
        self.reads: list[int] = []

    def commit(self, *seqs: int) -> None:
        self.events.update({seq: f"event {seq}" for seq in seqs})

    async def fetch_after(
        self, _session: Session, _room: str, after: int
    ) -> list[tuple[int, str | None]]:
        self.reads.append(after)
        return [(seq, text) for seq, text in sorted(self.events.items()) if seq > after]

    async def control(self, _session: Session, _command: str, _room: str, _seq: int) -> None:
        raise AssertionError("no membership commands in these tests")


async def joined_session(store: Store, grace: float) -> tuple[Hub, Session]:
    broker = MemoryBroker()
    hub = Hub(broker, store, reorder_grace=grace)
    await broker.start(hub.on_message, hub.resync_all)
    session = Session(
        Identity(1, "alice"),
        outbox_capacity=64,
        limiter=SlidingWindow(100, 1),
        token_expires_at=time.time() + 60,
    )
    await hub.add(session)
    await hub.join(session, ROOM, 0)
    await until(lambda: not session.rooms[ROOM].catching_up)  # the join's own read
    store.reads.clear()
    return hub, session


def arrive(hub: Hub, seq: int) -> None:
    hub.on_message(room_channel(ROOM), Envelope(STORED, f"event {seq}", ROOM, seq).pack())


def received(session: Session) -> list[str]:
    out = []
    while (text := session.outbox.pop()) is not None:
        out.append(text)
    return out


async def until(check, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(within):
        while not check():
            await asyncio.sleep(0.005)


async def test_events_swapped_in_flight_are_put_in_order_without_a_store_read() -> None:
    store = Store()
    hub, session = await joined_session(store, grace=5)
    store.commit(1, 2, 3)
    arrive(hub, 2)  # 1 is still on its way from another process
    arrive(hub, 1)
    arrive(hub, 3)
    await until(lambda: not session.rooms[ROOM].catching_up, within=1)
    assert received(session) == ["event 1", "event 2", "event 3"]
    assert store.reads == []
    await session.cancel_tasks()


async def test_a_gap_that_stays_open_is_filled_from_the_store_after_the_grace() -> None:
    store = Store()
    hub, session = await joined_session(store, grace=0.1)
    store.commit(1, 2)
    started = asyncio.get_running_loop().time()
    arrive(hub, 2)  # 1 was lost by the broker
    await until(lambda: len(session.outbox) == 2)
    assert asyncio.get_running_loop().time() - started >= 0.1
    assert received(session) == ["event 1", "event 2"]
    assert store.reads == [0]
    await session.cancel_tasks()


async def test_a_resync_reads_the_store_at_once_even_while_a_gap_waits() -> None:
    store = Store()
    hub, session = await joined_session(store, grace=30)
    store.commit(1, 2)
    arrive(hub, 2)
    hub.resync_all()  # the broker reconnected: what it had in flight may be gone
    await until(lambda: len(session.outbox) == 2, within=2)
    assert received(session) == ["event 1", "event 2"]
    assert store.reads == [0]
    await session.cancel_tasks()
