"""The per-user budget override an admin sets (``PATCH /api/v1/admin/users/{name}``
stores it on the user's row) as admission applies it, on a real SQLite database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chinwag.ai.catalog import Catalog
from chinwag.ai.offline import OfflineProvider
from chinwag.ai.pricing import PriceTable
from chinwag.core.ai_admission import Admission, AdmissionConfig
from chinwag.core.session import Identity
from chinwag.protocol.errors import BudgetExceeded
from chinwag.protocol.messages import ChatData
from chinwag.store.base import Budget, UserChanges
from chinwag.store.sql import SqlStore

DEFAULT = Budget(tokens_per_day=1000, usd_per_month=None)


@pytest.fixture
async def admission(tmp_path: Path) -> AsyncIterator[Admission]:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'chinwag.db'}")
    await store.start()
    await store.users.create("alice", "x")
    catalog = Catalog(
        {"offline": OfflineProvider()}, [], default_model="chinwag-offline", prices=PriceTable()
    )
    yield Admission(catalog, store, AdmissionConfig(4000, 3, DEFAULT, 60, "node"))
    await store.close()


async def test_an_override_replaces_the_default_field_by_field(admission: Admission) -> None:
    users = admission.store.users
    assert await admission.budget_of("alice") == DEFAULT
    await users.update("alice", UserChanges(budget=Budget(tokens_per_day=None, usd_per_month=2.5)))
    assert await admission.budget_of("alice") == Budget(tokens_per_day=1000, usd_per_month=2.5)
    await users.update("alice", UserChanges(budget=Budget(50, None)))
    assert await admission.budget_of("alice") == Budget(50, None)
    await users.update("alice", UserChanges(budget=Budget()))
    assert await admission.budget_of("alice") == DEFAULT


async def test_a_lowered_budget_refuses_the_next_reply(admission: Admission) -> None:
    await admission.store.users.update("alice", UserChanges(budget=Budget(tokens_per_day=10)))
    with pytest.raises(BudgetExceeded):
        await admission.admit(
            Identity(1, "alice"), ChatData(message="hello", max_tokens=50), "hello", None, None
        )
