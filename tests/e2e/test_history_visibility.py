"""A room's history visibility (like Matrix's ``history_visibility``): ``joined`` rooms
show a member only what was sent since they joined (the default for private rooms),
``shared`` rooms show everything (the default for group and shared rooms); applied to
HTTP history and ``sync``. A conversation is bound to the room it started in."""

from __future__ import annotations

from typing import Any

import pytest

from chinwag.client import ChatClient
from tests.e2e.rooms_helpers import chat, joined
from tests.support import Namer, Server, User

pytestmark = pytest.mark.storage


async def said(client: ChatClient, room: str, text: str) -> int:
    await client.send(chat(room, text, message_id=text))
    return int((await client.expect("delivery_confirmation"))["data"]["seq"])


async def history(srv: Server, user: User, room: str) -> list[str]:
    r = await srv.get(f"/api/v1/ws/rooms/{room}/messages?limit=500", user)
    assert r.status_code == 200, r.text
    return [m["data"]["content"] for m in r.json()["messages"] if m["type"] == "chat"]


async def synced(client: ChatClient, room: str, after: int = 0) -> list[dict[str, Any]]:
    await client.send({"type": "sync", "data": {"rooms": {room: after}}})
    frames = []
    while (frame := await client.expect(None))["type"] != "sync":
        frames.append(frame)
    return [f for f in frames if f["type"] == "chat" and f.get("room_id") == room]


async def test_a_replaced_private_member_reads_nothing_from_before_they_joined(
    server: Server, name: Namer
) -> None:
    room = name("private")
    owner, bob, carol = [await server.user(name()) for _ in range(3)]
    o = await joined(server, owner, room)
    members = f"/api/v1/ws/rooms/{room}/members"
    assert (await server.post(members, owner, json={"username": bob.username})).status_code == 201
    b = await joined(server, bob, room)
    await said(b, room, "bob's secret")
    await said(o, room, "owner to bob")
    assert (await server.delete(f"{members}/{bob.username}", owner)).status_code == 204
    assert (await server.post(members, owner, json={"username": carol.username})).status_code == 201
    c = await joined(server, carol, room)
    await said(o, room, "welcome carol")
    assert (await c.expect("chat"))["data"]["content"] == "welcome carol"  # live
    assert await history(server, carol, room) == ["welcome carol"]
    assert [f["data"]["content"] for f in await synced(c, room)] == ["welcome carol"]
    assert await history(server, owner, room) == ["bob's secret", "owner to bob", "welcome carol"]
    r = await server.get(f"/api/v1/ws/rooms/{room}", owner)
    assert r.json()["history_visibility"] == "joined"


async def test_the_room_list_shows_a_newcomer_no_message_from_before_they_joined(
    server: Server, name: Namer
) -> None:
    room = name("private")
    owner, carol = await server.user(name()), await server.user(name())
    o = await joined(server, owner, room)
    await said(o, room, "before carol")
    assert (
        await server.post(
            f"/api/v1/ws/rooms/{room}/members", owner, json={"username": carol.username}
        )
    ).status_code == 201
    r = await server.get("/api/v1/ws/rooms?scope=mine", carol)
    (entry,) = [e for e in r.json()["rooms"] if e["room_id"] == room]
    assert "before carol" not in str(entry)
    await said(o, room, "after carol")
    r = await server.get("/api/v1/ws/rooms?scope=mine", carol)
    (entry,) = [e for e in r.json()["rooms"] if e["room_id"] == room]
    assert "after carol" in str(entry)


async def test_the_owner_may_share_a_rooms_history_and_only_the_owner(
    server: Server, name: Namer
) -> None:
    room = name("private")
    owner, carol = await server.user(name()), await server.user(name())
    o = await joined(server, owner, room)
    await said(o, room, "before carol")
    members = f"/api/v1/ws/rooms/{room}/members"
    assert (await server.post(members, owner, json={"username": carol.username})).status_code == 201
    assert await history(server, carol, room) == []
    patch = f"{server.base}/api/v1/ws/rooms/{room}"
    r = await server.http.patch(patch, headers=carol.auth, json={"history_visibility": "shared"})
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    r = await server.http.patch(patch, headers=owner.auth, json={"history_visibility": "all"})
    assert r.status_code == 422
    r = await server.http.patch(patch, headers=owner.auth, json={"history_visibility": "shared"})
    assert r.status_code == 200 and r.json()["history_visibility"] == "shared"
    assert await history(server, carol, room) == ["before carol"]


