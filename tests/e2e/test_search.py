"""GET /api/v1/search (SPEC §14) on SQLite FTS5 and PostgreSQL full-text search."""

from __future__ import annotations

import pytest

from tests.e2e.message_helpers import act, room_of, say
from tests.support import Namer, Server

pytestmark = pytest.mark.storage


async def search(srv: Server, user, **params):  # type: ignore[no-untyped-def]
    r = await srv.get("/api/v1/search", user, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_search_finds_whole_words_newest_first(server: Server, name: Namer) -> None:
    room, word = name("r"), name("w")
    alice = await server.user(name())
    (a,) = await room_of(server, alice, room)
    old = await say(a, room, f"the {word} is broken")
    await say(a, room, f"{word}s and x{word} are other words")
    new = await say(a, room, f"Fixed the {word.upper()}!")
    found = await search(server, alice, q=word)
    assert [r["message_id"] for r in found["results"]] == [
        new["data"]["server_message_id"],
        old["data"]["server_message_id"],
    ]
    hit = found["results"][0]
    assert hit == {
        "room_id": room,
        "seq": new["data"]["seq"],
        "message_id": new["data"]["server_message_id"],
        "username": alice.username,
        "content": f"Fixed the {word.upper()}!",
        "timestamp": hit["timestamp"],
    }
    assert hit["timestamp"].endswith("Z")
    both = await search(server, alice, q=f"broken {word}")
    assert [r["message_id"] for r in both["results"]] == [old["data"]["server_message_id"]]


async def test_search_covers_only_the_callers_rooms(server: Server, name: Namer) -> None:
    mine, theirs, word = name("r"), name("r"), name("w")
    alice, bob = await server.user(name()), await server.user(name())
    (a,) = await room_of(server, alice, mine)
    (b,) = await room_of(server, bob, theirs)
    await say(b, theirs, f"{word} in a room alice is not in")
    visible = await say(a, mine, f"{word} in alice's room")
    found = await search(server, alice, q=word)
    assert [r["room_id"] for r in found["results"]] == [mine]
    assert found["results"][0]["message_id"] == visible["data"]["server_message_id"]
    refused = await server.get("/api/v1/search", alice, params={"q": word, "room_id": theirs})
    assert refused.status_code == 403
    only = await search(server, bob, q=word, room_id=theirs)
    assert [r["room_id"] for r in only["results"]] == [theirs]


async def test_search_pages_newest_first(server: Server, name: Namer) -> None:
    room, word = name("r"), name("w")
    alice = await server.user(name())
    (a,) = await room_of(server, alice, room)
    ids = [
        (await say(a, room, f"{word} number {i}"))["data"]["server_message_id"] for i in range(5)
    ]
    seen: list[int] = []
    params: dict[str, object] = {"q": word, "room_id": room, "limit": 2}
    while True:
        page = await search(server, alice, **params)
        seen += [r["message_id"] for r in page["results"]]
        if page["next_before_id"] is None:
            break
        params["before_id"] = page["next_before_id"]
    assert seen == ids[::-1]


async def test_an_edited_message_is_found_by_its_new_words_only(
    server: Server, name: Namer
) -> None:
    room, before, after = name("r"), name("w"), name("w")
    alice = await server.user(name())
    (a,) = await room_of(server, alice, room)
    mid = (await say(a, room, f"{before} draft"))["data"]["server_message_id"]
    await act(a, "edit_message", room, message_id=mid, content=f"{after} final")
    assert (await search(server, alice, q=before))["results"] == []
    found = await search(server, alice, q=after)
    assert [(r["message_id"], r["content"]) for r in found["results"]] == [(mid, f"{after} final")]


async def test_a_query_without_words_is_refused_clearly(server: Server, name: Namer) -> None:
    alice = await server.user(name())
    r = await server.get("/api/v1/search", alice, params={"q": "?!"})
    assert r.status_code == 422 and "word" in r.json()["detail"]
    assert (await server.get("/api/v1/search", params={"q": "x"})).status_code == 401


async def test_search_in_a_joined_history_room_finds_nothing_from_before_one_joined(
    server: Server, name: Namer
) -> None:
    room, word = name("r"), name("w")
    owner, bob = await server.user(name()), await server.user(name())
    o = await server.connect(owner, room_id=room)  # private: history "joined"
    await o.expect("join_room")
    await say(o, room, f"{word} before bob")
    added = await server.post(
        f"/api/v1/ws/rooms/{room}/members", owner, json={"username": bob.username}
    )
    assert added.status_code == 201, added.text
    after = await say(o, room, f"{word} after bob")
    found = await search(server, bob, q=word)
    assert [r["message_id"] for r in found["results"]] == [after["data"]["server_message_id"]]
    assert len((await search(server, owner, q=word))["results"]) == 2
