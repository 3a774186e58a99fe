"""Which names a chat mentions, and how a search query becomes words (no server)."""

from __future__ import annotations

import pytest

from chinwag.core.message_ops import asks_assistant, mentioned, search_words
from chinwag.protocol.errors import InvalidMessage
from chinwag.protocol.messages import ChatData


def test_mentions_are_names_after_an_at_sign_each_once() -> None:
    assert mentioned("@bob and @carol, then @bob again") == ["bob", "carol"]


def test_an_email_address_is_not_a_mention() -> None:
    assert mentioned("write to bob@example.com") == []


def test_a_name_ending_a_sentence_is_also_tried_without_the_full_stop() -> None:
    assert mentioned("thanks @bob.") == ["bob.", "bob"]
    assert mentioned("@j.doe: hi") == ["j.doe:", "j.doe"]


def test_naming_the_assistant_turns_ai_on_only_when_it_was_off() -> None:
    off = ChatData(message="@assistant summarise", ai=False)
    assert asks_assistant(off).ai is True
    plain = ChatData(message="no one named", ai=False)
    assert asks_assistant(plain) is plain


def test_search_words_are_lower_case_words_and_punctuation_alone_is_refused() -> None:
    assert search_words('Deploy "Friday"-night!') == ["deploy", "friday", "night"]
    with pytest.raises(InvalidMessage):
        search_words("?! --")
