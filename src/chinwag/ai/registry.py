"""Picking a provider by name: the one place that knows the concrete classes.

Only the server's ``create_app`` should import this module (``core`` imports
``chinwag.ai.base``, which also has ``resolve_model``; it is re-exported here for
convenience).
"""

from __future__ import annotations

from chinwag.ai.base import Provider, resolve_model
from chinwag.ai.offline import OFFLINE_MODEL, OfflineProvider
from chinwag.ai.openai_compat import OpenAICompatProvider

__all__ = ["PROVIDER_KINDS", "build_provider", "default_model_for", "resolve_model"]

#: Values accepted for the ``AI_PROVIDER`` setting.
PROVIDER_KINDS = ("offline", "openai")


def build_provider(
    kind: str,
    *,
    models: tuple[str, ...] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 2,
    token_delay: float = 0.0,
) -> Provider:
    """A provider for the ``AI_PROVIDER`` setting ``kind``.

    ``models`` is ``AI_MODELS`` (``None``: offline serves ``chinwag-offline``, openai
    passes any name through); ``api_key``/``base_url``/``timeout``/``max_retries``
    apply to ``openai``, ``token_delay`` to ``offline``; the others are ignored.
    Raises ValueError for an unknown kind or invalid values.
    """
    if kind == "offline":
        return OfflineProvider(models or (OFFLINE_MODEL,), token_delay=token_delay)
    if kind == "openai":
        return OpenAICompatProvider(
            api_key=api_key,
            base_url=base_url,
            models=models,
            timeout=timeout,
            max_retries=max_retries,
        )
    raise ValueError(f"unknown AI provider {kind!r}; expected one of {', '.join(PROVIDER_KINDS)}")


def default_model_for(kind: str, models: tuple[str, ...] | None = None) -> str:
    """``DEFAULT_MODEL`` when the setting is unset: the first of ``AI_MODELS`` if
    given, else ``chinwag-offline`` for offline and ``gpt-4o-mini`` for openai."""
    if models:
        return models[0]
    return OFFLINE_MODEL if kind == "offline" else "gpt-4o-mini"
