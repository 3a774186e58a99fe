"""Paths, pinning and /proc readers of the benchmark: the server's CPU time (all
threads of its process tree), RSS, open sockets, and the machine's TIME_WAIT count.

CPU accounting: per-thread ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds
on CPU) summed over the server's process tree; if a thread that existed at
the first reading has exited by the second, its time is only in the
process's ``/proc/<pid>/stat`` utime+stime (clock ticks, 10 ms), so that
reading is used instead (``cpu_source`` says which). psutil is not needed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOADGEN = BENCH / "loadgen"
PEERS = BENCH / "peers"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ pinning


@dataclass
class Pinning:
    server_cpu: int | None = 0
    loadgen_cpu: int | None = 1

    @classmethod
    def detect(cls, server_cpu: int = 0, loadgen_cpu: int = 1) -> Pinning:
        cpus = os.sched_getaffinity(0)
        if shutil.which("taskset") is None:
            log("warning: taskset not found: server and load generator run unpinned")
            return cls(None, None)
        if server_cpu not in cpus or loadgen_cpu not in cpus or server_cpu == loadgen_cpu:
            log(f"warning: cpus {server_cpu}/{loadgen_cpu} not both in {sorted(cpus)}: unpinned")
            return cls(None, None)
        return cls(server_cpu, loadgen_cpu)

    def prefix(self, cpu: int | None) -> list[str]:
        return [] if cpu is None else ["taskset", "-c", str(cpu)]

    def describe(self) -> str:
        if self.server_cpu is None:
            return "unpinned"
        return f"server on cpu {self.server_cpu}, load generator on cpu {self.loadgen_cpu}"


# ------------------------------------------------------------ /proc readers


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def proc_tree(pid: int) -> list[int]:
    """pid and all its live descendants (via /proc/<pid>/task/<tid>/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for tid in _listdir(f"/proc/{p}/task"):
            kids = _read(f"/proc/{p}/task/{tid}/children") or ""
            todo.extend(int(k) for k in kids.split())
    return out


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []


def _session_of(pid: int) -> int | None:
    s = _read(f"/proc/{pid}/stat")
    return int(s.rsplit(")", 1)[1].split()[3]) if s else None


def stat_cpu_s(pid: int) -> float:
    """utime+stime of a process (all its threads, including exited ones), seconds."""
    s = _read(f"/proc/{pid}/stat")
    if s is None:
        return 0.0
    fields = s.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class CpuSnapshot:
    stat_s: float  # sum over the tree of utime+stime (tick resolution)
    threads: dict[tuple[int, int], int]  # (pid, tid) -> ns on cpu (schedstat)


def cpu_snapshot(pid: int) -> CpuSnapshot:
    stat_s = 0.0
    threads: dict[tuple[int, int], int] = {}
    for p in proc_tree(pid):
        stat_s += stat_cpu_s(p)
        for tid in _listdir(f"/proc/{p}/task"):
            ss = _read(f"/proc/{p}/task/{tid}/schedstat")
            if ss:
                threads[(p, int(tid))] = int(ss.split()[0])
    return CpuSnapshot(stat_s, threads)


def cpu_delta(a: CpuSnapshot, b: CpuSnapshot) -> tuple[float, str]:
    """CPU seconds between two snapshots and the source used."""
    if a.threads and all(k in b.threads for k in a.threads):
        ns = sum(v - a.threads.get(k, 0) for k, v in b.threads.items())
        return ns / 1e9, "schedstat"
    return b.stat_s - a.stat_s, "stat"


def rss_kib(pid: int) -> int:
    """VmRSS summed over the process tree, KiB."""
    total = 0
    for p in proc_tree(pid):
        st = _read(f"/proc/{p}/status") or ""
        for line in st.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
                break
    return total


def sockets_per_process(pid: int) -> dict[int, int]:
    """Open sockets of each process of the tree (to see how connections spread)."""
    out: dict[int, int] = {}
    for p in proc_tree(pid):
        n = 0
        for fd in _listdir(f"/proc/{p}/fd"):
            with contextlib.suppress(OSError):
                n += os.readlink(f"/proc/{p}/fd/{fd}").startswith("socket:")
        out[p] = n
    return out


# ------------------------------------------------------------ TIME_WAIT


def time_wait_sockets() -> int:
    """TCP sockets in TIME_WAIT on this machine (/proc/net/sockstat)."""
    for line in (_read("/proc/net/sockstat") or "").splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("tw") + 1])
    return 0


def settle_time_wait(limit: int = 10_000, max_wait: float = 75.0) -> None:
    """Wait (at most ~one TIME_WAIT period) until the sockets a big idle scenario
    left in TIME_WAIT are gone: tens of thousands of them made the next fan-out
    scenario's loopback sends measurably slower."""
    t0 = time.monotonic()
    while time_wait_sockets() > limit and time.monotonic() - t0 < max_wait:
        time.sleep(1.0)
    if time.monotonic() - t0 > 1:
        log(f"bench: waited {time.monotonic() - t0:.0f} s for TIME_WAIT sockets to clear")


# ------------------------------------------------------ the machine's services


def postgres_cpu() -> dict[int, float]:
    """CPU seconds used so far by each process named ``postgres`` (server and backends)."""
    out: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() == "postgres":
                    out[int(entry)] = stat_cpu_s(int(entry))
    return out


def postgres_delta(before: dict[int, float], after: dict[int, float]) -> float:
    # A backend that exited in between is not counted (its time is gone with it).
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def redis_pid() -> int | None:
    try:
        out = subprocess.run(
            ["redis-cli", "-p", "6379", "info", "server"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":")[1])
    return None
