"""Driving the parent of ``chinwag serve --workers N``: is it healthy, has it logged,
did it exit, and fresh connections that any worker may take."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.cluster_helpers import eventually
from tests.support import Server

READY = "workers on http://"


async def _healthy(srv: Server) -> bool:
    await _logged(srv, "")
    try:
        return (await _fresh_get(srv, "/health")).status_code == 200
    except httpx.HTTPError:
        return False


async def _logged(srv: Server, text: str) -> bool:
    assert srv.proc is not None
    if srv.proc.poll() is not None:
        pytest.fail(f"chinwag exited with {srv.proc.returncode}:\n{srv.log}")
    return text in srv.log


async def _exit_code(srv: Server) -> int:
    assert srv.proc is not None
    await eventually(lambda: _stopped(srv), within=30, what="the parent to exit")
    return srv.proc.returncode


async def _stopped(srv: Server) -> bool:
    assert srv.proc is not None
    return srv.proc.poll() is not None


async def _fresh_get(srv: Server, path: str, **kw: Any) -> httpx.Response:
    """On a new TCP connection, so the kernel may hand it to any worker."""
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(srv.base + path, **kw)


async def _clients(srv: Server, count: int) -> list[Any]:
    user = await srv.user()
    return [await srv.connect(user) for _ in range(count)]
