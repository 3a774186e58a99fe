"""Picking a provider by name: the one place that knows the concrete classes.

Only the server's ``create_app`` should import this module (``core`` imports
``chinwag.ai.base``, which also has ``resolve_model``; it is re-exported here for
convenience). The SDK-backed providers are imported only when configured: the
``openai`` and ``anthropic`` packages take ~2 s to import, which every server start
on the offline model would otherwise pay.
"""

from __future__ import annotations

from chinwag.ai.base import Provider, resolve_model
from chinwag.ai.catalog import default_model_for
from chinwag.ai.offline import OFFLINE_MODEL, OfflineProvider

__all__ = ["PROVIDER_KINDS", "build_provider", "default_model_for", "resolve_model"]

#: Values accepted for the ``AI_PROVIDER`` setting.
PROVIDER_KINDS = ("offline", "openai", "anthropic")


def build_provider(
    kind: str,
    *,
    models: tuple[str, ...] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 2,
    token_delay: float = 0.0,
    anthropic_api_key: str | None = None,
    anthropic_base_url: str | None = None,
) -> Provider:
    """A provider for the ``AI_PROVIDER`` setting ``kind``.

    ``models`` is ``AI_MODELS`` (``None``: offline serves ``chinwag-offline``, openai
    passes any name through); ``api_key``/``base_url``/``timeout``/``max_retries``
    apply to ``openai`` (``anthropic_*`` with ``timeout``/``max_retries`` to
    ``anthropic``), ``token_delay`` to ``offline``; the others are ignored.
    Raises ValueError for an unknown kind or invalid values.
    """
    if kind == "offline":
        return OfflineProvider(models or (OFFLINE_MODEL,), token_delay=token_delay)
    if kind == "openai":
        from chinwag.ai.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(
            api_key=api_key,
            base_url=base_url,
            models=models,
            timeout=timeout,
            max_retries=max_retries,
        )
    if kind == "anthropic":
        from chinwag.ai.anthropic_provider import AnthropicProvider

        return AnthropicProvider(
            api_key=anthropic_api_key,
            base_url=anthropic_base_url,
            models=models,
            timeout=timeout,
            max_retries=max_retries,
        )
    raise ValueError(f"unknown AI provider {kind!r}; expected one of {', '.join(PROVIDER_KINDS)}")
