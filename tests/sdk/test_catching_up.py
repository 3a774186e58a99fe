"""What the SDK must not lose on the edges of resuming: the first events of a room
joined as the connection drops, and the events a slow application has not read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from chinwag_client import Backoff, Client, Event
from tests.sdk.proxy import CuttingProxy
from tests.sdk.test_resilience import assert_exactly_once_in_order, collect_chats
from tests.support import PASSWORD, Server

FAST = Backoff(base=0.05, cap=0.5)


async def next_stored(client: Client, room: str) -> Event:
    async for event in client.events():
        if event.stored and event.room_id == room:
            return event
    raise AssertionError("the client closed")


async def test_the_first_events_of_a_room_joined_as_the_connection_drops_arrive(
    start_server: Callable[..., Any],
) -> None:
    srv: Server = await start_server()
    await srv.user("kim")
    await srv.user("lou")
    async with (
        Client(srv.base, "lou", PASSWORD) as lou,
        CuttingProxy(srv.port) as proxy,
        Client(proxy.base, "kim", PASSWORD, backoff=FAST) as kim,
    ):
        await lou.join("fresh")
        proxy.mute()  # the server joins kim, but its answer never reaches kim
        joining = asyncio.create_task(kim.join("fresh"))
        async with asyncio.timeout(30):
            await next_stored(lou, "fresh")  # kim's join, stored in the room
            texts = ["first", "second", "third"]
            for text in texts[:2]:  # sent to kim's connection, and lost with it
                await lou.send("fresh", text)
            proxy.cut()
            await joining  # answered on the next connection
            await lou.send("fresh", texts[2])
            seen: list[Event] = []
            await collect_chats(kim, len(texts), seen)
        assert kim.connections == 2
    assert_exactly_once_in_order(seen, texts)


async def test_a_slow_reader_gets_every_event_once_in_order_with_the_queue_bounded(
    start_server: Callable[..., Any],
) -> None:
    srv: Server = await start_server()
    await srv.user("max")
    await srv.user("ned")
    texts = [f"n{i:03d}" for i in range(300)]
    async with (
        Client(srv.base, "max", PASSWORD) as max_,
        Client(srv.base, "ned", PASSWORD, queue_limit=40) as ned,
    ):
        await max_.join("flood")
        await ned.join("flood")
        async with asyncio.timeout(60):
            for text in texts:  # ned reads nothing meanwhile
                await max_.send("flood", text)
            # Its queue is full, yet ned's connection is still read: answers arrive.
            await ned.send("flood", "still here")
            seen: list[Event] = []
            await collect_chats(ned, len(texts) + 1, seen)
        assert ned.inbox.most_queued <= 40 and ned.inbox.fell_behind >= 1
        assert ned.connections == 1
    assert_exactly_once_in_order(seen, [*texts, "still here"])
