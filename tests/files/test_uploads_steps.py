"""UploadManager: init, chunk and status, their errors, and who may see an upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from chinwag.core.uploads import FinalizedUpload, UploadManager
from chinwag.files.storage import LocalStorage
from chinwag.protocol.codes import ErrorCode
from chinwag.protocol.errors import (
    ChunkTooLarge,
    FileTooLarge,
    FileTypeNotAllowed,
    InvalidMessage,
    StorageError,
    UploadLimit,
    UploadNotFound,
)

from .upload_helpers import (
    ALICE,
    BOB,
    CHUNK,
    PNG,
    FakeScanner,
    MakeManager,
    b64,
    pieces,
    send_all,
    sha,
    start,
    upload,
)

# ---- the happy path -------------------------------------------------------------------


async def test_init_reply_matches_the_spec(manager: UploadManager) -> None:
    reply = await manager.init(ALICE, "photo.png", len(PNG), "image/png", "room-1")
    assert reply == {
        "upload_type": "init",
        "file_id": reply["file_id"],
        "chunk_size": CHUNK,
        "total_chunks": 3,
    }
    assert await manager.in_progress() == 1


async def test_out_of_order_duplicate_chunks_then_finalize_publishes_the_file(
    manager: UploadManager, storage: LocalStorage, scanner: FakeScanner
) -> None:
    file_id = await start(manager, PNG, name="../../holiday\u202e.png")
    parts = pieces(PNG)
    replies = [
        await manager.chunk(ALICE, file_id, index, 3, b64(parts[index])) for index in (2, 0, 2, 1)
    ]
    assert [r["received_chunks"] for r in replies] == [1, 2, 2, 3]
    assert replies[-1] == {
        "upload_type": "chunk",
        "file_id": file_id,
        "chunk_index": 1,
        "received_chunks": 3,
        "total_chunks": 3,
        "progress": 100.0,
    }
    assert replies[0]["progress"] == pytest.approx(33.33)

    done = await manager.finalize(ALICE, file_id, sha(PNG))
    assert done == FinalizedUpload(
        file_id=file_id,
        owner=ALICE,
        room_id="room-1",
        file_name="holiday.png",
        file_size=len(PNG),
        mime_type="image/png",
        checksum=sha(PNG),
        stored_name=done.stored_name,
    )
    with storage.open_published(done.stored_name) as f:
        assert f.read() == PNG
    assert await manager.in_progress() == 0 and manager.completed == 1
    assert list(storage.temp_dir.iterdir()) == []


async def test_scan_runs_on_the_temp_file_before_anything_is_published(
    manager: UploadManager, storage: LocalStorage, scanner: FakeScanner
) -> None:
    done = await upload(manager, PNG)
    assert len(scanner.scanned) == 1
    assert scanner.scanned[0].parent == storage.temp_dir
    assert scanner.published_at_scan == [[]]
    assert storage.published_path(done.stored_name).exists()


async def test_stored_mime_type_comes_from_the_extension_not_the_client(
    manager: UploadManager,
) -> None:
    data = b"just text\n"
    reply = await manager.init(ALICE, "notes.txt", len(data), "application/x-msdownload", None)
    await send_all(manager, reply["file_id"], data)
    done = await manager.finalize(ALICE, reply["file_id"], sha(data))
    assert done.mime_type == "text/plain"
    assert done.room_id is None


async def test_empty_text_file_has_no_chunks_and_finalizes(manager: UploadManager) -> None:
    reply = await manager.init(ALICE, "empty.txt", 0, None, None)
    assert reply["total_chunks"] == 0
    done = await manager.finalize(ALICE, reply["file_id"], sha(b""))
    assert done.file_size == 0


async def test_status_lists_received_indexes_to_resume_after_a_reconnect(
    manager: UploadManager,
) -> None:
    file_id = await start(manager, PNG)
    parts = pieces(PNG)
    await manager.chunk(ALICE, file_id, 2, 3, b64(parts[2]))
    # The connection drops here; the upload is keyed by owner, not by connection.
    status = await manager.status(ALICE, file_id)
    assert status["upload_type"] == "status"
    assert status["received_chunks"] == [2]
    assert status["total_chunks"] == 3
    assert status["chunk_size"] == CHUNK
    for index in (0, 1):
        await manager.chunk(ALICE, file_id, index, None, b64(parts[index]))
    await manager.finalize(ALICE, file_id, sha(PNG))


# ---- init errors --------------------------------------------------------------------


async def test_file_over_the_size_limit_is_file_too_large(make_manager: MakeManager) -> None:
    manager = make_manager(FakeScanner(Path()), max_file_size=1000)
    with pytest.raises(FileTooLarge) as caught:
        await manager.init(ALICE, "big.png", 1001, None, None)
    assert caught.value.code is ErrorCode.FILE_TOO_LARGE
    assert await manager.in_progress() == 0


@pytest.mark.parametrize("name", ["setup.exe", "script.sh", "passwd", "../../etc/passwd"])
async def test_extension_outside_the_list_is_file_type_not_allowed(
    manager: UploadManager, name: str
) -> None:
    with pytest.raises(FileTypeNotAllowed):
        await manager.init(ALICE, name, 10, None, None)
    assert await manager.in_progress() == 0


async def test_too_many_uploads_per_user_is_upload_limit_and_others_are_unaffected(
    manager: UploadManager,
) -> None:
    ids = [await start(manager, PNG) for _ in range(3)]
    with pytest.raises(UploadLimit):
        await start(manager, PNG)
    await start(manager, PNG, owner=BOB)
    await manager.abort(ALICE, ids[0])
    await start(manager, PNG)


async def test_too_many_reserved_bytes_per_user_is_upload_limit(
    make_manager: MakeManager, scanner: FakeScanner
) -> None:
    manager = make_manager(scanner, max_temp_bytes_per_user=6000)
    first = await start(manager, PNG)
    await start(manager, PNG)
    with pytest.raises(UploadLimit):
        await start(manager, PNG)  # 3 * 2568 > 6000
    await send_all(manager, first, PNG)
    await manager.finalize(ALICE, first, sha(PNG))
    await start(manager, PNG)  # finishing one frees its reservation


# ---- chunk errors ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["not base64!", "abc", "YWJj\n", "YW=Jj", "ÿÿÿÿ"])
async def test_bad_base64_is_invalid_message_naming_chunk_data(
    manager: UploadManager, bad: str
) -> None:
    file_id = await start(manager, PNG)
    with pytest.raises(InvalidMessage) as caught:
        await manager.chunk(ALICE, file_id, 0, 3, bad)
    assert caught.value.details["field"] == "chunk_data"


async def test_decoded_chunk_over_the_chunk_size_is_chunk_too_large(
    manager: UploadManager,
) -> None:
    file_id = await start(manager, PNG)
    with pytest.raises(ChunkTooLarge):
        await manager.chunk(ALICE, file_id, 0, 3, b64(b"x" * (CHUNK + 1)))
    with pytest.raises(ChunkTooLarge):  # refused before decoding
        await manager.chunk(ALICE, file_id, 0, 3, "A" * 10_000_000)


@pytest.mark.parametrize(("index", "total"), [(3, 3), (0, 4), (0, 0)])
async def test_index_out_of_range_or_wrong_total_is_invalid_message(
    manager: UploadManager, index: int, total: int
) -> None:
    file_id = await start(manager, PNG)
    with pytest.raises(InvalidMessage):
        await manager.chunk(ALICE, file_id, index, total, b64(b"x" * CHUNK))


@pytest.mark.parametrize(
    ("index", "size"), [(2, 567), (2, 569), (2, CHUNK), (0, CHUNK - 1), (1, 1)]
)
async def test_chunk_of_the_wrong_size_is_invalid_message(
    manager: UploadManager, index: int, size: int
) -> None:
    file_id = await start(manager, PNG)  # chunks of 1000, 1000, 568
    with pytest.raises(InvalidMessage) as caught:
        await manager.chunk(ALICE, file_id, index, 3, b64(b"x" * size))
    assert caught.value.details["field"] == "chunk_data"


async def test_duplicate_chunk_is_accepted_and_the_first_copy_kept(
    manager: UploadManager, storage: LocalStorage
) -> None:
    file_id = await start(manager, PNG)
    parts = pieces(PNG)
    await manager.chunk(ALICE, file_id, 0, 3, b64(parts[0]))
    again = await manager.chunk(ALICE, file_id, 0, 3, b64(b"z" * CHUNK))
    assert again["received_chunks"] == 1
    await manager.chunk(ALICE, file_id, 1, 3, b64(parts[1]))
    await manager.chunk(ALICE, file_id, 2, 3, b64(parts[2]))
    done = await manager.finalize(ALICE, file_id, sha(PNG))
    assert storage.published_path(done.stored_name).read_bytes() == PNG


async def test_disk_failure_is_storage_error_and_forgets_the_upload(
    manager: UploadManager, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = await start(manager, PNG)

    async def full(upload_id: str, handle: str, index: int, offset: int, data: bytes) -> str:
        await storage.discard(upload_id, handle)
        raise StorageError("disk full")

    monkeypatch.setattr(storage, "write_chunk", full)
    with pytest.raises(StorageError):
        await manager.chunk(ALICE, file_id, 0, 3, b64(pieces(PNG)[0]))
    assert await manager.in_progress() == 0
    with pytest.raises(UploadNotFound):
        await manager.status(ALICE, file_id)


# ---- ownership ------------------------------------------------------------------------


async def test_someone_elses_upload_is_not_found_everywhere(manager: UploadManager) -> None:
    file_id = await start(manager, PNG)
    with pytest.raises(UploadNotFound):
        await manager.chunk(BOB, file_id, 0, 3, b64(pieces(PNG)[0]))
    with pytest.raises(UploadNotFound):
        await manager.status(BOB, file_id)
    with pytest.raises(UploadNotFound):
        await manager.finalize(BOB, file_id, sha(PNG))
    with pytest.raises(UploadNotFound):
        await manager.abort(BOB, file_id)
    assert (await manager.status(ALICE, file_id))["received_chunks"] == []


@pytest.mark.parametrize("file_id", ["no-such-upload", "00000000-0000-0000-0000-000000000000"])
async def test_unknown_file_id_is_upload_not_found(manager: UploadManager, file_id: str) -> None:
    with pytest.raises(UploadNotFound):
        await manager.chunk(ALICE, file_id, 0, 1, b64(b"x"))
    with pytest.raises(UploadNotFound):
        await manager.finalize(ALICE, file_id, sha(b"x"))
