"""A cheap, local token count, used where no provider tells us the real one.

Callers may rely on: the count is deterministic, costs no I/O, and is additive
over text split at whitespace (``count_tokens(a + " " + b) == count_tokens(a + " ")
+ count_tokens(b)``), so counting word by word while streaming gives the same total
as counting the whole reply. It is an *approximation* of a BPE tokenizer such as
OpenAI's ``cl100k``: good to within tens of percent on English prose, which is
enough for context budgets and for billing a model that reports no usage. It is
not the provider's tokenizer and must not be used where exact counts matter.

The rule (a regular expression over the text):

* a run of ASCII letters is one token per started 6 letters (short words are one
  token, long words a few, as in BPE vocabularies);
* digits come in groups of at most 3 (as ``cl100k`` splits numbers);
* every other letter (accented, Cyrillic, CJK …) and every punctuation mark or
  symbol is one token by itself;
* whitespace is free: it rides with the token before it.

Chat turns cost a little more than their text, as in OpenAI's chat format:
``TOKENS_PER_TURN`` for each turn's role and framing, plus ``REPLY_PRIMING`` once
for the start of the assistant's answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol


class Turn(Protocol):
    """What a prompt turn needs to be counted (``base.ChatTurn`` is one)."""

    @property
    def content(self) -> str: ...


TOKENS_PER_TURN = 3
REPLY_PRIMING = 3

# Leading whitespace of the whole text joins the first token; later whitespace
# trails the token before it, which is what makes counts additive at spaces.
_ONE = r"[A-Za-z]{1,6}|[0-9]{1,3}|[^\sA-Za-z0-9]"
_TOKEN = re.compile(rf"\s*(?:{_ONE})\s*")
_COUNTED = re.compile(_ONE)  # counting needs no whitespace: a third of the time


def split_tokens(text: str) -> list[str]:
    """The pieces ``count_tokens`` counts: ``"".join(split_tokens(t)) == t`` whenever
    ``t`` has at least one token (text that is only whitespace has none)."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Approximate number of tokens in ``text`` (0 for empty or blank text)."""
    return len(_COUNTED.findall(text))


def count_prompt_tokens(turns: Iterable[Turn]) -> int:
    """Approximate prompt size of ``turns`` as sent to a chat model, framing included.

    An empty conversation costs ``REPLY_PRIMING``; each turn adds its text's count
    plus ``TOKENS_PER_TURN``.
    """
    return REPLY_PRIMING + sum(count_tokens(t.content) + TOKENS_PER_TURN for t in turns)
