"""Building the configured provider by name."""

from __future__ import annotations

import pytest

from chinwag.ai.offline import OfflineProvider
from chinwag.ai.openai_compat import OpenAICompatProvider
from chinwag.ai.registry import build_provider, default_model_for


async def test_offline_kind_builds_the_offline_responder() -> None:
    provider = build_provider("offline", token_delay=0.01)
    assert isinstance(provider, OfflineProvider)
    assert provider.name == "offline"
    assert provider.serves("chinwag-offline")
    await provider.aclose()


async def test_openai_kind_builds_a_provider_serving_the_listed_models() -> None:
    provider = build_provider(
        "openai", models=("llama3",), base_url="http://127.0.0.1:1/v1", timeout=5
    )
    try:
        assert isinstance(provider, OpenAICompatProvider)
        assert provider.name == "openai"
        assert provider.serves("llama3")
        assert not provider.serves("gpt-4")
    finally:
        await provider.aclose()


def test_unknown_kind_is_a_value_error_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="offline, openai, anthropic"):
        build_provider("gemini")


def test_default_model_follows_the_kind_or_the_model_list() -> None:
    assert default_model_for("offline") == "chinwag-offline"
    assert default_model_for("openai") == "gpt-4o-mini"
    assert default_model_for("openai", ("llama3", "mistral")) == "llama3"
