"""``Scenario`` and ``run_once``: one repetition of a scenario: fresh server, the
Node load generator pinned to the other core (``taskset -c 1``) driven over its
``--control`` stdin handshake so that server CPU is read exactly around the
measured work. Scenarios with ``servers``/``loadgens`` > 1 (``idle-50000``)
start several server processes (``chinwag serve --workers N`` on PostgreSQL +
Redis, N ``reuse_port`` websockets peers) and several generators, each with its
own slice of 127.0.0.x source addresses, and sum over all of them."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from procstat import BENCH, LOADGEN, Pinning, cpu_delta, sockets_per_process
from servers import free_port
from targets import IDLE_USERS, Target

# ------------------------------------------------------------------ scenarios


@dataclass
class Scenario:
    name: str
    kind: str  # "fanout" | "idle"
    receivers: int  # room members receiving (fanout) or connections held (idle)
    messages: int = 0
    rate: float = 0.0  # msg/s from the sender; 0 = burst
    hold: float = 0.0  # idle only
    timeout: float = 60.0  # generator's delivery deadline after the last send
    # idle only: source addresses, e.g. "127.0.0.1-4". Only needed past ~25k
    # connections: bind()-before-connect cannot reuse TIME_WAIT ports and gets
    # slow once earlier runs left thousands of them; plain connect() on
    # loopback can (net.ipv4.tcp_tw_reuse=2).
    local_addrs: str | None = None
    # idle only, past one process's 20000 file descriptors: server processes
    # (Target.start_many) and generator processes; the generators split the
    # connections and local_addrs between them.
    servers: int = 1
    loadgens: int = 1
    # idle only: handshakes in flight over all generators (None: idle.mjs's 100
    # each). chinwag --workers: each worker's PostgreSQL pool grows to 30, and
    # PostgreSQL allows 100 clients in all.
    concurrency: int | None = None
    # idle only: every connection's user is a member of a room of this many members
    # and sends join_room for it (chinwag; the peers join their one room anyway).
    room_members: int = 0

    def describe(self) -> str:
        if self.kind == "idle":
            spread = (
                f" over {self.servers} server and {self.loadgens} generator processes"
                if self.servers > 1 or self.loadgens > 1
                else ""
            )
            joins = (
                f", each sending join_room for a room of {self.room_members:,} members"
                f" ({IDLE_USERS} users)"
                if self.room_members
                else ""
            )
            return f"{self.receivers} idle connections held {self.hold:g} s{spread}{joins}"
        d = self.messages * self.receivers
        how = (
            f"{self.rate:g} msg/s ({self.rate * self.receivers:,.0f} deliveries/s)"
            if self.rate
            else "one burst"
        )
        return (
            f"room of {self.receivers} receivers + 1 sender, {self.messages} messages, {how}: "
            f"{d:,} deliveries"
        )


# --------------------------------------------------------- one repetition


class LoadgenError(Exception):
    pass


class NotRun(Exception):
    """This target cannot run this scenario (e.g. it has no multi-process mode);
    the cell says so and the target's other scenarios still run."""


