"""Measurement helpers for the chinwag side-by-side benchmark, by concern:

* ``procstat``: paths, core pinning, the /proc readers (CPU time of a process
  tree from schedstat, RSS, sockets, TIME_WAIT).
* ``servers``: ``ServerProc``, a target server started pinned to one core.
* ``targets``: ``TARGETS``, how each server starts and how the load generator
  talks to it (chinwag: its users and WebSocket tokens).
* ``scenarios``: ``Scenario`` and ``run_once``, one repetition with the Node
  load generator under its ``--control`` handshake.
* ``report``: medians over repetitions and the side-by-side table.

This module re-exports their names for the scripts that import from it.
"""

from __future__ import annotations

from procstat import (
    BENCH,
    LOADGEN,
    PEERS,
    ROOT,
    CpuSnapshot,
    Pinning,
    cpu_delta,
    cpu_snapshot,
    log,
    proc_tree,
    rss_kib,
    settle_time_wait,
    sockets_per_process,
    stat_cpu_s,
    time_wait_sockets,
)
from report import Cell, metrics_for, print_table, summarise
from scenarios import (
    Loadgen,
    LoadgenError,
    NotRun,
    Scenario,
    combine_results,
    run_once,
    split_addrs,
)
from servers import ServerProc, TargetUnavailable, free_port
from targets import (
    CHINWAG_ENV,
    IDLE_USERS,
    TARGETS,
    Target,
    _http_json,
    chinwag_ws_tokens,
)

__all__ = [
    "BENCH",
    "CHINWAG_ENV",
    "IDLE_USERS",
    "LOADGEN",
    "PEERS",
    "ROOT",
    "TARGETS",
    "Cell",
    "CpuSnapshot",
    "Loadgen",
    "LoadgenError",
    "NotRun",
    "Pinning",
    "Scenario",
    "ServerProc",
    "Target",
    "TargetUnavailable",
    "_http_json",
    "chinwag_ws_tokens",
    "combine_results",
    "cpu_delta",
    "cpu_snapshot",
    "free_port",
    "log",
    "metrics_for",
    "print_table",
    "proc_tree",
    "rss_kib",
    "run_once",
    "settle_time_wait",
    "sockets_per_process",
    "split_addrs",
    "stat_cpu_s",
    "summarise",
    "time_wait_sockets",
]
