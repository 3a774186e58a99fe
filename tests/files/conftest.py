"""Fixtures for chinwag.files and chinwag.core.uploads: storage under tmp_path, a
real clamd (``tests/clamd_fixture.py``), EICAR built at run time, fake clamds, and
UploadManagers over them with a settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from chinwag.core.uploads import UploadLimits, UploadManager
from chinwag.files.scanner import Scanner
from chinwag.files.storage import LocalStorage
from chinwag.store.sql import SqlStore
from tests.clamd_fixture import eicar_bytes

from .fake_clamd import FakeServer, Handler
from .upload_helpers import CHUNK, Clock, FakeScanner, MakeManager

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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def scanner(storage: LocalStorage) -> FakeScanner:
    return FakeScanner(storage.upload_dir)


@pytest.fixture
def make_manager(store: SqlStore, storage: LocalStorage, clock: Clock) -> MakeManager:
    def make(scanner: Scanner, **overrides: int | float) -> UploadManager:
        settings: dict[str, int | float] = {
            "max_file_size": 50 * 1024 * 1024,
            "max_chunk_size": CHUNK,
            "upload_timeout": 3600.0,
            "max_uploads_per_user": 3,
            "max_temp_bytes_per_user": 100 * 1024 * 1024,
        }
        settings.update(overrides)
        limits = UploadLimits(
            max_file_size=int(settings["max_file_size"]),
            max_chunk_size=int(settings["max_chunk_size"]),
            upload_timeout=float(settings["upload_timeout"]),
            max_uploads_per_user=int(settings["max_uploads_per_user"]),
            max_temp_bytes_per_user=int(settings["max_temp_bytes_per_user"]),
        )
        return UploadManager(store.uploads, storage, scanner, limits, clock=clock)

    return make


@pytest.fixture
def manager(make_manager: MakeManager, scanner: FakeScanner) -> UploadManager:
    return make_manager(scanner)