class Loadgen:
    """The Node generator under the --control handshake."""

    def __init__(
        self, script: str, argv: list[str], cpu: int | None, workdir: Path, tag: str, timeout: float
    ) -> None:
        node = shutil.which("node")
        if node is None:
            raise LoadgenError("node not found on PATH")
        if not (BENCH / "node_modules" / "ws").exists():
            raise LoadgenError("bench/node_modules missing: run `npm ci` in bench/")
        self.err_path = workdir / f"loadgen-{tag}.err"
        self._err = open(self.err_path, "wb")
        prefix = [] if cpu is None else ["taskset", "-c", str(cpu)]
        self.proc = subprocess.Popen(
            [*prefix, node, str(LOADGEN / script), "--control", "--quiet", *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            cwd=BENCH,
            text=True,
            bufsize=1,
        )
        self.deadline = time.monotonic() + timeout
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def stderr_tail(self, n: int = 10) -> str:
        try:
            return "\n".join(self.err_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def expect(self, event: str) -> dict:
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise LoadgenError(f"timed out waiting for {event!r} from the load generator")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                rc = self.proc.wait(5)
                raise LoadgenError(
                    f"load generator exited ({rc}) before {event!r}: {self.stderr_tail()}"
                )
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("event") == event:
                return msg

    def say(self, word: str) -> None:
        assert self.proc.stdin
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.write(word + "\n")
            self.proc.stdin.flush()

    def close(self) -> int | None:
        with contextlib.suppress(BrokenPipeError, OSError):
            assert self.proc.stdin
            self.proc.stdin.close()
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(5)
        self._err.close()
        return rc


def run_once(target: Target, sc: Scenario, pin: Pinning, workdir: Path, rep: int) -> dict:
    """One repetition: fresh server, generator, measurements. Raises
    TargetUnavailable / NotImplementedError when the target can't start,
    LoadgenError when the run itself failed."""
    port = free_port()
    if sc.servers == 1:
        server = target.start(port, workdir, pin.server_cpu)
    elif target.start_many is None:
        raise NotRun(f"not run: {target.name} runs in one process only")
    else:
        server = target.start_many(port, workdir, pin.server_cpu, sc.servers)
    lgs: list[Loadgen] = []
    try:
        conns = sc.receivers + (1 if sc.kind == "fanout" else 0)
        extra = target.loadgen_args(server, conns, workdir, sc.kind == "idle", sc.room_members)
        server.wait_quiet()
        rss0 = server.rss_kib()
        cpu_start = server.cpu()
        socks0 = sockets_per_process(server.pid) if sc.servers > 1 else {}
        tag = f"{target.name}-{sc.name}-{rep}"
        common = ["--dialect", target.dialect, "--url", target.url(port)]
        if sc.kind == "fanout":
            argv = [
                *common,
                "-n",
                str(sc.receivers),
                "-m",
                str(sc.messages),
                "--rate",
                str(sc.rate),
                "--timeout",
                str(sc.timeout),
                "--run",
                f"{rep}{os.getpid():x}{int(time.time()) % 100000:x}",
                *extra,
            ]
            budget = 60 + sc.receivers / 50 + sc.timeout + (sc.messages / sc.rate if sc.rate else 0)
            lgs.append(Loadgen("fanout.mjs", argv, pin.loadgen_cpu, workdir, tag, budget))
        else:
            # The generators start together and split the connections and the
            # source addresses; all of them share the generator core.
            budget = 60 + sc.receivers / 50 + sc.hold
            addrs = split_addrs(sc.local_addrs, sc.loadgens)
            for i in range(sc.loadgens):
                argv = [
                    *common,
                    "-n",
                    str(len(range(i, sc.receivers, sc.loadgens))),
                    "--hold",
                    str(sc.hold),
                    "--connect-timeout",
                    str(round(budget)),
                    "--max-seconds",
                    str(round(budget + 30)),
                    *extra,
                    *(["--local-addrs", addrs[i]] if addrs[i] else []),
                    *(
                        ["--concurrency", str(-(-sc.concurrency // sc.loadgens))]
                        if sc.concurrency
                        else []
                    ),
                ]
                lg_tag = tag if sc.loadgens == 1 else f"{tag}-{i}"
                lgs.append(Loadgen("idle.mjs", argv, pin.loadgen_cpu, workdir, lg_tag, budget))
        readies = [lg.expect("ready") for lg in lgs]
        quiet_s = server.wait_quiet()  # let connect/presence storms drain
        rss_ready = server.rss_kib()
        cpu0 = server.cpu()
        socks1 = sockets_per_process(server.pid) if sc.servers > 1 else {}
        connect_cpu_s, _ = cpu_delta(cpu_start, cpu0)
        for lg in lgs:
            lg.say("go")
        res = combine_results([lg.expect("result") for lg in lgs])
        cpu1 = server.cpu()
        rss_after = server.rss_kib()
        for lg in lgs:
            lg.say("bye")
        rcs = [lg.close() for lg in lgs]
        lgs = []
        rc = max((r for r in rcs if r is not None), default=None)
        server_cpu_s, cpu_source = cpu_delta(cpu0, cpu1)
        out = {
            "target": target.name,
            "scenario": sc.name,
            "rep": rep,
            "ok": bool(res.get("ok")),
            "loadgen_rc": rc,
            "quiet_wait_s": round(quiet_s, 3),
            "server_cpu_s": round(server_cpu_s, 6),
            "cpu_source": cpu_source,
            "rss_base_kib": rss0,
            "rss_ready_kib": rss_ready,
            "rss_after_kib": rss_after,
            "rss_per_conn_kib": round((rss_ready - rss0) / conns, 2),
            "connect_cpu_us_per_conn": round(connect_cpu_s * 1e6 / conns, 1),
            "connect_s": max(r.get("connect_s") or 0 for r in readies),
            **{f"lg_{k}": v for k, v in res.items() if k not in ("event",)},
        }
        if sc.kind == "fanout":
            d = res.get("deliveries") or 0
            secs = res.get("seconds") or 0
            out.update(
                {
                    "deliveries": d,
                    "deliveries_per_s": res.get("deliveries_per_s"),
                    "cpu_us_per_delivery": round(server_cpu_s * 1e6 / d, 3) if d else None,
                    "p50_ms": res.get("p50_ms"),
                    "p99_ms": res.get("p99_ms"),
                    "max_ms": res.get("max_ms"),
                    "server_busy": round(server_cpu_s / secs, 3) if secs else None,
                    "loadgen_busy": round(res.get("loadgen_cpu_s", 0) / secs, 3) if secs else None,
                }
            )
        else:
            out.update(
                {
                    "connect_per_s": res.get("connect_per_s"),
                    "open_at_end": res.get("open_at_end"),
                    "requested": sc.receivers,
                    "server_hold_cpu_s": round(server_cpu_s, 4),
                    "loadgen_cpu_s": res.get("loadgen_cpu_s"),
                    "loadgen_busy": res.get("loadgen_busy"),
                }
            )
            if sc.servers > 1:
                # connections per server process: its sockets at ready minus before
                per_proc = sorted((n - socks0.get(p, 0) for p, n in socks1.items()), reverse=True)[
                    : sc.servers
                ]
                per_proc += [0] * (sc.servers - len(per_proc))
                out.update(
                    {
                        "conns_per_process": per_proc,
                        "max_process_conns": per_proc[0],
                        "min_process_conns": per_proc[-1],
                        "server_processes": len(socks1),
                    }
                )
        if not out["ok"]:
            out["server_log_tail"] = server.log_tail(8)
            out["failure"] = res.get("failure") or f"only {res.get('open_at_end')} stayed open"
        return out
    except LoadgenError as e:
        raise LoadgenError(f"{e}\n--- {server.name} log tail ---\n{server.log_tail(8)}") from e
    finally:
        for lg in lgs:
            with contextlib.suppress(Exception):
                lg.proc.kill()
                lg.close()
        server.stop()


def split_addrs(spec: str | None, k: int) -> list[str | None]:
    """k disjoint slices of a --local-addrs spec ("127.0.0.2-13" or "a,b,c"),
    one per generator, comma-joined; [None]*k without a spec."""
    if not spec:
        return [None] * k
    addrs: list[str] = []
    for part in spec.split(","):
        head, _, last = part.rpartition(".")
        lo, _, hi = last.partition("-")
        addrs += [f"{head}.{i}" for i in range(int(lo), int(hi or lo) + 1)]
    if len(addrs) < k:
        raise ValueError(f"local_addrs {spec!r}: fewer addresses than {k} generators")
    return [",".join(addrs[i::k]) for i in range(k)]


def combine_results(results: list[dict]) -> dict:
    """One idle result from several generators that ran side by side: counts
    summed, connect time = the slowest generator's, CPU summed."""
    if len(results) == 1 and "loadgen_connect_cpu_s" not in results[0]:
        return results[0]  # fanout
    one = results[0] if len(results) == 1 else {}  # keep a lone generator's own fields
    n = sum(r.get("connections") or 0 for r in results)
    connect_s = max(r.get("connect_s") or 0 for r in results)
    connect_cpu = sum(r.get("loadgen_connect_cpu_s") or 0 for r in results)
    codes: dict[str, int] = {}
    for r in results:
        for code, k in (r.get("close_codes") or {}).items():
            codes[code] = codes.get(code, 0) + k
    failures = [r["failure"] for r in results if r.get("failure")]
    return {
        **one,
        "ok": all(r.get("ok") for r in results),
        "generators": len(results),
        "connections": n,
        "connect_s": connect_s,
        "connect_per_s": round(n / connect_s, 1) if connect_s else None,
        "open_at_end": sum(r.get("open_at_end") or 0 for r in results),
        "closed_during_hold": sum(r.get("closed_during_hold") or 0 for r in results),
        "close_codes": codes,
        "loadgen_cpu_s": round(
            connect_cpu + sum(r.get("loadgen_hold_cpu_s") or 0 for r in results), 3
        ),
        # share of the generators' one core used while connecting
        "loadgen_busy": round(connect_cpu / connect_s, 3) if connect_s else None,
        **({"failure": "; ".join(failures)} if failures else {}),
    }
