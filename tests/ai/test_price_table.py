"""Costs from token counts and the AI_PRICES setting."""

from __future__ import annotations

import pytest

from chinwag.ai.pricing import PriceTable

PRICES = '{"gpt-4o-mini": {"input": 0.00015, "output": 0.0006}}'


def test_cost_is_per_thousand_input_and_output_tokens() -> None:
    table = PriceTable.from_json(PRICES)
    assert table.cost_usd("gpt-4o-mini", 1000, 500) == 0.00045


def test_cost_is_rounded_to_eight_decimals() -> None:
    table = PriceTable.from_json('{"m": {"input": 0.001, "output": 0.003}}')
    assert table.cost_usd("m", 1, 1) == 0.000004
    assert table.cost_usd("m", 7, 0) == 0.000007
    assert table.cost_usd("m", 1, 0) == round(0.001 / 1000, 8)


def test_unknown_model_costs_nothing() -> None:
    assert PriceTable.from_json(PRICES).cost_usd("llama3", 1000, 1000) == 0.0


def test_offline_models_cost_nothing_even_if_priced() -> None:
    table = PriceTable.from_json('{"chinwag-offline": {"input": 1, "output": 1}}')
    assert table.cost_usd("chinwag-offline", 1000, 1000) == 0.0


@pytest.mark.parametrize("raw", [None, "", "  ", "{}"])
def test_unset_or_empty_setting_gives_an_empty_table(raw: str | None) -> None:
    assert PriceTable.from_json(raw).cost_usd("gpt-4o-mini", 1000, 1000) == 0.0


def test_invalid_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        PriceTable.from_json("{gpt-4o-mini: cheap}")


def test_negative_price_names_the_model_and_field() -> None:
    with pytest.raises(ValueError, match=r'AI_PRICES\["gpt-4o"\]\.output'):
        PriceTable.from_json('{"gpt-4o": {"input": 0.0025, "output": -1}}')


def test_missing_field_names_the_model_and_field() -> None:
    with pytest.raises(ValueError, match=r'AI_PRICES\["gpt-4o"\]\.input'):
        PriceTable.from_json('{"gpt-4o": {"output": 0.01}}')


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"cached"):
        PriceTable.from_json('{"gpt-4o": {"input": 0.1, "output": 0.1, "cached": 0.05}}')


def test_negative_token_counts_are_rejected() -> None:
    with pytest.raises(ValueError):
        PriceTable.from_json(PRICES).cost_usd("gpt-4o-mini", -1, 0)
