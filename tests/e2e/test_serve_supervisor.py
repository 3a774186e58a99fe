"""uvicorn's supervisor under ``chinwag serve --workers N``, driven as an operator does:
SIGHUP rolling restart under traffic, SIGTTIN/SIGTTOU, a SIGKILLed worker, SIGTERM, and
workers that cannot start; and what chinwag relies on in it."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chinwag.client import Closed
from tests.e2e.cluster_helpers import cluster_env, eventually
from tests.e2e.serve_helpers import READY, _clients, _exit_code, _fresh_get, _logged
from tests.support import Server, ServerFactory, free_port


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
