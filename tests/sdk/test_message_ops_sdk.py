"""The SDK's edit, delete, reply, react, mention and search (SPEC §14) against a real
server: what one client does, another client sees through ``events()``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from chinwag_client import Backoff, Client, Event, RequestError, SearchResult
from tests.sdk.proxy import CuttingProxy
from tests.support import PASSWORD, Server

FAST = Backoff(base=0.05, cap=0.5)
Events = AsyncIterator[Event]


async def take(
    events: Events, kind: str, seen: list[Event] | None = None, timeout: float = 10
) -> Event:
    """The next event of ``kind``; every event on the way is appended to ``seen``."""
    async with asyncio.timeout(timeout):
        async for event in events:
            if seen is not None:
                seen.append(event)
            if event.type == kind:
                return event
    raise AssertionError("events() ended")


async def clients(
    server: Server, name: Callable[[str], str], count: int, room: str
) -> list[Client]:
    """``count`` new users' SDK clients, all members of ``room`` (the first owns it)."""
    out = []
    for _ in range(count):
        user = await server.user(name("u"))
        client = await server.sdk(user.username)
        await client.join(room)
        out.append(client)
    return out


async def test_an_edit_and_a_delete_reach_another_client_as_stored_events_in_order(
    server: Server, name: Callable[[str], str]
) -> None:
    room = name("r")
    alice, bob = await clients(server, name, 2, room)
    events = bob.events()
    sent = await alice.send(room, "see you at 5")
    chat = await take(events, "chat")
    assert chat.message_id == sent.server_message_id and chat.seq == sent.seq
    mid = sent.server_message_id
    changed = await alice.edit(room, mid, "see you at 6")
    assert changed.seq == chat.seq + 1 and changed.event_id and not changed.unchanged  # type: ignore[operator]
    edited = await take(events, "message_edited")
    assert (edited.room_id, edited.seq, edited.message_id, edited.content, edited.username) == (
        room,
        changed.seq,
        mid,
        "see you at 6",
        alice.username,
    )
    assert edited.edited_at and edited.edited_at.endswith("Z")
    same = await alice.edit(room, mid, "see you at 6")
    assert same.unchanged and same.seq is None and same.event_id is None
    gone = await alice.delete(room, mid)
    deleted = await take(events, "message_deleted")
    assert (deleted.seq, deleted.message_id, deleted.username) == (gone.seq, mid, alice.username)
    assert gone.seq == changed.seq + 1  # the unchanged edit stored nothing
    page = await bob.history(room)
    tombstone = next(e for e in page if e.seq == chat.seq)
    assert tombstone.deleted and "content" not in tombstone.data
    assert [e.type for e in page if e.seq > chat.seq] == [  # type: ignore[operator]
        "message_edited",
        "message_deleted",
    ]


async def test_editing_or_deleting_someone_elses_message_raises_forbidden(
    server: Server, name: Callable[[str], str]
) -> None:
    room = name("r")
    alice, bob = await clients(server, name, 2, room)  # alice owns the room
    mine = (await bob.send(room, "bob's words")).server_message_id
    theirs = (await alice.send(room, "alice's words")).server_message_id
    with pytest.raises(RequestError) as refused:
        await bob.edit(room, theirs, "my words now")
    assert refused.value.code == "FORBIDDEN"
    with pytest.raises(RequestError) as refused:
        await bob.delete(room, theirs)
    assert refused.value.code == "FORBIDDEN"
    with pytest.raises(RequestError) as missing:
        await bob.edit(room, 10**9, "nothing there")
    assert missing.value.code == "NOT_FOUND"
    assert (await alice.delete(room, mine)).seq is not None  # the room's owner may


async def test_a_reply_carries_the_id_of_the_message_it_answers(
    server: Server, name: Callable[[str], str]
) -> None:
    room = name("r")
    alice, bob = await clients(server, name, 2, room)
    events = alice.events()
    question = await alice.send(room, "lunch at noon?")
    answer = await bob.send(room, "yes", reply_to=question.server_message_id)
    await take(events, "chat")
    reply = await take(events, "chat")
    assert (reply.seq, reply.content, reply.reply_to) == (
        answer.seq,
        "yes",
        question.server_message_id,
    )
    stored = next(e for e in await alice.history(room) if e.seq == answer.seq)
    assert stored.reply_to == question.server_message_id
    with pytest.raises(RequestError) as missing:
        await bob.send(room, "to nothing", reply_to=10**9)
    assert missing.value.code == "NOT_FOUND"


