"""Fixtures shared by the end-to-end modules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import postgres_database, require_service


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database. Ask for it before ``start_server``: fixtures end in
    reverse order, so the servers stop before their database is dropped."""
    await require_service("postgres", "127.0.0.1", 5432)
    await require_service("redis", "127.0.0.1", 6379)
    async with postgres_database() as url:
        yield url
