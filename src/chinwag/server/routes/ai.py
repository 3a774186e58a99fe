"""The AI's models and the caller's AI use (SPEC §10)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from chinwag.core.assistant import Assistant
from chinwag.protocol.errors import NotImplementedYet
from chinwag.server.deps import RuntimeDep, UserDep

router = APIRouter(tags=["ai"])


def _assistant(rt: RuntimeDep) -> Assistant:
    if rt.service.assistant is None:
        raise NotImplementedYet("AI replies are not configured on this server")
    return rt.service.assistant


@router.get("/api/v1/models")
async def models(_who: UserDep, rt: RuntimeDep) -> list[dict[str, Any]]:
    """The models a client may ask for, ``DEFAULT_MODEL`` first; prices in USD per
    1,000 tokens (``null``: no price configured)."""
    return [
        {
            "id": m.id,
            "provider": m.provider,
            "input_price": m.input_price,
            "output_price": m.output_price,
        }
        for m in _assistant(rt).catalog.models()
    ]


@router.get("/api/v1/usage")
async def usage(who: UserDep, rt: RuntimeDep) -> dict[str, Any]:
    used, budget = await _assistant(rt).admission.usage(who.username)
    return {
        "tokens_today": used.tokens_today,
        "usd_this_month": used.usd_this_month,
        "budget": {"tokens_per_day": budget.tokens_per_day, "usd_per_month": budget.usd_per_month},
        "reserved": {
            "tokens": used.reserved_tokens,
            "usd": used.reserved_usd,
            "replies": used.running,
        },
    }
