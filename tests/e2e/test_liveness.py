"""Liveness: anything from the peer proves it alive; only two heartbeat intervals of
silence drop it, with close 4408 (ping timeout) and a log line, never 1011."""

from __future__ import annotations

import asyncio
import re

from chinwag.protocol.codes import CloseCode
from tests.e2e.rooms_helpers import chat, joined
from tests.support import Namer, Server, StartServer

INTERVAL = 1.0


async def log_line(srv: Server, pattern: str, within: float = 15) -> re.Match[str]:
    async with asyncio.timeout(within):
        while (found := re.search(pattern, srv.log)) is None:
            await asyncio.sleep(0.05)
    return found


async def test_a_peer_that_keeps_sending_stays_although_its_pongs_wait(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WEBSOCKET_HEARTBEAT_INTERVAL=INTERVAL)
    client = await srv.connect(await srv.user(name()))
    client.ws.transport.pause_reading()  # the server's pings go unanswered meanwhile
    for _ in range(16):  # four intervals of the peer's own traffic
        await client.send({"type": "ping"})
        await asyncio.sleep(INTERVAL / 4)
    client.ws.transport.resume_reading()
    for _ in range(16):
        await client.expect("pong")
    await client.send({"type": "ping"})
    await client.expect("pong")
    assert client.close_code is None
    assert "ping timeout" not in srv.log


async def test_a_silent_peer_is_closed_with_ping_timeout_after_two_intervals(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WEBSOCKET_HEARTBEAT_INTERVAL=INTERVAL)
    client = await srv.connect(await srv.user(name()))
    client.ws.transport.pause_reading()  # nothing from this peer from now on
    found = await log_line(srv, r"nothing heard for ([\d.]+) s \(ping timeout\)")
    assert float(found.group(1)) >= 2 * INTERVAL
    client.ws.transport.resume_reading()
    assert await client.wait_closed() == CloseCode.PING_TIMEOUT
    assert client.close_reason == "ping timeout"


async def test_a_burst_with_a_short_interval_keeps_every_connection(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WEBSOCKET_HEARTBEAT_INTERVAL=0.5, WS_RATE_LIMIT_REQUESTS=1000)
    room = name("room")
    users = [await srv.user(name()) for _ in range(3)]
    clients = [await joined(srv, users[0], room, "shared")]
    clients += [await joined(srv, u, room) for u in users[1:]]

    async def burst(i: int) -> None:
        for n in range(100):
            await clients[i].send(chat(room, f"{i}-{n}"))

    await asyncio.gather(*(burst(i) for i in range(3)))
    for client in clients:
        for _ in range(300):
            await client.expect("chat", timeout=30)
    assert [c.close_code for c in clients] == [None, None, None]
    assert "ping timeout" not in srv.log