async def test_a_reaction_goes_on_and_off_and_history_sums_them(
    server: Server, name: Callable[[str], str]
) -> None:
    room = name("r")
    alice, bob = await clients(server, name, 2, room)
    events = alice.events()
    sent = await alice.send(room, "ship it?")
    await take(events, "chat")
    given = await bob.react(room, sent.server_message_id, "👍")
    reaction = await take(events, "reaction")
    assert (reaction.seq, reaction.message_id, reaction.emoji, reaction.username, reaction.on) == (
        given.seq,
        sent.server_message_id,
        "👍",
        bob.username,
        True,
    )
    assert (await bob.react(room, sent.server_message_id, "👍")).unchanged
    [item] = [e for e in await alice.history(room) if e.seq == sent.seq]
    assert item.reactions == {"👍": (bob.username,)}
    taken = await bob.react(room, sent.server_message_id, "👍", on=False)
    back = await take(events, "reaction")
    assert (back.seq, back.on, back.emoji) == (taken.seq, False, "👍")
    [item] = [e for e in await alice.history(room) if e.seq == sent.seq]
    assert item.reactions == {}


async def test_a_mention_reaches_only_the_member_named_and_after_the_chat(
    server: Server, name: Callable[[str], str]
) -> None:
    room = name("r")
    alice, bob, carol = await clients(server, name, 3, room)
    bob_events, carol_events = bob.events(), carol.events()
    for_bob = await alice.send(room, f"@{bob.username} lunch?")
    for_carol = await alice.send(room, f"you too, @{carol.username}.")
    bob_saw: list[Event] = []
    mention = await take(bob_events, "mention", bob_saw)
    assert (
        mention.room_id,
        mention.seq,
        mention.message_id,
        mention.mention_seq,
        mention.mentioned_by,
    ) == (room, None, for_bob.server_message_id, for_bob.seq, alice.username)
    assert [e.seq for e in bob_saw if e.type == "chat"] == [for_bob.seq]  # the chat came first
    carol_saw: list[Event] = []
    mention = await take(carol_events, "mention", carol_saw)
    assert mention.message_id == for_carol.server_message_id  # not the one naming bob
    assert [e.seq for e in carol_saw if e.type == "chat"] == [for_bob.seq, for_carol.seq]


async def test_search_finds_words_in_the_callers_rooms_only(
    server: Server, name: Callable[[str], str]
) -> None:
    mine, theirs, word = name("r"), name("r"), name("w")
    (alice,) = await clients(server, name, 1, mine)
    (bob,) = await clients(server, name, 1, theirs)
    await bob.send(theirs, f"{word} where alice is not")
    old = await alice.send(mine, f"the {word} is broken")
    await alice.send(mine, f"{word}s are another word")
    new = await alice.send(mine, f"fixed the {word.upper()}!")
    found = await alice.search(word)
    assert [r.message_id for r in found] == [new.server_message_id, old.server_message_id]
    assert found[0] == SearchResult(
        mine,
        new.seq or 0,
        new.server_message_id,
        alice.username,
        f"fixed the {word.upper()}!",
        found[0].timestamp,
    )
    assert found[0].timestamp.endswith("Z")
    assert [r.seq for r in await alice.search(word, limit=1)] == [new.seq]
    assert [r.room_id for r in await bob.search(word, room_id=theirs)] == [theirs]
    with pytest.raises(RequestError) as refused:
        await alice.search(word, room_id=theirs)
    assert refused.value.code == "FORBIDDEN" and refused.value.data["status"] == 403


async def test_an_edit_whose_answer_is_lost_in_a_drop_is_resent_and_done_once(
    server: Server, name: Callable[[str], str]
) -> None:
    room = name("r")
    alice_user, bob_user = await server.user(name("u")), await server.user(name("u"))
    bob = await server.sdk(bob_user.username)
    async with CuttingProxy(server.port) as proxy:
        async with Client(proxy.base, alice_user.username, PASSWORD, backoff=FAST) as alice:
            await alice.join(room)
            await bob.join(room)
            events = bob.events()
            sent = await alice.send(room, "teh plan")
            await take(events, "chat")
            proxy.mute()  # the server carries the edit out; alice never hears back
            editing = asyncio.create_task(alice.edit(room, sent.server_message_id, "the plan"))
            edited = await take(events, "message_edited")
            assert not editing.done()
            proxy.cut()
            async with asyncio.timeout(20):
                changed = await editing
            assert changed.duplicate and changed.seq == edited.seq
            assert alice.connections >= 2
    edits = [e for e in await bob.history(room) if e.type == "message_edited"]
    assert [(e.seq, e.content) for e in edits] == [(edited.seq, "the plan")]
