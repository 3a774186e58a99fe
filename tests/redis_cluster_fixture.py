"""A real Redis Cluster for the tests: three masters started from ``redis-server``.

One cluster per test session (``redis_cluster``), shared by every test that asks for
it; tests stay apart by key prefix. Ports (client and cluster bus) are chosen free,
each node lives in its own temporary directory, and teardown ends the nodes by PID.
Outside CI a missing ``redis-server`` or a cluster that will not form skips the
tests that need it, with the reason; under ``CI=true`` it fails them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port

IN_CI = os.environ.get("CI", "").lower() in {"true", "1"}
MASTERS = 3
START_TIMEOUT = 30.0


@dataclass
class RedisClusterNodes:
    ports: list[int]
    procs: list[subprocess.Popen[bytes]]

    @property
    def url(self) -> str:
        """chinwag's ``BROKER_URL`` for this cluster (every master as a seed)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"Redis Cluster: {message}; CI must run the Redis Cluster tests")
    pytest.skip(f"Redis Cluster: {message}")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _cluster_state_ok(cli: str, ports: list[int]) -> bool:
    for port in ports:
        done = subprocess.run(
            [cli, "-p", str(port), "cluster", "info"], capture_output=True, timeout=5, check=False
        )
        if b"cluster_state:ok" not in done.stdout:
            return False
    return True


def _wait(what: str, check: object, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"redis-server exited with {dead[0].returncode} ({what})")
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not reached within {START_TIMEOUT:.0f}s")


def start_nodes(root: Path) -> RedisClusterNodes:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise FileNotFoundError("redis-server or redis-cli is not on PATH")
    ports: list[int] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(MASTERS):
            port, bus = free_port(), free_port()
            workdir = root / f"node{index}"
            workdir.mkdir()
            log = (workdir / "redis.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--cluster-port",
                        str(bus),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(workdir / "nodes.conf"),
                        "--cluster-node-timeout",
                        "2000",
                        "--dir",
                        str(workdir),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
            ports.append(port)
        _wait("every node answering PING", lambda: all(_answers(p) for p in ports), procs)
        create = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if create.returncode != 0:
            raise RuntimeError(
                "redis-cli --cluster create failed: "
                + create.stdout.decode(errors="replace")[-500:]
            )
        _wait("cluster_state:ok", lambda: _cluster_state_ok(cli, ports), procs)
    except BaseException:
        stop_nodes(procs)
        raise
    return RedisClusterNodes(ports, procs)


def stop_nodes(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    try:
        nodes = start_nodes(tmp_path_factory.mktemp("redis-cluster"))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        _unavailable(f"cannot start a {MASTERS}-master cluster ({exc})")
        raise  # not reached: skip or fail above
    try:
        yield nodes
    finally:
        stop_nodes(nodes.procs)
