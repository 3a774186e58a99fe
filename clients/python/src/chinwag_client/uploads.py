"""Uploading a file in chunks (docs/protocol.md 3.11), resumable across drops.

Chunk frames are not resent blindly: after a reconnect the upload asks ``status``
and sends only the chunks the server does not have."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import mimetypes
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chinwag_client.errors import RequestError
from chinwag_client.models import Frame, UploadedFile

if TYPE_CHECKING:
    from chinwag_client.client import Client

WINDOW = 4  # chunks in flight at once


def _answer(step: str, message_id: str) -> Callable[[Frame], bool]:
    def check(frame: Frame) -> bool:
        data = frame.get("data") or {}
        return (
            frame.get("type") == "file_upload"
            and data.get("upload_type") == step
            and data.get("message_id") == message_id
        )

    return check


def _read(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(size)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


class _Upload:
    def __init__(
        self,
        client: Client,
        path: Path,
        room_id: str | None,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.client, self.path, self.room_id, self.progress = client, path, room_id, progress
        self.size = path.stat().st_size
        self.file_id = ""
        self.chunk_size = 1
        self.total = 0
        self.received: set[int] = set()

    def _frame(self, step: str, **data: Any) -> Frame:
        from chinwag_client.pending import new_message_id

        return {
            "type": "file_upload",
            "message_id": new_message_id(),
            "data": {"upload_type": step, "file_id": self.file_id, **data},
        }

    def _report(self) -> None:
        if self.progress is not None:
            sent = sum(min(self.chunk_size, self.size - i * self.chunk_size) for i in self.received)
            self.progress(sent, self.size)

    async def start(self) -> None:
        from chinwag_client.pending import new_message_id

        mid = new_message_id()
        frame: Frame = {
            "type": "file_upload",
            "message_id": mid,
            "data": {
                "upload_type": "init",
                "file_name": self.path.name,
                "file_size": self.size,
                "mime_type": mimetypes.guess_type(self.path.name)[0] or "application/octet-stream",
            },
        }
        if self.room_id is not None:
            frame["room_id"] = self.room_id
        answer = (await self.client.request(frame, _answer("init", mid)))["data"]
        self.file_id = answer["file_id"]
        self.chunk_size = int(answer["chunk_size"])
        self.total = int(answer["total_chunks"])

    async def send_missing(self) -> None:
        """Send every chunk the server lacks; after a drop ask ``status`` and go on."""
        from chinwag_client.pending import Dropped

        while len(self.received) < self.total:
            missing = [i for i in range(self.total) if i not in self.received]
            queue = iter(missing)
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(WINDOW):
                        group.create_task(self._send_from(queue))
            except* Dropped:
                dropped = True
            else:
                dropped = False
            if dropped:
                await self.client.wait_connected()
                await self._ask_status()

    async def _send_from(self, indexes: Iterator[int]) -> None:
        for index in indexes:
            block = await asyncio.to_thread(
                _read, self.path, index * self.chunk_size, self.chunk_size
            )
            frame = self._frame(
                "chunk",
                chunk_index=index,
                total_chunks=self.total,
                chunk_data=base64.b64encode(block).decode(),
            )
            await self.client.request(frame, _answer("chunk", frame["message_id"]), resend=False)
            self.received.add(index)
            self._report()

    async def _ask_status(self) -> None:
        frame = self._frame("status")
        answer = await self.client.request(frame, _answer("status", frame["message_id"]))
        self.received = set(answer["data"].get("received_chunks") or [])
        self._report()

    async def finish(self, checksum: str) -> UploadedFile:
        file_id = self.file_id

        def complete(frame: Frame) -> bool:
            data = frame.get("data") or {}
            return (
                frame.get("type") == "file_upload"
                and data.get("upload_type") == "complete"
                and data.get("file_id") == file_id
            )

        while True:
            try:
                answer = await self.client.request(
                    self._frame("finalize", checksum=checksum), complete
                )
                return UploadedFile.from_frame(answer)
            except RequestError as exc:
                if exc.code != "INCOMPLETE_UPLOAD":
                    raise
                await self._ask_status()
                await self.send_missing()


async def upload(
    client: Client,
    path: str | Path,
    room_id: str | None,
    progress: Callable[[int, int], None] | None,
) -> UploadedFile:
    job = _Upload(client, Path(path), room_id, progress)
    checksum = await asyncio.to_thread(_digest, job.path)
    await job.start()
    await job.send_missing()
    done = await job.finish(checksum)
    if progress is not None:
        progress(job.size, job.size)
    return done
