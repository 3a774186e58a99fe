"""Which models exist, which provider serves each, what each may cost and produce.

The catalog is built once from the settings (``AI_PROVIDER`` or ``AI_ROUTES``,
``AI_MODELS``, ``AI_PRICES``, ``AI_FALLBACK_MODELS``, ``AI_MAX_TOKENS`` and
``AI_MODEL_MAX_TOKENS``) and is read-only afterwards. Callers may rely on:

* ``choose`` never returns a model no provider serves, and never one without a
  price while prices are configured (offline models are free by design);
* ``chain`` starts with the chosen model, then the fall-back models that are
  served, each once;
* ``max_output`` is the most a reply of that model may produce: a client's
  ``max_tokens`` is capped to it, and a reply's worst case is computed with it.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from chinwag.ai.base import Provider
from chinwag.ai.offline import OFFLINE_MODEL
from chinwag.ai.pricing import ModelPrice, PriceTable

FREE = ModelPrice(input=0, output=0)


class Route(BaseModel):
    """One ``AI_ROUTES`` entry: models whose name matches the glob go to the provider."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    match: str = Field(min_length=1, max_length=128)
    provider: str = Field(pattern="^(offline|openai|anthropic)$")


_ROUTES = TypeAdapter(list[Route])
_MAX_TOKENS = TypeAdapter(dict[str, int])


def parse_routes(raw: str | None) -> list[Route]:
    """``AI_ROUTES`` as routes; blank gives none. Raises ValueError naming the entry."""
    if raw is None or not raw.strip():
        return []
    try:
        return _ROUTES.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise ValueError(f"AI_ROUTES{where}: {first['msg']}") from None


def parse_model_max_tokens(raw: str | None) -> dict[str, int]:
    """``AI_MODEL_MAX_TOKENS`` (JSON, model or glob -> tokens); blank gives none."""
    if raw is None or not raw.strip():
        return {}
    try:
        limits = _MAX_TOKENS.validate_json(raw)
    except ValidationError as exc:
        raise ValueError(f"AI_MODEL_MAX_TOKENS: {exc.errors()[0]['msg']}") from None
    for model, limit in limits.items():
        if limit < 1:
            raise ValueError(f"AI_MODEL_MAX_TOKENS[{json.dumps(model)}]: must be at least 1")
    return limits


def default_model_for(kind: str, models: tuple[str, ...] | None = None) -> str:
    """``DEFAULT_MODEL`` when the setting is unset: the first of ``AI_MODELS`` if
    given, else ``chinwag-offline`` for offline, ``gpt-4o-mini`` for openai and
    ``claude-haiku-4-5`` for anthropic."""
    if models:
        return models[0]
    return {"offline": OFFLINE_MODEL, "anthropic": "claude-haiku-4-5"}.get(kind, "gpt-4o-mini")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    provider: str
    input_price: float | None
    output_price: float | None


class Catalog:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        routes: Sequence[Route],
        *,
        default_model: str,
        prices: PriceTable,
        fallback_models: Sequence[str] = (),
        max_tokens: int = 4096,
        model_max_tokens: Mapping[str, int] | None = None,
        known_models: Sequence[str] = (),
    ) -> None:
        """``providers`` by kind name; with no ``routes`` the one provider serves all.

        Raises ValueError when a route names a provider that is not given, when the
        default model is not served, or when prices are configured and the default
        model has none."""
        if not routes:
            if len(providers) != 1:
                raise ValueError("several providers need AI_ROUTES to say which serves what")
            routes = [Route(match="*", provider=next(iter(providers)))]
        for route in routes:
            if route.provider not in providers:
                raise ValueError(
                    f"AI_ROUTES names provider {route.provider!r}, which is not configured"
                )
        self.providers = dict(providers)
        self.routes = list(routes)
        self.prices = prices
        self.max_tokens = max_tokens
        self.model_max_tokens = dict(model_max_tokens or {})
        self.default_model = default_model
        if self.provider_for(default_model) is None:
            raise ValueError(f"DEFAULT_MODEL: no provider serves {default_model!r}")
        if not self.priced(default_model):
            raise ValueError(f"DEFAULT_MODEL: {default_model!r} has no price in AI_PRICES")
        self.fallback_models = [
            m
            for m in dict.fromkeys(fallback_models)
            if self.provider_for(m) is not None and self.priced(m)
        ]
        self._known = list(
            dict.fromkeys([default_model, *self.fallback_models, *known_models, *prices.models()])
        )

    def provider_for(self, model: str) -> Provider | None:
        """The provider of the first route matching ``model``, if it serves it."""
        for route in self.routes:
            if fnmatch.fnmatchcase(model, route.match):
                provider = self.providers[route.provider]
                return provider if provider.serves(model) else None
        return None

    def priced(self, model: str) -> bool:
        """False only when prices are configured and ``model`` (not offline) has none."""
        return (
            not self.prices
            or model.startswith(OFFLINE_MODEL)
            or self.prices.price(model) is not None
        )

    def choose(self, requested: str | None) -> tuple[str, bool]:
        """The model to answer with, and whether it fell back to ``DEFAULT_MODEL``."""
        if not requested:
            return self.default_model, False
        if self.provider_for(requested) is None or not self.priced(requested):
            return self.default_model, True
        return requested, False

    def chain(self, model: str) -> list[str]:
        """``model``, then the fall-back models to try if its provider fails early."""
        return list(dict.fromkeys([model, *self.fallback_models]))

    def max_output(self, model: str) -> int:
        if model in self.model_max_tokens:
            return self.model_max_tokens[model]
        for pattern, limit in self.model_max_tokens.items():
            if fnmatch.fnmatchcase(model, pattern):
                return limit
        return self.max_tokens

    def models(self) -> list[ModelInfo]:
        """Every model the server knows a name of and can serve, default first."""
        found = []
        for model in self._known:
            provider = self.provider_for(model)
            if provider is None or not self.priced(model):
                continue
            price = self.prices.price(model)
            if price is None and model.startswith(OFFLINE_MODEL):
                price = FREE
            found.append(
                ModelInfo(
                    model,
                    provider.name,
                    price.input if price else None,
                    price.output if price else None,
                )
            )
        return found

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
