"""``chinwag serve --workers N``: uvicorn's supervisor running N chinwag processes on
one listening socket.

The parent binds the port once and runs uvicorn's ``Multiprocess`` supervisor
(uvicorn >= 0.51). It spawns the workers, pings each over a pipe and replaces one
that died or stopped answering within ``HEALTHCHECK_TIMEOUT``, and on signals:

- SIGTERM, SIGINT (Ctrl-C): SIGTERM to every worker, which stops accepting, closes
  its sockets with 1012 and lets running AI replies finish within DRAIN_TIMEOUT; the
  parent waits for them all and exits 0. A second Ctrl-C kills them.
- SIGHUP: a rolling restart, one worker at a time: a new worker is started and
  waited for until it serves, then the old one gets SIGTERM (the drain above) and is
  waited for. The port is served throughout, by the workers still running (they all
  accept on the one socket). A new worker that does not serve within
  ``HEALTHCHECK_TIMEOUT`` is killed, its old one kept, and the restart stops there.
- SIGTTIN / SIGTTOU: one worker more / one fewer (never fewer than one).

A worker that fails while starting (its app cannot start: settings, database) stops
the parent, with exit code 3, rather than being restarted for ever.

What this module adds to uvicorn's: each worker runs chinwag's server
(``ChinwagServer`` with chinwag's HTTP and WebSocket protocol classes), built in the
worker from the settings it reads there (a fresh interpreter; so a SIGHUP also picks
up a changed ``.env``); "chinwag ready" is logged once every first worker serves; a
worker's Prometheus files are marked dead once it is gone; workers leave the
terminal's process group, so a Ctrl-C in the terminal reaches the parent alone and
every worker stops the same way whichever signal started it."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from types import FrameType
from typing import NoReturn

import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from chinwag.server.transport import ChinwagServer, uvicorn_options
from chinwag.settings import load_settings

log = logging.getLogger(__name__)

APP = "chinwag.server.app:app_from_env"
#: Seconds a worker has to answer a health-check ping, and a new worker of a SIGHUP
#: restart to start serving. uvicorn's default (5) is too short: a spawned worker
#: imports chinwag before it answers its first ping, seconds on a loaded machine, and
#: would be killed as hung while starting.
HEALTHCHECK_TIMEOUT = 30


def run_workers(count: int, host: str, port: int) -> int:
    """Serve ``host:port`` with ``count`` workers until SIGTERM or SIGINT; returns the
    exit code (0, or 3 when a worker could not start)."""
    config = uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=count,
        timeout_worker_healthcheck=HEALTHCHECK_TIMEOUT,
        log_config=None,
    )
    sock = _bind(config)
    try:
        with _workers_are_chinwag():
            supervisor = Supervisor(config, [sock])
            supervisor.run()
    finally:
        sock.close()
    return supervisor.exit_code


def _bind(config: uvicorn.Config) -> socket.socket:
    uvicorn_log = logging.getLogger("uvicorn.error")
    level = uvicorn_log.level
    uvicorn_log.setLevel(logging.WARNING)  # its "running on" would come before any worker is
    try:
        return config.bind_socket()
    finally:
        uvicorn_log.setLevel(level)


@contextlib.contextmanager
def _workers_are_chinwag() -> Iterator[None]:
    """Have uvicorn's supervisor create ``ChinwagWorker`` processes.

    ``Multiprocess`` creates every worker as ``Process(config, sockets)`` through the
    global name ``Process`` of its module (in ``init_processes``, ``restart_all``,
    ``keep_subprocess_alive`` and ``handle_ttin``), with no argument or attribute to
    pass another class. Subclassing ``Multiprocess`` instead would mean copying those
    four methods, the rolling restart among them; so that one name points at our
    subclass while the supervisor runs (in the parent only: a worker unpickles its
    own class). A test in tests/e2e/test_serve_workers.py fails if an uvicorn upgrade
    changes what this relies on."""
    original = multiprocess.Process
    multiprocess.Process = ChinwagWorker  # type: ignore[misc]
    try:
        yield
    finally:
        multiprocess.Process = original  # type: ignore[misc]


class ChinwagWorker(multiprocess.Process):
    """One worker: uvicorn's worker process (spawned; a thread in it answers the
    parent's pings) serving a ``ChinwagServer``."""

    _chinwag: ChinwagServer | None = None

    @property
    def server(self) -> uvicorn.Server:
        """Built in the worker, from the settings the worker reads."""
        if self._chinwag is None:
            options = uvicorn_options(load_settings(), self.config.host, self.config.port)
            self._chinwag = ChinwagServer(uvicorn.Config(APP, factory=True, **options))
        return self._chinwag

    def target(self, sockets: list[socket.socket] | None = None) -> None:
        """The worker's main: runs in the worker process."""
        with contextlib.suppress(OSError):
            os.setpgrp()  # out of the terminal's process group (see the module docstring)
        # uvicorn re-raises the signal that stopped it, to the handler that was there
        # before it ran: SIGTERM's default would end a worker that drained cleanly
        # with -15. Exit 0 instead (before the server runs too: nothing was served).
        signal.signal(signal.SIGTERM, _exit_0)
        _ = self.server  # built before uvicorn's pong thread reads it
        super().target(sockets)

    def join(self) -> None:
        super().join()
        log.info("worker %s exited with %s", self.pid, self.exitcode)
        if self.pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Its live gauges leave /metrics; its counters stay counted.
            mark_process_dead(self.pid)  # type: ignore[no-untyped-call]


def _exit_0(_signum: int, _frame: FrameType | None) -> NoReturn:
    sys.exit(0)


class Supervisor(multiprocess.Multiprocess):
    """uvicorn's supervisor, plus chinwag's "ready" line, a line once a SIGHUP has
    replaced every worker, and a second Ctrl-C that kills the workers."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self.address = f"http://{config.host}:{config.port}"
        signal.signal(signal.SIGINT, self._interrupted)

    def _interrupted(self, signum: int, _frame: FrameType | None) -> None:
        # A signal handler: only the queue (as uvicorn's handler) and os.kill.
        if self.should_exit.is_set():  # a second Ctrl-C while the workers drain
            for process in self.processes:
                if process.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGKILL)
        self.signal_queue.append(signum)

    def init_processes(self) -> None:
        super().init_processes()
        timeout = self.config.timeout_worker_healthcheck
        if all(p.wait_until_ready(timeout, self.should_exit) for p in self.processes):
            log.info(
                "chinwag ready: %d workers on %s (press CTRL+C to quit)",
                len(self.processes),
                self.address,
            )

    def restart_all(self) -> None:
        before = {p.pid for p in self.processes}
        super().restart_all()
        if before.isdisjoint(p.pid for p in self.processes):
            log.info("chinwag restarted: %d new workers on %s", len(self.processes), self.address)

    @property
    def exit_code(self) -> int:
        failed = any(p.exitcode == STARTUP_FAILURE for p in self.processes)
        return STARTUP_FAILURE if failed else 0
