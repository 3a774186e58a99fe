"""Files over the socket, the shared part: payloads made chunk by chunk, upload frames,
init/chunk/finalize over a client, downloads, and where a server keeps the bytes."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import random
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from chinwag.client import ChatClient
from tests.e2e.rooms_helpers import chat
from tests.support import Server, User

MB = 1 << 20
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
FILES = "/api/v1/files/"


class Payload:
    """A file's bytes, made chunk by chunk on demand (never held whole): random
    bytes from a seed with ``patches`` (offset, bytes) laid over them, or ``data``."""

    def __init__(
        self,
        size: int,
        *,
        seed: int = 0,
        chunk_size: int = MB,
        patches: Iterable[tuple[int, bytes]] = (),
        data: bytes | None = None,
    ) -> None:
        self.size = len(data) if data is not None else size
        self.seed = seed
        self.chunk_size = chunk_size
        self.patches = tuple(patches)
        self.data = data

    @classmethod
    def of(cls, data: bytes, chunk_size: int = MB) -> Payload:
        return cls(len(data), data=data, chunk_size=chunk_size)

    @classmethod
    def mp4(cls, size: int, *, seed: int = 0, patches: Iterable[tuple[int, bytes]] = ()) -> Payload:
        """Random bytes behind an ISO-BMFF ``ftyp`` box: passes the .mp4 content check."""
        return cls(size, seed=seed, patches=((0, MP4_HEAD), *patches))

    @property
    def total_chunks(self) -> int:
        return -(-self.size // self.chunk_size)

    def chunk(self, index: int) -> bytes:
        start = index * self.chunk_size
        end = min(self.size, start + self.chunk_size)
        if self.data is not None:
            return self.data[start:end]
        raw = bytearray(random.Random(self.seed * 1_000_003 + index).randbytes(end - start))
        for offset, blob in self.patches:
            lo, hi = max(offset, start), min(offset + len(blob), end)
            if lo < hi:
                raw[lo - start : hi - start] = blob[lo - offset : hi - offset]
        return bytes(raw)

    @functools.cached_property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for i in range(self.total_chunks):
            digest.update(self.chunk(i))
        return digest.hexdigest()


def upload(data: dict[str, Any], room: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "file_upload", "data": data}
    if room is not None:
        frame["room_id"] = room
    return frame


def init_frame(
    file_name: str, size: int, room: str | None = None, mime_type: str = "application/octet-stream"
) -> dict[str, Any]:
    return upload(
        {"upload_type": "init", "file_name": file_name, "file_size": size, "mime_type": mime_type},
        room,
    )


def chunk_frame(file_id: str, index: int, data: bytes | str) -> dict[str, Any]:
    encoded = data if isinstance(data, str) else base64.b64encode(data).decode()
    return upload(
        {"upload_type": "chunk", "file_id": file_id, "chunk_index": index, "chunk_data": encoded}
    )


def status_frame(file_id: str) -> dict[str, Any]:
    return upload({"upload_type": "status", "file_id": file_id})


def finalize_frame(file_id: str, checksum: str) -> dict[str, Any]:
    return upload({"upload_type": "finalize", "file_id": file_id, "checksum": checksum})


def _replies_to(message_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: isinstance(f.get("data"), dict) and f["data"].get("message_id") == message_id


async def send(client: ChatClient, frame: dict[str, Any]) -> str:
    """Send ``frame`` with a fresh message_id; return the id."""
    message_id = uuid.uuid4().hex
    await client.send({**frame, "message_id": message_id})
    return message_id


async def answer(client: ChatClient, message_id: str, timeout: float = 30) -> dict[str, Any]:
    """The reply (``file_upload`` or ``error``) to the frame sent with ``message_id``."""
    return await client.expect(None, _replies_to(message_id), timeout=timeout)


async def call(client: ChatClient, frame: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    return await answer(client, await send(client, frame), timeout)


async def fails(
    client: ChatClient, frame: dict[str, Any], code: str, timeout: float = 30
) -> dict[str, Any]:
    """Send ``frame``; assert it is answered by an ``error`` with ``code``; return its data."""
    reply = await call(client, frame, timeout)
    assert reply["type"] == "error", reply
    assert reply["data"]["code"] == code, reply
    assert reply["data"]["error"]
    data: dict[str, Any] = reply["data"]
    return data


async def start(
    client: ChatClient, file_name: str, payload: Payload, room: str | None = None
) -> str:
    """Init an upload of ``payload``; return its file_id."""
    reply = await call(client, init_frame(file_name, payload.size, room))
    assert reply["type"] == "file_upload", reply
    data = reply["data"]
    assert data["upload_type"] == "init"
    assert data["chunk_size"] == payload.chunk_size
    assert data["total_chunks"] == payload.total_chunks
    return str(data["file_id"])


async def send_chunks(
    client: ChatClient,
    file_id: str,
    payload: Payload,
    indexes: Iterable[int] | None = None,
    window: int = 8,
) -> list[dict[str, Any]]:
    """Send chunks (pipelined, at most ``window`` unanswered); return the acks in order."""
    indexes = list(range(payload.total_chunks) if indexes is None else indexes)
    sent: list[tuple[int, str]] = []
    acks: list[dict[str, Any]] = []
    for index in indexes:
        if len(sent) - len(acks) >= window:
            acks.append(await _ack(client, file_id, *sent[len(acks)]))
        sent.append((index, await send(client, chunk_frame(file_id, index, payload.chunk(index)))))
    for index, message_id in sent[len(acks) :]:
        acks.append(await _ack(client, file_id, index, message_id))
    return acks


async def _ack(client: ChatClient, file_id: str, index: int, message_id: str) -> dict[str, Any]:
    reply = await answer(client, message_id)
    assert reply["type"] == "file_upload", reply
    data: dict[str, Any] = reply["data"]
    assert data["upload_type"] == "chunk" and data["file_id"] == file_id
    assert data["chunk_index"] == index
    return data


def is_complete(file_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["data"].get("upload_type") == "complete" and f["data"]["file_id"] == file_id


async def finalize(
    client: ChatClient, file_id: str, checksum: str, timeout: float = 60
) -> dict[str, Any]:
    """Finalize; return the ``complete`` frame (a room event when the upload has a room)."""
    message_id = await send(client, finalize_frame(file_id, checksum))

    def done(f: dict[str, Any]) -> bool:
        return (f["type"] == "error" and f["data"].get("message_id") == message_id) or (
            f["type"] == "file_upload" and is_complete(file_id)(f)
        )

    reply = await client.expect(None, done, timeout=timeout)
    assert reply["type"] == "file_upload", reply
    return reply


async def put(
    client: ChatClient, file_name: str, payload: Payload, room: str | None = None
) -> dict[str, Any]:
    """A whole upload in order; the ``complete`` frame."""
    file_id = await start(client, file_name, payload, room)
    await send_chunks(client, file_id, payload)
    return await finalize(client, file_id, payload.sha256)


async def download_sha256(srv: Server, user: User, url: str) -> tuple[int, str, Any]:
    """Stream a download; (status, sha256 of the body, headers)."""
    digest = hashlib.sha256()
    async with srv.http.stream("GET", srv.base + url, headers=user.auth) as response:
        async for piece in response.aiter_bytes():
            digest.update(piece)
    return response.status_code, digest.hexdigest(), response.headers


async def alive(client: ChatClient) -> None:
    """The connection still answers."""
    await client.send({"type": "ping"})
    await client.expect("pong")


def disposition(header: str) -> tuple[str, str]:
    """(type, file name) of a Content-Disposition header, either filename form."""
    kind, _, rest = header.partition(";")
    rest = rest.strip()
    if rest.startswith("filename*=utf-8''"):
        return kind, unquote(rest.removeprefix("filename*=utf-8''"))
    assert rest.startswith('filename="') and rest.endswith('"'), header
    return kind, rest[len('filename="') : -1]


def files_under(directory: Path) -> set[Path]:
    return {p for p in directory.rglob("*") if p.is_file()}


def upload_dir(srv: Server) -> Path:
    return Path(srv.env["UPLOAD_DIR"])


def temp_dir(srv: Server) -> Path:
    return Path(srv.env["TEMP_DIR"])


def temp_file(srv: Server, file_id: str) -> Path:
    return temp_dir(srv) / f"{uuid.UUID(file_id).hex}.part"


def published(srv: Server) -> set[Path]:
    """Files in UPLOAD_DIR outside TEMP_DIR."""
    temp = temp_dir(srv).resolve()
    return {p for p in files_under(upload_dir(srv)) if temp not in p.resolve().parents}


async def until(condition: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    """Poll an observable condition (a file on disk) with a deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.05)


async def no_file_event_before_marker(observer: ChatClient, sender: ChatClient, room: str) -> None:
    """Nothing was shared in ``room``: a later chat reaches ``observer`` with no
    ``file_upload`` before it."""
    marker = f"marker-{uuid.uuid4().hex}"
    await sender.send(chat(room, marker))
    await observer.expect("chat", lambda f: f["data"]["content"] == marker)
    assert not [
        f for f in observer.pending("file_upload") if f["data"].get("upload_type") == "complete"
    ]
