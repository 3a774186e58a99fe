"""Anthropic's Messages API, streamed, on the official ``anthropic`` SDK.

Callers may rely on what ``openai_compat`` promises (every failure is an
``AIProviderError`` with the provider's own words only in ``internal``; closing the
generator closes the HTTP stream; ``timeout`` and ``max_retries`` are the SDK's),
and on the Messages API's shape being handled here: the system prompt travels as
``system``, the turns alternate user/assistant starting with a user turn (adjacent
turns of one role are joined, a leading assistant turn is dropped), ``max_tokens``
is always sent (the API requires it), ``temperature`` is not sent (this SDK's
Messages API has no such parameter), and usage comes from ``message_start``
(input tokens) and ``message_delta`` (output tokens so far).

The key and base URL are always passed explicitly (the settings read
``ANTHROPIC_API_KEY``/``ANTHROPIC_BASE_URL``), so the SDK reads no environment.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from anthropic import (
    AnthropicError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncAnthropic,
    omit,
)
from anthropic.types import MessageParam
from httpx2 import TransportError

from chinwag.ai.base import (
    ChatTurn,
    GenerationParams,
    RemoteModels,
    StreamItem,
    TextDelta,
    UsageReport,
)
from chinwag.ai.failures import sdk_failure
from chinwag.protocol.errors import AIProviderError

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
#: Sent when the caller gives no ``max_tokens`` (the API has no default).
DEFAULT_MAX_TOKENS = 4096
_NO_KEY = "no-key"


class AnthropicProvider(RemoteModels):
    """One SDK client shared by all streams; ``aclose`` at shutdown. ``models=None``
    serves any model name; otherwise only those listed."""

    name = "anthropic"

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        models: tuple[str, ...] | None,
        timeout: float,
        max_retries: int = 2,
    ) -> None:
        super().__init__(models, timeout, max_retries)
        self.base_url = base_url or ANTHROPIC_BASE_URL
        self._client = AsyncAnthropic(
            api_key=api_key or _NO_KEY,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def stream(
        self, turns: Sequence[ChatTurn], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        if not self.serves(params.model):
            raise AIProviderError(f"model {params.model!r} is not in AI_MODELS")
        system = "\n\n".join(t.content for t in turns if t.role == "system")
        try:
            events = await self._client.messages.create(
                model=params.model,
                system=system or omit,
                messages=alternating(turns),
                max_tokens=params.max_tokens or DEFAULT_MAX_TOKENS,
                stream=True,
            )
        except AnthropicError as exc:
            raise self._error(exc, started=False) from exc

        prompt_tokens: int | None = None
        completion_tokens = 0
        finished = False
        try:
            while True:
                try:
                    item = await anext(events)
                except StopAsyncIteration:
                    break
                except (AnthropicError, TransportError, ValueError) as exc:
                    # The SDK lets a transport error of its HTTP client (httpx2) through
                    # when the connection drops mid-body.
                    raise self._error(exc, started=True) from exc
                if item.type == "message_start":
                    prompt_tokens = item.message.usage.input_tokens
                    completion_tokens = item.message.usage.output_tokens
                elif item.type == "content_block_delta" and item.delta.type == "text_delta":
                    if item.delta.text:
                        yield TextDelta(item.delta.text)
                elif item.type == "message_delta":
                    completion_tokens = item.usage.output_tokens
                    if item.usage.input_tokens is not None:
                        prompt_tokens = item.usage.input_tokens
                elif item.type == "message_stop":
                    finished = True
        finally:
            await events.close()
        if not finished:
            raise AIProviderError(
                "the AI provider's stream ended before the reply was finished "
                "(connection dropped mid-stream?)"
            )
        if prompt_tokens is not None:
            yield UsageReport(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    async def aclose(self) -> None:
        await self._client.close()

    def _error(self, exc: Exception, *, started: bool) -> AIProviderError:
        return sdk_failure(
            exc,
            started=started,
            timeout=self._timeout,
            timeout_type=APITimeoutError,
            connection_type=(APIConnectionError, TransportError),
            status_type=APIStatusError,
        )


def alternating(turns: Sequence[ChatTurn]) -> list[MessageParam]:
    """The non-system turns as Messages API messages: user first, roles alternating."""
    merged: list[tuple[str, str]] = []
    for turn in turns:
        if turn.role == "system" or (not merged and turn.role == "assistant"):
            continue
        if merged and merged[-1][0] == turn.role:
            merged[-1] = (turn.role, f"{merged[-1][1]}\n\n{turn.content}")
        else:
            merged.append((turn.role, turn.content))
    return [_message(role, content) for role, content in merged]


def _message(role: str, content: str) -> MessageParam:
    if role == "user":
        return {"role": "user", "content": content}
    return {"role": "assistant", "content": content}
