"""UploadManager over time: idle uploads expire, a restarted or second manager
resumes, a finalize claim is taken once."""

from __future__ import annotations

import asyncio

import pytest

from chinwag.core.uploads import FinalizedUpload, UploadManager
from chinwag.files.storage import LocalStorage
from chinwag.protocol.errors import (
    ChatError,
    InvalidMessage,
    UploadNotFound,
)
from chinwag.store.sql import SqlStore

from .upload_helpers import (
    ALICE,
    PNG,
    Clock,
    FakeScanner,
    MakeManager,
    b64,
    pieces,
    send_all,
    sha,
    start,
)

# ---- expiry -----------------------------------------------------------------------------


async def test_idle_uploads_expire_and_their_temp_files_go(
    manager: UploadManager, storage: LocalStorage, clock: Clock
) -> None:
    idle = await start(manager, PNG)
    clock.now += 3000
    active = await start(manager, PNG)
    clock.now += 601  # idle: 3601 s without activity; active: 601 s
    assert await manager.expire() == [idle]
    assert await manager.in_progress() == 1
    with pytest.raises(UploadNotFound):
        await manager.status(ALICE, idle)
    assert [p.name for p in storage.temp_dir.iterdir()] == [storage.temp_path(active).name]


async def test_activity_keeps_an_upload_alive(manager: UploadManager, clock: Clock) -> None:
    file_id = await start(manager, PNG)
    parts = pieces(PNG)
    for index in range(3):
        clock.now += 3000
        await manager.chunk(ALICE, file_id, index, 3, b64(parts[index]))
    clock.now += 3000
    await manager.status(ALICE, file_id)
    assert await manager.expire(clock.now + 3000) == []
    await manager.finalize(ALICE, file_id, sha(PNG))


async def test_an_upload_being_scanned_does_not_expire(
    make_manager: MakeManager, scanner: FakeScanner, clock: Clock
) -> None:
    manager = make_manager(scanner, upload_timeout=60)
    file_id = await start(manager, PNG)
    await send_all(manager, file_id, PNG)
    scanner.gate = asyncio.Event()
    task = asyncio.create_task(manager.finalize(ALICE, file_id, sha(PNG)))
    try:
        async with asyncio.timeout(5):
            await scanner.entered.wait()
        # Idle past the timeout, but held by a finalize claimed within its lease.
        assert await manager.expire(clock.now + 120) == []
    finally:
        scanner.gate.set()
        async with asyncio.timeout(5):
            await task


async def test_a_restarted_manager_resumes_an_upload_where_it_stopped(
    make_manager: MakeManager, scanner: FakeScanner
) -> None:
    first = make_manager(scanner)
    file_id = await start(first, PNG)
    parts = pieces(PNG)
    await first.chunk(ALICE, file_id, 0, 3, b64(parts[0]))
    # A new process (a new manager over the same database and directory) takes over.
    second = make_manager(scanner)
    assert (await second.status(ALICE, file_id))["received_chunks"] == [0]
    for index in (1, 2):
        await second.chunk(ALICE, file_id, index, 3, b64(parts[index]))
    done = await second.finalize(ALICE, file_id, sha(PNG))
    assert done.file_size == len(PNG)


async def test_two_managers_racing_to_finalize_publish_and_scan_once(
    make_manager: MakeManager, storage: LocalStorage, scanner: FakeScanner
) -> None:
    one, two = make_manager(scanner), make_manager(scanner)
    file_id = await start(one, PNG)
    await send_all(one, file_id, PNG)
    results = await asyncio.gather(
        one.finalize(ALICE, file_id, sha(PNG)),
        two.finalize(ALICE, file_id, sha(PNG)),
        return_exceptions=True,
    )
    published = [r for r in results if isinstance(r, FinalizedUpload)]
    refused = [r for r in results if isinstance(r, ChatError)]
    assert len(published) == 1 and len(refused) == 1, results
    assert isinstance(refused[0], (InvalidMessage, UploadNotFound))
    assert len(scanner.scanned) == 1
    assert [p.name for p in storage.upload_dir.iterdir() if p.is_file()] == [
        published[0].stored_name
    ]


async def test_a_finalize_claim_left_by_a_dead_process_expires_after_the_lease(
    make_manager: MakeManager, store: SqlStore, scanner: FakeScanner, clock: Clock
) -> None:
    manager = make_manager(scanner)
    file_id = await start(manager, PNG)
    await send_all(manager, file_id, PNG)
    assert await store.uploads.claim(file_id, clock.now, clock.now - 600)  # then it died
    with pytest.raises(InvalidMessage):
        await manager.finalize(ALICE, file_id, sha(PNG))
    clock.now += 601
    assert (await manager.finalize(ALICE, file_id, sha(PNG))).file_id == file_id
