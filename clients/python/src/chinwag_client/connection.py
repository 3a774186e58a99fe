"""The raw layer: JSON frames on the wire, and ``ChatClient``, one WebSocket
connection with every received frame kept in order (no sign-in, no reconnect).

``ChatClient`` is for tests and tools that speak the protocol frame by frame:
``expect`` waits (with a timeout) for the next frame matching a type and an
optional predicate, so callers never sleep and hope. Applications use ``Client``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Frame = dict[str, Any]


def dumps(frame: Frame) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def loads(raw: str | bytes) -> Frame:
    frame = json.loads(raw)
    if not isinstance(frame, dict):
        raise ValueError("a chinwag frame is a JSON object")
    return frame


class Closed(Exception):
    """The server closed the connection; ``code`` and ``reason`` say why."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"connection closed ({code}): {reason}")
        self.code = code
        self.reason = reason


class ChatClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []
        self._cursor = 0
        self._arrived = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 10,
        headers: dict[str, str] | None = None,
        **query: str,
    ) -> ChatClient:
        params = {"token": token} if token is not None else {}
        params.update({k: v for k, v in query.items() if v is not None})
        url = f"{base_url}/api/v1/ws/ws?{urlencode(params)}"
        ws = await connect(
            url, open_timeout=timeout, additional_headers=headers, max_size=None, ping_interval=None
        )
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(loads(raw))
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason or ""
            self._arrived.set()

    async def send(self, frame: Frame | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else dumps(frame))

    async def expect(
        self,
        kind: str | None = None,
        where: Callable[[Frame], bool] | None = None,
        timeout: float = 10,
    ) -> Frame:
        """The next not-yet-taken frame of ``kind`` matching ``where``; frames skipped
        on the way stay available to later calls. Raises TimeoutError or Closed."""
        async with asyncio.timeout(timeout):
            while True:
                for i in range(self._cursor, len(self.frames)):
                    frame = self.frames[i]
                    if frame is None:
                        continue
                    if (kind is None or frame.get("type") == kind) and (
                        where is None or where(frame)
                    ):
                        self.frames[i] = None  # type: ignore[call-overload]
                        self._advance()
                        return frame
                if self._reader.done():
                    raise Closed(self.close_code, self.close_reason)
                self._arrived.clear()
                await self._arrived.wait()

    def _advance(self) -> None:
        while self._cursor < len(self.frames) and self.frames[self._cursor] is None:
            self._cursor += 1

    def pending(self, kind: str | None = None) -> list[Frame]:
        """Frames received and not yet taken (optionally of one type)."""
        return [
            f
            for f in self.frames[self._cursor :]
            if f is not None and (kind is None or f.get("type") == kind)
        ]

    async def wait_closed(self, timeout: float = 10) -> int | None:
        async with asyncio.timeout(timeout):
            await asyncio.shield(self._reader)
        return self.close_code

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(BaseException):
            await self._reader
