"""Every file error over the socket, through a real server; the connection survives each."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from tests.e2e.rooms_helpers import joined
from tests.e2e.upload_helpers import (
    FILES,
    MB,
    Payload,
    alive,
    chunk_frame,
    fails,
    finalize,
    finalize_frame,
    init_frame,
    is_complete,
    published,
    send_chunks,
    start,
    status_frame,
    temp_file,
)
from tests.support import Namer, Server

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
