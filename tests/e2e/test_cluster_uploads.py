"""Uploads across processes (SPEC §11): an upload started on one process is resumed
and finalized on another, survives a restart of every process, and is finalized
once when two processes race; published files are served by every process. Run
with the local directory shared by the processes and with an S3-compatible store
(moto's server, tests/s3_fixture.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster_helpers import cluster_env, start_cluster
from tests.e2e.rooms_helpers import joined
from tests.e2e.upload_helpers import (
    Payload,
    call,
    finalize,
    finalize_frame,
    send,
    send_chunks,
    start,
    status_frame,
)
from tests.s3_fixture import MIN_PART, S3Server
from tests.support import Server, restart

CHUNK = MIN_PART
TEXT = Payload.of(b"shared between processes\n" * 120, chunk_size=CHUNK)  # 3 chunks


@pytest.fixture(params=["local", "s3"])
def storage_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    env: dict[str, Any] = {"MAX_CHUNK_SIZE": CHUNK, "MAX_FILE_SIZE": 1_000_000}
    if request.param == "local":
        return {**env, "UPLOAD_DIR": tmp_path / "shared", "TEMP_DIR": tmp_path / "shared" / "t"}
    s3: S3Server = request.getfixturevalue("s3_server")
    return {**env, **s3.settings(s3.new_bucket())}


@pytest.fixture
async def pair(
    pg_url: str, start_server: Callable[..., Awaitable[Server]], storage_env: dict[str, Any]
) -> list[Server]:
    return await start_cluster(start_server, 2, cluster_env(pg_url, **storage_env))


async def test_upload_started_on_one_process_is_resumed_and_finalized_on_another(
    pair: list[Server], name: Callable[[str], str]
) -> None:
    a, b = pair
    user = await a.user(name("u"))
    on_a = await a.connect(user)
    file_id = await start(on_a, "notes.txt", TEXT)
    await send_chunks(on_a, file_id, TEXT, [2])
    await on_a.close()

    on_b = await b.connect(user)
    status = await call(on_b, status_frame(file_id))
    assert status["data"]["received_chunks"] == [2]
    await send_chunks(on_b, file_id, TEXT, [0, 1])
    complete = await finalize(on_b, file_id, TEXT.sha256)

    for srv in pair:  # served by either process, streamed with the same headers
        r = await srv.get(complete["data"]["url"], user)
        assert r.status_code == 200, r.text
        assert r.content == TEXT.data
        assert r.headers["content-type"].startswith("text/plain")
        assert r.headers["content-disposition"] == 'attachment; filename="notes.txt"'
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "private, no-store"
        assert r.headers["content-length"] == str(TEXT.size)


async def test_an_upload_survives_a_restart_of_every_process(
    pair: list[Server], name: Callable[[str], str]
) -> None:
    a, b = pair
    user = await a.user(name("u"))
    client = await a.connect(user)
    file_id = await start(client, "notes.txt", TEXT)
    await send_chunks(client, file_id, TEXT, [0, 1])
    await client.close()
    for srv in pair:
        await restart(srv)

    client = await b.connect(user)
    assert (await call(client, status_frame(file_id)))["data"]["received_chunks"] == [0, 1]
    await send_chunks(client, file_id, TEXT, [2])
    complete = await finalize(client, file_id, TEXT.sha256)
    assert (await a.get(complete["data"]["url"], user)).content == TEXT.data


async def test_two_processes_racing_to_finalize_share_the_file_once(
    pair: list[Server], name: Callable[[str], str]
) -> None:
    a, b = pair
    user = await a.user(name("u"))
    room = name("r")
    on_a = await joined(a, user, room)
    on_b = await b.connect(user)
    file_id = await start(on_a, "notes.txt", TEXT, room=room)
    await send_chunks(on_a, file_id, TEXT)
    await asyncio.gather(
        send(on_a, finalize_frame(file_id, TEXT.sha256)),
        send(on_b, finalize_frame(file_id, TEXT.sha256)),
    )
    await on_a.expect(
        "file_upload", lambda f: f["data"].get("upload_type") == "complete", timeout=30
    )
    # Whichever lost was answered with an error; the room holds the file once.
    r = await a.get(f"/api/v1/ws/rooms/{room}/messages", user)
    assert r.status_code == 200, r.text
    shared = [m for m in r.json()["messages"] if m.get("type") == "file_upload"]
    assert len(shared) == 1, shared
