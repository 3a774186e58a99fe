"""The one command: chinwag and its peers, measured side by side in one run.

    python bench/run.py            # full: medians of 3, a few minutes
    python bench/run.py --quick    # ~20 s smoke: 1 repetition, small sizes

Scenarios (every target, same sizes):
  burst-100   room of 100 receivers + 1 sender, a burst of 1000 messages (100,000 deliveries)
  burst-1000  room of 1000 receivers + 1 sender, a burst of 100 messages (100,000 deliveries)
  rate-10k    room of 100 receivers, 100 msg/s for 10 s: a steady 10,000 deliveries/s
  idle-1000, idle-10000, idle-19000
              N idle authenticated connections held 5 s: connect rate, RSS per connection
  join-1000, join-10000
              N connections of 50 members of a 1000-member room, each sending join_room
              for it: authenticated connects/s and server CPU per connect
  idle-50000  50,000 idle connections over 4 server and 3 generator processes
              (chinwag --workers 4 on PostgreSQL + Redis; not in --quick/--smoke)
chinwag only (bench/extras.py; the peers' cells say n/a; --smoke runs each at a small size):
  ai-streams-1000 (ai-streams-100 --quick), ai-relay, upload-50mb, store-sqlite,
  store-postgres

Each repetition starts a fresh server pinned to cpu 0 and the Node load
generator pinned to cpu 1; targets that cannot start are skipped with the
reason printed. Raw results go to bench/results/<time>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import extras
from procstat import BENCH, Pinning, log, settle_time_wait
from report import Cell, print_table, summarise
from scenarios import LoadgenError, NotRun, Scenario, run_once
from servers import TargetUnavailable
from targets import TARGETS

FULL = [
    Scenario("burst-100", "fanout", receivers=100, messages=1000),
    Scenario("burst-1000", "fanout", receivers=1000, messages=100),
    Scenario("rate-10k", "fanout", receivers=100, messages=1000, rate=100),
    Scenario("idle-1000", "idle", receivers=1000, hold=5),
    Scenario("idle-10000", "idle", receivers=10000, hold=5),
    Scenario("idle-19000", "idle", receivers=19000, hold=5),
    # The connect path as users connect: 50 members of a 1000-member room, many
    # connections each, every one sending join_room for it (bench/big_room.py).
    Scenario("join-1000", "idle", receivers=1000, hold=1, room_members=1000),
    Scenario("join-10000", "idle", receivers=10000, hold=1, room_members=1000),
    # Past one process's 20000 fds: 4 server processes (<= ~19k each even if
    # accept() spreads unevenly), 3 generators of <= 16,667 sockets, each with
    # 4 source addresses of its own (~4.2k ports per address).
    Scenario(
        "idle-50000",
        "idle",
        receivers=50000,
        hold=5,
        servers=4,
        loadgens=3,
        local_addrs="127.0.0.2-13",
        concurrency=60,
    ),
]
#: For CI: checks that every target still starts and answers, in about 20 seconds.
SMOKE = [
    Scenario("burst-20", "fanout", receivers=20, messages=50, timeout=15),
    Scenario("rate-2k", "fanout", receivers=20, messages=200, rate=100, timeout=15),
    Scenario("idle-200", "idle", receivers=200, hold=1),
    Scenario("join-200", "idle", receivers=200, hold=1, room_members=1000),
]
QUICK = [
    Scenario("burst-100", "fanout", receivers=100, messages=200, timeout=20),
    Scenario("burst-1000", "fanout", receivers=1000, messages=20, timeout=20),
    Scenario("rate-10k", "fanout", receivers=100, messages=200, rate=100, timeout=20),
    Scenario("idle-1000", "idle", receivers=1000, hold=1),
    Scenario("join-1000", "idle", receivers=1000, hold=1, room_members=1000),
]


def ensure_node_modules() -> None:
    if (BENCH / "node_modules" / "ws").exists() and (
        BENCH / "node_modules" / "socket.io-client"
    ).exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("bench: node_modules missing and npm not found (need Node >= 18 and npm)")
    cmd = [
        npm,
        "ci" if (BENCH / "package-lock.json").exists() else "install",
        "--no-audit",
        "--no-fund",
    ]
    log(f"bench: installing the load generator's packages: {' '.join(cmd[1:])} (in bench/)")
    subprocess.run(cmd, cwd=BENCH, check=True, timeout=300)


def main() -> int:
    ap = argparse.ArgumentParser(description="chinwag side-by-side benchmark")
    ap.add_argument(
        "--quick", action="store_true", help="~20 s smoke run (1 repetition, small sizes)"
    )
    ap.add_argument("--smoke", action="store_true", help="~20 s check that every target runs (CI)")
    ap.add_argument("--reps", type=int, help="repetitions per cell (default 3; 1 with --quick)")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated (default: all)")
    ap.add_argument("--scenarios", help="comma-separated scenario names (default: all)")
    ap.add_argument("--baseline", default="chinwag", help="target the ratios are taken against")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--loadgen-cpu", type=int, default=1)
    ap.add_argument(
        "--json", type=Path, help="where to write raw results (default bench/results/<time>.json)"
    )
    ap.add_argument("--keep", action="store_true", help="keep server/generator logs")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every repetition")
    a = ap.parse_args()

    scenarios = SMOKE if a.smoke else QUICK if a.quick else FULL
    # chinwag-only, after the others
    extra = extras.smoke_extras() if a.smoke else extras.extras(a.quick)
    if a.scenarios:
        want = a.scenarios.split(",")
        known = {s.name for s in scenarios} | {x.name for x in extra}
        if bad := [w for w in want if w not in known]:
            ap.error(f"unknown scenario(s) {bad}; known: {sorted(known)}")
        scenarios = [s for s in scenarios if s.name in want]
        extra = [x for x in extra if x.name in want]
    names = [t.strip() for t in a.targets.split(",") if t.strip()]
    if bad := [t for t in names if t not in TARGETS]:
        ap.error(f"unknown target(s) {bad}; known: {list(TARGETS)}")
    reps = a.reps or (1 if a.quick or a.smoke else 3)

    ensure_node_modules()
    pin = Pinning.detect(a.server_cpu, a.loadgen_cpu)
    n_t, n_s = len(names), len(scenarios) + len(extra)
    log(f"bench: {n_t} target(s) x {n_s} scenario(s) x {reps} rep(s); {pin.describe()}")

    results: dict[str, dict[str, Cell]] = {s.name: {} for s in scenarios}
    skipped: dict[str, str] = {}
    t_start = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = BENCH / "results" / f"{stamp}-work"  # server logs, generator stderr, tokens
    workdir.mkdir(parents=True, exist_ok=True)
    # Scenario by scenario, every target in turn, so the targets of one scenario run
    # under the same conditions (the biggest idle scenarios come last).
    for sc in scenarios:
        for tname in names:
            target = TARGETS[tname]
            if sc.kind == "fanout":
                settle_time_wait()
            cell = results[sc.name].setdefault(tname, Cell())
            if tname in skipped:
                cell.skipped = skipped[tname]
                continue
            for rep in range(1, reps + 1):
                t0 = time.monotonic()
                try:
                    r = run_once(target, sc, pin, workdir, rep)
                except NotRun as e:  # this scenario only; the target's others still run
                    cell.skipped = str(e)
                    log(f"bench: {tname} {sc.name}: {e}")
                    break
                except (TargetUnavailable, NotImplementedError) as e:
                    skipped[tname] = f"{type(e).__name__}: {e}"
                    cell.skipped = skipped[tname]
                    log(f"bench: SKIP {tname}: {skipped[tname]}")
                    break
                except LoadgenError as e:
                    r = {
                        "target": tname,
                        "scenario": sc.name,
                        "rep": rep,
                        "ok": False,
                        "failure": str(e),
                    }
                cell.reps.append(r)
                log(
                    f"bench: {tname:<10} {sc.name:<10} rep {rep}: {brief(r)}"
                    f"  [{time.monotonic() - t0:.1f} s]"
                )
                if a.verbose:
                    log(json.dumps(r))
                if not r.get("ok"):
                    break  # a failed repetition ends the cell (keeps the run bounded)
    results.update(extras.run_all(extra, names, skipped, reps, pin, workdir, a.verbose))

    print(
        f"\nchinwag benchmark ({'quick' if a.quick else 'full'}; {pin.describe()}; "
        f"{time.monotonic() - t_start:.0f} s)"
    )
    for tname in names:
        t = TARGETS[tname]
        print(
            f"  {tname:<10} {t.note}"
            + (f"  [SKIPPED: {skipped[tname]}]" if tname in skipped else "")
        )
    if scenarios:
        print_table(results, scenarios, names, baseline=a.baseline)
    extras.print_table(results, extra, names)

    out = a.json or BENCH / "results" / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "quick": a.quick,
                "reps": reps,
                "pinning": pin.describe(),
                "skipped": skipped,
                "scenarios": [vars(s) for s in scenarios] + [x.record() for x in extra],
                "summary": {**summarise(results, scenarios), **extras.summarise(results, extra)},
                "runs": {s: {t: c.reps for t, c in cells.items()} for s, cells in results.items()},
            },
            indent=1,
        )
    )
    print(f"\nraw results: {out}")
    failed_any = any(not r.get("ok") for c in _cells(results) for r in c.reps)
    if a.keep or failed_any:
        print(f"logs: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = any(
        not c.skipped and not c.ok_reps() for cells in results.values() for c in cells.values()
    )
    return 1 if failed else 0


def _cells(results: dict[str, dict[str, Cell]]) -> list[Cell]:
    return [c for cells in results.values() for c in cells.values()]


def brief(r: dict) -> str:
    if not r.get("ok"):
        return f"FAILED: {r.get('failure')}"
    if "deliveries_per_s" in r:
        return (
            f"{r['deliveries']:,} deliveries, {r['deliveries_per_s']:,.0f}/s, "
            f"{r['cpu_us_per_delivery']} µs cpu/delivery, p50 {r['p50_ms']} ms, "
            f"p99 {r['p99_ms']} ms, lg busy {r['loadgen_busy']}"
        )
    return (
        f"{r['open_at_end']:,} open, {r['connect_per_s']:,.0f} connects/s, "
        f"{r['rss_per_conn_kib']} KiB/conn, lg busy {r.get('loadgen_busy')}"
        + (f", per process {r['conns_per_process']}" if "conns_per_process" in r else "")
    )


if __name__ == "__main__":
    sys.exit(main())
