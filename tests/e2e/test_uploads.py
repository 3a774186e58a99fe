"""Files over the socket (SPEC §7): chunked uploads in any order, resumed after a
reconnect, verified, shared with a room and served over HTTP, through a real server.

Scanning with a real clamd is in test_uploads_scanning.py; the helpers at the top
are shared with it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import os
import random
import resource
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from chinwag.client import ChatClient
from tests.e2e.rooms_helpers import chat, joined
from tests.support import Namer, Server, ServerFactory, User

MB = 1 << 20
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
FILES = "/api/v1/files/"


# ---- helpers (also used by test_uploads_scanning.py) ------------------------------


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


# ---- the whole story: 50 MB, out of order, resumed, shared ----------------------------


COMPLETE_KEYS = {"upload_type", "file_id", "file_name", "file_size", "mime_type", "checksum", "url"}


async def test_50mb_out_of_order_with_a_reconnect_reaches_every_member_byte_identical(
    server: Server, name: Namer
) -> None:
    room = name("files")
    alice, bob, carol = (
        await server.user(name()),
        await server.user(name()),
        await server.user(name()),
    )
    a = await joined(server, alice, room, "shared")
    b = await joined(server, bob, room)
    c = await joined(server, carol, room)
    await c.close()  # a member, offline during the whole upload
    await a.expect(
        "presence",
        lambda f: f["data"] == {"room_id": room, "username": carol.username, "status": "offline"},
    )

    payload = Payload.mp4(50 * MB, seed=50)
    file_id = await start(a, "holiday.mp4", payload, room)
    order = list(range(payload.total_chunks))
    random.Random(7).shuffle(order)
    first, in_flight = order[:20], order[20:26]

    acks = await send_chunks(a, file_id, payload, first)
    assert [ack["received_chunks"] for ack in acks] == list(range(1, 21))
    assert acks[-1]["total_chunks"] == 50 and acks[-1]["progress"] == 40.0
    again = await send_chunks(a, file_id, payload, [first[3]])  # a repeat is harmless
    assert again[0]["received_chunks"] == 20
    for index in in_flight:  # sent, not waited for, then the connection drops
        await a.send(chunk_frame(file_id, index, payload.chunk(index)))
    a.ws.transport.abort()
    await a.close()

    a = await server.connect(alice)
    status = await call(a, status_frame(file_id))
    assert status["type"] == "file_upload", status
    received = status["data"]["received_chunks"]
    assert status["data"]["upload_type"] == "status" and status["data"]["total_chunks"] == 50
    assert received == sorted(received)
    assert set(first) <= set(received) <= set(first) | set(in_flight)
    missing = [i for i in order if i not in received]
    acks = await send_chunks(a, file_id, payload, missing)
    assert acks[-1]["received_chunks"] == 50 and acks[-1]["progress"] == 100.0

    complete = await finalize(a, file_id, payload.sha256)
    seen_by_bob = await b.expect("file_upload", is_complete(file_id))
    c = await server.connect(carol)  # the offline queue
    seen_by_carol = await c.expect("file_upload", is_complete(file_id))
    for frame in (complete, seen_by_bob, seen_by_carol):
        assert frame["room_id"] == room and isinstance(frame["seq"], int)
        data = frame["data"]
        assert COMPLETE_KEYS <= data.keys()
        assert data["file_name"] == "holiday.mp4" and data["file_size"] == 50 * MB
        assert data["mime_type"] == "video/mp4" and data["checksum"] == payload.sha256
        assert data["url"] == FILES + file_id
    assert complete == seen_by_bob == seen_by_carol

    status_code, digest, headers = await download_sha256(server, carol, complete["data"]["url"])
    assert status_code == 200 and digest == payload.sha256
    assert headers["content-length"] == str(50 * MB)
    assert not temp_file(server, file_id).exists()
    history = (await server.get(f"/api/v1/ws/rooms/{room}/messages", bob)).json()["messages"]
    assert [m for m in history if m["type"] == "file_upload"] == [complete]


async def test_two_uploads_interleaved_on_one_connection(server: Server, name: Namer) -> None:
    admin = await server.admin()
    completed = (await server.get("/api/v1/ws/stats", admin)).json()["uploads"]["completed"]
    client = await server.connect(await server.user(name()))
    one, two = Payload.mp4(2 * MB + 5, seed=1), Payload.mp4(3 * MB, seed=2)
    id_one = await start(client, "one.mp4", one)
    id_two = await start(client, "two.mp4", two)
    for i in range(3):
        await send_chunks(client, id_two, two, [2 - i])
        await send_chunks(client, id_one, one, [i])
    done_two = await finalize(client, id_two, two.sha256)
    done_one = await finalize(client, id_one, one.sha256)
    assert (done_one["data"]["file_size"], done_two["data"]["file_size"]) == (2 * MB + 5, 3 * MB)
    stats = (await server.get("/api/v1/ws/stats", admin)).json()
    assert stats["uploads"]["completed"] == completed + 2


# ---- every file error over the socket; the connection survives each ----------------------


async def test_a_file_over_max_file_size_is_refused_at_init(server: Server, name: Namer) -> None:
    client = await server.connect(await server.user(name()))
    error = await fails(client, init_frame("big.mp4", 50 * MB + 1), "FILE_TOO_LARGE")
    assert error["details"]["max_file_size"] == 50 * MB
    await alive(client)


async def test_a_chunk_over_max_chunk_size_is_refused(server: Server, name: Namer) -> None:
    client = await server.connect(await server.user(name()))
    payload = Payload.mp4(3 * MB)
    file_id = await start(client, "clip.mp4", payload)
    await fails(client, chunk_frame(file_id, 0, payload.chunk(0) + b"x"), "CHUNK_TOO_LARGE")
    await alive(client)
    await send_chunks(client, file_id, payload)  # the upload itself goes on
    complete = await finalize(client, file_id, payload.sha256)
    assert complete["data"]["file_size"] == 3 * MB


@pytest.mark.parametrize(
    "file_name", ["setup.exe", "run.sh", "noextension", "archive.tar.bin", ".png"]
)
async def test_an_extension_outside_the_list_is_refused_at_init(
    server: Server, name: Namer, file_name: str
) -> None:
    client = await server.connect(await server.user(name()))
    await fails(client, init_frame(file_name, 10), "FILE_TYPE_NOT_ALLOWED")
    await alive(client)


@pytest.mark.parametrize(
    "content",
    [b"\x7fELF\x02\x01\x01" + bytes(200), b"MZ\x90\x00\x03" + bytes(200)],
    ids=["elf", "mz"],
)
async def test_an_executable_called_png_is_refused_at_finalize(
    server: Server, name: Namer, content: bytes
) -> None:
    client = await server.connect(await server.user(name()))
    payload = Payload.of(content)
    file_id = await start(client, "cute-cat.png", payload)
    await send_chunks(client, file_id, payload)
    before = published(server)
    await fails(client, finalize_frame(file_id, payload.sha256), "FILE_TYPE_NOT_ALLOWED")
    await fails(client, status_frame(file_id), "UPLOAD_NOT_FOUND")  # discarded
    assert published(server) == before and not temp_file(server, file_id).exists()
    r = await server.get(FILES + file_id, await server.user(name()))
    assert r.status_code == 404
    await alive(client)


async def test_a_wrong_checksum_is_checksum_mismatch_and_nothing_is_published(
    server: Server, name: Namer
) -> None:
    user = await server.user(name())
    client = await server.connect(user)
    payload = Payload.of(b"hello, world\n" * 100)
    file_id = await start(client, "hello.txt", payload)
    await send_chunks(client, file_id, payload)
    error = await fails(client, finalize_frame(file_id, "ab" * 32), "CHECKSUM_MISMATCH")
    assert error["details"]["actual"] == payload.sha256
    assert (await server.get(FILES + file_id, user)).status_code == 404
    assert not temp_file(server, file_id).exists()
    await alive(client)


async def test_finalize_with_missing_chunks_lists_them_and_the_upload_can_finish(
    server: Server, name: Namer
) -> None:
    client = await server.connect(await server.user(name()))
    payload = Payload.mp4(4 * MB + 10, seed=4)
    file_id = await start(client, "clip.mp4", payload)
    await send_chunks(client, file_id, payload, [1, 3])
    error = await fails(client, finalize_frame(file_id, payload.sha256), "INCOMPLETE_UPLOAD")
    assert error["details"]["missing_chunks"] == [0, 2, 4]
    await send_chunks(client, file_id, payload, [4, 0, 2])
    complete = await finalize(client, file_id, payload.sha256)
    assert complete["data"]["checksum"] == payload.sha256


async def test_unknown_upload_ids_are_upload_not_found(server: Server, name: Namer) -> None:
    client = await server.connect(await server.user(name()))
    unknown = str(uuid.uuid4())
    await fails(client, status_frame(unknown), "UPLOAD_NOT_FOUND")
    await fails(client, chunk_frame(unknown, 0, b"abc"), "UPLOAD_NOT_FOUND")
    await fails(client, finalize_frame(unknown, "00" * 32), "UPLOAD_NOT_FOUND")
    await fails(client, status_frame("../../etc/passwd"), "UPLOAD_NOT_FOUND")
    await alive(client)


async def test_someone_elses_upload_is_upload_not_found(server: Server, name: Namer) -> None:
    owner = await server.connect(await server.user(name()))
    thief = await server.connect(await server.user(name()))
    payload = Payload.of(b"mine, all mine\n")
    file_id = await start(owner, "mine.txt", payload)
    await fails(thief, status_frame(file_id), "UPLOAD_NOT_FOUND")
    await fails(thief, chunk_frame(file_id, 0, b"theirs, now!!!\n"), "UPLOAD_NOT_FOUND")
    await fails(thief, finalize_frame(file_id, payload.sha256), "UPLOAD_NOT_FOUND")
    await send_chunks(owner, file_id, payload)  # untouched by the attempts
    complete = await finalize(owner, file_id, payload.sha256)
    assert complete["data"]["checksum"] == payload.sha256
    await alive(thief)


async def test_chunk_data_that_is_not_base64_is_invalid_message(
    server: Server, name: Namer
) -> None:
    client = await server.connect(await server.user(name()))
    payload = Payload.of(b"0123456789")
    file_id = await start(client, "digits.txt", payload)
    error = await fails(client, chunk_frame(file_id, 0, "not*base64!"), "INVALID_MESSAGE")
    assert "chunk_data" in str(error["details"])
    await send_chunks(client, file_id, payload)
    await finalize(client, file_id, payload.sha256)


async def test_an_upload_into_a_room_needs_membership(server: Server, name: Namer) -> None:
    room = name("files")
    await joined(server, await server.user(name()), room, "group")
    outsider = await server.connect(await server.user(name()))
    await fails(outsider, init_frame("x.txt", 3, room), "NOT_IN_ROOM")
    await alive(outsider)


async def test_finalize_after_leaving_the_room_is_not_in_room_and_shares_nothing(
    server: Server, name: Namer
) -> None:
    room = name("files")
    alice, bob = await server.user(name()), await server.user(name())
    a = await joined(server, alice, room, "shared")
    b = await joined(server, bob, room)
    payload = Payload.of(b"said in passing\n")
    file_id = await start(a, "passing.txt", payload, room)
    await send_chunks(a, file_id, payload)
    await a.send({"type": "leave_room", "data": {"room_id": room}})
    await a.expect("leave_room")
    await fails(a, finalize_frame(file_id, payload.sha256), "NOT_IN_ROOM")
    assert (await server.get(FILES + file_id, alice)).status_code == 404
    await a.send({"type": "join_room", "data": {"room_id": room}})  # back: it can finish
    await a.expect("join_room")
    complete = await finalize(a, file_id, payload.sha256)
    assert await b.expect("file_upload", is_complete(file_id)) == complete


async def test_an_empty_file_can_be_shared(server: Server, name: Namer) -> None:
    user = await server.user(name())
    client = await server.connect(user)
    payload = Payload.of(b"")
    file_id = await start(client, "empty.txt", payload)
    complete = await finalize(client, file_id, hashlib.sha256(b"").hexdigest())
    assert complete["data"]["file_size"] == 0
    r = await server.get(complete["data"]["url"], user)
    assert r.status_code == 200 and r.content == b""


# ---- downloads -------------------------------------------------------------------------


async def test_uploader_and_members_download_with_safe_headers_others_do_not(
    server: Server, name: Namer
) -> None:
    room = name("files")
    alice, bob, eve = (
        await server.user(name()),
        await server.user(name()),
        await server.user(name()),
    )
    a = await joined(server, alice, room, "shared")
    await joined(server, bob, room)
    content = b"<script>alert(1)</script> is just text here\n"
    complete = await put(a, "notes.txt", Payload.of(content), room)
    url = complete["data"]["url"]
    for who in (alice, bob):
        r = await server.get(url, who)
        assert r.status_code == 200 and r.content == content
        assert r.headers["content-type"].split(";")[0] == "text/plain"
        assert r.headers["content-type"].split(";")[0] == complete["data"]["mime_type"]
        assert disposition(r.headers["content-disposition"]) == ("attachment", "notes.txt")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in r.headers["content-security-policy"]
    assert (await server.get(url, eve)).status_code == 403
    assert (await server.get(url)).status_code == 401
    assert (await server.get(FILES + str(uuid.uuid4()), alice)).status_code == 404


async def test_a_file_without_a_room_is_for_its_uploader_only(server: Server, name: Namer) -> None:
    alice, bob = await server.user(name()), await server.user(name())
    a = await server.connect(alice)
    complete = await put(a, "private.json", Payload.of(b'{"secret": true}'))
    assert "room_id" not in complete and "seq" not in complete
    url = complete["data"]["url"]
    r = await server.get(url, alice)
    assert r.status_code == 200 and r.content == b'{"secret": true}'
    assert r.headers["content-type"] == "application/json"
    assert (await server.get(url, bob)).status_code == 403


@pytest.mark.parametrize(
    ("file_name", "stored_as"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\win.ini.txt", "win.ini.txt"),
        ('a"b\r\nSet-Cookie: x=1.txt', "a_bSet-Cookie_ x=1.txt"),
        ("\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fx.txt", "x.txt"),  # fullwidth: NFKC first
    ],
)
async def test_a_hostile_file_name_is_sanitised_and_stored_inside_upload_dir(
    server: Server, name: Namer, file_name: str, stored_as: str
) -> None:
    user = await server.user(name())
    client = await server.connect(user)
    outside = server.workdir.parent
    before_outside, before_inside = files_under(outside), published(server)
    content = f"{name('x')}\n".encode()
    complete = await put(client, file_name, Payload.of(content))
    assert complete["data"]["file_name"] == stored_as
    r = await server.get(complete["data"]["url"], user)
    assert r.status_code == 200 and r.content == content
    assert disposition(r.headers["content-disposition"]) == ("attachment", stored_as)
    assert "set-cookie" not in r.headers
    new = files_under(outside) - before_outside
    assert published(server) - before_inside == new  # the only file written
    (stored,) = new
    assert stored.parent == upload_dir(server) and len(stored.name) == 32
    assert stored.read_bytes() == content


# ---- bounds: not the frame rate limit, but their own --------------------------------------


@pytest.fixture(scope="module")
async def tight(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """Tiny chunks, five frames a minute, two uploads of 20 kB per user, uploads
    abandoned after two idle seconds."""
    factory = ServerFactory(tmp_path_factory.mktemp("tight"))
    try:
        yield await factory.start(
            WS_RATE_LIMIT_REQUESTS=5,
            MAX_CHUNK_SIZE=1024,
            MAX_UPLOADS_PER_USER=2,
            MAX_TEMP_BYTES_PER_USER=20_000,
            UPLOAD_TIMEOUT=2,
            WEBSOCKET_CLEANUP_INTERVAL=0.5,
        )
    finally:
        await factory.stop_all()


async def test_chunks_are_not_counted_by_the_frame_rate_limit(tight: Server, name: Namer) -> None:
    client = await tight.connect(await tight.user(name()))
    payload = Payload(10 * 1024, seed=10, chunk_size=1024, patches=((0, MP4_HEAD),))
    file_id = await start(client, "ten.mp4", payload)  # frame 1
    acks = await send_chunks(client, file_id, payload)  # 10 chunks, not counted
    assert acks[-1]["received_chunks"] == 10
    complete = await finalize(client, file_id, payload.sha256)  # frame 2
    assert complete["data"]["file_size"] == 10 * 1024
    for _ in range(3):  # frames 3-5
        await alive(client)
    await client.send({"type": "ping"})  # frame 6: over the limit
    error = await client.expect("error")
    assert error["data"]["code"] == "RATE_LIMIT" and error["data"]["retry_after"] >= 1


async def test_concurrent_uploads_per_user_are_bounded(tight: Server, name: Namer) -> None:
    client = await tight.connect(await tight.user(name()))
    await start(client, "one.txt", Payload.of(b"1" * 100, chunk_size=1024))
    await start(client, "two.txt", Payload.of(b"2" * 100, chunk_size=1024))
    error = await fails(client, init_frame("three.txt", 100), "UPLOAD_LIMIT")
    assert error["details"]["max_uploads"] == 2


async def test_bytes_held_in_temporary_storage_per_user_are_bounded(
    tight: Server, name: Namer
) -> None:
    client = await tight.connect(await tight.user(name()))
    await start(client, "big.txt", Payload.of(b"b" * 15_000, chunk_size=1024))
    error = await fails(client, init_frame("more.txt", 10_000), "UPLOAD_LIMIT")
    assert error["details"]["max_bytes"] == 20_000


# ---- abandoned uploads --------------------------------------------------------------------


async def test_an_abandoned_upload_is_removed_with_its_temporary_file(
    tight: Server, name: Namer
) -> None:
    user = await tight.user(name())
    client = await tight.connect(user)
    payload = Payload.of(b"x" * 3000, chunk_size=1024)
    file_id = await start(client, "left.txt", payload)
    await send_chunks(client, file_id, payload, [0])
    part = temp_file(tight, file_id)
    assert part.exists()
    await client.close()  # a disconnect does not end it; UPLOAD_TIMEOUT does
    await until(lambda: not part.exists(), what="the temporary file to be removed")
    client = await tight.connect(user)
    await fails(client, status_frame(file_id), "UPLOAD_NOT_FOUND")


async def test_after_a_disconnect_an_upload_resumes_on_a_new_connection(
    tight: Server, name: Namer
) -> None:
    user = await tight.user(name())
    first = await tight.connect(user)
    payload = Payload.of(b"resumable text\n" * 200, chunk_size=1024)  # 3 chunks
    file_id = await start(first, "resume.txt", payload)
    await send_chunks(first, file_id, payload, [2])
    await first.close()
    second = await tight.connect(user)
    status = await call(second, status_frame(file_id))
    assert status["data"]["received_chunks"] == [2]
    await send_chunks(second, file_id, payload, [0, 1])
    complete = await finalize(second, file_id, payload.sha256)
    r = await tight.get(complete["data"]["url"], user)
    assert r.content == payload.data


async def test_stale_temporary_files_left_by_a_crash_are_swept(tight: Server) -> None:
    stale = temp_dir(tight) / f"{uuid.uuid4().hex}.part"
    fresh = temp_dir(tight) / f"{uuid.uuid4().hex}.part"
    other = temp_dir(tight) / "keep-me.txt"
    for path in (stale, fresh, other):
        path.write_bytes(b"left over")
    hour_ago = time.time() - 3600
    for path in (stale, other):
        os.utime(path, (hour_ago, hour_ago))
    try:
        await until(lambda: not stale.exists(), what="the stale .part file to be swept")
        assert fresh.exists() and other.exists()
    finally:
        for path in (fresh, other):
            path.unlink(missing_ok=True)


# ---- the disk fails -------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def fragile(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """TEMP_DIR beside (not inside) UPLOAD_DIR, so the two can fail separately."""
    root = tmp_path_factory.mktemp("fragile")
    factory = ServerFactory(root)
    try:
        yield await factory.start(
            workdir=root / "srv",
            UPLOAD_DIR=root / "srv" / "uploads",
            TEMP_DIR=root / "srv" / "temp",
        )
    finally:
        await factory.stop_all()


@contextlib.contextmanager
def file_size_limit(srv: Server, limit: int) -> Any:
    """Lower the server process's RLIMIT_FSIZE: writes past ``limit`` fail with EFBIG
    (Python ignores SIGXFSZ)."""
    assert srv.proc is not None
    previous = resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, (limit, previous[1]))
    try:
        yield
    finally:
        resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, previous)


async def test_a_failed_chunk_write_is_storage_error_and_nothing_is_shared(
    fragile: Server, name: Namer
) -> None:
    room = name("files")
    alice, bob = await fragile.user(name()), await fragile.user(name())
    a = await joined(fragile, alice, room, "shared")
    b = await joined(fragile, bob, room)
    payload = Payload.mp4(3 * MB, seed=3)
    file_id = await start(a, "clip.mp4", payload, room)
    with file_size_limit(fragile, 2 * MB):
        await send_chunks(a, file_id, payload, [0, 1])
        error = await fails(a, chunk_frame(file_id, 2, payload.chunk(2)), "STORAGE_ERROR")
    assert "could not store" in error["error"]
    await fails(a, status_frame(file_id), "UPLOAD_NOT_FOUND")  # forgotten
    assert not temp_file(fragile, file_id).exists()
    assert (await fragile.get(FILES + file_id, alice)).status_code == 404
    await no_file_event_before_marker(b, a, room)
    assert "Traceback" not in fragile.log


async def test_a_failed_publish_is_storage_error_and_nothing_is_shared(
    fragile: Server, name: Namer
) -> None:
    room = name("files")
    alice, bob = await fragile.user(name()), await fragile.user(name())
    a = await joined(fragile, alice, room, "shared")
    b = await joined(fragile, bob, room)
    payload = Payload.of(b"about to vanish\n")
    file_id = await start(a, "vanish.txt", payload, room)
    await send_chunks(a, file_id, payload)
    shutil.rmtree(upload_dir(fragile))  # the target directory is gone
    try:
        await fails(a, finalize_frame(file_id, payload.sha256), "STORAGE_ERROR")
    finally:
        upload_dir(fragile).mkdir()
    assert not temp_file(fragile, file_id).exists()
    assert (await fragile.get(FILES + file_id, alice)).status_code == 404
    await no_file_event_before_marker(b, a, room)
    complete = await put(a, "again.txt", payload, room)  # the directory is back: it works
    await b.expect("file_upload", is_complete(complete["data"]["file_id"]))
