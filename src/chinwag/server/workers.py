"""``chinwag serve --workers N``: N processes sharing one listening socket, under
uvicorn's own supervisor (``uvicorn.supervisors.Multiprocess``).

The parent binds the port and starts N workers (each a full chinwag with its own
event loop, joined through the Redis broker). The supervisor restarts a worker
that dies or stops answering its health check; SIGHUP replaces the workers one at
a time, each new one serving before the old one drains (a rolling restart);
SIGTTIN / SIGTTOU add or remove a worker; SIGTERM and SIGINT stop them all. A
stopping worker closes its sockets with 1012 and lets running AI replies finish
(``DRAIN_TIMEOUT``); see ``chinwag.server.transport``."""

from __future__ import annotations

import uvicorn
from uvicorn.supervisors import Multiprocess


def run_workers(config: uvicorn.Config) -> int:
    """Serve ``config`` (an import-string app, ``workers`` > 1) until SIGTERM/SIGINT."""
    sock = config.bind_socket()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
    return 0
