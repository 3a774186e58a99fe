"""Choosing the turns to send within a token budget, and choosing the model."""

from __future__ import annotations

import pytest

from chinwag.ai.base import ChatTurn, GenerationParams, resolve_model, trim_context
from chinwag.ai.offline import OfflineProvider
from chinwag.ai.tokens import count_prompt_tokens

HISTORY = [
    ChatTurn("user", "one two three"),
    ChatTurn("assistant", "four five six"),
    ChatTurn("user", "seven eight nine"),
    ChatTurn("assistant", "ten eleven twelve"),
]


def test_everything_fits_in_a_large_budget() -> None:
    turns = trim_context("Be kind.", HISTORY, "thirteen?", budget_tokens=10_000)
    assert turns == [ChatTurn("system", "Be kind."), *HISTORY, ChatTurn("user", "thirteen?")]


def test_oldest_turns_are_dropped_first_and_the_result_fits() -> None:
    full = count_prompt_tokens(trim_context("Be kind.", HISTORY, "thirteen?", 10_000))
    budget = full - 1  # one token short: the oldest turn must go
    turns = trim_context("Be kind.", HISTORY, "thirteen?", budget)
    assert turns == [ChatTurn("system", "Be kind."), *HISTORY[1:], ChatTurn("user", "thirteen?")]
    assert count_prompt_tokens(turns) <= budget


def test_system_prompt_and_new_message_are_kept_even_over_budget() -> None:
    turns = trim_context("Be kind.", HISTORY, "a long new message " * 20, budget_tokens=1)
    assert turns == [ChatTurn("system", "Be kind."), ChatTurn("user", "a long new message " * 20)]


def test_kept_history_has_no_gaps() -> None:
    history = [
        ChatTurn("user", "short"),
        ChatTurn("assistant", "a very long answer " * 50),
        ChatTurn("user", "short again"),
    ]
    budget = count_prompt_tokens([history[0], history[2], ChatTurn("user", "new")])
    turns = trim_context(None, history, "new", budget)
    # The short oldest turn would fit, but it is behind the long one: it goes too.
    assert turns == [history[2], ChatTurn("user", "new")]


@pytest.mark.parametrize("system_prompt", [None, ""])
def test_no_system_turn_without_a_system_prompt(system_prompt: str | None) -> None:
    assert trim_context(system_prompt, [], "hi", 100) == [ChatTurn("user", "hi")]


def test_served_model_preference_is_used() -> None:
    provider = OfflineProvider(models=("chinwag-offline", "chinwag-offline-2"))
    assert resolve_model(provider, "chinwag-offline-2", "chinwag-offline") == (
        "chinwag-offline-2",
        False,
    )


def test_unknown_model_preference_falls_back_to_the_default() -> None:
    assert resolve_model(OfflineProvider(), "gpt-4", "chinwag-offline") == ("chinwag-offline", True)


def test_no_preference_is_the_default_without_fall_back() -> None:
    assert resolve_model(OfflineProvider(), None, "chinwag-offline") == ("chinwag-offline", False)


def test_generation_params_reject_temperature_outside_0_to_2() -> None:
    with pytest.raises(ValueError, match="temperature"):
        GenerationParams("m", temperature=2.5)


def test_generation_params_reject_max_tokens_below_1() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        GenerationParams("m", max_tokens=0)
