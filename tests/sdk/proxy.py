"""A TCP proxy on 127.0.0.1 that can cut every connection through it: the network
fault the SDK must survive (no close frame, no goodbye, bytes in flight lost)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine
from typing import Any


class CuttingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._down_until = 0.0
        self.muted = False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
        self.cut(count=False)
        if self._server is not None:
            await self._server.wait_closed()

    def mute(self) -> None:
        """Lose every byte the server sends from now until the next ``cut`` (what the
        client sends still arrives): answers written that the client never gets."""
        self.muted = True

    @property
    def open_links(self) -> int:
        return len(self._links)

    def cut(self, *, count: bool = True, hold: float = 0.0) -> None:
        """Abort every connection now (a reset, as when a network path dies); with
        ``hold``, refuse new ones for that many seconds (the network stays down)."""
        self._down_until = asyncio.get_running_loop().time() + hold
        self.muted = False
        if count and self._links:
            self.cuts += 1
        for a, b in list(self._links):
            a.transport.abort()
            b.transport.abort()
        self._links.clear()

    def cut_every(self, seconds: float) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                self.cut()

        self._spawn(loop())

    def cut_randomly(self, rng: random.Random, low: float, high: float) -> None:
        """Cut after a random wait between ``low`` and ``high`` seconds, again and
        again (``rng`` seeded by the caller, so a failing run can be replayed)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(rng.uniform(low, high))
                self.cut()

        self._spawn(loop())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if asyncio.get_running_loop().time() < self._down_until:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self._links.add(link)
        self._spawn(self._pipe(reader, up_writer, link, downstream=False))
        self._spawn(self._pipe(up_reader, writer, link, downstream=True))

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
        *,
        downstream: bool,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if downstream and self.muted:
                    continue
                writer.write(data)
                await writer.drain()
        for w in link:
            w.transport.abort()
        self._links.discard(link)
