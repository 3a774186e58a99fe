"""AI replies for those who arrive mid-reply: a device that connects, a member who
joins, a member catching up on a backlog. The completion gives them the whole answer
(they missed the first chunks); chunks never overtake the question they answer."""

from __future__ import annotations

from typing import Any

from chinwag.client import ChatClient
from tests.e2e.ai_helpers import ai, is_done
from tests.e2e.rooms_helpers import chat, joined
from tests.support import Namer, Server, StartServer, User


def _streaming(frame: dict[str, Any]) -> bool:
    return frame["data"].get("streaming") is True


def _completion(frame: dict[str, Any]) -> bool:
    return frame["data"]["role"] == "assistant" and is_done(frame)


async def _shared_room(
    start_server: StartServer, name: Namer, token_delay: float
) -> tuple[Server, str, User, ChatClient]:
    """A server whose model writes a word every ``token_delay`` s, a shared room with
    alice connected in it, and bob (a user, not yet a member)."""
    srv = await start_server(OFFLINE_TOKEN_DELAY=token_delay)
    room = name("shared")
    alice, bob = await srv.user(name()), await srv.user(name())
    return srv, room, bob, await joined(srv, alice, room, "shared")


async def test_a_device_that_connects_mid_reply_gets_the_whole_answer_in_the_completion(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(OFFLINE_TOKEN_DELAY=0.05)
    alice = await srv.user(name())
    phone = await srv.connect(alice)
    await phone.send(ai("a long answer please"))
    await phone.expect("chat", _streaming)
    laptop = await srv.connect(alice)  # missed the first chunks
    on_laptop = await laptop.expect("chat", is_done)
    on_phone = await phone.expect("chat", is_done)
    assert on_phone["data"]["content"] == ""  # it heard every chunk
    assert "a long answer please" in on_laptop["data"]["content"]
    assert on_laptop["seq"] == on_phone["seq"]


async def test_a_member_who_joins_a_room_mid_reply_gets_the_whole_answer(
    start_server: StartServer, name: Namer
) -> None:
    srv, room, bob, a = await _shared_room(start_server, name, 0.05)
    await a.send(ai("explain it to the room", room_id=room))
    await a.expect("chat", _streaming)
    b = await joined(srv, bob, room)
    for_bob = await b.expect("chat", _completion)
    for_alice = await a.expect("chat", is_done)
    assert for_alice["data"]["content"] == ""
    assert "explain it to the room" in for_bob["data"]["content"]


async def test_chunks_do_not_overtake_the_question_for_a_member_catching_up(
    start_server: StartServer, name: Namer
) -> None:
    srv, room, bob, a = await _shared_room(start_server, name, 0.002)
    await (await joined(srv, bob, room)).close()
    for i in range(4000):  # bob's backlog: eight pages of catch-up
        await a.send(chat(room, f"backlog {i}", message_id=f"b{i}"))
    await a.expect("delivery_confirmation", lambda f: f["data"]["message_id"] == "b3999")
    await a.send(ai("the question", room_id=room))
    await a.expect("chat", _streaming)
    b = await srv.connect(bob)  # catches up while the reply streams
    done = await b.expect("chat", _completion)
    assert "the question" in done["data"]["content"]  # it missed chunks: the whole answer
    seen = [f for f in b.frames if f is not None and f.get("type") == "chat"]
    question = next(i for i, f in enumerate(seen) if f["data"].get("content") == "the question")
    chunks = [i for i, f in enumerate(seen) if _streaming(f)]
    assert all(i > question for i in chunks)
