"""Any OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, llama.cpp …).

Uses the official ``openai`` SDK's ``AsyncOpenAI`` with streamed chat completions.
Callers may rely on:

* every failure (HTTP status, connection, timeout, malformed stream, a stream that
  ends before the model's ``finish_reason``) raises ``AIProviderError`` whose
  message says what happened; the SDK exception is only the ``__cause__``;
* ``timeout`` is the SDK's own limit on connecting and on each read (so "no bytes
  for ``timeout`` seconds" fails even without the caller's per-chunk timeout), and
  ``max_retries`` is how often the SDK retries a failed *request* (never a stream
  that already started);
* a ``UsageReport`` is yielded only when the endpoint sent usage;
* closing the generator early closes the HTTP response, so the endpoint sees the
  client go away and stops generating.

The key and base URL are always passed to the SDK explicitly, so it never picks
them up from ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` itself (the settings do that).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from openai import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncOpenAI,
    OpenAIError,
    omit,
)
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

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

#: Used when no base URL is configured.
OPENAI_BASE_URL = "https://api.openai.com/v1"
# Local servers (Ollama, llama.cpp) want no key, but the SDK insists on one.
_NO_KEY = "no-key"


class OpenAICompatProvider(RemoteModels):
    """One SDK client (connection pool) shared by all streams; ``aclose`` at shutdown.

    ``models=None`` serves any model name (passed through to the endpoint);
    otherwise only the names listed. ``base_url`` is the endpoint actually used
    (for logs).
    """

    name = "openai"

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        models: tuple[str, ...] | None,
        timeout: float,
        max_retries: int = 2,
    ) -> None:
        super().__init__(models, timeout, max_retries)
        self.base_url = base_url or OPENAI_BASE_URL
        self._client = AsyncOpenAI(
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
        try:
            chunks = await self._client.chat.completions.create(
                model=params.model,
                messages=[_message(turn) for turn in turns],
                temperature=omit if params.temperature is None else params.temperature,
                max_tokens=omit if params.max_tokens is None else params.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
        except OpenAIError as exc:
            raise self._error(exc, started=False) from exc

        finished = False
        usage: UsageReport | None = None
        try:
            while True:
                try:
                    chunk: ChatCompletionChunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except (OpenAIError, ValueError) as exc:  # ValueError: bad JSON in an event
                    raise self._error(exc, started=True) from exc
                for choice in chunk.choices:
                    if choice.index != 0:  # we ask for one choice; ignore any others
                        continue
                    if choice.delta.content:
                        yield TextDelta(choice.delta.content)
                    if choice.finish_reason is not None:
                        finished = True
                if chunk.usage is not None and usage is None:
                    usage = UsageReport(
                        prompt_tokens=chunk.usage.prompt_tokens,
                        completion_tokens=chunk.usage.completion_tokens,
                    )
        finally:
            # Runs on normal end, on error, on aclose() and on cancellation: an
            # unread response is closed, which drops the connection to the endpoint.
            await chunks.close()
        if not finished:
            raise AIProviderError(
                "the AI provider's stream ended before the reply was finished "
                "(connection dropped mid-stream?)"
            )
        if usage is not None:
            yield usage

    async def aclose(self) -> None:
        await self._client.close()

    def _error(self, exc: Exception, *, started: bool) -> AIProviderError:
        return sdk_failure(
            exc,
            started=started,
            timeout=self._timeout,
            timeout_type=APITimeoutError,
            connection_type=APIConnectionError,
            status_type=APIStatusError,
        )


def _message(turn: ChatTurn) -> ChatCompletionMessageParam:
    if turn.role == "system":
        return {"role": "system", "content": turn.content}
    if turn.role == "user":
        return {"role": "user", "content": turn.content}
    return {"role": "assistant", "content": turn.content}
