"""Typing indicators (SPEC §4): to the others only, expiring, ended by chat and disconnect."""

from __future__ import annotations

from tests.e2e.rooms_helpers import chat, joined
from tests.support import Namer, Server, StartServer


async def _pair(srv: Server, name: Namer):  # type: ignore[no-untyped-def]
    room = name("shared")
    alice, bob = await srv.user(name()), await srv.user(name())
    a = await joined(srv, alice, room, "shared")
    b = await joined(srv, bob, room)
    await a.expect("presence", lambda f: f["data"]["status"] == "joined")
    return room, alice, bob, a, b


async def test_typing_reaches_others_and_is_never_echoed(server: Server, name: Namer) -> None:
    room, alice, _, a, b = await _pair(server, name)
    await a.send({"type": "typing", "data": {"is_typing": True, "room_id": room}})
    frame = await b.expect("typing")
    assert frame["data"] == {
        "user_id": alice.user_id,
        "username": alice.username,
        "is_typing": True,
        "room_id": room,
    }
    await a.send({"type": "typing", "data": {"is_typing": False, "room_id": room}})
    assert (await b.expect("typing"))["data"]["is_typing"] is False
    await a.send({"type": "ping"})
    await a.expect("pong")
    assert not a.pending("typing")


async def test_typing_expires_after_the_timeout(start_server: StartServer, name: Namer) -> None:
    srv = await start_server(TYPING_TIMEOUT=1)
    room, alice, _, a, b = await _pair(srv, name)
    await a.send({"type": "typing", "data": {"is_typing": True, "room_id": room}})
    assert (await b.expect("typing"))["data"]["is_typing"] is True
    stopped = await b.expect("typing", timeout=5)
    assert stopped["data"]["is_typing"] is False
    assert stopped["data"]["username"] == alice.username


async def test_chat_ends_typing(server: Server, name: Namer) -> None:
    room, _, _, a, b = await _pair(server, name)
    await a.send({"type": "typing", "data": {"is_typing": True, "room_id": room}})
    await b.expect("typing", lambda f: f["data"]["is_typing"] is True)
    await a.send(chat(room, "done typing"))
    assert (await b.expect("typing"))["data"]["is_typing"] is False
    await b.expect("chat")


async def test_disconnect_ends_typing(server: Server, name: Namer) -> None:
    room, _, _, a, b = await _pair(server, name)
    await a.send({"type": "typing", "data": {"is_typing": True, "room_id": room}})
    await b.expect("typing", lambda f: f["data"]["is_typing"] is True)
    await a.close()
    assert (await b.expect("typing"))["data"]["is_typing"] is False


async def test_typing_outside_your_rooms_is_not_in_room(server: Server, name: Namer) -> None:
    client = await server.connect(await server.user(name()))
    await client.send({"type": "typing", "data": {"is_typing": True, "room_id": name("r")}})
    assert (await client.expect("error"))["data"]["code"] == "NOT_IN_ROOM"
