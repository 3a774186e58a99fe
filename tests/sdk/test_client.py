"""The SDK against a real server process: chatting, asking the AI, signing in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from chinwag_client import Backoff, Client, Event, SignInError
from tests.support import PASSWORD, Server

FAST = Backoff(base=0.05, cap=0.5)


async def next_chat(events: Any, timeout: float = 10) -> Event:
    async with asyncio.timeout(timeout):
        async for event in events:
            if event.type == "chat":
                return event  # type: ignore[no-any-return]
    raise AssertionError("events() ended")


async def test_two_clients_chat(start_server: Callable[..., Any]) -> None:
    srv: Server = await start_server()
    await srv.user("alice")
    await srv.user("bob")
    async with (
        Client(srv.base, "alice", PASSWORD) as alice,
        Client(srv.base, "bob", PASSWORD) as bob,
    ):
        room = await alice.join("lobby")
        assert room.members == ("alice",)
        await bob.join("lobby")
        bob_events = bob.events()
        confirmation = await alice.send("lobby", "hello bob")
        assert confirmation.seq is not None and confirmation.server_message_id > 0
        event = await next_chat(bob_events)
        assert (event.room_id, event.seq, event.content, event.username) == (
            "lobby",
            confirmation.seq,
            "hello bob",
            "alice",
        )
        await bob.send("lobby", "hi alice")
        alice_events = alice.events()
        got = [await next_chat(alice_events), await next_chat(alice_events)]
        assert [e.content for e in got] == ["hello bob", "hi alice"]
        assert got[1].seq == got[0].seq + 1  # type: ignore[operator]


async def test_ask_returns_the_reply_and_ask_stream_yields_its_chunks(
    start_server: Callable[..., Any],
) -> None:
    srv: Server = await start_server()
    await srv.user("carol")
    carol = await srv.sdk("carol")
    reply = await carol.ask("What is chinwag?")
    assert reply.text and reply.tokens_used > 0 and reply.model_used
    assert reply.conversation_id > 0 and reply.cost_usd == 0.0
    stream = carol.ask_stream("And again?", conversation_id=reply.conversation_id)
    chunks = [chunk async for chunk in stream]
    assert len(chunks) > 1
    assert stream.reply is not None and stream.reply.text == "".join(chunks)
    assert stream.reply.conversation_id == reply.conversation_id
    await carol.join("ai-room")
    in_room = await carol.ask("Hello room", room_id="ai-room")
    assert in_room.seq is not None and in_room.room_id == "ai-room" and in_room.text


async def test_a_wrong_password_is_a_sign_in_error(start_server: Callable[..., Any]) -> None:
    srv: Server = await start_server()
    await srv.user("dave")
    with pytest.raises(SignInError):
        async with Client(srv.base, "dave", "not-the-password"):
            pass


async def test_too_many_connections_backs_off_and_connects_when_a_slot_frees(
    start_server: Callable[..., Any],
) -> None:
    srv: Server = await start_server(WEBSOCKET_MAX_CONNECTIONS_PER_USER=1)
    jack = await srv.user("jack")
    other_device = await srv.connect(jack)
    client = Client(srv.base, "jack", PASSWORD, backoff=Backoff(base=0.05, cap=0.4))
    starting = asyncio.create_task(client.start())
    try:
        async with asyncio.timeout(10):
            while 1013 not in client.close_codes:
                await asyncio.sleep(0.02)
        assert not client.connected
        await other_device.close()
        async with asyncio.timeout(10):
            await starting
        assert client.connected
    finally:
        await client.close()


async def test_a_refused_token_signs_in_again(start_server: Callable[..., Any]) -> None:
    srv: Server = await start_server()
    await srv.user("kate")
    async with Client(srv.base, "kate", PASSWORD, backoff=FAST) as kate:
        await kate.join("keys")
        await srv.stop()
        srv.env["JWT_SECRET"] = "rotated-secret-" + "y" * 32  # every token is now invalid
        await srv.start()
        async with asyncio.timeout(20):
            confirmation = await kate.send("keys", "after the rotation")
        assert confirmation.seq is not None
        assert 4401 in kate.close_codes and kate.connected
