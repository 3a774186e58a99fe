"""Room types, membership, presence and the room HTTP API (SPEC §2, §4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.rooms_helpers import chat, joined
from tests.support import Namer, Server


async def test_shared_room_admits_anyone(server: Server, name: Namer) -> None:
    room = name("shared")
    owner, guest = await server.user(name()), await server.user(name())
    await joined(server, owner, room, "shared")
    client = await server.connect(guest)
    await client.send({"type": "join_room", "data": {"room_id": room}})
    confirmation = await client.expect("join_room")
    data = confirmation["data"]
    assert data["room_id"] == room and data["room_type"] == "shared"
    assert set(data["participants"]) == {owner.username, guest.username}
    assert set(data["members"]) == {owner.username, guest.username}
    assert data["joined_at"].endswith("Z")


async def test_private_room_refuses_strangers_until_the_owner_adds_one(
    server: Server, name: Namer
) -> None:
    room = name("private")
    owner, friend, stranger = [await server.user(name()) for _ in range(3)]
    await joined(server, owner, room)  # private by default
    f = await server.connect(friend)
    await f.send({"type": "join_room", "data": {"room_id": room}})
    assert (await f.expect("error"))["data"]["code"] == "FORBIDDEN"
    r = await server.post(
        f"/api/v1/ws/rooms/{room}/members", owner, json={"username": friend.username}
    )
    assert r.status_code == 201
    await f.send({"type": "join_room", "data": {"room_id": room}})
    assert (await f.expect("join_room"))["data"]["room_type"] == "private"
    r = await server.post(
        f"/api/v1/ws/rooms/{room}/members", owner, json={"username": stranger.username}
    )
    assert r.status_code == 409  # a private room holds two


async def test_group_room_admits_only_added_members(server: Server, name: Namer) -> None:
    room = name("group")
    owner, member, outsider = [await server.user(name()) for _ in range(3)]
    await joined(server, owner, room, "group")
    o = await server.connect(outsider)
    await o.send({"type": "join_room", "data": {"room_id": room}})
    assert (await o.expect("error"))["data"]["code"] == "FORBIDDEN"
    assert (
        await server.post(
            f"/api/v1/ws/rooms/{room}/members", outsider, json={"username": outsider.username}
        )
    ).status_code == 403
    assert (
        await server.post(
            f"/api/v1/ws/rooms/{room}/members", owner, json={"username": member.username}
        )
    ).status_code == 201
    m = await joined(server, member, room)
    await m.send(chat(room, "hi group"))
    assert (await m.expect("chat"))["data"]["content"] == "hi group"


async def test_admin_may_add_members_to_any_room(server: Server, name: Namer) -> None:
    room = name("group")
    owner, member = await server.user(name()), await server.user(name())
    admin = await server.admin()
    assert (
        await server.post(
            "/api/v1/ws/rooms",
            owner,
            json={"room_id": room, "room_name": "Team", "room_type": "group"},
        )
    ).status_code == 201
    r = await server.post(
        f"/api/v1/ws/rooms/{room}/members", admin, json={"username": member.username}
    )
    assert r.status_code == 201
    assert member.username in r.json()["members"]


async def test_create_room_over_http_validates(server: Server, name: Namer) -> None:
    user = await server.user(name())
    room = name("room")
    r = await server.post(
        "/api/v1/ws/rooms", user, json={"room_id": room, "room_name": "Mine", "room_type": "shared"}
    )
    assert r.status_code == 201
    body = r.json()
    assert body["owner"] == user.username and body["members"] == [user.username]
    assert body["participants"] == []
    assert (
        await server.post(
            "/api/v1/ws/rooms",
            user,
            json={"room_id": room, "room_name": "Again", "room_type": "shared"},
        )
    ).status_code == 409
    assert (
        await server.post(
            "/api/v1/ws/rooms", user, json={"room_id": name("r"), "room_type": "secret"}
        )
    ).status_code == 422
    assert (
        await server.post(
            "/api/v1/ws/rooms", user, json={"room_id": "has space", "room_type": "shared"}
        )
    ).status_code == 422
    assert (
        await server.post("/api/v1/ws/rooms", None, json={"room_id": name("r")})
    ).status_code == 401


async def test_get_room_shows_members_and_participants(server: Server, name: Namer) -> None:
    room = name("private")
    owner, other = await server.user(name()), await server.user(name())
    await joined(server, owner, room)
    r = await server.get(f"/api/v1/ws/rooms/{room}", owner)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {
        "room_id",
        "room_name",
        "room_type",
        "history_visibility",
        "owner",
        "members",
        "participants",
        "created_at",
    }
    assert body["participants"] == [owner.username]
    assert (await server.get(f"/api/v1/ws/rooms/{room}", other)).status_code == 403
    assert (await server.get(f"/api/v1/ws/rooms/{name('none')}", owner)).status_code == 404


async def test_delete_room_is_for_the_owner_and_tells_participants(
    server: Server, name: Namer
) -> None:
    room = name("shared")
    owner, guest = await server.user(name()), await server.user(name())
    await joined(server, owner, room, "shared")
    g = await joined(server, guest, room)
    assert (await server.delete(f"/api/v1/ws/rooms/{room}", guest)).status_code == 403
    await g.send({"type": "delete_room", "data": {"room_id": room}})
    assert (await g.expect("error"))["data"]["code"] == "FORBIDDEN"
    assert (await server.delete(f"/api/v1/ws/rooms/{room}", owner)).status_code == 204
    assert (await g.expect("room_deleted"))["data"]["room_id"] == room
    assert (await server.get(f"/api/v1/ws/rooms/{room}", owner)).status_code == 404
    assert (await server.delete(f"/api/v1/ws/rooms/{room}", owner)).status_code == 404


def offline(username: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["data"].get("username") == username and f["data"]["status"] == "offline"


@pytest.mark.storage
async def test_a_room_created_again_under_a_deleted_ones_name_has_only_its_own_members(
    server: Server, name: Namer
) -> None:
    room = name("shared")
    owner, guest, newcomer, friend = [await server.user(name()) for _ in range(4)]
    o = await joined(server, owner, room, "shared")
    await (await joined(server, guest, room)).close()
    await o.expect("presence", offline(guest.username))  # the server saw the close
    await o.send(chat(room, "for the guest", "m1"))
    sent = await o.expect("delivery_confirmation", lambda c: c["data"]["message_id"] == "m1")
    assert sent["data"]["queued_for"] == [guest.username]
    assert (await server.delete(f"/api/v1/ws/rooms/{room}", owner)).status_code == 204
    n = await server.connect(newcomer)
    await n.send({"type": "join_room", "room_id": room, "data": {"room_type": "shared"}})
    assert (await n.expect("join_room"))["data"]["members"] == [newcomer.username]
    f = await joined(server, friend, room)  # the new room's membership moves on as the old one did
    await n.send(chat(room, "new room", "m2"))
    sent = await n.expect("delivery_confirmation", lambda c: c["data"]["message_id"] == "m2")
    assert sent["data"]["queued_for"] == []  # not the old room's members
    await f.close()
    await n.expect("presence", offline(friend.username))
    await n.send(chat(room, "for the friend", "m3"))
    sent = await n.expect("delivery_confirmation", lambda c: c["data"]["message_id"] == "m3")
    assert sent["data"]["queued_for"] == [friend.username]


async def test_delete_room_over_the_socket(server: Server, name: Namer) -> None:
    room = name("shared")
    owner = await server.user(name())
    o = await joined(server, owner, room, "shared")
    await o.send({"type": "delete_room", "data": {"room_id": room}})
    assert (await o.expect("room_deleted"))["data"]["room_id"] == room


async def test_presence_joined_left_online_offline(server: Server, name: Namer) -> None:
    room = name("shared")
    alice, bob = await server.user(name()), await server.user(name())
    a = await joined(server, alice, room, "shared")
    b = await joined(server, bob, room)
    joined_event = await a.expect("presence")
    assert joined_event["data"] == {"room_id": room, "username": bob.username, "status": "joined"}
    assert isinstance(joined_event["seq"], int)
    await b.close()
    offline = await a.expect("presence")
    assert offline["data"]["status"] == "offline" and "seq" not in offline
    b = await server.connect(bob)
    online = await a.expect("presence")
    assert online["data"] == {"room_id": room, "username": bob.username, "status": "online"}
    await b.send({"type": "leave_room", "data": {"room_id": room}})
    assert (await b.expect("leave_room"))["data"]["room_id"] == room
    left = await a.expect("presence")
    assert left["data"]["status"] == "left" and left["seq"] > joined_event["seq"]
    info = (await server.get(f"/api/v1/ws/rooms/{room}", alice)).json()
    assert info["members"] == [alice.username] and info["participants"] == [alice.username]


async def test_participants_follow_abrupt_disconnects(server: Server, name: Namer) -> None:
    room = name("shared")
    alice, bob = await server.user(name()), await server.user(name())
    a = await joined(server, alice, room, "shared")
    b = await joined(server, bob, room)
    b.ws.transport.abort()  # no close frame
    await a.expect("presence", lambda f: f["data"]["status"] == "offline")
    info = (await server.get(f"/api/v1/ws/rooms/{room}", alice)).json()
    assert info["participants"] == [alice.username]
    assert bob.username in info["members"]


async def test_membership_lasts_and_connect_subscribes_every_room(
    server: Server, name: Namer
) -> None:
    rooms = [name("shared") for _ in range(3)]
    alice, bob = await server.user(name()), await server.user(name())
    for room in rooms:
        a = await joined(server, alice, room, "shared")
        await a.close()
    b_clients = [await joined(server, bob, room) for room in rooms]
    a = await server.connect(alice)  # no room in the query: subscribed to all three
    for b, room in zip(b_clients, rooms, strict=True):
        await b.send(chat(room, f"to {room}"))
    got = {(await a.expect("chat"))["room_id"] for _ in rooms}
    assert got == set(rooms)


async def test_leave_room_when_not_a_member_is_not_in_room(server: Server, name: Namer) -> None:
    client = await server.connect(await server.user(name()))
    room = name("shared")
    other = await server.user(name())
    await joined(server, other, room, "shared")
    await client.send({"type": "leave_room", "data": {"room_id": room}})
    assert (await client.expect("error"))["data"]["code"] == "NOT_IN_ROOM"


async def test_refused_auto_join_is_answered_and_the_connection_stays(
    server: Server, name: Namer
) -> None:
    room = name("private")
    await joined(server, await server.user(name()), room)
    client = await server.raw_connect(await server.user(name()), room_id=room)
    await client.expect("connect")
    assert (await client.expect("error"))["data"]["code"] == "FORBIDDEN"
    await client.send({"type": "ping"})
    await client.expect("pong")


async def test_bad_room_in_the_query_is_answered_and_the_connection_stays(
    server: Server, name: Namer
) -> None:
    client = await server.raw_connect(await server.user(name()), room_id="bad room!")
    await client.expect("connect")
    error = await client.expect("error")
    assert error["data"]["code"] == "INVALID_MESSAGE"
    await client.send({"type": "ping"})
    await client.expect("pong")
