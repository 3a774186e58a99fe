"""Fixtures for chinwag.files and chinwag.core.uploads: storage under tmp_path, a
real clamd (``tests/clamd_fixture.py``), EICAR built at run time, fake clamds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from chinwag.files.storage import LocalStorage
from chinwag.store.sql import SqlStore
from tests.clamd_fixture import eicar_bytes

from .fake_clamd import FakeServer, Handler

# ``clamd`` and ``clamd_factory`` come from tests/clamd_fixture.py, registered for the
# whole suite by ``pytest_plugins`` in tests/conftest.py.

MakeServer = Callable[[Handler], Awaitable[FakeServer]]


@pytest.fixture
def eicar() -> bytes:
    """The EICAR test file, assembled at run time."""
    return eicar_bytes()


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "uploads", tmp_path / "tmp")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    """A migrated SQLite database: where upload state lives."""
    sql = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'chinwag.db'}")
    await sql.start()
    try:
        yield sql
    finally:
        await sql.close()


@pytest.fixture
async def fake_server() -> AsyncIterator[MakeServer]:
    """Start fake clamd servers with a per-connection handler; closed after the test."""
    servers: list[FakeServer] = []

    async def make(handler: Handler) -> FakeServer:
        server = FakeServer(handler)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()