async def test_group_rooms_share_history_with_members_added_later(
    server: Server, name: Namer
) -> None:
    room = name("group")
    owner, late = await server.user(name()), await server.user(name())
    o = await joined(server, owner, room, "group")
    await said(o, room, "early")
    assert (
        await server.post(
            f"/api/v1/ws/rooms/{room}/members", owner, json={"username": late.username}
        )
    ).status_code == 201
    client = await joined(server, late, room)
    assert await history(server, late, room) == ["early"]
    assert [f["data"]["content"] for f in await synced(client, room)] == ["early"]


async def test_a_shared_room_created_joined_hides_earlier_messages_from_joiners(
    server: Server, name: Namer
) -> None:
    room = name("shared")
    owner, guest, outsider = [await server.user(name()) for _ in range(3)]
    o = await server.connect(owner)
    await o.send(
        {
            "type": "join_room",
            "room_id": room,
            "data": {"room_type": "shared", "history_visibility": "joined"},
        }
    )
    await o.expect("join_room")
    await said(o, room, "said before")
    g = await joined(server, guest, room)
    await said(o, room, "said after")
    assert (await g.expect("chat"))["data"]["content"] == "said after"  # live
    assert await history(server, guest, room) == ["said after"]
    assert [f["data"]["content"] for f in await synced(g, room)] == ["said after"]
    assert await history(server, outsider, room) == []  # may see the room, not its past


# ---- conversations stay in their room ----------------------------------------------


async def ask(
    client: ChatClient, room: str | None, conversation_id: int | None, message_id: str
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "chat",
        "message_id": message_id,
        "data": {"message": "remember this", "conversation_id": conversation_id},
    }
    if room is not None:
        frame["room_id"] = room
    await client.send(frame)
    # a room's answer with the conversation id is its chat event; a roomless one's is the
    # confirmation
    answer = "delivery_confirmation" if room is None else "chat"
    return await client.expect(
        None,
        lambda f: (
            (f["type"] == "error" and f["data"].get("message_id") == message_id)
            or (
                f["type"] == answer
                and message_id in (f["data"].get("message_id"), f["data"].get("client_message_id"))
            )
        ),
    )


async def test_a_conversation_feeds_replies_only_in_the_room_it_started_in(
    server: Server, name: Namer
) -> None:
    user = await server.user(name())
    room_a, room_b = name("a"), name("b")
    client = await joined(server, user, room_a)
    await client.send({"type": "join_room", "room_id": room_b})
    await client.expect("join_room")
    started = await ask(client, room_a, None, "start")
    conv = started["data"]["conversation_id"]
    assert (await ask(client, room_a, conv, "same-room"))["type"] == "chat"
    for where, mid in ((room_b, "other-room"), (None, "no-room")):
        refused = await ask(client, where, conv, mid)
        assert refused["type"] == "error" and refused["data"]["code"] == "FORBIDDEN"
        assert room_a in refused["data"]["error"]
    roomless = (await ask(client, None, None, "private"))["data"]["conversation_id"]
    refused = await ask(client, room_b, roomless, "into-room")
    assert refused["data"]["code"] == "FORBIDDEN"


async def test_a_conversation_of_a_deleted_room_does_not_follow_its_id(
    server: Server, name: Namer
) -> None:
    user = await server.user(name())
    room = name("room")
    client = await joined(server, user, room)
    conv = (await ask(client, room, None, "before"))["data"]["conversation_id"]
    await client.send({"type": "delete_room", "room_id": room})
    await client.expect("room_deleted")
    await client.send({"type": "join_room", "room_id": room})
    await client.expect("join_room")
    refused = await ask(client, room, conv, "after")
    assert refused["type"] == "error" and refused["data"]["code"] == "FORBIDDEN"
