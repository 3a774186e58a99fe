"""What a reply cost, from token counts and the ``AI_PRICES`` setting.

``AI_PRICES`` is JSON: model -> ``{"input": USD per 1000 prompt tokens,
"output": USD per 1000 completion tokens}``, e.g.
``{"gpt-4o-mini": {"input": 0.00015, "output": 0.0006}}``.
Callers may rely on: a table that parsed is valid (finite, non-negative prices);
``cost_usd`` never raises for a model it does not know (it costs 0) and offline
models always cost 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from chinwag.ai.offline import OFFLINE_MODEL


class ModelPrice(BaseModel):
    """USD per 1000 tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    input: float = Field(ge=0)
    output: float = Field(ge=0)


_PRICES = TypeAdapter(dict[str, ModelPrice])


class PriceTable:
    """Immutable model -> price map."""

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self._prices = dict(prices or {})

    @classmethod
    def from_json(cls, raw: str | None) -> PriceTable:
        """Parse ``AI_PRICES``; ``None`` or blank gives an empty table.

        Raises ValueError with one line naming the bad model and field, e.g.
        ``AI_PRICES["gpt-4o"].output: Input should be greater than or equal to 0``.
        """
        if raw is None or not raw.strip():
            return cls()
        try:
            return cls(_PRICES.validate_json(raw))
        except ValidationError as exc:
            raise ValueError(_describe(exc)) from None

    def __bool__(self) -> bool:
        """True when any price is configured."""
        return bool(self._prices)

    def models(self) -> list[str]:
        """The models that have a price, in the order configured."""
        return list(self._prices)

    def price(self, model: str) -> ModelPrice | None:
        """The configured price of ``model``, if any (offline models: never)."""
        if model.startswith(OFFLINE_MODEL):
            return None
        return self._prices.get(model)

    def cost_usd(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for the given counts, rounded to 8 decimals; 0 for unpriced models."""
        if prompt_tokens < 0 or completion_tokens < 0:
            raise ValueError("token counts must be >= 0")
        price = self.price(model)
        if price is None:
            return 0.0
        cost = (prompt_tokens * price.input + completion_tokens * price.output) / 1000
        return round(cost, 8)


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = list(first["loc"])
    if first["type"] == "json_invalid":
        return f"AI_PRICES is not valid JSON: {first['msg']}"
    where = "AI_PRICES"
    if loc:
        where += f"[{json.dumps(str(loc[0]))}]"
        if len(loc) > 1:
            where += "." + ".".join(str(part) for part in loc[1:])
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: {first['msg']}{more}"
