"""Fixtures shared by the end-to-end modules."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ai.fake_anthropic import FakeAnthropic, running_fake_anthropic
from tests.ai.fake_openai import FakeOpenAI, running_fake_openai
from tests.e2e.cluster_helpers import cluster_env, eventually
from tests.e2e.serve_helpers import _healthy
from tests.support import Server, ServerFactory, free_port, postgres_database, require_service


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


@pytest.fixture
async def workers(pg_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await workers(count, **settings)``: the parent of ``serve --workers count``,
    in a session of its own (as a terminal's foreground job is its own group),
    once /health answers. No admin is created (two workers creating it at once
    race, see cluster_helpers.start_cluster)."""
    started: list[Server] = []

    async def start(count: int, **settings: Any) -> Server:
        workdir = tmp_path / f"w{len(started)}"
        workdir.mkdir()
        env = ServerFactory(tmp_path).env(workdir, **cluster_env(pg_url, **settings))
        for key in ("ADMIN_USERNAME", "ADMIN_PASSWORD"):
            env.pop(key)
        if "JWT_SECRET" not in settings:
            env.pop("JWT_SECRET")
        srv = Server(free_port(), env, workdir)
        started.append(srv)
        with (workdir / "server.log").open("ab") as log:
            srv.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "chinwag",
                    "serve",
                    "--workers",
                    str(count),
                    "--port",
                    str(srv.port),
                ],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        await eventually(lambda: _healthy(srv), within=60, what="/health on the workers")
        return srv

    yield start
    for srv in started:
        await srv.close()
