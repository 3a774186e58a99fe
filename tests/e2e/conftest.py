"""Fixtures shared by the end-to-end modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.ai.fake_anthropic import FakeAnthropic, running_fake_anthropic
from tests.ai.fake_openai import FakeOpenAI, running_fake_openai
from tests.support import postgres_database, require_service


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database. Ask for it before ``start_server``: fixtures end in
    reverse order, so the servers stop before their database is dropped."""
    await require_service("postgres", "127.0.0.1", 5432)
    await require_service("redis", "127.0.0.1", 6379)
    async with postgres_database() as url:
        yield url


@pytest.fixture(scope="module", params=["redis", "redis-cluster"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """``BROKER_URL`` of a cluster test: the machine's Redis, then a 3-master Redis
    Cluster (one per session, ``tests/redis_cluster_fixture.py``)."""
    if request.param == "redis-cluster":
        return str(request.getfixturevalue("redis_cluster").url)
    return "redis://127.0.0.1:6379/0"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """A real local OpenAI-compatible endpoint (``tests/ai/fake_openai.py``)."""
    with running_fake_openai() as endpoint:
        yield endpoint


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A real local Anthropic-compatible endpoint (``tests/ai/fake_anthropic.py``)."""
    with running_fake_anthropic() as endpoint:
        yield endpoint
