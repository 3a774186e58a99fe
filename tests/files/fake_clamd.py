"""Fake clamd servers for the failure modes a real clamd will not produce on demand:
a server that never answers, one that hangs up, one that answers ERROR, and one
that records how many connections it holds at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class FakeServer:
    """A TCP server on 127.0.0.1 that runs ``handler`` per connection and counts
    connections: in total, open now, and the most open at once."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.connections = 0
        self.active = 0
        self.peak = 0
        self.release = asyncio.Event()  # handlers that wait "forever" wait on this
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await self._handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.active -= 1
            writer.transport.abort()
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()


async def read_instream(reader: asyncio.StreamReader) -> int:
    """Consume one ``zINSTREAM`` command and its chunks; return the byte count."""
    command = await reader.readuntil(b"\0")
    if command != b"zINSTREAM\0":
        raise AssertionError(f"unexpected command {command!r}")
    total = 0
    while True:
        size = int.from_bytes(await reader.readexactly(4), "big")
        if size == 0:
            return total
        await reader.readexactly(size)
        total += size


async def reply(writer: asyncio.StreamWriter, text: bytes) -> None:
    writer.write(text)
    await writer.drain()
