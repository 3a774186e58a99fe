"""Budgets that are never overdrawn (SPEC §10): the worst case of a reply is reserved
in the database before any provider is called, concurrent requests on several
processes included; what is not used is returned."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from chinwag.ai.base import ChatTurn
from chinwag.ai.tokens import count_prompt_tokens
from tests.ai.fake_openai import FakeOpenAI
from tests.e2e.ai_helpers import ai, cluster, is_done, openai_server
from tests.e2e.cluster_helpers import require_backends, start_cluster
from tests.support import Namer, Server, StartServer

QUESTION = "how much is left?"
MAX_TOKENS = 20
#: What one request may use at worst: its prompt as the server counts it plus max_tokens.
WORST = count_prompt_tokens([ChatTurn("user", QUESTION)]) + MAX_TOKENS


def answered(frame: dict[str, Any], message_id: str) -> bool:
    """The server's answer to the chat frame ``message_id``: confirmed or refused."""
    return (
        frame["type"] in ("delivery_confirmation", "error")
        and frame["data"].get("message_id") == message_id
    )


def seconds_to_midnight() -> float:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


async def test_a_budget_for_three_replies_admits_three_of_ten_concurrent_requests(
    pg_url: str, start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    await require_backends()
    # Each reply reports exactly its worst case, so three replies spend the whole budget
    # whatever the timing, and a fourth never fits.
    fake.usage = {
        "prompt_tokens": WORST - MAX_TOKENS,
        "completion_tokens": MAX_TOKENS,
        "total_tokens": WORST,
    }
    servers = await start_cluster(
        start_server,
        2,
        cluster(
            pg_url,
            AI_PROVIDER="openai",
            OPENAI_BASE_URL=fake.base_url,
            OPENAI_API_KEY="k",
            DEFAULT_MODEL="ok",
            AI_MAX_RETRIES=0,
            AI_MAX_CONCURRENT_PER_USER=20,
            AI_BUDGET_TOKENS_PER_DAY=3 * WORST + WORST // 2,
        ),
    )
    user = await servers[0].user(name())
    clients = [await servers[i % 2].connect(user) for i in range(10)]
    window_left = seconds_to_midnight()
    await asyncio.gather(
        *(
            c.send(ai(QUESTION, max_tokens=MAX_TOKENS, message_id=f"m{i}"))
            for i, c in enumerate(clients)
        )
    )
    answers = [
        await c.expect(where=lambda f, i=i: answered(f, f"m{i}"), timeout=30)  # type: ignore[misc]
        for i, c in enumerate(clients)
    ]
    refused = [f["data"] for f in answers if f["type"] == "error"]
    accepted = {f["data"]["conversation_id"] for f in answers if f["type"] != "error"}
    assert len(accepted) == 3 and len(refused) == 7
    for conv in accepted:  # every user's connection gets each completion
        await clients[0].expect(
            "chat",
            lambda f, c=conv: is_done(f) and f["data"]["conversation_id"] == c,  # type: ignore[misc]
            timeout=30,
        )
    assert {r["code"] for r in refused} == {"BUDGET_EXCEEDED"}
    assert all(0 < r["retry_after"] <= window_left + 1 for r in refused), refused
    assert len(fake.requests) == 3  # the refused ones reached no provider
    usage = (await servers[1].get("/api/v1/usage", user)).json()
    assert usage["tokens_today"] == 3 * WORST <= usage["budget"]["tokens_per_day"]
    assert usage["reserved"] == {"tokens": 0, "usd": 0, "replies": 0}
    convs = (await servers[0].get("/api/v1/conversations", user)).json()["conversations"]
    assert len(convs) == 3


async def test_usage_shows_a_running_replys_reservation_and_returns_the_unused_part(
    start_server: StartServer, name: Namer
) -> None:
    srv: Server = await start_server(OFFLINE_TOKEN_DELAY=0.05, AI_BUDGET_TOKENS_PER_DAY=10_000)
    user = await srv.user(name())
    client = await srv.connect(user)
    await client.send(ai(QUESTION, max_tokens=500))
    await client.expect("chat")  # streaming
    usage = (await srv.get("/api/v1/usage", user)).json()
    worst = count_prompt_tokens([ChatTurn("user", QUESTION)]) + 500
    assert usage["reserved"]["tokens"] == worst and usage["reserved"]["replies"] == 1
    assert usage["tokens_today"] == worst and usage["budget"]["tokens_per_day"] == 10_000
    done = (await client.expect("chat", is_done))["data"]
    usage = (await srv.get("/api/v1/usage", user)).json()
    assert usage["reserved"]["tokens"] == 0 and usage["reserved"]["replies"] == 0
    assert usage["tokens_today"] == done["tokens_used"] < worst


async def test_a_cancelled_reply_is_billed_for_what_it_used(
    start_server: StartServer, name: Namer
) -> None:
    srv: Server = await start_server(OFFLINE_TOKEN_DELAY=0.05, AI_BUDGET_TOKENS_PER_DAY=10_000)
    user = await srv.user(name())
    client = await srv.connect(user)
    await client.send(ai(QUESTION))
    conv = (await client.expect("chat"))["data"]["conversation_id"]
    await client.send({"type": "cancel", "data": {"conversation_id": conv}})
    done = (await client.expect("chat", is_done))["data"]
    assert done["cancelled"] is True
    usage = (await srv.get("/api/v1/usage", user)).json()
    assert usage["tokens_today"] == done["tokens_used"] > 0


async def test_a_request_larger_than_the_whole_budget_is_refused_without_retry_after(
    start_server: StartServer, name: Namer
) -> None:
    srv: Server = await start_server(AI_BUDGET_TOKENS_PER_DAY=100)
    client = await srv.connect(await srv.user(name()))
    await client.send(ai(QUESTION, max_tokens=1000, message_id="huge"))
    error = (await client.expect("error"))["data"]
    assert error["code"] == "BUDGET_EXCEEDED" and error["message_id"] == "huge"
    assert "retry_after" not in error and "max_tokens" in error["error"]
    await client.send(ai(QUESTION, max_tokens=10))
    await client.expect("chat", is_done)


async def test_a_monthly_usd_budget_refuses_what_would_overdraw_it(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    prices = '{"ok": {"input": 1.0, "output": 1.0}}'  # USD per 1,000 tokens
    worst_usd = WORST / 1000
    fake.usage = {
        "prompt_tokens": WORST - MAX_TOKENS,
        "completion_tokens": MAX_TOKENS,
        "total_tokens": WORST,
    }
    srv = await openai_server(
        start_server, fake, AI_PRICES=prices, AI_BUDGET_USD_PER_MONTH=f"{2.5 * worst_usd:.6f}"
    )
    user = await srv.user(name())
    client = await srv.connect(user)
    await client.send(ai(QUESTION, max_tokens=MAX_TOKENS))
    first = (await client.expect("chat", is_done))["data"]
    assert first["cost_usd"] == round(worst_usd, 8)
    await client.send(ai(QUESTION, max_tokens=MAX_TOKENS))
    await client.expect("chat", is_done)
    await client.send(ai(QUESTION, max_tokens=MAX_TOKENS, message_id="third"))
    error = (await client.expect("error"))["data"]
    assert error["code"] == "BUDGET_EXCEEDED" and error["retry_after"] > 0
    usage = (await srv.get("/api/v1/usage", user)).json()
    assert usage["usd_this_month"] <= usage["budget"]["usd_per_month"]
    assert len(fake.requests) == 2
