"""UploadStorage: positional writes, incremental SHA-256, publish, refusals."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest

from chinwag.files.storage import UploadStorage
from chinwag.protocol.errors import StorageError, UploadNotFound

CHUNK = 1024


def _chunks(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def _new(storage: UploadStorage, size: int, chunk: int = CHUNK) -> str:
    upload_id = str(uuid.uuid4())
    await storage.create(upload_id, size, chunk)
    return upload_id


async def test_out_of_order_and_duplicate_chunks_give_the_right_bytes_and_sha(
    storage: UploadStorage,
) -> None:
    data = random.Random(1).randbytes(10 * CHUNK + 123)
    upload_id = await _new(storage, len(data))
    pieces = _chunks(data)
    order = [5, 0, 0, 10, 2, 1, 5, 4, 3, 9, 8, 7, 6, 1, 10]
    for index in order:
        await storage.write_chunk(upload_id, index * CHUNK, pieces[index])
    assert await storage.digest(upload_id) == hashlib.sha256(data).hexdigest()
    assert storage.temp_path(upload_id).read_bytes() == data


async def test_digest_is_none_until_every_byte_arrived(storage: UploadStorage) -> None:
    data = b"x" * (3 * CHUNK)
    upload_id = await _new(storage, len(data))
    await storage.write_chunk(upload_id, 2 * CHUNK, data[2 * CHUNK :])
    await storage.write_chunk(upload_id, 0, data[:CHUNK])
    assert await storage.digest(upload_id) is None
    await storage.write_chunk(upload_id, CHUNK, data[CHUNK : 2 * CHUNK])
    assert await storage.digest(upload_id) == hashlib.sha256(data).hexdigest()


async def test_empty_upload_has_the_empty_digest(storage: UploadStorage) -> None:
    upload_id = await _new(storage, 0)
    assert await storage.digest(upload_id) == hashlib.sha256(b"").hexdigest()


async def test_misaligned_or_overlong_chunk_is_a_programming_error(storage: UploadStorage) -> None:
    upload_id = await _new(storage, 2 * CHUNK)
    with pytest.raises(ValueError):
        await storage.write_chunk(upload_id, 10, b"x")
    with pytest.raises(ValueError):
        await storage.write_chunk(upload_id, CHUNK, b"x" * (CHUNK + 1))


async def test_fifty_megabytes_assemble_in_bounded_memory(storage: UploadStorage) -> None:
    size, chunk = 50 * 1024 * 1024, 1024 * 1024
    upload_id = await _new(storage, size, chunk)

    def piece(i: int) -> bytes:
        return random.Random(i).randbytes(chunk)

    tracemalloc.start()
    try:
        # Reverse order: nothing can be hashed until chunk 0 arrives last, so the
        # whole file has to be read back from disk to finish the hash.
        for index in reversed(range(size // chunk)):
            await storage.write_chunk(upload_id, index * chunk, piece(index))
        digest = await storage.digest(upload_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    expected = hashlib.sha256()
    for index in range(size // chunk):
        expected.update(piece(index))
    assert digest == expected.hexdigest()
    assert storage.temp_path(upload_id).stat().st_size == size
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while assembling {size}"


async def test_publish_moves_the_file_under_a_server_generated_name(
    storage: UploadStorage,
) -> None:
    data = b"hello world"
    upload_id = await _new(storage, len(data))
    await storage.write_chunk(upload_id, 0, data)
    temp = storage.temp_path(upload_id)
    stored = await storage.publish(upload_id)
    assert len(stored) == 32 and all(c in "0123456789abcdef" for c in stored)
    assert not temp.exists()
    assert storage.published_path(stored).parent == storage.upload_dir
    with storage.open_published(stored) as f:
        assert f.read() == data
    with pytest.raises(UploadNotFound):
        storage.temp_path(upload_id)


async def test_publish_of_an_incomplete_upload_is_refused(storage: UploadStorage) -> None:
    upload_id = await _new(storage, 2 * CHUNK)
    await storage.write_chunk(upload_id, CHUNK, b"x" * CHUNK)
    with pytest.raises(RuntimeError):
        await storage.publish(upload_id)
    assert list(storage.upload_dir.iterdir()) == []


async def test_publish_across_filesystems_falls_back_to_a_copy(
    storage: UploadStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"cross-device"
    upload_id = await _new(storage, len(data))
    await storage.write_chunk(upload_id, 0, data)
    temp = storage.temp_path(upload_id)
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src) == temp:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    stored = await storage.publish(upload_id)
    assert storage.published_path(stored).read_bytes() == data
    assert not temp.exists()
    assert [p.name for p in storage.upload_dir.iterdir()] == [stored]


@pytest.mark.parametrize(
    "name",
    [
        "../etc/passwd",
        "a/b",
        "..",
        ".hidden",
        "/etc/passwd",
        "ABCDEF" * 6,
        "0" * 31,
        "0" * 32 + "/",
    ],
)
def test_open_published_refuses_names_publish_could_not_produce(
    storage: UploadStorage, name: str
) -> None:
    with pytest.raises(UploadNotFound):
        storage.open_published(name)


def test_open_published_of_a_missing_file_is_not_found(storage: UploadStorage) -> None:
    with pytest.raises(UploadNotFound):
        storage.open_published(uuid.uuid4().hex)


@pytest.mark.parametrize("upload_id", ["../../x", "not-a-uuid", ""])
async def test_upload_ids_that_are_not_uuids_never_reach_a_path(
    storage: UploadStorage, upload_id: str
) -> None:
    with pytest.raises(UploadNotFound):
        await storage.create(upload_id, 1, 1)
    assert list(storage.temp_dir.iterdir()) == []


async def test_discard_removes_the_temp_file_and_is_idempotent(storage: UploadStorage) -> None:
    upload_id = await _new(storage, CHUNK)
    temp = storage.temp_path(upload_id)
    assert temp.exists()
    await storage.discard(upload_id)
    await storage.discard(upload_id)
    assert not temp.exists()
    with pytest.raises(UploadNotFound):
        await storage.write_chunk(upload_id, 0, b"x")


async def test_disk_full_raises_storage_error_and_removes_the_partial_file(
    storage: UploadStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = await _new(storage, 2 * CHUNK)
    await storage.write_chunk(upload_id, 0, b"a" * CHUNK)
    temp = storage.temp_path(upload_id)

    def full(fd: int, data: object, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(StorageError):
        await storage.write_chunk(upload_id, CHUNK, b"b" * CHUNK)
    assert not temp.exists()
    with pytest.raises(UploadNotFound):
        storage.temp_path(upload_id)


async def test_sweep_removes_old_orphans_and_keeps_live_uploads(storage: UploadStorage) -> None:
    live = await _new(storage, CHUNK)
    orphan = storage.temp_dir / f"{uuid.uuid4().hex}.part"
    orphan.write_bytes(b"left by a crash")
    fresh_orphan = storage.temp_dir / f"{uuid.uuid4().hex}.part"
    fresh_orphan.write_bytes(b"maybe another process")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    os.utime(storage.temp_path(live), (old, old))
    assert await storage.sweep_temp(older_than=3600) == 1
    assert not orphan.exists()
    assert fresh_orphan.exists()
    assert storage.temp_path(live).exists()


async def test_close_discards_every_upload_in_progress(storage: UploadStorage) -> None:
    ids = [await _new(storage, CHUNK) for _ in range(3)]
    await storage.close()
    assert list(storage.temp_dir.iterdir()) == []
    for upload_id in ids:
        with pytest.raises(UploadNotFound):
            storage.temp_path(upload_id)
