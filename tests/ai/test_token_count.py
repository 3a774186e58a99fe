"""The local token approximation."""

from __future__ import annotations

import pytest

from chinwag.ai.base import ChatTurn
from chinwag.ai.tokens import (
    REPLY_PRIMING,
    TOKENS_PER_TURN,
    count_prompt_tokens,
    count_tokens,
    split_tokens,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("   \n", 0),
        ("hello", 1),
        ("Hello, world!", 4),
        ("internationalisation", 4),  # long words cost several tokens
        ("1234567", 3),  # digits in groups of three
        ("你好", 2),  # one per non-ASCII letter
    ],
)
def test_counts_words_punctuation_and_digit_groups(text: str, expected: int) -> None:
    assert count_tokens(text) == expected


def test_counts_add_up_when_text_is_split_at_spaces() -> None:
    words = ["The ", "quick, ", "brown ", "fox-like ", "creature!"]
    assert sum(count_tokens(w) for w in words) == count_tokens("".join(words))


def test_pieces_join_back_to_the_text() -> None:
    text = "  Hi there, 12345 internationalisation 你好 "
    pieces = split_tokens(text)
    assert "".join(pieces) == text
    assert len(pieces) == count_tokens(text)


def test_prompt_count_adds_per_turn_framing() -> None:
    turns = [ChatTurn("system", "Be brief."), ChatTurn("user", "Hello")]
    expected = REPLY_PRIMING + (3 + TOKENS_PER_TURN) + (1 + TOKENS_PER_TURN)
    assert count_prompt_tokens(turns) == expected
    assert count_prompt_tokens([]) == REPLY_PRIMING
