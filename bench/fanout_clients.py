"""The load generator's side of the fan-out benchmark: users and their WebSocket
tokens over HTTP, and receivers that join a room and record each chat's seq and latency."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import orjson
from websockets.asyncio.client import ClientConnection, connect

PASSWORD = "bench-password-1"


# ------------------------------------------------------------------ HTTP


async def ws_tokens(port: int, usernames: list[str]) -> dict[str, str]:
    """Register (409 = already there), log in and fetch a ws token for each user."""
    import httpx

    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:

        async def one(username: str) -> tuple[str, str]:
            body = {"username": username, "password": PASSWORD}
            r = await http.post("/api/v1/auth/register", json=body)
            if r.status_code not in (201, 409):
                raise RuntimeError(f"register {username}: {r.status_code} {r.text}")
            r = await http.post("/api/v1/auth/login", json=body)
            r.raise_for_status()
            access = r.json()["access_token"]
            r = await http.post("/api/v1/ws/token", headers={"Authorization": f"Bearer {access}"})
            r.raise_for_status()
            return username, r.json()["token"]

        sem = asyncio.Semaphore(4)

        async def bounded(username: str) -> tuple[str, str]:
            async with sem:
                return await one(username)

        return dict(await asyncio.gather(*(bounded(u) for u in usernames)))


# ------------------------------------------------------------- the clients


@dataclass
class Receiver:
    room: str
    expected: int
    done: asyncio.Event
    seqs: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    last_at: float = 0.0
    ws: ClientConnection | None = None
    task: asyncio.Task[None] | None = None

    async def open(self, url: str) -> None:
        self.ws = await connect(
            url, max_size=None, ping_interval=None, compression=None, open_timeout=30
        )
        while True:  # connect, the offline replay, then our join confirmation
            frame = orjson.loads(await self.ws.recv())
            if frame.get("type") == "join_room":
                break
            if frame.get("type") == "error":
                raise RuntimeError(f"join refused: {frame}")
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        room, clock = self.room, time.perf_counter
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                if '"chat"' not in raw:  # presence, heartbeats, receipts
                    continue
                frame = orjson.loads(raw)
                if frame.get("type") != "chat" or frame.get("room_id") != room:
                    continue
                now = clock()
                self.seqs.append(frame["seq"])
                self.latencies.append(now - float(frame["data"]["content"]))
                self.last_at = now
                if len(self.seqs) == self.expected:
                    self.done.set()

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.ws.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


def ws_url(port: int, token: str, room: str) -> str:
    return f"ws://127.0.0.1:{port}/api/v1/ws/ws?token={token}&room_id={room}&room_type=shared"


async def open_all(receivers: list[Receiver], urls: list[str], concurrency: int = 50) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(r: Receiver, url: str) -> None:
        async with sem:
            await r.open(url)

    await asyncio.gather(*(one(r, u) for r, u in zip(receivers, urls, strict=True)))
