"""What a provider failure tells the client, and what it tells only the log.

Providers' error bodies can carry API keys (masked or not), internal host names and
model paths: the client's message names only the kind of failure and the HTTP
status; the provider's own words travel in ``AIProviderError.internal``."""

from __future__ import annotations

from typing import Any, Literal

from chinwag.protocol.errors import AIProviderError

Kind = Literal["timeout", "connection", "status", "other"]


def provider_failure(
    kind: Kind,
    *,
    started: bool,
    timeout: float,
    status: int | None = None,
    internal: str | None = None,
) -> AIProviderError:
    where = "while streaming the reply" if started else "before the reply started"
    if kind == "timeout":
        return AIProviderError(
            f"the AI provider made no progress for {timeout:g} s ({where})", internal=internal
        )
    if kind == "connection":
        return AIProviderError(
            f"lost or could not open the connection to the AI provider ({where})", internal=internal
        )
    if kind == "status" and status is not None:
        return AIProviderError(
            f"the AI provider refused the request (HTTP {status}, {where})",
            internal=internal,
            details={"status": status},
        )
    return AIProviderError(f"the AI provider failed {where}", internal=internal)


def short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sdk_failure(
    exc: Exception,
    *,
    started: bool,
    timeout: float,
    timeout_type: type[Exception],
    connection_type: type[Exception] | tuple[type[Exception], ...],
    status_type: type[Exception],
) -> AIProviderError:
    """An SDK's exception as ``AIProviderError``. The OpenAI and Anthropic SDKs share
    a design: a timeout is a kind of connection error, a status error has
    ``status_code`` and ``message``."""
    if isinstance(exc, status_type):
        status: Any = getattr(exc, "status_code", None)
        return provider_failure(
            "status",
            started=started,
            timeout=timeout,
            status=status,
            internal=short(str(getattr(exc, "message", exc))),
        )
    kind: Kind = (
        "timeout"
        if isinstance(exc, timeout_type)
        else "connection"
        if isinstance(exc, connection_type)
        else "other"
    )
    return provider_failure(
        kind, started=started, timeout=timeout, internal=short(f"{type(exc).__name__}: {exc}")
    )
