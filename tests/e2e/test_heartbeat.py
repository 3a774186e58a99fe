"""Heartbeats, protocol pings and dead-peer clean-up."""

from __future__ import annotations

import asyncio
import time

from websockets.asyncio.client import connect

from tests.e2e.rooms_helpers import joined
from tests.support import Namer, Server, StartServer


async def test_system_heartbeat_arrives_every_interval(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WEBSOCKET_HEARTBEAT_INTERVAL=0.5)
    client = await srv.connect(await srv.user(name()))
    first = await client.expect("system", timeout=5)
    second = await client.expect("system", timeout=5)
    for frame in (first, second):
        assert frame["data"]["heartbeat"] is True
        assert frame["data"]["server_time"].endswith("Z")


async def test_dead_peer_is_cleaned_up_within_two_intervals(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WEBSOCKET_HEARTBEAT_INTERVAL=1)
    watcher = await srv.user(name())
    room = name("room")
    watch = await srv.connect(watcher, room_id=room, room_type="shared")
    await watch.expect("join_room")
    ghost_user = await srv.user(name())
    url = f"{srv.ws_base}/api/v1/ws/ws?token={ghost_user.ws_token}&room_id={room}"
    ghost = await connect(url, ping_interval=None)
    # Stop answering pings: pause reading from the socket at the transport level.
    ghost.transport.pause_reading()
    await watch.expect("presence", lambda f: f["data"]["status"] == "joined")
    started = time.monotonic()
    offline = await watch.expect("presence", lambda f: f["data"]["status"] == "offline", timeout=10)
    assert offline["data"]["username"] == ghost_user.username
    assert time.monotonic() - started <= 2 * 1 + 1.5  # two intervals (plus scheduling)
    info = (await srv.get(f"/api/v1/ws/rooms/{room}", watcher)).json()
    assert info["participants"] == [watcher.username]
    ghost.transport.abort()
    await asyncio.sleep(0)


async def test_periodic_cleanup_persists_delivery_cursors(
    start_server: StartServer, name: Namer
) -> None:
    srv: Server = await start_server(WEBSOCKET_CLEANUP_INTERVAL=0.5)
    alice, bob = await srv.user(name()), await srv.user(name())
    room = name("room")
    a = await joined(srv, alice, room, "shared")
    b = await joined(srv, bob, room)
    await a.send({"type": "chat", "room_id": room, "data": {"message": "x", "ai": False}})
    await b.expect("chat")
    # Bob saw it live; the clean-up persists his cursor, so nothing is "queued" for him.
    deadline = time.monotonic() + 10
    admin = await srv.admin()
    while True:
        stats = (await srv.get("/api/v1/ws/stats", admin)).json()
        if stats["queued_messages"] == 0:
            break
        assert time.monotonic() < deadline, stats
        await asyncio.sleep(0.1)
