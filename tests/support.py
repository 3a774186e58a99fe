"""Helpers shared by the tests: start chinwag as a real process, make users."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from chinwag.client import ChatClient
from chinwag_client import Backoff, Client


class Namer(Protocol):
    """The ``name`` fixture: a unique name, ``prefix`` then random hex."""

    def __call__(self, prefix: str = "u") -> str: ...


class StartServer(Protocol):
    """The ``start_server`` fixture (``ServerFactory.start``)."""

    async def __call__(
        self,
        workdir: Path | None = None,
        port: int | None = None,
        command: list[str] | None = None,
        prefix: str = "",
        **settings: Any,
    ) -> Server: ...


PASSWORD = "correct-horse-battery"
ADMIN = ("admin", "admin-password-123")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def require_service(label: str, host: str, port: int) -> None:
    """Fail in CI, skip elsewhere, when a service the test needs is not running."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
        writer.close()
    except OSError:
        message = f"{label} is not running on {host}:{port}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (required in CI)")
        pytest.skip(message)


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    import asyncpg

    dbname = f"chinwag_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{dbname}"')
    finally:
        await conn.close()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
    finally:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=5432, user="postgres", database="postgres"
        )
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        finally:
            await conn.close()


@dataclass
class User:
    username: str
    access_token: str
    ws_token: str
    user_id: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class Server:
    port: int
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    command: list[str] | None = None  # default: chinwag serve --port PORT
    prefix: str = ""  # where chinwag is mounted in a host app ("/chat")
    clients: list[ChatClient] = field(default_factory=list)
    sdk_clients: list[Client] = field(default_factory=list)
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.prefix}"

    @property
    def log(self) -> str:
        return (self.workdir / "server.log").read_text(errors="replace")

    async def start(self) -> None:
        log = open(self.workdir / "server.log", "ab")
        command = self.command or [
            sys.executable,
            "-m",
            "chinwag",
            "serve",
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(
            command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chinwag exited with {self.proc.returncode}:\n{self.log}")
            with contextlib.suppress(httpx.HTTPError):
                r = await self.http.get(self.base + "/health", timeout=2)
                if r.status_code in (200, 503):
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"chinwag did not answer within 30 s:\n{self.log}")
            await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        deadline = asyncio.get_running_loop().time() + timeout
        while self.proc.poll() is None:
            if asyncio.get_running_loop().time() > deadline:
                self.proc.kill()
            await asyncio.sleep(0.05)
        return self.proc.returncode

    async def close(self) -> None:
        for sdk in self.sdk_clients:
            await sdk.close()
        for client in self.clients:
            await client.close()
        await self.stop()
        await self.http.aclose()

    # ---- users and connections -------------------------------------------

    async def register(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return await self.http.post(
            self.base + "/api/v1/auth/register", json={"username": username, "password": password}
        )

    async def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return await self.http.post(
            self.base + "/api/v1/auth/login", json={"username": username, "password": password}
        )

    async def user(
        self, username: str | None = None, password: str = PASSWORD, register: bool = True
    ) -> User:
        username = username or f"u{uuid.uuid4().hex[:8]}"
        if register:
            r = await self.register(username, password)
            assert r.status_code == 201, r.text
        r = await self.login(username, password)
        assert r.status_code == 200, r.text
        access = r.json()["access_token"]
        me = await self.http.get(
            self.base + "/api/v1/auth/me", headers={"Authorization": f"Bearer {access}"}
        )
        r = await self.http.post(
            self.base + "/api/v1/ws/token", headers={"Authorization": f"Bearer {access}"}
        )
        assert r.status_code == 200, r.text
        return User(username, access, r.json()["token"], me.json()["id"])

    async def admin(self) -> User:
        return await self.user(ADMIN[0], ADMIN[1], register=False)

    async def connect(
        self, user: User | None, token: str | None = None, **query: Any
    ) -> ChatClient:
        """Connect and take the ``connect`` frame."""
        client = await self.raw_connect(user, token, **query)
        await client.expect("connect")
        return client

    async def sdk(
        self, username: str, password: str = PASSWORD, backoff: Backoff | None = None
    ) -> Client:
        """A started SDK client (``chinwag_client.Client``) of an existing user, with
        quick reconnects; closed with the server."""
        client = Client(
            self.base, username, password, backoff=backoff or Backoff(base=0.05, cap=0.5)
        )
        await client.start()
        self.sdk_clients.append(client)
        return client

    async def raw_connect(
        self,
        user: User | None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **query: Any,
    ) -> ChatClient:
        client = await ChatClient.connect(
            self.ws_base, token or (user.ws_token if user else None), headers=headers, **query
        )
        self.clients.append(client)
        return client

    async def get(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return await self.http.get(self.base + path, headers=user.auth if user else None, **kw)

    async def post(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return await self.http.post(self.base + path, headers=user.auth if user else None, **kw)

    async def delete(self, path: str, user: User | None = None) -> httpx.Response:
        return await self.http.delete(self.base + path, headers=user.auth if user else None)


class ServerFactory:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.servers: list[Server] = []

    def env(self, workdir: Path, **settings: Any) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WEBSOCKET_", "WS_", "FORWARDED_"))
        }
        env.update(
            {
                "DATA_DIR": str(workdir / "data"),
                "UPLOAD_DIR": str(workdir / "uploads"),
                "TEMP_DIR": str(workdir / "uploads" / "temp"),
                "JWT_SECRET": "test-secret-" + "x" * 32,
                "ADMIN_USERNAME": ADMIN[0],
                "ADMIN_PASSWORD": ADMIN[1],
                "WS_RATE_LIMIT_REQUESTS": "100000",
                "HTTP_RATE_LIMIT_REQUESTS": "100000",
                "REGISTER_RATE_LIMIT_REQUESTS": "100000",
                "LOG_LEVEL": "info",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({k: str(v) for k, v in settings.items()})
        return env

    async def start(
        self,
        workdir: Path | None = None,
        port: int | None = None,
        command: list[str] | None = None,
        prefix: str = "",
        **settings: Any,
    ) -> Server:
        """Start chinwag (or ``command``, a host app with chinwag under ``prefix``,
        which finds its port in ``PORT``)."""
        workdir = workdir or self.tmp / f"srv{len(self.servers)}"
        workdir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        if command is not None:
            settings.setdefault("PORT", port)
        srv = Server(port, self.env(workdir, **settings), workdir, command=command, prefix=prefix)
        self.servers.append(srv)
        await srv.start()
        return srv

    async def stop_all(self) -> None:
        for srv in self.servers:
            await srv.close()
        await asyncio.sleep(0)


async def restart(srv: Server) -> None:
    """Stop (SIGTERM) and start the same server again on the same port and files."""
    await srv.stop()
    await srv.start()


def kill(srv: Server) -> None:
    if srv.proc is not None and srv.proc.poll() is None:
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()


__all__ = [
    "ADMIN",
    "PASSWORD",
    "Namer",
    "Server",
    "ServerFactory",
    "StartServer",
    "User",
    "free_port",
    "kill",
    "postgres_database",
    "require_service",
    "restart",
]
