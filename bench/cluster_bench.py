"""Room fan-out across 1, 2 and 3 chinwag processes (PostgreSQL + Redis), side by side.

    python bench/cluster_bench.py --broker both    # one Redis, then a 3-master Redis Cluster

    python bench/cluster_bench.py                  # 300 receivers, 100-message bursts, medians of 3
    python bench/cluster_bench.py --quick          # one repetition, smaller room
    python bench/cluster_bench.py --profile        # + a py-spy profile of one process mid-burst

For each cluster size it starts that many ``python -m chinwag serve`` processes on
one fresh PostgreSQL database and the machine's Redis (a unique REDIS_KEY_PREFIX per
size, so nothing is shared between sizes), spreads N receivers round-robin over the
processes in one shared room, and has one sender (on the first process) fire M chats
at once. A *delivery* is one chat arriving at one receiver (the sender's own copy is
not counted); deliveries/s = N*M / (first send -> last delivery). Every receiver must
get all M chats, each once, in seq order, or the repetition fails.

The load generator is this process (asyncio on uvloop, one connection per receiver).
CPU seconds are read from /proc between "go" and the last delivery for every chinwag
process, the Redis server and the generator itself; when the generator is near 100 %
of a core, deliveries/s is a floor set by it, while server CPU us/delivery stays exact.
Users are few (receivers share them, WEBSOCKET_MAX_CONNECTIONS_PER_USER is raised) so
setting up costs a handful of password hashes, not hundreds.

With ``--broker redis-cluster`` (or ``both``) the processes use
``BROKER_URL=redis+cluster://…`` on a 3-master Redis Cluster started for the run from
the ``redis-server`` binary (``tests/redis_cluster_fixture.py``); "redis s" is then the
CPU of the three masters together.

Needs: PostgreSQL on 127.0.0.1:5432 (user postgres, trust), Redis on 127.0.0.1:6379
(or ``redis-server``/``redis-cli`` on PATH for the cluster), Linux /proc. Every
repetition is bounded (--deadline, default 45 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests.redis_cluster_fixture

from cluster_nodes import REDIS_CLUSTER_PIDS, Cluster, start_cluster, wait_quiet
from databases import create_database, drop_database
from fanout_clients import Receiver, open_all, ws_tokens, ws_url
from procstat import cpu_delta, cpu_snapshot, postgres_cpu, postgres_delta
from profiling import start_profile, stop_profile, summarise_profile

BENCH = Path(__file__).resolve().parent
REDIS_URL = "redis://127.0.0.1:6379/0"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------- one repetition


@dataclass
class Result:
    size: int
    broker: str
    deliveries: int
    seconds: float
    per_proc_cpu: list[float]
    redis_cpu: float | None
    postgres_cpu: float
    client_cpu: float
    p50_ms: float
    p99_ms: float
    receivers_per_proc: list[int]

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds

    @property
    def server_us_per_delivery(self) -> float:
        return sum(self.per_proc_cpu) / self.deliveries * 1e6


def client_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def run_once(
    cluster: Cluster,
    tokens: dict[str, str],
    n: int,
    m: int,
    deadline: float,
    *,
    spread_senders: bool = False,
    profile: Path | None = None,
) -> Result:
    room = f"bench-{uuid.uuid4().hex[:8]}"
    done_events = [asyncio.Event() for _ in range(n)]
    receivers = [Receiver(room, m, e) for e in done_events]
    rx_users = [u for u in tokens if not u.startswith("sender")]
    ports = cluster.ports
    # One sender on the first process, or one on each process sharing the M messages.
    senders = [
        Receiver(room, m, asyncio.Event()) for _ in range(len(ports) if spread_senders else 1)
    ]
    try:
        async with asyncio.timeout(deadline):
            for i, sender in enumerate(senders):  # the first one creates the room
                await sender.open(ws_url(ports[i], tokens[f"sender{i}"], room))
            urls = [
                ws_url(ports[i % len(ports)], tokens[rx_users[i % len(rx_users)]], room)
                for i in range(n)
            ]
            # Each user's first connection joins the room, then the rest follow: two
            # connections of one user joining at once can race to insert the membership.
            first = min(n, len(rx_users))
            await open_all(receivers[:first], urls[:first])
            await open_all(receivers[first:], urls[first:])
            await asyncio.to_thread(wait_quiet, cluster.procs)
            rpids = cluster.redis_pids
            spy = start_profile(cluster.procs[0].pid, profile) if profile else None
            before = [p.cpu() for p in cluster.procs]
            redis_before = [cpu_snapshot(pid) for pid in rpids]
            pg_before = postgres_cpu()
            client_before = client_cpu_s()
            t0 = time.perf_counter()
            for i in range(m):
                ws = senders[i % len(senders)].ws
                assert ws is not None
                await ws.send(
                    orjson.dumps(
                        {
                            "type": "chat",
                            "room_id": room,
                            "message_id": f"{room}-{i}",
                            "data": {"message": repr(time.perf_counter()), "ai": False},
                        }
                    ).decode()
                )
            await asyncio.gather(*(e.wait() for e in done_events))
            t1 = max(r.last_at for r in receivers)
            per_proc = [
                cpu_delta(b, p.cpu())[0] for b, p in zip(before, cluster.procs, strict=True)
            ]
            redis_cpu = (
                sum(
                    cpu_delta(b, cpu_snapshot(pid))[0]
                    for b, pid in zip(redis_before, rpids, strict=True)
                )
                if rpids
                else None
            )
            postgres = postgres_delta(pg_before, postgres_cpu())
            client = client_cpu_s() - client_before
            if spy is not None:
                stop_profile(spy)
    except TimeoutError:
        got = sum(len(r.seqs) for r in receivers)
        raise RuntimeError(f"deadline {deadline}s: {got}/{n * m} deliveries") from None
    finally:
        await asyncio.gather(*(r.close() for r in [*senders, *receivers]))
    for r in receivers:  # each chat once, in seq order, nothing missing
        if len(r.seqs) != m or r.seqs != sorted(set(r.seqs)):
            raise RuntimeError(f"receiver got {len(r.seqs)} chats, order/dups wrong")
    lat = sorted(x for r in receivers for x in r.latencies)
    counts = Counter(i % len(ports) for i in range(n))
    return Result(
        len(ports),
        cluster.broker,
        n * m,
        t1 - t0,
        per_proc,
        redis_cpu,
        postgres,
        client,
        lat[len(lat) // 2] * 1e3,
        lat[int(len(lat) * 0.99)] * 1e3,
        [counts[i] for i in range(len(ports))],
    )


# ------------------------------------------------------------------ driver

Plan = list[tuple[str, int, str]]  # (label, processes, broker URL)


async def measure_sizes(
    plan: Plan,
    receivers: int,
    messages: int,
    reps: int,
    workdir: Path,
    *,
    users: int = 20,
    deadline: float = 45.0,
    spread_senders: bool = False,
    profile_into: list[str] | None = None,
) -> dict[str, list[Result]]:
    """Every cluster size of ``plan`` on one fresh PostgreSQL database: {label: the
    repetitions that succeeded}. With ``profile_into``, one extra burst of the largest
    size on Redis under py-spy, its summary appended there."""
    sizes = [size for _, size, _ in plan]
    db = await create_database()
    database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"
    results: dict[str, list[Result]] = {}
    try:
        tokens: dict[str, str] | None = None
        for label, size, broker in plan:
            log(f"== {label} process(es), broker {broker}")
            cluster = await asyncio.to_thread(
                start_cluster, size, database_url, broker, workdir / label.split()[0]
            )
            try:
                if tokens is None:  # one database for every size: users are made once
                    tokens = await ws_tokens(
                        cluster.ports[0],
                        [
                            *[f"sender{i}" for i in range(max(sizes))],
                            *[f"rx{i}" for i in range(users)],
                        ],
                    )
                runs = results.setdefault(label, [])
                for rep in range(reps):
                    try:
                        r = await run_once(
                            cluster,
                            tokens,
                            receivers,
                            messages,
                            deadline,
                            spread_senders=spread_senders,
                        )
                    except (RuntimeError, OSError) as exc:
                        log(f"   rep {rep + 1}: FAILED: {exc}")
                        continue
                    runs.append(r)
                    log(
                        f"   rep {rep + 1}: {r.rate:,.0f} deliveries/s in {r.seconds:.2f}s, "
                        f"chinwag CPU {[round(c, 2) for c in r.per_proc_cpu]} s, "
                        f"postgres {r.postgres_cpu:.2f} s, client {r.client_cpu:.2f} s"
                    )
                if profile_into is not None and size == max(sizes) and broker == REDIS_URL:
                    out = workdir / "profile.raw"
                    await run_once(
                        cluster,
                        tokens,
                        receivers,
                        messages * 3,
                        deadline,
                        spread_senders=spread_senders,
                        profile=out,
                    )
                    profile_into.append(
                        f"py-spy of process 1 of {size} during a burst of "
                        f"{messages * 3}:\n" + summarise_profile(out)
                    )
            finally:
                await asyncio.to_thread(cluster.stop)
    finally:
        await drop_database(db)
    return results


def print_table(results: dict[str, list[Result]], n: int, m: int, spread: bool, load: str) -> None:
    who = "one sender per process" if spread else "1 sender on process 1"
    reps = max((len(v) for v in results.values()), default=0)
    print(
        f"\nroom fan-out: {n} receivers spread round-robin over the processes, {who}, "
        f"a burst of {m} chats = {n * m:,} deliveries; medians of {reps}"
    )
    head = (
        f"{'processes':<16}{'deliveries/s':>13}{'vs 1':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'chinwag CPU s, per process':>29}{'us/deliv':>10}{'redis s':>9}{'pg s':>7}"
        f"{'client busy':>13}"
    )
    print(head)
    print("-" * len(head))
    for label, runs in results.items():
        if not runs:
            print(f"{label:<16}{'failed':>13}")
            continue
        rate = statistics.median(r.rate for r in runs)
        # Compared with one process on the same broker.
        one = results.get("1" + label.partition(" ")[1] + label.partition(" ")[2])
        base = statistics.median(r.rate for r in one) if one else None
        ratio = f"{rate / base:.2f}x" if base and label != "1 (memory)" else "-"
        per_proc = [statistics.median(r.per_proc_cpu[i] for r in runs) for i in range(runs[0].size)]
        redis = [r.redis_cpu for r in runs if r.redis_cpu is not None]
        print(
            f"{label:<16}{rate:>13,.0f}{ratio:>7}"
            f"{statistics.median(r.p50_ms for r in runs):>8.0f}"
            f"{statistics.median(r.p99_ms for r in runs):>8.0f}"
            f"{' / '.join(f'{c:.2f}' for c in per_proc):>29}"
            f"{statistics.median(r.server_us_per_delivery for r in runs):>10.1f}"
            f"{(f'{statistics.median(redis):.2f}' if redis else '-'):>9}"
            f"{statistics.median(r.postgres_cpu for r in runs):>7.2f}"
            f"{statistics.median(r.client_cpu / r.seconds for r in runs):>12.0%}"
        )
    print(
        f"(CPU seconds between the first send and the last delivery. Machine: "
        f"{os.cpu_count()} cpus shared by every chinwag process, Redis, PostgreSQL and "
        f"this generator; load average before the run: {load}.)"
    )


CLUSTER_SIZES = (1, 2, 3)


def cluster_rep(_pin: object, workdir: Path, receivers: int = 300, messages: int = 100) -> dict:
    """One repetition of every size in CLUSTER_SIZES on Redis, for bench/run.py's table
    (the processes cannot be pinned: they share both cores with Redis and PostgreSQL)."""
    import redis
    from databases import PG
    from servers import TargetUnavailable

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        raise TargetUnavailable(f"Redis not reachable at {REDIS_URL} ({e})") from e
    plan = [(str(size), size, REDIS_URL) for size in CLUSTER_SIZES]
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        results = asyncio.run(measure_sizes(plan, receivers, messages, 1, workdir))
    except OSError as e:
        raise TargetUnavailable(
            f"PostgreSQL not reachable at {PG['host']}:{PG['port']} ({e})"
        ) from e
    out: dict[str, float] = {}
    for label, runs in results.items():
        if not runs:
            raise RuntimeError(f"{label} process(es): the burst failed (see the log above)")
        r = runs[0]
        out[f"deliveries_per_s_{label}"] = r.rate
        out[f"us_per_delivery_{label}"] = r.server_us_per_delivery
        out[f"postgres_s_{label}"] = r.postgres_cpu
        out[f"redis_s_{label}"] = r.redis_cpu or 0.0
        out[f"first_process_s_{label}"] = r.per_proc_cpu[0]
    return out


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--receivers", "-n", type=int, default=300)
    ap.add_argument("--messages", "-m", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default="1,2,3", help="cluster sizes, e.g. 1,2,3")
    ap.add_argument(
        "--broker",
        choices=["redis", "redis-cluster", "both"],
        default="redis",
        help="one Redis, a 3-master Redis Cluster started for the run, or both",
    )
    ap.add_argument(
        "--memory",
        action="store_true",
        help="also one process with BROKER_URL=memory:// (no Redis hop)",
    )
    ap.add_argument(
        "--spread-senders",
        action="store_true",
        help="one sender on every process (sharing the M chats) instead of one",
    )
    ap.add_argument("--users", type=int, default=20, help="receiver users (connections share)")
    ap.add_argument("--deadline", type=float, default=45.0, help="bound on each repetition (s)")
    ap.add_argument("--quick", action="store_true", help="1 repetition, 150 receivers")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the first process during one extra burst of the largest size",
    )
    ap.add_argument("--json", type=Path, help="write every repetition here")
    args = ap.parse_args()
    load = f"{os.getloadavg()[0]:.2f}"
    if args.quick:
        args.reps, args.receivers = 1, min(args.receivers, 150)
    sizes = [int(s) for s in args.sizes.split(",")]
    plan = [("1 (memory)", 1, "memory://")] if args.memory else []
    if args.broker in ("redis", "both"):
        plan += [(str(s), s, REDIS_URL) for s in sizes]
    redis_nodes = None
    if args.broker in ("redis-cluster", "both"):
        from tests.redis_cluster_fixture import start_nodes

        redis_nodes = start_nodes(Path(tempfile.mkdtemp(prefix="chinwag-bench-cluster-")))
        REDIS_CLUSTER_PIDS.extend(p.pid for p in redis_nodes.procs)
        plan += [(f"{s} (cluster)", s, redis_nodes.url) for s in sizes]
    workdir = BENCH / "results" / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}"
    workdir.mkdir(parents=True, exist_ok=True)
    profile_text: list[str] = []
    try:
        results = await measure_sizes(
            plan,
            args.receivers,
            args.messages,
            args.reps,
            workdir,
            users=args.users,
            deadline=args.deadline,
            spread_senders=args.spread_senders,
            profile_into=profile_text if args.profile else None,
        )
    finally:
        if redis_nodes is not None:
            from tests.redis_cluster_fixture import stop_nodes

            stop_nodes(redis_nodes.procs)
    print_table(results, args.receivers, args.messages, args.spread_senders, load)
    if profile_text:
        print("\n" + profile_text[0])
    if args.json:
        args.json.write_text(
            json.dumps({k: [vars(r) for r in v] for k, v in results.items()}, indent=1)
        )
    return 0 if results and all(results.values()) else 1


def _run() -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())


if __name__ == "__main__":
    sys.exit(_run())
