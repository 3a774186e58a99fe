"""The disk fails under a real server: a failed chunk write or publish is STORAGE_ERROR and
nothing is shared."""

from __future__ import annotations

import contextlib
import resource
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.rooms_helpers import joined
from tests.e2e.upload_helpers import (
    FILES,
    MB,
    Payload,
    chunk_frame,
    fails,
    finalize_frame,
    is_complete,
    no_file_event_before_marker,
    put,
    send_chunks,
    start,
    status_frame,
    temp_file,
    upload_dir,
)
from tests.support import Namer, Server, ServerFactory

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
