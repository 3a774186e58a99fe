"""``ServerProc``: a target server started in its own session, optionally pinned
to one core (``taskset -c 0``), with its CPU time, RSS and log; ``free_port``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from procstat import (
    ROOT,
    CpuSnapshot,
    _session_of,
    cpu_delta,
    cpu_snapshot,
    log,
    proc_tree,
    rss_kib,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TargetUnavailable(Exception):
    """The target cannot run here; the benchmark skips it with this reason."""


class ServerProc:
    """A server process started in its own session, optionally pinned."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        workdir: Path,
        env: dict[str, str] | None = None,
        cpu: int | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name, self.port = name, port
        self.log_path = workdir / f"{name}-{port}.log"
        self._log = open(self.log_path, "wb")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        prefix = [] if cpu is None else ["taskset", "-c", str(cpu)]
        # taskset execs the server, so self.proc.pid is the server itself
        self.proc = subprocess.Popen(
            prefix + argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd or ROOT,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.data_dir: str | None = None  # chinwag on SQLite: where its database is
        self.token_cache: Path | None = None  # chinwag: where its users' ws tokens are kept
        self.on_stop: list[Callable[[], None]] = []  # run after the processes are gone

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until the port accepts TCP connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                raise TargetUnavailable(
                    f"{self.name} exited ({rc}) at start-up:\n{self.log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise TargetUnavailable(
            f"{self.name} not listening on {self.port} after {timeout} s:\n{self.log_tail()}"
        )

    def cpu(self) -> CpuSnapshot:
        return cpu_snapshot(self.pid)

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def wait_quiet(
        self, window: float = 0.1, threshold: float = 0.05, max_wait: float = 15.0
    ) -> float:
        """Wait until the server uses < threshold of a core over `window` s
        (e.g. after a connect storm); returns the seconds waited."""
        t0 = time.monotonic()
        a = self.cpu()
        while time.monotonic() - t0 < max_wait:
            time.sleep(window)
            b = self.cpu()
            used, _ = cpu_delta(a, b)
            if used < threshold * window:
                break
            a = b
        return time.monotonic() - t0

    def stop(self, timeout: float = 5.0) -> None:
        # Workers (chinwag --workers, peers with --processes) are children: what is
        # left of the tree after the parent ends or is killed gets SIGKILL, by pid.
        tree = proc_tree(self.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout)
        for pid in tree[1:]:
            if _session_of(pid) == self.pid:  # still ours (not a reused pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._log.close()
        for hook in self.on_stop:
            try:
                hook()
            except Exception as e:  # clean-up must not hide the run's result
                log(f"bench: clean-up after {self.name} failed: {e}")
        self.on_stop = []

    def wait_log(self, text: str, count: int, timeout: float = 30.0) -> None:
        """Wait until `text` appears `count` times in the log (every worker up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if self.log_path.read_text(errors="replace").count(text) >= count:
                    return
            time.sleep(0.1)
        self.stop()
        raise TargetUnavailable(
            f"{self.name}: {count} x {text!r} not in its log after {timeout} s:\n{self.log_tail()}"
        )
