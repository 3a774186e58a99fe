"""Several providers at once (SPEC §10): Anthropic, routes, fall-back models and the
model list, through the real server and real local HTTP endpoints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.ai.fake_anthropic import INPUT_TOKENS, OUTPUT_TOKENS, SECRET_DETAIL, FakeAnthropic
from tests.ai.fake_openai import FakeOpenAI
from tests.e2e.ai_helpers import ai, is_done
from tests.support import Namer, Server, StartServer

ROUTES = json.dumps(
    [
        {"match": "claude-*", "provider": "anthropic"},
        {"match": "chinwag-offline*", "provider": "offline"},
        {"match": "*", "provider": "openai"},
    ]
)
PRICES = json.dumps(
    {"claude-ok": {"input": 0.003, "output": 0.015}, "ok": {"input": 0.01, "output": 0.02}}
)


async def routed_server(
    start_server: StartServer,
    fake: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    **settings: Any,
) -> Server:
    srv: Server = await start_server(
        AI_ROUTES=ROUTES,
        OPENAI_BASE_URL=fake.base_url,
        OPENAI_API_KEY="sk-test",
        ANTHROPIC_BASE_URL=fake_anthropic.base_url,
        ANTHROPIC_API_KEY="sk-ant-test",
        DEFAULT_MODEL="ok",
        AI_MAX_RETRIES=0,
        **settings,
    )
    return srv


async def test_anthropic_streams_a_reply_billed_from_its_reported_usage(
    start_server: StartServer, fake_anthropic: FakeAnthropic, name: Namer
) -> None:
    srv: Server = await start_server(
        AI_PROVIDER="anthropic",
        ANTHROPIC_BASE_URL=fake_anthropic.base_url,
        ANTHROPIC_API_KEY="sk-ant-test",
        DEFAULT_MODEL="claude-ok",
        AI_MAX_RETRIES=0,
        AI_PRICES=PRICES,
    )
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("Hello Claude", system_prompt="Be brief.", max_tokens=64))
    chunks = []
    while not is_done(frame := await client.expect("chat")):
        chunks.append(frame["data"]["content"])
    assert "".join(chunks) == "Claude says hello."
    done = frame["data"]
    assert done["model_used"] == "claude-ok"
    assert done["tokens_used"] == INPUT_TOKENS + OUTPUT_TOKENS
    assert done["cost_usd"] == pytest.approx((INPUT_TOKENS * 0.003 + OUTPUT_TOKENS * 0.015) / 1000)
    sent = fake_anthropic.requests[-1]
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 64
    assert sent["messages"] == [{"role": "user", "content": "Hello Claude"}]


async def test_an_anthropic_failure_is_ai_provider_error_without_its_body(
    start_server: StartServer, fake_anthropic: FakeAnthropic, name: Namer
) -> None:
    srv: Server = await start_server(
        AI_PROVIDER="anthropic",
        ANTHROPIC_BASE_URL=fake_anthropic.base_url,
        DEFAULT_MODEL="claude-ok",
        AI_MAX_RETRIES=0,
    )
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("break", model_preference="claude-fail-500"))
    error = (await client.expect("error", timeout=15))["data"]
    assert error["code"] == "AI_PROVIDER_ERROR" and "internal" not in error["error"]
    assert SECRET_DETAIL in srv.log


async def test_routes_send_each_model_to_its_provider(
    start_server: StartServer, fake: FakeOpenAI, fake_anthropic: FakeAnthropic, name: Namer
) -> None:
    srv = await routed_server(start_server, fake, fake_anthropic)
    client = await srv.connect(await srv.user(name()))
    for model in ("claude-ok", "ok", "chinwag-offline"):
        await client.send(ai("which one?", model_preference=model))
        done = (await client.expect("chat", is_done))["data"]
        assert done["model_used"] == model and "model_fallback" not in done
    assert [r["model"] for r in fake_anthropic.requests] == ["claude-ok"]
    assert [r["model"] for r in fake.requests] == ["ok"]


async def test_a_provider_failing_before_the_first_chunk_falls_through_to_the_next_model(
    start_server: StartServer, fake: FakeOpenAI, fake_anthropic: FakeAnthropic, name: Namer
) -> None:
    srv = await routed_server(
        start_server, fake, fake_anthropic, AI_FALLBACK_MODELS="claude-ok,chinwag-offline"
    )
    user = await srv.user(name())
    client = await srv.connect(user)
    await client.send(ai("try hard", model_preference="fail-500"))
    done = (await client.expect("chat", is_done))["data"]
    assert done["model_used"] == "claude-ok" and done["model_fallback"] is True
    assert done["tokens_used"] == INPUT_TOKENS + OUTPUT_TOKENS
    assert client.pending("error") == []
    assert [r["model"] for r in fake.requests] == ["fail-500"]
    history = (
        await srv.get(f"/api/v1/conversations/{done['conversation_id']}/messages", user)
    ).json()["messages"]
    assert history[-1]["content"] == "Claude says hello."
    assert history[-1]["model_used"] == "claude-ok"


async def test_after_the_first_chunk_a_failure_keeps_the_partial_answer(
    start_server: StartServer, fake: FakeOpenAI, fake_anthropic: FakeAnthropic, name: Namer
) -> None:
    srv = await routed_server(start_server, fake, fake_anthropic, AI_FALLBACK_MODELS="claude-ok")
    client = await srv.connect(await srv.user(name()))
    await client.send(ai("half way", model_preference="drop"))
    error = (await client.expect("error", timeout=15))["data"]
    assert error["code"] == "AI_PROVIDER_ERROR"
    done = (await client.expect("chat", is_done))["data"]
    assert done["model_used"] == "drop" and done["error"] == "AI_PROVIDER_ERROR"
    assert fake_anthropic.requests == []


async def test_models_lists_what_can_be_asked_for_with_provider_and_prices(
    start_server: StartServer, fake: FakeOpenAI, fake_anthropic: FakeAnthropic, name: Namer
) -> None:
    srv = await routed_server(
        start_server, fake, fake_anthropic, AI_PRICES=PRICES, AI_FALLBACK_MODELS="chinwag-offline"
    )
    user = await srv.user(name())
    models = (await srv.get("/api/v1/models", user)).json()
    assert models == [
        {"id": "ok", "provider": "openai", "input_price": 0.01, "output_price": 0.02},
        {"id": "chinwag-offline", "provider": "offline", "input_price": 0.0, "output_price": 0.0},
        {"id": "claude-ok", "provider": "anthropic", "input_price": 0.003, "output_price": 0.015},
    ]
    assert (await srv.get("/api/v1/models")).status_code == 401
