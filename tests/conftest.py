"""Fixtures: real chinwag servers (subprocesses on free ports), real databases.

Storage-facing tests (marked ``storage``) run against SQLite and PostgreSQL; the rest
against SQLite. In CI (``CI=true``) a missing PostgreSQL or Redis fails the run."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import Namer, Server, ServerFactory, postgres_database, require_service

pytest_plugins = ["tests.clamd_fixture", "tests.s3_fixture", "tests.redis_cluster_fixture"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("storage") is not None
        metafunc.parametrize(
            "backend", ["sqlite", "postgres"] if both else ["sqlite"], indirect=True, scope="module"
        )


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
async def database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'chinwag.db'}"
        return
    await require_service("postgres", "127.0.0.1", 5432)
    async with postgres_database() as url:
        yield url


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await start_server(**settings)`` starts a chinwag process; all stop at the end."""
    factory = ServerFactory(tmp_path)
    try:
        yield factory.start
    finally:
        await factory.stop_all()


@pytest.fixture(scope="module")
async def server(
    tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> AsyncIterator[Server]:
    """One server per module (and backend); tests use unique names to stay apart."""
    factory = ServerFactory(tmp_path_factory.mktemp("server"))
    try:
        yield await factory.start(DATABASE_URL=database_url)
    finally:
        await factory.stop_all()


@pytest.fixture(scope="session")
def name() -> Namer:
    """Unique names so tests never collide."""

    def unique(prefix: str = "u") -> str:
        return f"{prefix}{uuid.uuid4().hex[:8]}"

    return unique


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"
