"""Ordered delivery, idempotency, the offline queue, receipts and recovery (SPEC §4).
Storage-facing: runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.rooms_helpers import chat, is_chat_from, joined
from tests.support import Namer, Server, StartServer, restart

pytestmark = pytest.mark.storage


async def test_chat_reaches_every_participant_with_seq_and_shape(
    server: Server, name: Namer
) -> None:
    room = name("shared")
    alice, bob = await server.user(name()), await server.user(name())
    a = await joined(server, alice, room, "shared")
    b = await joined(server, bob, room)
    await a.send(chat(room, "hello", "c-1"))
    mine, theirs = await a.expect("chat"), await b.expect("chat")
    assert mine == theirs  # one frame, the same bytes for everyone
    assert mine["room_id"] == room and isinstance(mine["seq"], int)
    data = mine["data"]
    assert data["role"] == "user" and data["content"] == "hello"
    assert data["username"] == alice.username and data["user_id"] == alice.user_id
    assert data["client_message_id"] == "c-1" and isinstance(data["message_id"], int)
    assert data["conversation_id"] is None and data["timestamp"].endswith("Z")
    confirmation = await a.expect("delivery_confirmation")
    c = confirmation["data"]
    assert c["message_id"] == "c-1" and c["status"] == "delivered"
    assert c["server_message_id"] == data["message_id"] and c["seq"] == mine["seq"]
    assert c["room_id"] == room and c["queued_for"] == []


async def test_a_burst_from_one_connection_keeps_its_order_and_frames_after_it_wait(
    server: Server, name: Namer
) -> None:
    # The chats are in flight together (committed in batches); their seqs still
    # follow the order they were sent, and a frame sent after them acts after them.
    room = name("shared")
    alice, bob = await server.user(name()), await server.user(name())
    a = await joined(server, alice, room, "shared")
    b = await joined(server, bob, room)
    count = 300
    for i in range(count):
        await a.send(chat(room, f"m{i}", f"burst-{i}"))
    await a.send({"type": "ping"})
    await a.expect("pong")
    confirmed = {
        c["data"]["message_id"]: c["data"]["seq"] for c in a.pending("delivery_confirmation")
    }
    delivered = [await b.expect("chat") for _ in range(count)]
    assert [f["data"]["content"] for f in delivered] == [f"m{i}" for i in range(count)]
    seqs = [f["seq"] for f in delivered]
    assert seqs == list(range(seqs[0], seqs[0] + count))
    # all confirmed before the pong, each with its chat's seq
    assert confirmed == {f"burst-{i}": seqs[i] for i in range(count)}


async def test_chats_sent_just_before_the_socket_closes_are_stored(
    server: Server, name: Namer
) -> None:
    room = name("shared")
    alice = await server.user(name())
    a = await joined(server, alice, room, "shared")
    for i in range(50):
        await a.send(chat(room, f"last-{i}", f"last-{i}"))
    await a.close()
    for _ in range(100):  # the server finishes them after the close (bounded)
        history = (await server.get(f"/api/v1/ws/rooms/{room}/messages?limit=100", alice)).json()
        contents = [m["data"]["content"] for m in history["messages"] if m["type"] == "chat"]
        if len(contents) == 50:
            break
        await asyncio.sleep(0.05)
    assert contents == [f"last-{i}" for i in range(50)]


async def test_chat_from_a_non_member_is_not_in_room(server: Server, name: Namer) -> None:
    room = name("shared")
    await joined(server, await server.user(name()), room, "shared")
    outsider = await server.connect(await server.user(name()))
    await outsider.send(chat(room, "let me in", "x-1"))
    error = await outsider.expect("error")
    assert error["data"]["code"] == "NOT_IN_ROOM" and error["data"]["message_id"] == "x-1"


async def test_resent_message_id_is_stored_once_and_marked_duplicate(
    server: Server, name: Namer
) -> None:
    room = name("shared")
    alice, bob = await server.user(name()), await server.user(name())
    a = await joined(server, alice, room, "shared")
    b = await joined(server, bob, room)
    await a.send(chat(room, "once", "same-id"))
    first = await a.expect("delivery_confirmation")
    await a.send(chat(room, "once", "same-id"))
    again = await a.expect("delivery_confirmation")
    assert again["data"]["duplicate"] is True
    assert again["data"]["server_message_id"] == first["data"]["server_message_id"]
    assert again["data"]["seq"] == first["data"]["seq"]
    await a.send(chat(room, "marker", "next-id"))
    await b.expect("chat", lambda f: f["data"]["content"] == "once")
    await b.expect("chat", lambda f: f["data"]["content"] == "marker")
    assert not b.pending("chat")  # the retry was not delivered again
    history = (await server.get(f"/api/v1/ws/rooms/{room}/messages", alice)).json()
    contents = [m["data"]["content"] for m in history["messages"] if m["type"] == "chat"]
    assert contents == ["once", "marker"]


async def test_history_pages_backwards_oldest_first(server: Server, name: Namer) -> None:
    room = name("shared")
    alice = await server.user(name())
    a = await joined(server, alice, room, "shared")
    for i in range(7):
        await a.send(chat(room, f"m{i}"))
        await a.expect("delivery_confirmation")
    page = (await server.get(f"/api/v1/ws/rooms/{room}/messages?limit=3", alice)).json()
    assert [m["data"]["content"] for m in page["messages"]] == ["m4", "m5", "m6"]
    before = page["messages"][0]["seq"]
    older = (
        await server.get(f"/api/v1/ws/rooms/{room}/messages?limit=3&before_seq={before}", alice)
    ).json()
    assert [m["data"]["content"] for m in older["messages"]] == ["m1", "m2", "m3"]
    stranger = await server.user(name())
    assert (
        await server.get(f"/api/v1/ws/rooms/{room}/messages", stranger)
    ).status_code == 200  # shared: anyone may read
    assert (await server.get(f"/api/v1/ws/rooms/{room}/messages?limit=0", alice)).status_code == 422


async def test_offline_member_gets_ten_messages_in_order_then_receipts(
    server: Server, name: Namer
) -> None:
    room = name("shared")
    alice, bob = await server.user(name()), await server.user(name())
    a = await joined(server, alice, room, "shared")
    b = await joined(server, bob, room)
    await b.close()
    await a.expect("presence", lambda f: f["data"]["status"] == "offline")
    seqs = []
    for i in range(10):
        await a.send(chat(room, f"while away {i}", f"away-{i}"))
        c = await a.expect("delivery_confirmation")
        assert c["data"]["queued_for"] == [bob.username]
        seqs.append(c["data"]["seq"])
    b = await server.connect(bob)
    got = [await b.expect("chat", is_chat_from(alice.username)) for _ in range(10)]
    assert [f["data"]["content"] for f in got] == [f"while away {i}" for i in range(10)]
    assert [f["seq"] for f in got] == seqs
    receipts = [
        await a.expect(
            "delivery_confirmation", lambda f: f["data"].get("recipient") == bob.username
        )
        for _ in range(10)
    ]
    assert sorted(r["data"]["message_id"] for r in receipts) == sorted(
        f"away-{i}" for i in range(10)
    )
    assert all(r["data"]["status"] == "delivered" for r in receipts)
    # A new message after the backlog arrives after it.
    await a.send(chat(room, "fresh"))
    fresh = await b.expect("chat", is_chat_from(alice.username))
    assert fresh["data"]["content"] == "fresh" and fresh["seq"] > seqs[-1]
    # Reading up to the 5th marks the first five as read, one receipt each.
    await b.send({"type": "read_receipt", "data": {"room_id": room, "seq": seqs[4]}})
    reads = [
        await a.expect("delivery_confirmation", lambda f: f["data"]["status"] == "read")
        for _ in range(5)
    ]
    assert [r["data"]["message_id"] for r in reads] == [f"away-{i}" for i in range(5)]
    assert all(r["data"]["recipient"] == bob.username for r in reads)
    await b.send({"type": "read_receipt", "data": {"room_id": room, "seq": seqs[4]}})
    await b.send({"type": "read_receipt", "data": {"room_id": room, "seq": seqs[5]}})
    sixth = await a.expect("delivery_confirmation", lambda f: f["data"]["status"] == "read")
    assert sixth["data"]["message_id"] == "away-5"  # nothing twice


async def test_sync_replays_everything_after_the_named_seq(server: Server, name: Namer) -> None:
    room = name("shared")
    alice = await server.user(name())
    a = await joined(server, alice, room, "shared")
    seqs = []
    for i in range(5):
        await a.send(chat(room, f"s{i}"))
        seqs.append((await a.expect("delivery_confirmation"))["data"]["seq"])
    other = await server.connect(alice)
    await other.send({"type": "sync", "data": {"rooms": {room: seqs[1]}}})
    replayed = [await other.expect("chat", lambda f: f["seq"] > seqs[1]) for _ in range(3)]
    assert [f["seq"] for f in replayed] == seqs[2:]
    done = await other.expect("sync")
    assert done["data"]["rooms"] == {room: seqs[-1]}
    await other.send({"type": "sync", "data": {"rooms": {name("nope"): 0}}})
    assert (await other.expect("error"))["data"]["code"] == "NOT_IN_ROOM"


async def test_three_clients_200_messages_each_arrive_identically_ordered(
    server: Server, name: Namer
) -> None:
    room = name("shared")
    users = [await server.user(name()) for _ in range(3)]
    clients = [await joined(server, users[0], room, "shared")]
    clients += [await joined(server, u, room) for u in users[1:]]

    async def blast(index: int) -> None:
        for i in range(200):
            await clients[index].send(chat(room, f"{index}:{i}", f"{index}-{i}"))

    await asyncio.gather(*(blast(i) for i in range(3)))
    streams = []
    for client in clients:
        frames = [await client.expect("chat", timeout=30) for _ in range(600)]
        streams.append([(f["seq"], f["data"]["content"]) for f in frames])
    assert streams[0] == streams[1] == streams[2]
    seqs = [s for s, _ in streams[0]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 600
    assert seqs[-1] - seqs[0] == 599  # gapless
    for index in range(3):  # each sender's own order is kept
        mine = [c for _, c in streams[0] if c.startswith(f"{index}:")]
        assert mine == [f"{index}:{i}" for i in range(200)]


async def test_restart_between_send_and_reconnect_loses_nothing(
    start_server: StartServer, database_url: str, name: Namer
) -> None:
    srv = await start_server(DATABASE_URL=database_url)
    room = name("shared")
    alice, bob = await srv.user(name()), await srv.user(name())
    a = await joined(srv, alice, room, "shared")
    b = await joined(srv, bob, room)
    await b.close()
    for i in range(5):
        await a.send(chat(room, f"before restart {i}", f"r-{i}"))
        await a.expect("delivery_confirmation")
    await restart(srv)
    b = await srv.connect(bob)
    got = [await b.expect("chat") for _ in range(5)]
    assert [f["data"]["content"] for f in got] == [f"before restart {i}" for i in range(5)]


async def test_an_in_memory_sqlite_database_stores_and_replays(
    start_server: StartServer, name: Namer
) -> None:
    srv: Server = await start_server(DATABASE_URL="sqlite+aiosqlite:///:memory:")
    room = name("shared")
    alice, bob = await srv.user(name()), await srv.user(name())
    a = await joined(srv, alice, room, "shared")
    await (await joined(srv, bob, room)).close()
    await a.expect("presence", lambda f: f["data"]["status"] == "offline")
    await a.send(chat(room, "kept in memory", "mem-1"))
    assert (await a.expect("delivery_confirmation"))["data"]["queued_for"] == [bob.username]
    b = await srv.connect(bob)
    got = await b.expect("chat", is_chat_from(alice.username))
    assert got["data"]["content"] == "kept in memory"
    await a.send(chat(name("nowhere"), "no such room", "mem-2"))
    assert (await a.expect("error"))["data"]["code"] == "NOT_FOUND"
