"""Roomless AI replies in the requester's personal stream ``@<username>``: stored
with a seq, replayed by the offline queue and ``sync``, closed to everyone else."""

from __future__ import annotations

import asyncio
import time

from tests.e2e.ai_helpers import ai, is_done
from tests.support import Namer, Server, StartServer


async def _answer(srv: Server, user, conv: int) -> str:  # type: ignore[no-untyped-def]
    """The stored assistant turn of ``conv`` (waits until the reply has finished)."""
    deadline = time.monotonic() + 20
    while True:
        history = (await srv.get(f"/api/v1/conversations/{conv}/messages", user)).json()
        answer = [m for m in history["messages"] if m["role"] == "assistant"]
        if answer:
            return str(answer[0]["content"])
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_reply_whose_reader_left_mid_stream_is_replayed_on_reconnect(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(OFFLINE_TOKEN_DELAY=0.02)
    alice = await srv.user(name())
    client = await srv.connect(alice)
    await client.send(ai("tell me while I am away"))
    first = await client.expect("chat", lambda f: f["data"].get("streaming") is True)
    conv = first["data"]["conversation_id"]
    await client.close()
    answer = await _answer(srv, alice, conv)
    back = await srv.connect(alice)
    replayed = await back.expect("chat", is_done)
    assert replayed["room_id"] == f"@{alice.username}" and replayed["seq"] >= 1
    assert replayed["data"]["content"] == answer and "tell me while I am away" in answer
    assert replayed["data"]["conversation_id"] == conv


async def test_sync_on_the_personal_stream_returns_the_reply(server: Server, name: Namer) -> None:
    alice = await server.user(name())
    client = await server.connect(alice)
    await client.send(ai("remember this"))
    live = await client.expect("chat", is_done)
    stream = f"@{alice.username}"
    assert live["room_id"] == stream and isinstance(live["data"]["message_id"], int)
    assert live["data"]["content"] == ""
    await client.send({"type": "sync", "data": {"rooms": {stream: live["seq"] - 1}}})
    again = await client.expect("chat", lambda f: f.get("seq") == live["seq"])
    assert "remember this" in again["data"]["content"]
    assert again["data"]["message_id"] == live["data"]["message_id"]
    done = await client.expect("sync")
    assert done["data"]["rooms"] == {stream: live["seq"]}


async def test_nobody_else_joins_or_syncs_a_personal_stream(server: Server, name: Namer) -> None:
    alice, bob = await server.user(name()), await server.user(name())
    a = await server.connect(alice)
    await a.send(ai("mine only"))
    await a.expect("chat", is_done)
    b = await server.connect(bob)
    stream = f"@{alice.username}"
    await b.send({"type": "join_room", "room_id": stream})
    assert (await b.expect("error"))["data"]["code"] == "FORBIDDEN"
    await b.send({"type": "sync", "data": {"rooms": {stream: 0}}})
    assert (await b.expect("error"))["data"]["code"] in {"NOT_IN_ROOM", "FORBIDDEN"}
    response = await server.get(f"/api/v1/ws/rooms/{stream}/messages", bob)
    assert response.status_code == 403


async def test_a_user_cannot_create_a_room_named_like_a_personal_stream(
    server: Server, name: Namer
) -> None:
    bob = await server.user(name())
    b = await server.connect(bob)
    await b.send({"type": "join_room", "room_id": f"@{name()}"})
    assert (await b.expect("error"))["data"]["code"] == "FORBIDDEN"
    await b.send({"type": "join_room", "room_id": f"@{bob.username}"})
    joined = await b.expect("join_room")
    assert joined["data"]["room_type"] == "personal"
