"""Edit, delete, reply, react and mention (SPEC §14), through the real server on
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.e2e.message_helpers import about, act, history, room_of, say, stored_rows_containing
from tests.e2e.rooms_helpers import chat
from tests.support import Namer, Server

pytestmark = pytest.mark.storage


async def test_an_edit_reaches_everyone_live_and_history_shows_the_latest_text(
    server: Server, name: Namer
) -> None:
    room = name("r")
    alice, bob = await server.user(name()), await server.user(name())
    a, b = await room_of(server, alice, room, bob)
    sent = await say(a, room, "see you at 5")
    mid = sent["data"]["server_message_id"]
    answer = await act(a, "edit_message", room, message_id=mid, content="see you at 6")
    assert answer["type"] == "delivery_confirmation"
    for client in (a, b):
        edited = await client.expect("message_edited")
        assert edited["room_id"] == room and edited["seq"] == answer["data"]["seq"]
        assert edited["data"]["message_id"] == mid
        assert edited["data"]["content"] == "see you at 6"
        assert edited["data"]["username"] == alice.username
        assert edited["data"]["edited_at"].endswith("Z")
    item = next(m for m in await history(server, bob, room) if m["seq"] == sent["data"]["seq"])
    assert item["data"]["content"] == "see you at 6"
    assert item["data"]["edited_at"] == edited["data"]["edited_at"]


async def test_a_member_who_was_offline_gets_edits_and_deletions_replayed(
    server: Server, name: Namer
) -> None:
    room = name("r")
    alice, bob = await server.user(name()), await server.user(name())
    a, b = await room_of(server, alice, room, bob)
    first = (await say(a, room, "typo heer"))["data"]["server_message_id"]
    second = (await say(a, room, "wrong room, sorry"))["data"]["server_message_id"]
    await b.expect("chat", about(second))
    await b.close()
    edit = await act(a, "edit_message", room, message_id=first, content="typo here")
    gone = await act(a, "delete_message", room, message_id=second)
    b = await server.connect(bob)
    edited = await b.expect("message_edited")
    deleted = await b.expect("message_deleted")
    assert (edited["seq"], edited["data"]["content"]) == (edit["data"]["seq"], "typo here")
    assert deleted["seq"] == gone["data"]["seq"]
    assert deleted["data"] == {"message_id": second, "username": alice.username}


async def test_history_shows_a_deleted_message_as_a_tombstone(server: Server, name: Namer) -> None:
    room = name("r")
    alice, bob = await server.user(name()), await server.user(name())
    a, b = await room_of(server, alice, room, bob)
    sent = await say(a, room, "oops, my password is hunter2")
    await act(a, "delete_message", room, message_id=sent["data"]["server_message_id"])
    await b.expect("message_deleted")
    item = next(m for m in await history(server, bob, room) if m["seq"] == sent["data"]["seq"])
    assert item["data"]["deleted"] is True
    assert "content" not in item["data"]
    assert item["data"]["username"] == alice.username


async def test_others_may_neither_edit_nor_delete_and_unknown_ids_are_not_found(
    server: Server, name: Namer
) -> None:
    room = name("r")
    alice, bob = await server.user(name()), await server.user(name())
    a, b = await room_of(server, bob, room, alice)  # bob owns the room, alice writes
    mid = (await say(a, room, "mine"))["data"]["server_message_id"]
    refused = await act(b, "edit_message", room, message_id=mid, content="yours now")
    assert refused["type"] == "error" and refused["data"]["code"] == "FORBIDDEN"
    stranger = await server.connect(await server.user(name()))
    refused = await act(stranger, "delete_message", room, message_id=mid)
    assert refused["data"]["code"] == "NOT_IN_ROOM"
    for kind, extra in (("edit_message", {"content": "x"}), ("delete_message", {})):
        missing = await act(a, kind, room, message_id=10**9, **extra)
        assert missing["data"]["code"] == "NOT_FOUND"
    item = next(m for m in await history(server, alice, room) if m["data"].get("message_id") == mid)
    assert item["data"]["content"] == "mine" and "edited_at" not in item["data"]


async def test_a_member_may_not_delete_others_messages_but_the_owner_and_an_admin_may(
    server: Server, name: Namer
) -> None:
    room = name("r")
    owner, alice, carol = [await server.user(name()) for _ in range(3)]
    o, a, c = await room_of(server, owner, room, alice, carol)
    first = (await say(a, room, "one"))["data"]["server_message_id"]
    second = (await say(a, room, "two"))["data"]["server_message_id"]
    refused = await act(c, "delete_message", room, message_id=first)
    assert refused["data"]["code"] == "FORBIDDEN"
    assert (await act(o, "delete_message", room, message_id=first))["data"]["status"] == "delivered"
    admin = await server.connect(await server.admin())
    assert (await act(admin, "delete_message", room, message_id=second))[
        "type"
    ] == "delivery_confirmation"
    deletions = [await c.expect("message_deleted") for _ in range(2)]
    assert [d["data"]["message_id"] for d in deletions] == [first, second]
    again = await act(a, "delete_message", room, message_id=first)
    assert again["data"]["code"] == "NOT_FOUND"


async def test_a_deleted_message_text_is_in_no_table_and_no_search_result(
    server: Server, database_url: str, name: Namer
) -> None:
    room = name("r")
    secret, later = name("secret"), name("later")
    alice, bob = await server.user(name()), await server.user(name())
    a, b = await room_of(server, alice, room, bob)
    sent = await say(a, room, f"{secret} hello @{bob.username}", ai=True)
    mid = sent["data"]["server_message_id"]
    answer = await a.expect("chat", lambda f: f["data"].get("done") is True)
    await act(a, "edit_message", room, message_id=mid, content=f"{later} hello")
    await act(b, "react", room, message_id=mid, emoji="👍")
    assert await stored_rows_containing(database_url, later)  # the check sees text
    search = await server.get("/api/v1/search", bob, params={"q": later})
    assert [r["message_id"] for r in search.json()["results"]] == [mid]
    await act(a, "delete_message", room, message_id=mid)
    # The offline model quotes the question; its answer is a message of its own,
    # which the room's owner deletes too.
    await act(a, "delete_message", room, message_id=answer["data"]["message_id"])
    await b.expect("message_deleted")
    assert await stored_rows_containing(database_url, secret) == []
    assert await stored_rows_containing(database_url, later) == []
    for word in (secret, later):
        found = await server.get("/api/v1/search", bob, params={"q": word})
        assert found.status_code == 200 and found.json()["results"] == []
    mentions = (await server.get("/api/v1/mentions", bob)).json()
    assert mid not in [m["message_id"] for m in mentions["mentions"]]


async def test_a_reply_carries_reply_to_and_history_lists_a_message_replies(
    server: Server, name: Namer
) -> None:
    room, elsewhere = name("r"), name("r")
    alice, bob = await server.user(name()), await server.user(name())
    a, b = await room_of(server, alice, room, bob)
    question = (await say(a, room, "lunch?"))["data"]["server_message_id"]
    await say(a, room, "unrelated")
    yes = await say(b, room, "yes", reply_to=question)
    live = await a.expect("chat", about(yes["data"]["server_message_id"]))
    assert live["data"]["reply_to"] == question
    replies = await history(server, alice, room, reply_to=question)
    assert [(m["data"]["content"], m["data"]["reply_to"]) for m in replies] == [("yes", question)]
    other = (await room_of(server, bob, elsewhere))[0]
    foreign = (await say(other, elsewhere, "there"))["data"]["server_message_id"]
    await b.send(chat(room, "no", "m-bad", reply_to=foreign))
    refused = await b.expect("error")
    assert refused["data"]["code"] == "NOT_FOUND" and refused["data"]["message_id"] == "m-bad"


async def test_reactions_round_trip_one_per_user_and_emoji(server: Server, name: Namer) -> None:
    room = name("r")
    alice, bob = await server.user(name()), await server.user(name())
    a, b = await room_of(server, alice, room, bob)
    sent = await say(a, room, "ship it")
    mid, seq = sent["data"]["server_message_id"], sent["data"]["seq"]
    on = await act(b, "react", room, message_id=mid, emoji="👍", on=True)
    reaction = await a.expect("reaction")
    assert reaction["seq"] == on["data"]["seq"]
    assert reaction["data"] == {
        "message_id": mid,
        "emoji": "👍",
        "username": bob.username,
        "on": True,
    }
    again = await act(b, "react", room, message_id=mid, emoji="👍", on=True)
    assert again["data"]["unchanged"] is True and "seq" not in again["data"]
    await act(a, "react", room, message_id=mid, emoji="👍")
    await act(a, "react", room, message_id=mid, emoji="🚀")
    item = next(m for m in await history(server, bob, room) if m["seq"] == seq)
    assert item["data"]["reactions"] == {
        "👍": [bob.username, alice.username],
        "🚀": [alice.username],
    }
    off = await act(b, "react", room, message_id=mid, emoji="👍", on=False)
    assert (await a.expect("reaction", lambda f: f["seq"] == off["data"]["seq"]))["data"][
        "on"
    ] is False
    item = next(m for m in await history(server, bob, room) if m["seq"] == seq)
    assert item["data"]["reactions"] == {"👍": [alice.username], "🚀": [alice.username]}
    bad = await act(b, "react", room, message_id=mid, emoji="two words")
    assert bad["data"]["code"] == "INVALID_MESSAGE"


async def test_a_mention_reaches_only_the_mentioned_member_and_counts_as_unread(
    server: Server, name: Namer
) -> None:
    room = name("r")
    alice, bob, carol = [await server.user(name()) for _ in range(3)]
    a, b, c = await room_of(server, alice, room, bob, carol)
    to_bob = await say(a, room, f"@{bob.username}, can you look?")
    to_carol = await say(a, room, f"and you @{carol.username}.")
    mention = await b.expect("mention")
    assert mention["room_id"] == room
    assert mention["data"] == {
        "message_id": to_bob["data"]["server_message_id"],
        "seq": to_bob["data"]["seq"],
        "by": alice.username,
    }
    # Mentions go out in the order of their messages: had carol been told of the
    # first, that would be the first mention she got.
    first_for_carol = await c.expect("mention")
    assert first_for_carol["data"]["message_id"] == to_carol["data"]["server_message_id"]
    assert a.pending("mention") == []
    unread = (await server.get("/api/v1/mentions", bob)).json()
    assert unread["unread"] == {room: 1}
    listed = (await server.get("/api/v1/ws/rooms", bob)).json()["rooms"]
    assert [r["mentions"] for r in listed if r["room_id"] == room] == [1]
    assert unread["mentions"][0]["unread"] is True
    await b.send(
        {"type": "read_receipt", "room_id": room, "data": {"seq": to_carol["data"]["seq"]}}
    )
    await a.expect(
        "delivery_confirmation",
        lambda f: f["data"]["status"] == "read" and f["data"]["seq"] == to_bob["data"]["seq"],
    )
    assert (await server.get("/api/v1/mentions", bob)).json()["unread"] == {}


async def test_naming_the_assistant_in_a_chat_without_ai_asks_it(
    server: Server, name: Namer
) -> None:
    room = name("r")
    alice = await server.user(name())
    (a,) = await room_of(server, alice, room)
    await say(a, room, "@assistant what is chinwag?", ai=False)
    done = await a.expect("chat", lambda f: f["data"].get("done") is True, timeout=30)
    assert done["data"]["role"] == "assistant" and done["seq"] > 0
