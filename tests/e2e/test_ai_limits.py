"""What one user may make the AI do: concurrency across processes, bounded input and
output, no unpriced model for free, one reply per conversation, and provider error
bodies kept from the client (SPEC §10, §12)."""

from __future__ import annotations

from typing import Any

from tests.ai.fake_openai import FakeOpenAI
from tests.e2e.ai_helpers import ai, cluster, is_done, openai_server, outcome
from tests.e2e.cluster_helpers import require_backends, start_cluster
from tests.support import Namer, Server, StartServer

SLOW = 0.05  # seconds between offline tokens: a reply runs for about two seconds


def done_in(frame: dict[str, Any], conversation_id: int) -> bool:
    return is_done(frame) and frame["data"]["conversation_id"] == conversation_id


async def confirmed(client: Any, frame: dict[str, Any]) -> int:
    await client.send(frame)
    return int((await client.expect("delivery_confirmation"))["data"]["conversation_id"])


async def test_replies_beyond_the_per_user_limit_get_rate_limit_across_processes(
    pg_url: str, start_server: StartServer, name: Namer
) -> None:
    await require_backends()
    a, b = await start_cluster(
        start_server, 2, cluster(pg_url, AI_MAX_CONCURRENT_PER_USER=2, OFFLINE_TOKEN_DELAY=SLOW)
    )
    user = await a.user(name())
    on_a, on_b = await a.connect(user), await b.connect(user)
    first = await confirmed(on_a, ai("one", message_id="c1"))
    second = await confirmed(on_a, ai("two", message_id="c2"))
    await on_b.send(ai("three", message_id="c3"))
    refused = await on_b.expect("error")
    assert refused["data"]["code"] == "RATE_LIMIT" and refused["data"]["message_id"] == "c3"
    assert "AI_MAX_CONCURRENT_PER_USER" in refused["data"]["error"]
    for conv in (first, second):
        await on_a.expect("chat", lambda f, c=conv: done_in(f, c))  # type: ignore[misc]
    third = await confirmed(on_b, ai("three again", message_id="c4"))
    assert (await on_b.expect("chat", lambda f: done_in(f, third)))["data"]["tokens_used"] > 0
    titles = [
        c["title"] for c in (await a.get("/api/v1/conversations", user)).json()["conversations"]
    ]
    assert "three" not in titles  # the refused request created nothing


async def test_a_message_over_the_context_budget_is_refused_naming_the_limit(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    srv = await openai_server(start_server, fake, AI_CONTEXT_TOKENS=100)
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("word " * 1000, message_id="big"))
    error = await client.expect("error")
    assert error["data"]["code"] == "INVALID_MESSAGE" and error["data"]["message_id"] == "big"
    assert "AI_CONTEXT_TOKENS=100" in error["data"]["error"]
    await client.send(ai("short", system_prompt="Be brief. " * 60, message_id="sys"))
    assert (await client.expect("error"))["data"]["code"] == "INVALID_MESSAGE"
    await client.send(ai("fits", message_id="ok"))
    await client.expect("chat", is_done)
    assert [r["messages"][-1]["content"] for r in fake.requests] == ["fits"]


async def test_max_tokens_is_capped_at_the_models_maximum(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    srv = await openai_server(
        start_server, fake, AI_MAX_TOKENS=2000, AI_MODEL_MAX_TOKENS='{"no-*": 300}'
    )
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("long please", max_tokens=1_000_000))
    await client.expect("chat", is_done)
    await client.send(ai("long please", max_tokens=1_000_000, model_preference="no-usage"))
    await client.expect("chat", is_done)
    await client.send(ai("short please", max_tokens=50))
    await client.expect("chat", is_done)
    assert [r["max_tokens"] for r in fake.requests] == [2000, 300, 50]


async def test_a_model_without_a_price_is_not_served_when_prices_are_set(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    srv = await openai_server(start_server, fake, AI_PRICES='{"ok": {"input": 1, "output": 2}}')
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("free lunch?", model_preference="o1-pro"))
    done = (await client.expect("chat", is_done))["data"]
    assert done["model_used"] == "ok" and done["model_fallback"] is True
    assert done["cost_usd"] > 0
    assert [r["model"] for r in fake.requests] == ["ok"]


async def test_a_second_chat_in_a_conversation_with_a_running_reply_is_refused(
    start_server: StartServer, name: Namer
) -> None:
    srv: Server = await start_server(OFFLINE_TOKEN_DELAY=SLOW)
    user = await srv.user(name())
    client = await srv.connect(user)
    conv = await confirmed(client, ai("first question"))
    await client.send(ai("second question", conversation_id=conv, message_id="again"))
    refused = await client.expect("error")
    assert refused["data"]["code"] == "RATE_LIMIT" and refused["data"]["message_id"] == "again"
    assert refused["data"]["conversation_id"] == conv
    await client.expect("chat")  # the first reply streams on
    await client.send({"type": "cancel", "data": {"conversation_id": conv}})
    assert (await client.expect("chat", is_done))["data"]["cancelled"] is True
    await client.send(ai("third question", conversation_id=conv))
    await client.expect("chat", is_done)
    history = (await srv.get(f"/api/v1/conversations/{conv}/messages", user)).json()
    roles = [(m["role"], m["content"][:15]) for m in history["messages"]]
    assert [r for r, _ in roles] == ["user", "assistant", "user", "assistant"]
    assert "second question" not in [c for _, c in roles]


async def test_a_provider_error_body_reaches_the_log_not_the_client(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    srv = await openai_server(start_server, fake)
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("break", model_preference="fail-500"))
    error = await client.expect("error", timeout=15)
    assert error["data"]["code"] == "AI_PROVIDER_ERROR"
    assert "exploded" not in error["data"]["error"]
    assert "HTTP 500" in error["data"]["error"]
    await client.send({"type": "ping"})
    await client.expect("pong")
    assert "the fake model exploded" in srv.log


async def test_all_outcomes_of_a_burst_are_answered(start_server: StartServer, name: Namer) -> None:
    """Sixty chats from one connection: three run, the rest are refused at once."""
    srv: Server = await start_server(OFFLINE_TOKEN_DELAY=SLOW)
    client = await srv.connect(await srv.user(name()))
    for i in range(60):
        await client.send(ai(f"question {i}", message_id=f"b{i}"))
    ends = [await client.expect(where=outcome, timeout=30) for _ in range(60)]
    codes = [f["data"].get("code", "done") for f in ends]
    assert codes.count("done") == 3 and codes.count("RATE_LIMIT") == 57
