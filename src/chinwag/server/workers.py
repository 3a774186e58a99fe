"""``chinwag serve --workers N``: N processes sharing one listening socket.

The parent binds the port, starts N worker processes (each a full chinwag with its
own event loop, joined through the Redis broker), restarts a worker that dies, and
on SIGTERM/SIGINT passes the signal on (each worker closes its sockets with 1001)
and waits for them."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)


def run_workers(count: int, bind: Callable[[], socket.socket],
                target: Callable[[socket.socket], None]) -> int:
    sock = bind()
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        proc = ctx.Process(target=target, args=(sock,), daemon=False)
        proc.start()
        return proc

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                proc.terminate() if signum == signal.SIGTERM else proc.kill()

    procs = [start() for _ in range(count)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        for i, proc in enumerate(procs):
            if not proc.is_alive() and not stopping:
                log.warning("worker %s exited with %s; starting another", proc.pid,
                            proc.exitcode)
                procs[i] = start()
        time.sleep(0.5)
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    sock.close()
    return 0
