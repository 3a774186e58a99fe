"""Building the AI half from the settings: providers, the model catalog and what
the service's assistant is made of. Every problem is a SettingsError naming the setting."""

from __future__ import annotations

from chinwag.ai.base import Provider
from chinwag.ai.catalog import Catalog, parse_model_max_tokens, parse_routes
from chinwag.ai.offline import OFFLINE_MODEL
from chinwag.ai.pricing import PriceTable
from chinwag.ai.registry import build_provider
from chinwag.core.ai_admission import AdmissionConfig
from chinwag.core.assistant import AssistantConfig
from chinwag.core.wiring import AISetup
from chinwag.settings import Settings, SettingsError
from chinwag.store.base import Budget


def create_catalog(settings: Settings) -> Catalog:
    try:
        prices = PriceTable.from_json(settings.ai_prices)
        routes = parse_routes(settings.ai_routes)
        model_max_tokens = parse_model_max_tokens(settings.ai_model_max_tokens)
    except ValueError as exc:
        raise SettingsError(f"invalid setting {exc}") from None
    kinds = list(dict.fromkeys([r.provider for r in routes] or [settings.ai_provider]))
    listed = tuple(settings.ai_models)
    providers: dict[str, Provider] = {}
    for kind in kinds:
        offline = kind == "offline"
        models = tuple(m for m in listed if m.startswith(OFFLINE_MODEL) == offline) or None
        providers[kind] = build_provider(
            kind,
            models=models,
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            timeout=settings.ai_timeout,
            max_retries=settings.ai_max_retries,
            token_delay=settings.offline_token_delay,
            anthropic_api_key=settings.anthropic_api_key,
            anthropic_base_url=settings.anthropic_base_url,
        )
    try:
        return Catalog(
            providers,
            routes,
            default_model=settings.effective_default_model,
            prices=prices,
            fallback_models=settings.ai_fallback_models,
            max_tokens=settings.ai_max_tokens,
            model_max_tokens=model_max_tokens,
            known_models=listed,
        )
    except ValueError as exc:
        raise SettingsError(f"invalid setting {exc}") from None


def ai_setup(settings: Settings, catalog: Catalog, node_id: str) -> AISetup:
    return AISetup(
        catalog,
        AdmissionConfig(
            context_tokens=settings.ai_context_tokens,
            max_concurrent_per_user=settings.ai_max_concurrent_per_user,
            budget=Budget(settings.ai_budget_tokens_per_day, settings.ai_budget_usd_per_month),
            lease_seconds=max(60.0, 3 * settings.ai_timeout),
            node_id=node_id,
        ),
        AssistantConfig(settings.ai_timeout, settings.drain_timeout, settings.typing_timeout),
    )
