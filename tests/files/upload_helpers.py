"""What the UploadManager tests share: a settable clock, a scanner that records and
can be held, and init/chunk/finalize shortcuts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

from chinwag.core.uploads import FinalizedUpload, UploadManager
from chinwag.protocol.errors import (
    ChatError,
)

CHUNK = 1000
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10  # 2568 bytes: 3 chunks
ALICE, BOB = "alice", "bob"

MakeManager = Callable[..., UploadManager]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeScanner:
    """Records what it scanned; raises ``error`` if set; can be held at a gate."""

    def __init__(self, upload_dir: Path) -> None:
        self.upload_dir = upload_dir
        self.scanned: list[Path] = []
        self.published_at_scan: list[list[Path]] = []
        self.error: ChatError | None = None
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def scan(self, path: Path) -> None:
        self.scanned.append(path)
        self.published_at_scan.append(list(self.upload_dir.iterdir()))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error

    async def ping(self) -> bool:
        return True


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pieces(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def start(
    manager: UploadManager, data: bytes, name: str = "photo.png", owner: str = ALICE
) -> str:
    reply = await manager.init(owner, name, len(data), "image/png", "room-1")
    file_id: str = reply["file_id"]
    return file_id


async def send_all(
    manager: UploadManager, file_id: str, data: bytes, owner: str = ALICE, chunk: int = CHUNK
) -> None:
    parts = pieces(data, chunk)
    for index, part in enumerate(parts):
        await manager.chunk(owner, file_id, index, len(parts), b64(part))


async def upload(
    manager: UploadManager, data: bytes, name: str = "photo.png", owner: str = ALICE
) -> FinalizedUpload:
    """init, every chunk in order (at the chunk size the server asked for), finalize."""
    reply = await manager.init(owner, name, len(data), None, "room-1")
    await send_all(manager, reply["file_id"], data, owner, reply["chunk_size"])
    return await manager.finalize(owner, reply["file_id"], sha(data))
