"""Fixtures for the AI provider tests: a real local OpenAI-compatible endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from chinwag.ai.openai_compat import OpenAICompatProvider

from .fake_openai import FakeOpenAI, running_fake_openai

ProviderFactory = Callable[..., OpenAICompatProvider]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh fake endpoint per test (see ``fake_openai.py`` for its modes)."""
    with running_fake_openai() as fake:
        yield fake


@pytest.fixture
async def make_provider(fake_openai: FakeOpenAI) -> AsyncIterator[ProviderFactory]:
    """Build providers pointed at the fake endpoint; all are closed after the test."""
    made: list[OpenAICompatProvider] = []

    def make(
        *, timeout: float = 5.0, max_retries: int = 0, models: tuple[str, ...] | None = None
    ) -> OpenAICompatProvider:
        provider = OpenAICompatProvider(
            api_key="test-key",
            base_url=fake_openai.base_url,
            models=models,
            timeout=timeout,
            max_retries=max_retries,
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()
