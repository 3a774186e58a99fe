"""The Anthropic provider against a real local HTTP server speaking the Messages
API's SSE (``fake_anthropic.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from chinwag.ai.anthropic_provider import AnthropicProvider
from chinwag.ai.base import ChatTurn, GenerationParams, TextDelta, UsageReport
from chinwag.protocol.errors import AIProviderError

from .fake_anthropic import (
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    SECRET_DETAIL,
    FakeAnthropic,
    running_fake_anthropic,
)

TURNS = [
    ChatTurn("system", "Be brief."),
    ChatTurn("assistant", "(greeting)"),
    ChatTurn("user", "Hi"),
    ChatTurn("user", "again"),
    ChatTurn("assistant", "Hello"),
    ChatTurn("user", "How are you?"),
]


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with running_fake_anthropic() as endpoint:
        yield endpoint


@pytest.fixture
async def provider(fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    made = AnthropicProvider("test-key", fake.base_url, None, timeout=5, max_retries=0)
    yield made
    await made.aclose()


async def collect(
    provider: AnthropicProvider, model: str, max_tokens: int | None = None
) -> tuple[str, list[UsageReport]]:
    texts, usage = [], []
    async for item in provider.stream(TURNS, GenerationParams(model, max_tokens=max_tokens)):
        if isinstance(item, TextDelta):
            texts.append(item.text)
        else:
            usage.append(item)
    return "".join(texts), usage


async def test_streams_text_and_reports_usage_from_start_and_delta(
    provider: AnthropicProvider,
) -> None:
    text, usage = await collect(provider, "claude-ok")
    assert text == "Claude says hello."
    assert usage == [UsageReport(prompt_tokens=INPUT_TOKENS, completion_tokens=OUTPUT_TOKENS)]


async def test_system_is_separate_and_turns_alternate_from_a_user_turn(
    provider: AnthropicProvider, fake: FakeAnthropic
) -> None:
    await collect(provider, "claude-ok", max_tokens=77)
    sent = fake.requests[-1]
    assert sent["system"] == "Be brief."
    assert sent["messages"] == [
        {"role": "user", "content": "Hi\n\nagain"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "How are you?"},
    ]
    assert sent["max_tokens"] == 77 and sent["stream"] is True
    assert fake.api_keys[-1] == "test-key"


@pytest.mark.parametrize("model", ["claude-fail-500", "claude-overload"])
async def test_failures_are_ai_provider_errors_keeping_the_detail_internal(
    provider: AnthropicProvider, model: str
) -> None:
    with pytest.raises(AIProviderError) as caught:
        await collect(provider, model)
    assert SECRET_DETAIL not in caught.value.message
    assert caught.value.internal is not None and "anthropic-gw.internal" in caught.value.internal


async def test_a_stream_dropped_mid_body_is_an_ai_provider_error(
    provider: AnthropicProvider,
) -> None:
    with pytest.raises(AIProviderError):
        await collect(provider, "claude-drop")


async def test_an_unreachable_endpoint_is_an_ai_provider_error() -> None:
    provider = AnthropicProvider("k", "http://127.0.0.1:9", None, timeout=2, max_retries=0)
    try:
        with pytest.raises(AIProviderError, match="connection"):
            await collect(provider, "claude-ok")
    finally:
        await provider.aclose()
