"""The servers under test (``TARGETS``): how each starts, its load generator URL,
and for chinwag the users and WebSocket tokens the generator needs."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from procstat import PEERS
from servers import ServerProc, TargetUnavailable

# ------------------------------------------------------------------ targets


@dataclass
class Target:
    """A server under test.

    start(port, workdir, cpu) -> ServerProc (raise TargetUnavailable or
    NotImplementedError to have it skipped); url(port) -> load generator URL;
    loadgen_args(server, n_connections, workdir, idle, room_members) -> extra
    generator arguments (e.g. --tokens FILE; room_members > 0: every connection joins
    a room of that many members, big_room.py); start_many(port, workdir, cpu, processes) -> one
    ServerProc whose process tree serves the port with that many processes
    (None: the target runs in one process only)."""

    name: str
    dialect: str
    note: str
    start: Callable[[int, Path, int | None], ServerProc]
    url: Callable[[int], str]
    loadgen_args: Callable[[ServerProc, int, Path, bool, int], list[str]] = lambda s, n, w, i, m: []
    start_many: Callable[[int, Path, int | None, int], ServerProc] | None = None


def _start_websockets(port: int, workdir: Path, cpu: int | None, processes: int = 1) -> ServerProc:
    s = ServerProc(
        "websockets",
        [
            sys.executable,
            str(PEERS / "websockets_server.py"),
            "--port",
            str(port),
            "--processes",
            str(processes),
        ],
        port,
        workdir,
        cpu=cpu,
    )
    s.wait_ready()
    s.wait_log("listening on", processes)  # every reuse_port process has bound
    return s


def _start_peer(name: str, script: str, port: int, workdir: Path, cpu: int | None) -> ServerProc:
    """A one-process peer from ``bench/peers/``, started with ``--port``."""
    s = ServerProc(
        name, [sys.executable, str(PEERS / script), "--port", str(port)], port, workdir, cpu=cpu
    )
    s.wait_ready()
    return s


def _start_socketio(port: int, workdir: Path, cpu: int | None) -> ServerProc:
    try:
        import socketio  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise TargetUnavailable(
            f"python-socketio/uvicorn not installed ({e}); pip install -e '.[bench]'"
        ) from e
    return _start_peer("socketio", "socketio_server.py", port, workdir, cpu)


def _start_uvicorn(port: int, workdir: Path, cpu: int | None) -> ServerProc:
    return _start_peer("uvicorn", "uvicorn_server.py", port, workdir, cpu)


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
    env = {
        **CHINWAG_ENV,
        "DATA_DIR": str(workdir / "chinwag-data"),
        "UPLOAD_DIR": str(workdir / "chinwag-uploads"),
        "TEMP_DIR": str(workdir / "chinwag-uploads" / "temp"),
    }
    s = ServerProc(
        "chinwag",
        [sys.executable, "-m", "chinwag", "serve", "--port", str(port)],
        port,
        workdir,
        env=env,
        cpu=cpu,
    )
    s.wait_ready()
    s.token_cache = workdir / "chinwag-tokens.json"
    s.data_dir = env["DATA_DIR"]
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
    s = ServerProc(
        "chinwag",
        [sys.executable, "-m", "chinwag", "serve", "--port", str(port), "--workers", str(workers)],
        port,
        workdir,
        env=env,
        cpu=cpu,
    )
    s.on_stop.append(lambda: asyncio.run(drop_database(db)))
    try:
        s.wait_ready(timeout=60)
        s.wait_quiet(max_wait=60)  # every worker has started (imports, migrations)
    except BaseException:
        s.stop()
        raise
    s.token_cache = run_dir / "chinwag-tokens.json"  # the users live in this database
    return s


def mint_ws_token(username: str, user_id: int) -> str:
    import jwt

    now = int(time.time())
    claims = {
        "sub": username,
        "uid": user_id,
        "adm": False,
        "aud": "chinwag:ws",
        "iat": now,
        "exp": now + 86400,
    }
    return jwt.encode(claims, CHINWAG_ENV["JWT_SECRET"], algorithm="HS256")


#: Idle scenarios hold many connections per user (authenticated all the same), so
#: 20k sockets do not need 20k registered users.
IDLE_USERS = 50


def _chinwag_loadgen_args(
    server: ServerProc, n: int, workdir: Path, idle: bool, room_members: int = 0
) -> list[str]:
    if room_members:
        return _big_room_args(server, n, workdir, room_members)
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


def _big_room_args(server: ServerProc, n: int, workdir: Path, members: int) -> list[str]:
    """IDLE_USERS members of a room of ``members``, each connection sending join_room."""
    from big_room import ROOM, seed_big_room

    users = seed_big_room(Path(server.data_dir) / "chinwag.db", members, min(n, IDLE_USERS))
    path = workdir / f"chinwag-tokens-member-{len(users)}.json"
    path.write_text(json.dumps([mint_ws_token(name, uid) for name, uid in users]))
    return ["--tokens", str(path), "--cycle-tokens", "--room", ROOM, "--join-frame"]


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
            return mint_ws_token(body["username"], body["id"])
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
    "uvicorn": Target(
        "uvicorn",
        "ws",
        "bare ASGI app on uvicorn + websockets sans-I/O + uvloop (chinwag's transport stack)",
        _start_uvicorn,
        lambda port: f"ws://127.0.0.1:{port}/",
    ),
    "socketio": Target(
        "socketio",
        "socketio",
        "python-socketio 5 ASGI on uvicorn+uvloop, ws only",
        _start_socketio,
        lambda port: f"http://127.0.0.1:{port}",
    ),
}
