"""Fixtures for chinwag.files and chinwag.core.uploads: storage under tmp_path, a
real clamd (``tests/clamd_fixture.py``), EICAR built at run time, fake clamds."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:  # pytest puts it there already (tests/ has no __init__.py)
    sys.path.insert(0, _TESTS)

from clamd_fixture import clamd, clamd_factory, eicar_bytes  # noqa: E402

from chinwag.files.storage import UploadStorage  # noqa: E402

from .fake_clamd import FakeServer, Handler  # noqa: E402

__all__ = ["clamd", "clamd_factory"]  # re-exported fixtures

MakeServer = Callable[[Handler], Awaitable[FakeServer]]


@pytest.fixture
def eicar() -> bytes:
    """The EICAR test file, assembled at run time."""
    return eicar_bytes()


@pytest.fixture
def storage(tmp_path: Path) -> UploadStorage:
    return UploadStorage(tmp_path / "uploads", tmp_path / "tmp")


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
