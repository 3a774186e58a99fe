"""``chinwag serve --workers N`` as a newcomer runs it: Ctrl-C, a fresh DATA_DIR
without JWT_SECRET, and "ready" in the log (PostgreSQL + Redis)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from chinwag.server.auth import load_or_create_secret
from tests.e2e.test_cluster import cluster_env, eventually
from tests.support import PASSWORD, Server, ServerFactory, free_port

READY = "workers on http://"


@pytest.fixture
async def workers(pg_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await workers(count, **settings)``: the parent of ``serve --workers count``,
    in a session of its own (as a terminal's foreground job is its own group),
    once /health answers. No admin is created (two workers creating it at once
    race, see test_cluster.start_cluster)."""
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
                [sys.executable, "-m", "chinwag", "serve", "--workers", str(count),
                 "--port", str(srv.port)],
                cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        await eventually(lambda: _healthy(srv), within=60, what="/health on the workers")
        return srv

    yield start
    for srv in started:
        await srv.close()


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


async def test_ctrl_c_to_the_parent_closes_every_socket_with_1012(workers) -> None:
    srv = await workers(2, JWT_SECRET="w" * 40)
    clients = await _clients(srv, 4)
    assert srv.proc is not None
    os.kill(srv.proc.pid, signal.SIGINT)
    codes = [await client.wait_closed(timeout=20) for client in clients]
    assert codes == [1012] * 4, srv.log
    assert await _exit_code(srv) == 0, srv.log


async def test_ctrl_c_in_the_terminal_closes_every_socket_with_1012(workers) -> None:
    srv = await workers(2, JWT_SECRET="w" * 40)
    clients = await _clients(srv, 4)
    assert srv.proc is not None
    os.killpg(srv.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    codes = [await client.wait_closed(timeout=20) for client in clients]
    assert codes == [1012] * 4, srv.log
    assert await _exit_code(srv) == 0, srv.log
    assert "Traceback" not in srv.log, srv.log


async def test_ready_is_logged_once_every_worker_serves(workers) -> None:
    srv = await workers(2, JWT_SECRET="w" * 40)
    await eventually(lambda: _logged(srv, READY), within=60, what="the workers' ready line")
    lines = srv.log.splitlines()
    parent = next(i for i, line in enumerate(lines) if READY in line)
    served = [i for i, line in enumerate(lines) if "chinwag ready (node" in line]
    assert len(served) == 2 and all(i < parent for i in served), srv.log
    early = [line for line in lines[:served[0]] if "running on" in line.lower()]
    assert early == [], srv.log
    assert (await _fresh_get(srv, "/health")).status_code == 200


async def test_workers_on_a_fresh_data_dir_keep_one_generated_secret(workers) -> None:
    srv = await workers(3)
    await eventually(lambda: _logged(srv, READY), within=60, what="the workers' ready line")
    secret_files = sorted(p.name for p in (srv.workdir / "data").iterdir())
    assert secret_files == ["jwt_secret"], secret_files
    user = await srv.user()
    # Tokens issued by whichever worker are accepted by every other one.
    for _ in range(12):
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(srv.base + "/api/v1/auth/login",
                                json={"username": user.username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        me = await _fresh_get(srv, "/api/v1/auth/me",
                              headers={"Authorization": f"Bearer {r.json()['access_token']}"})
        assert me.status_code == 200, me.text


def test_many_starts_at_once_on_a_fresh_data_dir_keep_one_secret(tmp_path: Path) -> None:
    """The race itself, made likely: 16 threads released together ask for the secret
    of a fresh DATA_DIR, five times over (each stat and write lets the others run)."""
    for round_ in range(5):
        data = tmp_path / f"data{round_}"
        got = _all_at_once(16, lambda d=data: load_or_create_secret(None, d))
        assert len(got) == 16 and set(got) == {(data / "jwt_secret").read_text().strip()}
        assert [p.name for p in data.iterdir()] == ["jwt_secret"]


def _all_at_once(count: int, call: Callable[[], str]) -> list[str]:
    barrier = threading.Barrier(count)
    got: list[str] = []

    def run() -> None:
        barrier.wait()
        got.append(call())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return got


def _replies(text: str) -> float:
    """The total of ``chinwag_ai_replies_total`` over its labels in a /metrics page."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == "chinwag_ai_replies_total")


def _replies_per_worker(directory: Path) -> dict[str, float]:
    """Each worker's own ``chinwag_ai_replies_total``, read from its multiprocess file."""
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        total = sum(value for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))
                    if json.loads(key)[1] == "chinwag_ai_replies_total")
        if total:
            counts[path.stem.removeprefix("counter_")] = total
    return counts


async def test_metrics_count_every_workers_ai_replies(workers, tmp_path: Path) -> None:
    from tests.e2e.ai_helpers import ai, is_done

    shared = tmp_path / "metrics"
    shared.mkdir()
    srv = await workers(2, JWT_SECRET="w" * 40, PROMETHEUS_MULTIPROC_DIR=shared)
    # A user each (a user's connections all get their replies), one TCP connection
    # each, until both workers have answered some: the kernel picks the worker.
    sent = 0
    while len(_replies_per_worker(shared)) < 2:
        assert sent < 40, "every connection landed on one worker"
        client = await srv.connect(await srv.user())
        await client.send(ai("count me"))
        await client.expect("chat", is_done)
        sent += 1
    for _ in range(6):  # each on a fresh connection, so answered by either worker
        page = await _fresh_get(srv, "/metrics")
        assert _replies(page.text) == sent, page.text
