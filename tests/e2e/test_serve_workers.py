"""``chinwag serve --workers N`` (PostgreSQL + Redis): as a newcomer runs it (Ctrl-C, a
fresh DATA_DIR without JWT_SECRET, "ready" in the log), and as an operator drives
uvicorn's supervisor under it (SIGHUP rolling restart under traffic, SIGTTIN/SIGTTOU,
a SIGKILLed worker, SIGTERM, workers that cannot start)."""

from __future__ import annotations

import asyncio
import inspect
import itertools
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

from chinwag.client import Closed
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


# ---- uvicorn's supervisor: signals, replacements, and what chinwag relies on in it ----


def test_uvicorn_supervisor_still_creates_workers_through_the_name_chinwag_points_at_its_own() -> (
    None
):
    """``chinwag.server.workers`` points ``uvicorn.supervisors.multiprocess.Process``
    at ``ChinwagWorker`` and overrides ``Process.server``/``target``/``join``: an
    uvicorn upgrade that changes any of these fails here, not in production."""
    from uvicorn.supervisors import multiprocess

    from chinwag.server.workers import ChinwagWorker, Supervisor, _workers_are_chinwag

    for method in ("init_processes", "restart_all", "keep_subprocess_alive", "handle_ttin"):
        code = getattr(multiprocess.Multiprocess, method).__code__
        assert "Process" in code.co_names, f"Multiprocess.{method} no longer names Process"
    assert list(inspect.signature(multiprocess.Process).parameters) == ["config", "sockets"]
    assert list(inspect.signature(multiprocess.Multiprocess).parameters) == ["config", "sockets"]
    assert isinstance(inspect.getattr_static(multiprocess.Process, "server"), property)
    for method in ("target", "join", "wait_until_ready"):
        assert callable(getattr(multiprocess.Process, method)), method
    assert issubclass(Supervisor, multiprocess.Multiprocess)
    original = multiprocess.Process
    with _workers_are_chinwag():
        assert multiprocess.Process is ChinwagWorker
    assert multiprocess.Process is original


