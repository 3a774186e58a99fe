"""``chinwag serve --workers N`` (PostgreSQL + Redis) as a newcomer runs it: Ctrl-C, a
fresh DATA_DIR without JWT_SECRET, "ready" in the log, one port shared by the workers,
metrics over every worker, and no Redis. Signals to uvicorn's supervisor under it are in
test_serve_supervisor.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from chinwag.server.auth import load_or_create_secret
from tests.e2e.cluster_helpers import PRESENCE_TTL, SERVE, cluster_env, eventually
from tests.e2e.rooms_helpers import chat, joined
from tests.e2e.serve_helpers import READY, _clients, _exit_code, _fresh_get, _logged
from tests.support import (
    ADMIN,
    PASSWORD,
    Namer,
    Server,
    ServerFactory,
    free_port,
)


async def test_ctrl_c_to_the_parent_closes_every_socket_with_1012(
    workers: Callable[..., Any],
) -> None:
    srv = await workers(2, JWT_SECRET="w" * 40)
    clients = await _clients(srv, 4)
    assert srv.proc is not None
    os.kill(srv.proc.pid, signal.SIGINT)
    codes = [await client.wait_closed(timeout=20) for client in clients]
    assert codes == [1012] * 4, srv.log
    assert await _exit_code(srv) == 0, srv.log


async def test_ctrl_c_in_the_terminal_closes_every_socket_with_1012(
    workers: Callable[..., Any],
) -> None:
    srv = await workers(2, JWT_SECRET="w" * 40)
    clients = await _clients(srv, 4)
    assert srv.proc is not None
    os.killpg(srv.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    codes = [await client.wait_closed(timeout=20) for client in clients]
    assert codes == [1012] * 4, srv.log
    assert await _exit_code(srv) == 0, srv.log
    assert "Traceback" not in srv.log, srv.log


async def test_ready_is_logged_once_every_worker_serves(workers: Callable[..., Any]) -> None:
    srv = await workers(2, JWT_SECRET="w" * 40)
    await eventually(lambda: _logged(srv, READY), within=60, what="the workers' ready line")
    lines = srv.log.splitlines()
    parent = next(i for i, line in enumerate(lines) if READY in line)
    served = [i for i, line in enumerate(lines) if "chinwag ready (node" in line]
    assert len(served) == 2 and all(i < parent for i in served), srv.log
    early = [line for line in lines[: served[0]] if "running on" in line.lower()]
    assert early == [], srv.log
    assert (await _fresh_get(srv, "/health")).status_code == 200


async def test_workers_on_a_fresh_data_dir_keep_one_generated_secret(
    workers: Callable[..., Any],
) -> None:
    srv = await workers(3)
    await eventually(lambda: _logged(srv, READY), within=60, what="the workers' ready line")
    secret_files = sorted(p.name for p in (srv.workdir / "data").iterdir())
    assert secret_files == ["jwt_secret"], secret_files
    user = await srv.user()
    # Tokens issued by whichever worker are accepted by every other one.
    for _ in range(12):
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(
                srv.base + "/api/v1/auth/login",
                json={"username": user.username, "password": PASSWORD},
            )
        assert r.status_code == 200, r.text
        me = await _fresh_get(
            srv, "/api/v1/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert me.status_code == 200, me.text


def test_many_starts_at_once_on_a_fresh_data_dir_keep_one_secret(tmp_path: Path) -> None:
    """The race itself, made likely: 16 threads released together ask for the secret
    of a fresh DATA_DIR, five times over (each stat and write lets the others run)."""
    for round_ in range(5):
        data = tmp_path / f"data{round_}"
        got = _all_at_once(16, lambda d=data: load_or_create_secret(None, d))  # type: ignore[misc]
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

    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "chinwag_ai_replies_total"
    )


def _replies_per_worker(directory: Path) -> dict[str, float]:
    """Each worker's own ``chinwag_ai_replies_total``, read from its multiprocess file."""
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        total = sum(
            value
            for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
            if json.loads(key)[1] == "chinwag_ai_replies_total"
        )
        if total:
            counts[path.stem.removeprefix("counter_")] = total
    return counts


async def test_metrics_count_every_workers_ai_replies(
    workers: Callable[..., Any], tmp_path: Path
) -> None:
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


async def test_serve_with_two_workers_shares_one_port(
    pg_url: str, tmp_path: Path, name: Namer, broker_url: str
) -> None:
    port = free_port()
    srv = Server(
        port, ServerFactory(tmp_path).env(tmp_path, **cluster_env(pg_url, broker_url)), tmp_path
    )
    # The admin first: two workers creating it at once race (see start_cluster).
    subprocess.run(
        [sys.executable, "-m", "chinwag", "create-admin", ADMIN[0], "--password", ADMIN[1]],
        cwd=tmp_path,
        env=srv.env,
        capture_output=True,
        check=True,
        timeout=30,
    )
    with (tmp_path / "server.log").open("ab") as log:
        srv.proc = subprocess.Popen(
            [*SERVE, "--workers", "2", "--port", str(port)],
            cwd=tmp_path,
            env=srv.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        await eventually(lambda: _answers(srv), within=30, what="/health on the workers")
        admin = await srv.admin()
        # Both workers publish their snapshot: the stats count two nodes.
        await eventually(
            lambda: _nodes(srv, admin, 2), within=PRESENCE_TTL * 3, what="two nodes in the stats"
        )
        room = name("shared")
        users = [await srv.user(name()) for _ in range(4)]
        clients = [await joined(srv, users[0], room, "shared")]
        clients += [await joined(srv, u, room) for u in users[1:]]
        for i, client in enumerate(clients):
            await client.send(chat(room, f"from {i}"))
        for client in clients:
            got = sorted([(await client.expect("chat"))["data"]["content"] for _ in range(4)])
            assert got == [f"from {i}" for i in range(4)]
    finally:
        await srv.close()
    assert srv.proc.returncode == 0, srv.log  # SIGTERM: a clean stop


async def _answers(srv: Server) -> bool:
    assert srv.proc is not None
    if srv.proc.poll() is not None:
        pytest.fail(f"chinwag exited with {srv.proc.returncode}:\n{srv.log}")
    try:
        return (await srv.get("/health", timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def _nodes(srv: Server, admin: Any, count: int) -> bool:
    nodes: int = (await srv.get("/api/v1/ws/stats", admin)).json()["nodes"]
    return nodes == count


def test_serve_with_workers_but_no_redis_exits_2_with_one_line(tmp_path: Path) -> None:
    env = ServerFactory(tmp_path).env(tmp_path, BROKER_URL="memory://")
    done = subprocess.run(
        [*SERVE, "--workers", "2", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "BROKER_URL" in lines[0] and "redis://" in lines[0], done.stderr
    assert done.stdout == ""
