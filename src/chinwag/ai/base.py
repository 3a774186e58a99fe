"""The one interface every AI provider implements, and the pure helpers around it.

Invariant: nothing in ``chinwag.ai`` knows about rooms, sockets, users or the
database. A provider turns a list of chat turns into a stream of text deltas and
(maybe) one usage report; the caller (``core``) owns context building,
cancellation, per-chunk timeouts, accounting and storage.

``core`` imports this module (and ``tokens``/``pricing``) only; concrete
providers are picked in ``registry.build_provider`` by the server.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from chinwag.ai.tokens import TOKENS_PER_TURN, count_prompt_tokens, count_tokens

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One message of the conversation as the model sees it."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """What to generate with. ``None`` means "the provider's default".

    Raises ValueError for ``temperature`` outside 0..2 or ``max_tokens`` < 1 (the
    protocol layer validates these first; this is the last line of defence).
    """

    model: str
    temperature: float | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise ValueError(f"temperature must be within 0..2, got {self.temperature}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")


@dataclass(frozen=True, slots=True)
class TextDelta:
    """The next piece of the reply, in order; never empty."""

    text: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Token counts *as the provider reported them*, sent at most once per stream."""

    prompt_tokens: int
    completion_tokens: int


StreamItem = TextDelta | UsageReport


class Provider(Protocol):
    """An AI backend. Instances are long-lived, shared and safe for concurrent streams."""

    #: Short kind name: ``"offline"`` or ``"openai"``.
    name: str

    def serves(self, model: str) -> bool:
        """True when ``stream`` accepts ``model``. Cheap, no I/O."""
        ...

    def stream(
        self, turns: Sequence[ChatTurn], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        """Generate a reply to ``turns`` (oldest first).

        An async generator: yields a ``TextDelta`` per token or chunk as it arrives
        and at most one ``UsageReport`` (normally last; absent when the provider
        reported none, in which case the caller counts with ``tokens``). Normal end
        of iteration means the model finished.

        Failures raise ``chinwag.protocol.errors.AIProviderError``, never an SDK
        exception. The caller may stop early with ``await gen.aclose()`` (or by
        cancelling the task awaiting it); that stops the work at the provider
        (closes the HTTP stream). The caller enforces "no progress" timeouts around
        each ``__anext__``.
        """
        ...

    async def aclose(self) -> None:
        """Release connections. Call once at shutdown, after the last stream."""
        ...


class RemoteModels:
    """What the SDK-backed providers share: their SDK options checked once, and the
    models they serve (``models=None``: any name; otherwise only those listed)."""

    def __init__(self, models: tuple[str, ...] | None, timeout: float, max_retries: int) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self._models = frozenset(models) if models is not None else None
        self._timeout = timeout

    def serves(self, model: str) -> bool:
        return self._models is None or model in self._models


def resolve_model(
    provider: Provider, requested: str | None, default_model: str
) -> tuple[str, bool]:
    """The model to use for a request, and whether it *fell back* to ``default_model``.

    ``requested`` (the client's ``model_preference``) is used when ``provider``
    serves it; ``None``/empty means "no preference" (no fall-back). The caller must
    check at start-up that ``provider.serves(default_model)``.
    """
    if not requested:
        return default_model, False
    if provider.serves(requested):
        return requested, False
    return default_model, True


def trim_context(
    system_prompt: str | None,
    history: Sequence[ChatTurn],
    new_message: str,
    budget_tokens: int,
) -> list[ChatTurn]:
    """The turns to send: system prompt, the newest history that fits, the new message.

    ``history`` is oldest first. The system prompt (when non-empty) and the new user
    message are always kept, even if they alone exceed the budget; history turns are
    added newest first while ``tokens.count_prompt_tokens`` of the result stays
    within ``budget_tokens``, and the first one that does not fit ends the scan (no
    gaps: the kept history is a contiguous, most recent slice).
    """
    head = [ChatTurn("system", system_prompt)] if system_prompt else []
    last = ChatTurn("user", new_message)
    used = count_prompt_tokens([*head, last])
    kept: list[ChatTurn] = []
    for turn in reversed(history):
        cost = count_tokens(turn.content) + TOKENS_PER_TURN
        if used + cost > budget_tokens:
            break
        used += cost
        kept.append(turn)
    kept.reverse()
    return [*head, *kept, last]