def _worker_pids(parent: int) -> set[int]:
    """The live worker processes of ``parent`` (not multiprocessing's resource
    tracker), from /proc."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == parent and fields[0] != "Z" and b"spawn_main" in cmdline:
            pids.add(int(stat.parent.name))
    return pids


async def _workers_are(srv: Server, check: Callable[[set[int]], bool]) -> set[int]:
    assert srv.proc is not None
    parent = srv.proc.pid
    found: set[int] = set()

    async def holds() -> bool:
        nonlocal found
        await _logged(srv, "")
        found = _worker_pids(parent)
        return check(found)

    await eventually(holds, within=120, what="the worker processes")
    return found


async def _connect_until(srv: Server, stop: asyncio.Event) -> list[float]:
    """Open a fresh connection after another until ``stop``: the times of those that
    got their ``connect`` frame. One that reaches a worker as it drains may be closed
    with 1012 (a client reconnects); anything else fails the test."""
    user = await srv.user()
    loop = asyncio.get_running_loop()
    connected = [loop.time()]
    while not stop.is_set():
        try:
            client = await srv.connect(user)
        except Closed as exc:
            assert exc.code == 1012, exc
            continue
        connected.append(loop.time())
        await client.close()
        srv.clients.remove(client)
    connected.append(loop.time())
    return connected


async def test_sighup_replaces_every_worker_while_the_port_keeps_accepting(
    workers: Callable[..., Any],
) -> None:
    srv = await workers(2, JWT_SECRET="w" * 40)
    await eventually(lambda: _logged(srv, READY), within=60, what="the workers' ready line")
    before = await _workers_are(srv, lambda pids: len(pids) == 2)
    assert srv.proc is not None
    stop = asyncio.Event()
    probing = asyncio.create_task(_connect_until(srv, stop))
    os.kill(srv.proc.pid, signal.SIGHUP)
    await eventually(
        lambda: _logged(srv, "chinwag restarted: 2 new workers"),
        within=120,
        what="the rolling restart",
    )
    after = await _workers_are(srv, lambda pids: len(pids) == 2)
    stop.set()
    connected = await probing
    assert after.isdisjoint(before), (before, after)
    gaps = [b - a for a, b in itertools.pairwise(connected)]
    assert len(connected) > 20 and max(gaps) < 5, (len(connected), max(gaps))


async def test_sighup_under_traffic_delivers_every_confirmed_message_once_in_order(
    workers: Callable[..., Any],
) -> None:
    from chinwag_client import Event
    from tests.sdk.test_resilience import assert_exactly_once_in_order

    srv = await workers(2, JWT_SECRET="w" * 40)
    await eventually(lambda: _logged(srv, READY), within=60, what="the workers' ready line")
    for username in ("sender", "reader"):
        await srv.user(username)
    sender, reader = await srv.sdk("sender"), await srv.sdk("reader")
    await sender.join("steady")
    await reader.join("steady")
    confirmed: list[str] = []
    seen: list[Event] = []
    stop = asyncio.Event()

    async def send() -> None:
        while not stop.is_set():
            text = f"m{len(confirmed)}"
            await sender.send("steady", text)  # resent after a drop until confirmed
            confirmed.append(text)

    async def read() -> None:
        async for event in reader.events():
            if event.stored and event.room_id == "steady":
                seen.append(event)

    sending, reading = asyncio.create_task(send()), asyncio.create_task(read())
    try:
        await eventually(lambda: _at_least(confirmed, 20), within=30, what="traffic")
        assert srv.proc is not None
        os.kill(srv.proc.pid, signal.SIGHUP)
        await eventually(
            lambda: _logged(srv, "chinwag restarted: 2 new workers"),
            within=120,
            what="the rolling restart",
        )
        after = len(confirmed)
        await eventually(
            lambda: _at_least(confirmed, after + 20), within=60, what="traffic after the restart"
        )
        stop.set()
        async with asyncio.timeout(30):
            await sending
        await eventually(
            lambda: _at_least([e for e in seen if e.type == "chat"], len(confirmed)),
            within=30,
            what="the reader to catch up",
        )
    finally:
        stop.set()
        sending.cancel()
        reading.cancel()
        await asyncio.gather(sending, reading, return_exceptions=True)
    # Every worker was replaced, so both lost their socket (1012) and came back.
    assert sender.connections >= 2 and reader.connections >= 2
    assert 1012 in sender.close_codes and 1012 in reader.close_codes
    assert_exactly_once_in_order(seen, confirmed)


async def _at_least(items: list[Any], count: int) -> bool:
    return len(items) >= count


async def test_a_sigkilled_worker_is_replaced(workers: Callable[..., Any]) -> None:
    srv = await workers(2, JWT_SECRET="w" * 40)
    await eventually(lambda: _logged(srv, READY), within=60, what="the workers' ready line")
    before = await _workers_are(srv, lambda pids: len(pids) == 2)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    after = await _workers_are(srv, lambda pids: len(pids) == 2 and victim not in pids)
    assert before - {victim} < after, (before, after)
    await eventually(
        lambda: _logged(srv, f"Child process [{victim}] died"),
        within=10,
        what="the parent to log the death",
    )
    for _ in range(6):  # fresh connections, so either worker
        assert (await _fresh_get(srv, "/health")).status_code == 200


async def test_sigttin_adds_a_worker_and_sigttou_removes_one(workers: Callable[..., Any]) -> None:
    srv = await workers(2, JWT_SECRET="w" * 40)
    await eventually(lambda: _logged(srv, READY), within=60, what="the workers' ready line")
    two = await _workers_are(srv, lambda pids: len(pids) == 2)
    assert srv.proc is not None
    os.kill(srv.proc.pid, signal.SIGTTIN)
    three = await _workers_are(srv, lambda pids: len(pids) == 3)
    assert two < three
    os.kill(srv.proc.pid, signal.SIGTTOU)
    assert len(await _workers_are(srv, lambda pids: len(pids) == 2)) == 2


async def test_sigterm_drains_every_worker_and_each_exits_0(workers: Callable[..., Any]) -> None:
    srv = await workers(2, JWT_SECRET="w" * 40)
    await eventually(lambda: _logged(srv, READY), within=60, what="the workers' ready line")
    pids = await _workers_are(srv, lambda pids: len(pids) == 2)
    clients = await _clients(srv, 4)
    assert srv.proc is not None
    os.kill(srv.proc.pid, signal.SIGTERM)
    codes = [await client.wait_closed(timeout=20) for client in clients]
    assert codes == [1012] * 4, srv.log
    assert await _exit_code(srv) == 0, srv.log
    for pid in pids:
        assert f"worker {pid} exited with 0" in srv.log, srv.log


def test_workers_that_cannot_start_stop_the_parent_with_exit_3(tmp_path: Path) -> None:
    """No database on port 1: each worker's startup fails (exit 3), and the parent
    stops with 3 instead of starting workers for ever."""
    env = ServerFactory(tmp_path).env(
        tmp_path, **cluster_env("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    )
    done = subprocess.run(
        [sys.executable, "-m", "chinwag", "serve", "--workers", "2", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "failed to start, stopping the parent process" in done.stdout + done.stderr
