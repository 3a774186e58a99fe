"""One contract for every store protocol (users, rooms, events, conversations,
files), run over SQLite and PostgreSQL: the same calls give the same answers."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from chinwag.protocol.errors import Conflict, NotFound, NotInRoom
from chinwag.protocol.frames import iso
from chinwag.store.base import Appended, Store
from chinwag.store.files import FileRecord
from chinwag.store.sql import SqlStore
from tests.support import Namer

pytestmark = pytest.mark.storage


@pytest.fixture(scope="module")
async def store(database_url: str) -> AsyncIterator[Store]:
    sql = SqlStore(database_url)
    await sql.start()
    try:
        yield sql
    finally:
        await sql.close()


@pytest.fixture
def fresh() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}{uuid.uuid4().hex[:10]}"


def same(a: Any, b: Any) -> bool:
    """Records equal as clients see them: SQLite hands back naive UTC datetimes where
    PostgreSQL gives aware ones, and every time leaves the server through ``iso``."""

    def seen(record: Any) -> dict[str, Any]:
        return {
            k: iso(v) if isinstance(v, datetime) else v
            for k, v in dataclasses.asdict(record).items()
        }

    return seen(a) == seen(b)


async def room_with(
    store: Store, fresh: Callable[[str], str], *members: str, room_type: str = "shared"
) -> str:
    owner = fresh("owner")
    await store.users.create(owner, "hash")
    room_id = fresh("room")
    await store.rooms.create(room_id, "Room", room_type, owner)
    for member in members:
        await store.users.create(member, "hash")
        await store.rooms.add_member(room_id, member)
    return room_id


# ---- users ------------------------------------------------------------------------------


async def test_users_create_get_and_refuse_a_taken_name(store: Store, fresh: Namer) -> None:
    name = fresh("u")
    created = await store.users.create(name, "h1")
    assert same(await store.users.get(name), created) and not created.is_admin
    with pytest.raises(Conflict):
        await store.users.create(name, "h2")
    assert await store.users.get(fresh("nobody")) is None


async def test_upsert_admin_creates_then_updates(store: Store, fresh: Namer) -> None:
    name = fresh("admin")
    first = await store.users.upsert_admin(name, "h1")
    second = await store.users.upsert_admin(name, "h2")
    assert first.is_admin and second.is_admin and second.password_hash == "h2"


# ---- rooms ------------------------------------------------------------------------------


async def test_a_room_starts_with_its_owner_and_refuses_a_second_create(
    store: Store, fresh: Namer
) -> None:
    owner = fresh("o")
    await store.users.create(owner, "h")
    room_id = fresh("r")
    room = await store.rooms.create(room_id, "Name", "group", owner)
    assert (room.room_type, room.owner, room.last_seq) == ("group", owner, 0)
    assert await store.rooms.members(room_id) == [owner]
    with pytest.raises(Conflict):
        await store.rooms.create(room_id, "Again", "group", owner)


async def test_members_add_remove_and_version(store: Store, fresh: Namer) -> None:
    bob = fresh("b")
    room_id = await room_with(store, fresh)
    version, _ = await store.rooms.members_versioned(room_id)
    await store.users.create(bob, "h")
    assert await store.rooms.add_member(room_id, bob) is True
    assert await store.rooms.add_member(room_id, bob) is False
    after, members = await store.rooms.members_versioned(room_id)
    assert bob in members and after != version
    assert await store.rooms.remove_member(room_id, bob) is True
    assert await store.rooms.remove_member(room_id, bob) is False
    assert await store.rooms.member(room_id, bob) is None


async def test_a_new_member_starts_at_the_rooms_current_seq(store: Store, fresh: Namer) -> None:
    bob = fresh("b")
    room_id = await room_with(store, fresh)
    await store.events.append(room_id, "chat", {"content": "before"})
    await store.users.create(bob, "h")
    await store.rooms.add_member(room_id, bob)
    member = await store.rooms.member(room_id, bob)
    assert member is not None and member.delivered_seq == 1
    assert [r.room_id for r, _ in await store.rooms.rooms_of(bob)] == [room_id]


async def test_cursors_move_only_forward_and_report_the_old_value_once(
    store: Store, fresh: Namer
) -> None:
    bob = fresh("b")
    room_id = await room_with(store, fresh, bob)
    for i in range(3):
        await store.events.append(room_id, "chat", {"i": i})
    assert await store.rooms.advance_delivered(room_id, bob, 2) == 0
    assert await store.rooms.advance_delivered(room_id, bob, 2) is None
    assert await store.rooms.advance_delivered(room_id, bob, 1) is None
    assert (await store.rooms.pending_counts()).get(bob) == 1
    assert await store.rooms.advance_read(room_id, bob, 3) == 0
    member = await store.rooms.member(room_id, bob)
    assert member is not None and member.read_seq == 3 and member.delivered_seq == 3


async def test_delete_removes_the_room(store: Store, fresh: Namer) -> None:
    room_id = await room_with(store, fresh)
    assert await store.rooms.delete(room_id) is True
    assert await store.rooms.get(room_id) is None
    assert await store.rooms.delete(room_id) is False


async def test_count_by_type_counts_each_kind(store: Store, fresh: Namer) -> None:
    before = await store.rooms.count_by_type()
    await room_with(store, fresh, room_type="private")
    after = await store.rooms.count_by_type()
    assert after.get("private", 0) == before.get("private", 0) + 1


# ---- events -------------------------------------------------------------------------------


async def test_append_numbers_events_gaplessly_per_room(store: Store, fresh: Namer) -> None:
    room_id = await room_with(store, fresh)
    seqs = [(await store.events.append(room_id, "chat", {"i": i})).event.seq for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert [e.data["i"] for e in await store.events.after(room_id, 2)] == [2, 3, 4]
    assert [e.seq for e in await store.events.after(room_id, 0, limit=2)] == [1, 2]
    assert [e.seq for e in await store.events.before(room_id, 5, 2)] == [3, 4]
    assert [e.seq for e in await store.events.before(room_id, None, 2)] == [4, 5]


async def test_a_repeated_client_id_returns_the_first_event(store: Store, fresh: Namer) -> None:
    bob = fresh("b")
    room_id = await room_with(store, fresh, bob)
    first = await store.events.append(room_id, "chat", {"n": 1}, sender=bob, client_message_id="m1")
    again = await store.events.append(room_id, "chat", {"n": 2}, sender=bob, client_message_id="m1")
    assert again.duplicate and again.event.id == first.event.id and again.event.data == {"n": 1}
    found = await store.events.find(room_id, bob, "m1")
    assert found is not None and found.seq == first.event.seq
    assert (await store.events.append(room_id, "chat", {}, sender=bob)).event.seq == 2


async def test_append_refuses_non_members_and_missing_rooms(store: Store, fresh: Namer) -> None:
    room_id = await room_with(store, fresh)
    with pytest.raises(NotInRoom):
        await store.events.append(room_id, "chat", {}, sender=fresh("x"), require_member=True)
    with pytest.raises(NotFound):
        await store.events.append(fresh("missing"), "chat", {}, sender="x")
    assert await store.events.after(room_id, 0) == []


async def test_appends_made_at_once_get_gapless_seqs_in_submission_order_per_room(
    store: Store, fresh: Namer
) -> None:
    # Made at once, all but the first wait for one transaction: the group commit.
    bob = fresh("b")
    rooms = [await room_with(store, fresh, bob)]
    for _ in range(2):
        rooms.append(await room_with(store, fresh))
        await store.rooms.add_member(rooms[-1], bob)
    appended = await asyncio.gather(
        *(
            store.events.append(
                rooms[i % 3],
                "chat",
                {"i": i},
                sender=bob,
                client_message_id=f"c{i}",
                require_member=True,
            )
            for i in range(60)
        )
    )
    for r, room_id in enumerate(rooms):
        mine = [a.event for a in appended if a.event.room_id == room_id]
        assert [e.data["i"] for e in mine] == list(range(r, 60, 3))
        assert [e.seq for e in mine] == list(range(1, 21))
        stored = await store.events.after(room_id, 0)
        assert [(e.id, e.seq, e.data) for e in stored] == [(e.id, e.seq, e.data) for e in mine]
    assert not any(a.duplicate for a in appended)


async def test_each_append_of_a_batch_gets_its_own_answer(store: Store, fresh: Namer) -> None:
    bob, stranger = fresh("b"), fresh("x")
    room_id = await room_with(store, fresh, bob)
    earlier = await store.events.append(
        room_id, "chat", {"n": 0}, sender=bob, client_message_id="old"
    )
    answers = await asyncio.gather(
        store.events.append(room_id, "chat", {"n": 1}, sender=bob, client_message_id="a"),
        store.events.append(room_id, "chat", {"n": 2}, sender=stranger, require_member=True),
        store.events.append(fresh("missing"), "chat", {"n": 3}, sender=bob),
        store.events.append(room_id, "chat", {"n": 4}, sender=bob, client_message_id="old"),
        store.events.append(room_id, "chat", {"n": 5}, sender=bob, client_message_id="twice"),
        store.events.append(room_id, "chat", {"n": 6}, sender=bob, client_message_id="twice"),
        store.events.append(room_id, "chat", {"n": 7}, sender=None),
        return_exceptions=True,
    )
    first, not_member, missing, repeat_old, twice, twice_again, roomless_sender = answers
    assert isinstance(not_member, NotInRoom) and isinstance(missing, NotFound)
    assert isinstance(repeat_old, Appended) and repeat_old.duplicate
    assert repeat_old.event.id == earlier.event.id and repeat_old.event.data == {"n": 0}
    assert isinstance(twice, Appended) and isinstance(twice_again, Appended)
    assert not twice.duplicate and twice_again.duplicate and twice_again.event.id == twice.event.id
    assert isinstance(first, Appended) and isinstance(roomless_sender, Appended)
    assert [first.event.seq, twice.event.seq, roomless_sender.event.seq] == [2, 3, 4]
    stored = await store.events.after(room_id, 0)
    assert [e.data["n"] for e in stored] == [0, 1, 5, 7]


async def test_two_processes_storing_the_same_client_ids_store_each_once(
    store: Store, database_url: str, fresh: Namer
) -> None:
    bob = fresh("b")
    room_id = await room_with(store, fresh, bob)
    other = SqlStore(database_url)  # a second process's store on the same database
    await other.start()
    try:

        def sends(s: Store) -> list[Any]:
            return [
                s.events.append(room_id, "chat", {"n": i}, sender=bob, client_message_id=f"m{i}")
                for i in range(40)
            ]

        mine, theirs = await asyncio.gather(
            asyncio.gather(*sends(store)), asyncio.gather(*sends(other))
        )
    finally:
        await other.close()
    for a, b in zip(mine, theirs, strict=True):
        assert a.event.id == b.event.id and a.event.seq == b.event.seq
        assert a.duplicate != b.duplicate  # one stored it, the other found it stored
    stored = await store.events.after(room_id, 0)
    assert sorted(e.data["n"] for e in stored) == list(range(40))
    assert [e.seq for e in stored] == list(range(1, 41))


async def test_an_append_that_cannot_be_stored_fails_alone(store: Store, fresh: Namer) -> None:
    room_id = await room_with(store, fresh)
    answers = await asyncio.gather(
        *(
            store.events.append(room_id, "chat", {"n": i, "bad": object() if i == 3 else None})
            for i in range(6)
        ),
        return_exceptions=True,
    )
    # Not JSON: its own error (SQLAlchemy wraps it on PostgreSQL), nobody else's.
    assert isinstance(answers[3], Exception) and "not JSON serializable" in str(answers[3])
    assert [a.event.seq for a in answers if isinstance(a, Appended)] == [1, 2, 3, 4, 5]
    assert [e.data["n"] for e in await store.events.after(room_id, 0)] == [0, 1, 2, 4, 5]


async def test_chats_between_skips_the_readers_own_and_other_types(
    store: Store, fresh: Namer
) -> None:
    bob, carol = fresh("b"), fresh("c")
    room_id = await room_with(store, fresh, bob, carol)
    await store.events.append(room_id, "chat", {"x": 1}, sender=bob)
    await store.events.append(room_id, "chat", {"x": 2}, sender=carol)
    await store.events.append(room_id, "presence", {"x": 3}, sender=carol)
    chats = await store.events.chats_between(room_id, 0, 3, exclude_sender=bob)
    assert [c.data["x"] for c in chats] == [2]
    assert await store.events.count() >= 3


# ---- conversations and files ----------------------------------------------------------


async def test_conversation_turns_in_order_and_found_by_client_id(
    store: Store, fresh: Namer
) -> None:
    owner = fresh("o")
    conv = await store.conversations.create(owner, "title", None)
    assert same(await store.conversations.get(conv.id), conv)
    await store.conversations.add_turn(
        conv.id, "user", "hi", username=owner, client_message_id="c1"
    )
    await store.conversations.add_turn(
        conv.id, "assistant", "hello", model="m", tokens_used=3, cost_usd=0.5
    )
    turns = await store.conversations.turns(conv.id)
    assert [t.role for t in turns] == ["user", "assistant"] and turns[1].tokens_used == 3
    assert [t.content for t in await store.conversations.turns(conv.id, limit=1)] == ["hello"]
    found = await store.conversations.find_turn(owner, "c1")
    assert found is not None and found.conversation_id == conv.id
    assert [c.id for c in await store.conversations.list_for(owner)] == [conv.id]
    assert await store.conversations.get(-1) is None


async def test_files_add_and_get(store: Store, fresh: Namer) -> None:
    file_id = uuid.uuid4().hex
    record = FileRecord(
        file_id, fresh("o"), None, "a.txt", 3, "text/plain", "0" * 64, "stored", datetime.now(UTC)
    )
    await store.files.add(record)
    got = await store.files.get(file_id)
    assert got is not None and (got.file_name, got.file_size) == ("a.txt", 3)
    assert await store.files.get(uuid.uuid4().hex) is None


async def test_healthy(store: Store) -> None:
    assert await store.healthy()
