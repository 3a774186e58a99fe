"""Measurement helpers for the chinwag side-by-side benchmark.

* ``ServerProc``: a target server started pinned to one core (``taskset -c 0``),
  with its CPU time (all threads of the process and its descendants) and RSS.
* ``Target``: how to start a server and how the load generator talks to it
  (``websockets``, ``socketio`` and ``chinwag``; see ``TARGETS``).
* ``run_once``: one repetition of a scenario: fresh server, the Node load
  generator pinned to the other core (``taskset -c 1``) driven over its
  ``--control`` stdin handshake so that server CPU is read exactly around the
  measured work. Scenarios with ``servers``/``loadgens`` > 1 (``idle-50000``)
  start several server processes (``chinwag serve --workers N`` on PostgreSQL +
  Redis, N ``reuse_port`` websockets peers) and several generators, each with
  its own slice of 127.0.0.x source addresses, and sum over all of them.
* ``summarise`` / ``print_table``: medians over repetitions, side by side, with
  each target's ratio to chinwag (or another ``baseline``).

CPU accounting: per-thread ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds
on CPU) summed over the server's process tree; if a thread that existed at
the first reading has exited by the second, its time is only in the
process's ``/proc/<pid>/stat`` utime+stime (clock ticks, 10 ms), so that
reading is used instead (``cpu_source`` says which). psutil is not needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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


# ------------------------------------------------------------------ servers


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


# ------------------------------------------------------------------ targets


@dataclass
class Target:
    """A server under test.

    start(port, workdir, cpu) -> ServerProc (raise TargetUnavailable or
    NotImplementedError to have it skipped); url(port) -> load generator URL;
    loadgen_args(server, n_connections, workdir) -> extra generator arguments
    (e.g. --tokens FILE); start_many(port, workdir, cpu, processes) -> one
    ServerProc whose process tree serves the port with that many processes
    (None: the target runs in one process only)."""

    name: str
    dialect: str
    note: str
    start: Callable[[int, Path, int | None], ServerProc]
    url: Callable[[int], str]
    loadgen_args: Callable[[ServerProc, int, Path, bool], list[str]] = lambda s, n, w, i: []
    start_many: Callable[[int, Path, int | None, int], ServerProc] | None = None


def _start_websockets(
    port: int, workdir: Path, cpu: int | None, processes: int = 1
) -> ServerProc:
    s = ServerProc(
        "websockets",
        [sys.executable, str(PEERS / "websockets_server.py"), "--port", str(port),
         "--processes", str(processes)],
        port,
        workdir,
        cpu=cpu,
    )
    s.wait_ready()
    s.wait_log("listening on", processes)  # every reuse_port process has bound
    return s


def _start_socketio(port: int, workdir: Path, cpu: int | None) -> ServerProc:
    try:
        import socketio  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise TargetUnavailable(
            f"python-socketio/uvicorn not installed ({e}); pip install -e '.[bench]'"
        ) from e
    s = ServerProc(
        "socketio",
        [sys.executable, str(PEERS / "socketio_server.py"), "--port", str(port)],
        port,
        workdir,
        cpu=cpu,
    )
    s.wait_ready()
    return s


# --- chinwag (to be completed by the lead once `python -m chinwag serve` runs) ---

CHINWAG_ENV = {
    # What the benchmark needs from chinwag's settings:
    "LOG_LEVEL": "WARNING",
    "WS_RATE_LIMIT_REQUESTS": "1000000",  # the sender sends up to 1000 chats/run
    "WS_RATE_LIMIT_WINDOW": "1",
    "REGISTER_RATE_LIMIT_REQUESTS": "1000000",  # it registers up to 1000 users per run
    "HTTP_RATE_LIMIT_REQUESTS": "1000000",
    "WEBSOCKET_MAX_CONNECTIONS": "30000",
    "WEBSOCKET_MAX_CONNECTIONS_PER_USER": "1000",
    "JWT_SECRET": "bench-secret-not-for-production-0123456789abcdef",
    "AI_PROVIDER": "offline",
}


def _start_chinwag(port: int, workdir: Path, cpu: int | None) -> ServerProc:
    # DATA_DIR lives in the run's workdir, so users registered by an earlier
    # repetition (and their cached tokens) are reused.
    env = {**CHINWAG_ENV, "DATA_DIR": str(workdir / "chinwag-data"),
           "UPLOAD_DIR": str(workdir / "chinwag-uploads"),
           "TEMP_DIR": str(workdir / "chinwag-uploads" / "temp")}
    s = ServerProc("chinwag", [sys.executable, "-m", "chinwag", "serve", "--port", str(port)],
                   port, workdir, env=env, cpu=cpu)
    s.wait_ready()
    s.token_cache = workdir / "chinwag-tokens.json"
    return s


def _start_chinwag_workers(port: int, workdir: Path, cpu: int | None, workers: int) -> ServerProc:
    """`chinwag serve --workers N`: the parent binds the port, N spawned workers
    accept from it and share rooms and presence through Redis, and a fresh
    PostgreSQL database (dropped when the server stops). REDIS_KEY_PREFIX is new
    each time; every key under it has a TTL (PRESENCE_TTL), so nothing is left."""
    import asyncio
    import uuid

    from databases import create_database, drop_database

    try:
        db = asyncio.run(create_database())
    except Exception as e:  # no PostgreSQL here: skip, saying why
        raise TargetUnavailable(f"--workers needs PostgreSQL on 127.0.0.1:5432: {e}") from e
    run_dir = workdir / db
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **CHINWAG_ENV,
        "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}",
        "BROKER_URL": "redis://127.0.0.1:6379/0",
        "REDIS_KEY_PREFIX": f"chinwag-bench-{uuid.uuid4().hex[:10]}:",
        "WEBSOCKET_MAX_CONNECTIONS_PER_USER": "100000",  # 50k sockets on IDLE_USERS users
        "DATA_DIR": str(run_dir / "data"),
        "UPLOAD_DIR": str(run_dir / "uploads"),
        "TEMP_DIR": str(run_dir / "uploads" / "temp"),
    }
    s = ServerProc("chinwag", [sys.executable, "-m", "chinwag", "serve", "--port", str(port),
                               "--workers", str(workers)], port, workdir, env=env, cpu=cpu)
    s.on_stop.append(lambda: asyncio.run(drop_database(db)))
    try:
        s.wait_ready(timeout=60)
        s.wait_quiet(max_wait=60)  # every worker has started (imports, migrations)
    except BaseException:
        s.stop()
        raise
    s.token_cache = run_dir / "chinwag-tokens.json"  # the users live in this database
    return s


def _mint_ws_token(username: str, user_id: int) -> str:
    import jwt

    now = int(time.time())
    claims = {"sub": username, "uid": user_id, "adm": False, "aud": "chinwag:ws",
              "iat": now, "exp": now + 86400}
    return jwt.encode(claims, CHINWAG_ENV["JWT_SECRET"], algorithm="HS256")


#: Idle scenarios hold many connections per user (authenticated all the same), so
#: 20k sockets do not need 20k registered users.
IDLE_USERS = 50


def _chinwag_loadgen_args(server: ServerProc, n: int, workdir: Path, idle: bool) -> list[str]:
    base = f"http://127.0.0.1:{server.port}"
    users = min(n, IDLE_USERS) if idle else n
    # Idle connections belong to users of their own, in no room, so what is measured
    # is an authenticated socket (as with the peers), not the fan-out scenarios' rooms
    # being subscribed and replayed at every connect.
    prefix = "idle" if idle else "bench"
    cache = server.token_cache
    if cache is not None and idle:
        cache = cache.with_name(f"{cache.stem}-idle.json")
    tokens = chinwag_ws_tokens(base, users, prefix=prefix, cache=cache)
    path = workdir / f"chinwag-tokens-{prefix}-{users}.json"
    path.write_text(json.dumps(tokens[:users]))
    return ["--tokens", str(path), *(["--cycle-tokens"] if users < n else [])]


def _http_json(
    method: str,
    url: str,
    body: dict | None = None,
    bearer: str | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if bearer:
        req.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {}


def chinwag_ws_tokens(
    base_url: str,
    count: int,
    *,
    prefix: str = "bench",
    password: str = "bench-password-1",
    cache: Path | None = None,
    workers: int = 8,
) -> list[str]:
    """Register users <prefix>0..<prefix>{count-1} (409 = already there), log
    each in (POST /api/v1/auth/login -> access_token) and fetch a ws token
    (POST /api/v1/ws/token -> {token}). One user per connection, so the
    per-user connection limit never bites. Tokens are cached in `cache`
    (valid WS_TOKEN_EXPIRE_SECONDS, default a day; JWT_SECRET is fixed in
    CHINWAG_ENV so they survive server restarts)."""
    from concurrent.futures import ThreadPoolExecutor

    cached: list[str] = []
    if cache and cache.exists():
        cached = json.loads(cache.read_text())
        if len(cached) >= count:
            return cached[:count]

    def one(i: int) -> str:
        user = {"username": f"{prefix}{i}", "password": password}
        st, body = _http_json("POST", f"{base_url}/api/v1/auth/register", user)
        if st not in (200, 201, 409):
            raise RuntimeError(f"register {user['username']}: HTTP {st} {body}")
        if st == 201:
            # The harness knows the server's JWT_SECRET (CHINWAG_ENV), so it mints the
            # WebSocket token itself instead of a second password hash per user (login).
            return _mint_ws_token(body["username"], body["id"])
        st, body = _http_json("POST", f"{base_url}/api/v1/auth/login", user)
        if st != 200:
            raise RuntimeError(f"login {user['username']}: HTTP {st} {body}")
        st, body = _http_json(
            "POST", f"{base_url}/api/v1/ws/token", {}, bearer=body["access_token"]
        )
        if st != 200:
            raise RuntimeError(f"ws token {user['username']}: HTTP {st} {body}")
        return body["token"]

    with ThreadPoolExecutor(workers) as ex:
        tokens = cached + list(ex.map(one, range(len(cached), count)))
    if cache:
        cache.write_text(json.dumps(tokens))
    return tokens


TARGETS: dict[str, Target] = {
    "chinwag": Target(
        "chinwag",
        "chinwag",
        "chinwag (python -m chinwag serve)",
        _start_chinwag,
        lambda port: f"ws://127.0.0.1:{port}/api/v1/ws/ws",
        _chinwag_loadgen_args,
        start_many=_start_chinwag_workers,
    ),
    "websockets": Target(
        "websockets",
        "ws",
        "websockets 17 broadcast() on uvloop",
        _start_websockets,
        lambda port: f"ws://127.0.0.1:{port}/",
        start_many=_start_websockets,
    ),
    "socketio": Target(
        "socketio",
        "socketio",
        "python-socketio 5 ASGI on uvicorn+uvloop, ws only",
        _start_socketio,
        lambda port: f"http://127.0.0.1:{port}",
    ),
}


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

    def describe(self) -> str:
        if self.kind == "idle":
            spread = (
                f" over {self.servers} server and {self.loadgens} generator processes"
                if self.servers > 1 or self.loadgens > 1
                else ""
            )
            return f"{self.receivers} idle connections held {self.hold:g} s{spread}"
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
        extra = target.loadgen_args(server, conns, workdir, sc.kind == "idle")
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
                    *(["--concurrency", str(-(-sc.concurrency // sc.loadgens))]
                      if sc.concurrency else []),
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
                per_proc = sorted(
                    (n - socks0.get(p, 0) for p, n in socks1.items()), reverse=True
                )[: sc.servers]
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


# ---------------------------------------------------------------- summaries

# (key, label, format, higher_is_better) per scenario kind
FANOUT_METRICS = [
    ("deliveries_per_s", "deliveries/s", "{:,.0f}", True),
    ("cpu_us_per_delivery", "server CPU µs/delivery", "{:.2f}", False),
    ("p50_ms", "latency p50 ms", "{:.1f}", False),
    ("p99_ms", "latency p99 ms", "{:.1f}", False),
    ("max_ms", "latency max ms", "{:.1f}", False),
    ("rss_per_conn_kib", "server RSS KiB/conn", "{:.1f}", False),
    ("server_busy", "server busy (cores)", "{:.2f}", None),
    ("loadgen_busy", "load gen busy (cores)", "{:.2f}", None),
]
IDLE_METRICS = [
    ("connect_per_s", "connects/s", "{:,.0f}", True),
    ("rss_per_conn_kib", "server RSS KiB/conn", "{:.1f}", False),
    ("connect_cpu_us_per_conn", "server CPU µs/connect", "{:,.0f}", False),
    ("open_at_end", "open at end", "{:,.0f}", True),
    ("server_hold_cpu_s", "server CPU s while idle", "{:.3f}", False),
    ("loadgen_busy", "load gen busy (cores)", "{:.2f}", None),
]
#: idle scenarios over several server processes (Scenario.servers > 1) add these
MULTI_METRICS = [
    ("max_process_conns", "most conns on 1 process", "{:,.0f}", None),
    ("min_process_conns", "fewest conns on 1 process", "{:,.0f}", None),
    ("loadgen_cpu_s", "load gen CPU s (all)", "{:.1f}", None),
]


def metrics_for(sc: Scenario) -> list[tuple]:
    if sc.kind == "fanout":
        return FANOUT_METRICS
    return IDLE_METRICS + (MULTI_METRICS if sc.servers > 1 else [])


@dataclass
class Cell:
    reps: list[dict] = field(default_factory=list)
    skipped: str | None = None

    def ok_reps(self) -> list[dict]:
        return [r for r in self.reps if r.get("ok")]

    def median(self, key: str) -> float | None:
        vals = [r[key] for r in self.ok_reps() if r.get(key) is not None]
        return statistics.median(vals) if vals else None


def summarise(results: dict[str, dict[str, Cell]], scenarios: list[Scenario]) -> dict:
    """{scenario: {target: {metric: median}}} for the JSON record."""
    out: dict = {}
    for sc in scenarios:
        metrics = metrics_for(sc)
        out[sc.name] = {}
        for tname, cell in results.get(sc.name, {}).items():
            out[sc.name][tname] = {
                "ok_reps": len(cell.ok_reps()),
                "reps": len(cell.reps),
                "skipped": cell.skipped,
                **{k: cell.median(k) for k, *_ in metrics},
            }
    return out


def print_table(
    results: dict[str, dict[str, Cell]],
    scenarios: list[Scenario],
    target_names: list[str],
    baseline: str = "chinwag",
    file=sys.stdout,
) -> None:
    """Side-by-side medians; each cell is `value (xratio to baseline)`."""

    def w(s: str = "") -> None:
        print(s, file=file)

    for sc in scenarios:
        cells = results.get(sc.name, {})
        metrics = metrics_for(sc)
        reps = max((len(c.reps) for c in cells.values()), default=0)
        w(f"\n== {sc.name}: {sc.describe()} (median of {reps})")
        base = cells.get(baseline)
        cols = [t for t in target_names if t in cells]
        width = 24
        w(f"{'metric':<26}" + "".join(f"{t:>{width}}" for t in cols))
        for key, label, fmt, _hib in metrics:
            row = f"{label:<26}"
            for t in cols:
                c = cells[t]
                if c.skipped:
                    txt = "not run" if c.skipped.startswith("not run") else "skipped"
                elif not c.ok_reps():
                    txt = "FAILED"
                else:
                    v = c.median(key)
                    txt = "—" if v is None else fmt.format(v)
                    bv = base.median(key) if base and base.ok_reps() and not base.skipped else None
                    if v is not None and t != baseline and _hib is not None:
                        txt += f" ({v / bv:.2f}x)" if bv else " (—)"
                row += f"{txt:>{width}}"
            w(row)
        for t in cols:
            c = cells[t]
            bad = [r for r in c.reps if not r.get("ok")]
            for r in bad:
                w(f"  ! {t} rep {r.get('rep')}: {r.get('failure')}")
            if c.skipped and c.skipped.startswith("not run"):
                w(f"  - {t}: {c.skipped}")
            lb = c.median("loadgen_busy") if c.ok_reps() else None
            if lb is not None and lb > 0.9 and sc.kind == "fanout":
                w(
                    f"  ~ {t}: load generator >=90% busy: its deliveries/s and latency are "
                    "a floor (generator-bound); server CPU µs/delivery is still exact"
                )
            elif lb is not None and lb > 0.9:
                w(f"  ~ {t}: load generator >=90% busy while connecting: connects/s is a floor")
            if c.ok_reps() and sc.servers > 1:
                spreads = [r["conns_per_process"] for r in c.ok_reps()]
                w(f"  {t}: connections per server process: {spreads}")
    w(f"\n(ratio in brackets = value ÷ {baseline}'s value; (—) = no {baseline} number to compare)")
