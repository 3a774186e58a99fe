"""A reader that stops reading never slows the others and is cut off with 4008."""

from __future__ import annotations

import json

from tests.e2e.rooms_helpers import chat, is_chat_from, joined
from tests.support import Namer, StartServer


async def test_slow_reader_is_disconnected_and_room_keeps_flowing(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WEBSOCKET_OUTBOX_SIZE=32)
    room = name("shared")
    alice, bob, carol = [await srv.user(name()) for _ in range(3)]
    a = await joined(srv, alice, room, "shared")
    b = await joined(srv, bob, room)
    c = await joined(srv, carol, room)
    c.ws.transport.pause_reading()  # carol stops reading
    body = "x" * 20_000
    for i in range(400):
        await a.send(chat(room, f"{i}:{body}"))
    got = [await b.expect("chat", is_chat_from(alice.username), timeout=30) for _ in range(400)]
    assert [int(f["data"]["content"].split(":")[0]) for f in got] == list(range(400))
    c.ws.transport.resume_reading()
    assert await c.wait_closed(timeout=30) == 4008
    reason = json.loads(c.close_reason)
    assert reason["reason"] == "slow consumer"
    resume_from = reason["last_seq"][room]
    seen = {f["seq"] for f in c.frames if f and f.get("type") == "chat"}
    # carol resumes from the seq the close named: with what she already had, nothing
    # is missing.
    again = await srv.connect(carol)
    await again.send({"type": "sync", "data": {"rooms": {room: resume_from}}})
    await again.expect("sync", timeout=30)
    seen |= {f["seq"] for f in again.frames if f and f.get("type") == "chat"}
    assert {f["seq"] for f in got} <= seen
