"""The OpenAI-compatible provider against a real local HTTP endpoint (see conftest)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncGenerator

import pytest

from chinwag.ai.base import ChatTurn, GenerationParams, StreamItem, TextDelta, UsageReport
from chinwag.ai.openai_compat import OpenAICompatProvider
from chinwag.protocol.errors import AIProviderError

from .conftest import ProviderFactory
from .fake_openai import FakeOpenAI

TURNS = [
    ChatTurn("system", "You are terse."),
    ChatTurn("user", "Hi"),
    ChatTurn("assistant", "Hello."),
    ChatTurn("user", "What is chinwag?"),
]


async def collect(gen: AsyncGenerator[StreamItem, None]) -> tuple[list[str], list[UsageReport]]:
    texts: list[str] = []
    usage: list[UsageReport] = []
    async with asyncio.timeout(10):
        async for item in gen:
            if isinstance(item, TextDelta):
                texts.append(item.text)
            else:
                usage.append(item)
    return texts, usage


async def test_streams_deltas_in_order_then_the_endpoints_usage(
    make_provider: ProviderFactory, fake_openai: FakeOpenAI
) -> None:
    provider = make_provider()
    texts, usage = await collect(provider.stream(TURNS, GenerationParams("ok")))
    assert texts == list(fake_openai.reply_pieces)
    assert usage == [
        UsageReport(
            prompt_tokens=fake_openai.usage["prompt_tokens"],
            completion_tokens=fake_openai.usage["completion_tokens"],
        )
    ]


async def test_endpoint_receives_the_turns_and_params_it_was_given(
    make_provider: ProviderFactory, fake_openai: FakeOpenAI
) -> None:
    provider = make_provider()
    params = GenerationParams("ok", temperature=0.7, max_tokens=64)
    await collect(provider.stream(TURNS, params))
    [request] = fake_openai.requests
    assert request["messages"] == [{"role": t.role, "content": t.content} for t in TURNS]
    assert request["model"] == "ok"
    assert request["temperature"] == 0.7
    assert request["max_tokens"] == 64
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert fake_openai.auth_headers == ["Bearer test-key"]


async def test_unset_params_are_not_sent(
    make_provider: ProviderFactory, fake_openai: FakeOpenAI
) -> None:
    await collect(make_provider().stream(TURNS, GenerationParams("ok")))
    [request] = fake_openai.requests
    assert "temperature" not in request
    assert "max_tokens" not in request


async def test_no_usage_report_when_the_endpoint_sends_none(make_provider: ProviderFactory) -> None:
    texts, usage = await collect(make_provider().stream(TURNS, GenerationParams("no-usage")))
    assert "".join(texts) == "Hello there, friend!"
    assert usage == []


async def test_http_500_becomes_ai_provider_error_keeping_the_body_internal(
    make_provider: ProviderFactory,
) -> None:
    provider = make_provider(max_retries=0)
    with pytest.raises(AIProviderError, match="HTTP 500") as caught:
        await collect(provider.stream(TURNS, GenerationParams("fail-500")))
    assert caught.value.details == {"status": 500}
    assert "exploded" not in caught.value.message
    assert caught.value.internal is not None and "exploded" in caught.value.internal


async def test_sdk_retries_a_failed_request_max_retries_times(
    make_provider: ProviderFactory, fake_openai: FakeOpenAI
) -> None:
    provider = make_provider(max_retries=1)
    texts, _ = await collect(provider.stream(TURNS, GenerationParams("flaky")))
    assert "".join(texts) == "Hello there, friend!"
    assert len(fake_openai.requests) == 2


async def test_endpoint_that_hangs_past_the_timeout_becomes_ai_provider_error(
    make_provider: ProviderFactory, fake_openai: FakeOpenAI
) -> None:
    provider = make_provider(timeout=0.5, max_retries=0)
    with pytest.raises(AIProviderError, match="no progress"):
        await collect(provider.stream(TURNS, GenerationParams("hang")))
    assert await fake_openai.wait_client_left()


async def test_connection_dropped_mid_stream_becomes_ai_provider_error(
    make_provider: ProviderFactory,
) -> None:
    texts: list[str] = []
    with pytest.raises(AIProviderError, match="connection"):
        async with asyncio.timeout(10):
            async for item in make_provider().stream(TURNS, GenerationParams("drop")):
                if isinstance(item, TextDelta):
                    texts.append(item.text)
    assert texts == ["Hello", " there"]  # what arrived before the drop was delivered


async def test_stream_ending_without_finish_reason_becomes_ai_provider_error(
    make_provider: ProviderFactory,
) -> None:
    with pytest.raises(AIProviderError, match="before the reply was finished"):
        await collect(make_provider().stream(TURNS, GenerationParams("truncated")))


async def test_closing_the_generator_early_closes_the_request_at_the_server(
    make_provider: ProviderFactory, fake_openai: FakeOpenAI
) -> None:
    gen = make_provider().stream(TURNS, GenerationParams("stall"))
    async with asyncio.timeout(5):
        first = await anext(gen)
    assert first == TextDelta("Hello")
    await gen.aclose()
    assert await fake_openai.wait_client_left()


async def test_cancelling_the_reader_closes_the_request_at_the_server(
    make_provider: ProviderFactory, fake_openai: FakeOpenAI
) -> None:
    gen = make_provider().stream(TURNS, GenerationParams("stall"))
    async with asyncio.timeout(5):
        await anext(gen)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):  # the caller's "no progress" timeout
            await anext(gen)
    assert await fake_openai.wait_client_left()
    await gen.aclose()


async def test_unreachable_endpoint_becomes_ai_provider_error() -> None:
    # A bound socket that does not listen: connecting to its port is refused.
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed_port.getsockname()[1]}/v1"
        provider = OpenAICompatProvider("k", url, None, timeout=2, max_retries=0)
        try:
            with pytest.raises(AIProviderError, match="connection"):
                await collect(provider.stream(TURNS, GenerationParams("ok")))
        finally:
            await provider.aclose()


def test_serves_any_model_without_a_list_and_only_listed_ones_with_one(
    make_provider: ProviderFactory,
) -> None:
    assert make_provider().serves("anything-at-all")
    listed = make_provider(models=("gpt-4o-mini", "llama3"))
    assert listed.serves("llama3")
    assert not listed.serves("gpt-4")


async def test_unlisted_model_is_refused_without_a_request(
    make_provider: ProviderFactory, fake_openai: FakeOpenAI
) -> None:
    provider = make_provider(models=("llama3",))
    with pytest.raises(AIProviderError, match="not in AI_MODELS"):
        await collect(provider.stream(TURNS, GenerationParams("ok")))
    assert fake_openai.requests == []
