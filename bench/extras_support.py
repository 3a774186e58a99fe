"""What the chinwag-only measurements share: a fresh ``chinwag serve`` with users of
its own, a thread pinned to a core, WebSocket URLs, percentiles."""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from servers import ServerProc, free_port
from targets import CHINWAG_ENV, chinwag_ws_tokens

MB = 1 << 20


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Pin the calling thread (and the threads it starts meanwhile) to ``cpu``."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def start_chinwag(
    workdir: Path, cpu: int | None, users: int = 1, env: dict[str, str] | None = None
) -> tuple[ServerProc, list[str]]:
    """A fresh ``chinwag serve`` (the harness's CHINWAG_ENV, its own data in
    ``workdir``) and WebSocket tokens for ``users`` new users."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    full_env = {
        **CHINWAG_ENV,
        "DATA_DIR": str(workdir / "data"),
        "UPLOAD_DIR": str(workdir / "uploads"),
        "TEMP_DIR": str(workdir / "uploads" / "temp"),
        **(env or {}),
    }
    argv = [sys.executable, "-m", "chinwag", "serve", "--port", str(port)]
    server = ServerProc("chinwag", argv, port, workdir, env=full_env, cpu=cpu)
    try:
        server.wait_ready(30)
        tokens = chinwag_ws_tokens(f"http://127.0.0.1:{port}", users, prefix="extra")
    except BaseException:
        server.stop()
        raise
    return server, tokens


def ws_url(server: ServerProc, token: str) -> str:
    return f"ws://127.0.0.1:{server.port}/api/v1/ws/ws?token={token}"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
