"""AI replies for those who arrive mid-reply: a device that connects, a member who
joins, a member catching up on a backlog. The completion gives them the whole answer
(they missed the first chunks); chunks never overtake the question they answer."""

from __future__ import annotations

from tests.e2e.ai_helpers import ai, is_done
from tests.e2e.rooms_helpers import chat, joined
from tests.support import Namer, StartServer


async def test_a_device_that_connects_mid_reply_gets_the_whole_answer_in_the_completion(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(OFFLINE_TOKEN_DELAY=0.05)
    alice = await srv.user(name())
    phone = await srv.connect(alice)
    await phone.send(ai("a long answer please"))
    await phone.expect("chat", lambda f: f["data"].get("streaming") is True)
    laptop = await srv.connect(alice)  # missed the first chunks
    on_laptop = await laptop.expect("chat", is_done)
    on_phone = await phone.expect("chat", is_done)
    assert on_phone["data"]["content"] == ""  # it heard every chunk
    assert "a long answer please" in on_laptop["data"]["content"]
    assert on_laptop["seq"] == on_phone["seq"]


async def test_a_member_who_joins_a_room_mid_reply_gets_the_whole_answer(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(OFFLINE_TOKEN_DELAY=0.05)
    room = name("shared")
    alice, bob = await srv.user(name()), await srv.user(name())
    a = await joined(srv, alice, room, "shared")
    await a.send(ai("explain it to the room", room_id=room))
    await a.expect("chat", lambda f: f["data"].get("streaming") is True)
    b = await joined(srv, bob, room)
    for_bob = await b.expect("chat", lambda f: f["data"]["role"] == "assistant" and is_done(f))
    for_alice = await a.expect("chat", is_done)
    assert for_alice["data"]["content"] == ""
    assert "explain it to the room" in for_bob["data"]["content"]


async def test_chunks_do_not_overtake_the_question_for_a_member_catching_up(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(OFFLINE_TOKEN_DELAY=0.002)
    room = name("shared")
    alice, bob = await srv.user(name()), await srv.user(name())
    a = await joined(srv, alice, room, "shared")
    await (await joined(srv, bob, room)).close()
    for i in range(4000):  # bob's backlog: eight pages of catch-up
        await a.send(chat(room, f"backlog {i}", message_id=f"b{i}"))
    await a.expect("delivery_confirmation", lambda f: f["data"]["message_id"] == "b3999")
    await a.send(ai("the question", room_id=room))
    await a.expect("chat", lambda f: f["data"].get("streaming") is True)
    b = await srv.connect(bob)  # catches up while the reply streams
    done = await b.expect("chat", lambda f: f["data"]["role"] == "assistant" and is_done(f))
    assert "the question" in done["data"]["content"]  # it missed chunks: the whole answer
    seen = [f for f in b.frames if f is not None and f.get("type") == "chat"]
    question = next(i for i, f in enumerate(seen) if f["data"].get("content") == "the question")
    chunks = [i for i, f in enumerate(seen) if f["data"].get("streaming") is True]
    assert all(i > question for i in chunks)
