"""Per-user upload bounds (not the frame rate limit, but their own) and abandoned uploads
expiring, on a server with tiny limits."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.e2e.upload_helpers import (
    MP4_HEAD,
    Payload,
    alive,
    call,
    fails,
    finalize,
    init_frame,
    send_chunks,
    start,
    status_frame,
    temp_dir,
    temp_file,
    until,
)
from tests.support import Namer, Server, ServerFactory

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
