"""``chinwag serve --workers N``: N processes sharing one listening socket.

The parent binds the port, starts N worker processes (each a full chinwag with its
own event loop, joined through the Redis broker), logs "ready" once every worker
has finished starting, restarts a worker that dies, and on SIGTERM or SIGINT
(Ctrl-C) sends SIGTERM to every worker, which closes its sockets with 1012, and
waits for them; a second Ctrl-C kills them.

Workers run in a process group of their own, so a Ctrl-C in the terminal reaches
the parent only and every worker stops the same way whichever signal started it."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import socket
from collections.abc import Callable
from multiprocessing.queues import Queue
from types import FrameType

import uvicorn
from prometheus_client.multiprocess import mark_process_dead

from chinwag.server.transport import ChinwagServer

log = logging.getLogger(__name__)
#: A worker's target: the shared socket, and a queue to put its pid on once it serves.
Target = Callable[[socket.socket, "Queue[int]"], None]


def run_workers(count: int, bind: Callable[[], socket.socket], target: Target,
                address: str) -> int:
    uvicorn_log = logging.getLogger("uvicorn.error")
    level = uvicorn_log.level
    uvicorn_log.setLevel(logging.WARNING)  # its "running on" would come before any worker is
    try:
        sock = bind()
    finally:
        uvicorn_log.setLevel(level)
    ctx = multiprocessing.get_context("spawn")
    ready: Queue[int] = ctx.Queue()
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        proc = ctx.Process(target=target, args=(sock, ready), daemon=False)
        proc.start()
        return proc

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        force = stopping and signum == signal.SIGINT
        stopping = True
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                proc.kill() if force else proc.terminate()

    procs = [start() for _ in range(count)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    waiting = count
    while not stopping:
        with contextlib.suppress(queue.Empty):
            ready.get(timeout=0.5)
            waiting -= 1
            if waiting == 0:
                log.info("chinwag ready: %d workers on %s (press CTRL+C to quit)", count,
                         address)
            continue
        for i, proc in enumerate(procs):
            if not proc.is_alive() and not stopping:
                log.warning("worker %s exited with %s; starting another", proc.pid,
                            proc.exitcode)
                if proc.pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                    mark_process_dead(proc.pid)  # type: ignore[no-untyped-call]
                procs[i] = start()
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    sock.close()
    return 0


class WorkerServer(ChinwagServer):
    """One worker's uvicorn server: tells the parent once it serves."""

    def __init__(self, config: uvicorn.Config, ready: Queue[int]) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self.ready.put(os.getpid())


def detach_from_terminal() -> None:
    """Leave the parent's process group: a Ctrl-C goes to the parent alone, which
    passes SIGTERM on."""
    with contextlib.suppress(OSError):
        os.setpgrp()
