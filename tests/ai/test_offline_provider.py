"""The built-in offline responder: deterministic, labelled, paced, capped, counted."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import pytest

from chinwag.ai.base import ChatTurn, GenerationParams, TextDelta, UsageReport
from chinwag.ai.offline import OFFLINE_MODEL, OfflineProvider
from chinwag.ai.tokens import count_prompt_tokens, count_tokens
from chinwag.protocol.errors import AIProviderError

TURNS = [
    ChatTurn("system", "You are a pirate."),
    ChatTurn("user", "Hello"),
    ChatTurn("assistant", "Ahoy."),
    ChatTurn("user", "Where is the treasure buried?"),
]


async def run(
    provider: OfflineProvider, turns: Sequence[ChatTurn], params: GenerationParams
) -> tuple[list[str], list[UsageReport]]:
    texts: list[str] = []
    usage: list[UsageReport] = []
    async with asyncio.timeout(10):
        async for item in provider.stream(turns, params):
            if isinstance(item, TextDelta):
                texts.append(item.text)
            else:
                usage.append(item)
    return texts, usage


async def test_same_input_gives_the_same_deltas() -> None:
    params = GenerationParams(OFFLINE_MODEL)
    first = await run(OfflineProvider(), TURNS, params)
    second = await run(OfflineProvider(), TURNS, params)
    assert first == second


async def test_answer_is_labelled_and_summarises_what_it_received() -> None:
    texts, _ = await run(OfflineProvider(), TURNS, GenerationParams(OFFLINE_MODEL))
    reply = "".join(texts)
    assert reply.startswith(
        "This is chinwag's built-in offline responder (chinwag-offline), not a real AI model."
    )
    assert "I received 2 earlier turns" in reply
    assert 'the system prompt "You are a pirate."' in reply
    assert reply.endswith("You said: Where is the treasure buried?")


async def test_answer_without_system_prompt_says_so() -> None:
    texts, _ = await run(
        OfflineProvider(), [ChatTurn("user", "hi")], GenerationParams(OFFLINE_MODEL)
    )
    reply = "".join(texts)
    assert "0 earlier turns" in reply
    assert "no system prompt" in reply


async def test_streams_word_by_word_with_trailing_whitespace() -> None:
    texts, _ = await run(OfflineProvider(), TURNS, GenerationParams(OFFLINE_MODEL))
    assert len(texts) > 10
    assert all(t.strip() and " " not in t.strip() for t in texts)
    assert all(t.endswith(" ") for t in texts[:-1])


async def test_usage_is_counted_with_the_local_token_counter() -> None:
    texts, usage = await run(OfflineProvider(), TURNS, GenerationParams(OFFLINE_MODEL))
    assert usage == [
        UsageReport(
            prompt_tokens=count_prompt_tokens(TURNS),
            completion_tokens=count_tokens("".join(texts)),
        )
    ]


@pytest.mark.parametrize("max_tokens", [1, 2, 5, 12])
async def test_max_tokens_caps_the_completion(max_tokens: int) -> None:
    full, _ = await run(OfflineProvider(), TURNS, GenerationParams(OFFLINE_MODEL))
    params = GenerationParams(OFFLINE_MODEL, max_tokens=max_tokens)
    texts, [usage] = await run(OfflineProvider(), TURNS, params)
    reply = "".join(texts)
    assert usage.completion_tokens == count_tokens(reply) == max_tokens
    assert "".join(full).startswith(reply)


async def test_large_max_tokens_changes_nothing() -> None:
    full = await run(OfflineProvider(), TURNS, GenerationParams(OFFLINE_MODEL))
    capped = await run(OfflineProvider(), TURNS, GenerationParams(OFFLINE_MODEL, max_tokens=10_000))
    assert capped == full


async def test_token_delay_paces_the_stream() -> None:
    delay = 0.02
    loop = asyncio.get_running_loop()
    provider = OfflineProvider(token_delay=delay)
    params = GenerationParams(OFFLINE_MODEL, max_tokens=10)
    started = loop.time()
    arrivals: list[float] = []
    async with asyncio.timeout(10):
        async for item in provider.stream([ChatTurn("user", "hi")], params):
            if isinstance(item, TextDelta):
                arrivals.append(loop.time() - started)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) >= 2
    assert all(gap >= delay * 0.9 for gap in gaps)  # 0.9: the loop clock's granularity


async def test_closing_early_stops_without_usage() -> None:
    gen = OfflineProvider().stream(TURNS, GenerationParams(OFFLINE_MODEL))
    first = await anext(gen)
    await gen.aclose()
    assert isinstance(first, TextDelta)
    with pytest.raises(StopAsyncIteration):
        await anext(gen)


async def test_unserved_model_is_an_ai_provider_error() -> None:
    with pytest.raises(AIProviderError, match="gpt-4"):
        await run(OfflineProvider(), TURNS, GenerationParams("gpt-4"))


def test_serves_only_its_configured_models() -> None:
    provider = OfflineProvider(models=("chinwag-offline", "chinwag-offline-slow"))
    assert provider.serves("chinwag-offline-slow")
    assert not provider.serves("gpt-4")


def test_model_names_must_be_labelled_offline() -> None:
    with pytest.raises(ValueError, match="chinwag-offline"):
        OfflineProvider(models=("gpt-4",))


def test_negative_token_delay_is_rejected() -> None:
    with pytest.raises(ValueError, match="token_delay"):
        OfflineProvider(token_delay=-1)
