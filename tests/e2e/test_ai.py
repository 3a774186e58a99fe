"""AI conversations over the socket (SPEC §5-6), with the offline model and with a
real local OpenAI-compatible HTTP endpoint."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from tests.ai.fake_openai import FakeOpenAI
from tests.e2e.ai_helpers import ai, is_done, openai_server
from tests.e2e.rooms_helpers import joined
from tests.support import Namer, Server, StartServer

CHUNK_KEYS = {"role", "content", "streaming", "conversation_id", "timestamp"}
DONE_KEYS = {
    "role",
    "content",
    "streaming",
    "done",
    "message_id",
    "conversation_id",
    "tokens_used",
    "model_used",
    "cost_usd",
    "response_time",
}


async def test_offline_reply_streams_chunks_then_completion(server: Server, name: Namer) -> None:
    client = await server.connect(await server.user(name()))
    await client.send(
        ai("Hello, AI!", conversation_id=None, model_preference="gpt-4", message_id="m1")
    )
    confirmation = await client.expect("delivery_confirmation")
    conv = confirmation["data"]["conversation_id"]
    chunks = []
    while True:
        frame = await client.expect("chat")
        if is_done(frame):
            break
        assert set(frame["data"]) == CHUNK_KEYS
        assert frame["data"]["streaming"] is True and frame["data"]["conversation_id"] == conv
        chunks.append(frame["data"]["content"])
    assert len(chunks) > 3
    text = "".join(chunks)
    assert "offline responder" in text and "Hello, AI!" in text
    done = frame["data"]
    assert DONE_KEYS <= set(done)
    assert done["content"] == "" and done["streaming"] is False
    assert done["model_used"] == "chinwag-offline" and done["model_fallback"] is True
    assert done["cost_usd"] == 0 and done["tokens_used"] > 0
    assert isinstance(done["message_id"], int) and done["response_time"] >= 0


async def test_two_conversations_stream_at_once_on_one_socket(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(OFFLINE_TOKEN_DELAY=0.01)
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("first conversation"))
    await client.send(ai("second conversation"))
    seen: list[int] = []
    done: set[int] = set()
    before_first_done: set[int] = set()
    while len(done) < 2:
        frame = await client.expect("chat")
        conv = frame["data"]["conversation_id"]
        if is_done(frame):
            if not done:
                before_first_done = set(seen)
            done.add(conv)
        else:
            seen.append(conv)
    assert len(done) == 2
    assert before_first_done == done  # both were streaming before either finished
    switches = sum(1 for a, b in itertools.pairwise(seen) if a != b)
    assert switches >= 2  # interleaved, each chunk tagged with its conversation


async def test_cancel_stops_the_reply_and_keeps_what_was_written(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(OFFLINE_TOKEN_DELAY=0.05)
    user = await srv.user(name())
    client = await srv.connect(user)
    await client.send(ai("please write a long answer"))
    first = await client.expect("chat")
    conv = first["data"]["conversation_id"]
    await client.expect("chat")
    await client.send({"type": "cancel", "data": {"conversation_id": conv}})
    done = await client.expect("chat", is_done)
    assert done["data"]["cancelled"] is True and done["data"]["tokens_used"] > 0
    history = (await srv.get(f"/api/v1/conversations/{conv}/messages", user)).json()
    partial = history["messages"][-1]
    assert partial["role"] == "assistant" and partial["content"]
    assert "You said" not in partial["content"]  # stopped before the end
    await client.send({"type": "cancel", "data": {"conversation_id": conv}})
    assert (await client.expect("error"))["data"]["code"] == "NOT_FOUND"


async def test_a_model_that_goes_silent_mid_reply_ends_it_with_an_error_keeping_the_start(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(OFFLINE_TOKEN_DELAY=30, AI_TIMEOUT=0.5)
    user = await srv.user(name())
    client = await srv.connect(user)
    await client.send(ai("are you there?"))
    first = await client.expect("chat", lambda f: f["data"].get("streaming") is True)
    conv = first["data"]["conversation_id"]
    error = await client.expect("error", timeout=10)
    assert error["data"]["code"] == "AI_PROVIDER_ERROR"
    assert error["data"]["error"] == "the model sent nothing for 0.5 s"
    assert error["data"]["conversation_id"] == conv
    done = await client.expect("chat", is_done)
    assert done["data"]["tokens_used"] > 0
    history = (await srv.get(f"/api/v1/conversations/{conv}/messages", user)).json()
    assert history["messages"][-1]["content"] == first["data"]["content"]
    await client.send({"type": "ping"})
    await client.expect("pong")


async def test_cancel_closes_the_request_at_the_provider(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    srv = await openai_server(start_server, fake)
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("stall please", model_preference="stall"))
    first = await client.expect("chat")
    await client.send(
        {"type": "cancel", "data": {"conversation_id": first["data"]["conversation_id"]}}
    )
    assert (await client.expect("chat", is_done))["data"]["cancelled"] is True
    assert await fake.wait_client_left()


async def test_the_model_gets_system_prompt_and_earlier_turns(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    srv = await openai_server(start_server, fake)
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("What is chinwag?", system_prompt="Be brief."))
    conv = (await client.expect("chat", is_done))["data"]["conversation_id"]
    await client.send(ai("And who built it?", conversation_id=conv, system_prompt="Be brief."))
    await client.expect("chat", is_done)
    messages = fake.requests[-1]["messages"]
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is chinwag?"},
        {"role": "assistant", "content": "Hello there, friend!"},
        {"role": "user", "content": "And who built it?"},
    ]


async def test_someone_elses_conversation_is_forbidden(server: Server, name: Namer) -> None:
    alice = await server.connect(await server.user(name()))
    await alice.send(ai("mine"))
    conv = (await alice.expect("chat", is_done))["data"]["conversation_id"]
    mallory_user = await server.user(name())
    mallory = await server.connect(mallory_user)
    await mallory.send(ai("let me read", conversation_id=conv, message_id="steal"))
    error = await mallory.expect("error")
    assert error["data"]["code"] == "FORBIDDEN" and error["data"]["message_id"] == "steal"
    r = await server.get(f"/api/v1/conversations/{conv}/messages", mallory_user)
    assert r.status_code == 403


async def test_unknown_model_falls_back_to_default_model(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    srv = await openai_server(start_server, fake, AI_MODELS="ok,no-usage")
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("hi", model_preference="gpt-9000"))
    done = (await client.expect("chat", is_done))["data"]
    assert done["model_used"] == "ok" and done["model_fallback"] is True
    await client.send(ai("hi", model_preference="no-usage"))
    done = (await client.expect("chat", is_done))["data"]
    assert done["model_used"] == "no-usage" and "model_fallback" not in done


async def test_cost_comes_from_reported_usage_and_the_price_table(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    prices = '{"ok": {"input": 0.01, "output": 0.02}}'
    srv = await openai_server(start_server, fake, AI_PRICES=prices)
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("how much?"))
    done = (await client.expect("chat", is_done))["data"]
    assert done["tokens_used"] == 42 + 7  # as the provider reported them
    assert done["cost_usd"] == pytest.approx((42 * 0.01 + 7 * 0.02) / 1000)
    await client.send(ai("again"))
    await client.expect("chat", is_done)
    stats = (await srv.get("/api/v1/ws/stats", await srv.admin())).json()["ai"]
    assert stats["requests"] == 2 and stats["tokens_used"] == 98
    assert stats["cost_usd"] == pytest.approx(2 * (42 * 0.01 + 7 * 0.02) / 1000)


@pytest.mark.parametrize("model", ["fail-500", "hang", "drop"])
async def test_provider_failure_is_ai_provider_error(
    start_server: StartServer, fake: FakeOpenAI, name: Namer, model: str
) -> None:
    srv = await openai_server(start_server, fake, AI_TIMEOUT=1)
    user = await srv.user(name())
    client = await srv.connect(user)
    await client.send(ai("break", model_preference=model))
    conv = (await client.expect("delivery_confirmation"))["data"]["conversation_id"]
    error = await client.expect("error", timeout=15)
    assert error["data"]["code"] == "AI_PROVIDER_ERROR"
    assert error["data"]["conversation_id"] == conv
    await client.send({"type": "ping"})
    await client.expect("pong")
    history = (await srv.get(f"/api/v1/conversations/{conv}/messages", user)).json()
    assert history["messages"][0]["content"] == "break"  # nothing stored was lost
    if model == "drop":  # what streamed before the drop is kept
        assert history["messages"][-1]["content"] == "Hello there"


async def test_room_participants_see_the_stream_and_a_stored_completion(
    server: Server, name: Namer
) -> None:
    room = name("shared")
    alice, bob = await server.user(name()), await server.user(name())
    a = await joined(server, alice, room, "shared")
    b = await joined(server, bob, room)
    await a.send(ai("hello room", room_id=room))
    typing = await b.expect("typing")
    assert typing["data"]["username"] == "assistant" and typing["data"]["is_typing"] is True
    question = await b.expect("chat", lambda f: f["data"]["role"] == "user")
    chunks = []
    while True:
        frame = await b.expect("chat", lambda f: f["data"]["role"] == "assistant")
        if is_done(frame):
            break
        assert frame["room_id"] == room and "seq" not in frame
        chunks.append(frame["data"]["content"])
    assert frame["seq"] > question["seq"] and frame["data"]["content"] == ""
    assert (await b.expect("typing"))["data"]["is_typing"] is False
    history = (await server.get(f"/api/v1/ws/rooms/{room}/messages", bob)).json()["messages"]
    stored = history[-1]
    assert stored["seq"] == frame["seq"] and stored["data"]["role"] == "assistant"
    assert stored["data"]["content"] == "".join(chunks) and stored["data"]["done"] is True


async def test_reply_outlives_a_sender_who_disconnects(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(OFFLINE_TOKEN_DELAY=0.02)
    user = await srv.user(name())
    client = await srv.connect(user)
    await client.send(ai("keep going without me"))
    conv = (await client.expect("chat"))["data"]["conversation_id"]
    await client.close()
    deadline = time.monotonic() + 20
    while True:
        history = (await srv.get(f"/api/v1/conversations/{conv}/messages", user)).json()
        answer = [m for m in history["messages"] if m["role"] == "assistant"]
        if answer:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert "keep going without me" in answer[0]["content"]


async def test_resent_message_id_starts_no_second_reply(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server()
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("once only", message_id="dup-1"))
    first = await client.expect("delivery_confirmation")
    await client.expect("chat", is_done)
    before = len(client.frames)
    await client.send(ai("once only", message_id="dup-1"))
    again = await client.expect("delivery_confirmation")
    assert again["data"]["duplicate"] is True
    assert again["data"]["server_message_id"] == first["data"]["server_message_id"]
    await client.send({"type": "ping"})
    await client.expect("pong")
    assert not [f for f in client.frames[before:] if f and f["type"] == "chat"]
    stats = (await srv.get("/api/v1/ws/stats", await srv.admin())).json()
    assert stats["ai"]["requests"] == 1


async def test_ai_false_in_a_room_gets_no_reply(server: Server, name: Namer) -> None:
    room = name("shared")
    a = await joined(server, await server.user(name()), room, "shared")
    await a.send({"type": "chat", "room_id": room, "data": {"message": "just us", "ai": False}})
    await a.expect("delivery_confirmation")
    await a.send({"type": "ping"})
    await a.expect("pong")
    assert [f for f in a.pending("chat") if f["data"]["role"] == "assistant"] == []
