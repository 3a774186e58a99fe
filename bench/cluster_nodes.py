"""The chinwag processes of a fan-out benchmark: N ``python -m chinwag serve`` on one
database and one broker, each with its own data directories, started one at a time."""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from procstat import cpu_delta, redis_pid
from servers import ServerProc, free_port

JWT_SECRET = "bench-secret-not-for-production-0123456789abcdef"


# ---------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    procs: list[ServerProc]
    broker: str
    redis_pids: list[int] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        return [p.port for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            p.stop(timeout=10)


def start_cluster(size: int, database_url: str, broker: str, workdir: Path) -> Cluster:
    env = {
        "DATABASE_URL": database_url,
        "BROKER_URL": broker,
        "REDIS_KEY_PREFIX": f"bench{uuid.uuid4().hex[:8]}:",
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "warning",
        "WS_RATE_LIMIT_REQUESTS": "1000000",
        "WS_RATE_LIMIT_WINDOW": "1",
        "REGISTER_RATE_LIMIT_REQUESTS": "1000000",  # it registers every user up front
        "HTTP_RATE_LIMIT_REQUESTS": "1000000",
        "WEBSOCKET_MAX_CONNECTIONS": "30000",
        "WEBSOCKET_MAX_CONNECTIONS_PER_USER": "10000",
        "WEBSOCKET_OUTBOX_SIZE": "4096",
        "AI_PROVIDER": "offline",
    }
    procs: list[ServerProc] = []
    try:
        for i in range(size):
            d = workdir / f"node{i}"
            d.mkdir(parents=True, exist_ok=True)
            node_env = {
                **env,
                "DATA_DIR": str(d / "data"),
                "UPLOAD_DIR": str(d / "up"),
                "TEMP_DIR": str(d / "up" / "temp"),
            }
            port = free_port()
            procs.append(
                ServerProc(
                    f"chinwag{i}",
                    [sys.executable, "-m", "chinwag", "serve", "--port", str(port)],
                    port,
                    workdir,
                    env=node_env,
                )
            )
            # One at a time: the first migrates; starting together also races the
            # admin/user INSERTs of a fresh database.
            procs[-1].wait_ready(timeout=30)
    except BaseException:
        for p in procs:
            p.stop()
        raise
    if broker.startswith("redis://"):
        redis_pids = [pid] if (pid := redis_pid()) else []
    else:
        redis_pids = [] if broker == "memory://" else REDIS_CLUSTER_PIDS
    return Cluster(procs, broker, redis_pids)


#: PIDs of the Redis Cluster's masters when the run started one.
REDIS_CLUSTER_PIDS: list[int] = []


def wait_quiet(procs: list[ServerProc], max_wait: float = 15.0) -> None:
    """Until every process is under 5 % of a core for 100 ms (the join storm drained)."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        before = [p.cpu() for p in procs]
        time.sleep(0.1)
        used = [cpu_delta(b, p.cpu())[0] for b, p in zip(before, procs, strict=True)]
        if max(used) < 0.005:
            return
