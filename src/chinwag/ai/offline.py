"""The built-in offline responder: no network, no model, no cost.

It exists so chinwag works on a laptop with no setup and so tests can rely on an
exact reply. It is clearly labelled: its model names start with
``chinwag-offline`` and every answer says it comes from the built-in offline
responder, not a real AI model. The answer summarises what it received (how many
earlier turns, the system prompt if any) and echoes the last user message.

Callers may rely on: the same turns and params give the same deltas; deltas are
words with their trailing whitespace and join to the answer; ``max_tokens`` caps
the completion as counted by ``tokens.count_tokens``; the final ``UsageReport``
uses ``tokens`` counts (prompt framing included).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Sequence

from chinwag.ai.base import ChatTurn, GenerationParams, StreamItem, TextDelta, UsageReport
from chinwag.ai.tokens import count_prompt_tokens, count_tokens, split_tokens
from chinwag.protocol.errors import AIProviderError

#: Every offline model name starts with this, so no one mistakes it for a real model.
OFFLINE_MODEL = "chinwag-offline"

_WORD = re.compile(r"\S+\s*")


class OfflineProvider:
    """Deterministic local responder; ``token_delay`` seconds between tokens
    (0 by default; e.g. 0.03 for a realistic pace in demos)."""

    name = "offline"

    def __init__(
        self, models: tuple[str, ...] = (OFFLINE_MODEL,), token_delay: float = 0.0
    ) -> None:
        if not models:
            raise ValueError("the offline provider needs at least one model name")
        for model in models:
            if not model.startswith(OFFLINE_MODEL):
                raise ValueError(
                    f"offline model names must start with {OFFLINE_MODEL!r}: {model!r}"
                )
        if token_delay < 0:
            raise ValueError(f"token_delay must be >= 0, got {token_delay}")
        self._models = frozenset(models)
        self._token_delay = token_delay

    def serves(self, model: str) -> bool:
        return model in self._models

    async def stream(
        self, turns: Sequence[ChatTurn], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        if not self.serves(params.model):
            raise AIProviderError(f"the offline provider does not serve model {params.model!r}")
        budget = params.max_tokens
        used = 0
        for index, word in enumerate(_WORD.findall(answer(turns, params.model))):
            if budget is not None and used >= budget:
                break
            if index:
                # Also sleep(0) when there is no delay: lets other streams run.
                await asyncio.sleep(self._token_delay)
            cost = count_tokens(word)
            if budget is not None and used + cost > budget:
                # Cut the word to the tokens that still fit, then stop.
                partial = "".join(split_tokens(word)[: budget - used])
                if partial:
                    used += count_tokens(partial)
                    yield TextDelta(partial)
                break
            used += cost
            yield TextDelta(word)
        yield UsageReport(prompt_tokens=count_prompt_tokens(turns), completion_tokens=used)

    async def aclose(self) -> None:
        """Nothing to release."""


def answer(turns: Sequence[ChatTurn], model: str) -> str:
    """The full text the offline responder gives to ``turns`` (a pure function)."""
    system = [t.content for t in turns if t.role == "system"]
    dialogue = [t for t in turns if t.role != "system"]
    last_user = next((t for t in reversed(dialogue) if t.role == "user"), None)
    earlier = len(dialogue) - 1 if dialogue and dialogue[-1] is last_user else len(dialogue)
    parts = [
        f"This is chinwag's built-in offline responder ({model}), not a real AI model.",
        f"I received {earlier} earlier {'turn' if earlier == 1 else 'turns'}",
        f'and the system prompt "{system[-1]}".' if system else "and no system prompt.",
        f"You said: {last_user.content}" if last_user else "You said nothing.",
    ]
    return " ".join(parts)
