"""Room bounds that hold under concurrency: a private room's two members, and how many
rooms one user may create (``MAX_ROOMS_PER_USER``), over HTTP and the socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support import Namer, Server, ServerFactory

pytestmark = pytest.mark.storage


async def test_concurrent_adds_to_a_private_room_leave_it_with_two_members(
    server: Server, name: Namer
) -> None:
    owner = await server.user(name())
    guests = [await server.user(name()) for _ in range(6)]
    room = name("private")
    assert (await server.post("/api/v1/ws/rooms", owner, json={"room_id": room})).status_code == 201
    answers = await asyncio.gather(
        *(
            server.post(f"/api/v1/ws/rooms/{room}/members", owner, json={"username": g.username})
            for g in guests
        )
    )
    assert sorted(r.status_code for r in answers) == [201] + [409] * 5
    refused = next(r for r in answers if r.status_code == 409)
    assert "two members" in refused.json()["detail"]
    r = await server.get(f"/api/v1/ws/rooms/{room}", owner)
    assert len(r.json()["members"]) == 2


async def test_concurrent_joins_of_a_private_room_by_admins_stop_at_two_members(
    server: Server, name: Namer
) -> None:
    owner, admin = await server.user(name()), await server.admin()
    room = name("private")
    assert (await server.post("/api/v1/ws/rooms", owner, json={"room_id": room})).status_code == 201
    adds = [
        server.post(
            f"/api/v1/ws/rooms/{room}/members",
            owner,
            json={"username": (await server.user(name())).username},
        )
        for _ in range(3)
    ]
    admin_client = await server.connect(admin)
    await admin_client.send({"type": "join_room", "room_id": room})
    answers = await asyncio.gather(*adds)
    reply = await admin_client.expect(None, lambda f: f["type"] in ("join_room", "error"))
    accepted = [r for r in answers if r.status_code == 201] + (
        [reply] if reply["type"] == "join_room" else []
    )
    assert len(accepted) == 1, (answers, reply)
    if reply["type"] == "error":
        assert reply["data"]["code"] == "FORBIDDEN"
    r = await server.get(f"/api/v1/ws/rooms/{room}", owner)
    assert len(r.json()["members"]) == 2


# ---- rooms per user ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def few_rooms(
    tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> AsyncIterator[Server]:
    factory = ServerFactory(tmp_path_factory.mktemp("few_rooms"))
    try:
        yield await factory.start(DATABASE_URL=database_url, MAX_ROOMS_PER_USER=3)
    finally:
        await factory.stop_all()


async def test_rooms_created_per_user_are_bounded_over_http(few_rooms: Server, name: Namer) -> None:
    user = await few_rooms.user(name())
    answers = await asyncio.gather(
        *(few_rooms.post("/api/v1/ws/rooms", user, json={"room_id": name("r")}) for _ in range(6))
    )
    assert sorted(r.status_code for r in answers) == [201] * 3 + [403] * 3
    refused = next(r for r in answers if r.status_code == 403).json()
    assert refused["code"] == "ROOM_LIMIT"
    assert refused["details"] == {"max_rooms": 3}
    assert "MAX_ROOMS_PER_USER" not in refused["detail"] and "3 rooms" in refused["detail"]
    # deleting one makes room for another; other users are not affected
    mine = [r.json()["room_id"] for r in answers if r.status_code == 201]
    assert (await few_rooms.delete(f"/api/v1/ws/rooms/{mine[0]}", user)).status_code == 204
    assert (
        await few_rooms.post("/api/v1/ws/rooms", user, json={"room_id": name("r")})
    ).status_code == 201
    other = await few_rooms.user(name())
    assert (
        await few_rooms.post("/api/v1/ws/rooms", other, json={"room_id": name("r")})
    ).status_code == 201


async def test_rooms_created_per_user_are_bounded_over_the_socket(
    few_rooms: Server, name: Namer
) -> None:
    user = await few_rooms.user(name())
    client = await few_rooms.connect(user)
    for _ in range(3):
        await client.send({"type": "join_room", "room_id": name("r")})
        await client.expect("join_room")
    await client.send({"type": "join_room", "room_id": name("r"), "message_id": "fourth"})
    error = await client.expect("error")
    assert error["data"]["code"] == "ROOM_LIMIT" and error["data"]["message_id"] == "fourth"
    assert error["data"]["details"] == {"max_rooms": 3}
    # joining someone else's room is not creating one
    shared = name("shared")
    other = await few_rooms.connect(await few_rooms.user(name()))
    await other.send({"type": "join_room", "room_id": shared, "data": {"room_type": "shared"}})
    await other.expect("join_room")
    await client.send({"type": "join_room", "room_id": shared})
    assert (await client.expect("join_room"))["data"]["room_id"] == shared
